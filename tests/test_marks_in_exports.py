"""End to end: consent marks sent through real mitmdump mid-session are the same consent
events, and give the same findings, in the live session, in the HAR mitmproxy's
``hardump`` wrote of it and in its ``flows.mitm`` (issue 15: a saved capture used to make
each mark a transmission to a third party named kidaudit.mark)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.demo.cloud import LocalCloud
from auditor.demo.devices import ANALYTICS, API, SMS, Proxy
from auditor.marks import MARK_HOST
from tests.factories import IMEI, LAT, LON, PHONE_DIGITS
from tests.proxyrun import listening_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e
PROFILE = f"""
device: {{name: "Marked watch", firmware: "1.0"}}
identifiers: {{imei: "{IMEI}", phone: "+{PHONE_DIGITS}"}}
location: {{lat: {LAT}, lon: {LON}}}
first_party: [acme-watch.example]
jurisdiction: CN
"""
PLAN = """
withdrawal_grace_s: 0
disclosed:
  - {recipient: acme-watch.example, categories: [identifier.imei, location.precise,
                                                 identity.phone]}
"""
# The demo's hosts go to the local cloud (no DNS, no internet), as auditor.demo.run does
# in process; here mitmdump is its own process, so the address comes in the environment.
ROUTE = """
import os
from auditor.demo.devices import HOSTS

class RouteToCloud:
    def server_connect(self, data):
        host, port = data.server.address[:2]
        if host in HOSTS:
            key = "KIDAUDIT_TEST_HTTPS" if port == 443 else "KIDAUDIT_TEST_HTTP"
            cloud_host, cloud_port = os.environ[key].rsplit(":", 1)
            data.server.address = (cloud_host, int(cloud_port))

addons = [RouteToCloud()]
"""


def _drive(proxy: Proxy) -> list[int]:
    """Before consent, consent marked, use, a withdrawal marked, use, idle marked, use."""
    location = {"lat": str(LAT), "lon": str(LON)}
    return [
        proxy.https(API, "POST", "/v1/register", {"imei": IMEI}),
        proxy.http(MARK_HOST, "GET",
                   "/grant?categories=all-disclosed&separate=location.precise"),
        proxy.https(API, "POST", "/v1/loc", location),
        proxy.https(ANALYTICS, "GET", f"/c?d={IMEI}"),
        proxy.http(MARK_HOST, "GET", "/withdraw?categories=identifier.imei"),
        proxy.https(API, "POST", "/v1/register", {"imei": IMEI}),
        proxy.http(MARK_HOST, "GET", "/phase?name=idle"),
        proxy.http(SMS, "GET", f"/bind?phone={PHONE_DIGITS}"),
    ]


def _live(tmp_path: Path, profile: Path, plan: Path, session: Path, har: Path) -> list[int]:
    """A capture through mitmdump with the addon, mitmproxy writing the HAR at the end."""
    route = tmp_path / "route.py"
    route.write_text(ROUTE)
    confdir = tmp_path / "conf"
    mitmdump = Path(sys.executable).with_name("mitmdump")
    with LocalCloud() as cloud:
        env = {"KIDAUDIT_TEST_HTTPS": "{}:{}".format(*cloud.https_addr),
               "KIDAUDIT_TEST_HTTP": "{}:{}".format(*cloud.http_addr),
               "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [str(mitmdump), "-s", str(ROOT / "addons" / "kidaudit.py"), "-s", str(route),
             "--listen-host", "127.0.0.1", "--listen-port", "0", "--set", f"confdir={confdir}",
             "--set", "ssl_insecure=true", "--set", f"hardump={har}",
             "--set", f"kidaudit_profile={profile}", "--set", f"kidaudit_consent={plan}",
             "--set", f"kidaudit_session={session}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **env})
        try:
            port = listening_port(proc)
            statuses = _drive(Proxy(port, confdir / "mitmproxy-ca-cert.pem"))
        finally:
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    return statuses


def _analyze(capture: Path, profile: Path, plan: Path, out: Path) -> dict:
    result = CliRunner().invoke(app, ["analyze", str(capture), "--profile", str(profile),
                                      "--consent", str(plan), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "findings.json").read_text())


def _events(doc: dict) -> list[tuple]:
    return [(e["ts"], e["action"], tuple(e["categories"]), tuple(e["recipients"]),
             tuple(e["separate"]), e["name"], e["source"]) for e in doc["events"]]


def _findings(doc: dict) -> set[tuple]:
    return {(f["rule"], f["recipient"], tuple(f["categories"]), len(f["transmissions"]),
             f["count"]) for f in doc["findings"]}


def test_marks_are_the_same_events_and_findings_live_in_the_har_and_in_flows_mitm(
        tmp_path: Path) -> None:
    profile, plan = tmp_path / "p.yaml", tmp_path / "c.yaml"
    profile.write_text(PROFILE)
    plan.write_text(PLAN)
    session, har = tmp_path / "session", tmp_path / "session.har"
    statuses = _live(tmp_path, profile, plan, session, har)
    assert statuses == [200] * 8  # the marks answered by the addon, the traffic unbroken

    live = json.loads((session / "findings.json").read_text())
    assert [(e[1], e[6]) for e in _events(live)] == [
        ("grant", "mark"), ("withdraw", "mark"), ("phase", "mark")]
    rules = {f["rule"] for f in live["findings"]}
    # the timeline mattered: before consent, after the withdrawal, while idle
    assert {"PRE_CONSENT_PI", "AFTER_WITHDRAWAL", "BACKGROUND_COLLECTION"} <= rules
    assert MARK_HOST not in {f["recipient"] for f in live["findings"]}

    assert MARK_HOST in har.read_text()  # mitmproxy kept the marks as requests
    for capture, out in ((har, tmp_path / "from-har"),
                         (session / "flows.mitm", tmp_path / "from-mitm")):
        doc = _analyze(capture, profile, plan, out)
        assert _events(doc) == _events(live), capture.name
        assert _findings(doc) == _findings(live), capture.name
        assert MARK_HOST not in {t["host"] for t in doc["transmissions"]}
