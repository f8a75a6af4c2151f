"""End to end: real mitmproxy with the addon, real HTTP and HTTPS clients, real TLS with
the mitmproxy CA, then the same session rebuilt offline from flows.mitm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mitmproxy import io
from typer.testing import CliRunner

from auditor.cli import app
from auditor.demo.cloud import LocalCloud
from auditor.demo.devices import ANALYTICS, API, SMS, Proxy
from auditor.store import Store
from tests.factories import IMEI
from tests.proxyrun import listening_port, run_proxy_session

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e
PROFILE = f"""
device: {{name: "E2E watch", firmware: "9.9"}}
identifiers: {{imei: "{IMEI}", phone: "+8613800138000"}}
location: {{lat: 39.98312, lon: 116.30791}}
first_party: [acme-watch.example]
jurisdiction: CN
"""
PLAN = """
disclosed:
  - {recipient: acme-watch.example, categories: [identifier.imei, location.precise]}
"""


def _write(tmp_path: Path) -> tuple[Path, Path]:
    profile, plan = tmp_path / "p.yaml", tmp_path / "c.yaml"
    profile.write_text(PROFILE)
    plan.write_text(PLAN)
    return profile, plan


def _session(session: Path):
    def drive(proxy: Proxy) -> list[int]:
        statuses = [proxy.https(API, "POST", "/v1/register", {"imei": IMEI})]
        # A mark from another process, as `kidaudit mark --session DIR` writes it.
        store = Store.open_existing(session)
        store.db.execute("INSERT INTO events (ts, action, categories, recipients, separate,"
                         " name, source) VALUES (?, 'grant', '[\"all-disclosed\"]', '[]',"
                         " '[]', '', 'cli')", (time.time(),))
        store.db.commit()
        store.close()
        statuses += [
            proxy.https(API, "POST", "/v1/loc", {"lat": "39.98312", "lon": "116.30791"}),
            proxy.https(ANALYTICS, "GET", f"/c?d={IMEI.upper()}"),
            proxy.http(SMS, "GET", "/bind?phone=8613800138000"),
            proxy.http("kidaudit.mark", "GET", "/phase?name=idle"),
        ]
        return statuses
    return drive


def _summary(findings_json: Path) -> set[tuple[str, str, tuple[str, ...], int]]:
    doc = json.loads(findings_json.read_text())
    return {(f["rule"], f["recipient"], tuple(f["categories"]), f["count"])
            for f in doc["findings"]}


def test_live_session_through_real_proxy_and_offline_rebuild(tmp_path: Path) -> None:
    profile, plan = _write(tmp_path)
    session = tmp_path / "session"
    statuses = run_proxy_session(tmp_path, profile, session, _session(session), plan)
    assert statuses == [200, 200, 200, 200, 200]  # the device's traffic was not broken

    doc = json.loads((session / "findings.json").read_text())
    assert doc["schema"] == "kidaudit.findings/1"
    summary = _summary(session / "findings.json")
    assert ("PRE_CONSENT_PI", "acme-watch.example", ("identifier.imei",), 1) in summary
    assert ("CLEARTEXT_PI", "acme-watch.example", ("identity.phone",), 1) in summary
    assert {f["rule"] for f in doc["findings"]} == {
        "PRE_CONSENT_PI", "CLEARTEXT_PI", "NON_RESETTABLE_ID", "SENSITIVE_NO_SEPARATE_CONSENT",
        # the IMEI also went to the analytics host, which the plan does not disclose:
        "THIRD_PARTY_UNDISCLOSED", "PERSISTENT_ID_TO_THIRD_PARTY", "SCOPE_EXCEEDED",
        "CROSS_SERVICE_LINKING"}
    assert [e["source"] for e in doc["events"]] == ["cli", "mark"]
    transports = {t["host"]: t["transport"] for t in doc["transmissions"]}
    assert transports[API] == "https" and transports[SMS] == "http"
    # Masked by default: the IMEI never appears whole in any output.
    for name in ("findings.json", "detections.csv", "report.html"):
        assert IMEI not in (session / name).read_text()
    # The raw evidence: marked, commented flows, and the cli mark written as a flow too.
    with open(session / "flows.mitm", "rb") as fh:
        flows = list(io.FlowReader(fh).stream())
    register = next(f for f in flows if f.request.path == "/v1/register")
    assert register.marked and register.comment == "kidaudit: identifier.imei"
    assert sum(f.request.pretty_host == "kidaudit.mark" for f in flows) == 2
    assert (os.stat(session).st_mode & 0o777) == 0o700

    # Offline: the same findings from flows.mitm alone.
    out = tmp_path / "offline"
    result = CliRunner().invoke(app, ["analyze", str(session / "flows.mitm"), "--profile",
                                      str(profile), "--consent", str(plan), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _summary(out / "findings.json") == summary


def test_mitmdump_loads_the_addon_script(tmp_path: Path) -> None:
    """`mitmdump -s addons/kidaudit.py --set ...` works on its own, and writes the reports
    when mitmproxy shuts down."""
    profile, _ = _write(tmp_path)
    session = tmp_path / "dumpsession"
    mitmdump = Path(sys.executable).with_name("mitmdump")
    with LocalCloud() as cloud:
        proc = subprocess.Popen(
            [str(mitmdump), "-s", str(ROOT / "addons" / "kidaudit.py"), "--listen-host",
             "127.0.0.1", "--listen-port", "0", "--set", f"confdir={tmp_path / 'conf'}",
             "--set", f"kidaudit_profile={profile}", "--set", f"kidaudit_session={session}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            port = listening_port(proc)
            opener = urllib.request.build_opener(
                urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
            host, cloud_port = cloud.http_addr
            with opener.open(f"http://{host}:{cloud_port}/x?imei={IMEI}", timeout=10) as resp:
                assert resp.status == 200
        finally:
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=30)
    assert "CLEARTEXT_PI" in output and "PRE_CONSENT_PI" in output  # the one-line alerts
    assert _summary(session / "findings.json") >= {
        ("CLEARTEXT_PI", "127.0.0.1", ("identifier.imei",), 1)}
    assert (session / "report.html").is_file()
