"""HAR input (browsers, Charles, HTTP Toolkit, PCAPdroid): requests and WebSocket sends."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from auditor.offline import analyze
from auditor.profile import load_profile
from auditor.sources.har import read_har
from auditor.sources.mitm import InputError
from tests.factories import IMEI


def har(entries: list[dict]) -> dict:
    return {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                    "entries": entries}}


def entry(url: str, at: str, method: str = "GET", post: dict | None = None,
          ws: list[dict] | None = None) -> dict:
    e = {"startedDateTime": at, "serverIPAddress": "[2001:db8::9]",
         "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Host", "value": url.split("/")[2]},
                                 {"name": ":authority", "value": "x"},
                                 {"name": "User-Agent", "value": "kid-app/1.0"}],
                     "queryString": [], "headersSize": -1, "bodySize": 0},
         "response": {"status": 200}}
    if post is not None:
        e["request"]["postData"] = post
    if ws is not None:
        e["_webSocketMessages"] = ws
    return e


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "session.har"
    path.write_text(json.dumps(doc))
    return path


def test_entries_become_transmissions_in_time_order(tmp_path: Path) -> None:
    body = json.dumps({"imei": IMEI})
    path = _write(tmp_path, har([
        entry("https://api.example.cn/v1/up?x=1", "2026-11-28T10:00:05.000Z", "POST",
              {"mimeType": "application/json", "text": body}),
        entry("http://cdn.example.cn/a.png", "2026-11-28T10:00:01+00:00"),
        entry("https://api.example.cn/v1/bin", "2026-11-28T10:00:09Z", "POST",
              {"mimeType": "application/octet-stream", "encoding": "base64",
               "text": base64.b64encode(b"\x00\x01binary").decode()}),
        entry("wss://push.example.cn/ws", "2026-11-28T10:00:10Z", ws=[
            {"type": "send", "time": 1795860011.5, "opcode": 1, "data": f"imei={IMEI}"},
            {"type": "receive", "time": 1795860012.0, "opcode": 1, "data": "ok"},
            {"type": "send", "time": 1795860013.0, "opcode": 2,
             "data": base64.b64encode(b"\x01\x02").decode()}]),
    ]))
    notes: list[str] = []
    txs = list(read_har(path, notes))
    assert [(t.transport, t.host, t.port) for t in txs] == [
        ("http", "cdn.example.cn", 80), ("https", "api.example.cn", 443),
        ("https", "api.example.cn", 443), ("https", "push.example.cn", 443),
        ("websocket", "push.example.cn", 443), ("websocket", "push.example.cn", 443)]
    up = txs[1]
    assert (up.method, up.path, up.body, up.content_type, up.ip) == (
        "POST", "/v1/up?x=1", body.encode(), "application/json", "2001:db8::9")
    assert ("User-Agent", "kid-app/1.0") in up.headers
    assert all(name != ":authority" for name, _ in up.headers)
    assert txs[2].body == b"\x00\x01binary"
    assert [t.payload for t in txs[4:]] == [f"imei={IMEI}".encode(), b"\x01\x02"]
    assert not any(t.decrypted for t in txs) and notes == []


def test_a_bad_entry_is_noted_and_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, har([{"request": {}}, entry("http://a.example/", "2026-01-01T00:00Z")]))
    notes: list[str] = []
    assert len(list(read_har(path, notes))) == 1
    assert len(notes) == 1 and "entry 0 skipped" in notes[0]


@pytest.mark.parametrize("text", ["not json", json.dumps({"log": {}})])
def test_not_a_har_is_an_input_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.har"
    path.write_text(text)
    with pytest.raises(InputError, match="x.har: not a HAR file"):
        list(read_har(path, []))


def test_analyze_a_har_end_to_end(tmp_path: Path, imei_profile: Path) -> None:
    path = _write(tmp_path, har([entry(f"http://api.example.cn/bind?imei={IMEI}",
                                       "2026-11-28T10:00:00Z")]))
    out = tmp_path / "out"
    analyze([path], load_profile(str(imei_profile)), None, out)
    doc = json.loads((out / "findings.json").read_text())
    assert [t["transport"] for t in doc["transmissions"]] == ["http"]
    assert {d["category"] for d in doc["detections"]} == {"identifier.imei"}
    assert (out / "session.har").is_file() and not (out / "flows.mitm").exists()


# -- hostile input (issue 13): a value of the wrong kind is exit 2, one line --------------

def _with(field: str, value: object) -> dict:
    """One good entry with ``field`` (dotted, from the entry) set to ``value``."""
    e = entry("http://a.example/x", "2026-11-28T10:00:00Z", ws=[
        {"type": "send", "time": 1795860011.5, "opcode": 1, "data": "hi"}])
    *parents, last = field.split(".")
    target = e
    for name in parents:
        target = target[name] if not name.isdigit() else target[int(name)]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return e


@pytest.mark.parametrize(("doc", "message"), [
    (lambda: {"log": {"entries": 5}}, "not a HAR file (log.entries is a number, not a list)"),
    (lambda: har([_with("startedDateTime", 5)]),
     "log.entries[0].startedDateTime is a number, not an ISO 8601 time"),
    (lambda: har([_with("startedDateTime", "0001-01-01T00:30:00+01:00")]),
     "log.entries[0].startedDateTime '0001-01-01T00:30:00+01:00' is not a time between the "
     "years 1 and 9999"),
    (lambda: har([_with("request.postData", [1])]),
     "log.entries[0].request.postData is a list, not an object"),
    (lambda: har([_with("request.postData", {"params": [1]})]),
     "log.entries[0].request.postData.params[0] is a number, not an object"),
    (lambda: har([_with("_webSocketMessages.0.time", 1e300)]),
     "log.entries[0]._webSocketMessages[0].time 1e+300 is not a time between the years 1 "
     "and 9999"),
    (lambda: har([_with("_webSocketMessages.0.time", "soon")]),
     "log.entries[0]._webSocketMessages[0].time is a string, not a number"),
    (lambda: har([_with("request", [])]), "log.entries[0].request is a list, not an object"),
    (lambda: har([7]), "log.entries[0] is a number, not an object"),
])
def test_a_value_of_the_wrong_kind_refuses_the_file_naming_the_place(tmp_path: Path, doc,
                                                                      message: str) -> None:
    path = _write(tmp_path, doc())
    with pytest.raises(InputError) as err:
        list(read_har(path, []))
    assert str(err.value) == f"{path}: {message}"


def test_json_nested_too_deeply_is_not_a_har(tmp_path: Path) -> None:
    path = tmp_path / "deep.har"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match=r"deep\.har: not a HAR file \(JSON nested too deeply\)$"):
        list(read_har(path, []))


@pytest.mark.parametrize(("url", "host", "path"), [
    ("http://[bad/bind?imei=1", "[bad", "/bind?imei=1"),       # hit: urlsplit refuses it
    ("http://a.example:99999/bind?imei=1", "a.example", "/bind?imei=1"),  # hit: bad port
    ("http://a.example/bind?imei=1", "a.example", "/bind?imei=1"),        # ok
])
def test_a_url_urlsplit_refuses_is_still_read(tmp_path: Path, url: str, host: str,
                                               path: str) -> None:
    e = entry(url, "2026-11-28T10:00:00Z")
    e["request"]["headers"][0]["value"] = host
    notes: list[str] = []
    (tx,) = list(read_har(_write(tmp_path, har([e])), notes))
    assert (tx.host, tx.path, tx.port, notes) == (host, path, 80, [])


def test_a_lone_surrogate_in_a_body_is_kept(tmp_path: Path) -> None:
    e = entry("http://a.example/up", "2026-11-28T10:00:00Z", "POST",
              {"mimeType": "text/plain", "text": f"imei={IMEI}\udcff"})
    (tx,) = list(read_har(_write(tmp_path, har([e])), []))
    assert tx.body == f"imei={IMEI}".encode() + b"\xed\xb3\xbf"


# -- consent marks (issue 15): a request to the magic host is an event, as it was live -----

def test_a_mark_in_a_har_is_a_consent_event_not_a_transmission(tmp_path: Path,
                                                              imei_profile: Path) -> None:
    path = _write(tmp_path, har([
        entry("http://kidaudit.mark/grant?categories=all-disclosed", "2026-11-28T10:00:00Z"),
        entry(f"http://api.example.cn/bind?imei={IMEI}", "2026-11-28T10:00:05Z"),
        entry("http://kidaudit.mark/phase?name=idle", "2026-11-28T10:00:09Z"),
        entry("http://kidaudit.mark/grant", "2026-11-28T10:00:10Z"),  # live answered 400
    ]))
    out = tmp_path / "out"
    analyze([path], load_profile(str(imei_profile)), None, out)
    doc = json.loads((out / "findings.json").read_text())
    assert [(e["action"], e["source"], e["ts"]) for e in doc["events"]] == [
        ("grant", "mark", "2026-11-28T10:00:00.000Z"),
        ("phase", "mark", "2026-11-28T10:00:09.000Z")]
    assert [t["host"] for t in doc["transmissions"]] == ["api.example.cn"]
    assert [(e["stage"], e["message"]) for e in doc["coverage"]["errors"]] == [
        ("mark", "ValueError: a grant mark needs categories=..., e.g. "
                 "categories=all-disclosed")]
    assert "kidaudit.mark" not in {f["recipient"] for f in doc["findings"]}
