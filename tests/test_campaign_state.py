"""What a campaign folder remembers: campaign.json read back as written, the inputs' hash
that decides a skip, and the folders --out accepts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from auditor.campaign import state
from auditor.campaign.changes import changes
from auditor.campaign.model import Campaign, FindingRow, RunResult, RunSpec


@pytest.fixture
def spec(tmp_path: Path) -> RunSpec:
    for name, text in (("a.mitm", "flows"), ("p.yaml", "profile"), ("c.yaml", "plan")):
        (tmp_path / name).write_text(text)
    return RunSpec(id="k2-1", device="K2", firmware="1", app_version="3", scenario="idle",
                   inputs=(str(tmp_path / "a.mitm"),), profile=str(tmp_path / "p.yaml"),
                   consent=str(tmp_path / "c.yaml"))


def test_campaign_json_reads_back_as_written(tmp_path: Path, spec: RunSpec) -> None:
    found = FindingRow(id="KA-1", rule="R", severity="high", title="t", recipient="x.example",
                       categories=("identifier.imei",), count=2, first_seen="2026-01-01T00Z")
    runs = (RunResult(spec=spec, status="done", verdict="fail", rules=(("R", "fail"),),
                      findings=(found,), recipients=(("x.example", "third", "US"),),
                      categories=("identifier.imei",), transmissions=3, folder="runs/k2-1",
                      inputs_sha256="ab"),
            RunResult(spec=replace(spec, id="k2-2", firmware="2"), status="failed",
                      error="boom"))
    campaign = Campaign(title="T", runs=runs, changes=changes(runs))
    state.write(tmp_path, campaign, "m.yaml")
    assert state.read(tmp_path) == campaign
    assert json.loads((tmp_path / "campaign.json").read_text())["manifest"] == "m.yaml"


@pytest.mark.parametrize("change", [
    lambda t, s: (t / "a.mitm").write_text("other flows"),
    lambda t, s: (t / "p.yaml").write_text("other profile"),
    lambda t, s: (t / "c.yaml").unlink(),
    lambda t, s: replace(s, firmware="1.0.1"),
    lambda t, s: replace(s, scenario="use"),
])
def test_the_hash_follows_every_input(tmp_path: Path, spec: RunSpec, change) -> None:
    before = state.inputs_sha256(spec)
    assert state.inputs_sha256(spec) == before  # the same inputs, the same hash
    changed = change(tmp_path, spec)
    assert state.inputs_sha256(changed if isinstance(changed, RunSpec) else spec) != before


def test_a_session_folders_hash_is_its_store_and_evidence(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "session.sqlite").write_text("db")
    spec = RunSpec(id="s", device="D", firmware="1", inputs=(str(folder),))
    before = state.inputs_sha256(spec)
    (folder / "report.html").write_text("a report written again changes nothing")
    assert state.inputs_sha256(spec) == before
    (folder / "flows.mitm").write_text("evidence")
    assert state.inputs_sha256(spec) != before


@pytest.mark.parametrize(("make", "expected"), [
    (lambda out: None, None),
    (lambda out: out.mkdir(), None),
    (lambda out: (out.mkdir(), (out / "campaign.json").write_text(
        '{"schema": "kidaudit.campaign/1"}')), None),
    (lambda out: out.write_text("x"), "is a file; --out needs a new or empty folder"),
    (lambda out: (out.mkdir(), (out / "campaign.json").write_text("[")),
     "already holds other files \\(not a kidaudit campaign"),
    (lambda out: out.symlink_to(out.parent), "is a symbolic link"),
])
def test_out_is_new_empty_or_a_campaign(tmp_path: Path, make, expected: str | None) -> None:
    out = tmp_path / "out"
    make(out)
    if expected is None:
        state.check_out(out)
        return
    with pytest.raises(state.CampaignFolderError, match=expected):
        state.check_out(out)
