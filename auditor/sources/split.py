"""A mitmproxy flow file cut into chunks of whole records, without reading the records.

A flow file is a sequence of tnetstrings, ``<length>:<payload><type>``: reading each length
prefix and seeking past its record finds every boundary for the cost of a few bytes a record.
``analyze --jobs`` hands the chunks to worker processes, which read their byte ranges
themselves, so the parent never reads or pickles the bodies.

The framing is checked as ``sources.mitm`` reads it (``_next_record``): a prefix that is not
1 to 12 digits and a colon, or a record longer than what is left of the file, ends the file
there (a ``Cut``, the same words), and the records before it are still analysed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_PREFIX = 12  # digits of a length prefix, as mitmproxy's tnetstring reader allows
CHUNK_BYTES = 1 << 20  # a chunk ends after the record that takes it past this many bytes
CHUNK_RECORDS = 1000  # and holds at most this many records (many tiny flows)


@dataclass(frozen=True)
class Chunk:
    """Consecutive whole records of ``path``: the first starts at ``start``, each ends at the
    matching offset of ``ends`` (exclusive)."""

    path: str
    start: int
    ends: tuple[int, ...]

    @property
    def size(self) -> int:
        return self.ends[-1] - self.start


@dataclass(frozen=True)
class Cut:
    """The file's framing ends at byte ``at``: a prefix missing, or past the end of the file."""

    at: int
    problem: str


def chunks(path: Path, chunk_bytes: int = CHUNK_BYTES, chunk_records: int = CHUNK_RECORDS
           ) -> Iterator[Chunk | Cut]:
    """The file's chunks in order, then a ``Cut`` if its framing breaks before its end."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        start = at = 0
        ends: list[int] = []
        while at < size:
            fh.seek(at)
            head = fh.read(MAX_PREFIX + 2)
            end = _record_end(head, at, size)
            if isinstance(end, Cut):
                if ends:
                    yield Chunk(str(path), start, tuple(ends))
                yield end
                return
            ends.append(end)
            at = end
            if end - start >= chunk_bytes or len(ends) >= chunk_records:
                yield Chunk(str(path), start, tuple(ends))
                start, ends = at, []
        if ends:
            yield Chunk(str(path), start, tuple(ends))


def _record_end(head: bytes, at: int, size: int) -> int | Cut:
    """Where the record at ``at`` ends, from its first bytes (``head``)."""
    n = 0
    while n < len(head) and head[n:n + 1].isdigit() and n <= MAX_PREFIX:
        n += 1
    if n == 0 or n > MAX_PREFIX or head[n:n + 1] != b":":
        return Cut(at, "not a tnetstring: missing or invalid length prefix")
    length, left = int(head[:n]), size - (at + n + 1)
    if length + 1 > left:
        return Cut(at, f"a record of {length} bytes, and only {max(left - 1, 0)} are left")
    return at + n + 1 + length + 1


def read_chunk(chunk: Chunk) -> Iterator[tuple[int, bytes]]:
    """``(offset, record bytes)`` of each record of the chunk, read in one go."""
    with open(chunk.path, "rb") as fh:
        fh.seek(chunk.start)
        data = fh.read(chunk.size)
    at = chunk.start
    for end in chunk.ends:
        yield at, data[at - chunk.start:end - chunk.start]
        at = end


__all__ = ["CHUNK_BYTES", "Chunk", "Cut", "chunks", "read_chunk"]
