"""The addon in mitmproxy's own test harness (taddons.context), flows from tflow.

The harness runs no proxy: each test calls ``running`` itself once the options are set, as
mitmproxy does after start-up, and sends each event to the addon as the
proxy would (``_hook``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import ctx
from mitmproxy.exceptions import OptionsError
from mitmproxy.hooks import all_hooks
from mitmproxy.http import Headers
from mitmproxy.test import taddons, tflow

from auditor.live import journal
from auditor.live.addon import KidAudit
from auditor.live.lock import hold_lock
from auditor.live.worker import Worker
from auditor.store import Store
from tests.factories import IMEI, WATCH_PROFILE_YAML, committed, wait_committed

PROFILE = WATCH_PROFILE_YAML


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(PROFILE)
    return path


def _flow(body: bytes = b"", path: str = "/", host: str = "api.acme-watch.example"):
    f = tflow.tflow(resp=True)
    f.request.host, f.request.path = host, path
    f.request.scheme, f.request.port = "https", 443
    f.request.headers = Headers(host=host, content_type="application/json")
    f.request.content = body
    return f


def _hook(addon, name: str, *args) -> None:
    """One mitmproxy event, delivered to the addon as the proxy does."""
    ctx.master.addons.invoke_addon_sync(addon, all_hooks[name](*args))


def _through(addon, flow) -> None:
    """A request and its response through the addon's hooks, as the proxy calls them."""
    _hook(addon, "request", flow)
    _hook(addon, "response", flow)


def _configured(tctx, addon, profile: Path, session: Path) -> None:
    """Options set, then the proxy "running": the analysis in the test's own process."""
    tctx.configure(addon, kidaudit_profile=str(profile), kidaudit_session=str(session),
                   kidaudit_worker=False)
    addon.running()


def _events(session: Path) -> list:
    store = Store.open_existing(session)
    try:
        return [ev for _, ev in store.events()]
    finally:
        store.close()


def _observations(session: Path) -> list:
    store = Store.open_existing(session)
    try:
        return store.observations()
    finally:
        store.close()


@contextlib.contextmanager
def _with_worker(profile: Path, session: Path) -> Iterator[tuple[object, Worker]]:
    """The addon configured and running under a running loop: its real worker process."""
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, kidaudit_profile=str(profile), kidaudit_session=str(session))
        addon.running()
        worker = addon.analysis
        assert isinstance(worker, Worker)
        yield addon, worker


def test_flow_with_personal_data_is_marked_commented_and_committed(tmp_path, profile):
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        flow = _flow(json.dumps({"imei": IMEI}).encode())
        _through(addon, flow)
        plain = _flow(b'{"hello": "world"}')
        _through(addon, plain)
        # Committed at once: another connection sees it before shutdown.
        other = Store.open_existing(tmp_path / "s")
        assert [len(o.detections) for o in other.observations()] == [1, 0]
        other.close()
        addon.done()
    assert flow.marked and flow.comment == "kidaudit: identifier.imei"
    assert not plain.marked and plain.comment == ""
    assert (tmp_path / "s" / "findings.json").is_file()


def test_the_proxys_modes_and_operator_are_the_reports_sign_off_facts(tmp_path, profile):
    """A lab running mitmdump with the addon itself gets them too, not only ``capture``."""
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mode=["reverse:tcp://127.0.0.1:5900@5900"],
                       kidaudit_operator="王工程师")
        _configured(tctx, addon, profile, tmp_path / "s")
        addon.done()
    capture = json.loads((tmp_path / "s" / "findings.json").read_text())["session"]["capture"]
    assert capture["modes"] == ["reverse:tcp://127.0.0.1:5900@5900"]
    assert capture["operator"] == "王工程师"


@pytest.mark.parametrize(("options", "message"), [
    ({"kidaudit_profile": "missing.yaml", "kidaudit_session": "S"}, "missing.yaml"),
    ({"kidaudit_profile": "P"}, "needs both"),
    ({"kidaudit_lang": "fr"}, "kidaudit_lang"),
    ({"kidaudit_standards": ["gbt41391-2022", "no-such"]}, "kidaudit_standards: unknown "
                                                           "standard 'no-such'"),
])
def test_bad_options_are_one_clear_error(tmp_path, profile, options, message):
    addon = KidAudit()
    options = {k: (str(profile) if v == "P" else str(tmp_path / v) if v == "S" else v)
               for k, v in options.items()}
    with taddons.context(addon) as tctx, pytest.raises(OptionsError, match=message):
        tctx.configure(addon, **options)


def test_analysis_error_is_counted_and_the_flow_passes_unchanged(tmp_path, profile, caplog):
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")

        def broken(tx):
            raise RuntimeError("decoder exploded")

        addon.analysis.core.session.pipeline.observe = broken  # a fault inside the core
        flow = _flow(json.dumps({"imei": IMEI}).encode())
        before = flow.get_state()
        _through(addon, flow)
        _through(addon, _flow(b"{}"))
        assert flow.get_state() == before
        logged = [r for r in caplog.records if "analysis error" in r.getMessage()]
        assert len(logged) == 1 and logged[0].levelname == "ERROR"  # logged once, counted twice
        addon.done()
    doc = json.loads((tmp_path / "s" / "findings.json").read_text())
    assert doc["coverage"]["analysis_errors"] == 2
    assert "decoder exploded" in doc["coverage"]["errors"][0]["message"]


def test_magic_host_is_answered_and_never_forwarded(tmp_path, profile):
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        flow = tflow.tflow()
        flow.request.host, flow.request.scheme, flow.request.port = "kidaudit.mark", "http", 80
        flow.request.path = "/grant?categories=all-disclosed&separate=location.precise"
        _hook(addon, "request", flow)
        assert flow.response is not None and flow.response.status_code == 200
        bad = tflow.tflow()
        bad.request.host, bad.request.path = "kidaudit.mark", "/grnt?categories=x"
        _hook(addon, "request", bad)
        assert bad.response.status_code == 400
        addon.done()
    events = _events(tmp_path / "s")
    assert [(e.action, e.categories, e.separate) for e in events] == [
        ("grant", ("all-disclosed",), ("location.precise",))]


def test_mark_command_and_polled_cli_marks_reach_the_ledger(tmp_path, profile, caplog):
    from auditor.marks import parse_words

    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        tctx.master.commands.call("kidaudit.mark", "phase", "idle")
        with pytest.raises(OptionsError, match="unknown mark action"):
            tctx.master.commands.call("kidaudit.mark", "grnt", "location")
        other = Store.open_existing(tmp_path / "s")
        other.add_event(parse_words("grant", ["identifier"], 1.0, "cli"))
        other.close()
        _through(addon, _flow(b"{}"))  # each message polls the store for new marks
        polled = [r.getMessage() for r in caplog.records if "consent mark" in r.getMessage()]
        addon.done()
    assert polled == ["kidaudit: consent mark phase idle",
                      "kidaudit: consent mark grant identifier"]
    actions = sorted((e.ts, e.action, e.source) for e in _events(tmp_path / "s"))
    assert [(a, s) for _, a, s in actions] == [("grant", "cli"), ("phase", "command")]


def test_the_probe_option_at_start_is_the_procedures_probe_step(tmp_path, profile):
    """``--tls-probe`` performs the probe step: the live status never asks for its mark."""
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, kidaudit_profile=str(profile), kidaudit_session=str(tmp_path / "s"),
                       kidaudit_worker=False, kidaudit_tls_probe=True,
                       kidaudit_standards=["en18031-2-2024"])
        assert addon._pending[0].tls_probe and addon._procedure.probe


def test_the_procedure_is_shown_at_start_and_as_each_mark_arrives(tmp_path, profile, caplog):
    """``capture --standard``: the steps and the first one at start, then the steps done
    and the next one after each mark."""
    caplog.set_level("INFO", logger="kidaudit")
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, kidaudit_profile=str(profile), kidaudit_session=str(tmp_path / "s"),
                       kidaudit_worker=False, kidaudit_standards=["gbt41391-2022"])
        assert addon._pending[0].standards == ("gbt41391-2022",)
        addon.running()
        started = [r.getMessage() for r in caplog.records
                   if r.getMessage().startswith("kidaudit: procedure:")]
        caplog.clear()
        _through(addon, _flow(b"{}"))
        tctx.master.commands.call("kidaudit.mark", "grant", "all-disclosed")
        after = [r.getMessage() for r in caplog.records
                 if r.getMessage().startswith(("kidaudit: procedure:", "kidaudit: consent"))]
        addon.done()
    assert started[0].startswith("kidaudit: procedure: Traffic before consent > Guardian")
    assert started[1].startswith("kidaudit: procedure: next step: Traffic before consent")
    assert after[0] == "kidaudit: consent mark grant all-disclosed"  # the mark, then its step
    assert after[1].startswith("kidaudit: procedure: steps done: ")
    assert "Guardian consent" in after[1]
    assert any(line.startswith("kidaudit: procedure: next step: Use every feature") and
               f"kidaudit mark --session {tmp_path / 's'} phase use" in line for line in after)


@pytest.mark.e2e
def test_a_worker_that_dies_while_writing_the_reports_shows_under_coverage(tmp_path, profile):
    """The worker killed after its last message and before ``done``: the proxy notices only
    when it asks for the reports. It writes them itself, and the report says why."""
    async def main() -> tuple[str, int]:
        with _with_worker(profile, tmp_path / "s") as (addon, worker):
            for i in range(3):
                _through(addon, _flow(json.dumps({"imei": IMEI, "seq": i}).encode()))
            wait_committed(tmp_path / "s", 3)  # idle when killed: nothing to quarantine
            os.kill(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait(timeout=30)  # dead; the loop has not run, so nothing has noticed
            addon.done()
            return type(addon.analysis).__name__, worker.proc.returncode

    assert asyncio.run(main()) == ("NoneType", -signal.SIGKILL)
    doc = json.loads((tmp_path / "s" / "findings.json").read_text())
    errors = [(e["stage"], e["message"]) for e in doc["coverage"]["errors"]]
    assert [k for k, m in errors if "while writing the reports" in m] == ["worker"], errors
    assert len(doc["transmissions"]) == 3  # each message once: committed or sent again


# Who takes over from a dead worker: a new worker, or, when none can start (a frozen
# mitmproxy, a missing Python), the proxy's own process; and what the log then says.
TAKE_OVERS = [
    (True, "a new analysis worker continues from the last commit"),
    (False, "analysis continues in the proxy's process, from the 1 messages the worker had "
            "not committed (1 it died analysing quarantined"),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("restarts", "says"), TAKE_OVERS, ids=["new-worker", "in-process"])
def test_the_message_a_worker_died_on_is_quarantined_never_run_again(
        tmp_path, profile, caplog, monkeypatch, restarts, says):
    """The worker dies analysing a message (as a runaway one is killed by the lab): what
    takes over resumes from the last commit, commits what came after that message, and
    lists that one under coverage instead of running it again (in the proxy's process it
    would stop mitmproxy's event loop)."""
    session = tmp_path / "s"

    async def main() -> None:
        with _with_worker(profile, session) as (addon, worker):
            if not restarts:
                monkeypatch.setattr("sys.executable", str(tmp_path / "no-python"))
            for i in range(3):
                _through(addon, _flow(json.dumps({"imei": IMEI}).encode(), path=f"/ok/{i}"))
            wait_committed(session, 3)
            os.kill(worker.proc.pid, signal.SIGSTOP)
            for path in ("/fatal", "/after"):
                _through(addon, _flow(json.dumps({"imei": IMEI}).encode(), path=path))
            store = Store.open_existing(session)
            offset = int(store.meta()["journal_offset"])
            store.close()
            (fatal, _), _, _ = journal.read(session / journal.JOURNAL_FILE, offset)
            marker = journal.BusyMarker(session)  # the worker was busy with it when it died
            marker.start(fatal.start)
            marker.close()
            os.kill(worker.proc.pid, signal.SIGKILL)
            for _ in range(3000):  # the event loop notices the death
                if addon.analysis is not worker:
                    break
                await asyncio.sleep(0.01)
            assert isinstance(addon.analysis, Worker) is restarts
            _through(addon, _flow(json.dumps({"imei": IMEI}).encode(), path="/later"))
            addon.done()

    asyncio.run(main())
    doc = json.loads((session / "findings.json").read_text())
    paths = [t["url"].split("example")[-1] for t in doc["transmissions"]]
    assert paths == ["/ok/0", "/ok/1", "/ok/2", "/after", "/later"]
    quarantined = [e["message"] for e in doc["coverage"]["errors"] if e["stage"] == "quarantine"]
    assert len(quarantined) == 1 and "not analysed again" in quarantined[0]
    died = [r.getMessage() for r in caplog.records if "analysis worker exited" in r.getMessage()]
    assert len(died) == 1 and says in died[0], died
    workers = [e["message"] for e in doc["coverage"]["errors"] if e["stage"] == "worker"]
    assert len(workers) == 1 and says in workers[0]


@pytest.mark.e2e
def test_a_journal_that_cannot_be_written_ends_the_capture_with_exit_3(tmp_path, profile,
                                                                      capsys, monkeypatch):
    """A full disk: the device's traffic still passes, the worker commits what it has, and
    the capture ends with one line and exit code 3."""
    import errno

    async def main() -> int:
        with _with_worker(profile, tmp_path / "s") as (addon, worker):
            _through(addon, _flow(json.dumps({"imei": IMEI}).encode()))

            def full(self, msg):
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(journal.Writer, "append", full)
            later = _flow(json.dumps({"imei": IMEI}).encode())
            _through(addon, later)  # forwarded, untouched
            assert addon.analysis is None and not later.marked
            with pytest.raises(SystemExit) as ended:
                addon.done()
            worker.proc.wait(timeout=30)  # it let go by itself
            return ended.value.code

    assert asyncio.run(main()) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("kidaudit: analysis lost for good: the journal cannot be written")
    assert "No space left on device" in line
    assert committed(tmp_path / "s") == 1


# A consent mark's name comes from whoever reaches the magic host: on the lab's terminal
# it must not clear the screen, retitle the window, forge a line or reverse the text.
HOSTILE_NAMES = [
    ("%1b%5b2J%1b%5d0%3bpwned%07", "\\x1b[2J\\x1b]0;pwned\\x07"),
    ("evil%e2%80%aegnp", "evil\\u202egnp"),
    ("idle%0akidaudit%3a%20forged", "idle\\x0akidaudit: forged"),
    ("idle", "idle"),
]


@pytest.mark.parametrize(("name", "shown"), HOSTILE_NAMES)
def test_device_text_reaches_the_log_with_its_control_characters_escaped(tmp_path, profile,
                                                                        caplog, name, shown):
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        flow = tflow.tflow()
        flow.request.host, flow.request.scheme, flow.request.port = "kidaudit.mark", "http", 80
        flow.request.path = f"/phase?name={name}"
        _hook(addon, "request", flow)
        assert flow.response is not None and flow.response.status_code == 200
        addon.done()
    lines = [r.getMessage() for r in caplog.records if "consent mark" in r.getMessage()]
    assert lines == [f"kidaudit: consent mark phase {shown}"]


@pytest.mark.e2e
def test_analysis_lost_for_good_ends_the_capture_with_exit_3(tmp_path, profile, capsys):
    """The worker dies and the proxy cannot take over (another process holds the folder):
    the device's traffic still passes, the log says so at once, and the capture ends with
    one line and exit code 3 instead of reports that silently lack the rest."""
    async def main() -> int:
        with _with_worker(profile, tmp_path / "s") as (addon, worker):
            _through(addon, _flow(json.dumps({"imei": IMEI}).encode()))
            os.kill(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait(timeout=30)
            intruder = hold_lock(tmp_path / "s")
            try:
                with pytest.raises(SystemExit) as ended:
                    addon.done()
            finally:
                intruder.close()
            later = _flow(json.dumps({"imei": IMEI}).encode())
            _through(addon, later)  # still forwarded, untouched
            assert not later.marked
            return ended.value.code

    assert asyncio.run(main()) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("kidaudit: analysis lost for good: the worker exited with code -9")
    assert "another capture is writing to this session folder" in line


# -- raw transports: TCP, UDP, WebSocket, DNS, TLS ------------------------------------------

LK = b"[3G*8645360401*0009*LK,0,0,53]"
UD = (b"[3G*8645360401*0040*UD,190723,190707,A,39.983120,N,116.307910,E,8.24,127.9,21.0,5,"
      b"100,53,0,0,00000000,0,0,58.0]")


def _tx_rows(session: Path) -> list[tuple]:
    store = Store.open_existing(session)
    rows = [(o.transmission.transport, o.transmission.direction, o.transmission.inspected,
             o.tags) for o in store.observations()]
    store.close()
    return rows


def test_tcp_stream_is_cut_into_frames_both_ways(tmp_path, profile):
    from mitmproxy import tcp

    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        flow = tflow.ttcpflow(messages=[])
        pieces = [(True, LK + UD[:30]), (True, UD[30:]), (False, b"[SG*8645360401*0007*MONITOR]"),
                  (True, b"[3G*" + IMEI.encode() + b"*0002*LK]")]
        for from_client, data in pieces:
            flow.messages.append(tcp.TCPMessage(from_client, data))
            _hook(addon, "tcp_message", flow)
        _hook(addon, "tcp_end", flow)
        addon.done()
    rows = _tx_rows(tmp_path / "s")
    assert [(t, d) for t, d, _, _ in rows] == [("tcp", "up"), ("tcp", "up"), ("tcp", "down"),
                                               ("tcp", "up")]
    assert "command:MONITOR" in rows[2][3]
    assert flow.marked and "identifier.imei" in flow.comment


def test_udp_websocket_and_dns_messages_are_transmissions(tmp_path, profile):
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        udp_flow = tflow.tudpflow()
        udp_flow.messages = udp_flow.messages[:1]
        _hook(addon, "udp_message", udp_flow)
        ws = tflow.twebsocketflow()
        for i in range(len(ws.websocket.messages)):
            view = ws.websocket.messages[:i + 1]
            saved, ws.websocket.messages = ws.websocket.messages, view
            _hook(addon, "websocket_message", ws)
            ws.websocket.messages = saved
        client_sends = sum(m.from_client for m in ws.websocket.messages)
        dns_flow = tflow.tdnsflow(resp=True)
        _hook(addon, "dns_request", dns_flow)
        _hook(addon, "dns_response", dns_flow)
        addon.done()
    rows = [t for t, _, _, _ in _tx_rows(tmp_path / "s")]
    assert rows.count("udp") == 1 and rows.count("websocket") == client_sends
    assert rows.count("dns") == 1


def test_pinned_host_is_uninspected_and_passed_through_afterwards(tmp_path, profile):
    from mitmproxy import tls
    from mitmproxy.proxy.context import Context

    from tests.test_payload import client_hello

    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")

        def hello_data():
            client = tflow.tclient_conn()
            client.sni = "pinned.example.cn"
            context = Context(client, tctx.options)
            context.server = tflow.tserver_conn()
            raw = client_hello("pinned.example.cn", ciphers=(0x1301, 0x000A), record=False)
            return tls.ClientHelloData(context, tls.ClientHello(raw[4:]))

        first = hello_data()
        _hook(addon, "tls_clienthello", first)
        assert not first.ignore_connection
        _hook(addon, "tls_failed_client", tls.TlsData(first.context.client, first.context))
        second = hello_data()
        _hook(addon, "tls_clienthello", second)
        assert second.ignore_connection  # later connections to it pass untouched
        addon.done()
    txs = [o.transmission for o in _observations(tmp_path / "s")]
    assert [(t.transport, t.inspected, t.sni) for t in txs] == [
        ("tls", False, "pinned.example.cn")] * 2
    assert txs[0].tls_ciphers == ("TLS_AES_128_GCM_SHA256", "TLS_RSA_WITH_3DES_EDE_CBC_SHA")
    assert txs[0].tls_versions == ("TLSv1.3", "TLSv1.2")
    doc = json.loads((tmp_path / "s" / "findings.json").read_text())
    reasons = {u["reason"] for u in doc["coverage"]["uninspected"]}
    assert any("rejected the interception certificate" in r for r in reasons)


def test_https_requests_carry_the_client_hello_and_decrypted(tmp_path, profile):
    from mitmproxy import tls
    from mitmproxy.proxy.context import Context

    from tests.test_payload import client_hello

    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        flow = _flow(b"{}")
        context = Context(flow.client_conn, tctx.options)
        context.server = flow.server_conn
        raw = client_hello("api.acme-watch.example", ciphers=(0xC012,), record=False)
        _hook(addon, "tls_clienthello", tls.ClientHelloData(context, tls.ClientHello(raw[4:])))
        _through(addon, flow)
        _hook(addon, "client_disconnected", flow.client_conn)
        later = _flow(b"{}")  # a new connection that reuses the id: no ClientHello known
        later.client_conn = flow.client_conn
        _through(addon, later)
        addon.done()
    obs, after = _observations(tmp_path / "s")
    assert obs.transmission.tls_ciphers == ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",)
    assert obs.transmission.decrypted is flow.client_conn.tls_established
    assert after.transmission.tls_ciphers == ()  # forgotten with its connection


def test_decrypted_tls_on_a_device_that_does_not_trust_the_ca_is_flagged(tmp_path):
    path = tmp_path / "untrusting.yaml"
    path.write_text(PROFILE + "device: {name: w, ca_trusted: false}\n")
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, path, tmp_path / "s")
        flow = _flow(b"{}")
        flow.client_conn.timestamp_tls_setup = 946681201.0  # the proxy's TLS was accepted
        _through(addon, flow)
        addon.done()
    doc = json.loads((tmp_path / "s" / "findings.json").read_text())
    assert "NO_CERT_VALIDATION" in {f["rule"] for f in doc["findings"]}


def test_a_tcp_streams_frame_buffers_end_with_it(tmp_path, profile):
    """A watch frame cut short when its connection ends is not joined to the bytes of a
    later flow that reuses the id: that flow is read afresh."""
    from mitmproxy import tcp

    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        flow = tflow.ttcpflow(messages=[])
        flow.messages.append(tcp.TCPMessage(True, LK[:10]))  # half a frame, buffered
        _hook(addon, "tcp_message", flow)
        _hook(addon, "tcp_end", flow)
        flow.messages.append(tcp.TCPMessage(True, b"plain bytes"))
        _hook(addon, "tcp_message", flow)
        addon.done()
    assert [o.transmission.size for o in _observations(tmp_path / "s")] == [len(b"plain bytes")]


def test_the_session_starts_when_the_proxy_runs_not_when_it_is_configured(tmp_path, profile):
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, kidaudit_profile=str(profile),
                       kidaudit_session=str(tmp_path / "s"), kidaudit_worker=False)
        assert addon.analysis is None and not (tmp_path / "s").exists()
        _through(addon, _flow(b"{}"))  # before running: passes, nothing recorded
        addon.running()
        assert addon.analysis is not None and (tmp_path / "s" / "session.sqlite").is_file()
        _through(addon, _flow(json.dumps({"imei": IMEI}).encode()))
        addon.done()
    assert len(_observations(tmp_path / "s")) == 1


def test_options_changed_on_a_running_proxy_start_the_new_session_at_once(tmp_path, profile):
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        tctx.configure(addon, kidaudit_session=str(tmp_path / "t"))
        _through(addon, _flow(json.dumps({"imei": IMEI}).encode()))
        addon.done()
    assert len(_observations(tmp_path / "t")) == 1


def test_a_session_that_cannot_start_stops_mitmproxy_at_start_up_in_one_line(
        tmp_path, profile, monkeypatch, capsys):
    """Under mitmdump or mitmweb (their ``errorcheck`` addon is there) a session that cannot
    open when the proxy starts running is one line and exit code 2, as a bad option is."""
    from mitmproxy.addons.errorcheck import ErrorCheck

    from auditor.live.channel import Channel
    from auditor.live.worker import WorkerError

    def refused(self, settings, **kwargs):
        raise WorkerError("kidaudit analysis worker: the disk said no\x1b[2J")

    monkeypatch.setattr(Channel, "start", refused)
    addon = KidAudit()
    checker = ErrorCheck()
    try:
        with taddons.context(checker, addon) as tctx:
            tctx.configure(addon, kidaudit_profile=str(profile),
                           kidaudit_session=str(tmp_path / "s"))
            with pytest.raises(SystemExit) as ended:
                addon.running()
    finally:
        checker.finish()
    assert ended.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "kidaudit: kidaudit_session: kidaudit analysis worker: the disk said no\\x1b[2J"]


def test_flows_without_findings_do_not_pile_up_and_later_flows_are_still_marked(
        tmp_path, profile, monkeypatch):
    """A result comes back only for a flow with something to show, so the handles of the
    others are forgotten at a ceiling; a flow after that is marked as before."""
    from auditor.live import channel

    monkeypatch.setattr(channel, "PENDING_MARKS", 2)
    addon = KidAudit()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        for _ in range(5):
            _through(addon, _flow(b'{"hello": "world"}'))
        flow = _flow(json.dumps({"imei": IMEI}).encode())
        _through(addon, flow)
        addon.done()
    assert flow.marked and flow.comment == "kidaudit: identifier.imei"
