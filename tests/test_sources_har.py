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

IMEI = "864536040123455"


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


def test_analyze_a_har_end_to_end(tmp_path: Path) -> None:
    path = _write(tmp_path, har([entry(f"http://api.example.cn/bind?imei={IMEI}",
                                       "2026-11-28T10:00:00Z")]))
    (tmp_path / "p.yaml").write_text(f'identifiers: {{imei: "{IMEI}"}}\n')
    out = tmp_path / "out"
    analyze([path], load_profile(str(tmp_path / "p.yaml")), None, out)
    doc = json.loads((out / "findings.json").read_text())
    assert [t["transport"] for t in doc["transmissions"]] == ["http"]
    assert {d["category"] for d in doc["detections"]} == {"identifier.imei"}
    assert (out / "session.har").is_file() and not (out / "flows.mitm").exists()
