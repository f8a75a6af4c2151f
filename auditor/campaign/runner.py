"""A campaign's runs as Dask tasks: the only module that talks to Dask.

Each run is one task (``run_one``): its captures analysed as ``kidaudit analyze`` does, or its
session folder judged again as ``kidaudit report`` does, into ``OUT/runs/<id>``; then its
findings.json (masked, complete) read back into the run's Parquet parts and a ``RunResult``.
A task reads and writes files only under paths it is given, so the same task runs on a
``LocalCluster`` the command starts (one worker process per core, one thread each: the
analysis is pure Python and holds the GIL) or on a lab's own cluster (``--scheduler``), whose
workers must see the inputs and OUT at the same paths.

A run that raises (a truncated capture, a worker lost for good) is a failed run with its
error on one line; the other runs complete. Runs whose inputs' hash campaign.json recorded
and whose outputs are in place are not sent at all ("unchanged").
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

from auditor.campaign import dataset, state
from auditor.campaign.changes import changes, ordered
from auditor.campaign.model import Campaign, FindingRow, Manifest, RunResult, RunSpec

FINDINGS_FILE = "findings.json"  # auditor.session.FINDINGS_FILE, without importing the session
CONNECT_TIMEOUT_S = 10  # how long to wait for a lab's scheduler to answer
SCHEDULER_FORM = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")


class SchedulerError(ValueError):
    """``--scheduler`` is not a scheduler's address: one line, exit 2."""


def check_scheduler(address: str) -> None:
    """``--scheduler`` names a Dask scheduler as ``tcp://HOST:PORT`` (or ``tls://``); any
    other text is the user's to fix (exit 2), before anything starts."""
    if not SCHEDULER_FORM.fullmatch(address):
        raise SchedulerError(f"--scheduler {address!r}: expected a Dask scheduler address such "
                         "as tcp://HOST:8786")


class CampaignFailed(Exception):
    """The campaign could not run at all (no cluster, no scheduler): one line, exit 3."""


def run_folder(out: Path, spec: RunSpec) -> Path:
    return out / state.RUNS / spec.id


def run_one(spec: RunSpec, out: str, inputs_sha256: str = "") -> RunResult:
    """One run, on whichever worker Dask gives it (imports here: a worker loads them once)."""
    folder = run_folder(Path(out), spec)
    if folder.exists():
        shutil.rmtree(folder)
    try:
        inputs = [Path(p) for p in spec.inputs]
        if len(inputs) == 1 and inputs[0].is_dir():
            _judge_session(inputs[0], folder)
            # Recovering a journal or opening an older store writes to it: the hash a re-run
            # compares is of the store as it was judged.
            inputs_sha256 = state.inputs_sha256(spec)
        else:
            _analyze(inputs, spec, folder)
        doc = json.loads((folder / FINDINGS_FILE).read_text(encoding="utf-8"))
        dataset.write_run(doc, spec, Path(out))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # half a run is no run: campaign.json says why
        dataset.remove_run(Path(out), spec.id)
        raise
    return result_of(doc, spec, "done", folder=f"{state.RUNS}/{spec.id}",
                     inputs_sha256=inputs_sha256)


def _analyze(inputs: list[Path], spec: RunSpec, folder: Path) -> None:
    from auditor.offline import analyze
    from auditor.profile import load_consent_plan, load_profile

    profile = load_profile(spec.profile)
    plan = load_consent_plan(spec.consent) if spec.consent else None
    # One process per run: the cluster already gives every core a run of its own.
    one = {"jobs": 1} if "jobs" in inspect.signature(analyze).parameters else {}
    analyze(inputs, profile, plan, folder, lang="en", **one)


def _judge_session(session: Path, folder: Path) -> None:
    """``kidaudit report SESSION --out FOLDER``: the session's store judged again with the
    profile and plan kept in it, after what a killed capture left in its journal."""
    from auditor.live.core import recover
    from auditor.session import reopen, write_outputs

    recover(session)
    store, profile, ledger = reopen(session)
    try:
        write_outputs(session, store, profile, ledger, lang="en", out=folder)
    finally:
        store.close()


def result_of(doc: dict, spec: RunSpec, status: str, *, folder: str = "",
              inputs_sha256: str = "") -> RunResult:
    """A run's result from its findings.json (what the session report says, masked)."""
    verdict = doc.get("verdict") or {}
    txs = [t for t in doc.get("transmissions") or [] if isinstance(t, dict)]
    up = {t.get("id") for t in txs if t.get("direction", "up") == "up"}
    recipients = set()
    for t in txs:
        r = t.get("recipient") or {}
        if t.get("id") in up:
            name = r.get("organization") or r.get("domain") or t.get("host") or t.get("ip")
            recipients.add((str(name or "?"), str(r.get("party") or ""),
                            str(r.get("country") or "")))
    findings = ordered(FindingRow(
        id=str(f.get("id", "")), rule=str(f.get("rule", "")),
        severity=str(f.get("severity", "info")), title=str(f.get("title", "")),
        recipient=str(f.get("recipient") or ""), categories=tuple(f.get("categories") or ()),
        count=int(f.get("count") or 0), first_seen=str(f.get("first_seen") or ""))
        for f in doc.get("findings") or [])
    return RunResult(
        spec=spec, status=status, verdict=str(verdict.get("result", "")),
        verdict_reason=str(verdict.get("reason", "")),
        rules=tuple((str(r.get("id")), str(r.get("status")))
                    for r in verdict.get("rules") or [] if isinstance(r, dict)),
        findings=findings, recipients=tuple(sorted(recipients)),
        categories=tuple(sorted({str(d.get("category")) for d in doc.get("detections") or []
                                 if d.get("transmission") in up and d.get("category")})),
        transmissions=len(txs), folder=folder, inputs_sha256=inputs_sha256)


def one_line(e: BaseException) -> str:
    """A run's error as campaign.json and the terminal show it."""
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    known = type(e).__name__ in ("InputError", "ConfigError", "StoreError", "FolderError")
    return first if known and first else f"{type(e).__name__}: {first}".rstrip(": ")


# --------------------------------------------------------------------------- the campaign


def run_campaign(manifest: Manifest, out: Path, *, scheduler: str | None = None,
                 workers: int | None = None,
                 on_result: Callable[[RunResult], None] = lambda _: None) -> Campaign:
    """Every run of ``manifest`` into ``out`` (checked with ``state.check_out`` first), on a
    LocalCluster of ``workers`` processes (default: one per core, at most one per run to do)
    or on the cluster at ``scheduler``; campaign.json written. Results in manifest order."""
    out.mkdir(parents=True, exist_ok=True)
    before = state.read(out)
    kept = {r.spec.id: r for r in (before.runs if before else ()) if r.status != "failed"}
    hashes = {spec.id: state.inputs_sha256(spec) for spec in manifest.runs}
    results: dict[str, RunResult] = {}
    todo: list[RunSpec] = []
    for spec in manifest.runs:
        old = kept.get(spec.id)
        if (old is not None and old.inputs_sha256 == hashes[spec.id]
                and (run_folder(out, spec) / FINDINGS_FILE).is_file()
                and dataset.written(out, [spec])):
            results[spec.id] = _replace_status(old, spec, "unchanged")
            on_result(results[spec.id])
        else:
            todo.append(spec)
    # A run to do again, or one the manifest no longer has: its old folder and parts go.
    gone = {r.spec.id for r in (before.runs if before else ())} - set(hashes)
    for run_id in gone | {spec.id for spec in todo}:
        shutil.rmtree(out / state.RUNS / run_id, ignore_errors=True)
        dataset.remove_run(out, run_id)
    # campaign.json is written first and after every run: a campaign interrupted half-way
    # (Ctrl-C, a lost client) leaves a folder the next run takes up, skipping what was done.
    _save(manifest, out, results)
    if todo:
        for result in _submit(todo, out, hashes, scheduler, workers):
            results[result.spec.id] = result
            on_result(result)
            _save(manifest, out, results)
    runs = tuple(results[spec.id] for spec in manifest.runs)
    campaign = Campaign(title=manifest.title, runs=runs, changes=changes(runs))
    state.write(out, campaign, manifest.source)
    _render(campaign, out)
    return campaign


REPORT_LANGS = ("en", "zh")


def _render(campaign: Campaign, out: Path) -> None:
    """campaign.html and campaign.zh.html, by the campaign report writer."""
    from auditor.campaign import report

    for lang in REPORT_LANGS:
        report.render(campaign, out / report.page_name(lang), lang=lang)


def _save(manifest: Manifest, out: Path, results: dict[str, RunResult]) -> None:
    """campaign.json with the runs finished so far, in manifest order."""
    runs = tuple(results[s.id] for s in manifest.runs if s.id in results)
    state.write(out, Campaign(title=manifest.title, runs=runs, changes=changes(runs)),
                manifest.source)


def _replace_status(old: RunResult, spec: RunSpec, status: str) -> RunResult:
    from dataclasses import replace

    return replace(old, spec=spec, status=status)


def _submit(todo: list[RunSpec], out: Path, hashes: dict[str, str], scheduler: str | None,
            workers: int | None):
    """Yields each run's result as it completes."""
    from distributed import Client, LocalCluster, as_completed

    _quiet()
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        else:
            n = workers or max(1, min(os.cpu_count() or 1, len(todo)))
            with warnings.catch_warnings():
                # The scheduler's health endpoint (loopback) moves to a free port when 8787
                # is taken, with a warning that is no concern of the lab's.
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       silence_logs=logging.ERROR)
            client = Client(cluster)
    except (OSError, TimeoutError) as e:
        if cluster is not None:
            cluster.close()
        where = f"the Dask scheduler at {scheduler}" if scheduler else "a local Dask cluster"
        raise CampaignFailed(f"could not reach {where}: {one_line(e)}") from None
    tag = uuid.uuid4().hex[:12]  # a lab's cluster may run two campaigns at once
    try:
        futures = {client.submit(run_one, spec, str(out.resolve()), hashes[spec.id],
                                 pure=False, key=f"kidaudit-run-{spec.id}-{tag}"): spec
                   for spec in todo}
        for future in as_completed(futures):
            spec = futures[future]
            try:
                yield future.result()
            except Exception as e:  # noqa: BLE001 - one run failing never ends the campaign
                yield RunResult(spec=spec, status="failed", error=one_line(e),
                                inputs_sha256=hashes[spec.id])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _quiet() -> None:
    """Dask's own logs stay off the lab's terminal: failed runs are reported by kidaudit."""
    for name in ("distributed", "distributed.worker", "distributed.scheduler",
                 "distributed.nanny", "distributed.core", "distributed.client"):
        logging.getLogger(name).setLevel(logging.ERROR)
