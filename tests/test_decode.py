"""auditor/decode.py: layers peeled with their chain recorded, and limits that hold."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from auditor import decode
from auditor.model import Field
from tests.factories import IMEI

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
    assert len(derived) == decode.MAX_DEPTH
    assert [len(f.encoding) for f in derived] == list(range(1, decode.MAX_DEPTH + 1))
    assert all(set(f.encoding) == {"base64"} for f in derived)


@pytest.mark.parametrize("count", [decode.MAX_DERIVED + 1, decode.MAX_DERIVED * 2])
def test_derived_count_limit_over_many_fields(count: int) -> None:
    fields = [Field("query", f"query.k{i}", base64.b64encode(b"hello world %d" % i).decode())
              for i in range(count)]
    out = decode.expand(fields)
    assert out[:1] == fields[:1]
    assert len(out) == count + decode.MAX_DERIVED


def test_derived_count_limit_inside_one_json_string() -> None:
    doc = json.dumps({f"k{i}": i for i in range(decode.MAX_DERIVED * 3)})
    assert len(doc) <= decode.MAX_VALUE
    assert len(_derived(doc, "body", "body.text")) == decode.MAX_DERIVED


def test_oversized_value_is_not_decoded() -> None:
    value = base64.b64encode(b"a" * decode.MAX_VALUE).decode()
    assert _derived(value) == []
