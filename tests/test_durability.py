"""Nothing lost (issue #7): ``mitmdump -s addons/kidaudit.py`` killed with SIGKILL in the
middle of a session driven by a real client keeps every transmission the proxy had
finished in session.sqlite, and ``kidaudit analyze DIR/flows.mitm`` reproduces the
findings of the transmissions that reached the flow file, even when the file is cut in
the middle of a record. The analysis worker killed instead of the proxy: the traffic goes
on, and so does the analysis, in the proxy's process."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mitmproxy import io
from mitmproxy.exceptions import FlowReadException
from typer.testing import CliRunner

from auditor.cli import app
from auditor.demo.cloud import LocalCloud
from auditor.live.core import recover
from auditor.live.lock import settled
from auditor.rules import RuleContext, evaluate
from auditor.session import reopen
from tests.factories import IMEI, PHONE_DIGITS, wait_committed

pytestmark = [pytest.mark.timeout(180), pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[1]
PROFILE = f"""device: {{name: "durable watch"}}
identifiers: {{imei: "{IMEI}", phone: "+{PHONE_DIGITS}"}}
location: {{lat: 39.98312, lon: 116.30791}}
first_party: [acme-watch.example]
jurisdiction: CN
"""
KILL_AFTER = 25  # responses the client has received when the proxy is killed


@dataclass
class Killed:
    session: Path
    profile: Path
    completed: list[int] = field(default_factory=list)  # request numbers answered 200


def _request(i: int) -> tuple[str, bytes]:
    """A mix of what a watch sends: identifiers in JSON, a phone in the query, location."""
    kind = i % 3
    if kind == 0:
        return f"/t/{i}/register", json.dumps({"imei": IMEI, "seq": i}).encode()
    if kind == 1:
        return f"/t/{i}/bind?phone={PHONE_DIGITS}", b""
    return f"/t/{i}/loc", json.dumps({"lat": "39.98312", "lon": "116.30791"}).encode()


def _drive(port: int, target: tuple[str, int], out: Killed, stop: threading.Event) -> None:
    """A real keep-alive client sending until the proxy dies under it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = 0
    try:
        while not stop.is_set() and i < 10_000:
            path, body = _request(i)
            conn.request("POST", f"http://{target[0]}:{target[1]}{path}", body,
                         {"content-type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                out.completed.append(i)
            i += 1
    except (OSError, http.client.HTTPException):
        pass  # the proxy was killed mid-request: that request did not finish
    finally:
        conn.close()


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Killed:
    tmp = tmp_path_factory.mktemp("durable")
    profile = tmp / "p.yaml"
    profile.write_text(PROFILE)
    out = Killed(tmp / "session", profile)
    log = tmp / "mitmdump.log"
    mitmdump = Path(sys.executable).with_name("mitmdump")
    with LocalCloud() as cloud, open(log, "w") as fh:
        proc = subprocess.Popen(
            [str(mitmdump), "-s", str(ROOT / "addons" / "kidaudit.py"), "--listen-host",
             "127.0.0.1", "--listen-port", "0", "--set", f"confdir={tmp / 'conf'}",
             "--set", "flow_detail=0", "--set", f"kidaudit_profile={profile}",
             "--set", f"kidaudit_session={out.session}"],
            stdout=fh, stderr=subprocess.STDOUT)
        try:
            port = _wait_for_port(proc, log)
            stop = threading.Event()
            client = threading.Thread(target=_drive, args=(port, cloud.http_addr, out, stop))
            client.start()
            deadline = time.monotonic() + 60
            while len(out.completed) < KILL_AFTER and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)  # mid-session: the client is still sending
            answered = len(out.completed)  # snapshot: nothing answered after the kill counts
            proc.wait(timeout=10)
            # The worker outlives the proxy, commits what was handed over, and lets go.
            assert settled(out.session, 30)
            stop.set()
            client.join(timeout=20)
            del out.completed[answered:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(out.completed) >= KILL_AFTER, log.read_text()[-2000:]
    assert not (out.session / "findings.json").exists()  # it really died before shutdown
    return out


def _wait_for_port(proc: subprocess.Popen, log: Path) -> int:
    """The proxy's port, once it listens and its session has started (the addon starts it
    in ``running``, just after the servers are up): its worker is there from then on."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text()
        m = re.search(r"listening at .*:(\d+)", text)
        if m and "kidaudit: session " in text:
            return int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"mitmdump did not start: {log.read_text()[-2000:]}")


def _seq(url: str) -> int:
    m = re.search(r"/t/(\d+)/", url)
    assert m, url
    return int(m.group(1))


def _flows_in_file(path: Path) -> list:
    flows: list = []
    # a record cut by the kill ends the reading: the flows before it count
    with open(path, "rb") as fh, contextlib.suppress(FlowReadException):
        flows.extend(io.FlowReader(fh).stream())
    return flows


def _summary(doc: dict) -> set[tuple[str, str, tuple[str, ...], int]]:
    return {(f["rule"], f["recipient"], tuple(f["categories"]), f["count"])
            for f in doc["findings"]}


def _live_summary(session: Path, seqs: set[int]) -> set[tuple[str, str, tuple[str, ...], int]]:
    """The findings of the killed session, restricted to the given transmissions."""
    store, profile, ledger = reopen(session)
    try:
        obs = [o for o in store.observations() if _seq(o.transmission.url) in seqs]
    finally:
        store.close()
    return {(f.rule, f.recipient, tuple(f.categories), f.count)
            for f in evaluate(obs, RuleContext(profile, ledger))}


def test_every_answered_request_is_in_session_sqlite(killed: Killed) -> None:
    store, _, _ = reopen(killed.session)
    try:
        obs = store.observations()
    finally:
        store.close()
    stored = {_seq(o.transmission.url) for o in obs}
    missing = sorted(set(killed.completed) - stored)
    assert not missing, f"answered but not committed: {missing}"
    with_imei = {_seq(o.transmission.url) for o in obs
                 if "identifier.imei" in o.categories}
    assert {i for i in killed.completed if i % 3 == 0} <= with_imei  # analysed, not just kept


def test_analyze_of_the_flow_file_reproduces_its_findings(killed: Killed, tmp_path) -> None:
    flows_file = killed.session / "flows.mitm"
    in_file = {_seq(f.request.url) for f in _flows_in_file(flows_file)}
    assert in_file and in_file <= set(killed.completed) | {max(killed.completed) + 1}
    out = tmp_path / "offline"
    result = CliRunner().invoke(app, ["analyze", str(flows_file), "--profile",
                                      str(killed.profile), "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "findings.json").read_text())
    assert {_seq(t["url"]) for t in doc["transmissions"]} == in_file
    assert doc["findings"], "the session carried identifiers: there must be findings"
    assert _summary(doc) == _live_summary(killed.session, in_file)


def test_flow_file_cut_mid_record_is_analysed_up_to_the_cut(killed: Killed, tmp_path) -> None:
    data = (killed.session / "flows.mitm").read_bytes()
    ends = []  # byte offset after each complete record
    with open(killed.session / "flows.mitm", "rb") as fh, \
            contextlib.suppress(FlowReadException):
        for _ in io.FlowReader(fh).stream():
            ends.append(fh.tell())
    assert len(ends) >= 10
    cut = (ends[-3] + ends[-2]) // 2  # in the middle of the second-to-last record
    cut_file = tmp_path / "cut.mitm"
    cut_file.write_bytes(data[:cut])
    kept = {_seq(f.request.url) for f in _flows_in_file(cut_file)}
    assert len(kept) == len(ends) - 2

    out = tmp_path / "offline"
    result = CliRunner().invoke(app, ["analyze", str(cut_file), "--profile",
                                      str(killed.profile), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    notes = [line for line in result.output.splitlines() if "stopped" in line]
    assert len(notes) == 1, result.output  # one clear line saying where it stopped
    assert f"stopped after {len(kept)} flows" in notes[0] and str(cut_file) in notes[0]
    doc = json.loads((out / "findings.json").read_text())
    assert {_seq(t["url"]) for t in doc["transmissions"]} == kept
    assert [e["stage"] for e in doc["coverage"]["errors"]] == ["input"]
    assert _summary(doc) == _live_summary(killed.session, kept)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def _post(conn: http.client.HTTPConnection, target: tuple[str, int], i: int) -> int:
    path, body = _request(i)
    conn.request("POST", f"http://{target[0]}:{target[1]}{path}", body,
                 {"content-type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def test_a_killed_worker_is_replaced_and_the_traffic_flows_on(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    session, log = tmp_path / "session", tmp_path / "mitmdump.log"
    mitmdump = Path(sys.executable).with_name("mitmdump")
    with LocalCloud() as cloud, open(log, "w") as fh:
        proc = subprocess.Popen(
            [str(mitmdump), "-s", str(ROOT / "addons" / "kidaudit.py"), "--listen-host",
             "127.0.0.1", "--listen-port", "0", "--set", f"confdir={tmp_path / 'conf'}",
             "--set", f"kidaudit_profile={profile}", "--set", f"kidaudit_session={session}"],
            stdout=fh, stderr=subprocess.STDOUT)
        try:
            port = _wait_for_port(proc, log)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            statuses = [_post(conn, cloud.http_addr, i) for i in range(6)]
            (worker,) = _children(proc.pid)
            wait_committed(session, 6)  # idle when killed: nothing to quarantine
            os.kill(worker, signal.SIGKILL)
            deadline = time.monotonic() + 20
            while "analysis worker exited" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                statuses.append(_post(conn, cloud.http_addr, len(statuses)))
                time.sleep(0.05)
            after = len(statuses)
            statuses += [_post(conn, cloud.http_addr, i) for i in range(after, after + 6)]
            conn.close()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    assert statuses == [200] * len(statuses)  # the device never noticed
    doc = json.loads((session / "findings.json").read_text())
    messages = [e["message"] for e in doc["coverage"]["errors"]]
    assert any("analysis worker exited with code -9" in m for m in messages), messages
    analysed = sorted(_seq(t["url"]) for t in doc["transmissions"])
    assert analysed == list(range(len(statuses)))  # each request once, before and after
    assert any(f["rule"] == "PRE_CONSENT_PI" for f in doc["findings"])


STALLED = 600  # requests completed while the worker is stopped


def _mitmdump(tmp_path: Path, profile: Path, session: Path, log) -> subprocess.Popen:
    mitmdump = Path(sys.executable).with_name("mitmdump")
    return subprocess.Popen(
        [str(mitmdump), "-s", str(ROOT / "addons" / "kidaudit.py"), "--listen-host",
         "127.0.0.1", "--listen-port", "0", "--set", f"confdir={tmp_path / 'conf'}",
         "--set", "flow_detail=0", "--set", f"kidaudit_profile={profile}",
         "--set", f"kidaudit_session={session}"],
        stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("stalled", [True, False], ids=["worker-stopped", "worker-busy"])
def test_both_processes_killed_at_once_lose_nothing(tmp_path: Path, stalled: bool) -> None:
    """600 requests complete through real mitmdump, the worker stopped (SIGSTOP: what a
    CPU-starved nice 19 worker nearly is) or working, then both processes are killed at
    once (a container stop): the journal kept every one, and the report has each once."""
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    session, log = tmp_path / "session", tmp_path / "mitmdump.log"
    with LocalCloud() as cloud, open(log, "w") as fh:
        proc = _mitmdump(tmp_path, profile, session, fh)
        worker = None
        try:
            port = _wait_for_port(proc, log)
            (worker,) = _children(proc.pid)
            if stalled:
                os.kill(worker, signal.SIGSTOP)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            statuses = [_post(conn, cloud.http_addr, i) for i in range(STALLED)]
            conn.close()
        finally:
            for pid in (proc.pid, worker):
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert statuses == [200] * STALLED
    assert settled(session, 10)  # nobody holds the folder: both are gone
    result = CliRunner().invoke(app, ["report", str(session)])  # recovers from the journal
    assert result.exit_code == 0, result.output
    if stalled:  # the worker committed none of them: every one came from the journal
        assert f"{STALLED} messages the capture had finished but not committed were " \
               "recovered" in result.output
    assert recover(session) == 0  # nothing left behind the last commit
    doc = json.loads((session / "findings.json").read_text())
    assert sorted(_seq(t["url"]) for t in doc["transmissions"]) == list(range(STALLED))
    assert [e for e in doc["coverage"]["errors"] if e["stage"] == "quarantine"] == []
    assert len(_flows_in_file(session / "flows.mitm")) == STALLED


def test_ctrl_c_with_a_stalled_worker_ends_the_proxy_and_the_worker_finishes_alone(
        tmp_path: Path) -> None:
    """Ctrl-C while the worker is far behind: mitmdump waits a bounded time, says what it
    leaves behind, and exits; the worker commits everything and writes the reports."""
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    session, log = tmp_path / "session", tmp_path / "mitmdump.log"
    with LocalCloud() as cloud, open(log, "w") as fh:
        proc = _mitmdump(tmp_path, profile, session, fh)
        try:
            port = _wait_for_port(proc, log)
            (worker,) = _children(proc.pid)
            os.kill(worker, signal.SIGSTOP)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            statuses = [_post(conn, cloud.http_addr, i) for i in range(30)]
            conn.close()
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=90)  # without a bound, it waited for ever
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.kill(worker, signal.SIGCONT)
    assert code == 0 and statuses == [200] * 30
    text = log.read_text()
    assert "goes on after mitmproxy exits" in text and f"kidaudit report {session}" in text
    deadline = time.monotonic() + 60
    while not (session / "report.html").exists():  # the worker, alone, writes it
        assert time.monotonic() < deadline, "the worker did not write the reports"
        time.sleep(0.1)
    assert settled(session, 30)
    doc = json.loads((session / "findings.json").read_text())
    assert sorted(_seq(t["url"]) for t in doc["transmissions"]) == list(range(30))
