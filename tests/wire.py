"""Payloads of every body format, written by hand from their specifications (protobuf.dev
encoding guide, RFC 7578, RFC 8949), so the tests of ``auditor/extract`` do not read bytes
with the code they test. Shared values (IMEI, ...) come from ``tests/factories.py``."""

from __future__ import annotations

import json
import struct

from auditor.extract.bodies import fields_from_bytes
from tests.factories import CHILD_NAME, IMEI

JSON_BODY = json.dumps({"imei": IMEI, "name": CHILD_NAME}).encode()
"""A JSON body holding the seeded IMEI and the child's name."""

AMR = b"#!AMR\n" + bytes(range(40))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
"""An AMR voice note's header and a JPEG's: enough bytes to be sniffed as media."""


def pb_varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb(number: int, value: int | bytes | str, wire: int | None = None) -> bytes:
    """One protobuf field: an int is a varint unless ``wire`` says fixed64 (1) / fixed32 (5);
    bytes and str are length-delimited."""
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return pb_varint(number << 3 | 2) + pb_varint(len(value)) + value
    if wire == 1:
        return pb_varint(number << 3 | 1) + struct.pack("<Q", value)
    if wire == 5:
        return pb_varint(number << 3 | 5) + struct.pack("<I", value)
    return pb_varint(number << 3) + pb_varint(value)


def double_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def float_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def multipart(boundary: str, *parts: tuple[dict[str, str], bytes]) -> bytes:
    """A multipart/form-data body as ``requests`` / browsers write it (RFC 7578 4)."""
    out = b""
    for headers, body in parts:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out += f"--{boundary}\r\n{head}\r\n".encode() + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def form_part(name: str, filename: str = "", ctype: str = "") -> dict[str, str]:
    disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return {"Content-Disposition": disp, **({"Content-Type": ctype} if ctype else {})}


def cbor_uint(n: int, major: int = 0) -> bytes:
    """An RFC 8949 head: major type and argument."""
    if n < 24:
        return bytes([major << 5 | n])
    size = 1 if n < 1 << 8 else 2 if n < 1 << 16 else 4
    return bytes([major << 5 | {1: 24, 2: 25, 4: 26}[size]]) + n.to_bytes(size, "big")


SHAREABLE, SHARED = b"\xd8\x1c", b"\xd8\x1d"  # IANA CBOR tags 28 and 29 (value sharing)


def cbor_shared_bomb(levels: int, fan_out: int = 2, leaf: bytes = b"\xf6") -> bytes:
    """Each level a shared array of the next level and ``fan_out - 1`` references to it:
    ``fan_out ** levels`` leaves from about six bytes a level. Shared values are numbered in
    the order their tag 28 appears, so level i's is number i."""
    item = SHAREABLE + leaf
    for i in reversed(range(levels)):
        item = (SHAREABLE + cbor_uint(fan_out, 4) + item
                + (SHARED + cbor_uint(i + 1)) * (fan_out - 1))
    return item


def expanded_nodes(levels: int, fan_out: int) -> int:
    """Nodes of ``cbor_shared_bomb`` once every reference is expanded: arrays and leaves."""
    return sum(fan_out ** i for i in range(levels + 1))


def body_fields(data: bytes, content_type: str = "") -> list[tuple[str, str, str]]:
    """(location, path, value) of every field ``fields_from_bytes`` reads in a body."""
    return [(f.location, f.path, f.value)
            for f in fields_from_bytes(data, "body", "body", content_type=content_type)]


def body_chain(data: bytes, content_type: str = "") -> list[tuple[str, str, tuple]]:
    """(path, value, encoding chain) of every field ``fields_from_bytes`` reads in a body."""
    return [(f.path, f.value, f.encoding)
            for f in fields_from_bytes(data, "body", "body", content_type=content_type)]
