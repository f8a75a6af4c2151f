"""Raw payload extractors, the TLS ClientHello parser and the DNS message parser."""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers.dns import DNS, DNSQR, DNSRR

from auditor.data import load_sdks
from auditor.extract import extract
from auditor.extract.payload import (
    assemble_crypto,
    cipher_name,
    is_quic_initial,
    parse_client_hello,
    parse_dns,
    quic_crypto,
    quic_initial_keys,
)
from auditor.model import Profile, Transmission
from auditor.pipeline import Pipeline
from tests.factories import IMEI


def client_hello(sni: str = "api.example.cn", ciphers: tuple[int, ...] = (0x1301, 0xC02F),
                 versions: tuple[int, ...] | None = (0x0304, 0x0303), legacy: int = 0x0303,
                 record: bool = True) -> bytes:
    """A ClientHello as a device sends it (RFC 8446 §4.1.2), built by hand."""
    exts = b""
    if sni:
        name = sni.encode()
        entry = b"\x00" + struct.pack(">H", len(name)) + name
        body = struct.pack(">H", len(entry)) + entry
        exts += struct.pack(">HH", 0, len(body)) + body
    if versions is not None:
        body = bytes([2 * len(versions)]) + b"".join(struct.pack(">H", v) for v in versions)
        exts += struct.pack(">HH", 43, len(body)) + body
    hello = (struct.pack(">H", legacy) + b"\x11" * 32 + b"\x00"
             + struct.pack(">H", 2 * len(ciphers)) + b"".join(struct.pack(">H", c)
                                                            for c in ciphers)
             + b"\x01\x00" + struct.pack(">H", len(exts)) + exts)
    msg = b"\x01" + len(hello).to_bytes(3, "big") + hello
    return b"\x16\x03\x01" + struct.pack(">H", len(msg)) + msg if record else msg


def _tx(transport: str, payload: bytes, direction: str = "up") -> Transmission:
    return Transmission(id=1, ts=0.0, transport=transport, host="h", port=1, payload=payload,
                        direction=direction)


@pytest.mark.parametrize("record", [True, False])
def test_client_hello_gives_sni_versions_and_iana_cipher_names(record: bool) -> None:
    hello = parse_client_hello(client_hello(
        ciphers=(0x0A0A, 0x1301, 0x000A, 0x0005, 0x0003, 0x0000, 0xBEEF),
        versions=(0x2A2A, 0x0304, 0x0303, 0x0301), record=record))
    assert hello is not None and hello.sni == "api.example.cn"
    assert hello.versions == ("TLSv1.3", "TLSv1.2", "TLSv1")  # GREASE left out
    assert hello.ciphers == ("TLS_AES_128_GCM_SHA256", "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
                             "TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
                             "TLS_NULL_WITH_NULL_NULL", "0xBEEF")


def test_without_supported_versions_the_legacy_version_is_the_offer() -> None:
    hello = parse_client_hello(client_hello(sni="", versions=None, legacy=0x0301))
    assert hello is not None and (hello.sni, hello.versions) == ("", ("TLSv1",))


@pytest.mark.parametrize("data", [b"", b"\x16\x03\x01\x00\x05\x02", b"GET / HTTP/1.1\r\n",
                                  client_hello()[:20]])
def test_what_is_not_a_client_hello_is_none(data: bytes) -> None:
    assert parse_client_hello(data) is None


def test_cipher_table_names_the_weak_families() -> None:
    assert "3DES" in cipher_name(0xC012) and "RC4" in cipher_name(0xC011)
    assert "NULL" in cipher_name(0x003B) and "EXPORT" in cipher_name(0x0014)


def test_dns_answers_name_addresses_through_cnames() -> None:
    reply = bytes(DNS(id=1, qr=1, qd=DNSQR(qname="watch.example.cn"),
                      an=[DNSRR(rrname="watch.example.cn", type="CNAME", rdata="lb.cdn.example"),
                          DNSRR(rrname="lb.cdn.example", rdata="203.0.113.9"),
                          DNSRR(rrname="lb.cdn.example", type="AAAA", rdata="2001:db8::9")]))
    questions, answers = parse_dns(reply)
    assert questions == ["watch.example.cn"]
    assert answers == [("watch.example.cn", "203.0.113.9"), ("watch.example.cn", "2001:db8::9")]
    assert parse_dns(b"\x00\x01") == ([], [])


def test_a_dns_query_is_read_as_the_name_asked() -> None:
    query = bytes(DNS(rd=1, qd=DNSQR(qname="gps.tracker.example")))
    assert [(f.location, f.path, f.value) for f in extract(_tx("dns", query))] == [
        ("dns", "dns.query[0]", "gps.tracker.example")]


def test_a_watch_frame_over_tcp_is_read_as_the_watch_protocol() -> None:
    fields = extract(_tx("tcp", b"[3G*1234567890*0002*LK,0,0,90]"))
    assert ("payload.watch.id", "1234567890") in {(f.path, f.value) for f in fields}
    down = extract(_tx("tcp", b"[3G*1234567890*0007*MONITOR]", "down"))
    assert ("command", "MONITOR") in {(f.location, f.value) for f in down}


@pytest.mark.parametrize("transport", ["udp", "websocket"])
def test_other_payloads_fall_back_to_body_readers_or_text(transport: str) -> None:
    fields = extract(_tx(transport, f'{{"imei": "{IMEI}"}}'.encode()))
    assert any(IMEI in f.value for f in fields)
    assert isinstance(extract(_tx(transport, bytes(range(256)))), list)  # binary: no crash


def test_quic_initial_is_recognised() -> None:
    assert is_quic_initial(b"\xc3\x00\x00\x00\x01\x08" + b"\x00" * 40)
    assert not is_quic_initial(b"\x40\x00\x00\x00\x01\x08" + b"\x00" * 40)


def test_quic_initial_keys_match_rfc_9001_appendix_a() -> None:
    key, iv, hp = quic_initial_keys(bytes.fromhex("8394c8f03e515708"))
    assert (key.hex(), iv.hex(), hp.hex()) == (
        "1f369613dd76d5467730efcbe3b1a22d", "fa044b2f42a3fd3b46fb255c",
        "9f50449e04a0e810283a1e9933adedd2")


def quic_initial(frames: list[tuple[int, bytes]], dcid: bytes = b"\x83\x94\xc8\xf0\x3e\x51"
                 b"\x57\x08", pn: int = 1) -> bytes:
    """A client Initial as RFC 9001 §5 protects it, carrying these CRYPTO frames."""
    def varint(v: int) -> bytes:
        return (0x4000 | v).to_bytes(2, "big") if v >= 64 else bytes([v])

    plain = b"".join(b"\x06" + varint(o) + varint(len(d)) + d for o, d in frames)
    plain += b"\x00" * (1100 - len(plain))  # PADDING up to the minimum datagram size
    key, iv, hp = quic_initial_keys(dcid)
    pn_bytes = pn.to_bytes(2, "big")
    length = len(pn_bytes) + len(plain) + 16
    header = (bytes([0xC1]) + b"\x00\x00\x00\x01" + bytes([len(dcid)]) + dcid + b"\x00"
              + b"\x00" + (0x4000 | length).to_bytes(2, "big") + pn_bytes)
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, plain, header)
    pn_offset = len(header) - 2
    sample = sealed[4 - 2:4 - 2 + 16]
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sample)
    first = header[0] ^ (mask[0] & 0x0F)
    protected_pn = bytes(b ^ m for b, m in zip(pn_bytes, mask[1:3], strict=True))
    return bytes([first]) + header[1:pn_offset] + protected_pn + sealed


def test_a_quic_client_hello_is_read_out_of_its_initials() -> None:
    hello = client_hello("quic.example.cn", record=False)
    first, second = quic_initial([(40, hello[40:])]), quic_initial([(0, hello[:40])], pn=2)
    frames = quic_crypto(first) + quic_crypto(second)
    assert assemble_crypto(frames) == hello
    parsed = parse_client_hello(assemble_crypto(frames))
    assert parsed is not None and parsed.sni == "quic.example.cn"
    assert quic_crypto(first[:-1] + bytes([first[-1] ^ 1])) == []  # tampered: no plaintext


def _cbor_shared_levels(levels: int) -> bytes:
    """An array holding a CBOR value-sharing DAG (tags 28/29) of 2**levels null leaves:
    the array's first byte is what makes undeclared bytes worth reading as CBOR."""
    item = b"\xd8\x1c\xf6"
    for i in reversed(range(levels)):
        item = b"\xd8\x1c\x82" + item + b"\xd8\x1d" + bytes([0x18, i + 1])
    return b"\x81" + item


@pytest.mark.parametrize(("transport", "payload", "reason"), [
    pytest.param("tcp", _cbor_shared_levels(40), "CBOR document expands", id="tcp-cbor-dag"),
    pytest.param("websocket", b"[" + b"[]," * 1_300_000 + b"[]]", "work budget",
                 id="websocket-json-fan-out"),
    pytest.param("udp", b"\x91" * 1000 + b"\xa5hello", "nested more than 64 deep",
                 id="udp-msgpack-1000-deep"),
])
def test_a_raw_payload_bomb_ends_opaque_with_its_reason(transport: str, payload: bytes,
                                                        reason: str) -> None:
    """Raw messages go through the same budgeted readers as bodies, within the pipeline's
    one budget per message: the bomb ends, and the observation lists why it was not read."""
    obs = Pipeline.for_profile(Profile(), load_sdks()).observe(_tx(transport, payload))
    assert any(reason in o for o in obs.opaque), obs.opaque
