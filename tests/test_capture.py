"""`kidaudit capture`: mitmdump / mitmweb with the addon, as a lab starts it, in a subprocess."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from auditor.demo.cloud import LocalCloud
from tests.factories import IMEI
from tests.proxyrun import listening_port, wait_for_line

pytestmark = pytest.mark.e2e
KIDAUDIT = Path(sys.executable).with_name("kidaudit")
# One cleartext request to 127.0.0.1 carrying the IMEI, before any consent; the profile names
# no first party, so the recipient is not first party and no plan discloses it.
EXPECTED_RULES = {"CLEARTEXT_PI", "PRE_CONSENT_PI", "THIRD_PARTY_UNDISCLOSED",
                  "NON_RESETTABLE_ID"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path: Path, *mitmproxy_args: str, web: bool = False
           ) -> tuple[subprocess.Popen, Path]:
    profile = tmp_path / "p.yaml"
    profile.write_text(f'identifiers: {{imei: "{IMEI}"}}\n')
    session = tmp_path / "session"
    proc = subprocess.Popen(
        [str(KIDAUDIT), "capture", "--profile", str(profile), "--session", str(session),
         "--listen-host", "127.0.0.1", "--port", "0", *(["--web"] if web else []), "--",
         "--set", f"confdir={tmp_path / 'conf'}", *mitmproxy_args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, session


def _send(port: int, cloud: LocalCloud) -> None:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
    host, cloud_port = cloud.http_addr
    with opener.open(f"http://{host}:{cloud_port}/r?imei={IMEI}", timeout=10) as resp:
        assert resp.status == 200


def test_capture_runs_mitmdump_and_writes_reports_on_ctrl_c(tmp_path: Path) -> None:
    with LocalCloud() as cloud:
        proc, session = _start(tmp_path)
        try:
            port = listening_port(proc)
            _send(port, cloud)
            wait_for_line(proc, r"\[CRITICAL\] CLEARTEXT_PI")
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
    doc = json.loads((session / "findings.json").read_text())
    assert {f["rule"] for f in doc["findings"]} == EXPECTED_RULES


def test_capture_with_mitmweb_shows_marked_commented_flows(tmp_path: Path) -> None:
    web = _free_port()
    with LocalCloud() as cloud:
        proc, session = _start(tmp_path, "--set", f"web_port={web}",
                               "--set", "web_open_browser=false", web=True)
        try:
            port = listening_port(proc)
            # mitmweb 11.1+ prints its address with the token its API wants ("...:8081/?token=
            # ..."); 11.0 prints none and wants none. The lab opens the address as printed.
            printed = wait_for_line(proc, r"Web server listening at (\S+)").group(1)
            _send(port, cloud)
            flows = _flows_once_marked(printed)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
    (flow,) = flows
    assert flow["marked"] and flow["comment"] == "kidaudit: identifier.imei"
    assert (session / "report.html").is_file()


def _flows_once_marked(printed: str, attempts: int = 100) -> list[dict]:
    """mitmweb's flow list, read again (at most ``attempts`` times, 0.1 s apart) until a
    flow is marked: the worker's result arrives just after the response has gone.
    ``printed`` is the address mitmweb printed; its query (the token, if any) goes along."""
    url = urllib.parse.urlsplit(printed)._replace(path="/flows").geturl()
    for _ in range(attempts):
        with urllib.request.urlopen(url, timeout=10) as r:
            flows = json.load(r)
        if any(f["marked"] for f in flows):
            break
        time.sleep(0.1)
    return flows


def test_capture_refuses_an_invalid_profile_before_starting(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("identifiers: {imei: 'nope'}\n")
    result = subprocess.run([str(KIDAUDIT), "capture", "--profile", str(profile), "--session",
                             str(tmp_path / "s")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"kidaudit: {profile}, line 1: identifiers.imei")
    assert not (tmp_path / "s").exists()


def test_a_capture_saved_by_plain_mitmdump_is_analysed(tmp_path: Path) -> None:
    """Another lab's mitmproxy, without kidaudit: `mitmdump -w` output is valid input."""
    from typer.testing import CliRunner

    from auditor.cli import app

    saved = tmp_path / "theirs.mitm"
    with LocalCloud() as cloud:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("mitmdump")), "--listen-host", "127.0.0.1",
             "--listen-port", "0", "-w", str(saved), "--set", f"confdir={tmp_path / 'conf'}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            port = listening_port(proc)
            _send(port, cloud)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
    profile = tmp_path / "p.yaml"
    profile.write_text(f'identifiers: {{imei: "{IMEI}"}}\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze", str(saved), "--profile", str(profile),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "findings.json").read_text())
    assert {f["rule"] for f in doc["findings"]} == EXPECTED_RULES
    again = CliRunner().invoke(app, ["report", str(out), "--lang", "zh"])
    assert again.exit_code == 0 and "report.html" in again.output


def _lines_until(proc: subprocess.Popen, patterns: list[str], seconds: float = 30
                 ) -> list[str]:
    """``proc``'s output lines until each pattern has matched one (in any order)."""
    deadline, lines, left = time.monotonic() + seconds, [], list(patterns)
    assert proc.stdout is not None
    while left and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line.rstrip("\n"))
        left = [p for p in left if not any(re.search(p, x) for x in lines)]
    assert not left, (left, lines)
    return lines


def test_capture_with_a_standard_shows_the_next_step_and_reports_its_table(tmp_path: Path
                                                                          ) -> None:
    """``capture --standard``: the first step at start, the steps done and the next one
    when a mark arrives (here by the magic host), the standard's table in findings.json."""
    profile = tmp_path / "p.yaml"
    profile.write_text(f'identifiers: {{imei: "{IMEI}"}}\n')
    session = tmp_path / "session"
    proc = subprocess.Popen(
        [str(KIDAUDIT), "capture", "--profile", str(profile), "--session", str(session),
         "--listen-host", "127.0.0.1", "--port", "0", "--standard", "gbt41391-2022", "--",
         "--set", f"confdir={tmp_path / 'conf'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        start = _lines_until(proc, [r"proxy listening at .*:(\d+)",
                                    r"procedure: next step: Traffic before consent"])
        port = int(next(m.group(1) for line in start
                        if (m := re.search(r"proxy listening at .*:(\d+)", line))))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
        with opener.open("http://kidaudit.mark/grant?categories=all-disclosed",
                         timeout=10) as resp:
            assert resp.status == 200
        after = _lines_until(proc, [r"procedure: steps done: .*Guardian consent",
                                    r"procedure: next step: Use every feature: .*"
                                    r"kidaudit mark --session \S+ phase use"])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert any("consent mark grant all-disclosed" in line for line in after)
    doc = json.loads((session / "findings.json").read_text())
    assert [t["id"] for t in doc["conformance"]] == ["gbt41391-2022"]
