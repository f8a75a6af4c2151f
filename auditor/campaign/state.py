"""What a campaign folder remembers between runs: ``campaign.json`` (schema
``kidaudit.campaign/1``), and each run's inputs' hash that lets a re-run skip what did not
change.

A run is skipped ("unchanged") when the SHA-256 over everything its result depends on is the
one campaign.json recorded for it and its outputs are still there: every input file's bytes
(for a session folder, its ``session.sqlite`` and ``flows.mitm``), the profile, the consent
plan, kidaudit's version and ruleset, and the run's own columns (device, firmware, app
version, scenario: they are written into its rows and its dataset partition).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from auditor import RULESET_VERSION, __version__
from auditor.campaign.model import Campaign, Change, FindingRow, RunResult, RunSpec

SCHEMA = "kidaudit.campaign/1"
CAMPAIGN_FILE = "campaign.json"
RUNS = "runs"
SESSION_FILES = ("session.sqlite", "flows.mitm")  # what a session folder's judgement rests on


class CampaignFolderError(ValueError):
    """``--out`` holds something that is not a campaign: one line, exit 2."""


def check_out(out: Path) -> None:
    """``out`` is new, empty, or a campaign folder this command wrote before (a re-run).
    Only reads: a refused folder is left as it was."""
    if out.is_symlink():
        raise CampaignFolderError(f"{out}: is a symbolic link; give --out the folder it "
                                  "points to (or a new one)")
    if out.exists() and not out.is_dir():
        raise CampaignFolderError(f"{out}: is a file; --out needs a new or empty folder, "
                                  "or a campaign folder to update")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if _schema(out / CAMPAIGN_FILE) != SCHEMA:
        raise CampaignFolderError(f"{out}: already holds other files (not a kidaudit "
                                  f"campaign: no {CAMPAIGN_FILE}); give --out a new or empty "
                                  "folder, or a campaign folder to update")


def _schema(path: Path) -> str:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return ""
    return doc.get("schema", "") if isinstance(doc, dict) else ""


def inputs_sha256(spec: RunSpec) -> str:
    """The hash a re-run compares (see the module's docstring)."""
    h = hashlib.sha256()

    def add(label: str, value: str) -> None:
        h.update(f"{label}\0{value}\n".encode())

    for label, value in (("tool", __version__), ("ruleset", RULESET_VERSION),
                         ("device", spec.device), ("firmware", spec.firmware),
                         ("app", spec.app_version), ("scenario", spec.scenario)):
        add(label, value)
    files = [Path(p) for p in spec.inputs]
    if len(files) == 1 and files[0].is_dir():
        files = [files[0] / name for name in SESSION_FILES]
    for path in files:
        add(f"input {path.name}", _file_sha256(path))
    for label, file in (("profile", spec.profile), ("consent", spec.consent)):
        add(label, _file_sha256(Path(file)) if file else "")
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        return "missing"
    return h.hexdigest()


# --------------------------------------------------------------------------- campaign.json


def to_json(campaign: Campaign, manifest: str = "") -> dict:
    return {"schema": SCHEMA, "title": campaign.title, "manifest": manifest,
            "tool_version": __version__, "ruleset": RULESET_VERSION,
            "runs": [asdict(r) for r in campaign.runs],
            "changes": [asdict(c) for c in campaign.changes]}


def write(out: Path, campaign: Campaign, manifest: str = "") -> Path:
    path = out / CAMPAIGN_FILE
    tmp = path.with_name(f".{CAMPAIGN_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(to_json(campaign, manifest), ensure_ascii=False, indent=1),
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


def read(out: Path) -> Campaign | None:
    """The campaign ``out`` holds, or None when it holds none (or one this version cannot
    read: every run is then analysed again)."""
    path = out / CAMPAIGN_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return from_json(doc) if doc.get("schema") == SCHEMA else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def from_json(doc: dict) -> Campaign:
    return Campaign(title=doc.get("title", ""),
                    runs=tuple(_run(r) for r in doc.get("runs", [])),
                    changes=tuple(_change(c) for c in doc.get("changes", [])))


def _finding(f: dict) -> FindingRow:
    return FindingRow(**{**f, "categories": tuple(f.get("categories", ()))})


def _run(r: dict) -> RunResult:
    spec = RunSpec(**{**r["spec"], "inputs": tuple(r["spec"].get("inputs", ()))})
    return RunResult(**{
        **r, "spec": spec,
        "rules": tuple(tuple(x) for x in r.get("rules", ())),
        "findings": tuple(_finding(f) for f in r.get("findings", ())),
        "recipients": tuple(tuple(x) for x in r.get("recipients", ())),
        "categories": tuple(r.get("categories", ()))})


def _change(c: dict) -> Change:
    return Change(**{**c, "introduced": tuple(_finding(f) for f in c.get("introduced", ())),
                     "fixed": tuple(_finding(f) for f in c.get("fixed", ()))})
