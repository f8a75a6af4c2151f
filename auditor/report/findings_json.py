"""findings.json: the machine interface (schema ``kidaudit.findings/1``)."""

from __future__ import annotations

import json
from pathlib import Path


def render(doc: dict, out: Path) -> None:
    """Streamed to the file a piece at a time: ``json.dumps`` with an indent builds the whole
    text from a list of small strings first, which for a day's capture was most of the
    report's peak memory (about 13 KB per transmission, for a file of 1.3 KB per one)."""
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
