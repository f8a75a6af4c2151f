"""auditor/extract/protobuf.py: the schema-less wire walk and gRPC frames."""

from __future__ import annotations

import gzip
import struct

import pytest

from auditor import limits
from auditor.extract.bodies import fields_from_bytes
from auditor.extract.protobuf import pb_parse
from tests.factories import CHILD_NAME, IMEI, LAT, LON
from tests.wire import JPEG, body_fields, double_bits, float_bits, pb

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
    assert body_fields(data, content_type) == PB_FIELDS


def test_grpc_compressed_frame() -> None:
    packed = gzip.compress(PB)
    data = b"\x01" + struct.pack(">I", len(packed)) + packed
    assert body_fields(data, "application/grpc") == PB_FIELDS


@pytest.mark.parametrize("data", [
    pytest.param(pb(1, IMEI)[:-1], id="truncated-string"),
    pytest.param(b"\x00\x01", id="field-zero"),
    pytest.param(b"\x0b\x01", id="group-wire-type"),
    pytest.param(b"\x08" + b"\xff" * 11, id="varint-too-long"),
])
def test_not_protobuf(data: bytes) -> None:
    assert pb_parse(data) is None


def test_protobuf_nesting_deeper_than_the_limit_is_cut_not_crashed() -> None:
    msg = pb(1, IMEI)
    for _ in range(200):
        msg = pb(1, msg + pb(2, 1))
    fields = fields_from_bytes(msg, "body", "body", content_type="application/x-protobuf")
    assert all(f.path.count(".") <= limits.MAX_TREE_DEPTH + 3 for f in fields)
