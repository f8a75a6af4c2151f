"""How the pages (the report and the diff) write values: times, severities, missing text.

Shared by ``html``, ``timeline`` and ``diff_html`` so a value reads the same on every page.
"""

from __future__ import annotations

from datetime import datetime

from auditor.categories import SEVERITIES
from auditor.report.document import parse_time

DASH = "—"  # a value the document does not have
ARROW = " → "  # an encoding chain, outermost first


def or_dash(value: object) -> str:
    return DASH if value is None or value == "" else str(value)


def fmt_ts(value: datetime | str | None) -> str:
    """A time as ``2026-11-28 10:02:11`` (UTC, milliseconds only when present). A text that
    is not an ISO 8601 time the UTC calendar holds is shown as written."""
    ts = parse_time(value)
    if ts is None:
        return or_dash(value)
    text = ts.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{ts.microsecond // 1000:03d}" if ts.microsecond else text


def severity_key(value: object) -> str:
    """A CSS-safe severity key: one of SEVERITIES or 'unknown'."""
    return value if isinstance(value, str) and value in SEVERITIES else "unknown"


def severity_order(value: object) -> int:
    """Worst first: 0 for critical ... 4 for info, and after them anything unknown."""
    return SEVERITIES.index(value) if value in SEVERITIES else len(SEVERITIES)
