"""Method validation: the labelled suite shipped with kidaudit, and the runner that scores it.

``kidaudit validate`` prints what ``format_report(run_suite(), version)`` returns: precision
and recall per category and per encoding, the table a lab files for its method records.
"""

from __future__ import annotations

from auditor.validate.runner import (
    Counts,
    ValidationReport,
    format_report,
    load_suite,
    run_suite,
)

__all__ = ["Counts", "ValidationReport", "format_report", "load_suite", "run_suite"]
