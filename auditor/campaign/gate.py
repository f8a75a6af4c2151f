"""``--fail-on`` and ``--fail-on-new`` across a campaign, for CI (pure: what crossed the line;
the CLI prints it and exits 1).

``--fail-on S``: any run has a finding at or above S. ``--fail-on-new S``: a firmware
introduced a finding at or above S against the previous firmware of the same device and
scenario (``changes``). A failed run crosses neither line: it is reported as failed, and a
campaign whose every run failed exits 3 before any gate is asked."""

from __future__ import annotations

from auditor.campaign.model import Campaign, FindingRow
from auditor.categories import severity_rank


def crossed(campaign: Campaign, severity: str) -> list[tuple[str, FindingRow]]:
    """(run id, finding) for every finding at or above ``severity``, worst first."""
    line = severity_rank(severity)
    hits = [(run.spec.id, f) for run in campaign.runs for f in run.findings
            if run.status != "failed" and severity_rank(f.severity) <= line]
    return sorted(hits, key=lambda h: (severity_rank(h[1].severity), h[0], h[1].rule))


def introduced(campaign: Campaign, severity: str) -> list[tuple[str, FindingRow]]:
    """("device scenario: before -> after", finding) for every finding a firmware introduced
    at or above ``severity``."""
    line = severity_rank(severity)
    return [(f"{c.device}{' ' + c.scenario if c.scenario else ''}: {c.before} -> {c.after}", f)
            for c in campaign.changes for f in c.introduced
            if severity_rank(f.severity) <= line]


def line(where: str, f: FindingRow) -> str:
    """One finding on one line of a CI log (the recipient is masked, as in findings.json)."""
    return f"  {where} [{f.severity.upper()}] {f.rule} -> {f.recipient or '?'}"
