"""The HTML page of ``kidaudit diff``: two sessions side by side, in the report's style.

Same rules as the report (STYLE.md point 8): one Jinja environment with autoescape and
StrictUndefined, a prepared view model, no external resources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.diff import FindingRef, SessionDiff, SessionRef
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
        return {"rule": f.rule or DASH, "severity": severity_key(f.severity),
                "severity_label": terms["severity"].get(f.severity, f.severity or DASH),
                "title": titles.title(f.rule, f.title),
                "recipient": f.recipient or DASH, "categories": list(f.categories),
                "count": f.count}

    def session(s: SessionRef) -> dict[str, str]:
        return {"device": s.device or DASH, "firmware": s.firmware or DASH,
                "id": s.id or DASH, "window": f"{fmt_ts(s.started)} → {fmt_ts(s.ended)}"}

    return {
        "t": t,
        "old": session(d.old), "new": session(d.new), "changed": d.changed,
        "introduced": [finding(f) for f in d.findings_introduced],
        "fixed": [finding(f) for f in d.findings_fixed],
        "persisting": [{**finding(n), "count_old": o.count} for o, n in d.findings_persisting],
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
