"""The live capture's journal: every message the proxy finished, on disk before it moves on.

Why a file and not only a pipe: a message waiting in the proxy's memory, or in a pipe,
dies with the processes. Stop both at once (a container stop, ``kill -9`` of the proxy
and its worker) and whatever the worker had not committed was gone; a stalled worker made
the proxy hold the backlog in its own memory and, past a high-water mark, stop its event
loop until the worker caught up. Now the proxy appends each message to
``DIR/journal.kidaudit`` with one ``os.write`` on an ``O_APPEND`` descriptor and goes on.
Once that call returns the bytes are the kernel's (page cache): they survive a kill of
both processes (not a power cut; nothing here calls fsync, which would cost the device's
traffic a disk flush per message). The worker reads the journal behind the proxy and
commits; a session opened later (a take-over, ``capture --resume``, ``kidaudit report``)
first analyses what the journal holds beyond the last commit (``auditor.live.core``).

A record is ``MAGIC``, the payload's length and CRC-32, then the payload (a pickle of the
message). A write cut short by a kill leaves a torn tail: a header that promises more
bytes than the file has, or a payload whose CRC does not match. Readers stop at the last
whole record; the next session cuts the torn tail off before it appends.

Disk: the worker punches the committed part of the journal out of the file (the file
keeps its length, so offsets stay valid, but no longer its blocks), so the journal holds
only the backlog, and the proxy bounds the backlog (``BACKLOG_MAX``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

JOURNAL_FILE = "journal.kidaudit"
AT_FILE = "journal.at"  # the record the analysis is busy with (see ``Busy``)
MAGIC = b"KJ"
HEAD = struct.Struct(">2sII")  # magic, payload length, CRC-32 of the payload
MAX_RECORD = 1 << 30  # a longer length field is a torn or foreign header, not a message
READ_MAX = 8 << 20  # bytes read per batch: a large backlog is committed in steps
BACKLOG_MAX = 4 << 30  # bytes the worker may fall behind before messages are dropped
PICKLE = pickle.HIGHEST_PROTOCOL
_PUNCH = 0x01 | 0x02  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE
_BUSY = struct.Struct(">QIB")  # record offset, attempts, busy


def encode(msg: object) -> bytes:
    """One message as one record: written with one ``os.write``."""
    data = pickle.dumps(msg, protocol=PICKLE)
    return HEAD.pack(MAGIC, len(data), zlib.crc32(data)) + data


class Writer:
    """The proxy's end: ``append`` is one pickle and one ``os.write``, never a wait."""

    def __init__(self, directory: Path) -> None:
        path = Path(directory) / JOURNAL_FILE
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.fchmod(self._fd, 0o600)
        self.end = os.fstat(self._fd).st_size  # where the next record starts

    def append(self, msg: object) -> int:
        """Write one record; returns the journal's length after it. A short write (a full
        disk) is cut back off, so no torn record sits under later ones, and raises."""
        record = encode(msg)
        n = os.write(self._fd, record)
        if n != len(record):
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.end)
            raise OSError(f"{JOURNAL_FILE}: short write ({n} of {len(record)} bytes); "
                          "the disk is full?")
        self.end += n
        return self.end

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True)
class Record:
    start: int  # offset of the record in the journal
    end: int  # offset just after it
    payload: bytes

    def message(self) -> object:
        return pickle.loads(self.payload)


def parse(buf: bytes | memoryview, base: int) -> tuple[list[Record], int, bool]:
    """The whole records at the start of ``buf`` (which begins at journal offset ``base``),
    the offset after the last one, and whether what follows is damaged (a bad magic, length
    or CRC) rather than merely incomplete."""
    records: list[Record] = []
    pos, size = 0, len(buf)
    while size - pos >= HEAD.size:
        magic, n, crc = HEAD.unpack_from(buf, pos)
        if magic != MAGIC or n > MAX_RECORD:
            return records, base + pos, True
        if size - pos - HEAD.size < n:
            break
        payload = bytes(buf[pos + HEAD.size:pos + HEAD.size + n])
        if zlib.crc32(payload) != crc:
            return records, base + pos, True
        records.append(Record(base + pos, base + pos + HEAD.size + n, payload))
        pos += HEAD.size + n
    return records, base + pos, False


def read(path: Path, offset: int, limit: int = READ_MAX) -> tuple[list[Record], int, bool]:
    """Whole records from ``offset``, about ``limit`` bytes of them (at least one record,
    however long); see ``parse``. A missing journal holds nothing."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return [], offset, False
    with fh:
        fh.seek(offset)
        buf = fh.read(limit)
        records, end, damaged = parse(buf, offset)
        if not records and not damaged and len(buf) == limit:  # one record > limit
            fh.seek(offset)
            head = fh.read(HEAD.size)
            magic, n, _ = HEAD.unpack(head) if len(head) == HEAD.size else (b"", 0, 0)
            if magic == MAGIC and n <= MAX_RECORD:
                records, end, damaged = parse(head + fh.read(n), offset)
    return records, end, damaged


def records(path: Path, offset: int) -> Iterator[list[Record]]:
    """Every whole record from ``offset``, in steps of about ``READ_MAX`` bytes. Bounded:
    each step moves forward or ends."""
    size = size_of(path)
    while offset < size:
        batch, end, _ = read(path, offset)
        if not batch:
            return
        yield batch
        offset = end


def tail(path: Path, offset: int) -> int:
    """Where the whole records from ``offset`` end (a torn or damaged tail starts there)."""
    end = offset
    for batch in records(path, offset):
        end = batch[-1].end
    return end


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def cut_torn_tail(path: Path, end: int) -> bool:
    """Cut what follows the last whole record (a write a kill cut short), so the next
    record appended is not read as part of it. Only while no proxy appends (the caller
    holds the session lock and is the only writer's stand-in). True if something was cut."""
    if size_of(path) <= end:
        return False
    os.truncate(path, end)
    return True


_libc = None


def release(fd: int, upto: int) -> None:
    """Give the disk blocks of the journal's first ``upto`` bytes back (Linux; elsewhere,
    or on a file system without holes, the journal keeps them). The committed part is never
    read again; the file keeps its length, and the proxy appends as before."""
    global _libc
    if upto <= 0:
        return
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        _libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    with contextlib.suppress(AttributeError, OSError):
        _libc.fallocate(fd, _PUNCH, 0, upto)


@dataclass(frozen=True)
class Busy:
    """The record the analysis was busy with, and how many analyses it has started. Written
    before each record is analysed: if the process dies there, the record may be what killed
    it, and whoever takes over quarantines it instead of running it again (in the proxy's
    process at once; elsewhere at the second death)."""

    start: int = -1
    attempts: int = 0
    busy: bool = False


class BusyMarker:
    """``DIR/journal.at``: one ``pwrite`` per record, by the analysing process only."""

    def __init__(self, directory: Path) -> None:
        path = Path(directory) / AT_FILE
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.fchmod(self._fd, 0o600)
        self.last = load_busy(path)

    def start(self, offset: int) -> None:
        same = self.last.busy and self.last.start == offset
        self._write(Busy(offset, self.last.attempts + 1 if same else 1, True))

    def idle(self) -> None:
        if self.last.busy:
            self._write(Busy(self.last.start, self.last.attempts, False))

    def _write(self, at: Busy) -> None:
        os.pwrite(self._fd, _BUSY.pack(at.start, at.attempts, at.busy), 0)
        self.last = at

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def load_busy(path: Path) -> Busy:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return Busy()
    if len(data) < _BUSY.size:
        return Busy()
    start, attempts, busy = _BUSY.unpack_from(data)
    return Busy(start, attempts, bool(busy))
