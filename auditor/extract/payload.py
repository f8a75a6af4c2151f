"""Raw payloads: TCP, UDP and WebSocket messages and DNS queries, plus the two wire formats
every capture source needs to name a destination: the TLS ClientHello (SNI, offered
versions and cipher suites, RFC 8446 §4.1.2) and the DNS message (RFC 1035 §4.1).

A raw message is read as a kids'-watch or tracker frame first (``watchproto``); anything
else goes to the body readers (JSON, protobuf, msgpack, ...) when they are installed, or
is kept as text when it is printable.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from auditor.addresses import ip_text
from auditor.extract.bodies import fields_from_bytes
from auditor.extract.watchproto import payload_fields
from auditor.limits import MAX_TEXT
from auditor.model import Field, Transmission


def extract_payload(tx: Transmission) -> list[Field]:
    """A TCP, UDP or WebSocket message: watch/tracker fields, else the body readers."""
    data = tx.payload
    if not data:
        return []
    fields = payload_fields(data, tx.direction)
    if fields:
        return fields
    return generic_fields(data)


def generic_fields(data: bytes, prefix: str = "payload") -> list[Field]:
    found = fields_from_bytes(data, prefix, "payload")
    if found:
        return found
    text = data[:MAX_TEXT].decode("utf-8", errors="replace")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    if text and printable / len(text) >= 0.9:
        return [Field("payload", f"{prefix}.text", text)]
    return []


def extract_dns(tx: Transmission) -> list[Field]:
    """The names a DNS query asks for: a lookup says where the device is about to talk."""
    questions, _ = parse_dns(tx.payload) if tx.payload else ([], [])
    names = questions or ([tx.sni] if tx.sni else [])
    return [Field("dns", f"dns.query[{i}]", name) for i, name in enumerate(names)]


# -- DNS ----------------------------------------------------------------------------------

def _name(data: bytes, pos: int, depth: int = 0) -> tuple[str, int]:
    """A possibly compressed name at ``pos``; returns it and the offset after it."""
    labels: list[str] = []
    end = -1
    while depth < 16:
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if end < 0:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            depth += 1
            continue
        pos += 1
        if length == 0:
            break
        labels.append(data[pos:pos + length].decode("ascii", errors="replace"))
        pos += length
    return ".".join(labels).lower(), end if end >= 0 else pos


def parse_dns(data: bytes) -> tuple[list[str], list[tuple[str, str]]]:
    """Question names, and (name asked, address) for every A/AAAA answer (CNAME chains are
    followed back to the question, so the address is named as the device asked for it)."""
    try:
        _, _, qd, an = struct.unpack_from(">HHHH", data, 0)
        pos = 12
        questions: list[str] = []
        for _ in range(qd):
            name, pos = _name(data, pos)
            questions.append(name)
            pos += 4
        alias: dict[str, str] = {}
        answers: list[tuple[str, str]] = []
        for _ in range(an):
            name, pos = _name(data, pos)
            rtype, _, _, rdlen = struct.unpack_from(">HHIH", data, pos)
            pos += 10
            rdata = data[pos:pos + rdlen]
            if rtype == 1 and rdlen == 4:
                answers.append((name, str(ipaddress.IPv4Address(rdata))))
            elif rtype == 28 and rdlen == 16:
                answers.append((name, ip_text(ipaddress.IPv6Address(rdata))))
            elif rtype == 5:
                alias[_name(data, pos)[0]] = name
            pos += rdlen
    except (struct.error, IndexError, ValueError):
        return [], []
    named = []
    for name, ip in answers:
        seen = 0
        while name in alias and seen < 16:
            name, seen = alias[name], seen + 1
        named.append((name, ip))
    return questions, named


# -- TLS ClientHello ----------------------------------------------------------------------

# Named as OpenSSL and mitmproxy name them (``Client.tls_version``), so live and offline
# facts read alike.
TLS_VERSIONS: dict[int, str] = {0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLSv1.1",
                                0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}
# IANA TLS Cipher Suites registry: every NULL, EXPORT, RC4, DES and 3DES suite a device
# is likely to offer (what WEAK_TLS looks for), and the common modern ones.
CIPHERS: dict[int, str] = {
    0x0000: "TLS_NULL_WITH_NULL_NULL", 0x0001: "TLS_RSA_WITH_NULL_MD5",
    0x0002: "TLS_RSA_WITH_NULL_SHA", 0x0003: "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
    0x0004: "TLS_RSA_WITH_RC4_128_MD5", 0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x0006: "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", 0x0008: "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA",
    0x0009: "TLS_RSA_WITH_DES_CBC_SHA", 0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0011: "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA", 0x0013: "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA",
    0x0014: "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", 0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0017: "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5", 0x0018: "TLS_DH_anon_WITH_RC4_128_MD5",
    0x001B: "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA", 0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", 0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", 0x003B: "TLS_RSA_WITH_NULL_SHA256",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256", 0x5600: "TLS_FALLBACK_SCSV",
    0xC002: "TLS_ECDH_ECDSA_WITH_RC4_128_SHA", 0xC003: "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA",
    0xC006: "TLS_ECDHE_ECDSA_WITH_NULL_SHA", 0xC007: "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    0xC008: "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC010: "TLS_ECDHE_RSA_WITH_NULL_SHA", 0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}
EXT_SNI, EXT_SUPPORTED_VERSIONS = 0, 43


def _grease(value: int) -> bool:
    """RFC 8701 GREASE values (0x0A0A, 0x1A1A, ...) are noise, not offers."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def cipher_name(code: int) -> str:
    return CIPHERS.get(code, f"0x{code:04X}")


def version_name(code: int) -> str:
    return TLS_VERSIONS.get(code, f"0x{code:04X}")


@dataclass(frozen=True)
class ClientHello:
    sni: str
    versions: tuple[str, ...]  # supported_versions when sent, else the legacy version alone
    ciphers: tuple[str, ...]  # IANA names, in the client's order


def parse_client_hello(data: bytes) -> ClientHello | None:
    """A ClientHello from a TLS record (``16 03 ..``) or a bare handshake message (``01``).
    None when the bytes are not one (or are cut before the cipher list)."""
    try:
        if data[:1] == b"\x16":
            data = data[5:]
        if data[:1] != b"\x01":
            return None
        pos = 4
        (legacy,) = struct.unpack_from(">H", data, pos)
        pos += 2 + 32
        pos += 1 + data[pos]  # session id
        (n,) = struct.unpack_from(">H", data, pos)
        pos += 2
        codes = struct.unpack_from(f">{n // 2}H", data, pos)
        pos += n
        pos += 1 + data[pos]  # compression methods
        sni, versions = "", ()
        if pos + 2 <= len(data):
            (ext_len,) = struct.unpack_from(">H", data, pos)
            pos += 2
            end = min(len(data), pos + ext_len)
            while pos + 4 <= end:
                kind, length = struct.unpack_from(">HH", data, pos)
                body = data[pos + 4:pos + 4 + length]
                pos += 4 + length
                if kind == EXT_SNI and len(body) > 5 and body[2] == 0:
                    (name_len,) = struct.unpack_from(">H", body, 3)
                    sni = body[5:5 + name_len].decode("ascii", errors="replace").lower()
                elif kind == EXT_SUPPORTED_VERSIONS and body:
                    offered = struct.unpack_from(f">{body[0] // 2}H", body, 1)
                    versions = tuple(version_name(v) for v in offered if not _grease(v))
    except (struct.error, IndexError):
        return None
    return ClientHello(sni, versions or (version_name(legacy),),
                       tuple(cipher_name(c) for c in codes if not _grease(c)))


# -- QUIC Initial (RFC 9000 §17.2.2, RFC 9001 §5) -------------------------------------------
# Initial packets are encrypted with keys anyone can derive from the packet itself (the
# client's Destination Connection ID): the ClientHello inside can be read, the rest cannot.

QUIC_V1 = b"\x00\x00\x00\x01"
QUIC_V1_SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")  # RFC 9001 §5.2
QUIC_V2 = b"\x6b\x33\x43\xcf"


def is_quic_initial(data: bytes) -> bool:
    """A QUIC v1 (type bits 00) or v2 (type bits 01, RFC 9369) long-header Initial."""
    if len(data) < 7:
        return False
    return (data[1:5] == QUIC_V1 and data[0] & 0xF0 == 0xC0
            or data[1:5] == QUIC_V2 and data[0] & 0xF0 == 0xD0)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """RFC 9000 §16: the two top bits give the length."""
    size = 1 << (data[pos] >> 6)
    value = data[pos] & 0x3F
    for i in range(1, size):
        value = value << 8 | data[pos + i]
    return value, pos + size


def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1) with an empty context."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def quic_initial_keys(dcid: bytes) -> tuple[bytes, bytes, bytes]:
    """The client's Initial (key, iv, header-protection key) for a v1 connection."""
    from cryptography.hazmat.primitives import hashes, hmac

    h = hmac.HMAC(QUIC_V1_SALT, hashes.SHA256())
    h.update(dcid)
    client = _expand_label(h.finalize(), b"client in", 32)
    return (_expand_label(client, b"quic key", 16), _expand_label(client, b"quic iv", 12),
            _expand_label(client, b"quic hp", 16))


def quic_crypto(packet: bytes) -> list[tuple[int, bytes]]:
    """(offset, data) of every CRYPTO frame in a v1 client Initial; empty when the packet
    is not one or does not decrypt."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not is_quic_initial(packet) or packet[1:5] != QUIC_V1:
        return []
    try:
        pos = 6 + packet[5]
        dcid = packet[6:pos]
        pos += 1 + packet[pos]  # source connection id
        token_len, pos = _varint(packet, pos)
        length, pn_offset = _varint(packet, pos + token_len)
        key, iv, hp = quic_initial_keys(dcid)
        sample = packet[pn_offset + 4:pn_offset + 20]
        mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sample)
        first = packet[0] ^ (mask[0] & 0x0F)
        pn_len = (first & 0x03) + 1
        pn = bytes(packet[pn_offset + i] ^ mask[1 + i] for i in range(pn_len))
        header = bytes([first]) + packet[1:pn_offset] + pn
        nonce = (int.from_bytes(iv, "big") ^ int.from_bytes(pn, "big")).to_bytes(12, "big")
        plain = AESGCM(key).decrypt(nonce, packet[pn_offset + pn_len:pn_offset + length],
                                    header)
    except (IndexError, ValueError, InvalidTag):
        return []
    return _crypto_frames(plain)


def _crypto_frames(plain: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    try:
        while pos < len(plain):
            kind, pos = _varint(plain, pos)
            if kind in (0x00, 0x01):  # PADDING, PING
                continue
            if kind == 0x06:  # CRYPTO
                offset, pos = _varint(plain, pos)
                size, pos = _varint(plain, pos)
                out.append((offset, plain[pos:pos + size]))
                pos += size
            elif kind in (0x02, 0x03):  # ACK (with ECN counts)
                _, pos = _varint(plain, pos)
                _, pos = _varint(plain, pos)
                ranges, pos = _varint(plain, pos)
                _, pos = _varint(plain, pos)
                for _ in range(2 * ranges + (3 if kind == 0x03 else 0)):
                    _, pos = _varint(plain, pos)
            else:
                break  # nothing else belongs in a client's first Initial
    except IndexError:
        pass
    return out


def assemble_crypto(frames: list[tuple[int, bytes]]) -> bytes:
    """The CRYPTO stream's bytes from offset 0 for as far as they run without a gap."""
    data = b""
    for offset, chunk in sorted(frames):
        if offset > len(data):
            break
        data += chunk[len(data) - offset:]
    return data
