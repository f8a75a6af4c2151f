"""The printable HTML checklist of ``kidaudit procedure``: the same ``Procedure`` as the
Markdown, with a checkbox per step and per document item, a print stylesheet (A4, steps
never split across pages) and a line for the tester's signature.

Same rules as the report (STYLE.md point 8): the one Jinja environment (autoescape,
StrictUndefined), a prepared view model, no external resources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.report import html
from auditor.standards.model import Text
from auditor.standards.procedure import (
    LABELS,
    PLAN,
    PROBE_STEP,
    PROFILE,
    Procedure,
    duration,
    item_line,
    label,
    name,
    standard_line,
)

_SIGN = {"tester": Text("Tester, signature", "测试人员签名"), "date": Text("Date", "日期")}


def render(proc: Procedure, out: Path, *, lang: str = "en") -> None:
    Path(out).write_text(render_string(proc, lang=lang), encoding="utf-8")


def render_string(proc: Procedure, *, lang: str = "en") -> str:
    return html.environment().get_template("procedure.html.j2").render(
        **build_view(proc, lang=lang))


def build_view(proc: Procedure, *, lang: str = "en") -> dict[str, Any]:
    many = len(proc.standards) > 1
    labels = {k: t.get(lang) for k, t in {**LABELS, **_SIGN}.items()}
    steps = [{
        "id": s.step.id, "number": s.number, "title": s.step.title.get(lang),
        "how": s.step.how.get(lang), "cli": s.cli, "url": s.url, "command": s.command,
        "no_mark": label("no_mark", lang),
        "mark_note": label("probe_mark", lang) if s.step.id == PROBE_STEP else "",
        "lasts": duration(s.step.min_duration_s, lang),
        "clauses": [item_line(i, lang, with_standard=many) for i in s.items],
    } for s in proc.steps]
    return {
        "lang_attr": "zh-CN" if lang == "zh" else "en",
        "title": f"{labels['title']}: " + "; ".join(name(s) for s in proc.standards),
        "standards": [standard_line(s, lang) for s in proc.standards],
        "labels": labels, "version": __version__, "profile": PROFILE, "plan": PLAN,
        "capture": proc.capture, "steps": steps,
        "review": [item_line(i, lang, with_standard=many) for i in proc.review],
        "unverified": any(i.unverified for s in proc.steps for i in s.items)
        or any(i.unverified for i in proc.review),
    }
