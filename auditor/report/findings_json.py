"""findings.json: the machine interface (schema ``kidaudit.findings/1``)."""

from __future__ import annotations

import json
from pathlib import Path

from auditor.report.document import Document, json_value


def render(doc: Document, out: Path) -> None:
    """Streamed to the file a piece at a time, each object of the document turned into its
    mapping only when the encoder reaches it: ``json.dumps`` with an indent builds the whole
    text from a list of small strings first, so a long capture's file would be held in
    memory whole."""
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, ensure_ascii=False, default=json_value)
        fh.write("\n")
