"""The campaign page: a lab's whole test matrix on one page, in the session report's style.

``build_view`` turns a ``Campaign`` into plain dicts and lists; ``render`` writes the page
(``DIR/campaign.html``, ``DIR/campaign.zh.html``). Same rules as the session report (STYLE.md
point 8): the one Jinja environment of ``auditor.report.html`` (autoescape, StrictUndefined)
and its stylesheet, no external resource, no script. Device, firmware, scenario and run names
come from the lab's manifest and recipients from captured traffic: every one is hostile text
to the page, printed only through autoescaping, isolated in ``<bdi>`` so a right-to-left
override inside a name cannot reorder the text around it, and never used raw in an ``id`` or a
link. Recipients and finding titles are printed as the runs' findings.json hold them: masked
unless the lab revealed them.

``build_view`` reads no clock: ``render`` hands it the time the page is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from auditor import RULESET_VERSION, __version__
from auditor.campaign.model import Campaign, Change, FindingRow, RunResult
from auditor.report import html
from auditor.report.display import DASH, or_dash, severity_key, severity_order
from auditor.report.i18n import CAMPAIGN_LABELS, TERMS, VERDICT_REASON_TEXT
from auditor.store import printable, private_dir

TEMPLATE = "campaign.html.j2"
RESULTS = ("fail", "pass", "inconclusive")  # a run's verdicts, as the tiles count them
# A matrix cell per rule status: its CSS class and the mark it shows (the legend explains)
CELLS = {"fail": ("hit", "✗"), "pass": ("pass", "✓"), "not exercised": ("zero", "·")}
ERROR_CAP = 400  # characters of a failed run's error shown: it is one line, never a dump
UNKNOWN = severity_order("")  # after every known severity
PAGE_NAMES = {"en": "campaign.html"}  # other languages: campaign.<lang>.html


def page_name(lang: str) -> str:
    """The page's file name in the campaign folder for ``lang``."""
    return PAGE_NAMES.get(lang, f"campaign.{lang}.html")


def render(campaign: Campaign, out: Path, *, lang: str = "en",
           now: datetime | None = None) -> None:
    """Write the campaign page to ``out`` (its folder is made private when new)."""
    generated = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    page = render_string(campaign, lang=lang, generated=generated)
    out = Path(out)
    if not out.parent.exists():
        private_dir(out.parent)
    out.write_text(printable(page), encoding="utf-8")


def render_string(campaign: Campaign, *, lang: str = "en", generated: str = "") -> str:
    view = build_view(campaign, lang, generated=generated)
    return html.environment().get_template(TEMPLATE).render(**view)


def build_view(campaign: Campaign, lang: str = "en", *, generated: str = "") -> dict[str, Any]:
    """The template's whole input. Pure: the same campaign gives the same view."""
    html.check_lang(lang)
    t, terms = CAMPAIGN_LABELS[lang], TERMS[lang]
    titles = html.RuleTitles(lang)
    runs = [_run(i, r, t, terms, lang) for i, r in enumerate(campaign.runs, 1)]
    verdicts = [r.verdict for r in campaign.runs if r.status != "failed"]
    return {
        "t": t,
        "title": campaign.title or t["untitled"],
        "generated": generated or DASH,
        "tool_version": __version__,
        "ruleset": RULESET_VERSION,
        "counts": {"runs": len(campaign.runs),
                   "failed": sum(r.status == "failed" for r in campaign.runs),
                   "unchanged": sum(r.status == "unchanged" for r in campaign.runs)},
        "verdicts": [{"key": v, "label": terms["result"][v], "n": verdicts.count(v)}
                     for v in RESULTS],
        "matrix": _matrix(campaign.runs, runs, t, terms),
        "recipients": _recipients(campaign.runs, runs, terms),
        "changes": [_change(c, t, terms, titles) for c in campaign.changes],
        "inconclusive": [r for r, res in zip(runs, campaign.runs, strict=True)
                         if res.status != "failed" and res.verdict == "inconclusive"],
        "failed": [r for r in runs if r["status_key"] == "failed"],
        "footer": t["footer"].format(version=__version__, ruleset=RULESET_VERSION),
    }


# -- parts ---------------------------------------------------------------------------------


def _run(index: int, r: RunResult, t: Mapping[str, str], terms: Mapping[str, Any],
         lang: str) -> dict[str, Any]:
    """One run as every section names it. Its link is built from the run id with every
    character that is not a plain letter, digit or ``-._~`` percent-encoded, so a hostile id
    stays one path segment under ``runs/``."""
    spec = r.spec
    status = r.status if r.status in ("done", "unchanged", "failed") else "failed"
    verdict = r.verdict if r.verdict in RESULTS and status != "failed" else ""
    return {
        "anchor": f"run-{index}",
        "id": or_dash(spec.id),
        "device": or_dash(spec.device),
        "firmware": or_dash(spec.firmware),
        "app_version": or_dash(spec.app_version),
        "scenario": or_dash(spec.scenario),
        "link": f"runs/{quote(spec.id, safe='')}/report.html"
        if spec.id and status != "failed" else "",
        "status_key": status,
        "status": t["status_" + status],
        "verdict_key": verdict or "none",
        "verdict": terms["result"][verdict] if verdict else DASH,
        "reason": reason_text(r.verdict_reason, lang) or DASH,
        "error": _one_line(r.error) or DASH,
        "transmissions": r.transmissions if status != "failed" else DASH,
    }


def reason_text(reason: str, lang: str) -> str:
    """A run's verdict reason in ``lang``; one no pattern knows is shown as written."""
    for pattern, text in VERDICT_REASON_TEXT.get(lang, ()):
        if (match := re.fullmatch(pattern, reason)) is not None:
            return text.format(*match.groups())
    return reason


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= ERROR_CAP else line[:ERROR_CAP - 1] + "…"


def _matrix(results: Iterable[RunResult], runs: list[dict[str, Any]], t: Mapping[str, str],
            terms: Mapping[str, Any]) -> dict[str, Any]:
    """Rows are runs, columns rules: the rules that failed somewhere first (worst severity,
    then id), then the others by id. A cell counts the run's findings of that rule."""
    results = list(results)
    worst: dict[str, int] = {}
    for r in results:
        for f in r.findings:
            worst[f.rule] = min(worst.get(f.rule, UNKNOWN), severity_order(f.severity))
        for rule, status in r.rules:
            if status == "fail":
                worst.setdefault(rule, UNKNOWN)
    seen = {rule for r in results for rule, _ in r.rules} | set(worst)
    rules = sorted(seen, key=lambda rule: (rule not in worst, worst.get(rule, 0), rule))
    rows = []
    for run, r in zip(runs, results, strict=True):
        status = dict(r.rules)
        found: dict[str, list[FindingRow]] = {}
        for f in r.findings:
            found.setdefault(f.rule, []).append(f)
        for rule in found:  # a rule with findings failed, whatever the list says
            status.setdefault(rule, "fail")
        cells = []
        for rule in rules:
            s = status.get(rule, "") if run["status_key"] != "failed" else ""
            css, mark = CELLS.get(s, ("absent", ""))
            hits = found.get(rule, [])
            severity = min((f.severity for f in hits), key=severity_order, default="")
            cells.append({
                "css": css, "mark": mark, "n": len(hits) if s == "fail" and hits else "",
                "severity": severity_key(severity) if hits else "none",
                "label": terms["result"].get(s, t["cell_absent"]) + f" · {rule}",
            })
        rows.append({**run, "cells": cells})
    return {"rules": rules, "rows": rows}


def _recipients(results: Iterable[RunResult], runs: list[dict[str, Any]],
                terms: Mapping[str, Any]) -> dict[str, Any]:
    """Rows are recipients, columns each device and firmware in manifest order; a cell holds
    the categories the findings name for that recipient from that device and firmware (runs
    of several scenarios merged), ``·`` when the runs sent to it without a finding."""
    results = list(results)
    firmwares: dict[str, list[str]] = {}  # device -> its firmwares, both in manifest order
    for r in results:
        if r.status != "failed" and r.spec.firmware not in (
                seen := firmwares.setdefault(r.spec.device, [])):
            seen.append(r.spec.firmware)
    columns = [(device, f) for device, fws in firmwares.items() for f in fws]
    sent: dict[str, dict[tuple[str, str], set[str]]] = {}
    facts: dict[str, tuple[set[str], set[str]]] = {}
    every: dict[tuple[str, str], set[str]] = {key: set() for key in columns}
    for r in results:
        if r.status == "failed":
            continue
        key = (r.spec.device, r.spec.firmware)
        every[key].update(r.categories)
        for name, party, country in r.recipients:
            sent.setdefault(name, {}).setdefault(key, set())
            parties, countries = facts.setdefault(name, (set(), set()))
            parties.add(party or "unknown")
            if country:
                countries.add(country)
        for f in r.findings:
            sent.setdefault(f.recipient, {}).setdefault(key, set()).update(f.categories)
            facts.setdefault(f.recipient, (set(), set()))
    rows = []
    for name in sorted(sent, key=lambda n: (_party_order(facts[n][0]), n)):
        parties, countries = facts[name]
        rows.append({
            "recipient": or_dash(name),
            "party_key": _party_class(parties),
            "party": ", ".join(terms["party"].get(p, p) for p in sorted(parties)) or DASH,
            "country": ", ".join(sorted(countries)) or DASH,
            "cells": [{"sent": key in sent[name], "categories": sorted(sent[name].get(key, ()))}
                      for key in columns],
        })
    devices = [{"name": or_dash(d), "span": len(fws)} for d, fws in firmwares.items() if fws]
    return {"devices": devices, "firmwares": [or_dash(f) for _, f in columns], "rows": rows,
            "every": [sorted(every[key]) for key in columns]}


def _party_class(parties: set[str]) -> str:
    for party in ("third", "unknown", "first"):
        if party in parties:
            return party
    return "unknown"


def _party_order(parties: set[str]) -> int:
    """Third parties first: they are what a reader looks for."""
    return {"third": 0, "unknown": 1, "first": 2}[_party_class(parties)]


def _change(c: Change, t: Mapping[str, str], terms: Mapping[str, Any],
            titles: html.RuleTitles) -> dict[str, Any]:
    def finding(f: FindingRow) -> dict[str, Any]:
        return {"severity": severity_key(f.severity),
                "severity_label": terms["severity"].get(f.severity, or_dash(f.severity)),
                "rule": or_dash(f.rule), "title": titles.title(f.rule, f.title),
                "recipient": or_dash(f.recipient), "categories": list(f.categories),
                "count": f.count}

    def order(f: FindingRow) -> tuple:
        return (severity_order(f.severity), f.rule, f.recipient)

    return {"device": or_dash(c.device), "scenario": c.scenario,
            "before": or_dash(c.before), "after": or_dash(c.after),
            "introduced": [finding(f) for f in sorted(c.introduced, key=order)],
            "fixed": [finding(f) for f in sorted(c.fixed, key=order)]}


__all__ = ["build_view", "page_name", "reason_text", "render", "render_string"]
