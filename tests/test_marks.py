"""auditor/marks.py: live consent marks as ``http://kidaudit.mark/...`` paths and CLI words,
and the same marks read back from a saved request (HAR, pcap)."""

from __future__ import annotations

import pytest

from auditor.marks import MARK_HOST, mark_of, mark_path, parse_mark, parse_words
from auditor.model import ConsentEvent
from tests.factories import HOST, T0, event, tx


@pytest.mark.parametrize(("path", "expected"), [
    pytest.param("/grant?categories=all-disclosed&separate=location.precise",
                 event("grant", T0, "all-disclosed", separate="location.precise", source="mark"),
                 id="grant-separate"),
    pytest.param("/withdraw?categories=location.precise&recipients=amap.com",
                 event("withdraw", T0, "location.precise", recipients="amap.com", source="mark"),
                 id="withdraw-recipient"),
    pytest.param("/phase?name=idle", event("phase", T0, name="idle", source="mark"),
                 id="phase"),
    pytest.param("/refuse?categories=media.voice,%20location&recipients=a.example,b.example",
                 event("refuse", T0, ["media.voice", "location"],
                       recipients=["a.example", "b.example"], source="mark"),
                 id="comma-lists"),
    pytest.param("/grant?categories=location&categories=identifier.imei",
                 event("grant", T0, ["location", "identifier.imei"], source="mark"),
                 id="repeated-parameter"),
    pytest.param("grant/?categories=location", event("grant", T0, "location", source="mark"),
                 id="slashes-stripped"),
])
def test_parse_mark(path: str, expected: ConsentEvent) -> None:
    assert parse_mark(path, T0) == expected


@pytest.mark.parametrize("ev", [
    event("grant", T0, "all-disclosed", separate=["location.precise", "contacts"]),
    event("withdraw", T0, ["location.precise", "identifier"], recipients="amap.com"),
    event("refuse", T0, "media", recipients=["ads.example", "track.example"]),
    event("phase", T0, name="idle"),
    event("phase", T0, name="sos & call"),
])
def test_mark_path_round_trip(ev: ConsentEvent) -> None:
    ev = ConsentEvent(ev.ts, ev.action, ev.categories, ev.recipients, ev.separate, ev.name,
                      source="command")
    path = mark_path(ev)
    assert path.startswith(f"/{ev.action}?")
    assert parse_mark(path, ev.ts, source="command") == ev


@pytest.mark.parametrize(("action", "words", "expected"), [
    pytest.param("grant", ["all-disclosed", "separate=location.precise"],
                 event("grant", T0, "all-disclosed", separate="location.precise", source="cli"),
                 id="grant-bare-word-and-separate"),
    pytest.param("grant", ["location", "identifier.imei"],
                 event("grant", T0, ["location", "identifier.imei"], source="cli"),
                 id="bare-words-are-categories"),
    pytest.param("withdraw", ["location.precise", "recipients=amap.com"],
                 event("withdraw", T0, "location.precise", recipients="amap.com", source="cli"),
                 id="withdraw-recipients"),
    pytest.param("phase", ["idle"], event("phase", T0, name="idle", source="cli"),
                 id="phase-bare-word-is-name"),
    pytest.param("refuse", ["categories=media,location"],
                 event("refuse", T0, ["media", "location"], source="cli"),
                 id="explicit-key"),
])
def test_parse_words(action: str, words: list[str], expected: ConsentEvent) -> None:
    assert parse_words(action, words, T0, "cli") == expected


@pytest.mark.parametrize(("path", "message"), [
    pytest.param("/allow?categories=location", "unknown mark action 'allow'", id="bad-action"),
    pytest.param("/", "unknown mark action ''", id="no-action"),
    pytest.param("/grant/x?categories=location", "unknown mark action 'grant/x'",
                 id="nested-action"),
    pytest.param("/grant", "a grant mark needs categories=", id="grant-no-categories"),
    pytest.param("/withdraw?categories=", "a withdraw mark needs categories=",
                 id="withdraw-empty-categories"),
    pytest.param("/refuse?recipients=amap.com", "a refuse mark needs categories=",
                 id="refuse-no-categories"),
    pytest.param("/phase", "a phase mark needs name=", id="phase-no-name"),
    pytest.param("/grant?categories=loc", "unknown category 'loc'", id="unknown-category"),
    pytest.param("/grant?categories=location&separate=bogus", "unknown category 'bogus'",
                 id="unknown-separate"),
])
def test_parse_mark_errors(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        parse_mark(path, T0)


@pytest.mark.parametrize(("action", "words", "message"), [
    ("allow", ["location"], "unknown mark action 'allow'"),
    ("grant", [], "a grant mark needs categories="),
    ("phase", [], "a phase mark needs name="),
    ("grant", ["locaton"], "unknown category 'locaton'"),
])
def test_parse_words_errors(action: str, words: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_words(action, words, T0, "cli")


def _request(host: str = MARK_HOST, path: str = "/phase?name=idle", **overrides: object):
    """A GET as a HAR or a pcap gives it back: plain HTTP unless told otherwise."""
    fields = {"transport": "http", "method": "GET", "body": b"", **overrides}
    return tx(host=host, path=path, **fields)


@pytest.mark.parametrize(("saved", "expected"), [
    pytest.param(_request(path="/grant?categories=all-disclosed&separate=location.precise"),
                 event("grant", T0, "all-disclosed", separate="location.precise", source="mark"),
                 id="http-grant"),
    pytest.param(_request(transport="https", path="/withdraw?categories=location.precise"),
                 event("withdraw", T0, "location.precise", source="mark"), id="https-withdraw"),
    pytest.param(_request(ts=T0 + 7), event("phase", T0 + 7, name="idle", source="mark"),
                 id="the-request-time"),
    pytest.param(_request(host=HOST), None, id="another-host"),
    pytest.param(_request(host="KIDAUDIT.MARK"), None, id="spelt-as-live-does-not-take-it"),
    pytest.param(_request(method=""), None, id="not-a-request"),
    pytest.param(_request(transport="tcp"), None, id="raw-tcp"),
])
def test_mark_of(saved, expected: ConsentEvent | None) -> None:
    assert mark_of(saved) == expected


def test_mark_of_a_malformed_mark_raises_as_live_answers_400() -> None:
    with pytest.raises(ValueError, match="a grant mark needs categories="):
        mark_of(_request(path="/grant"))
