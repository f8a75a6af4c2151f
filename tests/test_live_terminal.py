"""What the live runtime writes to the lab's terminal: a device's text shown, never obeyed."""

from __future__ import annotations

import logging

import pytest

from auditor.live.terminal import clean, describe, kidaudit_logger
from auditor.model import ConsentEvent


@pytest.mark.parametrize(("text", "shown"), [
    ("phase idle", "phase idle"),
    ("a\x1b[2J\x1b]0;pwned\x07b", "a\\x1b[2J\\x1b]0;pwned\\x07b"),
    ("evil\u202egnp.exe", "evil\\u202egnp.exe"),
    ("line\nforged", "line\\x0aforged"),
    ("zero\u200bwidth\u2066iso", "zero\\u200bwidth\\u2066iso"),
    ("tag\U000e0041", "tag\\U000e0041"),
    ("北京 ünïcode", "北京 ünïcode"),
])
def test_clean_shows_control_and_bidi_characters_as_escapes(text, shown) -> None:
    assert clean(text) == shown



@pytest.mark.parametrize(("event", "line"), [
    (ConsentEvent(ts=1.0, action="phase", name="idle"), "phase idle"),
    (ConsentEvent(ts=1.0, action="grant", categories=("identifier", "location")),
     "grant identifier,location"),
    (ConsentEvent(ts=1.0, action="grant", categories=("all-disclosed",),
                  separate=("location.precise",)),
     "grant all-disclosed separate=location.precise"),
])
def test_a_consent_event_is_one_line(event, line) -> None:
    assert describe(event) == line


def test_every_kidaudit_log_line_is_cleaned_once_however_often_the_addon_loads(caplog
                                                                              ) -> None:
    logger = kidaudit_logger()
    assert kidaudit_logger() is logger
    with caplog.at_level(logging.INFO, logger="kidaudit"):
        logger.warning("host %s", "evil\u202egnp")
    assert [r.getMessage() for r in caplog.records] == ["host evil\\u202egnp"]
