"""One flow of a saved capture analysed on its own, so that ``analyze --jobs N`` can run the
reading, extraction and detection of a chunk of flows in another process.

What a flow needs from the flows before it stays with the parent, which merges the results
in time order: the transmission numbers (ids are handed out in the merged order, so a result
carries its observations' store rows without numbers, and the parent gives them theirs), and
the names DNS answers gave raw-IP addresses (a raw TCP/UDP transmission says which address it would
be named by; the parent, knowing the names learned before it, analyses it again under the
name when there is one). ``--jobs 1`` runs the very same code in the parent's process, so
the outputs are the same whatever the number of processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mitmproxy import http, tcp, udp

from auditor.model import ConsentEvent, Transmission
from auditor.pipeline import Pipeline
from auditor.sources import tnet
from auditor.sources.mitm import (
    TLS_META,
    NotAFlow,
    PlainHttp,
    Signals,
    flow_of_record,
    flow_transmissions,
    is_mark,
    is_mark_request,
    plain_http_of_record,
    saved_mark_event,
    transmission,
)
from auditor.sources.split import Chunk, read_chunk
from auditor.store import StoredRow, row_of


@dataclass(frozen=True)
class Outcome:
    """One transmission analysed: the store's row of its observation (``store.row_of``:
    numbered when committed) or, when the pipeline failed on it, the row of the observation
    kept without content and the error. The row, not the Observation: the parent of
    ``analyze --jobs`` only inserts it, and an Observation (its body, its dataclasses) cost
    the parent more to unpickle than the row costs to insert. ``uninspected``: the host a
    transmission not inspected is listed under (its SNI, else its host), None when it was.
    ``resolve``: the address a DNS answer may name (raw TCP/UDP without SNI); then ``tx``
    is the whole transmission, for the parent to analyse again under that name."""

    row: StoredRow
    error: str | None = None
    resolve: str | None = None
    tx: Transmission | None = None
    uninspected: str | None = None


@dataclass(frozen=True)
class Analysed:
    """A flow's results, in the order ``offline`` used to produce them one by one."""

    ts: float  # the merge key: the request's start, or the flow's creation
    evidence: bytes | None = None  # the flow as FlowWriter writes it (several inputs)
    mark: ConsentEvent | None = None
    mark_error: str | None = None
    events: tuple[ConsentEvent, ...] = ()
    request: Outcome | None = None  # an HTTP flow's request
    flow_error: str | None = None  # reading the flow's messages failed: nothing below
    ids_used: int = 0  # numbers the failed reading had taken
    unknown: tuple[str, str] | None = None  # a flow of a kind not analysed: host, reason
    reason: str = ""  # why its transmissions were not inspected (a TLS record flow)
    messages: tuple[Outcome, ...] = ()
    names: tuple[tuple[str, str], ...] = ()  # (address, name) a DNS answer gave


@dataclass(frozen=True)
class Skipped:
    """A whole record that is not a flow: the note says where and why."""

    at: int
    problem: str


@dataclass
class Context:
    """What a process analysing flows builds once: the pipeline and the plan's signals."""

    pipeline: Pipeline
    signals: Signals
    evidence: bool = False  # several inputs: the flows are written again as flows.mitm


def analyse_chunk(ctx: Context, chunk: Chunk) -> list[Analysed | Skipped]:
    out: list[Analysed | Skipped] = []
    # Without signals to match or evidence to write again, an ordinary HTTP flow is read
    # without rebuilding it (``plain_http_of_record``): the same results, read in less time.
    light = not ctx.signals and not ctx.evidence
    for at, record in read_chunk(chunk):
        try:
            flow = plain_http_of_record(record) if light else flow_of_record(record)
            if isinstance(flow, PlainHttp) and is_mark_request(flow.request):
                flow = flow_of_record(flow.record)
        except NotAFlow as e:
            out.append(Skipped(at, str(e)))
            continue
        out.append(analyse_plain(ctx, flow) if isinstance(flow, PlainHttp)
                   else analyse_flow(ctx, flow))
    return out


def analyse_plain(ctx: Context, flow: PlainHttp) -> Analysed:
    """``analyse_flow`` of an ordinary HTTP flow that is not a mark, with no signals to
    match and no evidence to write: its request's outcome is all there is."""
    return Analysed(flow.request.timestamp_start,
                    request=outcome(ctx.pipeline, flow.transmission(0)))


class _Counter:
    """Numbers from 0, counting how many were taken."""

    def __init__(self) -> None:
        self.taken = 0

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        self.taken += 1
        return self.taken - 1


def analyse_flow(ctx: Context, flow: object) -> Analysed:
    ts = _flow_ts(flow)
    evidence = tnet_of(flow) if ctx.evidence else None
    events: tuple[ConsentEvent, ...] = ()
    request = None
    if isinstance(flow, http.HTTPFlow):
        if is_mark(flow):
            try:
                return Analysed(ts, evidence, mark=saved_mark_event(flow))
            except ValueError as e:
                return Analysed(ts, evidence, mark_error=_text(e))
        events = tuple(ctx.signals.events(flow))
        request = outcome(ctx.pipeline, transmission(flow, 0))
    names: dict[str, str] = {}
    counter = _Counter()
    try:
        txs = flow_transmissions(flow, counter, names)
    except Exception as e:  # noqa: BLE001 - one bad flow must not end the analysis
        return Analysed(ts, evidence, events=events, request=request, flow_error=_text(e),
                        ids_used=counter.taken)
    unknown = None
    if not txs and not isinstance(flow, http.HTTPFlow) and not _is_known(flow):
        unknown = (_flow_host(flow), f"{type(flow).__name__}: not analysed by this version")
    reason = getattr(flow, "metadata", {}).get(TLS_META, {}).get("reason", "")
    address = _resolvable(flow)
    messages = tuple(outcome(ctx.pipeline, tx, address) for tx in txs)
    return Analysed(ts, evidence, events=events, request=request, unknown=unknown,
                    reason=reason, messages=messages,
                    names=tuple((ip, name) for ip, name in names.items()))


def outcome(pipeline: Pipeline, tx: Transmission, resolve: str | None = None) -> Outcome:
    """``Session.observe`` without the store: the observation's row, or the row of the one
    kept on failure."""
    try:
        obs = pipeline.observe(tx)
        error = None
    except OSError:
        raise  # the machine failing, not the message: the run fails
    except Exception as e:  # noqa: BLE001 - one bad message must not end the analysis
        obs, error = pipeline.failed(tx, e), _text(e)
    sent = obs.transmission
    return Outcome(row_of(obs), error, resolve, tx if resolve is not None else None,
                   None if sent.inspected else sent.sni or sent.host)


def tnet_of(flow: object) -> bytes:
    """The flow as mitmproxy's ``FlowWriter.add`` writes it (the same bytes, faster)."""
    return tnet.dumps(flow.get_state())  # type: ignore[attr-defined]


def _text(e: BaseException) -> str:
    """As ``Session.record_error`` writes an error."""
    return f"{type(e).__name__}: {e}"


def _flow_ts(flow: object) -> float:
    if isinstance(flow, http.HTTPFlow):
        return flow.request.timestamp_start
    return getattr(flow, "timestamp_created", 0.0) or 0.0


def _resolvable(flow: object) -> str | None:
    """The address of a raw TCP/UDP flow's server that a DNS answer may name (``destination``
    looks names up only without SNI)."""
    if not isinstance(flow, tcp.TCPFlow | udp.UDPFlow):
        return None
    conn = flow.server_conn
    if conn is None or conn.address is None or conn.sni:
        return None
    return str(conn.address[0])


def _is_known(flow: object) -> bool:
    from mitmproxy import dns

    return isinstance(flow, tcp.TCPFlow | udp.UDPFlow | dns.DNSFlow)


def _flow_host(flow: object) -> str:
    server = getattr(flow, "server_conn", None)
    address = getattr(server, "address", None)
    return f"{address[0]}:{address[1]}" if address else "?"


__all__ = ["Analysed", "Context", "Outcome", "Skipped", "analyse_chunk", "analyse_flow"]
