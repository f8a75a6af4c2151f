"""detections.csv: one row per detection, joined with its transmission, for spreadsheets
and pandas. Columns are documented in the README.

Two kinds of hostile input are met row by row. A row that cannot be built (a value of
the wrong shape) is left out and returned as a coverage error, so the other rows are
still written. A cell a spreadsheet would run as a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return: hosts, fields and values are the device's or an
attacker's text) gets a leading ``'``, as OWASP's CSV-injection advice says, so Excel and
LibreOffice show it as text. Text cells are quoted, so a line break inside one stays in it.

Written a row at a time with the standard ``csv`` module: the bytes are those pandas'
``DataFrame.to_csv(quoting=QUOTE_NONNUMERIC)`` writes of a frame of every row (a test
compares them), without every row held at once, and without pandas: importing it alone
costs an ``analyze`` about 90 MB of its peak memory.
"""

from __future__ import annotations

import csv
import io
import math
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor.memo import Memo, memoised
from auditor.report.document import STAGE as REPORT_STAGE
from auditor.report.document import (
    CoverageError,
    DetectionEntry,
    Document,
    TransmissionEntry,
    iso_text,
)
from auditor.store import printable

COLUMNS = ["transmission", "ts", "transport", "method", "host", "recipient_domain", "party",
           "country", "category", "method_detected", "location", "field", "encoding",
           "profile_key", "value", "confidence"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
STAGE = f"{REPORT_STAGE} detections.csv"
MEMO_TEXT = 256  # characters of a text cell remembered: a bounded memory


def neutralised(cell: Any) -> Any:
    """A text cell a spreadsheet would execute, prefixed with ``'``; anything else as it is."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def _cell(value: Any) -> Any:
    """A document value as a cell: numbers stay numbers, text is printable and neutralised;
    a float that is not a number is an empty cell, as pandas writes it."""
    if type(value) is str and len(value) <= MEMO_TEXT:  # most cells: the same few texts
        return _text(value)                                # row after row, remembered
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):
        raise TypeError(f"a {type(value).__name__} where a single value belongs")
    return neutralised(printable(value))


@memoised(4096)
def _text(value: str) -> str:
    return neutralised(printable(value))


def _row(det: DetectionEntry, tx: TransmissionEntry | None) -> dict[str, Any]:
    """A detection joined with its transmission; one the document lacks leaves its cells
    empty."""
    if not isinstance(det.encoding, list | tuple):
        raise TypeError("encoding is not a list")
    rec = tx.recipient if tx is not None else None
    return {
        "transmission": _cell(det.transmission),
        "ts": _cell(iso_text(tx.ts)) if tx is not None else None,
        "transport": _cell(tx.transport) if tx is not None else None,
        "method": _cell(tx.method) if tx is not None else None,
        "host": _cell(tx.host) if tx is not None else None,
        "recipient_domain": _cell(rec.domain) if rec is not None else None,
        "party": _cell(rec.party) if rec is not None else None,
        "country": _cell(rec.country) if rec is not None else None,
        "category": _cell(det.category), "method_detected": _cell(det.method),
        "location": _cell(det.location), "field": _cell(det.field),
        "encoding": _cell(">".join(printable(str(e)) for e in det.encoding)),
        "profile_key": _cell(det.profile_key), "value": _cell(det.value),
        "confidence": _cell(det.confidence),
    }


def rows(doc: Document, errors: list[CoverageError] | None = None) -> list[dict[str, Any]]:
    """Every detection's row; one that cannot be built is appended to ``errors`` instead."""
    return list(each_row(doc, errors))


def each_row(doc: Document, errors: list[CoverageError] | None = None
             ) -> Iterator[dict[str, Any]]:
    """Every detection's row in the document's order, one at a time: a document built from
    a session walks its transmissions once, each with its own detections; one read back
    joins its detections with its transmissions by id."""
    if doc.pairs is not None:
        joined = ((det, tx) for tx, dets in doc.pairs for det in dets)
    else:
        transmissions = {tx.id: tx for tx in doc.transmissions}
        joined = ((det, transmissions.get(det.transmission)) for det in doc.detections)
    for i, (det, tx) in enumerate(joined):
        try:
            yield _row(det, tx)
        except Exception as e:  # noqa: BLE001 - one row, never the whole file
            if errors is not None:
                tx_id = det.transmission
                # the kind of error only: its text may quote a value, and the document's
                # values were masked before this row was made
                errors.append(CoverageError(tx_id if isinstance(tx_id, int) else None, STAGE,
                                            f"detection {i} left out ({type(e).__name__})"))


def render(doc: Document, out: Path) -> list[CoverageError]:
    """Write the file; return the rows that could not be written, as coverage errors."""
    with Table(out) as table:
        if doc.pairs is None:
            table.writer.writerows([row[c] for c in COLUMNS]
                                   for row in each_row(doc, table.errors))
        else:
            for tx, dets in doc.pairs:
                table.add((tx, dets))
    return table.errors


class Lines:
    """A transmission's detections as the file's lines, made apart from the file: by
    ``Table.add`` as the rows come, or a batch of rows at a time in a worker process of
    ``analyze --jobs`` (``report.rows``), whose text the table then copies in
    (``Table.add_text``). ``count``: the detections before these (an error names its
    place in the file); ``errors``: the rows that could not be made, as ``render``
    returns them. A transmission's cells are made once for all its detections (a message
    has a few); one whose cells fail leaves each of its detections to ``_row``, which fails
    as it does alone, in its order."""

    def __init__(self, count: int = 0) -> None:
        self.errors: list[CoverageError] = []
        self.count = count
        # A line the writer makes apart, as text (``_written``): a transmission's cells
        # once for its detections, and a row ``_quoted`` does not write.
        self._scratch = io.StringIO()
        self._apart = csv.writer(self._scratch, quoting=csv.QUOTE_NONNUMERIC,
                                 lineterminator="\n")

    def text(self, row: tuple[TransmissionEntry, list[DetectionEntry]] | tuple[
            TransmissionEntry, list[DetectionEntry], list[str]]) -> str:
        """One transmission's detections' lines (a ``Survey`` row: its opaque notes aside)."""
        tx, dets = row[0], row[1]
        try:
            shared = _tx_cells(tx)
        except Exception:  # noqa: BLE001 - each detection fails alone, below
            shared = None
        lines: list[str | list[Any]] = []
        text = self._written(shared)[:-1] if shared is not None and dets else ""
        for det in dets:
            try:
                if shared is None:
                    cells = _row(det, tx)
                    lines.append([cells[c] for c in COLUMNS])
                else:
                    lines.append(_quoted(det, text) or _line(det, shared))
            except Exception as e:  # noqa: BLE001 - one row, never the whole file
                tx_id = det.transmission
                # the kind of error only: its text may quote a value, and the document's
                # values were masked before this row was made
                self.errors.append(CoverageError(
                    tx_id if isinstance(tx_id, int) else None, STAGE,
                    f"detection {self.count} left out ({type(e).__name__})"))
            self.count += 1
        return "".join([line if type(line) is str else self._written(line)
                        for line in lines])

    def _written(self, cells: list[Any]) -> str:
        """The line the writer writes of these cells."""
        self._scratch.seek(0)
        self._scratch.truncate()
        self._apart.writerow(cells)
        return self._scratch.getvalue()


class Table:
    """The file written a transmission's rows at a time, as a session's rows are made
    (``document.Survey(keep=)``: ``write_outputs`` writes it on the rules' walk, not on a
    walk of its own), or a batch's lines at a time as another process made them
    (``add_text``). ``errors``: the rows that could not be written, as ``render`` returns
    them. The file is written as a hidden part beside ``out`` and put in place by
    ``close``: a run that fails midway leaves no detections.csv that looks whole (the
    part is removed)."""

    def __init__(self, out: Path) -> None:
        self._lines = Lines()
        self.errors = self._lines.errors
        self._out, self._part = out, out.with_name(f".{out.name}.part")
        self._fh = open(self._part, "w", encoding="utf-8", newline="")  # noqa: SIM115
        # Every text cell quoted (numbers bare, an empty cell as ""): with the minimal
        # quoting a lone carriage return inside a value is written bare, and spreadsheets
        # and csv readers start a new row there.
        self.writer = csv.writer(self._fh, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        self.writer.writerow(COLUMNS)

    def __enter__(self) -> Table:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self.close()
        elif not self._fh.closed:
            self._fh.close()
            self._part.unlink(missing_ok=True)

    def close(self) -> None:
        """The file complete, in place under its name."""
        if not self._fh.closed:
            self._fh.close()
            self._part.replace(self._out)

    def add(self, row: tuple[TransmissionEntry, list[DetectionEntry]] | tuple[
            TransmissionEntry, list[DetectionEntry], list[str]]) -> None:
        """One transmission's detections (a ``Survey`` row: its opaque notes aside)."""
        self._fh.write(self._lines.text(row))

    def add_text(self, text: str, errors: list[CoverageError], count: int) -> None:
        """The lines a ``Lines`` made elsewhere of the next ``count`` detections (numbered
        from the detections before them), with the rows it left out."""
        self._fh.write(text)
        self.errors.extend(errors)
        self._lines.count += count


def _tx_cells(tx: TransmissionEntry | None) -> list[Any]:
    """The cells ``_row`` takes from a detection's transmission, in ``COLUMNS`` order."""
    if tx is None:
        return [None] * 7
    rec = tx.recipient
    return [_cell(iso_text(tx.ts)), _cell(tx.transport), _cell(tx.method), _cell(tx.host),
            _cell(rec.domain) if rec is not None else None,
            _cell(rec.party) if rec is not None else None,
            _cell(rec.country) if rec is not None else None]


def _quoted(det: DetectionEntry, shared: str) -> str | None:
    """``_line``'s line as the writer writes it (``QUOTE_NONNUMERIC``: text quoted, numbers
    bare), ``shared`` its transmission's cells so written, for a row of the types a
    session gives it whose texts are ASCII without a quote (most rows): such a text is
    printable as it is (``printable``) and quoted as it is; only a formula's start is
    looked for. None for any other row (``_line`` and the writer make it)."""
    tid, category, method, location, field, enc, key, value, confidence = _DET_FIELDS(det)
    if not (type(tid) is int and type(category) is str and type(method) is str
            and type(location) is str and type(field) is str and type(key) is str
            and type(value) is str and (confidence is None or type(confidence) is float)
            and type(enc) is tuple and (not enc or all(type(e) is str for e in enc))):
        return None
    texts = (category, method, location, field, ">".join(enc), key, value)
    # A session's rows repeat their texts message after message (the IMEI under the same
    # field in every heartbeat): the quoted cells of texts seen are remembered. The texts
    # are exactly ``str`` (checked above), so equal texts are quoted alike.
    cells = _CELLS_LOOKUP(texts)
    if cells is None:
        joined = "".join(texts)
        if not joined.isascii() or '"' in joined:
            return None
        cells = '","'.join([("'" + t) if t.startswith(FORMULA_STARTS) else t for t in texts])
        if len(cells) <= MEMO_ROW:
            _CELLS.put(texts, cells)
    return _LINE % (int.__repr__(tid), shared, cells,
                    # None and NaN (NaN != NaN): an empty cell; a float as str() writes it
                    '""' if confidence is None or confidence != confidence
                    else float.__repr__(confidence))


_DET_FIELDS = operator.attrgetter("transmission", "category", "method", "location", "field",
                                  "encoding", "profile_key", "value", "confidence")
_LINE = '%s,%s,"%s",%s\n'
MEMO_ROW = 1024  # characters of a row's quoted texts remembered: a bounded memory
_CELLS: Memo[tuple[str, ...], str] = Memo(2048)
_CELLS_LOOKUP = _CELLS.lookup


def _line(det: DetectionEntry, shared: list[Any]) -> list[Any]:
    """``_row`` as a line, its transmission's cells given: the same checks in its order."""
    if not isinstance(det.encoding, list | tuple):
        raise TypeError("encoding is not a list")
    return [_cell(det.transmission), *shared, _cell(det.category), _cell(det.method),
            _cell(det.location), _cell(det.field),
            _cell(">".join(printable(str(e)) for e in det.encoding)),
            _cell(det.profile_key), _cell(det.value), _cell(det.confidence)]
