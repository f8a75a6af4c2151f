"""The live capture's journal on its own: records in, whole records out, torn tails told."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from auditor.live import journal
from auditor.live.journal import HEAD, MAGIC, BusyMarker, Writer, encode, load_busy, parse

MESSAGES = [("event", "grant", False), ("tx", 1, "x" * 3000), ("save", {"id": "f1"})]


def _write(directory: Path, messages: list) -> Path:
    writer = Writer(directory)
    for msg in messages:
        writer.append(msg)
    writer.close()
    return directory / journal.JOURNAL_FILE


def test_records_read_back_in_order_with_their_offsets(tmp_path: Path) -> None:
    path = _write(tmp_path, MESSAGES)
    records, end, damaged = journal.read(path, 0)
    assert [r.message() for r in records] == MESSAGES
    assert [r.start for r in records] == [0, records[0].end, records[1].end]
    assert (end, damaged) == (path.stat().st_size, False)
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_writer_appends_where_the_journal_ends(tmp_path: Path) -> None:
    _write(tmp_path, MESSAGES[:1])
    writer = Writer(tmp_path)
    before = writer.end
    after = writer.append(MESSAGES[1])
    writer.close()
    assert before == len(encode(MESSAGES[0])) and after == before + len(encode(MESSAGES[1]))


def _bad_crc() -> bytes:
    data = b"payload"
    return HEAD.pack(MAGIC, len(data), zlib.crc32(data) ^ 1) + data


# What a kill can leave after the last whole record, and whether it is damage (a reader
# waiting on a live writer must not call an incomplete record damaged).
TAILS = [
    (b"", False),
    (b"K", False),  # part of a header
    (encode(("tx", 2, "y"))[:-3], False),  # a header and part of its payload
    (b"XX" + b"\0" * 8, True),  # not a record at all
    (HEAD.pack(MAGIC, journal.MAX_RECORD + 1, 0), True),  # a length no message has
    (_bad_crc(), True),  # a whole record whose payload is not what was written
]


@pytest.mark.parametrize(("tail", "damaged"), TAILS)
def test_parse_stops_at_the_last_whole_record(tail: bytes, damaged: bool) -> None:
    whole = b"".join(encode(m) for m in MESSAGES)
    records, end, bad = parse(whole + tail, 100)
    assert [r.message() for r in records] == MESSAGES
    assert (end, bad) == (100 + len(whole), damaged)


@pytest.mark.parametrize("limit", [1, HEAD.size, 50, 1 << 20])
def test_reading_in_steps_yields_every_record_once(tmp_path: Path, limit: int,
                                                   monkeypatch) -> None:
    monkeypatch.setattr(journal, "READ_MAX", limit)
    path = _write(tmp_path, MESSAGES * 3)
    got = [r.message() for batch in journal.records(path, 0) for r in batch]
    assert got == MESSAGES * 3


def test_the_whole_records_end_where_a_torn_tail_begins_and_it_can_be_cut(tmp_path) -> None:
    path = _write(tmp_path, MESSAGES)
    whole = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(encode(("tx", 9, "z" * 100))[:40])
    assert journal.tail(path, 0) == whole
    assert journal.cut_torn_tail(path, whole) and path.stat().st_size == whole
    assert not journal.cut_torn_tail(path, whole)


def test_a_missing_journal_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / journal.JOURNAL_FILE
    assert journal.read(path, 0) == ([], 0, False)
    assert list(journal.records(path, 0)) == [] and journal.tail(path, 0) == 0


def test_released_bytes_leave_offsets_and_later_records_intact(tmp_path: Path) -> None:
    path = _write(tmp_path, [("tx", i, "v" * 5000) for i in range(40)])
    records, _, _ = journal.read(path, 0)
    keep = records[30].start
    blocks = path.stat().st_blocks
    fd = os.open(path, os.O_RDWR)
    try:
        journal.release(fd, keep // 4096 * 4096)
    finally:
        os.close(fd)
    assert path.stat().st_size == records[-1].end  # the length stays: offsets stay valid
    assert path.stat().st_blocks < blocks  # (Linux's tmpfs, ext4, xfs and btrfs punch holes)
    assert [r.message()[1] for r in journal.read(path, keep)[0]] == list(range(30, 40))


# (records started, the last one idle) -> what the marker file says
BUSY = [
    ([], False, journal.Busy()),
    ([10], False, journal.Busy(10, 1, True)),
    ([10, 10], False, journal.Busy(10, 2, True)),  # died on it once, started it again
    ([10, 20], False, journal.Busy(20, 1, True)),
    ([10], True, journal.Busy(10, 1, False)),
    ([10, 10], True, journal.Busy(10, 2, False)),
]


@pytest.mark.parametrize(("started", "idle", "expected"), BUSY)
def test_the_busy_marker_counts_attempts_at_one_record(tmp_path, started, idle, expected
                                                       ) -> None:
    for offset in started:  # a new marker per start: each one a process that died there
        marker = BusyMarker(tmp_path)
        marker.start(offset)
        marker.close()
    if idle:
        marker = BusyMarker(tmp_path)
        marker.idle()
        marker.close()
    assert load_busy(tmp_path / journal.AT_FILE) == expected


def test_an_unreadable_marker_means_nothing_was_busy(tmp_path: Path) -> None:
    (tmp_path / journal.AT_FILE).write_bytes(struct.pack(">Q", 5))  # shorter than a marker
    assert load_busy(tmp_path / journal.AT_FILE) == journal.Busy()
