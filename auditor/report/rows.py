"""A session's report rows (``document.Survey``'s: a transmission's entry, its detections'
entries and its opaque notes) kept and written a batch at a time.

``Spool`` keeps them on disk for the output that walks them again (the page); ``Writer``
feeds it and writes findings.json's row lists and detections.csv of each batch. A batch's
text is made by ``encode``: in this process, or, for ``analyze --jobs``, in one of its
worker processes while this one goes on judging the session (this process's walk is the
longest path of such a run, and the workers wait for it at the end). The texts are
written in the batches' order, so the files are the same bytes either way.
"""

from __future__ import annotations

import io
import operator
import os
import pickle
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from auditor.report import detections_csv, findings_json
from auditor.report.document import (
    CoverageError,
    DetectionEntry,
    RecipientEntry,
    TransmissionEntry,
)

Row = tuple[TransmissionEntry, list[DetectionEntry], list[str]]
BATCH = 256  # rows a batch


def _getter(cls: type, leave: str = "") -> Callable[[Any], tuple[Any, ...]]:
    """A dataclass's field values in order as a tuple (``leave``: a field left out)."""
    return operator.attrgetter(*(f.name for f in fields(cls) if f.name != leave))


# A row as plain tuples: a transmission's recipient apart, it is its last field but one
# (consent last), as ``unpack`` builds it again.
_TX_FIELDS = _getter(TransmissionEntry, "recipient")
_RECIPIENT_FIELDS = _getter(RecipientEntry)
_DET_FIELDS = _getter(DetectionEntry)
assert [f.name for f in fields(TransmissionEntry)][-2:] == ["recipient", "consent"]


def pack(row: Row) -> tuple[Any, ...]:
    """A row as plain tuples: pickled, a frozen dataclass costs a ``dataclasses.fields``
    walk per object to load, its constructor a few calls."""
    tx, dets, notes = row
    return (_TX_FIELDS(tx), _RECIPIENT_FIELDS(tx.recipient), [_DET_FIELDS(d) for d in dets],
            notes)


def unpack(packed: tuple[Any, ...]) -> Row:
    """The row ``pack`` made these tuples of."""
    tx, recipient, dets, notes = packed
    return (TransmissionEntry(*tx[:-1], RecipientEntry(*recipient), tx[-1]),
            [DetectionEntry(*d) for d in dets], notes)


@dataclass(frozen=True)
class Texts:
    """A batch's text: findings.json's transmission and detection rows (each list's rows
    joined, ``findings_json.joined``), detections.csv's lines, the detections the csv
    left out and how many detections the batch had."""

    transmissions: str
    detections: str
    csv: str
    errors: list[CoverageError]
    count: int


def encode(rows: list[Row], start: int) -> Texts:
    """The text of these rows, their detections numbered in the csv from ``start`` (the
    detections before them: an error names its place)."""
    lines = detections_csv.Lines(start)
    transmissions: list[str] = []
    detections: list[str] = []
    csv: list[str] = []
    for row in rows:
        tx, dets = findings_json.row_texts(row)
        transmissions.append(tx)
        detections += dets
        csv.append(lines.text(row))
    return Texts(findings_json.joined(transmissions), findings_json.joined(detections),
                 "".join(csv), lines.errors, lines.count - start)


def encode_batch(data: bytes, start: int) -> Texts:
    """``encode`` of a batch as the spool wrote it: what a worker process is given."""
    return encode([unpack(p) for p in pickle.loads(data)], start)


class Pending(Protocol):
    """A batch's text another process is making (``jobs.Pool.encode``)."""

    def done(self) -> bool: ...

    def result(self) -> Texts: ...


class Encoder(Protocol):
    """Worker processes that can make a batch's text (``jobs.Pool``)."""

    def behind(self) -> bool:
        """Whether this process is the slower part of the run just now (work waits for
        it): then a batch's text is better made elsewhere."""
        ...

    def encode(self, data: bytes, start: int) -> Pending:
        """``encode_batch(data, start)`` in a worker."""
        ...


class Spool:
    """The document's rows as the survey masked them, kept on disk and read back by each
    output: masking a message is the dear part of writing the reports, so it is done once,
    and memory holds a batch. The file has no name (made in the private folder the reports
    are written into, and unlinked at once), so a run killed midway leaves nothing behind;
    each walk reads it at its own offset (``os.pread``), so two walks may interleave. Rows
    are pickled packed (``pack``), a batch at a time (``Writer`` makes the batches)."""

    def __init__(self, directory: Path) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed on exit

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def add_batch(self, packed: list[tuple[Any, ...]]) -> bytes:
        """Packed rows after those added, as one batch: the bytes written (what
        ``encode_batch`` reads)."""
        data = pickle.dumps(packed, pickle.HIGHEST_PROTOCOL)
        self._file.write(data)
        return data

    def __iter__(self) -> Iterator[Row]:
        """The rows in the order they were added."""
        self._file.flush()
        reader = io.BufferedReader(_ReadAt(self._file.fileno()), 1 << 16)
        while True:
            try:
                batch = pickle.load(reader)
            except EOFError:
                return
            for packed in batch:
                yield unpack(packed)


class _ReadAt(io.RawIOBase):
    """A file descriptor read from its start at an offset of its own."""

    def __init__(self, fd: int) -> None:
        self.fd, self.at = fd, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = os.pread(self.fd, len(buffer), self.at)
        buffer[:len(data)] = data
        self.at += len(data)
        return len(data)


class Writer:
    """The survey's rows (``add``, its ``keep``) into the spool, findings.json's row lists
    and detections.csv, a batch at a time. ``encoder``: worker processes that make a
    batch's text when this process is the slower part of the run (``Encoder.behind``: the
    walk here is what the workers wait for); otherwise, or without them, it is made here.
    At most ``AHEAD`` batches are out at a time, so memory holds a few batches however far
    the walk runs ahead; the texts are written in the batches' order."""

    AHEAD = 8

    def __init__(self, spool: Spool, table: detections_csv.Table, texts: findings_json.Rows,
                 encoder: Encoder | None = None) -> None:
        self.spool, self.table, self.texts = spool, table, texts
        self._encoder = encoder
        self._rows: list[Row] = []
        self._count = 0  # detections handed to a batch so far
        self._out: deque[Pending | Texts] = deque()

    def add(self, row: Row) -> None:
        self._rows.append(row)
        if len(self._rows) >= BATCH:
            self._flush()

    def close(self) -> None:
        """Every row written: the texts still being made elsewhere waited for."""
        self._flush()
        while self._out:
            self._write(self._out.popleft())

    def _flush(self) -> None:
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        data = self.spool.add_batch([pack(row) for row in rows])
        start = self._count
        self._count += sum(len(dets) for _, dets, _ in rows)
        encoder = self._encoder
        out = self._out
        out.append(encoder.encode(data, start) if encoder is not None and encoder.behind()
                   else encode(rows, start))
        while out and (len(out) > self.AHEAD or isinstance(out[0], Texts) or out[0].done()):
            self._write(out.popleft())

    def _write(self, texts: Pending | Texts) -> None:
        if not isinstance(texts, Texts):
            texts = texts.result()
        self.texts.add_joined("transmissions", texts.transmissions)
        self.texts.add_joined("detections", texts.detections)
        self.table.add_text(texts.csv, texts.errors, texts.count)
