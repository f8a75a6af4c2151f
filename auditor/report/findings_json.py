"""findings.json: the machine interface (schema ``kidaudit.findings/1``)."""

from __future__ import annotations

import json
from pathlib import Path


def render(doc: dict, out: Path) -> None:
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
