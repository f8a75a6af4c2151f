"""findings.json is the same text ``json.dumps`` gives, written without holding it whole."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from auditor.report import document, findings_json
from auditor.report.document import (
    Device,
    Document,
    RecipientEntry,
    SessionInfo,
    TransmissionEntry,
)


def _doc(n: int) -> Document:
    return Document(session=SessionInfo(device=Device(name="手表 \u2028")),
                    transmissions=tuple(
                        TransmissionEntry(i, host="api.acme-watch.example", url=f"/r?i={i}",
                                          recipient=RecipientEntry(party="first"),
                                          consent={"identifier.imei": "granted"})
                        for i in range(n)))


@pytest.mark.parametrize("n", [0, 1, 50])
def test_same_text_as_json_dumps(tmp_path: Path, n: int) -> None:
    doc = _doc(n)
    findings_json.render(doc, tmp_path / "findings.json")
    text = (tmp_path / "findings.json").read_text(encoding="utf-8")
    whole = json.dumps(doc, default=document.json_value, indent=2, ensure_ascii=False)
    assert text == whole + "\n"
    assert json.loads(text) == document.to_dict(doc)


def test_written_without_holding_the_whole_text(tmp_path: Path) -> None:
    doc = _doc(20_000)
    out = tmp_path / "findings.json"
    tracemalloc.start()
    try:
        findings_json.render(doc, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = out.stat().st_size
    assert size > 4_000_000
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte file"
