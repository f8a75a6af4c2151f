"""The messages between the proxy and the analysis side: they travel as pickles (the journal,
the worker's pipe), so each must come back equal, and be told apart by its type."""

from __future__ import annotations

import logging
import pickle

import pytest

from auditor.live import protocol
from auditor.model import ConsentEvent
from tests.factories import http_flow, tx

EVENT = ConsentEvent(ts=1.0, action="grant", categories=("identifier",))
STATE = http_flow("http://api.acme-watch.example/r", 1.0, {"n": 1}).get_state()

MESSAGES = [
    protocol.HttpFlow(1, STATE),
    protocol.Raw(None, tx()),
    protocol.Uninspected(tx(), "pinned", {"id": "f"}),
    protocol.Consent(EVENT, save=True),
    protocol.AnalysisError("analyze", "ValueError: x"),
    protocol.SaveFlow(STATE),
    protocol.Finish("zh"),
    protocol.Close(),
]
REPLIES = [
    protocol.Result(1, 2, ("identifier.imei",), ("[HIGH] X -> y (z) tx #2",)),
    protocol.Log(logging.WARNING, "kidaudit: consent mark grant identifier"),
    protocol.Committed(4096),
    protocol.Ready(12, 0),
    protocol.Failed("no such folder"),
    protocol.Finished(3, "/s/report.html"),
    protocol.Detached(123, 1 << 20),
]


@pytest.mark.parametrize("value", MESSAGES + REPLIES, ids=lambda v: type(v).__name__)
def test_each_message_and_reply_survives_the_pickle_it_travels_as(value) -> None:
    assert pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL)) == value


def test_every_message_has_its_own_name_for_the_log() -> None:
    kinds = [m.kind for m in MESSAGES]
    assert kinds == ["http", "tx", "uninspected", "event", "error", "save", "finish", "close"]


@pytest.mark.parametrize(("error", "kind"), [
    ("RuntimeError: decoder exploded", "RuntimeError"),
    ("", ""),
])
def test_a_results_error_kind_is_the_exceptions_type(error, kind) -> None:
    assert protocol.Result(None, 1, error=error).error_kind == kind


def test_error_text_is_the_type_then_the_message() -> None:
    assert protocol.error_text(ValueError("bad")) == "ValueError: bad"


@pytest.mark.parametrize(("old", "new"), [
    (("http", 1, STATE, None), protocol.HttpFlow(1, STATE)),
    (("tx", None, MESSAGES[1].tx), MESSAGES[1]),
    (("uninspected", MESSAGES[2].tx, "pinned", {"id": "f"}), MESSAGES[2]),
    (("event", EVENT, True), protocol.Consent(EVENT, save=True)),
    (("error", "analyze", "ValueError: x"), MESSAGES[4]),
    (("save", STATE), protocol.SaveFlow(STATE)),
    (("finish", "zh"), protocol.Finish("zh")),
    (("close",), protocol.Close()),
], ids=lambda v: v[0] if isinstance(v, tuple) else "")
def test_a_tuple_from_a_version_0_1_journal_reads_as_its_message(old, new) -> None:
    assert protocol.from_tuple(old) == new


@pytest.mark.parametrize("old", [(), ("tx", None, "not a transmission"), ("mystery", 1),
                                 ("save",)])
def test_any_other_tuple_is_refused_as_unknown(old) -> None:
    with pytest.raises(ValueError, match="unknown message"):
        protocol.from_tuple(old)
