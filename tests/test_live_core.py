"""The analysis side of a live capture (``Core``) on its own: messages in, replies out."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from mitmproxy import io
from mitmproxy.io import tnetstring

from auditor.live import journal
from auditor.live.core import CONN_MEMO, Core, Inline, recover
from auditor.live.lock import hold_lock
from auditor.live.protocol import (
    Committed,
    Consent,
    Finish,
    Finished,
    HttpFlow,
    Log,
    Raw,
    Result,
    Settings,
)
from auditor.live.states import ConnectionStates, flow_state
from auditor.marks import parse_words
from auditor.mask import mask
from auditor.model import ConsentEvent
from auditor.rules import Aggregator, RuleContext
from auditor.sources.mitm import raw_transmission
from auditor.store import Store
from tests.factories import IMEI, http_flow


@pytest.fixture
def settings(watch_profile: Path, session_dir: Path) -> Settings:
    """A session judged by the lab's watch profile (``tests/conftest.py``)."""
    return Settings(str(session_dir), str(watch_profile))


def _http(body: object, token: int = 1) -> HttpFlow:
    return HttpFlow(token, http_flow("http://api.acme-watch.example/r", 1000.0 + token,
                                     body).get_state())


def _results(replies: list) -> list[Result]:
    return [r for r in replies if isinstance(r, Result)]


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
    results = _results(replies)
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
        core.handle(HttpFlow(i, state))
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
    assert [type(r) for r in first] == [Result] and again == []


def test_an_alerts_recipient_is_masked_when_the_device_put_a_seeded_value_there(
        settings) -> None:
    """An IMEI as a host label is the recipient's domain: the terminal shows it masked."""
    core = Core(settings)
    msg = HttpFlow(1, http_flow(f"http://{IMEI}.cn/r", 1001.0, {"n": 1}).get_state())
    (reply,) = core.handle(msg)
    core.close()
    alerts = reply.alerts
    assert alerts and all(IMEI not in a for a in alerts)
    assert any(f"-> {mask(IMEI, 'identifier.imei')}.cn " in a for a in alerts), alerts


def test_a_batch_is_one_transaction_and_ends_with_finish(settings) -> None:
    core = Core(settings)
    messages = [_http({"imei": IMEI}, i) for i in range(1, 4)]
    raw = raw_transmission(http_flow("http://api.acme-watch.example/ws", 5.0), -1,
                           "websocket", json.dumps({"imei": IMEI}).encode(), 5.0)
    messages += [Raw(9, raw), Finish("en")]
    replies = core.handle_batch(messages)
    assert isinstance(replies[-1], Finished) and replies[-1].findings > 0
    assert [r.tx_id for r in _results(replies)] == [1, 2, 3, 4]  # numbered here
    doc = json.loads((Path(settings.directory) / "findings.json").read_text())
    assert len(doc["transmissions"]) == 4


@pytest.mark.parametrize("standards", [("coppa-312",), ("gbt41391-2022", "coppa-312")])
def test_the_capture_reports_carry_its_standards_and_remember_them(settings, standards
                                                                   ) -> None:
    """``capture --standard``: the end reports' conformance tables, and the session's meta
    (a resumed capture, or kidaudit report, uses them again)."""
    core = Core(replace(settings, standards=standards))
    core.handle_batch([_http({"imei": IMEI}), Finish("en")])
    doc = json.loads((Path(settings.directory) / "findings.json").read_text())
    assert [t["id"] for t in doc["conformance"]] == list(standards)
    again = Core(replace(settings, resume=True))
    assert again._standards == standards
    again.close()


class Bogus:
    """Not a message of the protocol (a journal written by some other program)."""

    kind = "bogus"


@pytest.mark.parametrize(("bad", "stage", "answered"), [
    (Bogus(), "bogus", False),
    (Raw(7, "not a transmission"), "analyze", True),
    (Consent(None), "event", False),
])
def test_a_failing_message_in_a_batch_is_logged_counted_and_the_rest_go_on(
        settings, bad, stage, answered) -> None:
    core = Core(settings)
    replies = core.handle_batch([bad, _http({"imei": IMEI})])
    errors = core.session.store.errors()
    core.close()
    logs = [r for r in replies if isinstance(r, Log)]
    assert len(logs) == 1 and logs[0].text.startswith(f"kidaudit analysis: {bad.kind}: ")
    assert [e["stage"] for e in errors] == [stage]
    results = _results(replies)
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
    result: Result = reply
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
    logs = [r for r in core.handle(_http({"a": 1})) if isinstance(r, Log)]
    assert logs[0] == Log(logging.WARNING, "kidaudit: consent mark grant identifier")
    # then where the capture is in its procedure (tests/test_standards_procedure.py)
    assert Log(logging.INFO, "kidaudit: procedure: steps done: Guardian consent") in logs
    now[0] = 0.1  # within POLL_S: the store is not asked again
    assert core.handle(Raw(None, raw_transmission(
        http_flow("http://x.example/", 1.0), -1, "websocket", b"{}", 1.0))) == []
    core.close()
    paths = [f.request.path for f in _saved(Path(settings.directory))]
    assert any(p.startswith("/grant") for p in paths)


def test_inline_answers_at_once_and_leaves_the_proxys_connection_states_alone(settings
                                                                             ) -> None:
    """In the proxy's process the message is not copied: the ``Core`` reads the flow's
    state as the proxy made it, sharing its connections' states, and must not change them
    (the next flow on the connection reuses them)."""
    got = []
    inline = Inline(settings, got.append)
    conns = ConnectionStates()
    flow = http_flow("http://api.acme-watch.example/r", 1.0, {"imei": IMEI})
    state = flow_state(flow, conns)
    client, before = state["client_conn"], dict(state["client_conn"])
    inline.send(HttpFlow(1, state))
    assert "request" in state and client == before  # read, not taken apart
    assert flow_state(flow, conns)["client_conn"] is client
    finished = inline.finish("en")
    assert [type(r) for r in got] == [Result] and isinstance(finished, Finished)


def _journal(directory: Path, messages: list) -> list[int]:
    """Messages appended as the proxy appends them; returns where each record starts."""
    writer = journal.Writer(directory)
    starts = []
    for msg in messages:
        starts.append(writer.end)
        writer.append(msg)
    writer.close()
    return starts


def _ids(directory: Path) -> list[int]:
    store = Store.open_existing(directory)
    try:
        return [o.transmission.id for o in store.observations()]
    finally:
        store.close()


def test_each_batch_checkpoints_the_journal_and_the_flow_file_in_its_transaction(settings
                                                                                 ) -> None:
    directory = Path(settings.directory)
    core = Core(settings)
    _journal(directory, [_http({"imei": IMEI}, i) for i in range(1, 5)])
    (first, second) = journal.read(core.journal_path, 0, limit=1)[0], None
    replies = core.handle_records(first)
    rest, end, damaged = journal.read(core.journal_path, core.journal_offset)
    replies += core.handle_records(rest)
    meta = core.session.store.meta()
    core.close()
    assert second is None and not damaged
    assert [r for r in replies if isinstance(r, Committed)] == [Committed(first[-1].end),
                                                                Committed(end)]
    size = (directory / "flows.mitm").stat().st_size
    assert (meta["journal_offset"], meta["worker_flows_size"]) == (str(end), str(size))


TORN = [b"", b"123:{4:imei;15:8645", b"\x00" * 5000]


@pytest.mark.parametrize("torn", TORN)
def test_a_new_core_commits_the_journal_beyond_the_last_commit_once(settings, torn) -> None:
    """Proxy and worker both killed: two messages committed, a third half-written to
    ``flows.mitm`` in a batch that never committed, two more only in the journal."""
    directory = Path(settings.directory)
    worker = Core(settings)
    _journal(directory, [_http({"imei": IMEI}, i) for i in (1, 2)])
    worker.handle_records(journal.read(worker.journal_path, 0)[0])
    worker.close()
    with open(directory / "flows.mitm", "ab") as fh:
        fh.write(torn)
    _journal(directory, [_http({"imei": IMEI}, i) for i in (3, 4, 5)])
    again = Core(settings)
    assert (again.recovered, again.quarantined) == (3, 0)
    again.handle(_http({"imei": IMEI}, 6))
    again.close()
    assert [f.request.timestamp_start for f in _saved(directory)] == [
        1000.0 + i for i in range(1, 7)]
    assert _ids(directory) == [1, 2, 3, 4, 5, 6]
    assert Core(settings).recovered == 0  # committed: never analysed twice


@pytest.mark.parametrize(("tail", "cut"), [
    (b"KJ\x00\x00\x01\x00", True),  # a header promising more than was written
    (b"KJ\x00\x00\x00\x03\x00\x00\x00\x00abc", True),  # a payload that fails its CRC
    (b"", False),
])
def test_a_torn_tail_is_cut_off_before_anything_is_appended(settings, tail, cut) -> None:
    directory = Path(settings.directory)
    Core(settings).close()
    _journal(directory, [_http({"imei": IMEI}, 1)])
    with open(directory / journal.JOURNAL_FILE, "ab") as fh:
        fh.write(tail)
    core = Core(settings)
    size = journal.size_of(core.journal_path)
    errors = [e["stage"] for e in core.session.store.errors()]
    core.close()
    _journal(directory, [_http({"imei": IMEI}, 2)])  # the next capture appends cleanly
    assert Core(settings).recovered == 1
    assert (size, errors) == (core.journal_offset, ["journal"] if cut else [])
    assert _ids(directory) == [1, 2]


@pytest.mark.parametrize(("in_proxy", "take_over", "attempts", "quarantined"), [
    (True, True, 1, 1),  # the proxy's stand-in never runs what a worker died on
    (False, True, 1, 1),  # nor does a new worker taking over from the dead one
    (False, False, 1, 0),  # elsewhere (a report, a resumed capture's worker) it gets a
    #                        second chance
    (False, False, 2, 1),  # ... but not a third
])
def test_a_message_an_analysis_died_on_is_quarantined(settings, in_proxy, take_over,
                                                      attempts, quarantined) -> None:
    directory = Path(settings.directory)
    Core(settings).close()
    starts = _journal(directory, [_http({"imei": IMEI}, i) for i in (1, 2, 3)])
    marker = journal.BusyMarker(directory)
    for _ in range(attempts):  # the analysis died in the second message, this many times
        marker.start(starts[1])
    marker.close()
    core = Core(replace(settings, take_over=take_over), in_proxy=in_proxy)
    errors = [e["message"] for e in core.session.store.errors() if e["stage"] == "quarantine"]
    core.close()
    assert (core.recovered, core.quarantined, len(errors)) == (3 - quarantined, quarantined,
                                                                quarantined)
    assert len(_saved(directory)) == 3  # the evidence is kept either way
    assert len(_ids(directory)) == 3 - quarantined
    if quarantined:
        assert f"journal offset {starts[1]}" in errors[0] and "not analysed again" in errors[0]


def test_recover_commits_what_both_killed_processes_left(settings) -> None:
    directory = Path(settings.directory)
    Core(settings).close()
    assert recover(directory) == 0
    _journal(directory, [_http({"imei": IMEI}, i) for i in (1, 2)])
    lock = hold_lock(directory)  # a capture still writes: not touched
    assert recover(directory) is None
    lock.close()
    assert recover(directory) == 2
    assert recover(directory) == 0
    assert _ids(directory) == [1, 2]


@pytest.mark.parametrize(("meta", "cut"), [
    ({"worker_handled": "0", "worker_flows_size": "0"}, False),  # a session from before the
    #   journal: its in-process commits recorded no length, so its file is never cut
    ({"journal_offset": "0", "worker_flows_size": "0"}, True),  # every commit records it
])
def test_the_flow_file_is_cut_back_only_where_every_commit_records_its_length(settings, meta,
                                                                            cut) -> None:
    import sqlite3

    directory = Path(settings.directory)
    core = Core(settings)
    core.handle(_http({"imei": IMEI}, 1))
    core.close()
    db = sqlite3.connect(directory / "session.sqlite")
    with db:
        db.execute("DELETE FROM meta WHERE key IN ('journal_offset', 'worker_flows_size')")
        db.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
    db.close()
    Core(settings).close()
    assert len(_saved(directory)) == (0 if cut else 1)


def test_a_journal_written_before_the_typed_protocol_is_still_recovered(settings) -> None:
    """kidaudit 0.1 journaled tuples: a capture interrupted under it, then recovered after
    an upgrade, loses nothing (an unknown tuple is counted under coverage, not analysed)."""
    directory = Path(settings.directory)
    Core(settings).close()
    old = [("http", 7, _http({"imei": IMEI}, 1).state, None),
           ("event", ConsentEvent(ts=1001.5, action="grant", categories=("identifier",)),
            True),
           ("http", None, _http({"imei": IMEI}, 2).state, None),
           ("mystery", 1)]
    _journal(directory, old)
    assert recover(directory) == 4
    store = Store.open_existing(directory)
    try:
        events, errors = store.events(), store.errors()
    finally:
        store.close()
    assert _ids(directory) == [1, 2]
    assert [ev.action for _, ev in events] == ["grant"]
    assert any("unknown message 'mystery'" in e["message"] for e in errors)


def test_recover_keeps_the_sign_off_facts_the_capture_recorded(settings) -> None:
    """``kidaudit report`` on a killed capture, perhaps on another host: the clock state and
    versions a lab signs are the capturing host's, not the host that commits the rest."""
    directory = Path(settings.directory)
    core = Core(replace(settings, modes=("regular",), operator="Li Lab"))
    core.session.store.set_meta(clock_sync="synchronized", python_version="3.11.0")
    core.close()
    _journal(directory, [_http({"imei": IMEI}, 1)])
    assert recover(directory) == 1
    store = Store.open_existing(directory)
    try:
        meta = store.meta()
    finally:
        store.close()
    assert (meta["capture_modes"], meta["operator"]) == ("regular", "Li Lab")
    assert (meta["clock_sync"], meta["python_version"]) == ("synchronized", "3.11.0")


def test_the_live_rules_hold_a_window_of_messages_not_the_session(settings) -> None:
    """A soak's worker: what the Core and its alerts hold after many messages is a window
    and the open findings' facts; the messages before the window are read back from the
    store when a rule hits them (here: the maker's 29 carriers of the IMEI, linked when a
    tracker receives it), and the findings are those of keeping every message."""
    core = Core(Settings(settings.directory, settings.profile, marks=False))
    session = core.session
    ctx = RuleContext(session.profile, session.ledger)
    session.aggregator = Aggregator(ctx, recall=session.store.observation, window=8)
    for i in range(1, 41):
        host = "log.tracker.example" if i == 30 else "api.acme-watch.example"
        state = http_flow(f"http://{host}/r?n={i}", 1000.0 + i, {"imei": IMEI}).get_state()
        core.handle(HttpFlow(i, state))
    held = session.aggregator.footprint()
    assert held["observations"] == 8 and held["memo"] < 8  # no carriers kept once linked
    assert core._marks == {} and len(core._conn_bytes) <= CONN_MEMO
    everything = Aggregator(ctx)
    everything.extend(session.store.observations())
    linked = {f.recipient: f.transmissions for f in session.aggregator.findings()
              if f.rule == "CROSS_SERVICE_LINKING"}
    core.close()
    assert session.aggregator.findings() == everything.findings()
    assert linked["acme-watch.example"] == tuple(i for i in range(1, 41) if i != 30)
