"""The analysis side of a live capture: the session, the flow file and the journal's commits.

The addon keeps only what must happen on mitmproxy's event loop (reading the flow, marking
it); everything else is a message (``auditor.live.protocol``) handled by ``Core``: analyse
a transmission and commit it, record a consent event or an error, append a flow to
``flows.mitm``, write the reports. The same ``Core`` runs in one of two places:

- in a worker process (``auditor.live.process``, the default), so the pipeline, the rules,
  SQLite and the flow file cost the device's traffic nothing but a hand-off. An HTTP flow
  is handed over once, when its response has gone to the device, as ``flow.get_state()``:
  the worker reads it exactly as ``kidaudit analyze flows.mitm`` would;
- in the proxy's own process (``Inline``), with ``kidaudit_worker=false`` and as the
  stand-in when the worker dies.

The store and the journal are the truth about what is done. Each commit records, in its own
transaction, how far into the journal it got and how long ``flows.mitm`` then was. Every
``Core`` opening a folder first cuts ``flows.mitm`` back to that length and analyses what
the journal holds beyond that offset: a worker starting a resumed capture, the proxy's
stand-in for a dead worker, ``recover`` for ``kidaudit report``. So a batch that died
half-written is analysed again, once, and nothing the proxy finished is lost.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from auditor.extract.payload import ClientHello
from auditor.live import journal, protocol
from auditor.live.lock import SessionBusy, hold_lock
from auditor.live.protocol import (
    ANALYSED,
    AnalysisError,
    Close,
    Committed,
    Consent,
    Finish,
    Finished,
    HttpFlow,
    Log,
    Message,
    Raw,
    Reply,
    Result,
    SaveFlow,
    Settings,
    Uninspected,
    error_text,
)
from auditor.live.terminal import describe, procedure_tracker
from auditor.mask import Masker
from auditor.memo import Memo
from auditor.model import Transmission
from auditor.profile import load_consent_plan, load_profile
from auditor.session import CONSENT_FILE, FLOWS_FILE, PROFILE_FILE, Session, capture_facts
from auditor.sources import tnet
from auditor.sources.mitm import mark_flow, state_transmission, with_tls
from auditor.store import Store

CONN_MEMO = 4096  # connections whose written state is kept (see ``Memo``)
MARKER = ":warning:"  # mitmproxy's emoji marker for flows carrying personal data
COMMENT = "kidaudit: "
RELEASE_ALIGN = 1 << 16  # committed journal bytes are given back to the disk in these steps
POLL_S = 0.25  # how often marks from ``kidaudit mark`` are looked for, at most


class Core:
    """One live session: the store, the rules' memo, ``flows.mitm`` and the journal's
    commits (see the module's docstring)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 *, in_proxy: bool = False, plausible: bool = True, replay: bool = True,
                 capturing: bool = True) -> None:
        """``in_proxy``: this runs in mitmproxy's process. There, and in a stand-in for a
        dead worker (``settings.take_over``, not another resumption), a message that was
        being analysed when a worker died is never run again: it may be what killed it
        (elsewhere, after both processes were killed, it gets a second chance).
        ``plausible=False``: a kept profile, read as it was taken (``recover``).
        ``replay=False``: the journal's backlog is left for the caller to read with
        ``handle_records`` (the worker, which says it is ready first).
        ``capturing=False``: no capture starts here (``recover`` commits what a killed one
        left), so its sign-off facts stay as that capture recorded them, not this host's."""
        take_over = settings.take_over
        directory = Path(settings.directory)
        self._lock = hold_lock(directory)
        profile = load_profile(settings.profile, plausible=plausible)
        plan = load_consent_plan(settings.consent) if settings.consent else None
        self.session = Session(directory, profile, plan)
        if settings.resume and not take_over:  # once per resumed capture, not per take-over
            self.session.note_resumed(time.time())
        if capturing and not take_over:  # the sign-off facts as this capture starts
            self.session.store.set_meta(**capture_facts(settings.modes, settings.operator))
        if settings.standards:  # remembered: a resumed capture and kidaudit report use them
            self.session.store.set_meta(standards=",".join(settings.standards))
        meta = self.session.store.meta()
        # the reports' conformance tables and the procedure shown live
        self._standards = settings.standards or tuple(
            s for s in meta.get("standards", "").split(",") if s)
        # Where the capture is in its procedure, told when a mark arrives (marks so far
        # included: a resumed capture goes on from where it was).
        self.progress = procedure_tracker(self._standards, profile.jurisdiction,
                                          settings.directory,
                                          (ev for _, ev in self.session.store.events()),
                                          probe=settings.tls_probe)
        self._flows = _open_flows(directory / FLOWS_FILE, meta)
        self._clock = clock
        self._last_poll = float("-inf")
        self._marks: dict[str, set[str]] = {}  # flow id -> categories, until it is saved
        self._conn_bytes: Memo[object, tuple[dict, tnet.Encoded]] = Memo(CONN_MEMO)
        self._all_results = settings.marks
        self._flush = True
        self.replayed: list[Reply] = []  # what analysing the journal's backlog answered
        self.recovered = self.quarantined = 0
        self._open_journal(directory, int(meta.get("journal_offset", "0")),
                           in_proxy or take_over, take_over)
        if replay:
            self._replay()

    def _open_journal(self, directory: Path, offset: int, strict: bool, take_over: bool
                      ) -> None:
        """The journal from the last commit on: which record to quarantine (the one an
        analysis was busy with when it died, if it used up its chances), and where the
        records of the proxy now running begin."""
        self.journal_path = directory / journal.JOURNAL_FILE
        self.journal_offset = offset
        self._released = 0
        self._journal_fd = os.open(self.journal_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                   0o600)
        os.fchmod(self._journal_fd, 0o600)
        self._busy = journal.BusyMarker(directory)
        busy = self._busy.last
        self._suspect = busy.start if busy.busy and busy.start >= offset and (
            busy.attempts >= (1 if strict else 2)) else -1
        # Records before this offset were written by an earlier proxy (unless this is its own
        # stand-in): its handles for flows to mark mean nothing to the proxy now running.
        self._fresh_from = 0 if take_over else self._cut_tail()

    @property
    def patterns(self) -> int:
        return len(self.session.pipeline.detector.known)

    def handle(self, msg: Message) -> list[Reply]:
        """Replies to one message, committed (with a checkpoint) before they are returned."""
        return self.handle_batch([msg])

    def handle_batch(self, messages: list[Message]) -> list[Reply]:
        """Several messages, one SQLite transaction and one write to the flow file.
        ``Finish`` or ``Close`` (always the last message) runs after the batch is
        committed."""
        last = messages[-1:] if messages and isinstance(messages[-1], protocol.ENDING) else []
        body = messages[:len(messages) - len(last)]
        replies = self._in_batch(lambda: [r for msg in body for r in self._handle_safe(msg)])
        for msg in last:
            replies += self._handle_safe(msg)
        return replies

    def handle_records(self, records: list[journal.Record]) -> list[Reply]:
        """Journal records, in one transaction whose checkpoint says how far the journal is
        committed; replies end with ``Committed``."""
        def body() -> list[Reply]:
            out: list[Reply] = []
            try:
                for rec in records:
                    out += self._record(rec)
                    self.journal_offset = rec.end
            finally:
                self._busy.idle()
            return out

        replies = self._in_batch(body)
        self._release(self.journal_offset // RELEASE_ALIGN * RELEASE_ALIGN)
        return [*replies, Committed(self.journal_offset)]

    def _handle_safe(self, msg: Message) -> list[Reply]:
        """A message that fails (other than ``Finish``/``Close``, whose failure ends the
        session) is logged, counted under coverage and answered; the session goes on."""
        if isinstance(msg, protocol.ENDING):
            return self._handle(msg)
        try:
            return self._handle(msg)
        except Exception as e:  # noqa: BLE001 - one bad message, not the session
            return self._failed(msg, e)

    def _handle(self, msg: Message) -> list[Reply]:
        match msg:
            case HttpFlow(token, state, hello):
                return [*self._poll(), *self._reply(self._observe_flow(token, state, hello))]
            case Raw(token, tx):
                return [*self._poll(), *self._reply(self._observe(token, tx))]
            case Uninspected(tx, reason, record):
                self.session.store.add_uninspected(tx.host, reason)
                self._save(record)  # ``analyze flows.mitm`` rebuilds the attempt from it
                return self._reply(self._observe(None, tx))
            case Consent(ev, save):
                self.session.record_event(ev)
                if save:
                    self._save(mark_flow(ev).get_state())
                return self._procedure(ev)
            case AnalysisError(stage, text):
                self.session.store.add_error(None, stage, text)
            case SaveFlow(state):
                self._save(state)
            case Finish(lang):
                return self._finish(lang)
            case Close():
                self.close()
            case _:
                raise ValueError(f"unknown message {type(msg).__name__}")
        return []

    def _finish(self, lang: str) -> list[Reply]:
        replies = self._poll(force=True)  # marks written since the last message count too
        self._flows.flush()
        self._checkpoint()
        if journal.size_of(self.journal_path) == self.journal_offset:
            self._release(self.journal_offset)  # all committed: none of it kept twice
        out = self.session.write_outputs(lang=lang, standards=self._standards)
        self.close()
        return [*replies, Finished(len(out.findings), str(out.report))]

    def _in_batch(self, body: Callable[[], list[Reply]]) -> list[Reply]:
        with self.session.store.batch():
            self._flush = False
            try:
                replies = body()
            finally:
                self._flush = True
                self._flows.flush()
            self._checkpoint()  # in the batch's transaction: committed with it, or not
        return replies

    def _record(self, rec: journal.Record) -> list[Reply]:
        try:
            msg = rec.message()
            if isinstance(msg, tuple):  # a journal written by kidaudit 0.1
                msg = protocol.from_tuple(msg)
        except Exception as e:  # noqa: BLE001 - a record we cannot read, not the session
            return self._failed(None, e)
        if rec.start == self._suspect:
            return self._quarantine(rec, msg)
        if isinstance(msg, protocol.ENDING):  # control messages never travel in the journal
            return []
        if rec.start < self._fresh_from and isinstance(msg, HttpFlow | Raw):
            msg = replace(msg, token=None)
        self._busy.start(rec.start)
        return self._handle_safe(msg)

    def _quarantine(self, rec: journal.Record, msg: Message) -> list[Reply]:
        """The message an analysis died on: not analysed again, listed under coverage; a
        flow's state is still appended to ``flows.mitm`` (the evidence is kept)."""
        self.quarantined += 1
        text = (f"quarantined: the analysis died while analysing this {_kind(msg)} message "
                f"({_subject(msg)}, journal offset {rec.start}); not analysed again")
        self.session.store.add_error(None, "quarantine", text)
        match msg:
            case HttpFlow(state=state) | SaveFlow(state=state) | Uninspected(record=state):
                if isinstance(state, dict):
                    self._save(state)
        return [Log(logging.ERROR, f"kidaudit: {text}")]

    def _replay(self) -> None:
        """Analyse what the journal holds beyond the last commit, in steps."""
        for records in journal.records(self.journal_path, self.journal_offset):
            quarantined = self.quarantined
            self.replayed += [r for r in self.handle_records(records)
                              if not isinstance(r, Committed)]
            self.recovered += len(records) - (self.quarantined - quarantined)

    def _cut_tail(self) -> int:
        """Cut a torn tail (a write a kill cut short) off the journal, so that the next
        record appended starts clean; returns where the journal now ends."""
        end = journal.tail(self.journal_path, self.journal_offset)
        size = journal.size_of(self.journal_path)
        if journal.cut_torn_tail(self.journal_path, end):
            self.session.store.add_error(
                None, "journal", f"{size - end} bytes at the end of the journal were not a "
                "whole message (a write cut short by a kill); cut off")
        return end

    def _release(self, upto: int) -> None:
        if upto > self._released:
            journal.release(self._journal_fd, upto)
            self._released = upto

    def close(self) -> None:
        if not self._flows.closed:
            self._flows.close()
            os.close(self._journal_fd)
            self._busy.close()
            self.session.close()
            self._lock.close()  # settled: readers waiting in ``settled`` go on

    def _observe_flow(self, token: int | None, state: dict, hello: ClientHello | None
                      ) -> Result:
        tx_id = self.session.next_id()
        try:
            tx = with_tls(state_transmission(state, tx_id), hello)
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            result = self._error(token, tx_id, "read", e)
        else:
            result = self._observe(token, tx)
        self._save(state)
        return result

    def _observe(self, token: int | None, tx: Transmission) -> Result:
        if tx.id < 0:  # numbered here, in the order messages arrive
            tx = replace(tx, id=self.session.next_id())
        self.progress.saw(tx.ts)
        try:
            obs, opened = self.session.observe(tx)
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            return self._error(token, tx.id, "analyze", e)
        # The recipient is device-controlled (an IMEI as a host label): masked in the
        # alert as in the reports, by this message's own detections.
        hide = Masker(obs.detections) if opened else str
        alerts = tuple(f"[{f.severity.upper()}] {f.rule} -> {hide(f.recipient) or '?'} "
                       f"({', '.join(f.categories)}) tx #{tx.id}" for f in opened)
        categories = tuple(sorted(obs.categories)) if obs.detections else ()
        if categories and tx.flow_id:
            self._marks.setdefault(tx.flow_id, set()).update(categories)
        return Result(token, tx.id, categories, alerts)

    def _checkpoint(self) -> None:
        self.session.store.set_meta(journal_offset=str(self.journal_offset),
                                    worker_flows_size=str(self._flows.tell()))

    def _error(self, token: int | None, tx_id: int | None, stage: str, e: Exception
               ) -> Result:
        """A stage failed on one message: counted under coverage, answered with the error."""
        text = error_text(e)
        self.session.store.add_error(tx_id, stage, text)
        return Result(token, tx_id, error=text)

    def _failed(self, msg: Message | None, e: Exception) -> list[Reply]:
        """A message failed outside the guarded stages (a malformed message, a store that
        refused it, a journal record that cannot be read: ``msg`` None): logged and, if the
        store still takes it, counted."""
        kind = _kind(msg) if msg is not None else "journal"
        analysed = isinstance(msg, ANALYSED)
        token = msg.token if isinstance(msg, HttpFlow | Raw) else None
        stage = "analyze" if analysed else kind
        try:
            result = self._error(token, None, stage, e)
        except Exception:  # noqa: BLE001 - the store itself failing: the log line remains
            result = Result(token, None, error=error_text(e))
        out: list[Reply] = [Log(logging.ERROR, f"kidaudit analysis: {kind}: {result.error}")]
        if analysed:
            out.append(result)
        return out

    def _reply(self, result: Result) -> list[Reply]:
        """A result goes back when the proxy has a use for it: each pipe message wakes the
        proxy's event loop, which is the device's time."""
        wanted = result.alerts or result.error or (self._all_results and result.categories)
        return [result] if wanted else []

    def _poll(self, force: bool = False) -> list[Reply]:
        """Marks written by ``kidaudit mark --session DIR`` from another process. Looked for
        at most every POLL_S: the final report re-judges every transmission against the
        complete timeline anyway."""
        now_s = self._clock()
        if now_s - self._last_poll < POLL_S and not force:
            return []
        self._last_poll = now_s
        replies: list[Reply] = []
        for ev in self.session.poll_events():
            self._save(mark_flow(ev).get_state())
            replies.append(Log(logging.WARNING, f"kidaudit: consent mark {describe(ev)}"))
            replies += self._procedure(ev)
        return replies

    def _procedure(self, ev) -> list[Reply]:
        """The steps done and the next one, after the mark ``ev`` (``capture --standard``)."""
        return [Log(logging.INFO, f"kidaudit: procedure: {line}")
                for line in self.progress.event(ev)]

    def _with_encoded_conns(self, state: dict) -> dict:
        """The state with its connections' states as already-written tnetstrings: a
        keep-alive connection's state repeats, unchanged, in each of its flows (in the
        proxy's process, as the very same dict)."""
        out = state
        for key in ("client_conn", "server_conn"):
            conn = state.get(key)
            if type(conn) is not dict:
                continue
            hit = self._conn_bytes.get(conn.get("id"))
            if hit is None or (hit[0] is not conn and hit[0] != conn):
                hit = self._conn_bytes.put(conn.get("id"),
                                           (conn, tnet.Encoded(tnet.dumps(conn))))
            if out is state:
                out = dict(state)
            out[key] = hit[1]
        return out

    def _save(self, state: dict) -> None:
        """Append a flow, marked and commented with what its messages carried, as the
        proxy shows it (mitmweb loads the file with the same marks)."""
        categories = self._marks.pop(state.get("id"), None)
        if categories:
            comment = state.get("comment") or ""
            if comment.startswith(COMMENT):
                categories |= set(comment[len(COMMENT):].split(", "))
            state["marked"], state["comment"] = MARKER, COMMENT + ", ".join(sorted(categories))
        self._flows.write(tnet.dumps(self._with_encoded_conns(state)))  # as FlowWriter does
        if self._flush:  # (in a batch: once, at its end)
            self._flows.flush()


class Inline:
    """The ``Core`` in the proxy's own process: replies come back at once.

    ``take_over``: a dead worker's stand-in. It starts with what the worker had not
    committed (from the journal, each message once), except a message the worker died
    analysing: that one is quarantined, never run in the proxy's process."""

    def __init__(self, settings: Settings, on_reply: Callable[[Reply], None], *,
                 take_over: bool = False) -> None:
        if take_over:
            settings = replace(settings, take_over=True)
        self.core = Core(settings, in_proxy=True)
        self._on_reply = on_reply
        self.patterns = self.core.patterns
        for reply in self.core.replayed:
            on_reply(reply)
        self.core.replayed = []

    def send(self, msg: Message) -> None:
        for reply in self.core.handle(msg):
            self._on_reply(reply)

    def finish(self, lang: str) -> Finished:
        (*replies, finished) = self.core.handle(Finish(lang))
        for reply in replies:
            self._on_reply(reply)
        return finished

    def close(self) -> None:
        self.core.close()


def recover(directory: Path) -> int | None:
    """Analyse and commit what a session's journal holds beyond its last commit: the
    messages a capture had finished when its proxy and worker were both killed (a container
    stop, ``kill -9``). Returns how many were analysed (0: nothing was left), or None when a
    capture is still writing to the folder. Call it before reading a session's store or its
    ``flows.mitm`` (``kidaudit report``, ``analyze DIR/flows.mitm``), after ``settled``."""
    directory = Path(directory)
    path = directory / journal.JOURNAL_FILE
    if not path.is_file() or not (directory / Store.FILE).is_file():
        return 0
    store = Store.open_existing(directory)
    try:
        offset = int(store.meta().get("journal_offset", "0"))
    finally:
        store.close()
    if journal.tail(path, offset) == offset and journal.size_of(path) == offset:
        return 0  # nothing beyond the last commit: no need to build the pipeline
    consent = directory / CONSENT_FILE
    settings = Settings(str(directory), str(directory / PROFILE_FILE),
                        str(consent) if consent.is_file() else "")
    try:
        core = Core(settings, plausible=False, capturing=False)
    except SessionBusy:
        return None
    core.close()
    return core.recovered


def _open_flows(path: Path, meta: dict[str, str]):
    """``flows.mitm`` for appending, cut back to the last commit: a batch being written at
    a death was never committed to SQLite either, and is analysed again from the journal.
    (Only where every commit records the length: a session from before the journal has
    commits that did not.)"""
    if "journal_offset" in meta and "worker_flows_size" in meta:
        size = int(meta["worker_flows_size"])
        if path.exists() and path.stat().st_size > size:
            os.truncate(path, size)
    fh = open(path, "ab")  # noqa: SIM115 - closed in Core.close
    os.chmod(path, 0o600)
    return fh


def _kind(msg: object) -> str:
    """A message's name in log lines and under coverage."""
    return getattr(msg, "kind", type(msg).__name__)


def _subject(msg: object) -> str:
    """What a message was about, in a few words, for the quarantine's line."""
    try:
        match msg:
            case HttpFlow(state=state):
                request = state.get("request") or {}
                return f"flow {state.get('id', '?')} to {request.get('host', '?')}"
            case Raw(tx=tx) | Uninspected(tx=tx):
                return f"{tx.transport} to {tx.host or tx.ip}"
    except Exception:  # noqa: BLE001 - a message too odd to describe is still quarantined
        pass
    return _kind(msg)
