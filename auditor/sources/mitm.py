"""mitmproxy flows (live or from ``.mitm`` files) -> Transmissions and consent events.

HTTP requests are one transmission each. A TCP connection's messages go through a
``StreamAssembler`` (watch frames split and joined across reads, one transmission per
frame, server commands as ``down``); UDP datagrams, WebSocket messages and DNS queries are
one transmission each. The addon feeds messages as they pass; ``flow_transmissions`` does
the same for a whole flow read back from a ``.mitm`` file, so both give the same result.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from mitmproxy import connection, dns, flowfilter, http, io, tcp, udp
from mitmproxy import version as mitmproxy_version
from mitmproxy.flow import Flow
from mitmproxy.io import compat
from mitmproxy.net.http import url

from auditor.extract.payload import ClientHello, parse_dns
from auditor.extract.watchproto import FrameSplitter, looks_like_watch
from auditor.marks import MARK_HOST, is_mark_host, mark_path, parse_mark
from auditor.memo import Memo, memoised
from auditor.model import ConsentEvent, ConsentPlan, Transmission
from auditor.profile import ConfigError
from auditor.sources import tnet
from auditor.store import printable


class InputError(Exception):
    """A capture we cannot read: one line naming the file and the problem."""


def is_mark(flow: http.HTTPFlow) -> bool:
    """``pretty_host == MARK_HOST``, for every request on the proxy's path: the name is
    looked for in the Host header (or the address when there is none) before the header is
    parsed, which is most of the cost and almost never needed."""
    return is_mark_request(flow.request)


def is_mark_request(req: http.Request) -> bool:
    """``is_mark`` of the request's flow."""
    if MARK_HOST not in (req.host_header or req.host):
        return False
    return is_mark_host(req.pretty_host)


def mark_event(flow: http.HTTPFlow, source: str = "mark") -> ConsentEvent:
    return parse_mark(flow.request.path, flow.request.timestamp_start, source)


MARK_COMMENT = "kidaudit: consent mark"
WRITTEN_SOURCES = ("cli", "command")  # marks that reach flows.mitm only as a written flow


def saved_mark_event(flow: http.HTTPFlow) -> ConsentEvent:
    """A mark read back from a flow file. A mark the addon wrote as a flow (``mark_flow``:
    ``kidaudit mark`` or the ``kidaudit.mark`` command) names its source in the comment,
    so the rebuilt timeline says who marked, as the live one did; a request to the magic
    host is a ``mark``."""
    written = flow.comment.removeprefix(f"{MARK_COMMENT} (").removesuffix(")")
    return mark_event(flow, written if written in WRITTEN_SOURCES else "mark")


def mark_flow(ev: ConsentEvent) -> http.HTTPFlow:
    """A consent mark as a flow, so ``flows.mitm`` carries the whole timeline."""
    client = connection.Client(peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0),
                               timestamp_start=ev.ts)
    flow = http.HTTPFlow(client, connection.Server(address=(MARK_HOST, 80)))
    flow.request = http.Request.make("GET", f"http://{MARK_HOST}{mark_path(ev)}")
    flow.request.timestamp_start = flow.request.timestamp_end = ev.ts
    flow.response = http.Response.make(200, b"recorded\n", {"content-type": "text/plain"})
    flow.response.timestamp_start = flow.response.timestamp_end = ev.ts
    flow.comment = f"{MARK_COMMENT} ({ev.source})"
    return flow


# Metadata key of a flow sent over a connection the TLS probe (``auditor.live.probe``) made
# with a bad certificate the device accepted: its value is the case, so the transmissions
# rebuilt from ``flows.mitm`` carry ``Transmission.probe`` as the live ones did.
PROBE_META = "kidaudit_probe"


def probe_case(metadata: object) -> str:
    """The TLS probe's case a flow's metadata names ("" for ordinary traffic)."""
    case = metadata.get(PROBE_META, "") if isinstance(metadata, dict) else ""
    return printable(case) if isinstance(case, str) else ""


def transmission(flow: http.HTTPFlow, tx_id: int) -> Transmission:
    client = flow.client_conn
    peer = flow.server_conn.peername if flow.server_conn else None
    return request_transmission(flow.request, tx_id, flow.id, peer,
                                bool(client and client.tls_established),
                                (client.sni or "") if client else "",
                                probe_case(flow.metadata))


def state_transmission(state: dict, tx_id: int) -> Transmission:
    """``transmission(HTTPFlow.from_state(state))`` without rebuilding the flow: a fraction
    of the cost, and the state stays whole (``from_state`` takes it apart) so the worker can
    write it to the flow file as it came."""
    client, server = state.get("client_conn") or {}, state.get("server_conn") or {}
    peer = server.get("peername")
    return request_transmission(
        http.Request.from_state(state["request"]), tx_id, state["id"],
        tuple(peer) if peer else None, client.get("timestamp_tls_setup") is not None,
        client.get("sni") or "", probe_case(state.get("metadata")))


def request_transmission(req: http.Request, tx_id: int, flow_id: str,
                         peer: tuple | None, tls: bool, sni: str, probe: str = ""
                         ) -> Transmission:
    # As sent: a Content-Encoding is undone by the body readers within their limits, so a
    # compression bomb is never inflated whole here (the header stays with the body).
    body = req.raw_content or b""
    headers = tuple(req.headers.items(multi=True))
    hosts, types = [], []
    for k, v in headers:  # ``Headers.get`` joins repeated ones with ", "
        name = k.lower()
        if name == "host":
            hosts.append(v)
        elif name == "content-type":
            types.append(v)
    host_header = ", ".join(hosts) if hosts else None
    if req.is_http2 or req.is_http3:
        host_header = req.authority or host_header
    # Bytes that are not UTF-8 in the request line or Host header arrive as surrogates
    # (mitmproxy's surrogateescape): made printable here (``\xNN``), so the transmission
    # is analysed, stored and reported like any other.
    method, path = printable(req.method), printable(req.path)
    host, prefix = _where(method == "CONNECT", req.authority, host_header, req.scheme,
                          req.host, req.port)
    host = printable(host)
    url_text = (prefix + ("" if path == "*" else path) if prefix is not None
                else req.authority)
    return Transmission(
        id=tx_id, ts=req.timestamp_start, transport=req.scheme, host=host,
        port=req.port, ip=peer[0] if peer else "", method=method,
        url=printable(url_text), path=path, headers=headers, body=body,
        content_type=printable(", ".join(types)),
        size=sum(len(k) + len(v) + 4 for k, v in headers) + len(body),
        flow_id=flow_id, decrypted=tls, sni=sni, probe=probe)


@memoised(1024)
def _where(connect: bool, authority: str, host_header: str | None, scheme: str, host: str,
           port: int) -> tuple[str, str | None]:
    """``(pretty_host, pretty_url without its path)`` as mitmproxy's ``Request`` gives them
    (``None``: the URL is the CONNECT authority). A device talks to a handful of hosts, so
    the Host header is parsed once per host, not twice per message; the tests compare this
    with ``pretty_host`` / ``pretty_url`` on a table of requests."""
    if host_header:
        pretty_host, pretty_port = url.parse_authority(host_header, check=False)
        pretty_port = pretty_port or url.default_port(scheme) or 443
    else:
        pretty_host, pretty_port = host, port
    if connect:
        return pretty_host, None
    return pretty_host, f"{scheme}://{url.hostport(scheme, pretty_host, pretty_port)}"


# -- raw messages: TCP, UDP, WebSocket, DNS ---------------------------------------------

class StreamAssembler:
    """One TCP connection's reads -> messages. A direction that opens with a watch frame is
    split into frames (bounded buffer, see ``FrameSplitter``); any other client read is a
    message as it came; other server data is not the device's and is dropped."""

    def __init__(self) -> None:
        self._splitters: dict[bool, FrameSplitter | None] = {}

    def feed(self, from_client: bool, data: bytes) -> list[bytes]:
        if from_client not in self._splitters:
            self._splitters[from_client] = FrameSplitter() if looks_like_watch(data) else None
        splitter = self._splitters[from_client]
        if splitter is None:
            return [data] if from_client and data else []
        return splitter.feed(data)


def destination(conn: connection.Server | None,
                names: dict[str, str] | Memo[str, str] | None = None) -> tuple[str, str, int]:
    """(host, ip, port) of a flow's server: its SNI or address name, else a DNS answer's name
    for the address, else the address."""
    if conn is None or conn.address is None:
        return "", "", 0
    host, port = str(conn.address[0]), int(conn.address[1])
    ip = str(conn.peername[0]) if conn.peername else host
    if conn.sni:
        host = conn.sni
    elif names and (name := names.get(host)) is not None:
        host = name
    return host, ip, port


def raw_transmission(flow: tcp.TCPFlow | udp.UDPFlow | http.HTTPFlow, tx_id: int,
                     transport: str, payload: bytes, ts: float, from_client: bool = True,
                     names: dict[str, str] | Memo[str, str] | None = None,
                     hello: ClientHello | None = None) -> Transmission:
    host, ip, port = destination(flow.server_conn, names)
    tls = bool(flow.client_conn and flow.client_conn.tls_established)
    url = flow.request.pretty_url if isinstance(flow, http.HTTPFlow) else ""
    if isinstance(flow, http.HTTPFlow):
        host = flow.request.pretty_host
    return Transmission(
        id=tx_id, ts=ts, transport=transport, host=printable(host), port=port, ip=ip,
        direction="up" if from_client else "down", url=printable(url), payload=payload,
        size=len(payload), flow_id=flow.id, decrypted=tls,
        sni=(flow.client_conn.sni or "") if flow.client_conn else "",
        tls_versions=hello.versions if hello else (),
        tls_ciphers=hello.ciphers if hello else (), probe=probe_case(flow.metadata))


# Metadata key of the record flow the addon writes for a TLS attempt it could not read, so
# ``analyze flows.mitm`` rebuilds that uninspected transmission too.
TLS_META = "kidaudit_tls"


def tls_record_flow(tx: Transmission, reason: str, client: connection.Client,
                    server: connection.Server) -> tcp.TCPFlow:
    """An uninspected TLS attempt as a flow without messages, carrying what was learned."""
    flow = tcp.TCPFlow(client, server)
    flow.timestamp_created = tx.ts
    flow.metadata[TLS_META] = {
        "ts": tx.ts, "host": tx.host, "ip": tx.ip, "port": tx.port, "sni": tx.sni,
        "versions": list(tx.tls_versions), "ciphers": list(tx.tls_ciphers), "reason": reason}
    if tx.probe:  # a TLS probe case the device refused
        flow.metadata[TLS_META]["probe"] = tx.probe
    flow.comment = f"kidaudit: {reason}"
    return flow


def tls_record(flow: tcp.TCPFlow, tx_id: int) -> tuple[Transmission, str] | None:
    """The uninspected transmission and its reason back out of a record flow."""
    meta = flow.metadata.get(TLS_META)
    if not isinstance(meta, dict):
        return None
    tx = Transmission(
        id=tx_id, ts=float(meta["ts"]), transport="tls", host=str(meta["host"]),
        port=int(meta["port"]), ip=str(meta["ip"]), inspected=False, sni=str(meta["sni"]),
        tls_versions=tuple(meta["versions"]), tls_ciphers=tuple(meta["ciphers"]),
        flow_id=flow.id, probe=probe_case({PROBE_META: meta.get("probe", "")}))
    return tx, str(meta["reason"])


def dns_transmission(flow: dns.DNSFlow, tx_id: int) -> Transmission:
    host, ip, port = destination(flow.server_conn)
    packed = flow.request.packed
    return Transmission(id=tx_id, ts=flow.request.timestamp, transport="dns", host=host,
                        port=port, ip=ip, payload=packed, size=len(packed), flow_id=flow.id)


def dns_names(flow: dns.DNSFlow) -> list[tuple[str, str]]:
    """(name asked, address) for each A/AAAA answer: names raw-IP destinations later."""
    return parse_dns(flow.response.packed)[1] if flow.response is not None else []


def flow_transmissions(flow: object, next_id: Iterator[int],
                       names: dict[str, str] | None = None) -> list[Transmission]:
    """A non-HTTP flow from a ``.mitm`` file (or an HTTP flow's WebSocket messages) as the
    transmissions the addon made of it live."""
    out: list[Transmission] = []
    if isinstance(flow, dns.DNSFlow):
        out.append(dns_transmission(flow, next(next_id)))
        if names is not None:
            names.update((ip, name) for name, ip in dns_names(flow))
    elif isinstance(flow, tcp.TCPFlow) and TLS_META in flow.metadata:
        record = tls_record(flow, next(next_id))
        out += [record[0]] if record else []
    elif isinstance(flow, tcp.TCPFlow):
        assembler = StreamAssembler()
        for m in flow.messages:
            for payload in assembler.feed(m.from_client, m.content):
                out.append(raw_transmission(flow, next(next_id), "tcp", payload, m.timestamp,
                                            m.from_client, names))
    elif isinstance(flow, udp.UDPFlow):
        out += [raw_transmission(flow, next(next_id), "udp", m.content, m.timestamp,
                                 True, names) for m in flow.messages if m.from_client]
    elif isinstance(flow, http.HTTPFlow) and flow.websocket is not None:
        out += [raw_transmission(flow, next(next_id), "websocket", m.content, m.timestamp)
                for m in flow.websocket.messages if m.from_client]
    return out


def with_tls(tx: Transmission, hello: ClientHello | None) -> Transmission:
    """The device's offered TLS versions and suites, from the ClientHello of its connection."""
    if hello is None:
        return tx
    return replace(tx, tls_versions=hello.versions, tls_ciphers=hello.ciphers)


def http_flow_of(tx: Transmission) -> http.HTTPFlow:
    """An HTTP transmission from a pcap or HAR as a flow, for the plan's filter signals."""
    client = connection.Client(peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0),
                               timestamp_start=tx.ts)
    flow = http.HTTPFlow(client, connection.Server(address=(tx.host or tx.ip, tx.port)))
    headers = [(k.encode("utf-8", "replace"), v.encode("utf-8", "replace"))
               for k, v in tx.headers]
    try:
        flow.request = http.Request.make(tx.method or "GET", tx.url or f"http://{tx.host}/",
                                         tx.body, headers)
    except ValueError:  # a URL or method mitmproxy refuses to parse ("No hostname given")
        flow.request = _unparsed_request(tx, headers)
    flow.request.timestamp_start = tx.ts
    return flow


def _unparsed_request(tx: Transmission, headers: list[tuple[bytes, bytes]]) -> http.Request:
    """The request built from its parts, unchecked, so a signal's filter still sees the
    method, path and headers of a request whose URL cannot be parsed."""
    def raw(text: str) -> bytes:
        return text.encode("utf-8", "surrogateescape")

    return http.Request(
        host=tx.host or tx.ip, port=tx.port or 0, method=raw(tx.method or "GET"),
        scheme=raw(tx.transport if tx.transport in ("http", "https") else "http"),
        authority=b"", path=raw(tx.path or "/"), http_version=b"HTTP/1.1",
        headers=http.Headers(headers), content=tx.body, trailers=None,
        timestamp_start=tx.ts, timestamp_end=tx.ts)


class Signals:
    """The plan's traffic signals, compiled with mitmproxy's own filter language."""

    def __init__(self, plan: ConsentPlan | None) -> None:
        self._compiled = []
        for i, sig in enumerate(plan.signals if plan else ()):
            try:
                with warnings.catch_warnings():  # re's FutureWarning on a "[[" in a filter
                    warnings.simplefilter("ignore")  # would be a second line of output
                    matcher = flowfilter.parse(sig.filter)
            except ValueError as e:
                shown = sig.filter if len(sig.filter) <= 60 else sig.filter[:60] + "..."
                problem = " ".join(printable(str(e)).split())  # one line, whatever it quotes
                raise ConfigError(f"{plan.source}: signals[{i}].filter {shown!r} "
                                  f"is not a mitmproxy filter expression ({problem})") from e
            self._compiled.append((sig, matcher))

    def __bool__(self) -> bool:
        """Whether the plan has any: without, a flow need not be rebuilt to be matched."""
        return bool(self._compiled)

    def events(self, flow: http.HTTPFlow) -> list[ConsentEvent]:
        return [ConsentEvent(ts=flow.request.timestamp_start, action=sig.action,
                             categories=sig.categories, recipients=sig.recipients,
                             separate=sig.separate, name=sig.name, source="signal")
                for sig, matcher in self._compiled if matcher(flow)]


def read_flows(path: Path, notes: list[str]) -> Iterator[object]:
    """Every flow in a ``.mitm`` file, or in a HAR file given that name (mitmproxy reads
    those too). A first record that is not a flow means the file is not a capture
    (InputError: exit 2, one line). Later, a record that is not a readable flow is skipped
    with a note, and a file cut mid-record is read up to the cut, ``notes`` saying where."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, the generator may stop early
    except OSError as e:
        raise InputError(f"{path}: cannot open ({e.strerror})") from e
    with fh:
        if _looks_like_har(fh.peek(4)):
            yield from _har_flows(path, fh)
            return
        yield from _records(path, fh, notes)


def _looks_like_har(head: bytes) -> bool:
    return head[:4].lstrip(b"\xef\xbb\xbf").startswith(b"{")


def is_har_named_flow_file(path: Path) -> bool:
    """A HAR file under a flow file's name (``read_flows`` reads it with mitmproxy's HAR
    import, whole); every other file is a sequence of tnetstrings."""
    with open(path, "rb") as fh:
        return _looks_like_har(fh.read(4))


def har_named_flows(path: Path) -> Iterator[object]:
    """The flows of a HAR file under a flow file's name, as ``read_flows`` gives them."""
    with open(path, "rb") as fh:
        yield from _har_flows(path, fh)


def _har_flows(path: Path, fh: BinaryIO) -> Iterator[object]:
    """A HAR file under a flow file's name, read by mitmproxy as it would."""
    try:
        flows = list(io.FlowReader(fh).stream())
    except Exception as e:  # noqa: BLE001 - mitmproxy's HAR import raises anything
        raise InputError(f"{path}: not a mitmproxy flow file ({type(e).__name__}: {e})"
                         ) from None
    yield from flows


class _Cut(Exception):
    """The file's framing ends here: a length prefix missing, or past the end of the file."""


class NotAFlow(Exception):
    """A whole record that is not a flow this version can analyse."""


_NotAFlow = NotAFlow


def _records(path: Path, fh: BinaryIO, notes: list[str]) -> Iterator[object]:
    size = os.fstat(fh.fileno()).st_size
    count = 0
    while True:
        at = fh.tell()
        try:
            record = _next_record(fh, size)
            if record is None:
                return
            flow = _flow_of(record)
        except (_Cut, _NotAFlow) as e:
            if count == 0:
                raise InputError(f"{path}: not a mitmproxy flow file ({e})") from None
            if isinstance(e, _Cut):
                notes.append(f"{path}: stopped after {count} flows at byte {at}: {e}")
                return
            notes.append(f"{path}: the record at byte {at} was skipped ({e})")
            continue
        count += 1
        yield flow


_MAX_PREFIX = 12  # digits of a length prefix, as mitmproxy's tnetstring reader allows


def _next_record(fh: BinaryIO, size: int) -> bytes | None:
    """The next top-level tnetstring as bytes (None at the end of the file). Its length is
    checked against what is left of the file before anything is read, so a prefix of
    ``999999999999`` is a cut file, not a 1 TB allocation (MemoryError)."""
    digits = b""
    c = fh.read(1)
    if c == b"":
        return None
    while c.isdigit() and len(digits) <= _MAX_PREFIX:
        digits += c
        c = fh.read(1)
    if c != b":" or not digits or len(digits) > _MAX_PREFIX:
        raise _Cut("not a tnetstring: missing or invalid length prefix")
    length, left = int(digits), size - fh.tell()
    if length + 1 > left:
        raise _Cut(f"a record of {length} bytes, and only {max(left - 1, 0)} are left")
    return digits + b":" + fh.read(length + 1)


def flow_of_record(record: bytes) -> Flow:
    """One whole record of a flow file (``sources.split``) as a flow, or ``NotAFlow``."""
    return _flow_of(record)


@dataclass(frozen=True)
class PlainHttp:
    """An ordinary HTTP flow record read without rebuilding the flow: what ``transmission``
    takes from the flow (``state_transmission``). ``record`` is the record it was read
    from, for whatever needs the whole flow after all (a consent mark)."""

    request: http.Request
    flow_id: str
    peer: tuple | None
    tls: bool
    sni: str
    record: bytes

    def transmission(self, tx_id: int) -> Transmission:
        return request_transmission(self.request, tx_id, self.flow_id, self.peer, self.tls,
                                    self.sni)


# The keys of an HTTP flow's state as mitmproxy 10-12 write it (``backup`` may be absent).
_HTTP_KEYS = frozenset({"version", "type", "id", "error", "client_conn", "server_conn",
                        "intercepted", "is_replay", "marked", "metadata", "comment",
                        "timestamp_created", "backup", "request", "response", "websocket"})
_HTTP_KEYS_UNBACKED = _HTTP_KEYS - {"backup"}
# Connection states mitmproxy's ``set_state`` took, less their ``id`` (a ``str``). A
# keep-alive connection repeats its state in each of its flows, so each is checked once.
_CONNS_CHECKED: Memo[tuple, bool] = Memo(256)
# The same, by a state's members as written (less its id): what it held, read and checked.
# (Each under the kind of connection it was checked as: a client's state is no server's.)
_CONNS_READ: Memo[tuple, dict] = Memo(256)
_CONNS_WRITTEN: Memo[tuple, dict] = Memo(256)  # and by its bytes, id and all
_CONN_KEYS = frozenset({"client_conn", "server_conn"})


def plain_http_of_record(record: bytes) -> PlainHttp | Flow:
    """``flow_of_record``, faster on the commonest record: an HTTP flow of this format
    version without WebSocket messages, error or metadata. Its request is rebuilt, and the
    rest of the state checked exactly as ``Flow.from_state`` and ``_check_times`` check it
    (the connections and the response by mitmproxy's own code, each connection state once);
    any other record, or any doubt, takes ``flow_of_record``, so a record is a flow, or
    ``NotAFlow`` with the same words, either way."""
    try:
        plain = _plain_http(record)
    except Exception:  # noqa: BLE001 - any doubt: mitmproxy's path decides
        plain = None
    return plain if plain is not None else _flow_of(record)


def _plain_http(record: bytes) -> PlainHttp | None:
    pairs = tnet.members(record, _CONN_KEYS)  # the connections left as they were written
    if pairs is None:
        return None
    state = dict(pairs)
    if state.keys() != _HTTP_KEYS and state.keys() != _HTTP_KEYS_UNBACKED:
        return None
    version = state["version"]
    if (type(version) is not int or version != mitmproxy_version.FLOW_FORMAT_VERSION
            or state["type"] != "http" or state["websocket"] or state["error"]
            or state["metadata"] != {}):
        return None
    client = _conn_state(state["client_conn"], _blank_client)
    server = _conn_state(state["server_conn"], _blank_server)
    if client is None or server is None:
        return None
    if state["response"] and not _plain_message(state["response"], _RESPONSE_TYPES):
        return None
    if not _plain_message(state["request"], _REQUEST_TYPES):
        return None
    request = _request(state["request"])
    for ts in (state["timestamp_created"], request.timestamp_start):
        datetime.fromtimestamp(float(ts), UTC)
    peer = server["peername"]
    return PlainHttp(request, state["id"], tuple(peer) if peer else None,
                     client["timestamp_tls_setup"] is not None, client["sni"] or "", record)


# The members of a request's and a response's state, each with the types ``from_state``
# takes it as, unconverted (``Request.__init__`` converts a str method to bytes, and so on:
# such a state, rare, takes mitmproxy's path), less the headers and trailers.
_NONE = type(None)
_MESSAGE_TYPES: dict[str, tuple[type, ...]] = {
    "http_version": (bytes,), "content": (bytes, _NONE), "timestamp_start": (float, int),
    "timestamp_end": (float, int, _NONE)}
_REQUEST_TYPES = {**_MESSAGE_TYPES, "host": (str,), "port": (int,), "method": (bytes,),
                  "scheme": (bytes,), "authority": (bytes,), "path": (bytes,)}
_RESPONSE_TYPES = {**_MESSAGE_TYPES, "status_code": (int,), "reason": (bytes,)}
_HEADER_KEYS = frozenset({"headers", "trailers"})


def _plain_message(state: object, types: dict[str, tuple[type, ...]]) -> bool:
    """The message's state is one ``Request.from_state`` / ``Response.from_state`` take as it
    is: exactly its members, each of an exact type that the dataclass's own check
    (``typecheck.check_option_type``, under ``__debug__``) accepts, the headers a list of
    [name, value] bytes pairs. A strict part of what mitmproxy takes, and checked in a
    fraction of the time its check takes (half the cost of reading a record); anything
    else takes mitmproxy's path, which decides."""
    if type(state) is not dict or state.keys() != _members(types):
        return False
    for name, allowed in types.items():
        if type(state[name]) not in allowed:
            return False
    trailers = state["trailers"]
    return _plain_headers(state["headers"]) and (trailers is None or _plain_headers(trailers))


_REQUEST_MEMBERS = frozenset(_REQUEST_TYPES.keys() | _HEADER_KEYS)
_RESPONSE_MEMBERS = frozenset(_RESPONSE_TYPES.keys() | _HEADER_KEYS)


def _members(types: dict[str, tuple[type, ...]]) -> frozenset[str] | set[str]:
    """The members a message's state has with these types: made once for the two tables
    (each record's request and response are checked), not for each message."""
    if types is _REQUEST_TYPES:
        return _REQUEST_MEMBERS
    if types is _RESPONSE_TYPES:
        return _RESPONSE_MEMBERS
    return types.keys() | _HEADER_KEYS


def _plain_headers(pairs: object) -> bool:
    """A list of [name, value] bytes pairs: what ``Headers`` takes and keeps as it is."""
    if type(pairs) is not list:
        return False
    for pair in pairs:  # a loop, not ``all`` of a generator: a record's every header
        if not (type(pair) is list and len(pair) == 2 and type(pair[0]) is bytes
                and type(pair[1]) is bytes):
            return False
    return True


# ``RequestData``'s fields, in the order its ``__init__`` sets them.
_REQUEST_FIELDS = tuple(f.name for f in fields(http.RequestData))


def _builds_as_mitmproxy() -> bool:
    """Whether ``_request`` builds what ``Request.from_state`` would, as mitmproxy 11 builds
    it (the names each step uses, compared): the fields it knows, set by a
    ``Request.__init__`` that only converts and sets ``data``, and no check in
    ``__post_init__`` but the type check (absent under ``python -O``). A version that
    does anything else gets ``Request.from_state``."""
    check = getattr(http.RequestData, "__post_init__", None)
    return (sorted(_REQUEST_FIELDS) == sorted(_REQUEST_TYPES.keys() | _HEADER_KEYS)
            and set(http.Request.__init__.__code__.co_names) == {
                "Headers", "RequestData", "ValueError", "__name__", "bytes", "data",
                "decode", "encode", "isinstance", "str", "type"}
            and (check is None or (check.__qualname__ == "MessageData.__post_init__"
                                   and set(check.__code__.co_names) == {
                                       "fields", "getattr", "name", "typecheck",
                                       "check_option_type", "type"})))


_BUILT_HERE = _builds_as_mitmproxy()


# The names ``Headers.__init__`` uses in mitmproxy 11, and in 12 (which turns keyword
# arguments into bytes through ``_always_bytes(...).replace``: keywords ``_headers`` never
# passes; given pairs alone, both only check them and set ``fields``).
_HEADERS_INIT_NAMES = (
    frozenset({"super", "__init__", "fields", "isinstance", "bytes", "TypeError", "update",
               "items"}),
    frozenset({"super", "__init__", "fields", "isinstance", "bytes", "TypeError", "update",
               "items", "_always_bytes", "replace"}))


def _headers_build_as_mitmproxy() -> bool:
    """Whether ``Headers(pairs)`` only sets ``fields`` to the pairs as tuples, as in
    mitmproxy 11 and 12 (the names its ``__init__`` and its base's use, compared, and no
    other ``__init__`` on the way to ``object``'s): else ``_headers`` calls ``Headers``."""
    inits = [cls for cls in http.Headers.__mro__ if "__init__" in vars(cls)]
    return (inits == [http.Headers, http.Headers.__mro__[1], object]
            and frozenset(http.Headers.__init__.__code__.co_names) in _HEADERS_INIT_NAMES
            and set(http.Headers.__mro__[1].__init__.__code__.co_names) == {  # type: ignore[misc]
                "super", "__init__", "tuple", "fields"})


_HEADERS_BUILT_HERE = _headers_build_as_mitmproxy()


def _headers(pairs: list) -> http.Headers:
    """``http.Headers(pairs)`` for pairs ``_plain_headers`` passed (bytes, two by two), made
    without its checks and keyword handling, which have nothing to do for them: a third of
    the time of building a request's headers. The tests compare the two."""
    if not _HEADERS_BUILT_HERE:
        return http.Headers(pairs)
    headers = http.Headers.__new__(http.Headers)
    headers.fields = tuple(map(tuple, pairs))
    return headers


def _request(state: dict) -> http.Request:
    """``Request.from_state(state)`` for a state ``_plain_message`` passed: the same object
    (its class, its data's class and members in their order; the tests compare the two),
    built without running the dataclass's type check again, which passed above by exact
    type and took most of the time of building it."""
    if not _BUILT_HERE:
        return http.Request.from_state(state)
    values = dict(state)
    values["headers"] = _headers(state["headers"])
    if state["trailers"] is not None:
        values["trailers"] = _headers(state["trailers"])
    data = http.RequestData.__new__(http.RequestData)
    vars(data).update({name: values[name] for name in _REQUEST_FIELDS})
    request = http.Request.__new__(http.Request)
    request.data = data
    return request


def _conn_state(written: object, blank: Callable[[], connection.Connection]
                ) -> dict | None:
    """A connection's state from its written bytes, checked as ``_conn_ok`` checks it, or
    None. Flows of one connection repeat its state byte for byte, and other connections
    differ from it in a few members (their ids, times): a state is read and checked once
    for its bytes, and once for its members as written, its id aside; what it held (less
    its id) is remembered under both."""
    if type(written) is not bytes:
        return None
    known = _CONNS_WRITTEN.get((blank, written))
    if known is not None:
        return known
    pairs = tnet.members(written, None)
    if pairs is None:
        return None
    ids = [value for key, value in pairs if key == "id"]
    if not ids or type(tnet.loads(ids[-1])) is not str:  # type: ignore[arg-type]
        return None
    key = (blank, *(pair for pair in pairs if pair[0] != "id"))
    known = _CONNS_READ.get(key)
    if known is None:
        state = tnet.loads(written)
        if not _conn_ok(state, blank):
            return None
        known = _CONNS_READ.put(key, {k: v for k, v in state.items()  # type: ignore[union-attr]
                                      if k != "id"})
    return _CONNS_WRITTEN.put((blank, written), known)


def _blank_client() -> connection.Connection:
    return connection.Client(peername=("", 0), sockname=("", 0))  # as ``Flow.from_state``


def _blank_server() -> connection.Connection:
    return connection.Server(address=None)


def _conn_ok(state: object, blank: Callable[[], connection.Connection]) -> bool:
    """The connection state is one mitmproxy's ``set_state`` takes (a copy is given to it,
    on a new connection as ``Flow.from_state`` makes, the first time a state is seen)."""
    if type(state) is not dict or type(state.get("id")) is not str:
        return False
    # ``repr`` names each value and its type (str/bytes, int/float/bool) for the plain
    # types a tnetstring holds: equal keys, equal states; checked as a client's, a state
    # is not yet checked as a server's.
    key = (blank, repr([(k, v) for k, v in state.items() if k != "id"]))
    if _CONNS_CHECKED.get(key) is None:
        blank().set_state(copy.deepcopy(state))
        _CONNS_CHECKED.put(key, True)
    return True


def _flow_of(record: bytes) -> Flow:
    """A record as mitmproxy's FlowReader makes it a flow, or _NotAFlow saying why. A state
    of any shape may come in (a bytes value, a flow without a request, nesting thousands
    deep): every failure is that record's, never the run's."""
    try:
        state = tnet.loads(record)
        if not isinstance(state, dict):
            raise ValueError(f"a {type(state).__name__} value, not a flow")
        flow = Flow.from_state(compat.migrate_flow(state))
    except RecursionError:
        raise _NotAFlow("nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - mitmproxy's from_state raises anything
        raise _NotAFlow(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None
    _check_times(flow)
    return flow


def _check_times(flow: Flow) -> None:
    """Every time a transmission or event takes from the flow is one a report can write
    (a finite number of seconds within the years 1 to 9999, in UTC)."""
    for ts in _times(flow):
        try:
            datetime.fromtimestamp(float(ts), UTC)
        except (OverflowError, ValueError, OSError, TypeError):
            raise _NotAFlow(f"its time {ts!r} is not between the years 1 and 9999") from None


def _times(flow: Flow) -> Iterator[object]:
    yield flow.timestamp_created
    if isinstance(flow, http.HTTPFlow | dns.DNSFlow):
        yield flow.request.timestamp_start if isinstance(flow, http.HTTPFlow) else (
            flow.request.timestamp)
    messages = (flow.messages if isinstance(flow, tcp.TCPFlow | udp.UDPFlow) else
                flow.websocket.messages if isinstance(flow, http.HTTPFlow)
                and flow.websocket is not None else [])
    for m in messages:
        yield m.timestamp
    meta = flow.metadata.get(TLS_META)
    if isinstance(meta, dict) and "ts" in meta:
        yield meta["ts"]


def now() -> float:
    return time.time()
