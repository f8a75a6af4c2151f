"""Packet captures (``.pcap`` / ``.pcapng``) -> Transmissions, streamed.

scapy's ``RawPcapReader`` hands over undecoded records (building a scapy packet for each
would cost far more than the rest of the reading; bench/results.md has the ingest rate
against dpkt); Ethernet / IP / TCP / UDP headers are read here with ``struct``
and only what is selected is decoded further. Memory is bounded by the connections open at
one time, not by the file: a connection's state goes when it closes or idles out, every
stream buffer has a ceiling, and results leave through a short time-ordered window.

What comes out, in time order:

* TCP, per connection and direction, reassembled (out of order, retransmissions; a gap is
  skipped and noted): watch frames one transmission each (server commands as ``down``),
  HTTP/1.x requests parsed into the same fields as live HTTP, a TLS ClientHello as an
  uninspected ``tls`` transmission with its SNI, versions and suites, other streams one
  transmission per turn of the conversation;
* UDP datagrams from the device; DNS queries as ``dns``; a QUIC connection as one
  uninspected transmission with the SNI, versions and suites of the ClientHello its
  Initials carry (RFC 9001 §5: those keys come from the packet itself);
* DNS answers name the raw-IP destinations that follow them.

The device is ``device.ip`` from the profile, else every private-range address that opens
a connection (a SYN, or a datagram to a public address).
"""

from __future__ import annotations

import heapq
import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from auditor.addresses import ip_text
from auditor.extract.payload import (
    assemble_crypto,
    is_quic_initial,
    parse_client_hello,
    parse_dns,
    quic_crypto,
)
from auditor.extract.watchproto import FrameSplitter, looks_like_watch
from auditor.memo import Memo, memoised
from auditor.model import Transmission
from auditor.sources.mitm import InputError

ORDER_WINDOW_S = 30.0  # results are released once the capture is this far past them
IDLE_S = 600.0  # a connection silent this long is closed (flushed and forgotten)
MAX_STREAM = 1 << 20  # bytes held per direction: pending segments, an open message
MAX_MESSAGE = 64 * 1024  # a raw TCP turn longer than this is cut into several messages
MAX_NOTES = 50
MAX_TABLE = 100_000  # entries in any per-address table or memo before it is emptied (a scan)
HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"PATCH ", b"OPTIONS ",
                b"CONNECT ", b"TRACE ")
# Link-layer header length (or None: read it per packet) by pcap LINKTYPE.
LINK_ETHERNET, LINK_NULL, LINK_LOOP, LINK_SLL, LINK_SLL2 = 1, 0, 108, 113, 276
RAW_IP_LINKS = frozenset({12, 14, 101, 228, 229})
REASONS = {"tls": "TLS: encrypted in the capture (SNI, versions and suites read)",
           "quic": "QUIC: encrypted in the capture (ClientHello read from its Initials)"}


def uninspected_reason(tx: Transmission) -> str:
    return REASONS["tls"] if tx.transport == "tls" else REASONS["quic"]


@dataclass
class Stats:
    packets: int = 0
    connections: int = 0
    skipped: int = 0  # packets that are not IP, or not from or to the device
    retransmitted: int = 0
    missing_bytes: int = 0


QUIC_INITIALS = 4  # datagrams of one QUIC flow searched for its ClientHello


@dataclass
class _Quic:
    ts: float
    datagrams: int = 0
    frames: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass
class _Half:
    """One direction of one TCP connection."""

    next_seq: int | None = None
    pending: dict[int, tuple[bytes, float]] = field(default_factory=dict)
    pending_bytes: int = 0
    splitter: FrameSplitter | None = None
    buffer: bytearray = field(default_factory=bytearray)  # HTTP / TLS / raw message
    started: float = 0.0
    fin: bool = False


@dataclass
class _Conn:
    client: str
    cport: int
    server: str
    sport: int
    last: float
    kind: str = ""  # watch | http | tls | raw | done (TLS seen, rest ignored)
    up: _Half = field(default_factory=_Half)
    down: _Half = field(default_factory=_Half)
    turn: str = ""  # raw streams: the direction currently talking


# Every packet's two addresses are turned into text: a capture repeats a few addresses many
# times, so the text is remembered, within the one ceiling a scan of many addresses cannot pass.
@memoised(MAX_TABLE)
def _ip4(b: bytes) -> str:
    return str(ipaddress.IPv4Address(b))


@memoised(MAX_TABLE)
def _ip6(b: bytes) -> str:
    return ip_text(ipaddress.IPv6Address(b))


# RFC 1918, CGNAT (RFC 6598), link-local, loopback, IPv6 ULA: where a lab's device sits.
# (ipaddress's ``is_private`` also covers the documentation ranges public servers use.)
PRIVATE_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "127.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128"))


@memoised(MAX_TABLE)
def _private(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr.version == n.version and addr in n for n in PRIVATE_NETS)


def _seq_diff(a: int, b: int) -> int:
    """a - b in 32-bit sequence space."""
    return (a - b + 0x80000000) % 0x100000000 - 0x80000000


class PcapSource:
    """Iterate over it for the transmissions; ``stats`` and ``notes`` are filled meanwhile."""

    def __init__(self, path: Path, device_ips: Iterable[str] = (),
                 notes: list[str] | None = None) -> None:
        self.path = Path(path)
        self.fixed = frozenset(device_ips)
        self.device: set[str] = set(self.fixed)
        self.notes = notes if notes is not None else []
        self.stats = Stats()
        # ip -> the name a DNS answer (or a ClientHello's SNI) gave it: remembered within the
        # ceiling a device that resolves many names cannot pass.
        self.names: Memo[str, str] = Memo(MAX_TABLE)
        self._conns: dict[tuple[str, int, str, int], _Conn] = {}
        # QUIC flows: the Initials gathered so far (ts, datagrams, CRYPTO frames), or None
        # once the flow's ClientHello was read (the rest of it is encrypted for good).
        self._quic: dict[tuple[str, int, str, int], _Quic | None] = {}
        self._out: list[tuple[float, int, Transmission]] = []
        self._seq = 0
        self._note_count = 0

    @property
    def open_connections(self) -> int:
        """TCP connections still followed. A closed or idle one leaves nothing behind: memory
        follows what is open at one time, not the length of the file."""
        return len(self._conns)

    # -- reading --------------------------------------------------------------------------
    def _records(self) -> Iterator[tuple[bytes, float, int]]:
        from scapy.error import Scapy_Exception
        from scapy.utils import RawPcapReader

        try:
            reader = RawPcapReader(str(self.path))
        except (Scapy_Exception, OSError) as e:
            raise InputError(f"{self.path}: not a pcap or pcapng capture ({e})") from e
        ng = not hasattr(reader, "nano")
        try:
            if ng:
                yield from self._ng_records(reader)
            else:
                yield from self._pcap_records(reader)
        finally:
            reader.close()

    def _pcap_records(self, reader) -> Iterator[tuple[bytes, float, int]]:
        """Classic pcap: scapy read and checked the file header; the records are cut out of
        1 MiB blocks here (one ``read`` per block, not two per packet)."""
        link = reader.linktype
        scale = 1e-9 if reader.nano else 1e-6
        header = struct.Struct(reader.endian + "IIII")
        buf, pos = b"", 0
        while True:
            block = reader.f.read(1 << 20)
            if not block:
                if pos < len(buf):
                    self._note(f"capture ends inside a packet record ({len(buf) - pos} bytes)")
                return
            buf, pos = buf[pos:] + block, 0
            end_buf = len(buf)
            while pos + 16 <= end_buf:
                sec, frac, caplen, _ = header.unpack_from(buf, pos)
                end = pos + 16 + caplen
                if end > end_buf:
                    break
                yield buf[pos + 16:end], sec + frac * scale, link
                pos = end

    @staticmethod
    def _ng_records(reader) -> Iterator[tuple[bytes, float, int]]:
        while True:
            try:
                data, meta = reader._read_packet()
            except EOFError:
                return
            if data is None:
                continue
            res = meta.tsresol or 1_000_000
            yield data, ((meta.tshigh << 32) | meta.tslow) / res, meta.linktype

    def __iter__(self) -> Iterator[Transmission]:
        stats = self.stats
        unpack = struct.unpack_from
        for data, ts, link in self._records():
            stats.packets += 1
            if stats.packets % 10_000 == 0:
                self._evict(ts)
            # link layer -> (offset of the IP header, ethertype)
            if link == LINK_ETHERNET:
                off, etype = 14, unpack(">H", data, 12)[0] if len(data) >= 14 else 0
                while etype in (0x8100, 0x88A8) and len(data) >= off + 4:
                    etype = unpack(">H", data, off + 2)[0]
                    off += 4
            elif link in RAW_IP_LINKS:
                off, etype = 0, 0x86DD if data[:1] and data[0] >> 4 == 6 else 0x0800
            elif link in (LINK_NULL, LINK_LOOP):
                off, etype = 4, 0x86DD if data[4:5] and data[4] >> 4 == 6 else 0x0800
            elif link == LINK_SLL:
                off, etype = 16, unpack(">H", data, 14)[0] if len(data) >= 16 else 0
            elif link == LINK_SLL2:
                off, etype = 20, unpack(">H", data, 0)[0] if len(data) >= 20 else 0
            else:
                stats.skipped += 1
                continue
            if etype == 0x0800 and len(data) >= off + 20:
                ihl = (data[off] & 0x0F) * 4
                total, frag = unpack(">H2xH", data, off + 2)
                if frag & 0x1FFF:  # a later fragment: its transport header is elsewhere
                    stats.skipped += 1
                    continue
                proto = data[off + 9]
                src, dst = _ip4(data[off + 12:off + 16]), _ip4(data[off + 16:off + 20])
                l4, end = off + ihl, off + (total or len(data) - off)
            elif etype == 0x86DD and len(data) >= off + 40:
                plen = unpack(">H", data, off + 4)[0]
                proto = data[off + 6]
                src, dst = _ip6(data[off + 8:off + 24]), _ip6(data[off + 24:off + 40])
                l4, end = off + 40, off + 40 + plen
                while proto in (0, 43, 60) and len(data) >= l4 + 8:  # extension headers
                    proto, l4 = data[l4], l4 + 8 + data[l4 + 1] * 8
            else:
                stats.skipped += 1
                continue
            end = min(end, len(data))
            if proto == 6 and end >= l4 + 20:
                sport, dport, seq, _, offf, flags = unpack(">HHIIBB", data, l4)
                self._tcp(ts, src, sport, dst, dport, seq, flags,
                          data[l4 + (offf >> 4) * 4:end])
            elif proto == 17 and end >= l4 + 8:
                sport, dport = unpack(">HH", data, l4)
                self._udp(ts, src, sport, dst, dport, data[l4 + 8:end])
            else:
                stats.skipped += 1
                continue
            if self._out and self._out[0][0] < ts - ORDER_WINDOW_S:
                yield from self._release(ts - ORDER_WINDOW_S)
        for conn in list(self._conns.values()):
            self._close(conn)
        for key, state in list(self._quic.items()):
            if state is not None:  # the capture ended before the ClientHello was whole
                state.datagrams = QUIC_INITIALS
                self._quic_datagram(key, state.ts, b"")
        yield from self._release(float("inf"))

    # -- output ---------------------------------------------------------------------------
    def _emit(self, tx: Transmission) -> None:
        self._seq += 1
        heapq.heappush(self._out, (tx.ts, self._seq, tx))

    def _release(self, until: float) -> Iterator[Transmission]:
        while self._out and self._out[0][0] <= until:
            yield heapq.heappop(self._out)[2]

    def _note(self, text: str) -> None:
        self._note_count += 1
        if self._note_count <= MAX_NOTES:
            self.notes.append(f"{self.path.name}: {text}")
        elif self._note_count == MAX_NOTES + 1:
            self.notes.append(f"{self.path.name}: further stream notes left out")

    def _is_device(self, src: str, dst: str, opening: bool) -> bool | None:
        """True: src is the device; False: dst is; None: neither (not the device's traffic)."""
        if src in self.device:
            return True
        if dst in self.device:
            return False
        if self.fixed:
            return None
        if opening and _private(src):
            self.device.add(src)
            return True
        if _private(src) and not _private(dst):
            self.device.add(src)
            return True
        if _private(dst) and not _private(src):
            self.device.add(dst)
            return False
        return None

    def _host(self, ip: str) -> str:
        return self.names.get(ip, ip)

    # -- UDP ------------------------------------------------------------------------------
    def _udp(self, ts: float, src: str, sport: int, dst: str, dport: int,
             payload: bytes) -> None:
        if sport == 53 or sport == 5353 and dport == 5353:
            _, answers = parse_dns(payload)
            for name, ip in answers:
                self.names.put(ip, name)
            if sport == 53:
                return
        up = self._is_device(src, dst, opening=dport < 1024 <= sport)
        if up and dst in self.device:  # both ends are "the device" (a loopback capture):
            up = dport < sport  # the side on the service port is the server
        if up is None:
            self.stats.skipped += 1
            return
        if not up:
            return  # datagrams to the device: not its transmissions
        key = (src, sport, dst, dport)
        if key in self._quic or dport == 443 and is_quic_initial(payload):
            self._quic_datagram(key, ts, payload)
            return
        transport = "dns" if dport == 53 else "udp"
        self.stats.connections += 1
        self._emit(Transmission(id=0, ts=ts, transport=transport, host=self._host(dst),
                                port=dport, ip=dst, payload=payload, size=len(payload)))

    def _quic_datagram(self, key: tuple[str, int, str, int], ts: float, payload: bytes
                       ) -> None:
        """Gather a QUIC flow's first Initials until their CRYPTO frames hold the whole
        ClientHello (Chrome spreads it over several, in any order); then one uninspected
        transmission with its SNI, versions and suites."""
        if key not in self._quic:
            self.stats.connections += 1
            self._quic[key] = _Quic(ts)
        state = self._quic[key]
        if state is None:
            return
        state.datagrams += 1
        if payload:
            state.frames += quic_crypto(payload)
        data = assemble_crypto(state.frames)
        complete = len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[1:4], "big")
        if not complete and state.datagrams < QUIC_INITIALS:
            return
        self._quic[key] = None
        hello = parse_client_hello(data) if complete else None
        dst, dport = key[2], key[3]
        self._emit(Transmission(
            id=0, ts=state.ts, transport="udp", host=(hello.sni if hello else "")
            or self._host(dst), port=dport, ip=dst, inspected=False,
            sni=hello.sni if hello else "", tls_versions=hello.versions if hello else (),
            tls_ciphers=hello.ciphers if hello else ()))

    # -- TCP ------------------------------------------------------------------------------
    def _tcp(self, ts: float, src: str, sport: int, dst: str, dport: int, seq: int,
             flags: int, payload: bytes) -> None:
        syn, fin, rst, ack = flags & 2, flags & 1, flags & 4, flags & 16
        key = (src, sport, dst, dport)
        conn = self._conns.get(key)
        up = True
        if conn is None:
            conn = self._conns.get((dst, dport, src, sport))
            up = False
        if conn is None:
            if rst or (fin and not payload):
                return
            is_up = self._is_device(src, dst, opening=bool(syn and not ack))
            if is_up is None:
                self.stats.skipped += 1
                return
            conn = (_Conn(src, sport, dst, dport, ts) if is_up
                    else _Conn(dst, dport, src, sport, ts))
            self._conns[(conn.client, conn.cport, conn.server, conn.sport)] = conn
            self.stats.connections += 1
            up = is_up
        conn.last = ts
        half = conn.up if up else conn.down
        if syn:
            half.next_seq = (seq + 1) & 0xFFFFFFFF
            return
        if payload:
            self._segment(conn, half, up, seq, payload, ts)
        if fin or rst:
            half.fin = True
            if rst or (conn.up.fin and conn.down.fin):
                self._close(conn)

    def _segment(self, conn: _Conn, half: _Half, up: bool, seq: int, data: bytes,
                 ts: float) -> None:
        if half.next_seq is None:
            half.next_seq = seq  # the capture began mid-connection
        rel = _seq_diff(seq, half.next_seq)
        if rel + len(data) <= 0:
            self.stats.retransmitted += 1
            return
        if rel > 0:
            if seq not in half.pending or len(half.pending[seq][0]) < len(data):
                half.pending[seq] = (data, ts)
                half.pending_bytes += len(data)
            if half.pending_bytes > MAX_STREAM:
                self._skip_gap(conn, half, up)
            return
        if rel < 0:
            self.stats.retransmitted += 1
            data = data[-rel:]
        self._deliver(conn, half, up, data, ts)
        self._drain(conn, half, up, ts)

    def _drain(self, conn: _Conn, half: _Half, up: bool, now: float) -> None:
        """Held segments that now follow on; they count as arriving ``now`` (a frame is
        complete when its last byte is there, not when a later piece came early)."""
        while half.pending:
            progressed = False
            for seq in list(half.pending):
                rel = _seq_diff(seq, half.next_seq or 0)
                if rel > 0:
                    continue
                data, _ = half.pending.pop(seq)
                half.pending_bytes -= len(data)
                if rel + len(data) > 0:
                    self._deliver(conn, half, up, data[-rel:] if rel else data, now)
                else:
                    self.stats.retransmitted += 1
                progressed = True
            if not progressed:
                return

    def _skip_gap(self, conn: _Conn, half: _Half, up: bool) -> None:
        """Segments are missing from the capture: jump to the next data held and say so."""
        first = min(half.pending, key=lambda s: _seq_diff(s, half.next_seq or 0))
        gap = _seq_diff(first, half.next_seq or 0)
        self.stats.missing_bytes += gap
        self._note(f"{conn.client}:{conn.cport} -> {conn.server}:{conn.sport} "
                   f"({'up' if up else 'down'}): {gap} bytes missing from the capture")
        self._flush(conn, half, up)
        half.next_seq = first
        if half.splitter is not None:
            half.splitter = FrameSplitter()  # a frame cut by the gap is not trusted
        self._drain(conn, half, up, half.pending[first][1])

    def _deliver(self, conn: _Conn, half: _Half, up: bool, data: bytes, ts: float) -> None:
        half.next_seq = ((half.next_seq or 0) + len(data)) & 0xFFFFFFFF
        if not conn.kind:
            conn.kind = _kind(data) if up else ("watch" if looks_like_watch(data) else "")
        kind = conn.kind
        if kind == "done":
            return
        if kind == "watch":
            if half.splitter is None:
                half.splitter = FrameSplitter(MAX_STREAM)
            for frame in half.splitter.feed(data):
                self._emit_payload(conn, up, frame, ts)
            return
        if not up:
            if kind == "raw":
                self._turn(conn, "down")
            return  # responses to HTTP / TLS, and raw data to the device, are not its messages
        if not half.buffer:
            half.started = ts
        half.buffer += data
        if kind == "http":
            self._http(conn, half)
        elif kind == "tls":
            self._tls(conn, half)
        else:
            self._turn(conn, "up")
            while len(half.buffer) >= MAX_MESSAGE:
                self._emit_payload(conn, True, bytes(half.buffer[:MAX_MESSAGE]), half.started)
                del half.buffer[:MAX_MESSAGE]
        if len(half.buffer) > MAX_STREAM:
            self._note(f"{conn.client}:{conn.cport} -> {conn.server}:{conn.sport}: message "
                       f"longer than {MAX_STREAM} bytes, cut")
            half.buffer.clear()

    def _turn(self, conn: _Conn, who: str) -> None:
        """A raw stream's message ends when the other side starts talking."""
        if conn.turn == "up" and who == "down":
            self._flush(conn, conn.up, True)
        conn.turn = who

    def _emit_payload(self, conn: _Conn, up: bool, payload: bytes, ts: float) -> None:
        self._emit(Transmission(
            id=0, ts=ts, transport="tcp", host=self._host(conn.server), port=conn.sport,
            ip=conn.server, direction="up" if up else "down", payload=payload,
            size=len(payload)))

    def _flush(self, conn: _Conn, half: _Half, up: bool) -> None:
        if half.buffer and up and conn.kind in ("raw", "http"):
            if conn.kind == "http":
                self._http(conn, half, final=True)
            else:
                self._emit_payload(conn, True, bytes(half.buffer), half.started)
        half.buffer.clear()

    def _close(self, conn: _Conn) -> None:
        for half, up in ((conn.up, True), (conn.down, False)):
            if half.pending:
                self._skip_gap(conn, half, up)
            self._flush(conn, half, up)
        self._conns.pop((conn.client, conn.cport, conn.server, conn.sport), None)

    def _evict(self, now: float) -> None:
        """Called every 10k packets: idle connections go, and the QUIC flows' table does not
        outgrow its cap (a scan of many flows)."""
        for conn in [c for c in self._conns.values() if now - c.last > IDLE_S]:
            self._close(conn)
        if len(self._quic) > MAX_TABLE:
            self._quic.clear()

    # -- HTTP/1.x and TLS -----------------------------------------------------------------
    def _http(self, conn: _Conn, half: _Half, final: bool = False) -> None:
        while half.buffer:
            req = parse_http_request(bytes(half.buffer), final)
            if req is None:
                return
            used, tx = req
            del half.buffer[:used]
            host = tx.host or self._host(conn.server)
            default = conn.sport == 80
            url = f"http://{host}{'' if default else f':{conn.sport}'}{tx.path}"
            self._emit(Transmission(
                id=0, ts=half.started, transport="http", host=host, port=conn.sport,
                ip=conn.server, method=tx.method, url=url, path=tx.path, headers=tx.headers,
                body=tx.body, content_type=tx.content_type, size=used))
            half.started = conn.last

    def _tls(self, conn: _Conn, half: _Half) -> None:
        buf = half.buffer
        if len(buf) < 5:
            return
        need = 5 + struct.unpack_from(">H", buf, 3)[0]
        if len(buf) < need and len(buf) < MAX_STREAM:
            return
        hello = parse_client_hello(bytes(buf[:need]))
        conn.kind = "done"
        buf.clear()
        if hello is None:
            return
        if hello.sni and conn.server not in self.names:
            self.names.put(conn.server, hello.sni)
        self._emit(Transmission(
            id=0, ts=half.started, transport="tls", host=hello.sni or self._host(conn.server),
            port=conn.sport, ip=conn.server, inspected=False, sni=hello.sni,
            tls_versions=hello.versions, tls_ciphers=hello.ciphers, size=need))


def _kind(first: bytes) -> str:
    if first.startswith(HTTP_METHODS):
        return "http"
    if first[:1] == b"\x16" and first[1:2] == b"\x03":
        return "tls"
    if looks_like_watch(first):
        return "watch"
    return "raw"


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    host: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    content_type: str


def parse_http_request(data: bytes, final: bool = False) -> tuple[int, _Request] | None:
    """One HTTP/1.x request from the front of ``data``: (bytes used, request), or None
    when it is not complete yet (``final``: take what there is)."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = data[:head_end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None
    headers = tuple((k.strip(), v.strip()) for k, _, v in
                    (line.partition(":") for line in lines[1:]) if k)
    lower = {k.lower(): v for k, v in headers}
    pos = head_end + 4
    body = b""
    if "chunked" in lower.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                if not final:
                    return None
                break
            try:
                size = int(data[pos:eol].split(b";")[0], 16)
            except ValueError:
                break
            if size == 0:
                pos = data.find(b"\r\n\r\n", eol) + 4 if data.find(b"\r\n\r\n", eol) >= 0 \
                    else eol + 2
                break
            if eol + 2 + size > len(data) and not final:
                return None
            chunks.append(data[eol + 2:eol + 2 + size])
            pos = eol + 2 + size + 2
        body = b"".join(chunks)
    else:
        try:
            length = int(lower.get("content-length", "0") or 0)
        except ValueError:
            length = 0
        if pos + length > len(data) and not final:
            return None
        body = data[pos:pos + length]
        pos += len(body)
    path = parts[1]
    host = lower.get("host", "").split(":")[0]
    if path.startswith("http://"):  # absolute form, as sent to a proxy
        rest = path[7:]
        host = host or rest.split("/")[0].split(":")[0]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return pos, _Request(parts[0], path, host, headers, body, lower.get("content-type", ""))
