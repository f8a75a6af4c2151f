"""``kidaudit analyze``: rebuild a session from saved captures, through the same Session
the live addon uses.

Inputs by suffix: ``.mitm`` / ``.flows`` / ``.dump`` (mitmproxy, the evidence is kept as
``flows.mitm``), ``.pcap`` / ``.pcapng`` (scapy, streamed) and ``.har``; for the last two a
copy of the input is kept under its own name next to the outputs.

A request to the magic host ``kidaudit.mark`` is a consent mark in every input, read by the
parser the live addon uses (``auditor.marks``), so any export of a session gives the live
run's timeline and findings.
"""

from __future__ import annotations

import contextlib
import heapq
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from auditor.chunk import Analysed, Context, Outcome, Skipped, analyse_chunk, analyse_flow
from auditor.chunk import outcome as analysed_outcome
from auditor.folder import check_new
from auditor.jobs import Pool
from auditor.marks import mark_of
from auditor.model import ConsentPlan, Observation, Profile, Transmission
from auditor.session import FLOWS_FILE, Outputs, Session
from auditor.sources.har import read_har
from auditor.sources.mitm import (
    InputError,
    Signals,
    har_named_flows,
    http_flow_of,
    is_har_named_flow_file,
    read_flows,
)
from auditor.sources.pcap import PcapSource, uninspected_reason
from auditor.sources.split import CHUNK_BYTES, Chunk, Cut, chunks
from auditor.spawner import MITM_SUFFIXES, pooled
from auditor.store import Store, printable, private_copy, private_open

PCAP_SUFFIXES = (".pcap", ".pcapng", ".cap")
HAR_SUFFIXES = (".har",)
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
               b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")
SUPPORTED = MITM_SUFFIXES + PCAP_SUFFIXES + HAR_SUFFIXES
REORDER_WINDOW_S = 300.0  # how far a flow file may be out of request order (response times)
BATCH = 500  # messages committed in one transaction
RELEASE = 250  # items merged between two reads of the timeline for the reports
T = TypeVar("T")


def check_inputs(inputs: list[Path]) -> None:
    for path in inputs:
        if path.is_dir():
            evidence = path / FLOWS_FILE
            hint = (f"to analyse its evidence again, give {evidence}" if evidence.is_file()
                    else "give the capture files in it")
            raise InputError(f"{path}: is a folder, not a capture; {hint}")
        if path.suffix.lower() not in SUPPORTED:
            raise InputError(f"{path}: unknown capture type {path.suffix or '(no suffix)'!r}; "
                             f"expected one of {', '.join(SUPPORTED)}")
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        if path.suffix.lower() in MITM_SUFFIXES:
            next(iter(read_flows(path, [])), None)  # not a flow file: say so before starting
        if path.suffix.lower() in PCAP_SUFFIXES:
            with open(path, "rb") as fh:
                magic = fh.read(4)
            if magic not in PCAP_MAGICS:
                raise InputError(f"{path}: not a pcap or pcapng capture "
                                 f"(starts with {magic.hex() or 'nothing'})")


def analyze(inputs: list[Path], profile: Profile, plan: ConsentPlan | None, out: Path, *,
            lang: str = "en", jobs: int = 1, chunk_bytes: int = CHUNK_BYTES,
            progress: bool = False, standards: Sequence[str] = ()) -> Outputs:
    """``jobs``: processes that read and analyse the flow files' chunks (``auditor.jobs``);
    at 1, or for flow files of one chunk, all in this process: the outputs are the same.
    ``progress``: a progress bar of the inputs' bytes on stderr (when it is a terminal).
    ``standards``: the conformance tables' ids (none: the profile's jurisdiction's),
    remembered in the session for a later ``kidaudit report``."""
    check_inputs(inputs)
    check_new(out, option="--out")  # evidence never mixes: a new or empty folder
    notes: list[str] = []
    # A HAR is one JSON document, read whole anyway: read before the folder is made, so a
    # bad one is refused with the folder untouched.
    hars = {path: list(read_har(path, notes)) for path in inputs
            if path.suffix.lower() in HAR_SUFFIXES}
    mitm_inputs = [p for p in inputs if p.suffix.lower() in MITM_SUFFIXES]
    session = Session(out, profile, plan, inputs=tuple(p.name for p in inputs), alerts=False)
    evidence = _Evidence(mitm_inputs, out / FLOWS_FILE)
    for path in inputs:
        if path.suffix.lower() not in MITM_SUFFIXES:
            _keep_input(path, out)
    signals = Signals(plan)
    several = len(mitm_inputs) > 1  # the flows are written again, as one flows.mitm
    mitm_bytes = sum(p.stat().st_size for p in mitm_inputs)
    pool = Pool(jobs, profile, plan, several) if pooled(mitm_bytes, jobs, chunk_bytes) else None
    bar = _Progress(sum(p.stat().st_size for p in inputs)) if progress else None
    local = Context(session.pipeline, signals, several)
    # Live, transmissions are numbered as requests arrive; a flow file is in response order,
    # so flows are put back in request order within a sliding window (streamed, not loaded).
    flows = _analysed(mitm_inputs, notes, evidence, local, pool, chunk_bytes, bar)
    sources: list[Iterator[tuple[float, int, object]]] = [
        ((ts, 0, f) for ts, f in _windowed(flows, _ts, REORDER_WINDOW_S))]
    pcaps: list[PcapSource] = []
    for path in inputs:
        suffix = path.suffix.lower()
        if suffix in PCAP_SUFFIXES:
            source = PcapSource(path, profile.device.ip, notes)
            pcaps.append(source)
            sources.append((tx.ts, 1, tx) for tx in source)
        elif suffix in HAR_SUFFIXES:
            sources.append((tx.ts, 1, tx) for tx in hars[path])
    names: dict[str, str] = {}
    ids = iter(session.next_id, None)

    def ended() -> None:
        nonlocal bar
        evidence.close()
        if bar is not None:
            bar, done_bar = None, bar
            done_bar.close()

    def applied() -> Iterator[float]:
        """Each item into the session in the merged order, yielding its time; at the end
        the evidence is closed and the inputs' notes recorded, before any report is (the
        workers stay: they make the reports' rows' text)."""
        with _Batches(session.store) as batches:
            for key, _, item in heapq.merge(*sources, key=lambda t: (t[0], t[1])):
                if isinstance(item, Transmission):
                    _captured(session, signals, item)
                else:
                    _apply(session, item, ids, names)  # type: ignore[arg-type]
                batches.tick()
                yield key
        ended()
        for note in notes:
            session.store.add_error(None, "input", note)

    merged = applied()
    try:
        try:  # masked: the unmasked copy is report --out
            result = session.write_outputs(lang=lang, standards=standards,
                                           observations=_timeline(session, merged),
                                           encoder=pool)
        except _Unordered:  # the walk after all, once everything is in
            for _ in merged:
                pass
            result = session.write_outputs(lang=lang, standards=standards, encoder=pool)
    except InputError:
        session.close()
        raise
    finally:
        merged.close()
        ended()
        if pool is not None:
            pool.close()
    session.close()
    result.notes = notes + [
        f"{p.path.name}: {p.stats.packets} packets, {p.stats.connections} connections, "
        f"{p.stats.retransmitted} retransmitted segments, {p.stats.missing_bytes} bytes "
        "missing" for p in pcaps]
    return result


class _Unordered(Exception):
    """The timeline read as it was committed is not the store's walk: judged again."""


def _timeline(session: Session, keys: Iterator[float], every: int = RELEASE
              ) -> Iterator[Observation]:
    """The store's walk (``iter_observations``: by time, then id) read a stretch at a time
    while the inputs are merged into it, so the reports' judging runs beside the reading
    (with ``--jobs``, beside the workers) instead of after it. Every ``every`` items, what
    was committed before the time of the latest item is read: the merge gives items in
    time order and a message is not older than its flow, so nothing older comes after.

    Should that fail (a flow file out of order beyond the reorder window, a message dated
    before its flow), a row lands behind what was read and the count read falls short of
    the store's at the end: ``_Unordered``, and the caller walks the store as ``report``
    does. Consent states are judged as rows are read, under the ledger as it stands; what
    the ledger says at a time depends on the events at or before it alone (a withdrawal
    takes effect after its grace, never before it was made), so an event recorded later
    (a mark, a plan's signal) changes nothing read if it is dated after the last row read,
    as a mark merged in time order is. One dated at or before it: ``_Unordered`` too.
    The same rows, in the same order, judged under the same ledger: the same reports."""
    store = session.store
    after: tuple[float, int] | None = None
    read = settled = 0

    def events_upto() -> int:
        """The ledger's events dated at or before the last row read: those it judged."""
        return 0 if after is None else sum(ev.ts <= after[0] for ev in session.ledger.events)

    def stretch(before: float | None) -> Iterator[Observation]:
        nonlocal settled, after, read
        if events_upto() != settled:
            raise _Unordered
        for o in store.observations_between(after, before):
            read += 1
            after = (o.transmission.ts, o.transmission.id)
            yield o
        settled = events_upto()

    for n, key in enumerate(keys, 1):
        if n % every == 0:
            yield from stretch(key)
    yield from stretch(None)
    if read != store.count():
        raise _Unordered


def _observe(session: Session, tx: Transmission) -> None:
    try:
        session.observe(tx)
    except (sqlite3.Error, OSError):
        raise  # the store or the disk failed (full?): the run fails, not one message
    except Exception as e:  # noqa: BLE001 - one bad message must not end the analysis
        session.record_error(tx.id, "analyze", e)


def _captured(session: Session, signals: Signals, tx: Transmission) -> None:
    """A transmission from a pcap or a HAR: numbered here, signals run on HTTP ones. A
    request to the magic host is the consent mark it was live (the addon answered it, it
    never left), so it is an event, or an error when malformed, and takes no number."""
    try:
        mark = mark_of(tx)
    except ValueError as e:
        session.record_error(None, "mark", e)
        return
    if mark is not None:
        session.record_event(mark)
        return
    tx = replace(tx, id=session.next_id())
    if tx.transport in ("http", "https") and tx.method:
        for ev in signals.events(http_flow_of(tx)):
            session.record_event(ev)
    if not tx.inspected:
        session.store.add_uninspected(tx.sni or tx.host, uninspected_reason(tx))
    _observe(session, tx)


def _ts(item: Analysed) -> float:
    return item.ts


def _analysed(paths: list[Path], notes: list[str], evidence: _Evidence, local: Context,
              pool: Pool | None, chunk_bytes: int, bar: _Progress | None
              ) -> Iterator[Analysed]:
    """Every flow of the flow files, analysed (by the pool's workers, or here), in file
    order; what ``read_flows`` notes about a file (a record skipped, a cut) noted as it did."""
    for path in paths:
        if is_har_named_flow_file(path):
            for flow in har_named_flows(path):
                item = analyse_flow(local, flow)
                evidence.add(item.evidence)
                yield item
            if bar is not None:
                bar.advance(path.stat().st_size)
            continue
        def here(part: Chunk | Cut) -> list[Analysed | Skipped]:
            return analyse_chunk(local, part) if isinstance(part, Chunk) else []

        parts = chunks(path, chunk_bytes)
        # With workers, the first chunk is analysed here while they start (the same code:
        # ``--jobs 1`` analyses every chunk here).
        results = (pool.analysed(parts, here=here) if pool is not None else
                   ((c, here(c)) for c in parts))
        count = 0
        for part, items in results:
            if isinstance(part, Cut):
                _refuse_first(path, count, part.problem)
                notes.append(f"{path}: stopped after {count} flows at byte {part.at}: "
                             f"{part.problem}")
                break
            if bar is not None:
                bar.advance(part.size)
            for item in items:
                if isinstance(item, Skipped):
                    _refuse_first(path, count, item.problem)
                    notes.append(f"{path}: the record at byte {item.at} was skipped "
                                 f"({item.problem})")
                    continue
                count += 1
                evidence.add(item.evidence)
                yield item


def _refuse_first(path: Path, count: int, problem: str) -> None:
    """A record that is not a flow before the first flow: the file is not a flow file (the
    user's input, refused in one line). After it, the caller notes the record and goes on."""
    if count == 0:
        raise InputError(f"{path}: not a mitmproxy flow file ({problem})")


def _apply(session: Session, item: Analysed, ids: Iterator[int], names: dict[str, str]
           ) -> None:
    """A flow's results into the session, in the merged order: numbered, named, committed,
    as ``analyze`` did it flow by flow."""
    store = session.store
    if item.mark is not None:
        session.record_event(item.mark)
        return
    if item.mark_error is not None:
        store.add_error(None, "mark", item.mark_error)
        return
    for ev in item.events:
        session.record_event(ev)
    if item.request is not None:
        _commit(session, item.request, next(ids), names)
    if item.flow_error is not None:
        for _ in range(item.ids_used):
            next(ids)
        store.add_error(None, "analyze", item.flow_error)
        return
    if item.unknown is not None:
        store.add_uninspected(*item.unknown)
    numbers = [next(ids) for _ in item.messages]  # taken together, as the flow is read
    for tx_id, outcome in zip(numbers, item.messages, strict=True):
        _commit(session, outcome, tx_id, names, item.reason or "not inspected")
    names.update(item.names)


def _commit(session: Session, outcome: Outcome, tx_id: int, names: dict[str, str],
            reason: str | None = None) -> None:
    """One transmission's outcome under its number. A raw-IP one that a DNS answer named
    before it is analysed again here, under the name (its worker could not know it). The
    session raises no alerts (``analyze``): committing is inserting the row."""
    if outcome.resolve is not None and names and outcome.tx is not None and (
            name := names.get(outcome.resolve)) is not None:
        outcome = analysed_outcome(session.pipeline, replace(
            outcome.tx, id=tx_id, host=printable(name)))
    store = session.store
    if reason is not None and outcome.uninspected is not None:
        store.add_uninspected(outcome.uninspected, reason)
    store.add_row(tx_id, outcome.row)
    if outcome.error is not None:  # kept without content, as Session.observe keeps it
        store.add_error(tx_id, "analyze", outcome.error)


class _Batches:
    """Commits every ``size`` messages, not each: a rebuilt session can be rebuilt again,
    and a transaction per message was a large part of the time."""

    def __init__(self, store: Store, size: int = BATCH) -> None:
        self._store, self._size, self._count = store, size, 0
        self._open: contextlib.AbstractContextManager | None = None

    def __enter__(self) -> _Batches:
        self._open = self._store.batch()
        self._open.__enter__()
        return self

    def tick(self) -> None:
        self._count += 1
        if self._count >= self._size:
            self._count = 0
            self._close(None, None, None)
            self.__enter__()

    def _close(self, *exc: object) -> None:
        if self._open is not None:
            opened, self._open = self._open, None
            opened.__exit__(*exc)  # type: ignore[arg-type]

    def __exit__(self, *exc: object) -> None:
        self._close(*exc)


class _Progress:
    """A rich progress bar of the inputs' bytes, on stderr."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("kidaudit: analyzing"), BarColumn(), DownloadColumn(),
                             TimeRemainingColumn(), console=Console(stderr=True),
                             transient=True)
        self._task = self._bar.add_task("analyze", total=total or 1)
        self._bar.start()

    def advance(self, n: int) -> None:
        self._bar.advance(self._task, n)

    def close(self) -> None:
        self._bar.stop()


def _keep_input(path: Path, out: Path) -> None:
    """A pcap or HAR travels with the session under its own name: the evidence."""
    target = out / path.name
    if path.resolve() != target.resolve():
        private_copy(path, target)


class _Evidence:
    """The output folder holds the raw evidence it was built from, as ``flows.mitm``: the
    input file itself when there is one, else every flow written as it is read (as
    mitmproxy's ``FlowWriter`` writes it: ``chunk.tnet_of``)."""

    def __init__(self, inputs: list[Path], target: Path) -> None:
        self._fh = None
        if len(inputs) == 1:
            if inputs[0].resolve() != target.resolve():
                private_copy(inputs[0], target)
        elif inputs:
            self._fh = private_open(target)

    def add(self, written: bytes | None) -> None:
        if self._fh is not None and written is not None:
            self._fh.write(written)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _windowed(items: Iterable[T], key: Callable[[T], float], window: float
              ) -> Iterator[tuple[float, T]]:
    """``(key, item)`` in key order, holding only the items within ``window`` of the newest:
    a stream that is nearly in order comes out in order without being loaded whole."""
    heap: list[tuple[float, int, T]] = []
    newest = float("-inf")
    for n, item in enumerate(items):
        k = key(item)
        newest = max(newest, k)
        heapq.heappush(heap, (k, n, item))
        while heap and heap[0][0] < newest - window:
            k0, _, first = heapq.heappop(heap)
            yield k0, first
    while heap:
        k0, _, first = heapq.heappop(heap)
        yield k0, first


__all__ = ["SUPPORTED", "analyze", "check_inputs"]
