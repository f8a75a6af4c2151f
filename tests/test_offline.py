"""offline.analyze with ``jobs``: the flow files read and analysed by worker processes give
the very outputs of one process (findings.json, detections.csv, report.html and the store's
rows, the random session id aside): the same ids, the same order, the same names."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from mitmproxy import dns, http, tcp
from mitmproxy.test import tflow

from auditor.marks import MARK_HOST
from auditor.model import ConsentEvent
from auditor.offline import analyze
from auditor.profile import load_consent_plan, load_profile
from auditor.sources.mitm import mark_flow
from tests.factories import EPOCH, IMEI, LAT, LON, http_flow, run_main, write_flows

OUTPUTS = ("findings.json", "detections.csv", "report.html")
WATCH_IP = "127.0.0.5"  # a raw-TCP watch server, named by a DNS answer earlier


def _frame(content: str) -> bytes:
    return b"[3G*%s*%04X*%s]" % (IMEI[-10:].encode(), len(content), content.encode())


def _dns(ts: float) -> dns.DNSFlow:
    f = tflow.tdnsflow(resp=True)
    f.request.timestamp = f.timestamp_created = ts
    f.response.answers = [dns.ResourceRecord("gps.watch.example", dns.types.A, 1, 60,
                                             bytes([127, 0, 0, 5]))]
    return f


def _watch(ts: float) -> tcp.TCPFlow:
    f = tflow.ttcpflow()
    f.server_conn.address = f.server_conn.peername = (WATCH_IP, 8001)
    f.server_conn.sni = None
    f.timestamp_created = ts
    f.messages = [tcp.TCPMessage(True, _frame(f"UD,281126,101500,A,{LAT:.6f},N,{LON:.6f},E,0"),
                                 ts + 1),
                  tcp.TCPMessage(False, _frame("LK"), ts + 2)]
    return f


def _flows() -> list:
    """Check-ins, an agree page (the plan's signal), a consent mark and a malformed one,
    a raw-TCP watch before and after the DNS answer naming its server, and flows written
    out of request order (a slow response)."""
    flows: list = [http_flow(f"https://api.acme-watch.example/checkin?seq={i}", EPOCH + i,
                             {"imei": IMEI, "lat": LAT, "lon": LON, "seq": i})
                   for i in range(12)]
    flows[3], flows[4] = flows[4], flows[3]  # written in response order
    flows.insert(2, _watch(EPOCH + 1.5))  # before the DNS answer: by its address
    flows.insert(5, _dns(EPOCH + 3.5))
    flows.insert(7, _watch(EPOCH + 5.5))  # after it: by its name
    flows.insert(8, http_flow("https://app.acme-watch.example/privacy/agree", EPOCH + 6.2,
                              {"ok": 1}, method="GET"))
    flows.insert(9, mark_flow(ConsentEvent(EPOCH + 6.4, "withdraw", ("identifier",))))
    bad = http_flow(f"http://{MARK_HOST}/nonsense", EPOCH + 7.2)
    flows.insert(10, bad)
    flows.append(http_flow("https://log.tracker.example/batch", EPOCH + 20,
                           {"device": IMEI}))
    return flows


def _capture(path: Path, *, broken: bool = True) -> Path:
    write_flows(path, _flows())
    if broken:  # a record that is no flow in the middle, and a cut tail
        data = path.read_bytes()
        path.write_bytes(data + b"5:hello," + data[:2000] + b"9999:{}}")
    return path


def _normalised(out: Path) -> dict[str, bytes]:
    """The outputs with the session's random id taken out, and the store's rows."""
    sid = json.loads((out / "findings.json").read_text())["session"]["id"]
    files = {name: (out / name).read_bytes().replace(sid.encode(), b"ID") for name in OUTPUTS}
    db = sqlite3.connect(out / "session.sqlite")
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            rows = db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - our tables
            files[f"table {table}"] = repr([r for r in rows if sid not in map(str, r)]).encode()
    finally:
        db.close()
    return files


def _run(inputs: list[Path], tmp: Path, name: str, jobs: int, profile: Path, plan: Path
         ) -> dict[str, bytes]:
    out = tmp / name
    analyze(inputs, load_profile(str(profile)), load_consent_plan(str(plan)), out, jobs=jobs,
            chunk_bytes=1500)  # a chunk of a flow or two: many chunks in flight
    return _normalised(out)


@pytest.mark.e2e  # worker processes
@pytest.mark.parametrize("inputs", [1, 3])  # one flow file; several, written again as one
def test_jobs_2_writes_what_jobs_1_writes(tmp_path: Path, watch_profile: Path,
                                          consent_plan: Path, inputs: int) -> None:
    paths = [_capture(tmp_path / f"c{i}.mitm", broken=i == inputs - 1) for i in range(inputs)]
    one = _run(paths, tmp_path, "one", 1, watch_profile, consent_plan)
    two = _run(paths, tmp_path, "two", 2, watch_profile, consent_plan)
    assert one.keys() == two.keys() and len(one) >= 6
    for name in one:
        assert one[name] == two[name], name
    findings = json.loads(one["findings.json"])
    notes = [e["message"] for e in findings["coverage"]["errors"] if e.get("stage") == "input"]
    assert any("was skipped" in n for n in notes) and any("stopped after" in n for n in notes)
    csv = one["detections.csv"].decode()
    assert "gps.watch.example" in csv and WATCH_IP in csv  # named after the DNS answer only
    if inputs > 1:
        assert (tmp_path / "one" / "flows.mitm").read_bytes() == (
            tmp_path / "two" / "flows.mitm").read_bytes()


def test_jobs_1_gives_what_analyze_gave_flow_by_flow(tmp_path: Path, watch_profile: Path,
                                                     consent_plan: Path) -> None:
    """The transmissions' numbers follow request time (the slow response's flow keeps its
    place), the raw-TCP watch is named once the DNS answer came, the marks are events."""
    capture = _capture(tmp_path / "c.mitm")
    out = tmp_path / "out"
    analyze([capture], load_profile(str(watch_profile)), load_consent_plan(str(consent_plan)),
            out, chunk_bytes=1500)
    db = sqlite3.connect(out / "session.sqlite")
    try:
        rows = db.execute("SELECT id, ts, host FROM transmissions ORDER BY id").fetchall()
        events = db.execute("SELECT * FROM events").fetchall()
    finally:
        db.close()
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    times = [r[1] for r in rows if r[2].startswith("api.")]
    assert times == sorted(times)
    watch = [r[2] for r in rows if r[2] in (WATCH_IP, "gps.watch.example")]
    assert watch == [WATCH_IP, WATCH_IP, "gps.watch.example", "gps.watch.example"]
    assert any("withdraw" in map(str, e) for e in events)
    assert any("signal" in map(str, e) for e in events)


@pytest.mark.parametrize("jobs", ["0", "-2"])
def test_jobs_below_one_is_a_usage_error(tmp_path: Path, watch_profile: Path, jobs: str,
                                         monkeypatch, capsys) -> None:
    capture = write_flows(tmp_path / "c.mitm", [http_flow("https://a.example/", EPOCH)])
    code, err = run_main(["analyze", str(capture), "-p", str(watch_profile), "-o",
                          str(tmp_path / "out"), "--jobs", jobs], monkeypatch, capsys)
    assert code == 2
    assert re.fullmatch(rf"kidaudit: --jobs {jobs}: give 1 or more processes .*\n", err), err
    assert not (tmp_path / "out").exists()


def test_a_piped_run_prints_no_progress(tmp_path: Path, watch_profile: Path, monkeypatch,
                                        capsys) -> None:
    capture = write_flows(tmp_path / "c.mitm", [http_flow("https://a.example/", EPOCH,
                                                          {"imei": IMEI})])
    code, err = run_main(["analyze", str(capture), "-p", str(watch_profile), "-o",
                          str(tmp_path / "out"), "--jobs", "1"], monkeypatch, capsys)
    assert code == 0 and err == ""


def test_the_http_flow_helper_is_what_the_capture_holds() -> None:
    """The capture's flows are what they claim: one HTTP check-in per second."""
    flows = _flows()
    https = [f for f in flows if isinstance(f, http.HTTPFlow)
             and f.request.host == "api.acme-watch.example"]
    assert len(https) == 12


@pytest.mark.e2e  # the demo's proxy session, and worker processes
def test_the_demos_capture_gives_the_same_outputs_with_jobs_2(tmp_path: Path) -> None:
    from auditor.demo.run import run_demo

    demo = tmp_path / "demo"
    run_demo(demo)
    capture = demo / "flows.mitm"
    one = _run([capture], tmp_path, "one", 1, demo / "profile.yaml", demo / "consent.yaml")
    two = _run([capture], tmp_path, "two", 2, demo / "profile.yaml", demo / "consent.yaml")
    for name in one:
        assert one[name] == two[name], name
    assert len(json.loads(one["findings.json"])["findings"]) >= 5
