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

import heapq
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from mitmproxy import http, io

from auditor.folder import check_new
from auditor.marks import mark_of
from auditor.model import ConsentPlan, Profile, Transmission
from auditor.session import FLOWS_FILE, Outputs, Session
from auditor.sources.har import read_har
from auditor.sources.mitm import (
    TLS_META,
    InputError,
    Signals,
    flow_transmissions,
    http_flow_of,
    is_mark,
    read_flows,
    saved_mark_event,
    transmission,
)
from auditor.sources.pcap import PcapSource, uninspected_reason
from auditor.store import private_copy, private_open

MITM_SUFFIXES = (".mitm", ".flows", ".dump")
PCAP_SUFFIXES = (".pcap", ".pcapng", ".cap")
HAR_SUFFIXES = (".har",)
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
               b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")
SUPPORTED = MITM_SUFFIXES + PCAP_SUFFIXES + HAR_SUFFIXES
REORDER_WINDOW_S = 300.0  # how far a flow file may be out of request order (response times)
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
            lang: str = "en") -> Outputs:
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
    # Live, transmissions are numbered as requests arrive; a flow file is in response order,
    # so flows are put back in request order within a sliding window (streamed, not loaded).
    flows = (evidence.add(f) for path in mitm_inputs for f in read_flows(path, notes))
    sources: list[Iterator[tuple[float, int, object]]] = [
        ((ts, 0, f) for ts, f in _windowed(flows, _flow_ts, REORDER_WINDOW_S))]
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
    try:
        for _, _, item in heapq.merge(*sources, key=lambda t: (t[0], t[1])):
            if isinstance(item, Transmission):
                _captured(session, signals, item)
            else:
                _flow(session, signals, item, ids, names)
    except InputError:
        session.close()
        raise
    finally:
        evidence.close()
    for note in notes:
        session.store.add_error(None, "input", note)
    result = session.write_outputs(lang=lang)  # masked: the unmasked copy is report --out
    session.close()
    result.notes = notes + [
        f"{p.path.name}: {p.stats.packets} packets, {p.stats.connections} connections, "
        f"{p.stats.retransmitted} retransmitted segments, {p.stats.missing_bytes} bytes "
        "missing" for p in pcaps]
    return result


def _flow_ts(flow: object) -> float:
    if isinstance(flow, http.HTTPFlow):
        return flow.request.timestamp_start
    return getattr(flow, "timestamp_created", 0.0) or 0.0


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


def _flow(session: Session, signals: Signals, flow: object, ids: Iterator[int],
          names: dict[str, str]) -> None:
    if isinstance(flow, http.HTTPFlow):
        if is_mark(flow):
            try:
                session.record_event(saved_mark_event(flow))
            except ValueError as e:
                session.record_error(None, "mark", e)
            return
        for ev in signals.events(flow):
            session.record_event(ev)
        _observe(session, transmission(flow, next(ids)))
    try:
        txs = flow_transmissions(flow, ids, names)
    except Exception as e:  # noqa: BLE001 - one bad flow must not end the analysis
        session.record_error(None, "analyze", e)
        return
    if not txs and not isinstance(flow, http.HTTPFlow) and not _is_known(flow):
        session.store.add_uninspected(_flow_host(flow), f"{type(flow).__name__}: not "
                                      "analysed by this version")
    reason = getattr(flow, "metadata", {}).get(TLS_META, {}).get("reason", "")
    for tx in txs:
        if not tx.inspected:
            session.store.add_uninspected(tx.sni or tx.host, reason or "not inspected")
        _observe(session, tx)


def _is_known(flow: object) -> bool:
    from mitmproxy import dns, tcp, udp

    return isinstance(flow, tcp.TCPFlow | udp.UDPFlow | dns.DNSFlow)


def _flow_host(flow: object) -> str:
    server = getattr(flow, "server_conn", None)
    address = getattr(server, "address", None)
    return f"{address[0]}:{address[1]}" if address else "?"


def _keep_input(path: Path, out: Path) -> None:
    """A pcap or HAR travels with the session under its own name: the evidence."""
    target = out / path.name
    if path.resolve() != target.resolve():
        private_copy(path, target)


class _Evidence:
    """The output folder holds the raw evidence it was built from, as ``flows.mitm``: the
    input file itself when there is one, else every flow written as it is read."""

    def __init__(self, inputs: list[Path], target: Path) -> None:
        self._fh = None
        self._writer: io.FlowWriter | None = None
        if len(inputs) == 1:
            if inputs[0].resolve() != target.resolve():
                private_copy(inputs[0], target)
        elif inputs:
            self._fh = private_open(target)
            self._writer = io.FlowWriter(self._fh)

    def add(self, flow: object) -> object:
        if self._writer is not None:
            self._writer.add(flow)
        return flow

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = self._writer = None


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
