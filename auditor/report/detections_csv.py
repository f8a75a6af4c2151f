"""detections.csv: one row per detection, joined with its transmission, for spreadsheets
and pandas. Columns are documented in the README.

Two kinds of hostile input are met row by row. A row that cannot be built (a document
value of the wrong shape) is left out and returned as a coverage error, so the other rows
are still written. A cell a spreadsheet would run as a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return: hosts, fields and values are the device's or an
attacker's text) gets a leading ``'``, as OWASP's CSV-injection advice says, so Excel and
LibreOffice show it as text. Text cells are quoted, so a line break inside one stays in it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.store import printable

COLUMNS = ["transmission", "ts", "transport", "method", "host", "recipient_domain", "party",
           "country", "category", "method_detected", "location", "field", "encoding",
           "profile_key", "value", "confidence"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
STAGE = "report detections.csv"
_TX_KEYS = ("ts", "transport", "method", "host")
_DET_KEYS = {"category": "category", "method": "method_detected", "location": "location",
             "field": "field", "profile_key": "profile_key", "value": "value",
             "confidence": "confidence"}


def neutralised(cell: Any) -> Any:
    """A text cell a spreadsheet would execute, prefixed with ``'``; anything else as it is."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def _cell(value: Any) -> Any:
    """A document value as a cell: numbers stay numbers, text is printable and neutralised."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):
        raise TypeError(f"a {type(value).__name__} where a single value belongs")
    return neutralised(printable(value))


def _row(det: dict, transmissions: dict[Any, dict]) -> dict[str, Any]:
    tx = transmissions.get(det.get("transmission")) or {}
    rec = tx.get("recipient") or {}
    if not isinstance(rec, dict):
        raise TypeError(f"transmission {det.get('transmission')!r}: recipient is not a mapping")
    encoding = det.get("encoding") or []
    if not isinstance(encoding, list | tuple):
        raise TypeError("encoding is not a list")
    row: dict[str, Any] = {"transmission": _cell(det.get("transmission")),
                           "encoding": _cell(">".join(printable(str(e)) for e in encoding))}
    row.update({key: _cell(tx.get(key)) for key in _TX_KEYS})
    row.update({"recipient_domain": _cell(rec.get("domain")), "party": _cell(rec.get("party")),
                "country": _cell(rec.get("country"))})
    row.update({column: _cell(det.get(key)) for key, column in _DET_KEYS.items()})
    return row


def rows(doc: dict, errors: list[dict[str, object]] | None = None) -> list[dict[str, Any]]:
    """Every detection's row; one that cannot be built is appended to ``errors`` instead."""
    transmissions: dict[Any, dict] = {}
    for tx in doc.get("transmissions") or []:
        if isinstance(tx, dict) and isinstance(tx.get("id"), int | str):
            transmissions[tx["id"]] = tx
    out = []
    for i, det in enumerate(doc.get("detections") or []):
        try:
            if not isinstance(det, dict):
                raise TypeError(f"detection {i} is not a mapping")
            out.append(_row(det, transmissions))
        except Exception as e:  # noqa: BLE001 - one row, never the whole file
            if errors is not None:
                tx_id = det.get("transmission") if isinstance(det, dict) else None
                # the kind of error only: its text may quote a value, and the document's
                # values were masked before this row was made
                errors.append({"transmission": tx_id if isinstance(tx_id, int) else None,
                               "stage": STAGE, "message": f"detection {i} left out "
                               f"({type(e).__name__})"})
    return out


def frame(doc: dict, errors: list[dict[str, object]] | None = None) -> pd.DataFrame:
    return pd.DataFrame(rows(doc, errors), columns=COLUMNS)


def render(doc: dict, out: Path) -> list[dict[str, object]]:
    """Write the file; return the rows that could not be written, as coverage errors."""
    errors: list[dict[str, object]] = []
    # Every text cell quoted: with the minimal quoting a lone carriage return inside a value
    # is written bare, and spreadsheets and csv readers start a new row there.
    frame(doc, errors).to_csv(out, index=False, quoting=csv.QUOTE_NONNUMERIC)
    return errors
