"""auditor/extract/tree.py: the leaves of msgpack and CBOR documents, declared or sniffed."""

from __future__ import annotations

import gzip

import cbor2
import msgpack
import pytest

from tests.factories import CHILD_NAME, IMEI, LAT, LON
from tests.wire import JSON_BODY, body_chain

TREE = {"dev": {"imei": IMEI, 3: [LAT, LON]}, "name": CHILD_NAME, "on": True, "x": None,
        "blob": gzip.compress(JSON_BODY)}


@pytest.mark.parametrize(("data", "content_type", "fmt"), [
    pytest.param(msgpack.packb(TREE), "application/msgpack", "msgpack", id="msgpack"),
    pytest.param(msgpack.packb(TREE), "", "msgpack", id="msgpack-sniffed"),
    pytest.param(cbor2.dumps(TREE), "application/cbor", "cbor", id="cbor"),
    pytest.param(cbor2.dumps(TREE), "", "cbor", id="cbor-sniffed"),
    pytest.param(cbor2.dumps(cbor2.CBORTag(55799, TREE)), "", "cbor", id="cbor-self-describe"),
])
def test_msgpack_and_cbor(data: bytes, content_type: str, fmt: str) -> None:
    assert body_chain(data, content_type) == [
        (f"body.{fmt}.dev.imei", IMEI, ()),
        (f"body.{fmt}.dev.3.0", str(LAT), ()),
        (f"body.{fmt}.dev.3.1", str(LON), ()),
        (f"body.{fmt}.name", CHILD_NAME, ()),
        (f"body.{fmt}.blob.json.imei", IMEI, ("gzip",)),
        (f"body.{fmt}.blob.json.name", CHILD_NAME, ("gzip",)),
    ]
