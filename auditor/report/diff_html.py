"""The HTML page of ``kidaudit diff``: two sessions side by side, in the report's style.

Same rules as the report (STYLE.md point 8): one Jinja environment with autoescape and
StrictUndefined, a prepared view model, no external resources. The caveats come first: a
reader quoting "fixed" must see, before it, what the two sessions could not both see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.diff import (
    LIST_JOIN,
    Caveat,
    FindingChange,
    FindingRef,
    SessionDiff,
    SessionRef,
    caveat_text,
)
from auditor.report import html
from auditor.report.display import DASH, fmt_ts, severity_key
from auditor.report.i18n import DIFF_LABELS, TERMS


def render(d: SessionDiff, out: Path, lang: str = "en") -> None:
    page = render_string(d, lang=lang)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")


def render_string(d: SessionDiff, *, lang: str = "en") -> str:
    return html.environment().get_template("diff.html.j2").render(**build_view(d, lang=lang))


def build_view(d: SessionDiff, *, lang: str = "en") -> dict[str, Any]:
    html.check_lang(lang)
    t, terms = DIFF_LABELS[lang], TERMS[lang]
    titles = html.RuleTitles(lang)

    def finding(f: FindingRef) -> dict[str, Any]:
        names = f.recipient if f.organisation and f.organisation != f.recipient else ""
        return {"rule": f.rule or DASH, "severity": severity_key(f.severity),
                "severity_label": terms["severity"].get(f.severity, f.severity or DASH),
                "title": titles.title(f.rule, f.title),
                "recipient": f.organisation or f.recipient or DASH, "recipient_names": names,
                "categories": list(f.categories), "count": f.count}

    def caveat(c: Caveat) -> str:
        """The caveat in the page's language: its words translated, names (HAR, pcap, a
        transport, a capture mode) as they are."""
        if "caveat_" + c.kind not in t:
            return caveat_text(c)

        def words(value: str) -> str:
            return LIST_JOIN.join(t.get("value_" + v, v) for v in value.split(LIST_JOIN))

        return t["caveat_" + c.kind].format(old=words(c.old), new=words(c.new))

    def change(c: FindingChange) -> dict[str, Any]:
        unsure = "" if c.comparable else t["removal_unsure"].format(
            transports=", ".join(c.old.transports))
        return {**finding(c.new), "count_old": c.old.count, "added": list(c.added),
                "removed": list(c.removed), "unsure": unsure}

    def session(s: SessionRef) -> dict[str, str]:
        return {"device": s.device or DASH, "firmware": s.firmware or DASH,
                "id": s.id or DASH, "window": f"{fmt_ts(s.started)} → {fmt_ts(s.ended)}"}

    return {
        "t": t,
        "old": session(d.old), "new": session(d.new), "changed": d.changed,
        "introduced": [finding(f) for f in d.findings_introduced],
        "fixed": [finding(f) for f in d.findings_fixed],
        "persisting": [{**finding(n), "count_old": o.count} for o, n in d.findings_persisting],
        "changes": [change(c) for c in d.findings_changed],
        "not_comparable": [{**finding(f), "side": t["old"]} for f in d.not_comparable_old]
        + [{**finding(f), "side": t["new"]} for f in d.not_comparable_new],
        "not_comparable_flows": [
            {"recipient": r, "categories": list(d.categories_not_comparable.get(r, ()))}
            for r in d.recipients_not_comparable]
        + [{"recipient": r, "categories": list(c)} for r, c in d.categories_not_comparable.items()
           if r not in d.recipients_not_comparable],
        "caveats": [caveat(c) for c in d.caveats],
        "recipients_new": [{"recipient": r, "categories": list(d.categories_new.get(r, ()))}
                           for r in d.recipients_new],
        "recipients_vanished": list(d.recipients_vanished),
        "categories_new": [{"recipient": r, "categories": list(c)}
                           for r, c in d.categories_new.items() if r not in d.recipients_new],
        "categories_vanished": [{"recipient": r, "categories": list(c)}
                                for r, c in d.categories_vanished.items()],
        "footer": t["footer"].format(version=__version__),
    }


__all__ = ["build_view", "render", "render_string"]
