"""auditor/extract/compression.py: compression layers sniffed and peeled within the
limits, each recorded in the encoding chain, never in the path."""

from __future__ import annotations

import gzip
import json
import zlib

import brotli
import pytest
import zstandard

from auditor import limits
from auditor.extract.bodies import fields_from_bytes
from auditor.limits import OPAQUE
from tests.factories import CHILD_NAME, IMEI
from tests.wire import JSON_BODY, body_chain, body_fields


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(("packed", "content_type", "chain"), [
    pytest.param(gzip.compress(JSON_BODY), "application/json", ("gzip",), id="gzip-undeclared"),
    pytest.param(zlib.compress(JSON_BODY), "", ("zlib",), id="zlib-sniffed"),
    pytest.param(zstandard.ZstdCompressor().compress(JSON_BODY), "", ("zstd",), id="zstd"),
    pytest.param(brotli.compress(JSON_BODY), "application/json", ("brotli",), id="brotli-no-magic"),
    pytest.param(_raw_deflate(JSON_BODY), "application/json", ("deflate",), id="raw-deflate"),
    pytest.param(gzip.compress(zlib.compress(JSON_BODY)), "", ("gzip", "zlib"), id="gzip-of-zlib"),
])
def test_compressed_body_is_peeled_with_layer_recorded(packed: bytes, content_type: str,
                                                       chain: tuple) -> None:
    assert body_chain(packed, content_type) == [
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
    opaque = [f for f in fields if f.location == OPAQUE]
    assert [(f.path, f.encoding) for f in opaque] == [("body", ())]
    assert opaque[0].value.startswith(layer)
    assert "ratio" in opaque[0].value or "output" in opaque[0].value
    assert all(len(f.value) <= limits.MAX_OUTPUT for f in fields)


def test_ratio_limit_spares_small_repetitive_documents() -> None:
    doc = json.dumps({"imei": IMEI, "pad": "0" * 200_000}).encode()
    assert ("body", "body.json.imei", IMEI) in body_fields(gzip.compress(doc))


@pytest.mark.parametrize(("packed", "layer"), [
    pytest.param(gzip.compress(f"imei={IMEI}&x=1".encode())[:-8], "gzip", id="gzip-no-trailer"),
    pytest.param(zlib.compress(f"imei={IMEI}&x=1".encode())[:-4], "zlib", id="zlib-no-adler"),
])
def test_truncated_stream_gives_what_it_held_and_is_noted(packed: bytes, layer: str) -> None:
    fields = body_fields(packed)
    assert fields[0][:2] == ("opaque", "body") and fields[0][2].startswith(layer)
    assert ("body", "body.form.imei", IMEI) in fields
