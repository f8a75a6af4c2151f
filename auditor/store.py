r"""The session store: one SQLite file (WAL) per session, every transmission committed as it
arrives, so a capture killed at any moment keeps everything the proxy had finished.

``kidaudit mark`` writes consent events here from another process; the addon picks them up
by polling ``events`` (WAL lets one writer and many readers work side by side).

Every byte is kept. mitmproxy reads a Host header or path that is not UTF-8 with
``surrogateescape``, and SQLite (like the UTF-8 reports) refuses such a string: the
transmission and the IMEI in its query would be lost. Text is stored ``printable``
instead: each undecodable byte as the visible escape ``\xNN`` (what Python's
``backslashreplace`` writes for a bad byte), any other lone surrogate as ``\uXXXX``. The raw
bytes stay in ``flows.mitm``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from auditor.memo import memoised
from auditor.model import ConsentEvent, Detection, Observation, Recipient, Transmission

T = TypeVar("T")
P = ParamSpec("P")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transmissions (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, transport TEXT NOT NULL, direction TEXT NOT NULL,
    host TEXT, ip TEXT, port INTEGER, method TEXT, url TEXT, inspected INTEGER NOT NULL,
    size INTEGER, flow_id TEXT, content_type TEXT,
    domain TEXT, organization TEXT, party TEXT, country TEXT,
    sni TEXT, decrypted INTEGER, tls_versions TEXT, tls_ciphers TEXT,
    sdk TEXT, sdk_type TEXT, opaque TEXT, tags TEXT, probe TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS detections (
    transmission INTEGER NOT NULL REFERENCES transmissions(id), category TEXT NOT NULL,
    method TEXT NOT NULL, location TEXT, field TEXT, encoding TEXT, profile_key TEXT,
    value TEXT, confidence REAL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, action TEXT NOT NULL, categories TEXT,
    recipients TEXT, separate TEXT, name TEXT, source TEXT);
CREATE TABLE IF NOT EXISTS errors (
    id INTEGER PRIMARY KEY, transmission INTEGER, stage TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS uninspected (host TEXT, reason TEXT, PRIMARY KEY (host, reason));
CREATE INDEX IF NOT EXISTS detections_tx ON detections(transmission);
"""
# The timeline order the reports read in, without a sort of the whole table: made when a
# store opens, an older session folder's too, once its table is known to be kidaudit's.
TIME_INDEX = "CREATE INDEX IF NOT EXISTS transmissions_time ON transmissions(ts, id)"
# Columns added after the first release, last in the table, each with what an older store's
# rows mean by it: such a store gets the column when opened, and its rows read as before.
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("probe", "ALTER TABLE transmissions ADD COLUMN probe TEXT NOT NULL DEFAULT ''"),
)
# Transmissions read per batch by ``iter_observations``: one query for their detections
# each (SQLite takes up to 32,766 parameters; a batch also bounds what one read holds).
BATCH = 500


_SURROGATE = re.compile("[\ud800-\udfff]")
_BYTE_ESCAPES = range(0xDC80, 0xDD00)  # what ``surrogateescape`` makes of bytes 0x80-0xff


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if code in _BYTE_ESCAPES else f"\\u{code:04x}"


def printable(text: str) -> str:
    r"""``text`` as valid Unicode: a byte ``surrogateescape`` kept becomes ``\xNN``, any
    other lone surrogate ``\uXXXX``. ASCII, most of what passes, is answered at once."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(_escape, text)
    return text


def _bindable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row SQLite accepts: every string in it printable (ASCII, most of them, as it is:
    this runs on every column of every row)."""
    return tuple([printable(v) if isinstance(v, str) and not v.isascii() else v for v in row])


def _json(items: tuple[str, ...]) -> str:
    """A tuple as a JSON list; most are empty, and json.dumps of nothing is not free."""
    return json.dumps([printable(str(i)) for i in items]) if items else "[]"


# A transmission's row as the store writes it, numbers aside: its columns after the id, and
# each detection's after the transmission's number, every value already bindable. Plain
# tuples of strings and numbers: what a worker of ``analyze --jobs`` sends back costs the
# parent little to unpickle, unlike the Observation with its body and frozen dataclasses.
StoredRow = tuple[tuple[Any, ...], tuple[tuple[Any, ...], ...]]


def row_of(obs: Observation) -> StoredRow:
    """The row ``add_observation`` writes for ``obs``, without the numbers ``add_row``
    gives it (the detections take the transmission's)."""
    return (_transmission_values(obs),
            tuple([_detection_values(d) for d in obs.detections]))


def _transmission_values(obs: Observation) -> tuple[Any, ...]:
    """The transmissions table's columns after the id."""
    tx, r = obs.transmission, obs.recipient
    return _bindable((tx.ts, tx.transport, tx.direction, tx.host, tx.ip, tx.port,
                      tx.method, tx.url, int(tx.inspected), tx.size, tx.flow_id,
                      tx.content_type, r.domain, r.organization, r.party, r.country,
                      tx.sni, int(tx.decrypted), _json(tx.tls_versions),
                      _json(tx.tls_ciphers), r.sdk, r.sdk_type,
                      _json(obs.opaque), _json(obs.tags), tx.probe))


def _detection_values(d: Detection) -> tuple[Any, ...]:
    """The detections table's columns after the transmission's number."""
    return _bindable((d.category, d.method, d.location, d.field, _json(d.encoding),
                      d.profile_key, d.value, d.confidence))


def private_dir(path: Path) -> Path:
    """Session folders hold unmasked personal data: only the lab's own user may read them.

    Every folder made on the way is 0700, the intermediate ones too (``mkdir -p`` would
    leave them to the umask), and the folder itself is made 0700. Nothing outside is
    touched: a folder that already existed on the way keeps its mode, and a symbolic link
    as the folder is refused (``NotADirectoryError``: the CLI's exit 2, one line) rather
    than followed, so a link to ``$HOME`` never gets its target chmodded."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.is_symlink() or folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile: checked below
            os.mkdir(folder, 0o700)
        if folder != path:
            _chmod_private(folder)
    _chmod_private(path)
    return path


def private_open(path: Path):
    """A file only the lab's user may read, from its first byte (not chmodded after)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


def private_copy(source: Path | str, target: Path) -> None:
    """A copy of an input into a session folder (a HAR, a pcap, the profile and plan used):
    0600, also when ``target`` was there already."""
    with open(source, "rb") as src, private_open(target) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.chmod(target, 0o600)


def _chmod_private(folder: Path) -> None:
    """0700 on ``folder`` itself, opened without following a link (no race with a link
    swapped in after a check)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        if folder.is_symlink():
            raise NotADirectoryError(
                e.errno, "is a symbolic link; kidaudit writes only into a real folder (it "
                "makes its folders private, and never changes a link's target); give the "
                "folder it points to, or a new one", str(folder)) from None
        raise
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


class StoreError(ValueError):
    """A session store that is not one kidaudit can read (damaged, or another program's
    SQLite file): the user's input, one line naming the file (the CLI's exit 2)."""


@memoised(1)
def layout() -> dict[str, tuple[str, ...]]:
    """Table -> its columns in order, as SCHEMA makes them. Rows are read by position, so a
    file whose tables have other columns is another program's, and is refused."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA)
        return {table: _columns(db, table) for (table,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()


def _columns(db: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(row[1] for row in db.execute(f"PRAGMA table_info({table})"))


def _damaged(method: Callable[P, T]) -> Callable[P, T]:
    """A read that meets a damaged file (SQLite's "malformed", a value of the wrong type)
    raises StoreError; a failing disk (``OperationalError``) stays the run failing."""
    @functools.wraps(method)
    def read(*args: P.args, **kwargs: P.kwargs) -> T:
        store = args[0]
        try:
            return method(*args, **kwargs)
        except sqlite3.OperationalError:
            raise
        except (sqlite3.DatabaseError, ValueError, TypeError, IndexError, KeyError) as e:
            raise StoreError(f"{store.path}: is damaged or not a kidaudit session store "  # type: ignore[attr-defined]
                             f"({type(e).__name__}: {e}); analyze its flows.mitm into a new "
                             "folder to rebuild it") from None
    return read


class Store:
    FILE = "session.sqlite"

    def __init__(self, directory: Path, *, existing: bool = False) -> None:
        """``existing``: a session folder kidaudit made already (``report``, ``mark``),
        opened as it is, through a link too; a new store's folder is made private."""
        self.directory = Path(directory) if existing else private_dir(Path(directory))
        self.path = self.directory / self.FILE
        fresh = not self.path.exists()
        self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        if fresh:
            os.chmod(self.path, 0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._add_columns()
        if _columns(self.db, "transmissions") == layout()["transmissions"]:
            self.db.execute(TIME_INDEX)
        self.db.commit()
        self._batching = False

    def _add_columns(self) -> None:
        """An older store (before the TLS probe's column) opens: a table that is kidaudit's
        up to the columns added since gets them, its rows read as ordinary traffic. Any
        other table is left as it is, for ``check_layout`` to refuse."""
        found = _columns(self.db, "transmissions")
        expected = layout()["transmissions"]
        for name, statement in ADDED_COLUMNS:
            if found == expected[:len(found)] and name not in found:
                self.db.execute(statement)
                found = (*found, name)

    @classmethod
    def open_existing(cls, directory: Path) -> Store:
        if not (Path(directory) / cls.FILE).is_file():
            raise FileNotFoundError(f"{directory}: no {cls.FILE} here (not a kidaudit session)")
        try:
            store = cls(directory, existing=True)
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as e:  # "file is not a database", "malformed"
            raise StoreError(f"{Path(directory) / cls.FILE}: is damaged or not a kidaudit "
                             f"session store ({e}); analyze its flows.mitm into a new folder "
                             "to rebuild it") from None
        store.check_layout()
        return store

    @_damaged
    def check_layout(self) -> None:
        """Every table has the columns this version reads, in order."""
        for table, columns in layout().items():
            found = _columns(self.db, table)
            if found != columns:
                raise ValueError(f"table {table} has columns {', '.join(found)}")

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Everything added inside is one transaction, committed on the way out: the live
        worker commits what it read from the proxy in one go, a few times a second, instead
        of once per message."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self.db.commit()

    def _commit(self) -> contextlib.AbstractContextManager:
        """Per call, a transaction of its own; inside ``batch``, part of the batch's."""
        return contextlib.nullcontext() if self._batching else self.db

    # -- meta ---------------------------------------------------------------------------
    def set_meta(self, **values: str) -> None:
        with self._commit():
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                [(k, printable(str(v))) for k, v in values.items()])

    @_damaged
    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    # -- transmissions ------------------------------------------------------------------
    @_damaged
    def next_id(self) -> int:
        (last,) = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM transmissions").fetchone()
        return int(last) + 1

    def add_observation(self, obs: Observation) -> None:
        """Commit one transmission with its detections: durable when this returns (or, in
        a ``batch``, when the batch ends)."""
        tx = obs.transmission
        self._insert((tx.id, *_transmission_values(obs)),
                     [(d.transmission, *_detection_values(d)) for d in obs.detections])

    def add_row(self, tx_id: int, row: StoredRow) -> None:
        """``add_observation`` of the observation ``row_of`` made this row of, under the
        number ``tx_id`` (its detections' too): ``analyze --jobs`` has its workers make the
        rows, and the parent, which numbers the transmissions, only inserts them."""
        values, detections = row
        self._insert((tx_id, *values), [(tx_id, *d) for d in detections])

    def _insert(self, transmission: tuple[Any, ...], detections: list[tuple[Any, ...]]
                ) -> None:
        with self._commit():
            self.db.execute(f"INSERT INTO transmissions VALUES ({','.join('?' * 26)})",
                            transmission)
            self.db.executemany("INSERT INTO detections VALUES (?,?,?,?,?,?,?,?,?)",
                                detections)

    def observations(self) -> list[Observation]:
        """Everything recorded, without bodies, at once: for a small session and the tests.
        The reports read ``iter_observations``, which holds one batch at a time."""
        return list(self.iter_observations())

    def iter_observations(self) -> Iterator[Observation]:
        """Everything recorded, without bodies, in timeline order (ts, id): what rules and
        reports need, read through one cursor a batch at a time, each batch's detections in
        one more query. Memory follows the batch, not the session.

        What repeats from row to row (a recipient, a host, a category, an encoding chain) is
        one object shared by the rows of a batch, not a copy per row; the table of shared
        values starts again with each batch, so it never grows with the session."""
        cursor = self._read("SELECT * FROM transmissions ORDER BY ts, id")
        while rows := self._fetch(cursor):
            yield from self._observations(rows)

    def observations_between(self, after: tuple[float, int] | None, before: float | None
                             ) -> Iterator[Observation]:
        """``iter_observations``' rows after the key ``after`` (ts, id; None: from the
        first) and before the time ``before`` (None: to the last), in the same order and
        read the same way: ``analyze`` reads its timeline a stretch at a time as it is
        committed, instead of once more at the end."""
        where, args = [], []
        if after is not None:
            where.append("(ts, id) > (?, ?)")  # the time index's own order, no sort
            args += [after[0], after[1]]
        if before is not None:
            where.append("ts < ?")
            args.append(before)
        cursor = self._read("SELECT * FROM transmissions"
                            + (f" WHERE {' AND '.join(where)}" if where else "")
                            + " ORDER BY ts, id", tuple(args))
        while rows := self._fetch(cursor):
            yield from self._observations(rows)

    def count(self) -> int:
        """How many transmissions are recorded."""
        return int(self.db.execute("SELECT COUNT(*) FROM transmissions").fetchone()[0])

    @_damaged
    def observation(self, tx_id: int) -> Observation | None:
        """One transmission as ``iter_observations`` gives it, or None: what a finding
        recalls of a message it cites, without the session held."""
        rows = self.db.execute("SELECT * FROM transmissions WHERE id = ?", (tx_id,)).fetchall()
        return next(iter(self._observations(rows)), None)

    @_damaged
    def _read(self, query: str, args: tuple = ()) -> sqlite3.Cursor:
        return self.db.execute(query, args)

    @_damaged
    def _fetch(self, cursor: sqlite3.Cursor) -> list[tuple]:
        return cursor.fetchmany(BATCH)

    @_damaged
    def _observations(self, rows: list[tuple]) -> list[Observation]:
        """These transmission rows as Observations, with their detections (one query).

        Sharing a value is ``shared.setdefault(v, v)`` called as it is, not through a
        helper: half a million calls for the 20k bench capture, a Python frame each was a
        third of this. A recipient is shared by its columns (the first of the batch with
        the same ones, as a lookup by the equal Recipient would give), not built per row."""
        shared: dict[Any, Any] = {}
        one = shared.setdefault
        recipients: dict[tuple[Any, ...], Recipient] = {}
        decoded: dict[str, tuple[str, ...]] = {}  # a list's text read once a batch

        def listed(text: str) -> tuple[str, ...]:
            if text == "[]":
                return ()
            known = decoded.get(text)
            if known is None:
                value = tuple(json.loads(text))
                known = decoded[text] = one(value, value)
            return known

        dets: dict[int, list[Detection]] = {}
        ids = [row[0] for row in rows]
        for row in self.db.execute(
                f"SELECT * FROM detections WHERE transmission IN ({','.join('?' * len(ids))})"
                " ORDER BY rowid", ids):
            d = Detection(row[0], one(row[1], row[1]), one(row[2], row[2]),
                          one(row[3], row[3]), one(row[4], row[4]), listed(row[5]), row[6],
                          row[7], row[8])
            dets.setdefault(d.transmission, []).append(d)
        out: list[Observation] = []
        for row in rows:
            tx = Transmission(id=row[0], ts=row[1], transport=one(row[2], row[2]),
                              direction=one(row[3], row[3]), host=one(row[4], row[4]),
                              ip=one(row[5], row[5]), port=row[6], method=one(row[7], row[7]),
                              url=row[8], inspected=bool(row[9]), size=row[10],
                              flow_id=row[11], content_type=one(row[12], row[12]),
                              sni=one(row[17], row[17]), decrypted=bool(row[18]),
                              tls_versions=listed(row[19]), tls_ciphers=listed(row[20]),
                              probe=one(row[25], row[25]))
            columns = (row[13], row[14], row[15], row[16], row[21], row[22])
            recipient = recipients.get(columns)
            if recipient is None:
                recipient = recipients[columns] = Recipient(*columns)
            out.append(Observation(tx, recipient, tuple(dets.pop(tx.id, ())), listed(row[23]),
                                   listed(row[24])))
        return out

    # -- consent events -----------------------------------------------------------------
    def add_event(self, ev: ConsentEvent) -> int:
        with self._commit():
            cur = self.db.execute(
                "INSERT INTO events (ts, action, categories, recipients, separate, name, source)"
                " VALUES (?,?,?,?,?,?,?)",
                _bindable((ev.ts, ev.action, _json(ev.categories), _json(ev.recipients),
                           _json(ev.separate), ev.name, ev.source)))
        return int(cur.lastrowid or 0)

    @_damaged
    def events(self, since: int = 0) -> list[tuple[int, ConsentEvent]]:
        rows = self.db.execute("SELECT * FROM events WHERE id > ? ORDER BY id", (since,))
        return [(r[0], ConsentEvent(r[1], r[2], tuple(json.loads(r[3])),
                                    tuple(json.loads(r[4])), tuple(json.loads(r[5])), r[6],
                                    r[7])) for r in rows]

    # -- coverage -----------------------------------------------------------------------
    def add_error(self, transmission: int | None, stage: str, message: str) -> None:
        with self._commit():
            self.db.execute("INSERT INTO errors (transmission, stage, message) VALUES (?,?,?)",
                            (transmission, printable(stage), printable(message[:500])))

    @_damaged
    def errors(self) -> list[dict[str, object]]:
        rows = self.db.execute("SELECT transmission, stage, message FROM errors ORDER BY id")
        return [{"transmission": r[0], "stage": r[1], "message": r[2]} for r in rows]

    def add_uninspected(self, host: str, reason: str) -> None:
        with self._commit():
            self.db.execute("INSERT OR IGNORE INTO uninspected VALUES (?, ?)",
                            (printable(host), printable(reason)))

    @_damaged
    def uninspected(self) -> list[dict[str, str]]:
        rows = self.db.execute("SELECT host, reason FROM uninspected ORDER BY host")
        return [{"host": r[0], "reason": r[1]} for r in rows]
