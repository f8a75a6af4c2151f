"""The analysis side of a live capture (``Core``) on its own: messages in, replies out."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from mitmproxy import io
from mitmproxy.io import tnetstring

from auditor.marks import parse_words
from auditor.sources.live import (
    Core,
    Inline,
    Result,
    SessionBusy,
    Settings,
    hold_lock,
    settled,
)
from auditor.sources.mitm import raw_transmission
from auditor.store import Store
from tests.factories import http_flow

IMEI = "864536040123455"
PROFILE = f'identifiers: {{imei: "{IMEI}"}}\nfirst_party: [acme-watch.example]\n'


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "p.yaml").write_text(PROFILE)
    return Settings(str(tmp_path / "s"), str(tmp_path / "p.yaml"))


def _http(body: object, token: int = 1) -> tuple:
    return ("http", token, http_flow("http://api.acme-watch.example/r", 1000.0 + token,
                                     body).get_state(), None)


def _saved(session: Path) -> list:
    with open(session / "flows.mitm", "rb") as fh:
        return list(io.FlowReader(fh).stream())


@pytest.mark.parametrize(("marks", "body", "replied"), [
    (True, {"imei": IMEI}, True),  # a UI marks the flow: the result goes back
    (False, {"imei": IMEI}, True),  # no UI, but the first IMEI opens findings: alerts
    (True, {"hello": "world"}, False),  # nothing found, nothing to say
])
def test_an_http_flow_is_analysed_saved_and_answered_when_useful(settings, marks, body,
                                                                 replied) -> None:
    settings = Settings(settings.directory, settings.profile, marks=marks)
    core = Core(settings)
    replies = core.handle(_http(body))
    core.close()
    results = [r[1] for r in replies if r[0] == "result"]
    assert bool(results) == replied
    if results:
        assert results[0].token == 1 and results[0].tx_id == 1
        assert results[0].categories == ("identifier.imei",)
        assert all(a.startswith("[") and "tx #1" in a for a in results[0].alerts)
    (flow,) = _saved(Path(settings.directory))
    assert bool(flow.marked) == ("imei" in body)  # the flow file carries the marks
    store = Store.open_existing(Path(settings.directory))
    (obs,) = store.observations()
    store.close()
    assert obs.transmission.id == 1 and obs.transmission.url.endswith("/r")


def test_flows_on_one_connection_are_the_bytes_mitmproxy_would_write(settings) -> None:
    flows = [http_flow(f"http://api.acme-watch.example/r/{i}", 1000.0 + i, {"imei": IMEI})
             for i in range(3)]
    states = []
    for i, f in enumerate(flows):  # one keep-alive connection; it closes before the last
        f.client_conn, f.server_conn = flows[0].client_conn, flows[0].server_conn
        if i == 2:
            f.client_conn.timestamp_end = 2000.0
        states.append(f.get_state())
    core = Core(settings)
    for i, state in enumerate(states):
        core.handle(("http", i, state, None))
    core.close()
    written = (Path(settings.directory) / "flows.mitm").read_bytes()
    assert written == b"".join(tnetstring.dumps(s) for s in states)  # marks included
    saved = _saved(Path(settings.directory))
    ends = [s["client_conn"]["timestamp_end"] for s in states]
    assert ends[0] == ends[1] != 2000.0 == ends[2]
    assert [f.client_conn.timestamp_end for f in saved] == ends
    assert all(f.marked for f in saved)


def test_no_alert_twice_and_no_reply_without_a_ui(settings) -> None:
    core = Core(Settings(settings.directory, settings.profile, marks=False))
    first = core.handle(_http({"imei": IMEI}, 1))
    again = core.handle(_http({"imei": IMEI}, 2))
    core.close()
    assert [r[0] for r in first] == ["result"] and again == []


def test_a_batch_is_one_transaction_and_ends_with_finish(settings) -> None:
    core = Core(settings)
    messages = [_http({"imei": IMEI}, i) for i in range(1, 4)]
    raw = raw_transmission(http_flow("http://api.acme-watch.example/ws", 5.0), -1,
                           "websocket", json.dumps({"imei": IMEI}).encode(), 5.0)
    messages += [("tx", 9, raw), ("finish", "en")]
    replies = core.handle_batch(messages)
    assert replies[-1][0] == "finished" and replies[-1][1] > 0
    assert [r[1].tx_id for r in replies if r[0] == "result"] == [1, 2, 3, 4]  # numbered here
    doc = json.loads((Path(settings.directory) / "findings.json").read_text())
    assert len(doc["transmissions"]) == 4


@pytest.mark.parametrize(("bad", "stage", "answered"), [
    (("bogus",), "bogus", False),
    (("tx", 7, "not a transmission"), "analyze", True),
    (("event", None, False), "event", False),
])
def test_a_failing_message_in_a_batch_is_logged_counted_and_the_rest_go_on(
        settings, bad, stage, answered) -> None:
    core = Core(settings)
    replies = core.handle_batch([bad, _http({"imei": IMEI})])
    errors = core.session.store.errors()
    core.close()
    logs = [r for r in replies if r[0] == "log"]
    assert len(logs) == 1 and logs[0][2].startswith(f"kidaudit analysis: {bad[0]}: ")
    assert [e["stage"] for e in errors] == [stage]
    results = [r[1] for r in replies if r[0] == "result"]
    assert [r.tx_id for r in results if not r.error] == [1]  # the next one went on
    assert [r.token for r in results if r.error] == ([7] if answered else [])


def test_an_analysis_error_is_recorded_and_returned(settings) -> None:
    core = Core(settings)

    def broken(tx):
        raise RuntimeError("decoder exploded")

    core.session.pipeline.observe = broken
    (reply,) = core.handle(_http({"imei": IMEI}))
    errors = core.session.store.errors()
    core.close()
    result: Result = reply[1]
    assert result.error == "RuntimeError: decoder exploded"
    assert result.error_kind == "RuntimeError"
    assert errors == [{"transmission": 1, "stage": "analyze",
                       "message": "RuntimeError: decoder exploded"}]


def test_marks_from_another_process_are_polled_logged_and_saved(settings) -> None:
    now = [0.0]
    core = Core(settings, clock=lambda: now[0])
    other = Store.open_existing(Path(settings.directory))
    other.add_event(parse_words("grant", ["identifier"], 1.0, "cli"))
    other.close()
    logs = [r for r in core.handle(_http({"a": 1})) if r[0] == "log"]
    assert logs == [("log", logging.WARNING, "kidaudit: consent mark grant identifier")]
    now[0] = 0.1  # within POLL_S: the store is not asked again
    assert core.handle(("tx", None, raw_transmission(
        http_flow("http://x.example/", 1.0), -1, "websocket", b"{}", 1.0))) == []
    core.close()
    paths = [f.request.path for f in _saved(Path(settings.directory))]
    assert any(p.startswith("/grant") for p in paths)


def test_inline_sends_each_message_through_pickle(settings) -> None:
    got = []
    inline = Inline(settings, got.append)
    state = http_flow("http://api.acme-watch.example/r", 1.0, {"imei": IMEI}).get_state()
    inline.send(("http", 1, state, None))
    assert "request" in state  # the Core took apart its own copy, not ours
    finished = inline.finish("en")
    assert [r[0] for r in got] == ["result"] and finished[0] == "finished"


def test_one_writer_per_session_folder_and_readers_wait_for_it(tmp_path: Path) -> None:
    lock = hold_lock(tmp_path)
    with pytest.raises(SessionBusy, match="another capture is writing"):
        hold_lock(tmp_path)
    assert settled(tmp_path, 0.05) is False
    lock.close()
    assert settled(tmp_path, 0.05) is True
    assert settled(tmp_path / "never-captured", 0.05) is True


def test_a_worker_core_checkpoints_each_batch_in_its_transaction(settings) -> None:
    core = Core(settings, checkpoints=True)
    replies = core.handle_batch([_http({"imei": IMEI}, i) for i in range(1, 4)])
    replies += core.handle_batch([_http({"imei": IMEI}, 4)])
    meta = core.session.store.meta()
    core.close()
    assert [r for r in replies if r[0] == "committed"] == [("committed", 3), ("committed", 4)]
    size = (Path(settings.directory) / "flows.mitm").stat().st_size
    assert (meta["worker_handled"], meta["worker_flows_size"]) == ("4", str(size))


@pytest.mark.parametrize("torn", [b"", b"123:{4:imei;15:8645", b"\x00" * 5000])
def test_a_stand_in_resumes_at_the_dead_workers_last_commit(settings, torn) -> None:
    directory = Path(settings.directory)
    worker = Core(settings, checkpoints=True)
    worker.handle_batch([_http({"imei": IMEI}, i) for i in (1, 2)])
    worker.close()  # it died writing its next batch: part of a flow, never committed
    with open(directory / "flows.mitm", "ab") as fh:
        fh.write(torn)
    stand_in = Core(settings, resume=True)
    assert stand_in.resumed == 2
    stand_in.handle(_http({"imei": IMEI}, 3))
    stand_in.close()
    assert [f.request.path for f in _saved(directory)] == ["/r", "/r", "/r"]
    store = Store.open_existing(directory)
    assert [o.transmission.id for o in store.observations()] == [1, 2, 3]
    store.close()


def test_a_plain_start_never_cuts_the_flow_file(settings) -> None:
    directory = Path(settings.directory)
    worker = Core(settings, checkpoints=True)
    worker.handle_batch([_http({"imei": IMEI}, 1)])
    worker.close()
    inline = Core(settings)  # kidaudit_worker=false: no checkpoints after the worker's
    inline.handle(_http({"imei": IMEI}, 2))
    inline.close()
    again = Core(settings)  # a later capture on the same folder
    again.close()
    assert len(_saved(directory)) == 2
