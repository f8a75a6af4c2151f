"""Privacy of the auditor's own output (issue #7): session folders and reports are private
to the lab's user (0700 / 0600), values are masked everywhere by default (terminal alerts,
flow comments for mitmweb, JSON, CSV, HTML) and only ``--reveal`` unmasks them, and an
analysis makes no network connection of its own."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import io
from typer.testing import CliRunner

from auditor.cli import app
from auditor.demo.devices import ANALYTICS, API, SMS, Proxy
from auditor.mask import mask
from tests.factories import (
    FIRST_PARTY,
    HOST,
    IMEI,
    LAT,
    LON,
    PHONE_DIGITS,
    T0,
    http_flow,
    write_flows,
)
from tests.proxyrun import run_proxy_session

pytestmark = pytest.mark.timeout(180)

IMEI_B64 = base64.b64encode(IMEI.encode()).decode()
IMEI_MD5 = hashlib.md5(IMEI.encode()).hexdigest()
PROFILE = f"""device: {{name: "private watch"}}
identifiers: {{imei: "{IMEI}", phone: "+{PHONE_DIGITS}"}}
location: {{lat: {LAT}, lon: {LON}}}
first_party: [{FIRST_PARTY}]
jurisdiction: CN
"""
PLAN = f"disclosed:\n  - {{recipient: {FIRST_PARTY}, categories: [identifier.imei]}}\n"
# Every form in which a seeded value is sent below: none may leave the tool unmasked.
SECRETS = (IMEI, PHONE_DIGITS, IMEI_B64, IMEI_MD5)
REPORTS = ("findings.json", "detections.csv", "report.html")
runner = CliRunner()


def _drive(proxy: Proxy) -> list[int]:
    return [
        proxy.https(API, "POST", "/v1/register", {"imei": IMEI, "token": IMEI_B64}),
        proxy.http(SMS, "GET", f"/bind?phone={PHONE_DIGITS}"),
        proxy.https(ANALYTICS, "GET", f"/c?d={IMEI_MD5}&i={IMEI}"),
    ]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """A live session through the real proxy, under a permissive umask."""
    tmp = tmp_path_factory.mktemp("private")
    profile, plan = tmp / "p.yaml", tmp / "c.yaml"
    profile.write_text(PROFILE)
    plan.write_text(PLAN)
    records = _Records()
    logging.getLogger().addHandler(records)
    old = os.umask(0o022)  # what a lab machine usually has: files would be world-readable
    try:
        statuses = run_proxy_session(tmp, profile, tmp / "session", _drive, plan)
    finally:
        os.umask(old)
        logging.getLogger().removeHandler(records)
    assert statuses == [200, 200, 200]
    return tmp / "session", profile, records.lines


def _analyze(capture: Path, profile: Path, out: Path, *extra: str):
    old = os.umask(0o022)
    try:
        result = runner.invoke(app, ["analyze", str(capture), "--profile", str(profile),
                                     "--out", str(out), *extra])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    return result


def _modes(directory: Path) -> Iterator[tuple[Path, int]]:
    yield directory, stat.S_IMODE(directory.stat().st_mode)
    for path in sorted(directory.rglob("*")):
        yield path, stat.S_IMODE(path.stat().st_mode)


def _assert_private(directory: Path) -> None:
    wrong = [(str(p), oct(m)) for p, m in _modes(directory)
             if m != (0o700 if p.is_dir() else 0o600)]
    assert not wrong, f"not private to the lab's user: {wrong}"


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.mark.e2e
# -- file modes ----------------------------------------------------------------------
def test_capture_session_folder_and_files_are_private(captured) -> None:
    session, _, _ = captured
    names = {p.name for p in session.iterdir()}
    assert {"session.sqlite", "flows.mitm", "profile.yaml", "consent.yaml", *REPORTS} <= names
    _assert_private(session)


@pytest.mark.e2e
def test_analyze_and_report_outputs_are_private(captured, tmp_path: Path) -> None:
    session, profile, _ = captured
    out = tmp_path / "out"
    out.mkdir(mode=0o755)  # a folder the lab made beforehand is tightened too
    _analyze(session / "flows.mitm", profile, out)
    _assert_private(out)
    old = os.umask(0o022)
    try:
        result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "copy"),
                                     "--lang", "zh", "--reveal"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    _assert_private(out)
    _assert_private(tmp_path / "copy")


def test_a_copied_input_and_sqlites_side_files_are_private(tmp_path: Path) -> None:
    from auditor.store import Store
    from tests.test_sources_har import entry, har

    capture = tmp_path / "in.har"
    capture.write_text(json.dumps(har([entry(f"http://api.example.cn/bind?imei={IMEI}",
                                             "2026-01-01T00:00:00Z")])))
    os.chmod(capture, 0o644)
    profile = tmp_path / "p.yaml"
    profile.write_text(f'identifiers: {{imei: "{IMEI}"}}\n')
    _analyze(capture, profile, tmp_path / "out")
    assert (tmp_path / "out" / "in.har").is_file()
    _assert_private(tmp_path / "out")
    old = os.umask(0o022)
    try:
        store = Store.open_existing(tmp_path / "out")  # while open: -wal and -shm beside it
        store.set_meta(probe="1")
        assert {"session.sqlite-wal", "session.sqlite-shm"} <= {
            p.name for p in (tmp_path / "out").iterdir()}
        _assert_private(tmp_path / "out")
        store.close()
    finally:
        os.umask(old)


@pytest.mark.e2e
# -- masking -------------------------------------------------------------------------
def test_terminal_alerts_and_flow_comments_are_masked(captured) -> None:
    session, _, lines = captured
    alerts = [line for line in lines if line.startswith("kidaudit:")]
    assert any("CLEARTEXT_PI" in line for line in alerts)  # the alerts were there
    assert not [line for line in alerts if _leaks(line)]
    assert not [line for line in lines if _leaks(line)]  # nor any other log line
    with open(session / "flows.mitm", "rb") as fh:
        flows = list(io.FlowReader(fh).stream())
    comments = [f.comment for f in flows if f.comment]
    assert any("identifier.imei" in c for c in comments)  # mitmweb shows categories
    assert not [c for c in comments if _leaks(c)]


@pytest.mark.e2e
def test_reports_are_masked_by_default(captured) -> None:
    session, _, _ = captured
    for name in REPORTS:
        assert not _leaks((session / name).read_text()), name
    doc = json.loads((session / "findings.json").read_text())
    assert doc["session"].get("masked") is True
    assert mask(IMEI, "identifier.imei") in json.dumps(doc)  # masked, not left out


@pytest.mark.e2e
def test_masked_unless_revealed_and_revealed_only_elsewhere(captured, tmp_path: Path) -> None:
    session, profile, _ = captured
    masked = _analyze(session / "flows.mitm", profile, tmp_path / "masked")
    assert not _leaks(masked.output)  # the terminal summary
    for name in REPORTS:
        assert not _leaks((tmp_path / "masked" / name).read_text()), name

    refused = runner.invoke(app, ["report", str(tmp_path / "masked"), "--reveal"])
    assert refused.exit_code == 2  # never an unmasked copy in the folder that is sent out
    result = runner.invoke(app, ["report", str(tmp_path / "masked"), "--out",
                                 str(tmp_path / "revealed"), "--reveal"])
    assert result.exit_code == 0, result.output
    for name in REPORTS:
        assert IMEI in (tmp_path / "revealed" / name).read_text(), name
        assert not _leaks((tmp_path / "masked" / name).read_text()), name

    # --reveal does not stick: the next report of the session is masked again.
    result = runner.invoke(app, ["report", str(tmp_path / "masked")])
    assert result.exit_code == 0, result.output
    for name in REPORTS:
        assert not _leaks((tmp_path / "masked" / name).read_text()), name


# -- no network ----------------------------------------------------------------------
# Runs the real CLI in a child with an audit hook (PEP 578) that records every attempt to
# resolve a name, open an Internet socket, bind, connect or send. One thing is excused, and
# only where it is made: urllib3 (imported by tldextract through requests) probes at import
# whether the host has IPv6 by binding a socket to ("::1", 0) and closing it at once
# (urllib3/util/connection.py, ``_has_ipv6``); it never connects and never sends.
BOOT = textwrap.dedent("""
    import os, socket, sys
    log = open(sys.argv[1], "a")
    WATCH = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind",
             "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
             "socket.gethostbyaddr", "socket.getnameinfo", "http.client.connect",
             "urllib.Request", "ftplib.connect", "smtplib.connect"}
    PROBE = os.path.join("urllib3", "util", "connection.py")
    def ipv6_probe(event, args):
        if event == "socket.bind" and args[1] != ("::1", 0):
            return False
        f = sys._getframe(2)
        while f is not None:
            if f.f_code.co_name == "_has_ipv6" and f.f_code.co_filename.endswith(PROBE):
                return True
            f = f.f_back
        return False
    def hook(event, args):
        inet = event == "socket.__new__" and args[1] in (socket.AF_INET, socket.AF_INET6)
        if (event in WATCH or inet) and not (
                event in ("socket.__new__", "socket.bind") and ipv6_probe(event, args)):
            log.write(f"{event} {args[1:]!r}\\n")
            log.flush()
    sys.addaudithook(hook)
    from auditor.cli import main
    sys.argv = ["kidaudit", *sys.argv[2:]]
    main()
""")


def _no_network_prefix() -> list[str]:
    """``unshare -n`` (a namespace with no network at all) where we may use it."""
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0 and subprocess.run(
            [unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.mark.e2e
def test_analysis_makes_no_network_connection(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    t0 = T0
    capture = write_flows(tmp_path / "cap.mitm", [  # names and addresses a lookup would want
        http_flow(f"https://{HOST}/reg", t0, {"imei": IMEI}),
        http_flow(f"http://collect.tinytrack-analytics.example/c?i={IMEI}", t0 + 1),
        http_flow("https://8.8.8.8/loc", t0 + 2, {"lat": str(LAT), "lon": str(LON)}),
        http_flow("https://sdk.unknown-vendor.co.uk/v1", t0 + 3, {"phone": PHONE_DIGITS}),
    ])
    attempts = tmp_path / "attempts.log"
    attempts.touch()
    prefix = _no_network_prefix()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for argv in (["analyze", str(capture), "--profile", str(profile), "--out",
                  str(tmp_path / "out")],
                 ["report", str(tmp_path / "out"), "--lang", "zh"]):
        proc = subprocess.run([*prefix, sys.executable, "-c", BOOT, str(attempts), *argv],
                              capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0, (prefix, proc.stdout, proc.stderr[-3000:])
    assert attempts.read_text() == "", "the tool reached for the network"
    assert (tmp_path / "out" / "findings.json").is_file()
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert len(doc["transmissions"]) == 4 and doc["detections"]


@pytest.mark.e2e
def test_the_network_guard_sees_even_a_loopback_connection(tmp_path: Path) -> None:
    """The control: the same hook, a child that does connect, to 127.0.0.1."""
    attempts = tmp_path / "attempts.log"
    attempts.touch()
    boot = BOOT.replace("from auditor.cli import main", "import socket as s\nmain = lambda: "
                        "s.socket().connect_ex(('127.0.0.1', 9))")
    subprocess.run([sys.executable, "-c", boot, str(attempts)], capture_output=True,
                   timeout=60)
    assert "socket.connect (('127.0.0.1', 9),)" in attempts.read_text()
