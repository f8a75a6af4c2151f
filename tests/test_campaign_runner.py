"""``kidaudit campaign`` for real: runs as Dask tasks on the default LocalCluster and on a
real ``dask scheduler`` with two ``dask worker`` processes on loopback, with inputs of every
kind (two firmwares' .mitm captures, a pcap, a live-captured demo session folder), a failing
run, and re-runs that skip what did not change."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from auditor.campaign import dataset
from auditor.campaign.manifest import load_manifest
from auditor.campaign.model import Campaign
from auditor.campaign.runner import run_campaign
from auditor.demo.run import run_demo
from tests.factories import (
    EPOCH,
    IMEI,
    PLAN_YAML,
    WATCH_PROFILE_YAML,
    http_flow,
    run_main,
    write_flows,
)
from tests.test_sources_pcap import PROFILE as PCAP_PROFILE
from tests.test_sources_pcap import _watch_capture

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
MAKER = "https://api.acme-watch.example"
MANIFEST = """title: "Acme K2, round 3"
defaults: {profile: k2/profile.yaml, consent: k2/consent.yaml}
runs:
  - {device: "Acme K2", firmware: "1.4.2", app: "3.2.0", scenario: idle, inputs: [k2/142.mitm]}
  - {device: "Acme K2", firmware: "1.5.0", app: "3.2.0", scenario: idle, inputs: [k2/150.mitm]}
  - {device: "Lab watch", firmware: "2.0", scenario: use, inputs: [lab/watch.pcap],
     profile: lab/profile.yaml, id: lab-watch}
  - {device: "Demo watch", firmware: "demo", scenario: binding, inputs: [demo]}
"""
IDS = ["acme-k2-1.4.2-idle", "acme-k2-1.5.0-idle", "lab-watch", "demo-watch-demo-binding"]
BAD = """defaults: {profile: k2/profile.yaml}
runs:
  - {device: "Acme K2", firmware: "1.4.2", inputs: [k2/142.mitm]}
  - {device: "Acme K2", firmware: "1.6.0", inputs: [k2/cut.pcap]}
"""
ALL_BAD = """runs:
  - {device: "Acme K2", firmware: "1.6.0", inputs: [k2/cut.pcap], profile: k2/profile.yaml}
"""


def _firmware(path: Path, tracker: str) -> Path:
    """A firmware's capture: the IMEI to the maker (before consent, once in clear text) and
    to one tracker, which differs between firmwares."""
    return write_flows(path, [
        http_flow(f"{MAKER}/reg", EPOCH, {"imei": IMEI}),
        http_flow(f"https://{tracker}/collect", EPOCH + 1, {"imei": IMEI}),
        http_flow("http://api.acme-watch.example/ping", EPOCH + 2, {"imei": IMEI})])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    (root / "k2").mkdir()
    (root / "lab").mkdir()
    (root / "k2" / "profile.yaml").write_text(WATCH_PROFILE_YAML)
    (root / "k2" / "consent.yaml").write_text(PLAN_YAML)
    _firmware(root / "k2" / "142.mitm", "tracker.example.com")
    _firmware(root / "k2" / "150.mitm", "ads.example.net")
    (root / "lab" / "profile.yaml").write_text(PCAP_PROFILE)
    pcap = _watch_capture().write(root / "lab" / "watch.pcap")
    (root / "k2" / "cut.pcap").write_bytes(pcap.read_bytes()[:10])  # cut inside its header
    run_demo(root / "demo")  # a live-captured session through real mitmproxy
    for name, text in (("m.yaml", MANIFEST), ("bad.yaml", BAD), ("all-bad.yaml", ALL_BAD)):
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def local(lab: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Campaign]:
    """The campaign on the default LocalCluster (the embedded default)."""
    out = tmp_path_factory.mktemp("local") / "out"
    return out, run_campaign(load_manifest(lab / "m.yaml"), out)


def _doc(out: Path, run_id: str) -> dict:
    return json.loads((out / "runs" / run_id / "findings.json").read_text())


def test_every_run_is_analysed_with_the_session_reports_verdict(local: tuple[Path, Campaign]
                                                                ) -> None:
    out, campaign = local
    assert [(r.spec.id, r.status, r.error) for r in campaign.runs] == [
        (run_id, "done", "") for run_id in IDS]
    for r in campaign.runs:
        doc = _doc(out, r.spec.id)
        assert (r.verdict, r.verdict_reason) == (doc["verdict"]["result"],
                                                 doc["verdict"]["reason"])
        assert sorted((f.rule, f.recipient) for f in r.findings) == sorted(
            (f["rule"], f["recipient"]) for f in doc["findings"])
        assert r.transmissions == len(doc["transmissions"])
        assert r.folder == f"runs/{r.spec.id}"
    demo = campaign.runs[3]
    assert ("PRE_CONSENT_PI", "Acme Watch Co.") in {(f.rule, f.recipient) for f in demo.findings}
    assert "location.precise" in demo.categories
    saved = json.loads((out / "campaign.json").read_text())
    assert saved["schema"] == "kidaudit.campaign/1"
    assert [r["inputs_sha256"] for r in saved["runs"]] == [
        r.inputs_sha256 for r in campaign.runs] and all(r.inputs_sha256 for r in campaign.runs)


def test_what_a_firmware_introduced_and_fixed(local: tuple[Path, Campaign]) -> None:
    _, campaign = local
    (change,) = campaign.changes  # one device with two firmwares in one scenario
    assert (change.device, change.scenario, change.before, change.after) == (
        "Acme K2", "idle", "1.4.2", "1.5.0")
    introduced = {(f.rule, f.recipient) for f in change.introduced}
    fixed = {(f.rule, f.recipient) for f in change.fixed}
    assert ("THIRD_PARTY_UNDISCLOSED", "example.net") in introduced
    assert ("THIRD_PARTY_UNDISCLOSED", "example.com") in fixed
    assert {r for _, r in introduced} == {"example.net"}  # the maker's findings persist
    assert {r for _, r in fixed} == {"example.com"}


@pytest.mark.parametrize("table", dataset.TABLES)
def test_the_dataset_holds_every_runs_rows_under_its_device_and_firmware(
        local: tuple[Path, Campaign], table: str) -> None:
    out, campaign = local
    frame = pd.read_parquet(out / "dataset" / table)
    for r in campaign.runs:
        rows = frame[frame["run_id"] == r.spec.id]
        assert len(rows) == len(_doc(out, r.spec.id)[table])
        assert set(rows["device"].astype(str)) == {r.spec.device}
        assert set(rows["firmware"].astype(str)) == {r.spec.firmware}
    assert len(frame) > 0


def test_a_rerun_skips_unchanged_runs_and_redoes_a_changed_one(
        lab: Path, local: tuple[Path, Campaign], tmp_path: Path) -> None:
    lab2, out = tmp_path / "lab", tmp_path / "out"
    shutil.copytree(lab, lab2)
    shutil.copytree(local[0], out)
    again = run_campaign(load_manifest(lab2 / "m.yaml"), out)  # no cluster: nothing to do
    assert [r.status for r in again.runs] == ["unchanged"] * 4
    assert [r.findings for r in again.runs] == [r.findings for r in local[1].runs]
    kept = {p: p.stat().st_mtime_ns for p in (out / "dataset").rglob("*.parquet")}
    write_flows(lab2 / "k2" / "150.mitm", [http_flow(f"{MAKER}/reg", EPOCH, {"ok": 1})])
    # and the lab watch's run as a campaign interrupted before it finished leaves it
    saved = json.loads((out / "campaign.json").read_text())
    saved["runs"] = [r for r in saved["runs"] if r["spec"]["id"] != "lab-watch"]
    (out / "campaign.json").write_text(json.dumps(saved))
    changed = run_campaign(load_manifest(lab2 / "m.yaml"), out)
    assert [r.status for r in changed.runs] == ["unchanged", "done", "done", "unchanged"]
    assert changed.runs[1].transmissions == 1 and changed.runs[1].findings == ()
    assert changed.runs[2].findings == local[1].runs[2].findings
    for path, mtime in kept.items():  # only those two runs' parts were written again
        again = "1.5.0" in str(path) or "lab-watch" in path.name
        assert (path.stat().st_mtime_ns != mtime) == again, path
    found = pd.read_parquet(out / "dataset" / "findings")
    assert "acme-k2-1.5.0-idle" not in set(found["run_id"])
    assert {(f.rule, f.recipient) for f in changed.changes[0].fixed} >= {
        ("PRE_CONSENT_PI", "acme-watch.example")}


def test_the_gates_name_each_finding_and_exit_1(local: tuple[Path, Campaign], lab: Path,
                                                tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    shutil.copytree(local[0], out)
    code, err = run_main(["campaign", str(lab / "m.yaml"), "--out", str(out),
                          "--fail-on-new", "HIGH"], monkeypatch, capsys)
    assert code == 1
    assert "kidaudit: --fail-on-new high: 4 new findings at or above high:" in err
    assert ("  Acme K2 idle: 1.4.2 -> 1.5.0: [HIGH] THIRD_PARTY_UNDISCLOSED -> example.net"
            in err.splitlines())
    code, err = run_main(["campaign", str(lab / "m.yaml"), "--out", str(out),
                          "--fail-on", "critical"], monkeypatch, capsys)
    assert code == 1
    assert "  lab-watch: [CRITICAL] COVERT_MONITOR -> watch.example" in err.splitlines()
    code, _ = run_main(["campaign", str(lab / "m.yaml"), "--out", str(out)], monkeypatch,
                       capsys)
    assert code == 0


def test_a_failing_run_is_reported_and_the_others_complete(lab: Path, tmp_path: Path,
                                                           monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    code, err = run_main(["campaign", str(lab / "bad.yaml"), "--out", str(out)],
                         monkeypatch, capsys)
    assert code == 0, err
    cut = lab / "k2" / "cut.pcap"
    assert (f"kidaudit: run acme-k2-1.6.0 failed: {cut}: not a pcap or pcapng capture "
            "(Not a supported capture file)") in err.splitlines()
    runs = json.loads((out / "campaign.json").read_text())["runs"]
    assert [(r["spec"]["id"], r["status"], bool(r["error"])) for r in runs] == [
        ("acme-k2-1.4.2", "done", False), ("acme-k2-1.6.0", "failed", True)]
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["acme-k2-1.4.2"]
    code, err = run_main(["campaign", str(lab / "all-bad.yaml"), "--out",
                          str(tmp_path / "out2")], monkeypatch, capsys)
    assert code == 3
    assert "failed (see above)" in err.splitlines()[-1]


# -- a real Dask cluster: a scheduler and two workers as the lab would start them -----------

def _wait_for(path: Path, procs: list[subprocess.Popen], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.is_file():
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise AssertionError(f"{path} never appeared (or a dask process ended)")
        time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path: Path):
    """``dask scheduler`` and two ``dask worker`` processes on loopback: the address, once
    both workers have joined. Every process is stopped at the end, whatever happened."""
    from distributed import Client

    file = tmp_path / "scheduler.json"
    log = open(tmp_path / "dask.log", "wb")  # noqa: SIM115 - closed in finally
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--scheduler-file", file, "--no-dashboard"], stdout=log, stderr=log))
        _wait_for(file, procs)
        for _ in range(2):
            procs.append(subprocess.Popen(
                [BIN / "dask", "worker", "--scheduler-file", file, "--host", "127.0.0.1",
                 "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
                stdout=log, stderr=log))
        address = json.loads(file.read_text())["address"]
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):  # the workers first: without a scheduler they linger
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        log.close()


def _frame(out: Path, table: str) -> pd.DataFrame:
    """A table as rows comparable across two campaigns: lists as tuples, sorted."""
    frame = pd.read_parquet(out / "dataset" / table)
    for column in frame.columns:
        if frame[column].dtype == object or str(frame[column].dtype) == "category":
            frame[column] = frame[column].map(
                lambda v: tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)
    frame = frame.astype({"device": str, "firmware": str})
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_a_lab_cluster_gives_the_same_rows_and_verdicts_as_the_local_default(
        cluster: str, lab: Path, local: tuple[Path, Campaign], tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run([BIN / "kidaudit", "campaign", lab / "m.yaml", "--out", out,
                           "--scheduler", cluster], capture_output=True, text=True,
                          timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert "4 of 4 runs done" in done.stdout
    assert "distributed" not in done.stderr  # Dask's own logs stay off the terminal
    remote = json.loads((out / "campaign.json").read_text())
    assert [(r["spec"]["id"], r["status"], r["verdict"]) for r in remote["runs"]] == [
        (r.spec.id, "done", r.verdict) for r in local[1].runs]
    for table in dataset.TABLES:
        pd.testing.assert_frame_equal(_frame(out, table), _frame(local[0], table))
