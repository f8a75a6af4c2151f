"""auditor/extract/bodies.py: the sniffer, and the limits every reader shares
(auditor/limits.py), through ``fields_from_bytes``. Each format has its own file
(tests/test_extract_<module>.py)."""

from __future__ import annotations

import json
import zlib

import cbor2
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import limits
from auditor.extract.bodies import fields_from_bytes
from auditor.extract.json_body import NestedTooDeep, parse_json, walk_json
from auditor.extract.reading import too_deep
from auditor.limits import MAX_FIELDS, OPAQUE
from auditor.model import Field
from tests.factories import CHILD_NAME, IMEI
from tests.wire import (
    JSON_BODY,
    SHAREABLE,
    SHARED,
    body_fields,
    cbor_shared_bomb,
    cbor_uint,
    form_part,
    multipart,
    pb,
)

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
    assert body_fields(data, content_type) == expected


def test_strict_mode_needs_text_in_binary() -> None:
    digest = bytes.fromhex("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")
    assert fields_from_bytes(digest, "v", "query", strict=True) == []
    assert [f.value for f in fields_from_bytes(pb(1, IMEI) + pb(2, 5), "v", "query",
                                               strict=True)] == [IMEI, "5"]


def test_payload_is_cut_at_max_bytes_and_noted() -> None:
    data = b"a" * (limits.MAX_BYTES + 10)
    fields = fields_from_bytes(data, "payload", "payload")
    assert fields[-1].location == OPAQUE
    assert len(fields[0].value) == limits.MAX_BYTES


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
    with limits.message_budget() as budget:
        fields = fields_from_bytes(data, "body", "body", content_type=content_type)
    opaque = [f.value for f in fields if f.location == OPAQUE]
    assert any(reason in o for o in opaque), opaque
    assert len(fields) <= MAX_FIELDS + 2
    assert budget.work >= -limits.MAX_BYTES  # overspent by at most one last charge


@pytest.mark.parametrize("data", [p.values[0] for p in BOMB_CASES[:5]],
                         ids=[p.id for p in BOMB_CASES[:5]])
def test_a_bomb_in_one_part_leaves_the_parts_after_it_read(data: bytes) -> None:
    """A part reads with a share of the message's budget (half of what is left): a bomb
    spends its share and is noted, and the parts before and after it are read."""
    body = multipart("b1", (form_part("before"), IMEI.encode()),
                     (form_part("bomb", "x.cbor", "application/cbor"), data),
                     (form_part("after"), CHILD_NAME.encode()))
    fields = body_fields(body, "multipart/form-data; boundary=b1")
    assert fields[0] == ("body", "body.multipart.before", IMEI)
    assert fields[-1] == ("body", "body.multipart.after", CHILD_NAME)
    assert ("body", "body.multipart.bomb.filename", "x.cbor") in fields
    assert any(loc == OPAQUE and path.startswith("body.multipart.bomb")
               for loc, path, _ in fields)



@settings(max_examples=100, deadline=None)
@given(depth=st.integers(1, 3000), fmt=st.sampled_from(["msgpack", "protobuf", "json"]))
def test_any_nesting_depth_ends_bounded(depth: int, fmt: str) -> None:
    data, ctype = {
        "msgpack": (_msgpack_nested(depth), "application/msgpack"),
        "protobuf": (_pb_nested(depth), "application/x-protobuf"),
        "json": (b"[" * depth + json.dumps(IMEI).encode() + b"]" * depth, "application/json"),
    }[fmt]
    with limits.message_budget() as budget:
        fields = fields_from_bytes(data, "body", "body", content_type=ctype)
    if depth < limits.MAX_TREE_DEPTH - 1:
        assert [f.value for f in fields] == [IMEI]
    else:  # cut at the walk's depth, or past msgpack's own stack read as (GB18030) text
        assert any(f.location == OPAQUE or IMEI in f.value for f in fields)
    assert budget.work > 0


FAN_OUT = b"[" + b"[]," * 1_300_000 + b"[]]"


@pytest.mark.parametrize("bombs", [1, 2, 10])
def test_one_message_one_budget_shared_out_by_halves(bombs: int) -> None:
    """Payloads read inside one ``message_budget`` draw on it together, each on half of
    what is left: bombs one after another spend at most the message's budget between
    them, and a normal payload after them is still read whole."""
    with limits.message_budget() as budget:
        for _ in range(bombs):
            first = fields_from_bytes(FAN_OUT, "a", "body", content_type="application/json")
            assert any(WORK in f.value for f in first if f.location == OPAQUE)
        spent = limits.MAX_WORK - budget.work
        second = fields_from_bytes(JSON_BODY, "b", "body")
    assert [f.value for f in second] == [IMEI, CHILD_NAME]
    assert limits.MAX_WORK * (1 - 0.5 ** bombs) <= spent <= limits.MAX_WORK


def test_what_one_part_spent_is_gone_for_the_next() -> None:
    with limits.message_budget() as budget:
        budget.spend(limits.MAX_WORK - 100, "header")
        fields = fields_from_bytes(JSON_BODY, "b", "body")
    assert [f.location for f in fields] == [OPAQUE]
    assert WORK in fields[0].value
    assert [f.value for f in fields_from_bytes(JSON_BODY, "b", "body")] == [IMEI, CHILD_NAME]


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
    assert all(marker in f.path and len(f.path) < 2 * limits.MAX_SEGMENT for f in values)


@pytest.mark.parametrize(("keys", "distinct"), [
    pytest.param(["a" * 300, "a" * 300 + "b"], 2, id="same-start-other-key"),
    pytest.param(["a" * limits.MAX_SEGMENT, "b"], 2, id="at-the-limit-kept-whole"),
])
def test_shortened_keys_stay_distinct(keys: list[str], distinct: int) -> None:
    fields = fields_from_bytes(json.dumps(dict.fromkeys(keys, IMEI)).encode(), "b", "body")
    assert len({f.path for f in fields}) == distinct
    assert f"b.json.{'a' * limits.MAX_SEGMENT}" in {f.path for f in fields} \
        or all("…[" in f.path for f in fields)


def _loads_outcome(call, text):
    try:
        return ("value", call(text))
    except json.JSONDecodeError as e:
        return ("error", e.msg, e.pos)
    except NestedTooDeep as e:
        return ("deep", str(e))


@pytest.mark.parametrize("text", [
    '{"lat": 39.98312, "n": 7, "big": 1e400, "s": "x", "t": true, "z": null}', "[]", "{}",
    ' {"a": [1, 2.50, -0]} ', "\ufeff{}", "{} {}", '{"a": 1} x', "NaN", "[Infinity]",
    '{"a": "\\ud800"}', '{"a": 1', '"unterminated', "", "   ", "[" * 5000 + "]" * 5000,
    '{"k": 1, "k": 2}', "0123", '"\u00e9\u4e2d"',
])
def test_parse_json_reads_as_json_loads_does(text):
    """``parse_json`` reuses one decoder: the same values, and the same errors at the same
    places, as ``json.loads(text, parse_float=str, parse_int=str)`` (BOM refused too)."""
    def reference(t):
        try:
            return json.loads(t, parse_float=str, parse_int=str)
        except RecursionError as e:
            raise NestedTooDeep("JSON nested too deep to parse") from e

    assert _loads_outcome(parse_json, text) == _loads_outcome(reference, text)
    assert _loads_outcome(parse_json, text) == _loads_outcome(parse_json, text)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8)
                    | st.floats(allow_nan=False),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                    max_leaves=20))
@settings(max_examples=200, deadline=None)
def test_parse_json_reads_any_document_as_json_loads_does(doc):
    text = json.dumps(doc)
    assert parse_json(text) == json.loads(text, parse_float=str, parse_int=str)


def _walked_a_generator_a_node(doc, prefix, budget, depth=0):
    """``walk_json`` as it was: one generator for every node, leaves too."""
    budget.work -= limits.NODE_COST
    if budget.work < 0:
        budget.spend(0, prefix)
    if depth > limits.MAX_TREE_DEPTH:
        yield too_deep(prefix, ())
        return
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _walked_a_generator_a_node(value, f"{prefix}.{limits.segment(key)}",
                                                  budget, depth + 1)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _walked_a_generator_a_node(value, f"{prefix}.{i}", budget, depth + 1)
    elif doc is not None and not isinstance(doc, bool):
        budget.spend(len(prefix), prefix)
        yield Field("body", prefix, str(doc), ())


def _walk_outcome(walk, budget, taken):
    """The fields a walk gave before it stopped (``taken`` of them at most, or a limit),
    and the budget it left."""
    got = []
    try:
        for f in walk:
            got.append(f)
            if len(got) == taken:
                break
    except limits.Limit as e:
        got.append(("limit", e.path, e.reason))
    return got, budget.work


_DOCS = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3)
                     | st.just("k" * 300),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=3) | st.just("K" * 300), inner,
                                       max_size=4), max_leaves=25)


@given(_DOCS, st.integers(0, 3000), st.integers(1, 30), st.integers(0, 66))
@settings(max_examples=400, deadline=None)
def test_walk_json_visits_and_charges_as_a_generator_a_node_did(doc, work, taken, depth):
    """Leaves visited in their parent's loop: the same fields, the same charges, the same
    limit at the same leaf, and nothing charged past the field a reader stopped at."""
    doc = json.loads(json.dumps(doc), parse_int=str, parse_float=str)
    for _ in range(depth):  # near and past the depth limit too
        doc = [doc]
    new, old = limits.Budget(work), limits.Budget(work)
    assert (_walk_outcome(walk_json(doc, "body.json", "body", (), budget=new), new, taken)
            == _walk_outcome(_walked_a_generator_a_node(doc, "body.json", old), old, taken))


@pytest.mark.parametrize("depth", range(limits.MAX_TREE_DEPTH - 2, limits.MAX_TREE_DEPTH + 3))
@pytest.mark.parametrize("inner", ["x", {"a": "x"}, ["x", None], {"b": ["x"]}, [True, "7"]])
def test_walk_json_stops_at_the_depth_limit_where_it_did(depth, inner):
    doc = inner
    for _ in range(depth):
        doc = [doc] if depth % 2 else {"k": doc}
    new, old = limits.Budget(), limits.Budget()
    assert (_walk_outcome(walk_json(doc, "body.json", "body", (), budget=new), new, 99)
            == _walk_outcome(_walked_a_generator_a_node(doc, "body.json", old), old, 99))
