"""Packet captures generated with scapy: TCP reassembly (split, batched, out of order,
retransmitted, missing), DNS naming, TLS ClientHello, plain HTTP, UDP, QUIC, and the whole
thing through ``kidaudit analyze``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap, wrpcapng

from auditor.model import Transmission
from auditor.offline import analyze
from auditor.profile import load_profile
from auditor.sources.mitm import InputError
from auditor.sources.pcap import PcapSource, parse_http_request
from auditor.store import Store
from tests.factories import IMEI, LAT, LON
from tests.test_payload import client_hello, quic_initial

DEV, DNS_SRV, SRV, OTHER = "192.168.50.23", "192.168.50.1", "203.0.113.9", "192.168.50.99"
LK = b"[3G*8645360401*0009*LK,0,0,53]"
UD = (b"[3G*8645360401*005A*UD,190723,190707,A,39.983120,N,116.307910,E,8.24,127.9,21.0,5,"
      b"100,53,0,0,00000000,0,0,58.0]")
TK_WIRE = b"[3G*8645360401*000e*TK,#!AMR\x7d\x01\x7d\x02\x7d\x03\x7d\x04\x7d\x05\xff]"
MONITOR = b"[SG*8645360401*000A*MONITOR]"


class Capture:
    """Packets with increasing times, TCP sequence numbers kept per direction."""

    def __init__(self, t0: float = 1_700_000_000.0, ether: bool = True) -> None:
        self.packets: list[Packet] = []
        self.t = t0
        self.ether = ether
        self.seq: dict[tuple, int] = {}
        self.isn: dict[tuple, int] = {}

    def add(self, pkt: Packet, dt: float = 0.01) -> None:
        pkt = Ether() / pkt if self.ether else pkt
        pkt.time = self.t
        self.t += dt
        self.packets.append(pkt)

    def ip(self, src: str, dst: str) -> Packet:
        return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)

    def dns(self, name: str, answer: str, client: str = DEV) -> None:
        self.add(IP(src=client, dst=DNS_SRV) / UDP(sport=5353 + 1, dport=53)
                 / DNS(rd=1, qd=DNSQR(qname=name)))
        self.add(IP(src=DNS_SRV, dst=client) / UDP(sport=53, dport=5354)
                 / DNS(qr=1, qd=DNSQR(qname=name), an=[DNSRR(rrname=name, rdata=answer)]))

    def open(self, src: str, sport: int, dst: str, dport: int) -> None:
        self.isn[(src, sport)], self.isn[(dst, dport)] = 1000, 9000
        self.seq[(src, sport)], self.seq[(dst, dport)] = 1000, 9000
        self.add(self.ip(src, dst) / TCP(sport=sport, dport=dport, flags="S", seq=999))
        self.add(self.ip(dst, src) / TCP(sport=dport, dport=sport, flags="SA", seq=8999,
                                         ack=1000))

    def send(self, src: str, sport: int, dst: str, dport: int, data: bytes,
             at: int | None = None) -> None:
        """``at``: an explicit offset into the stream (out of order, retransmission, gap);
        without it the segment follows the last one sent."""
        seq = self.seq[(src, sport)] if at is None else self.isn[(src, sport)] + at
        self.add(self.ip(src, dst) / TCP(sport=sport, dport=dport, flags="PA", seq=seq)
                 / Raw(data))
        if at is None:
            self.seq[(src, sport)] += len(data)

    def close(self, src: str, sport: int, dst: str, dport: int) -> None:
        self.add(self.ip(src, dst) / TCP(sport=sport, dport=dport, flags="FA",
                                         seq=self.seq[(src, sport)]))
        self.add(self.ip(dst, src) / TCP(sport=dport, dport=sport, flags="FA",
                                         seq=self.seq[(dst, dport)]))

    def write(self, path: Path, ng: bool = False) -> Path:
        (wrpcapng if ng else wrpcap)(str(path), self.packets)
        return path


def _watch_capture() -> Capture:
    cap = Capture()
    cap.dns("gps.watch.example", SRV)
    cap.open(DEV, 40000, SRV, 8001)
    cap.send(DEV, 40000, SRV, 8001, LK + UD[:40])  # a frame and a half
    rest = UD[40:]
    cap.send(DEV, 40000, SRV, 8001, rest[30:], at=len(LK) + 40 + 30)  # out of order
    cap.send(DEV, 40000, SRV, 8001, rest[:30], at=len(LK) + 40)
    cap.send(DEV, 40000, SRV, 8001, rest[:30], at=len(LK) + 40)  # retransmitted
    cap.seq[(DEV, 40000)] += len(rest)
    cap.send(SRV, 8001, DEV, 40000, MONITOR)
    cap.send(DEV, 40000, SRV, 8001, TK_WIRE[:20])
    cap.send(DEV, 40000, SRV, 8001, TK_WIRE[20:] + LK)  # rest of the voice, then a frame
    cap.close(DEV, 40000, SRV, 8001)
    return cap


def _read(path: Path, device: tuple[str, ...] = ()) -> tuple[list[Transmission], PcapSource]:
    source = PcapSource(path, device, [])
    return list(source), source


def test_watch_stream_is_reassembled_into_frames(tmp_path: Path) -> None:
    txs, source = _read(_watch_capture().write(tmp_path / "w.pcap"))
    assert [(t.transport, t.direction, t.payload) for t in txs] == [
        ("dns", "up", txs[0].payload), ("tcp", "up", LK), ("tcp", "up", UD),
        ("tcp", "down", MONITOR), ("tcp", "up", TK_WIRE), ("tcp", "up", LK)]
    assert all(t.host == "gps.watch.example" and t.port == 8001 and t.ip == SRV
               for t in txs[1:])
    assert txs[0].host == DNS_SRV and txs[0].port == 53
    assert [t.ts for t in txs] == sorted(t.ts for t in txs)
    assert source.stats.retransmitted == 1 and source.stats.missing_bytes == 0
    assert source.open_connections == 0  # closed connections leave no state behind


def test_a_missing_segment_is_noted_and_the_stream_goes_on(tmp_path: Path) -> None:
    cap = Capture()
    cap.open(DEV, 40000, SRV, 8001)
    cap.send(DEV, 40000, SRV, 8001, LK + UD[:20])
    cap.seq[(DEV, 40000)] += 30  # UD[20:50] never made it into the capture
    cap.send(DEV, 40000, SRV, 8001, UD[50:] + LK)
    txs, source = _read(cap.write(tmp_path / "gap.pcap"))
    assert [t.payload for t in txs] == [LK, LK]  # the frame cut by the gap is not trusted
    assert source.stats.missing_bytes == 30
    assert any("30 bytes missing" in n for n in source.notes)


def test_tls_client_hello_is_an_uninspected_transmission_with_its_facts(tmp_path: Path) -> None:
    cap = Capture()
    cap.dns("pinned.example.cn", SRV)
    cap.open(DEV, 40100, SRV, 443)
    hello = client_hello("pinned.example.cn", ciphers=(0x1301, 0x000A))
    cap.send(DEV, 40100, SRV, 443, hello[:30])
    cap.send(DEV, 40100, SRV, 443, hello[30:])
    cap.send(SRV, 443, DEV, 40100, b"\x16\x03\x03\x00\x10" + b"\x00" * 16)
    cap.send(DEV, 40100, SRV, 443, b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
    txs, _ = _read(cap.write(tmp_path / "tls.pcap"))
    (tls,) = [t for t in txs if t.transport == "tls"]
    assert (tls.host, tls.sni, tls.inspected, tls.port) == (
        "pinned.example.cn", "pinned.example.cn", False, 443)
    assert tls.tls_versions == ("TLSv1.3", "TLSv1.2")
    assert tls.tls_ciphers == ("TLS_AES_128_GCM_SHA256", "TLS_RSA_WITH_3DES_EDE_CBC_SHA")
    assert [t.transport for t in txs] == ["dns", "tls"]


def test_plain_http_is_parsed_like_live_http(tmp_path: Path) -> None:
    cap = Capture()
    cap.open(DEV, 40200, SRV, 80)
    body = json.dumps({"imei": IMEI}).encode()
    first = (b"POST /v1/loc?imei=" + IMEI.encode() + b" HTTP/1.1\r\nHost: api.example.cn\r\n"
             b"Content-Type: application/json\r\nContent-Length: "
             + str(len(body)).encode() + b"\r\n\r\n" + body)
    second = (b"POST /v1/up HTTP/1.1\r\nHost: api.example.cn\r\nTransfer-Encoding: chunked\r\n"
              b"\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    cap.send(DEV, 40200, SRV, 80, first[:25])
    cap.send(DEV, 40200, SRV, 80, first[25:] + second[:10])
    cap.send(DEV, 40200, SRV, 80, second[10:])
    cap.send(SRV, 80, DEV, 40200, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    txs, _ = _read(cap.write(tmp_path / "http.pcap"))
    assert [(t.transport, t.method, t.url, t.body) for t in txs] == [
        ("http", "POST", f"http://api.example.cn/v1/loc?imei={IMEI}", body),
        ("http", "POST", "http://api.example.cn/v1/up", b"hello world")]
    assert txs[0].content_type == "application/json" and txs[0].path.endswith(IMEI)
    assert ("Host", "api.example.cn") in txs[0].headers


def test_parse_http_request_waits_for_the_body() -> None:
    head = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345"
    assert parse_http_request(head) is None
    used, req = parse_http_request(head, final=True)
    assert (used, req.body) == (len(head), b"12345")


def test_the_profile_says_which_address_is_the_device(tmp_path: Path) -> None:
    cap = Capture()
    for src in (DEV, OTHER):
        cap.add(IP(src=src, dst=SRV) / UDP(sport=40000, dport=9000) / Raw(b"hello " + src.encode()))
    path = cap.write(tmp_path / "two.pcap")
    learned, _ = _read(path)
    assert {t.payload for t in learned} == {b"hello " + DEV.encode(), b"hello " + OTHER.encode()}
    fixed, source = _read(path, (DEV,))
    assert [t.payload for t in fixed] == [b"hello " + DEV.encode()]
    assert source.stats.skipped == 1


def test_ipv6_raw_ip_links_pcapng_and_quic(tmp_path: Path) -> None:
    dev6, srv6 = "fd00::23", "2001:db8::9"
    cap = Capture(ether=False)
    cap.open(dev6, 40000, srv6, 8001)
    cap.send(dev6, 40000, srv6, 8001, LK)
    hello = client_hello("quic.example.cn", ciphers=(0x1301,), record=False)
    for initial in (quic_initial([(300, hello[300:])]), quic_initial([(0, hello[:300])], pn=2),
                    b"\x40" + b"\x00" * 60):  # the ClientHello in two Initials, then 1-RTT
        cap.add(IPv6(src=dev6, dst=srv6) / UDP(sport=50000, dport=443) / Raw(initial))
    for ng in (False, True):
        txs, _ = _read(cap.write(tmp_path / f"v6.pcap{'ng' if ng else ''}", ng=ng))
        assert [(t.transport, t.inspected, t.ip) for t in txs] == [
            ("tcp", True, srv6), ("udp", False, srv6)]
        assert (txs[1].host, txs[1].sni, txs[1].tls_ciphers) == (
            "quic.example.cn", "quic.example.cn", ("TLS_AES_128_GCM_SHA256",))
        assert abs(txs[0].ts - cap.packets[2].time) < 1e-3


def test_not_a_capture_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"not a capture at all")
    with pytest.raises(InputError, match="x.pcap: not a pcap"):
        list(PcapSource(path))


PROFILE = f"""
device: {{name: "Lab watch", ip: ["{DEV}"], ca_trusted: true}}
identifiers: {{imei: "{IMEI}"}}
location: {{lat: {LAT}, lon: {LON}}}
first_party: [watch.example]
"""


def test_analyze_a_pcap_end_to_end(tmp_path: Path) -> None:
    cap = _watch_capture()
    cap.dns("pinned.example.cn", SRV)
    cap.open(DEV, 40100, SRV, 443)
    cap.send(DEV, 40100, SRV, 443, client_hello("pinned.example.cn", ciphers=(0x1301, 0x000A)))
    path = cap.write(tmp_path / "lab.pcapng", ng=True)
    (tmp_path / "p.yaml").write_text(PROFILE)
    out = tmp_path / "out"
    analyze([path], load_profile(str(tmp_path / "p.yaml")), None, out)
    doc = json.loads((out / "findings.json").read_text())
    transports = [(t["transport"], t["direction"]) for t in doc["transmissions"]]
    assert transports.count(("tcp", "up")) == 4 and ("tcp", "down") in transports
    assert ("tls", "up") in transports and transports.count(("dns", "up")) == 2
    coverage = doc["coverage"]
    assert coverage["connections"] == len(doc["transmissions"])
    assert coverage["inspected"] == len(doc["transmissions"]) - 1
    assert [u["host"] for u in coverage["uninspected"]] == ["pinned.example.cn"]
    categories = {d["category"] for d in doc["detections"]}
    assert "location.precise" in categories
    store = Store.open_existing(out)
    tags = {t for o in store.observations() for t in o.tags}
    store.close()
    assert "command:MONITOR" in tags
    rules = {f["rule"] for f in doc["findings"]}
    assert {"COVERT_MONITOR", "WEAK_TLS", "CLEARTEXT_PI"} <= rules
    assert (out / "lab.pcapng").read_bytes() == path.read_bytes()  # the evidence travels along
    assert not (out / "flows.mitm").exists()


def test_transmissions_stream_out_before_the_file_is_read_whole(tmp_path: Path) -> None:
    cap = Capture()
    for i in range(20):
        cap.add(IP(src=DEV, dst=SRV) / UDP(sport=40000, dport=9000) / Raw(b"tick %d" % i),
                dt=10.0)
    source = PcapSource(cap.write(tmp_path / "long.pcap"), (DEV,), [])
    stream = iter(source)
    first = next(stream)
    assert first.payload == b"tick 0" and source.stats.packets < 20
    assert len(list(stream)) == 19


def test_a_raw_stream_is_one_message_per_turn_and_flushed_at_the_end(tmp_path: Path) -> None:
    cap = Capture()
    cap.open(DEV, 40300, SRV, 7000)
    cap.send(DEV, 40300, SRV, 7000, b"hello ")
    cap.send(DEV, 40300, SRV, 7000, b"raw")
    cap.send(SRV, 7000, DEV, 40300, b"welcome")
    cap.send(DEV, 40300, SRV, 7000, b"left open")
    source = PcapSource(cap.write(tmp_path / "raw.pcap"), (DEV,), [])
    assert [t.payload for t in source] == [b"hello raw", b"left open"]
    assert source.open_connections == 0  # flushed at the end, then forgotten


def _get(cap: Capture, sport: int, host: str, target: str) -> None:
    """One plain HTTP GET from the device, on its own connection, answered."""
    cap.open(DEV, sport, SRV, 80)
    cap.send(DEV, sport, SRV, 80, f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    cap.send(SRV, 80, DEV, sport, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    cap.close(DEV, sport, SRV, 80)


def test_a_mark_in_a_pcap_is_a_consent_event_not_a_transmission(tmp_path: Path) -> None:
    """Plain HTTP to the magic host (a browser behind a transparent proxy, captured on the
    wire) is the consent mark the live addon recorded; a malformed one is a coverage error,
    as live answered it 400."""
    cap = Capture()
    _get(cap, 40300, "kidaudit.mark", "/grant?categories=all-disclosed")
    _get(cap, 40301, "api.example.cn", f"/bind?imei={IMEI}")
    _get(cap, 40302, "kidaudit.mark", "/withdraw?categories=identifier.imei")
    _get(cap, 40303, "kidaudit.mark", "/phase")
    (tmp_path / "p.yaml").write_text(PROFILE)
    out = tmp_path / "out"
    analyze([cap.write(tmp_path / "marks.pcap")], load_profile(str(tmp_path / "p.yaml")),
            None, out)
    doc = json.loads((out / "findings.json").read_text())
    assert [(e["action"], e["categories"], e["source"]) for e in doc["events"]] == [
        ("grant", ["all-disclosed"], "mark"), ("withdraw", ["identifier.imei"], "mark")]
    assert doc["events"][0]["ts"] < doc["transmissions"][0]["ts"] < doc["events"][1]["ts"]
    assert [t["host"] for t in doc["transmissions"]] == ["api.example.cn"]
    assert [(e["stage"], e["message"]) for e in doc["coverage"]["errors"]] == [
        ("mark", "ValueError: a phase mark needs name=..., e.g. /phase?name=idle")]
