"""A session folder holds one session: the checks, and ``capture --resume`` end to end through
the installed ``kidaudit capture`` (real mitmdump, a real client, SIGINT as at a terminal)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from auditor.demo.cloud import LocalCloud
from auditor.folder import FolderError, check_new, check_resumable, is_running
from auditor.live.lock import hold_lock
from auditor.store import Store
from tests.factories import IMEI, IMEI_PROFILE_YAML
from tests.proxyrun import listening_port, wait_for_line

KIDAUDIT = Path(sys.executable).with_name("kidaudit")


def _capture_session(tmp_path: Path) -> Path:
    """A folder as an interrupted capture leaves it: store, evidence, the profile's copy."""
    session = tmp_path / "session"
    store = Store(session)
    store.set_meta(inputs="live capture (flows.mitm)")
    store.close()
    (session / "flows.mitm").write_bytes(b"")
    (session / "profile.yaml").write_text(IMEI_PROFILE_YAML)
    return session


@pytest.mark.parametrize(("prepare", "expected"), [
    (lambda p: None, None),
    (lambda p: p.mkdir(), None),
    (lambda p: p.write_text("x"), "is a file; --out needs a new or empty folder"),
    (lambda p: p.mkdir() or (p / ".hidden").write_text("x"), "already holds other files"),
    (lambda p: Store(p).close(), "already holds a kidaudit session"),
    (lambda p: Store(p.parent).close(), "is inside the session folder"),
    (lambda p: Store(p.parent).close() or p.mkdir(), "is inside the session folder"),
])
def test_only_a_new_or_empty_folder_is_taken(tmp_path: Path, prepare, expected) -> None:
    folder = tmp_path / "f"
    prepare(folder)
    if expected is None:
        check_new(folder, option="--out")
        return
    with pytest.raises(FolderError, match=expected):
        check_new(folder, option="--out")


def test_a_running_capture_is_named_as_such(tmp_path: Path) -> None:
    session = _capture_session(tmp_path)
    lock = hold_lock(session)
    try:
        assert is_running(session)
        with pytest.raises(FolderError, match="a capture is running on this folder"):
            check_new(session, option="--session")
        with pytest.raises(FolderError, match="still running"):
            check_resumable(session, session / "profile.yaml", None)
    finally:
        lock.close()
    assert not is_running(session)


@pytest.mark.parametrize(("profile_text", "consent", "meta", "expected"), [
    (IMEI_PROFILE_YAML, False, None, None),
    (IMEI_PROFILE_YAML + "first_party: [x.example]\n", False, None, "differs from the profile"),
    (IMEI_PROFILE_YAML, True, None, "captured without a consent plan"),
    (IMEI_PROFILE_YAML, False, "cap.har", "made by analyze from cap.har"),
])
def test_resume_needs_the_same_profile_and_plan_and_a_capture(
        tmp_path: Path, profile_text: str, consent: bool, meta: str | None,
        expected: str | None) -> None:
    session = _capture_session(tmp_path)
    if meta:
        store = Store(session)
        store.set_meta(inputs=meta)
        store.close()
    given = tmp_path / "given.yaml"
    given.write_text(profile_text)
    plan = tmp_path / "plan.yaml"
    plan.write_text("withdrawal_grace_s: 60\n")
    args = (session, given, plan if consent else None)
    if expected is None:
        check_resumable(*args)
    else:
        with pytest.raises(FolderError, match=expected):
            check_resumable(*args)


def test_resume_without_the_plan_the_capture_had_is_refused(tmp_path: Path) -> None:
    session = _capture_session(tmp_path)
    (session / "consent.yaml").write_text("withdrawal_grace_s: 60\n")
    with pytest.raises(FolderError, match="was captured with a consent plan"):
        check_resumable(session, session / "profile.yaml", None)


# -- end to end: a capture, a refused second one, a resumed one -----------------------------
def _start(profile: Path, session: Path, conf: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(KIDAUDIT), "capture", "--profile", str(profile), "--session", str(session),
         "--listen-host", "127.0.0.1", "--port", "0", *extra, "--",
         "--set", f"confdir={conf}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _one_request(proc: subprocess.Popen, cloud: LocalCloud, path: str) -> str:
    """Send one request carrying the IMEI through the capture, Ctrl-C it, return its output."""
    try:
        port = listening_port(proc)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
        host, cloud_port = cloud.http_addr
        with opener.open(f"http://{host}:{cloud_port}/{path}?imei={IMEI}", timeout=10) as r:
            assert r.status == 200
        wait_for_line(proc, r"\[CRITICAL\] CLEARTEXT_PI")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    return out


@pytest.mark.e2e
def test_a_capture_is_resumed_only_when_asked_and_the_report_says_so(
        tmp_path: Path, imei_profile: Path) -> None:
    profile = imei_profile
    session, conf = tmp_path / "session", tmp_path / "conf"
    with LocalCloud() as cloud:
        first = _start(profile, session, conf)
        printed = _one_request(first, cloud, "first")
        assert first.returncode == 0, printed
        assert f"report: {session / 'report.html'}" in printed
        evidence = {p.name: p.read_bytes() for p in session.iterdir()}

        again = subprocess.run(
            [str(KIDAUDIT), "capture", "--profile", str(profile), "--session", str(session)],
            capture_output=True, text=True, timeout=60)
        assert again.returncode == 2 and "add --resume" in again.stderr
        assert {p.name: p.read_bytes() for p in session.iterdir()} == evidence

        other = tmp_path / "other.yaml"
        other.write_text(IMEI_PROFILE_YAML + "jurisdiction: CN\n")
        changed = subprocess.run(
            [str(KIDAUDIT), "capture", "--profile", str(other), "--session", str(session),
             "--resume"], capture_output=True, text=True, timeout=60)
        assert changed.returncode == 2 and "differs from the profile" in changed.stderr

        resumed = _start(profile, session, conf, "--resume")
        printed = _one_request(resumed, cloud, "second")
        assert resumed.returncode == 0, printed
    doc = json.loads((session / "findings.json").read_text())
    assert [t["url"].split("?")[0].rsplit("/", 1)[-1] for t in doc["transmissions"]] == [
        "first", "second"]
    assert [t["id"] for t in doc["transmissions"]] == [1, 2]  # numbering goes on
    assert len(doc["session"]["resumed"]) == 1
    assert doc["session"]["resumed"][0] > doc["transmissions"][0]["ts"]
    assert "Capture resumed (UTC)" in (session / "report.html").read_text()
