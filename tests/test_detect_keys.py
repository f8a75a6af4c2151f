"""auditor/detect/keys.py: key names (English, pinyin, SDK abbreviations) and placeholders."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.detect import Detector
from auditor.detect.keys import (
    KEY_CONFIDENCE,
    KEY_LEXICON,
    LAT_KEYS,
    PLACEHOLDERS,
    by_key,
    is_placeholder,
    key_of,
    matches,
    tokens,
)
from auditor.model import Field, Profile
from tests.factories import tx


@pytest.mark.parametrize(("path", "key"), [
    ("body.json.dev.imei", "imei"), ("body.json.contacts.0.phone", "phone"),
    ("query.d.base64.json.did", "did"), ("header.x-device-id", "x-device-id"),
    ("body.text", ""), ("query.d.base64", "d"),
])
def test_key_of(path: str, key: str) -> None:
    assert key_of(path) == key


@pytest.mark.parametrize(("key", "entry"), [
    ("imei", "imei"), ("IMEI", "imei"), ("x-device-imei", "imei"), ("deviceImei", "deviceimei"),
    ("$identity_android_id", "identityandroidid"), ("$device_id", "deviceid"),
    ("X-Device-Id", "deviceid"), ("shouji", "shouji"), ("umid", "umid"), ("oaid", "oaid"),
    ("did", "did"), ("sn", "sn"), ("childName", "childname"),
    ("x", ""), ("x-did", "did"), ("version", ""), ("request_id", ""), ("session", ""),
])
def test_matches_lexicon(key: str, entry: str) -> None:
    assert matches(key, KEY_LEXICON) == entry


@pytest.mark.parametrize(("key", "hit"), [("lat", True), ("wd", True), ("flat", False),
                                          ("latitude", True), ("late", False)])
def test_short_keys_match_whole_only(key: str, hit: bool) -> None:
    assert bool(matches(key, LAT_KEYS)) is hit


def test_tokens_split_camel_case_and_separators() -> None:
    assert tokens("homeMobileCountryCode") == ("home", "mobile", "country", "code")
    assert tokens("x-device_id") == ("x", "device", "id")


@pytest.mark.parametrize("value", [
    "02:00:00:00:00:00", "00:00:00:00:00:00", "000000000000000", "unknown", "NULL", "0.0,0.0",
    "00000000-0000-0000-0000-000000000000", "9774d56d682e549c", "", "  ", "ffffffffffff", "-1",
])
def test_placeholders(value: str) -> None:
    assert is_placeholder(value)


def _placeholder_by_definition(value: str) -> bool:
    v = value.strip().lower()
    core = re.sub(r"[^a-z0-9]", "", v)
    return v in PLACEHOLDERS or (bool(core) and len(set(core)) == 1 and core[0] in "0f")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0fF1a-: .xX\u00a0\uff26", max_size=20) | st.text(max_size=20))
def test_placeholder_shortcut_agrees_with_the_definition(value: str) -> None:
    assert is_placeholder(value) == _placeholder_by_definition(value)


@pytest.mark.parametrize("value", ["3c:5a:b4:01:02:03", "864536040123455", "Li Mei", "0.5"])
def test_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


@pytest.mark.parametrize(("path", "value", "expected"), [
    pytest.param("b.android_id", "a81f3c9e0d2b7765", [("identifier.android_id",
                                                       "a81f3c9e0d2b7765")], id="android-id"),
    pytest.param("b.$device_id", "a81f3c9e0d2b7765", [("identifier.android_id",
                                                      "a81f3c9e0d2b7765")], id="sdk-device-id"),
    pytest.param("b.oaid", "6d9a1f0e-2b3c-4d5e-8f70-1a2b3c4d5e6f",
                 [("identifier.advertising", "6d9a1f0e-2b3c-4d5e-8f70-1a2b3c4d5e6f")], id="oaid"),
    pytest.param("b.idfa", "6D9A1F0E-2B3C-4D5E-8F70-1A2B3C4D5E6F",
                 [("identifier.advertising", "6D9A1F0E-2B3C-4D5E-8F70-1A2B3C4D5E6F")], id="idfa"),
    pytest.param("b.sn", "W9Q2B7700413", [("identifier.serial", "W9Q2B7700413")], id="serial"),
    pytest.param("b.imei", "86453604012345", [("identifier.imei", "86453604012345")],
                 id="imei-14-digits-without-check"),
    pytest.param("b.birthday", "2015-03-14", [("identity.birthdate", "2015-03-14")],
                 id="birthday"),
    pytest.param("b.shengri", "20150314", [("identity.birthdate", "20150314")], id="shengri"),
    pytest.param("b.xingming", "Wang Xiaoming", [("identity.name", "Wang Xiaoming")],
                 id="xingming"),
])
def test_by_key(path: str, value: str, expected: list) -> None:
    assert by_key(Field("body", path, value)) == expected


@pytest.mark.parametrize(("path", "value"), [
    pytest.param("b.request_id", "6d9a1f0e-2b3c-4d5e-8f70-1a2b3c4d5e6f", id="uuid-request-id"),
    pytest.param("b.oaid", "00000000-0000-0000-0000-000000000000", id="zero-oaid"),
    pytest.param("b.oaid", "not-a-uuid", id="oaid-wrong-shape"),
    pytest.param("b.android_id", "9774d56d682e549c", id="emulator-android-id"),
    pytest.param("b.imei", "unknown", id="placeholder"),
    pytest.param("b.sn", "12345", id="serial-too-short"),
    pytest.param("b.birthday", "tomorrow", id="not-a-date"),
    pytest.param("b.session", "a81f3c9e0d2b7765", id="hex-under-neutral-key"),
    pytest.param("b.xingming", "42", id="name-with-digits"),
])
def test_by_key_needs_the_shape(path: str, value: str) -> None:
    assert by_key(Field("body", path, value)) == []


def test_key_detections_are_the_weakest() -> None:
    (d,) = Detector(Profile()).detect(tx(), [Field("body", "body.json.oaid",
                                                   "6d9a1f0e-2b3c-4d5e-8f70-1a2b3c4d5e6f")])
    assert (d.method, d.confidence, d.profile_key) == ("key", KEY_CONFIDENCE, "")
