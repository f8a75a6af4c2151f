"""Property tests (hypothesis) on the non-HTTP readers: any bytes in, no exception out,
bounded output. The HTTP, body and layer readers have theirs beside their unit tests
(test_extract_http.py, test_extract_bodies.py, test_decode.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor import limits
from auditor.extract.payload import (
    generic_fields,
    is_quic_initial,
    parse_client_hello,
    parse_dns,
    quic_crypto,
)
from auditor.extract.watchproto import FrameSplitter, parse_frame, payload_fields, tracker_fields
from auditor.sources.pcap import parse_http_request

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Bytes that look like the protocols often enough to reach deep code paths.
WATCHY = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda head, body: b"[" + head + b"*" + body + b"]",
              st.sampled_from([b"3G*8645360401*0010", b"SG*1234567890*00A0", b"CS*1*2",
                               b"ZJ*9*0005*0001"]),
              st.binary(max_size=300)),
    st.builds(lambda cmd, rest: cmd + rest,
              st.sampled_from([b"IWAP00", b"IWAP01", b"*HQ,", b"\x78\x78", b"S168#",
                               b"GET / HTTP/1.1\r\n", b"\x16\x03\x01"]),
              st.binary(max_size=300)),
)


@SETTINGS
@given(chunks=st.lists(WATCHY, max_size=8), limit=st.integers(16, 4096))
def test_frame_splitter_holds_at_most_its_limit(chunks: list[bytes], limit: int) -> None:
    splitter = FrameSplitter(limit=limit)
    for chunk in chunks:
        for frame in splitter.feed(chunk):
            assert frame.startswith(b"[") and frame.endswith(b"]")
        assert len(splitter.buffer) <= limit


@SETTINGS
@given(data=WATCHY, direction=st.sampled_from(["up", "down"]))
def test_watch_and_tracker_readers_never_raise(data: bytes, direction: str) -> None:
    frame = parse_frame(data)
    assert frame is None or isinstance(frame.device_id, str)
    fields = payload_fields(data, direction) + tracker_fields(data) + generic_fields(data)
    assert len(fields) <= 20_000
    assert all(isinstance(f.value, str) for f in fields)


@SETTINGS
@given(data=WATCHY)
def test_dns_tls_quic_and_http_parsers_never_raise(data: bytes) -> None:
    questions, answers = parse_dns(data)
    assert isinstance(questions, list) and isinstance(answers, list)
    hello = parse_client_hello(data)
    assert hello is None or isinstance(hello.sni, str)
    if is_quic_initial(data):
        assert isinstance(quic_crypto(data), list)
    parsed = parse_http_request(data, final=True)
    assert parsed is None or parsed[0] <= len(data)


@pytest.mark.parametrize("depth", [1, 50, 10_000])
def test_dns_name_compression_loops_are_bounded(depth: int) -> None:
    """A name whose pointer points at itself, nested ``depth`` times, must end."""
    header = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    loop = b"\xc0\x0c" * depth  # every label a pointer back to offset 12 (itself)
    questions, _ = parse_dns(header + loop + b"\x00\x01\x00\x01")
    assert len(questions) <= 1


def _shared_dag(levels: int, fan_out: int) -> bytes:
    """A CBOR array holding ``levels`` shared (tag 28) arrays, each of the next one and
    ``fan_out - 1`` references (tag 29) to it: fan_out ** levels leaves."""
    item = b"\xd8\x1c\xf6"
    for i in reversed(range(levels)):
        item = (b"\xd8\x1c" + bytes([0x98, fan_out]) + item
                + (b"\xd8\x1d" + bytes([0x18, i + 1])) * (fan_out - 1))
    return b"\x81" + item


RAW_BOMBS = st.one_of(
    st.builds(_shared_dag, st.integers(1, 120), st.integers(2, 40)),
    st.builds(lambda n, unit: b"[" + unit * n + b"0]", st.integers(0, 1_400_000),
              st.sampled_from([b"[],", b"{},", b'{"a":[]},', b"null,"])),
    st.builds(lambda n, tail: b"\x91" * n + tail, st.integers(0, 5000),
              st.sampled_from([b"\xc0", b"\xa5hello", b"\x91"])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=RAW_BOMBS, prefix=st.binary(max_size=4))
def test_raw_payload_bombs_end_within_one_budget(data: bytes, prefix: bytes) -> None:
    """Bounded by construction: whatever the shape, the readers stop where the message's
    budget does (overspent by at most one last charge), and the fields stay bounded."""
    with limits.message_budget() as budget:
        fields = generic_fields(prefix + data)
    assert budget.work >= -limits.MAX_BYTES
    assert len(fields) <= 20_002
    assert all(isinstance(f.value, str) for f in fields)
