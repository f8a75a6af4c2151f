"""auditor/decode.py: layers peeled with their chain recorded, and limits that hold."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import zlib
from urllib.parse import quote

import brotli
import msgpack
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import decode, limits
from auditor.data import load_sdks
from auditor.model import Field
from auditor.pipeline import Pipeline
from tests.factories import CHILD_NAME, IMEI, profile, tx

# A document whose standard base64 contains "+" or "/", so url-safe differs from it.
DOC = json.dumps({"imei": IMEI, "lat": 39.98312, "note": "??>>~~"}).encode()
STD = base64.b64encode(DOC).decode()
URLSAFE = base64.urlsafe_b64encode(DOC).decode()


def _derived(value: str, location: str = "query", path: str = "query.d") -> list[Field]:
    out = decode.expand([Field(location, path, value)])
    assert out[0] == Field(location, path, value)  # the original always comes first
    return out[1:]


def test_std_and_urlsafe_fixtures_differ() -> None:
    assert STD != URLSAFE and ("+" in STD or "/" in STD)


@pytest.mark.parametrize("encoded", [
    pytest.param(STD, id="std"),
    pytest.param(URLSAFE, id="url-safe"),
    pytest.param(URLSAFE.rstrip("="), id="url-safe-unpadded"),
    pytest.param(STD.rstrip("="), id="std-unpadded"),
])
def test_base64_json_document(encoded: str) -> None:
    assert [(f.location, f.path, f.value, f.encoding) for f in _derived(encoded)] == [
        ("query", "query.d.base64.imei", IMEI, ("base64", "json")),
        ("query", "query.d.base64.lat", "39.98312", ("base64", "json")),
        ("query", "query.d.base64.note", "??>>~~", ("base64", "json")),
    ]


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(base64.b64encode(IMEI.encode()).decode(),
                 [("query.d.base64", IMEI, ("base64",))], id="base64-text"),
    pytest.param(f"imei%3D{IMEI}%26x%3D1",
                 [("query.d.url", f"imei={IMEI}&x=1", ("url",))], id="percent"),
    pytest.param("Wang%20Xiaoming", [("query.d.url", "Wang Xiaoming", ("url",))],
                 id="percent-space"),
    pytest.param(f"%7B%22imei%22%3A%22{IMEI}%22%7D",
                 [("query.d.url.imei", IMEI, ("url", "json"))], id="percent-json"),
    pytest.param(f'{{"imei": "{IMEI}", "loc": [39.98312]}}', [
        ("query.d.json.imei", IMEI, ("json",)), ("query.d.json.loc.0", "39.98312", ("json",)),
    ], id="json-in-a-string"),
    pytest.param(base64.b64encode(f"x%3D{IMEI}".encode()).decode(), [
        ("query.d.base64", f"x%3D{IMEI}", ("base64",)),
        ("query.d.base64.url", f"x={IMEI}", ("base64", "url")),
    ], id="base64-then-percent"),
])
def test_layers(value: str, expected: list) -> None:
    assert [(f.path, f.value, f.encoding) for f in _derived(value)] == expected


def test_chain_extends_the_parent_encoding() -> None:
    parent = Field("body", "body.json.d", base64.b64encode(IMEI.encode()).decode(), ("json",))
    (child,) = decode.expand([parent])[1:]
    assert child.encoding == ("json", "base64")
    assert child.location == "body"


@pytest.mark.parametrize("value", [
    pytest.param(hashlib.md5(IMEI.encode()).hexdigest(), id="md5-hex"),
    pytest.param(hashlib.sha256(IMEI.encode()).hexdigest().upper(), id="sha256-hex-upper"),
    pytest.param("123456789012345678", id="plain-digits"),
    pytest.param(IMEI, id="imei-digits"),
    pytest.param("abc", id="short"),
    pytest.param("aGVsbG8=", id="short-base64"),
    pytest.param(base64.b64encode(bytes(range(48))).decode(), id="binary-base64"),
    pytest.param(base64.b64encode(hashlib.sha256(b"x").digest()).decode(), id="digest-base64"),
    pytest.param("Wang Xiaoming", id="words"),
    pytest.param("100%", id="lone-percent"),
    pytest.param("[", id="lone-bracket"),
])
def test_not_decoded(value: str) -> None:
    assert _derived(value) == []


def test_base64_of_base64_stops_at_max_depth() -> None:
    value = "kidaudit depth probe"
    for _ in range(10):
        value = base64.b64encode(value.encode()).decode()
    derived = _derived(value)
    assert len(derived) == limits.MAX_LAYERS
    assert [len(f.encoding) for f in derived] == list(range(1, limits.MAX_LAYERS + 1))
    assert all(set(f.encoding) == {"base64"} for f in derived)


@pytest.mark.parametrize("count", [limits.MAX_DERIVED + 1, limits.MAX_DERIVED * 2])
def test_derived_count_limit_over_many_fields(count: int) -> None:
    fields = [Field("query", f"query.k{i}", base64.b64encode(b"hello world %d" % i).decode())
              for i in range(count)]
    out = decode.expand(fields)
    assert out[:1] == fields[:1]
    assert len(out) == count + limits.MAX_DERIVED


def test_derived_count_limit_inside_one_json_string() -> None:
    doc = json.dumps({f"k{i}": i for i in range(limits.MAX_DERIVED * 3)})
    assert len(doc) <= limits.MAX_VALUE
    assert len(_derived(doc, "body", "body.text")) == limits.MAX_DERIVED


def test_oversized_value_is_not_decoded() -> None:
    value = base64.b64encode(b"a" * limits.MAX_VALUE).decode()
    assert _derived(value) == []


# --- compression, hex, JWT, media, binary documents inside values -------------------------

def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jwt(header: dict, claims: dict) -> str:
    """A real HS256 JWS (RFC 7515 compact form): base64url, unpadded, signed."""
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    sig = hmac.new(b"k", signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(sig)}"


JWT = _jwt({"alg": "HS256", "typ": "JWT"}, {"sub": IMEI, "name": CHILD_NAME, "iat": 1764324900})
IMEI_DOC = json.dumps({"imei": IMEI}).encode()
IMEI_PB = b"\x0a\x0f" + IMEI.encode() + b"\x10\x57"


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(base64.b64encode(gzip.compress(IMEI_DOC)).decode(),
                 [("query.d.base64.imei", IMEI, ("base64", "gzip", "json"))], id="base64-gzip"),
    pytest.param(base64.b64encode(zlib.compress(IMEI_DOC)).decode(),
                 [("query.d.base64.imei", IMEI, ("base64", "zlib", "json"))], id="base64-zlib"),
    pytest.param(base64.b64encode(zstandard.ZstdCompressor().compress(IMEI_DOC)).decode(),
                 [("query.d.base64.imei", IMEI, ("base64", "zstd", "json"))], id="base64-zstd"),
    pytest.param(base64.b64encode(brotli.compress(IMEI_DOC)).decode(),
                 [("query.d.base64.imei", IMEI, ("base64", "brotli", "json"))],
                 id="base64-brotli"),
    pytest.param(base64.b64encode(zlib.compress(IMEI_DOC)[2:-4]).decode(),
                 [("query.d.base64.imei", IMEI, ("base64", "deflate", "json"))],
                 id="base64-raw-deflate"),
    pytest.param(gzip.compress(f"imei={IMEI}".encode()).hex(),
                 [("query.d.hex", f"imei={IMEI}", ("hex", "gzip"))], id="hex-gzip"),
    pytest.param(IMEI.encode().hex(), [("query.d.hex", IMEI, ("hex",))], id="hex-text"),
    pytest.param(CHILD_NAME.encode().hex().upper(),
                 [("query.d.hex", CHILD_NAME, ("hex",))], id="hex-upper"),
    pytest.param(JWT, [
        ("query.d.jwt.sub", IMEI, ("jwt", "json")),
        ("query.d.jwt.name", CHILD_NAME, ("jwt", "json")),
        ("query.d.jwt.iat", "1764324900", ("jwt", "json")),
    ], id="jwt"),
    pytest.param(base64.b64encode(IMEI_PB).decode(), [
        ("query.d.base64.pb.1", IMEI, ("base64",)), ("query.d.base64.pb.2", "87", ("base64",)),
    ], id="base64-protobuf"),
    pytest.param(base64.b64encode(msgpack.packb({"imei": IMEI})).decode(),
                 [("query.d.base64.msgpack.imei", IMEI, ("base64",))], id="base64-msgpack"),
    pytest.param(base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(40)).decode(),
                 [("query.d.base64", "image/jpeg", ("base64",))], id="base64-photo"),
])
def test_binary_layers(value: str, expected: list) -> None:
    assert [(f.path, f.value, f.encoding) for f in _derived(value)] == expected


def test_photo_in_base64_is_a_media_field() -> None:
    (f,) = _derived(base64.b64encode(b"#!AMR\n" + bytes(40)).decode(), "body", "body.json.v")
    assert (f.location, f.value) == ("media", "audio/amr")


def test_jwt_chain_extends_the_header_field() -> None:
    parent = Field("header", "header.authorization.bearer", JWT)
    derived = decode.expand([parent])[1:]
    assert derived[0] == Field("header", "header.authorization.bearer.jwt.sub", IMEI,
                               ("jwt", "json"))


@pytest.mark.parametrize("value", [
    pytest.param(_jwt({"kid": "1"}, {"sub": IMEI}), id="jwt-without-jose-header"),
    pytest.param("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", id="jwt-payload-not-json"),
    pytest.param("1f8b0800000000000003", id="hex-gzip-truncated-to-nothing"),
    pytest.param("deadbeefcafebabe", id="hex-binary"),
    pytest.param("deadbeefcafebabe1", id="odd-hex-not-base64"),
])
def test_binary_not_decoded(value: str) -> None:
    derived = _derived(value)
    assert all(f.value != value for f in derived)
    assert not [f for f in derived if f.path.endswith((".jwt", ".hex"))]


# --- limits: each one noted opaque, none raises --------------------------------------------

def test_gzip_bomb_in_base64_is_opaque() -> None:
    bomb = base64.b64encode(gzip.compress(bytes(50 * 1024 * 1024), compresslevel=9)).decode()
    assert len(bomb) <= limits.MAX_VALUE
    opaque: list[str] = []
    derived = decode.expand([Field("body", "body.json.blob", bomb)], opaque)[1:]
    assert derived == []
    assert len(opaque) == 1
    assert opaque[0].startswith("body.json.blob.base64: gzip ")
    assert "ratio" in opaque[0] or "output" in opaque[0]


def test_base64_forever_is_noted_at_max_depth() -> None:
    value = "kidaudit depth probe"
    for _ in range(20):
        value = base64.b64encode(value.encode()).decode()
    opaque: list[str] = []
    derived = decode.expand([Field("query", "query.d", value)], opaque)[1:]
    assert len(derived) == limits.MAX_LAYERS
    assert opaque == [f"{derived[-1].path}: more than {limits.MAX_LAYERS} layers, "
                      "the rest not decoded"]


def test_oversized_encoded_value_is_noted() -> None:
    value = base64.b64encode(b"a" * limits.MAX_VALUE).decode()
    opaque: list[str] = []
    decode.expand([Field("query", "query.d", value)], opaque)
    assert opaque == [f"query.d: value of {len(value)} characters, over {limits.MAX_VALUE}, "
                      "not decoded"]


def test_work_budget_per_message() -> None:
    text = (f"imei {IMEI} " * 50_000).encode()  # about 1 MB, compresses far past 100:1
    text = text[:limits.RATIO_FLOOR]
    packed = base64.b64encode(gzip.compress(text)).decode()
    fields = [Field("query", f"query.k{i}", packed) for i in range(40)]
    opaque: list[str] = []
    out = decode.expand(fields, opaque)
    decoded = [f for f in out if f.encoding == ("base64", "gzip")]
    assert 0 < len(decoded) < 40
    assert any("work budget" in o for o in opaque)


@pytest.mark.parametrize(("depth", "reason"), [
    pytest.param(100, "nested more than 64 deep, the rest not read", id="past-walk-limit"),
    pytest.param(50_000, "JSON nested too deep to parse", id="past-parser-limit"),
])
def test_deep_json_in_a_string_is_noted(depth: int, reason: str) -> None:
    opaque: list[str] = []
    decode.expand([Field("query", "query.d", "[" * depth + "1" + "]" * depth)], opaque)
    assert len(opaque) == 1 and opaque[0].endswith(reason)


def test_opaque_fields_from_extraction_are_collected_not_passed_on() -> None:
    fields = [Field("body", "body.text", "x"), Field(limits.OPAQUE, "body", "zstd too big")]
    opaque: list[str] = []
    assert decode.expand(fields, opaque) == fields[:1]
    assert opaque == ["body: zstd too big"]


def test_derived_count_limit_is_noted() -> None:
    fields = [Field("query", f"query.k{i}", base64.b64encode(b"hello world %d" % i).decode())
              for i in range(limits.MAX_DERIVED + 1)]
    opaque: list[str] = []
    decode.expand(fields, opaque)
    assert opaque == [f"*: more than {limits.MAX_DERIVED} decoded fields, the rest not decoded"]


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(
    st.text(max_size=400),
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=300).map(lambda b: base64.b64encode(gzip.compress(b)).decode()),
    st.binary(max_size=200).map(bytes.hex),
    st.binary(max_size=200).map(lambda b: f"eyJhbGciOiJub25lIn0.{_b64url(b)}.")))
def test_any_value_never_raises_and_stays_bounded(value: str) -> None:
    opaque: list[str] = []
    out = decode.expand([Field("query", "query.d", value)], opaque)
    assert out[0].value == value
    assert len(out) <= 1 + limits.MAX_DERIVED
    assert all(isinstance(f.value, str) and f.location != limits.OPAQUE for f in out)


# --- work budget: the message's, shared with extraction ------------------------------------

def _b64_json(value: str) -> str:
    """One wrap: the value inside a JSON document, the document in base64."""
    return base64.b64encode(json.dumps({"d": value}).encode()).decode()


BOMB_BYTES = 50 * 1024 * 1024
LAYER_BOMBS = {
    "gzip": lambda: gzip.compress(bytes(BOMB_BYTES), compresslevel=9),
    "zlib": lambda: zlib.compress(bytes(BOMB_BYTES), 9),
    "zstd": lambda: zstandard.ZstdCompressor(level=19).compress(bytes(BOMB_BYTES)),
    "brotli": lambda: brotli.compress(bytes(BOMB_BYTES), quality=11),
}


@pytest.mark.parametrize("layer", LAYER_BOMBS)
def test_a_compression_bomb_in_base64_beside_a_normal_field(layer: str) -> None:
    """A ratio past 100:1 stops the layer (opaque, named), and the next field of the same
    message is still decoded out of the budget that is left."""
    bomb = base64.b64encode(LAYER_BOMBS[layer]()).decode()
    plain = Field("query", "query.d", base64.b64encode(f"imei={IMEI}".encode()).decode())
    opaque: list[str] = []
    with limits.message_budget() as budget:
        out = decode.expand([Field("body", "body.json.blob", bomb), plain], opaque)
    assert [o.partition(": ")[0] for o in opaque] == ["body.json.blob.base64"]
    assert "ratio" in opaque[0] or "output" in opaque[0] or "no known format" in opaque[0]
    assert ("query.d.base64", f"imei={IMEI}") in [(f.path, f.value) for f in out]
    assert budget.work > 0


@pytest.mark.parametrize(("wraps", "fan_out"), [(30, 1), (3, 40), (2, 2000)])
def test_base64_in_json_in_base64_layers_end_bounded(wraps: int, fan_out: int) -> None:
    """Nested layers with fan-out: each level a JSON document of ``fan_out`` keys, each a
    base64 of the level below. Depth, derived-field and work limits end it, and say so."""
    value = json.dumps({"imei": IMEI})
    for _ in range(wraps):
        inner = base64.b64encode(value.encode()).decode()
        value = json.dumps({f"k{i}": inner for i in range(fan_out)})
    value = base64.b64encode(value.encode()).decode()
    opaque: list[str] = []
    with limits.message_budget() as budget:
        out = decode.expand([Field("query", "query.d", value)], opaque)
    assert len(out) <= 1 + limits.MAX_DERIVED
    assert opaque and budget.work > -limits.MAX_BYTES


def test_a_used_up_budget_passes_the_rest_on_undecoded_with_one_note() -> None:
    fields = [Field("query", f"query.k{i}", base64.b64encode(b"hello world %d" % i).decode())
              for i in range(50)]
    opaque: list[str] = []
    budget = limits.Budget(work=10 * limits.LAYER_COST)
    out = decode.expand(fields, opaque, budget)
    assert out[:1] == fields[:1] and [f for f in out if f.encoding == ()] == fields
    assert 0 < len(out) - len(fields) < 10
    assert len(opaque) == 1 and "work budget" in opaque[0]


def test_expand_draws_on_the_budget_extraction_used() -> None:
    """Inside one ``message_budget`` the layers get what the body's readers left."""
    value = base64.b64encode(b"hello world").decode()
    with limits.message_budget() as budget:
        budget.spend(limits.MAX_WORK, "body")
        opaque: list[str] = []
        out = decode.expand([Field("query", "query.d", value)], opaque)
    assert out == [Field("query", "query.d", value)]
    assert len(opaque) == 1 and "work budget" in opaque[0]


WRAPS = {
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
    "hex": lambda v: v.encode().hex(),
    "url": lambda v: quote(v, safe=""),
    "gzip+base64": lambda v: base64.b64encode(gzip.compress(v.encode(), mtime=0)).decode(),
    "json": lambda v: json.dumps({"d": v}),
}


@settings(max_examples=200, deadline=None)
@given(wraps=st.lists(st.sampled_from(sorted(WRAPS)), max_size=12),
       copies=st.integers(1, 30))
def test_any_stack_of_layers_ends_bounded(wraps: list[str], copies: int) -> None:
    """Any stack of encodings, many fields of it: bounded by depth, count and work by
    construction; found when it is no more than MAX_DEPTH - 1 layers (the last layer
    is the JSON document that holds the IMEI)."""
    value = json.dumps({"imei": IMEI})
    for wrap in wraps:
        value = WRAPS[wrap](value)
    fields = [Field("query", f"query.d{i}", value) for i in range(copies)]
    opaque: list[str] = []
    with limits.message_budget() as budget:
        out = decode.expand(fields, opaque)
    assert out[0] == fields[0]
    assert len(out) <= copies + limits.MAX_DERIVED
    assert budget.work > -limits.MAX_BYTES
    if len(wraps) < limits.MAX_LAYERS:
        assert IMEI in {f.value for f in out}


@pytest.mark.parametrize("name", ["q" * (1 << 20), "a." * 600 + "imei"])
def test_a_long_path_is_bounded_and_keeps_its_key(name: str) -> None:
    """A name read as it came (a 1 MB query name) makes a path of at most MAX_PATH, with
    the key at its end and the layers below it still under it."""
    value = base64.b64encode(IMEI.encode()).decode()
    out = decode.expand([Field("query", f"query.{name}", value)])
    assert [f.value for f in out] == [value, IMEI]
    assert all(len(f.path) <= limits.MAX_PATH for f in out)
    assert out[1].path == out[0].path + ".base64"
    assert out[0].path.endswith(name[-limits.MAX_PATH // 8:])


@pytest.mark.parametrize("body", [
    pytest.param(b"[" + b"[]," * 1_300_000 + b"[]]", id="json-fan-out"),
    pytest.param(gzip.compress(bytes(64 * 1024 * 1024)), id="gzip-bomb"),
])
def test_a_body_bomb_leaves_the_other_fields_layers_decoded(body: bytes) -> None:
    """Through the pipeline: the body spends at most its share of the message's budget,
    so a base64 header beside it is still decoded and its IMEI found there."""
    token = base64.b64encode(f"imei={IMEI}".encode()).decode()
    obs = Pipeline.for_profile(profile(), load_sdks()).observe(tx(
        body=body, headers=(("Content-Type", "application/json"), ("X-Token", token))))
    assert ("identifier.imei", "header.x-token.base64") in {
        (d.category, d.field) for d in obs.detections}
    assert any(o.startswith("body") for o in obs.opaque), obs.opaque


_JWT_TEXT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEFeyJkz.:%{[= \n-_/+\u0661\u0662", max_size=20)
       | st.sampled_from(["12345678", "1234567", "eyJa.b.", " eyJa.b.c", "3c5ab401", "aGVsbG8=",
                          "checkin", "Li Xiaoming", "3c:5a:b4:01:02:03", " aGVsbG8gd29y ",
                          "aGVsbG8gd29", "eyJhbGciOi", "a1b2c3d4e5", "41424344 ", " 41424344",
                          "aGVsbG8gd29ybGQ=", "%41%42", "[1]", "{}", _JWT_TEXT, "39.98279",
                          "1790000000200", "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668"]))
def test_a_value_told_undecodable_has_no_layer(value: str) -> None:
    """``expand`` skips a value ``_undecodable`` rules out without peeling it: only one in
    which ``_decodings`` finds no layer at all, whatever it holds."""
    if decode._undecodable(value):
        state = decode._State()
        assert list(decode._decodings(Field("body", "body.x", value), state)) == []
        assert state.opaque == []
