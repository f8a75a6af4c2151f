"""sources.split: a flow file's records found by their length prefixes, the framing checked
as ``sources.mitm`` reads it (the same records, the same cut and its words)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.sources.mitm import read_flows
from auditor.sources.split import Chunk, Cut, chunks, read_chunk
from tests.factories import EPOCH, http_flow, write_flows


def _capture(path: Path, n: int) -> Path:
    return write_flows(path, [http_flow(f"https://api.example/{i}", EPOCH + i, {"i": i})
                              for i in range(n)])


def _records(path: Path) -> list[int]:
    """Where each record starts, read the slow way (mitmproxy's reader, record by record)."""
    from mitmproxy.io import tnetstring

    starts = []
    with open(path, "rb") as fh:
        size = path.stat().st_size
        while fh.tell() < size:
            starts.append(fh.tell())
            tnetstring.load(fh)
    return starts


@pytest.mark.parametrize(("flows", "chunk_bytes"), [
    (0, 1 << 20),  # an empty file: no chunks, no cut
    (1, 1 << 20),  # one record
    (5, 1),  # every record its own chunk
    (9, 3000),  # records straddling the chunk size
    (30, 1 << 20),  # all in one chunk
])
def test_chunks_hold_every_record_once_in_order(tmp_path: Path, flows: int, chunk_bytes: int
                                                ) -> None:
    path = _capture(tmp_path / "c.mitm", flows)
    parts = list(chunks(path, chunk_bytes))
    assert all(isinstance(p, Chunk) for p in parts)
    got = [at for part in parts for at, _ in read_chunk(part)]  # type: ignore[arg-type]
    assert got == _records(path)
    if flows:
        assert parts[-1].ends[-1] == path.stat().st_size  # type: ignore[union-attr]
        assert all(p.size >= min(chunk_bytes, 1) for p in parts[:-1])  # type: ignore[union-attr]


def test_a_chunk_holds_at_most_so_many_records(tmp_path: Path) -> None:
    path = _capture(tmp_path / "c.mitm", 7)
    parts = list(chunks(path, 1 << 20, chunk_records=3))
    assert [len(p.ends) for p in parts] == [3, 3, 1]  # type: ignore[union-attr]


@pytest.mark.parametrize(("tail", "problem"), [
    (b"9999:{}}", "a record of 9999 bytes, and only 2 are left"),  # a record cut short
    (b"xx", "not a tnetstring: missing or invalid length prefix"),  # no prefix
    (b"1234567890123:", "not a tnetstring: missing or invalid length prefix"),  # 13 digits
    (b"12", "not a tnetstring: missing or invalid length prefix"),  # the file ends in one
])
def test_a_cut_is_where_and_what_read_flows_says(tmp_path: Path, tail: bytes, problem: str
                                                 ) -> None:
    path = _capture(tmp_path / "c.mitm", 3)
    whole = path.stat().st_size
    path.write_bytes(path.read_bytes() + tail)
    parts = list(chunks(path, 1 << 20))
    assert parts[-1] == Cut(whole, problem)
    assert sum(len(p.ends) for p in parts[:-1]) == 3  # type: ignore[union-attr]
    notes: list[str] = []
    assert len(list(read_flows(path, notes))) == 3
    assert notes == [f"{path}: stopped after 3 flows at byte {whole}: {problem}"]
