"""The session store: one SQLite file (WAL) per session, every transmission committed as it
arrives, so a capture killed at any moment keeps everything the proxy had finished.

``kidaudit mark`` writes consent events here from another process; the addon picks them up
by polling ``events`` (WAL lets one writer and many readers work side by side).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from auditor.model import ConsentEvent, Detection, Observation, Recipient, Transmission

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transmissions (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, transport TEXT NOT NULL, direction TEXT NOT NULL,
    host TEXT, ip TEXT, port INTEGER, method TEXT, url TEXT, inspected INTEGER NOT NULL,
    size INTEGER, flow_id TEXT, content_type TEXT,
    domain TEXT, organization TEXT, party TEXT, country TEXT,
    sni TEXT, decrypted INTEGER, tls_versions TEXT, tls_ciphers TEXT,
    sdk TEXT, sdk_type TEXT, opaque TEXT, tags TEXT);
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


def _json(items: tuple[str, ...]) -> str:
    """A tuple as a JSON list; most are empty, and json.dumps of nothing is not free."""
    return json.dumps(list(items)) if items else "[]"


def private_dir(path: Path) -> Path:
    """Session folders hold unmasked personal data: only the lab's own user may read them."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class Store:
    FILE = "session.sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = private_dir(Path(directory))
        self.path = self.directory / self.FILE
        fresh = not self.path.exists()
        self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        if fresh:
            os.chmod(self.path, 0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.db.commit()
        self._batching = False

    @classmethod
    def open_existing(cls, directory: Path) -> Store:
        if not (Path(directory) / cls.FILE).is_file():
            raise FileNotFoundError(f"{directory}: no {cls.FILE} here (not a kidaudit session)")
        return cls(directory)

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
                                [(k, str(v)) for k, v in values.items()])

    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    # -- transmissions ------------------------------------------------------------------
    def next_id(self) -> int:
        (last,) = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM transmissions").fetchone()
        return int(last) + 1

    def add_observation(self, obs: Observation) -> None:
        """Commit one transmission with its detections: durable when this returns (or, in
        a ``batch``, when the batch ends)."""
        tx, r = obs.transmission, obs.recipient
        with self._commit():
            self.db.execute(
                f"INSERT INTO transmissions VALUES ({','.join('?' * 25)})",
                (tx.id, tx.ts, tx.transport, tx.direction, tx.host, tx.ip, tx.port, tx.method,
                 tx.url, int(tx.inspected), tx.size, tx.flow_id, tx.content_type,
                 r.domain, r.organization, r.party, r.country,
                 tx.sni, int(tx.decrypted), _json(tx.tls_versions),
                 _json(tx.tls_ciphers), r.sdk, r.sdk_type,
                 _json(obs.opaque), _json(obs.tags)))
            self.db.executemany(
                "INSERT INTO detections VALUES (?,?,?,?,?,?,?,?,?)",
                [(d.transmission, d.category, d.method, d.location, d.field,
                  _json(d.encoding), d.profile_key, d.value, d.confidence)
                 for d in obs.detections])

    def observations(self) -> list[Observation]:
        """Everything recorded, without bodies: what rules and reports need.

        The whole session is held while the reports are written, so what repeats from row
        to row (a recipient, a host, a category, an encoding chain) is one object shared by
        every row, not a copy per row: about half the memory of the loaded session."""
        shared: dict[object, object] = {}

        def one(value: T) -> T:
            return shared.setdefault(value, value)  # type: ignore[return-value]

        def listed(text: str) -> tuple[str, ...]:
            return () if text == "[]" else one(tuple(json.loads(text)))

        dets: dict[int, list[Detection]] = {}
        for row in self.db.execute("SELECT * FROM detections ORDER BY rowid"):
            d = Detection(row[0], one(row[1]), one(row[2]), one(row[3]), one(row[4]),
                          listed(row[5]), row[6], row[7], row[8])
            dets.setdefault(d.transmission, []).append(d)
        recipients: dict[tuple, Recipient] = {}
        out: list[Observation] = []
        for row in self.db.execute("SELECT * FROM transmissions ORDER BY ts, id"):
            tx = Transmission(id=row[0], ts=row[1], transport=one(row[2]), direction=one(row[3]),
                              host=one(row[4]), ip=one(row[5]), port=row[6],
                              method=one(row[7]), url=row[8], inspected=bool(row[9]),
                              size=row[10], flow_id=row[11], content_type=one(row[12]),
                              sni=one(row[17]), decrypted=bool(row[18]),
                              tls_versions=listed(row[19]), tls_ciphers=listed(row[20]))
            key = (row[13], row[14], row[15], row[16], row[21], row[22])
            recipient = recipients.get(key)
            if recipient is None:
                recipient = recipients[key] = Recipient(*key)
            out.append(Observation(tx, recipient, tuple(dets.pop(tx.id, ())), listed(row[23]),
                                   listed(row[24])))
        return out

    # -- consent events -----------------------------------------------------------------
    def add_event(self, ev: ConsentEvent) -> int:
        with self._commit():
            cur = self.db.execute(
                "INSERT INTO events (ts, action, categories, recipients, separate, name, source)"
                " VALUES (?,?,?,?,?,?,?)",
                (ev.ts, ev.action, json.dumps(list(ev.categories)),
                 json.dumps(list(ev.recipients)), json.dumps(list(ev.separate)), ev.name,
                 ev.source))
        return int(cur.lastrowid or 0)

    def events(self, since: int = 0) -> list[tuple[int, ConsentEvent]]:
        rows = self.db.execute("SELECT * FROM events WHERE id > ? ORDER BY id", (since,))
        return [(r[0], ConsentEvent(r[1], r[2], tuple(json.loads(r[3])),
                                    tuple(json.loads(r[4])), tuple(json.loads(r[5])), r[6],
                                    r[7])) for r in rows]

    # -- coverage -----------------------------------------------------------------------
    def add_error(self, transmission: int | None, stage: str, message: str) -> None:
        with self._commit():
            self.db.execute("INSERT INTO errors (transmission, stage, message) VALUES (?,?,?)",
                            (transmission, stage, message[:500]))

    def errors(self) -> list[dict[str, object]]:
        rows = self.db.execute("SELECT transmission, stage, message FROM errors ORDER BY id")
        return [{"transmission": r[0], "stage": r[1], "message": r[2]} for r in rows]

    def add_uninspected(self, host: str, reason: str) -> None:
        with self._commit():
            self.db.execute("INSERT OR IGNORE INTO uninspected VALUES (?, ?)", (host, reason))

    def uninspected(self) -> list[dict[str, str]]:
        rows = self.db.execute("SELECT host, reason FROM uninspected ORDER BY host")
        return [{"host": r[0], "reason": r[1]} for r in rows]
