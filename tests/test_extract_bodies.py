"""auditor/extract/bodies.py: every body format, sniffed from the bytes, read with limits."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from collections.abc import Mapping

import brotli
import cbor2
import msgpack
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.extract import bodies
from auditor.extract.bodies import MAX_FIELDS, fields_from_bytes
from auditor.model import Field
from tests.factories import CHILD_NAME, IMEI, LAT, LON

DOC = json.dumps({"imei": IMEI, "name": CHILD_NAME}).encode()
DOC_FIELDS = [("body", "body.json.imei", IMEI), ("body", "body.json.name", CHILD_NAME)]


# --- hand encoders for the wire formats (protobuf.dev encoding guide, RFC 7578) ----------

def varint(n: int) -> bytes:
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
        return varint(number << 3 | 2) + varint(len(value)) + value
    if wire == 1:
        return varint(number << 3 | 1) + struct.pack("<Q", value)
    if wire == 5:
        return varint(number << 3 | 5) + struct.pack("<I", value)
    return varint(number << 3) + varint(value)


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


AMR = b"#!AMR\n" + bytes(range(40))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
MEDIA = {
    "amr": (AMR, "audio/amr"),
    "amr-wb": (b"#!AMR-WB\n" + bytes(20), "audio/amr-wb"),
    "aac-adts": (b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(20), "audio/aac"),
    "mp3-id3": (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(20), "audio/mpeg"),
    "mp3-frame": (b"\xff\xfb\x90\x64" + bytes(20), "audio/mpeg"),
    "ogg-opus": (b"OggS\x00\x02" + bytes(22) + b"\x13OpusHead\x01\x01", "audio/opus"),
    "ogg-vorbis": (b"OggS\x00\x02" + bytes(22) + b"\x01vorbis", "audio/ogg"),
    "wav": (b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(20), "audio/wav"),
    "silk": (b"\x02#!SILK_V3" + bytes(20), "audio/silk"),
    "jpeg": (JPEG, "image/jpeg"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20), "image/png"),
    "webp": (b"RIFF\x24\x08\x00\x00WEBPVP8 " + bytes(20), "image/webp"),
    "heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(20), "image/heic"),
}


def _fields(data: bytes, content_type: str = "") -> list[tuple[str, str, str]]:
    return [(f.location, f.path, f.value)
            for f in fields_from_bytes(data, "body", "body", content_type=content_type)]


def _with_chain(data: bytes, content_type: str = "") -> list[tuple[str, str, tuple]]:
    return [(f.path, f.value, f.encoding)
            for f in fields_from_bytes(data, "body", "body", content_type=content_type)]


# --- compression ---------------------------------------------------------------------------

def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(("packed", "content_type", "chain"), [
    pytest.param(gzip.compress(DOC), "application/json", ("gzip",), id="gzip-undeclared"),
    pytest.param(zlib.compress(DOC), "", ("zlib",), id="zlib-sniffed"),
    pytest.param(zstandard.ZstdCompressor().compress(DOC), "", ("zstd",), id="zstd"),
    pytest.param(brotli.compress(DOC), "application/json", ("brotli",), id="brotli-no-magic"),
    pytest.param(_raw_deflate(DOC), "application/json", ("deflate",), id="raw-deflate"),
    pytest.param(gzip.compress(zlib.compress(DOC)), "", ("gzip", "zlib"), id="gzip-of-zlib"),
])
def test_compressed_body_is_peeled_with_layer_recorded(packed: bytes, content_type: str,
                                                       chain: tuple) -> None:
    assert _with_chain(packed, content_type) == [
        ("body.json.imei", IMEI, chain), ("body.json.name", CHILD_NAME, chain),
    ]


BOMB_ZEROS = 50 * 1024 * 1024
BOMBS = {  # built in the test, not at collection: 50 MB of zeros takes a moment to pack
    "gzip": lambda z: gzip.compress(z, compresslevel=1),
    "zlib": lambda z: zlib.compress(z, 1),
    "zstd": lambda z: zstandard.ZstdCompressor(level=3).compress(z),
    "brotli": lambda z: brotli.compress(z, quality=1),
}


@pytest.mark.parametrize("layer", BOMBS)
def test_decompression_bomb_stops_at_the_limit_and_is_opaque(layer: str) -> None:
    fields = fields_from_bytes(BOMBS[layer](bytes(BOMB_ZEROS)), "body", "body")
    opaque = [f for f in fields if f.location == bodies.OPAQUE]
    assert [(f.path, f.encoding) for f in opaque] == [("body", ())]
    assert opaque[0].value.startswith(layer)
    assert "ratio" in opaque[0].value or "output" in opaque[0].value
    assert all(len(f.value) <= bodies.MAX_OUTPUT for f in fields)


def test_ratio_limit_spares_small_repetitive_documents() -> None:
    doc = json.dumps({"imei": IMEI, "pad": "0" * 200_000}).encode()
    assert ("body", "body.json.imei", IMEI) in _fields(gzip.compress(doc))


@pytest.mark.parametrize(("packed", "layer"), [
    pytest.param(gzip.compress(f"imei={IMEI}&x=1".encode())[:-8], "gzip", id="gzip-no-trailer"),
    pytest.param(zlib.compress(f"imei={IMEI}&x=1".encode())[:-4], "zlib", id="zlib-no-adler"),
])
def test_truncated_stream_gives_what_it_held_and_is_noted(packed: bytes, layer: str) -> None:
    fields = _fields(packed)
    assert fields[0][:2] == ("opaque", "body") and fields[0][2].startswith(layer)
    assert ("body", "body.form.imei", IMEI) in fields


# --- media ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "mime"), [pytest.param(*v, id=k) for k, v in MEDIA.items()])
def test_whole_body_media_is_sniffed(data: bytes, mime: str) -> None:
    assert bodies.sniff_media(data) == mime
    assert _fields(data, "application/octet-stream") == [("media", "body", mime)]


@pytest.mark.parametrize("data", [
    pytest.param(b"RIFF\x24\x08\x00\x00AVI LIST", id="riff-avi"),
    pytest.param(b"\xff\xd8", id="jpeg-too-short"),
    pytest.param(b"\x00\x00\x00\x18ftypisom", id="mp4-video"),
    pytest.param(DOC, id="json"),
])
def test_not_media(data: bytes) -> None:
    assert bodies.sniff_media(data) is None


# --- multipart -----------------------------------------------------------------------------

BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
UPLOAD = multipart(
    BOUNDARY,
    (form_part("imei"), IMEI.encode()),
    (form_part("meta", ctype="application/json"), DOC),
    (form_part("voice", f"{IMEI}_0001.amr", "application/octet-stream"), AMR),
    (form_part("photo", "avatar.jpg", "image/jpeg"), JPEG),
    (form_part("log", "log.txt.gz", "application/gzip"), gzip.compress(b"child: " +
                                                                       CHILD_NAME.encode())),
)


@pytest.mark.parametrize("content_type", [
    pytest.param(f"multipart/form-data; boundary={BOUNDARY}", id="declared"),
    pytest.param(f'multipart/form-data; boundary="{BOUNDARY}"', id="quoted-boundary"),
    pytest.param("application/octet-stream", id="sniffed"),
])
def test_multipart_each_part(content_type: str) -> None:
    assert _with_chain(UPLOAD, content_type) == [
        ("body.multipart.imei", IMEI, ()),
        ("body.multipart.meta.json.imei", IMEI, ()),
        ("body.multipart.meta.json.name", CHILD_NAME, ()),
        ("body.multipart.voice.filename", f"{IMEI}_0001.amr", ()),
        ("body.multipart.voice", "audio/amr", ()),
        ("body.multipart.photo.filename", "avatar.jpg", ()),
        ("body.multipart.photo", "image/jpeg", ()),
        ("body.multipart.log.filename", "log.txt.gz", ()),
        ("body.multipart.log", f"child: {CHILD_NAME}", ("gzip",)),
    ]
    media = [f for f in fields_from_bytes(UPLOAD, "body", "body", content_type=content_type)
             if f.location == "media"]
    assert [f.path for f in media] == ["body.multipart.voice", "body.multipart.photo"]


def test_a_bomb_in_one_part_leaves_the_other_parts_read() -> None:
    body = multipart("b1", (form_part("a", "a.gz"), gzip.compress(bytes(8 * 1024 * 1024))),
                     (form_part("imei"), IMEI.encode()))
    assert _fields(body, "multipart/form-data; boundary=b1") == [
        ("body", "body.multipart.a.filename", "a.gz"),
        ("opaque", "body.multipart.a", "gzip ratio over 100:1 (decompression bomb)"),
        ("body", "body.multipart.imei", IMEI),
    ]


def test_multipart_rfc5987_filename_and_unnamed_part() -> None:
    body = multipart("b1", ({"Content-Disposition":
                             "form-data; name=\"f\"; filename*=UTF-8''%E5%B0%8F%E6%98%8E.jpg"},
                            JPEG), ({}, b"hello"))
    assert _fields(body, "multipart/form-data; boundary=b1") == [
        ("body", "body.multipart.f.filename", "小明.jpg"),
        ("media", "body.multipart.f", "image/jpeg"),
        ("body", "body.multipart.part1", "hello"),
    ]


# --- XML -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("xml", "expected"), [
    pytest.param(f'<req v="2"><dev imei="{IMEI}"><name>{CHILD_NAME}</name></dev></req>', [
        ("body.xml.req.@v", "2"), ("body.xml.req.dev.@imei", IMEI),
        ("body.xml.req.dev.name", CHILD_NAME),
    ], id="elements-and-attributes"),
    pytest.param('<?xml version="1.0"?><s:Envelope xmlns:s="urn:x"><s:Body><p:loc '
                 f'xmlns:p="urn:p" p:lat="{LAT}">{LON}</p:loc></s:Body></s:Envelope>', [
        ("body.xml.Envelope.Body.loc.@lat", str(LAT)),
        ("body.xml.Envelope.Body.loc", str(LON)),
    ], id="namespaces-dropped"),
    pytest.param("<a><b>1</b><b>2</b></a>", [("body.xml.a.b", "1"), ("body.xml.a.b", "2")],
                 id="repeated-siblings-share-a-path"),
    pytest.param("<a><b>unclosed</a>", [("body.text", "<a><b>unclosed</a>")],
                 id="broken-xml-kept-as-text"),
])
def test_xml(xml: str, expected: list) -> None:
    assert [(p, v) for _, p, v in _fields(xml.encode(), "text/xml")] == expected


def test_xml_entities_are_never_expanded() -> None:
    lol = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
           b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>')
    assert _fields(lol, "application/xml") == [
        ("opaque", "body", "XML with entity declarations, not expanded"),
    ]


# --- protobuf ------------------------------------------------------------------------------

PB = (pb(1, IMEI) + pb(2, pb(1, 87) + pb(2, CHILD_NAME)) + pb(3, double_bits(LAT), 1)
      + pb(4, float_bits(LON), 5) + pb(5, "a1b2") + pb(5, "c3d4") + pb(6, -1)
      + pb(7, b"\xff\xfe\x00") + pb(8, JPEG))
PB_FIELDS = [
    ("body", "body.pb.1", IMEI),
    ("body", "body.pb.2.1", "87"),
    ("body", "body.pb.2.2", CHILD_NAME),
    ("body", "body.pb.3", str(double_bits(LAT))),
    ("body", "body.pb.3", str(LAT)),
    ("body", "body.pb.4", str(float_bits(LON))),
    ("body", "body.pb.4", str(LON)),
    ("body", "body.pb.5", "a1b2"),
    ("body", "body.pb.5", "c3d4"),
    ("body", "body.pb.6", "-1"),
    ("media", "body.pb.8", "image/jpeg"),
]


@pytest.mark.parametrize("content_type", ["application/x-protobuf", "", "application/grpc"])
def test_protobuf_wire_walk(content_type: str) -> None:
    data = b"\x00" + struct.pack(">I", len(PB)) + PB if "grpc" in content_type else PB
    assert _fields(data, content_type) == PB_FIELDS


def test_grpc_compressed_frame() -> None:
    packed = gzip.compress(PB)
    data = b"\x01" + struct.pack(">I", len(packed)) + packed
    assert _fields(data, "application/grpc") == PB_FIELDS


@pytest.mark.parametrize("data", [
    pytest.param(pb(1, IMEI)[:-1], id="truncated-string"),
    pytest.param(b"\x00\x01", id="field-zero"),
    pytest.param(b"\x0b\x01", id="group-wire-type"),
    pytest.param(b"\x08" + b"\xff" * 11, id="varint-too-long"),
])
def test_not_protobuf(data: bytes) -> None:
    assert bodies.pb_parse(data) is None


def test_protobuf_nesting_deeper_than_the_limit_is_cut_not_crashed() -> None:
    msg = pb(1, IMEI)
    for _ in range(200):
        msg = pb(1, msg + pb(2, 1))
    fields = fields_from_bytes(msg, "body", "body", content_type="application/x-protobuf")
    assert all(f.path.count(".") <= bodies.MAX_TREE_DEPTH + 3 for f in fields)


# --- msgpack and CBOR -------------------------------------------------------------------

TREE = {"dev": {"imei": IMEI, 3: [LAT, LON]}, "name": CHILD_NAME, "on": True, "x": None,
        "blob": gzip.compress(DOC)}


@pytest.mark.parametrize(("data", "content_type", "fmt"), [
    pytest.param(msgpack.packb(TREE), "application/msgpack", "msgpack", id="msgpack"),
    pytest.param(msgpack.packb(TREE), "", "msgpack", id="msgpack-sniffed"),
    pytest.param(cbor2.dumps(TREE), "application/cbor", "cbor", id="cbor"),
    pytest.param(cbor2.dumps(TREE), "", "cbor", id="cbor-sniffed"),
    pytest.param(cbor2.dumps(cbor2.CBORTag(55799, TREE)), "", "cbor", id="cbor-self-describe"),
])
def test_msgpack_and_cbor(data: bytes, content_type: str, fmt: str) -> None:
    assert _with_chain(data, content_type) == [
        (f"body.{fmt}.dev.imei", IMEI, ()),
        (f"body.{fmt}.dev.3.0", str(LAT), ()),
        (f"body.{fmt}.dev.3.1", str(LON), ()),
        (f"body.{fmt}.name", CHILD_NAME, ()),
        (f"body.{fmt}.blob.json.imei", IMEI, ("gzip",)),
        (f"body.{fmt}.blob.json.name", CHILD_NAME, ("gzip",)),
    ]


# --- text and unknown binary -------------------------------------------------------------

@pytest.mark.parametrize(("data", "content_type", "expected"), [
    pytest.param(f"imei={IMEI}&name=Wang+Xiaoming".encode(), "", [
        ("body", "body.form.imei", IMEI), ("body", "body.form.name", CHILD_NAME),
    ], id="form-sniffed"),
    pytest.param("孩子姓名:王小明".encode("gbk"), "text/plain", [
        ("body", "body.text", "孩子姓名:王小明"),
    ], id="gbk-text"),
    pytest.param(b"\x00\x00\xde\xad" + IMEI.encode() + b"\x00\xbe\xef", "", [
        ("body", "body.strings", IMEI),
        ("opaque", "body", "binary data of 22 bytes in no known format"),
    ], id="unknown-binary-strings"),
    pytest.param(b"", "application/json", [], id="empty"),
])
def test_text_and_unknown(data: bytes, content_type: str, expected: list) -> None:
    assert _fields(data, content_type) == expected


def test_strict_mode_needs_text_in_binary() -> None:
    digest = bytes.fromhex("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")
    assert fields_from_bytes(digest, "v", "query", strict=True) == []
    assert [f.value for f in fields_from_bytes(pb(1, IMEI) + pb(2, 5), "v", "query",
                                               strict=True)] == [IMEI, "5"]


def test_payload_is_cut_at_max_bytes_and_noted() -> None:
    data = b"a" * (bodies.MAX_BYTES + 10)
    fields = fields_from_bytes(data, "payload", "payload")
    assert fields[-1].location == bodies.OPAQUE
    assert len(fields[0].value) == bodies.MAX_BYTES


def test_many_fields_are_cut_and_noted() -> None:
    data = b"".join(pb(1, 1) for _ in range(MAX_FIELDS // 2)) * 3
    fields = fields_from_bytes(data, "body", "body", content_type="application/x-protobuf")
    assert len(fields) == MAX_FIELDS + 1
    assert fields[-2] == Field("body", "body.pb.1", "1")
    assert fields[-1] == Field("opaque", "body", f"more than {MAX_FIELDS} fields, the rest "
                               "not read")


# --- hostile input -------------------------------------------------------------------------

CTYPES = ["", "application/json", "application/x-www-form-urlencoded", "text/xml",
          "multipart/form-data; boundary=x", "application/x-protobuf", "application/grpc",
          "application/msgpack", "application/cbor"]
SEEDS = [b"", b"\x1f\x8b\x08\x00", b"\x28\xb5\x2f\xfd", b"\x78\x9c", b"--x\r\n", b"<a>",
         b"{", b"\x0a\x05", b"\x82", b"\xa1", b"\xd9\xd9\xf7", b"#!AMR\n", b"RIFF",
         b"\xd8\x1c\x82", b"\x82\xd8\x1c\x81\x00\xd8\x1d\x00"]


@settings(max_examples=200, deadline=None)
@given(seed=st.sampled_from(SEEDS), data=st.binary(max_size=512),
       content_type=st.sampled_from(CTYPES),
       coding=st.sampled_from(["", "gzip", "br", "deflate", "zstd", "gzip, br", "x, y"]))
def test_any_bytes_never_raise_and_stay_bounded(seed: bytes, data: bytes, content_type: str,
                                                coding: str) -> None:
    fields = fields_from_bytes(seed + data, "payload", "payload", content_type=content_type,
                               content_encoding=coding)
    assert len(fields) <= MAX_FIELDS + 2
    assert all(isinstance(f.value, str) for f in fields)
    assert sum(len(f.value) for f in fields) <= 16 * (len(seed + data) + 64)


# --- work budgets: hand-made bombs, each bounded by the budget itself ----------------------

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


def test_the_cbor_bomb_is_a_few_hundred_bytes_for_2_to_the_40_leaves() -> None:
    bomb = cbor_shared_bomb(40)
    decoded = cbor2.loads(bomb)
    assert len(bomb) < 300 and decoded[0] is decoded[1]  # cbor2 builds a DAG, not a tree


def _msgpack_nested(depth: int) -> bytes:
    return b"\x91" * depth + msgpack.packb(IMEI)


def _pb_nested(depth: int) -> bytes:
    msg = pb(2, IMEI)
    for _ in range(depth):
        msg = pb(1, msg)
    return msg


def _shared_text(size: int, uses: int) -> bytes:
    """One text of ``size`` characters, shared, then referenced ``uses`` times."""
    return (cbor_uint(uses + 1, 4) + SHAREABLE + cbor_uint(size, 3) + b"k" * size
            + (SHARED + cbor_uint(0)) * uses)


WORK = "work budget used up"
BOMB_CASES = [
    pytest.param(cbor_shared_bomb(40), "application/cbor", "CBOR document expands to more "
                 "than", id="cbor-shared-2**40-nulls"),
    pytest.param(cbor_shared_bomb(12, fan_out=16), "application/cbor",
                 "CBOR document expands to more than", id="cbor-shared-fan-out-16"),
    pytest.param(SHAREABLE + b"\x82\x01" + SHARED + b"\x00", "application/cbor", "a cycle",
                 id="cbor-shared-cycle"),
    pytest.param(_shared_text(4096, 20_000), "application/cbor", WORK,
                 id="cbor-one-text-shared-20000-times"),
    pytest.param(b"[" + b"[]," * 1_300_000 + b"[]]", "application/json", WORK,
                 id="json-1.3M-empty-arrays"),
    pytest.param(b"[" + b'{"a":[[]]},' * 350_000 + b"0]", "application/json", WORK,
                 id="json-350k-objects-of-nested-arrays"),
    pytest.param(b"<a>" + b"<b/>" * 1_000_000 + b"</a>", "text/xml", WORK,
                 id="xml-1M-empty-elements"),
    pytest.param(b"&".join([b"k=v"] * 1_000_000), "application/x-www-form-urlencoded",
                 "more than 20000 fields", id="form-1M-pairs"),
    pytest.param(msgpack.packb([None] * 1_200_000), "application/msgpack", WORK,
                 id="msgpack-1.2M-nils"),
    pytest.param(_msgpack_nested(1000), "application/msgpack", "nested more than 64 deep",
                 id="msgpack-1000-deep"),
    pytest.param(_msgpack_nested(100_000), "application/msgpack", "in no known format",
                 id="msgpack-past-the-unpacker-stack"),
    pytest.param(_pb_nested(5000), "application/x-protobuf", "nested more than 64 deep",
                 id="protobuf-5000-deep"),
    pytest.param(pb(1, b"") * 1_000_000, "application/x-protobuf", "more than 20000 entries",
                 id="protobuf-1M-empty-fields"),
]


@pytest.mark.parametrize(("data", "content_type", "reason"), BOMB_CASES)
def test_a_bomb_ends_opaque_with_its_reason(data: bytes, content_type: str,
                                            reason: str) -> None:
    """Each bomb ends because the work it may do is bounded, not because a clock ran out:
    what was read stays within the budget and the limit is named."""
    with bodies.message_budget() as budget:
        fields = fields_from_bytes(data, "body", "body", content_type=content_type)
    opaque = [f.value for f in fields if f.location == bodies.OPAQUE]
    assert any(reason in o for o in opaque), opaque
    assert len(fields) <= MAX_FIELDS + 2
    assert budget.work >= -bodies.MAX_BYTES  # overspent by at most one last charge


@pytest.mark.parametrize("data", [p.values[0] for p in BOMB_CASES[:5]],
                         ids=[p.id for p in BOMB_CASES[:5]])
def test_a_bomb_in_one_part_leaves_the_parts_after_it_read(data: bytes) -> None:
    """A part reads with a share of the message's budget (half of what is left): a bomb
    spends its share and is noted, and the parts before and after it are read."""
    body = multipart("b1", (form_part("before"), IMEI.encode()),
                     (form_part("bomb", "x.cbor", "application/cbor"), data),
                     (form_part("after"), CHILD_NAME.encode()))
    fields = _fields(body, "multipart/form-data; boundary=b1")
    assert fields[0] == ("body", "body.multipart.before", IMEI)
    assert fields[-1] == ("body", "body.multipart.after", CHILD_NAME)
    assert ("body", "body.multipart.bomb.filename", "x.cbor") in fields
    assert any(loc == bodies.OPAQUE and path.startswith("body.multipart.bomb")
               for loc, path, _ in fields)


def test_shared_values_are_read_in_each_place_within_the_budget() -> None:
    shared = {"imei": IMEI}
    data = cbor2.dumps([shared, shared, {"again": shared}], value_sharing=True)
    assert SHARED in data
    assert _fields(data, "application/cbor") == [
        ("body", "body.cbor.0.imei", IMEI), ("body", "body.cbor.1.imei", IMEI),
        ("body", "body.cbor.2.again.imei", IMEI)]


@pytest.mark.parametrize(("levels", "fan_out"), [(1, 2), (5, 2), (10, 2), (4, 5), (3, 16)])
def test_cbor_nodes_counts_every_use_of_a_shared_value(levels: int, fan_out: int) -> None:
    nodes = expanded_nodes(levels, fan_out)
    assert bodies.cbor_nodes(cbor_shared_bomb(levels, fan_out), nodes, "p") == nodes
    with pytest.raises(bodies.Limit, match="expands to more than"):
        bodies.cbor_nodes(cbor_shared_bomb(levels, fan_out), nodes - 1, "p")


def _tree_nodes(doc: object) -> int:
    """Nodes of a decoded document as ``cbor_nodes`` counts them: containers, keys, leaves
    (a tag is not a node of its own)."""
    if isinstance(doc, cbor2.CBORTag):
        return _tree_nodes(doc.value)
    if isinstance(doc, Mapping):  # cbor2 gives a frozendict inside a tag
        return 1 + sum(_tree_nodes(k) + _tree_nodes(v) for k, v in doc.items())
    if isinstance(doc, list | tuple):
        return 1 + sum(_tree_nodes(v) for v in doc)
    return 1


CBOR_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=5)
    | st.builds(cbor2.CBORTag, st.integers(1000, 2000), inner),
    max_leaves=40)


@settings(max_examples=200, deadline=None)
@given(doc=CBOR_DOCS, uses=st.integers(1, 6), sharing=st.booleans())
def test_cbor_nodes_is_the_decoded_tree_with_each_shared_use_counted(
        doc: object, uses: int, sharing: bool) -> None:
    """Whatever cbor2 writes, with or without value sharing, the count read from the bytes
    is the size of the tree the walk visits: a repeated value costs each time it is used."""
    data = cbor2.dumps([doc] * uses, value_sharing=sharing)
    assert bodies.cbor_nodes(data, 10**9, "p") == _tree_nodes(cbor2.loads(data))


@settings(max_examples=100, deadline=None)
@given(levels=st.integers(1, 200), fan_out=st.integers(2, 9),
       leaf=st.sampled_from([b"\xf6", b"\x64imei", cbor_uint(8, 2) + b"\x01" * 8]),
       ctype=st.sampled_from(["application/cbor", ""]))
def test_any_shared_cbor_bomb_ends_within_the_budget(levels: int, fan_out: int, leaf: bytes,
                                                     ctype: str) -> None:
    """Bounded by construction: a document is read only when its expansion fits the budget,
    so the walk is at most MAX_WORK / NODE_COST nodes, whatever the levels and fan-out."""
    with bodies.message_budget() as budget:
        fields = fields_from_bytes(cbor_shared_bomb(levels, fan_out, leaf), "body", "body",
                                   content_type=ctype)
    nodes = expanded_nodes(levels, fan_out)
    if ctype and nodes * bodies.NODE_COST < bodies.MAX_WORK // 4 and leaf == b"\xf6":
        assert fields == []  # small enough: read whole, and nulls are not values
    assert len(fields) <= MAX_FIELDS + 2
    assert budget.work >= -bodies.MAX_BYTES


@settings(max_examples=100, deadline=None)
@given(depth=st.integers(1, 3000), fmt=st.sampled_from(["msgpack", "protobuf", "json"]))
def test_any_nesting_depth_ends_bounded(depth: int, fmt: str) -> None:
    data, ctype = {
        "msgpack": (_msgpack_nested(depth), "application/msgpack"),
        "protobuf": (_pb_nested(depth), "application/x-protobuf"),
        "json": (b"[" * depth + json.dumps(IMEI).encode() + b"]" * depth, "application/json"),
    }[fmt]
    with bodies.message_budget() as budget:
        fields = fields_from_bytes(data, "body", "body", content_type=ctype)
    if depth < bodies.MAX_TREE_DEPTH - 1:
        assert [f.value for f in fields] == [IMEI]
    else:  # cut at the walk's depth, or past msgpack's own stack read as (GB18030) text
        assert any(f.location == bodies.OPAQUE or IMEI in f.value for f in fields)
    assert budget.work > 0


FAN_OUT = b"[" + b"[]," * 1_300_000 + b"[]]"


@pytest.mark.parametrize("bombs", [1, 2, 10])
def test_one_message_one_budget_shared_out_by_halves(bombs: int) -> None:
    """Payloads read inside one ``message_budget`` draw on it together, each on half of
    what is left: bombs one after another spend at most the message's budget between
    them, and a normal payload after them is still read whole."""
    with bodies.message_budget() as budget:
        for _ in range(bombs):
            first = fields_from_bytes(FAN_OUT, "a", "body", content_type="application/json")
            assert any(WORK in f.value for f in first if f.location == bodies.OPAQUE)
        spent = bodies.MAX_WORK - budget.work
        second = fields_from_bytes(DOC, "b", "body")
    assert [f.value for f in second] == [IMEI, CHILD_NAME]
    assert bodies.MAX_WORK * (1 - 0.5 ** bombs) <= spent <= bodies.MAX_WORK


def test_what_one_part_spent_is_gone_for_the_next() -> None:
    with bodies.message_budget() as budget:
        budget.spend(bodies.MAX_WORK - 100, "header")
        fields = fields_from_bytes(DOC, "b", "body")
    assert [f.location for f in fields] == [bodies.OPAQUE]
    assert WORK in fields[0].value
    assert [f.value for f in fields_from_bytes(DOC, "b", "body")] == [IMEI, CHILD_NAME]


LONG_KEY = "k" * (1 << 20)


@pytest.mark.parametrize(("data", "content_type"), [
    pytest.param(json.dumps({LONG_KEY: [IMEI] * 1500}).encode(), "application/json",
                 id="json"),
    pytest.param(msgpack.packb({LONG_KEY: [IMEI] * 1500}), "application/msgpack",
                 id="msgpack"),
    pytest.param(cbor2.dumps({LONG_KEY: [IMEI] * 1500}), "application/cbor", id="cbor"),
    pytest.param(f"<a><{LONG_KEY}>{IMEI}</{LONG_KEY}></a>".encode(), "text/xml", id="xml"),
    pytest.param(f"{LONG_KEY}={IMEI}".encode(), "application/x-www-form-urlencoded",
                 id="form"),
    pytest.param(multipart("b1", (form_part(LONG_KEY), IMEI.encode())),
                 "multipart/form-data; boundary=b1", id="multipart"),
])
def test_a_long_key_is_shortened_in_every_path_below_it(data: bytes,
                                                        content_type: str) -> None:
    """A 1 MB key over 1,500 leaves: each leaf's path keeps the key's start, its length
    and its CRC-32, so the paths hold kilobytes, not 1.5 GB, and the values are all read."""
    fields = fields_from_bytes(data, "body", "body", content_type=content_type)
    values = [f for f in fields if f.location == "body"]
    assert values and all(f.value == IMEI for f in values)
    marker = f"…[{len(LONG_KEY)} characters, crc32 {zlib.crc32(LONG_KEY.encode()):08x}]"
    assert all(marker in f.path and len(f.path) < 2 * bodies.MAX_SEGMENT for f in values)


@pytest.mark.parametrize(("keys", "distinct"), [
    pytest.param(["a" * 300, "a" * 300 + "b"], 2, id="same-start-other-key"),
    pytest.param(["a" * bodies.MAX_SEGMENT, "b"], 2, id="at-the-limit-kept-whole"),
])
def test_shortened_keys_stay_distinct(keys: list[str], distinct: int) -> None:
    fields = fields_from_bytes(json.dumps(dict.fromkeys(keys, IMEI)).encode(), "b", "body")
    assert len({f.path for f in fields}) == distinct
    assert f"b.json.{'a' * bodies.MAX_SEGMENT}" in {f.path for f in fields} \
        or all("…[" in f.path for f in fields)
