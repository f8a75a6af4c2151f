"""auditor/detect/patterns.py: unseeded personal data recognised by checksums and registries."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.detect import MEMO_PATH, MEMO_VALUE, Detector, patterns
from auditor.detect.keys import by_key
from auditor.detect.patterns import (
    CONFIDENCE,
    CONFIDENCE_WITH_KEY,
    FINDERS,
    _path_keys,
    _phones,
    find,
    is_iccid,
    is_imei,
    is_imsi,
    is_resident_id,
    luhn,
    may_find,
    path_keys,
)
from auditor.limits import MAX_PATH
from auditor.model import DEFAULT_REGION, Field, Profile
from tests.factories import OTHER_ICCID as ICCID
from tests.factories import OTHER_IMEI as IMEI
from tests.factories import tx

RESIDENT_ID = "440305201503140031"
PHONES = ("+8615012345672", "+8618612345673")


def _found(path: str, value: str) -> list[tuple[str, str]]:
    return [(category, v) for category, v, _ in find(Field("body", path, value))]


@pytest.mark.parametrize(("path", "value", "expected"), [
    pytest.param("b.x", IMEI, [("identifier.imei", IMEI)], id="imei"),
    pytest.param("b.x", f"[3G*{IMEI}*0009*LK]", [("identifier.imei", IMEI)], id="imei-in-frame"),
    pytest.param("b.x", ICCID, [("identifier.iccid", ICCID)], id="iccid"),
    pytest.param("b.x", ICCID + "F", [("identifier.iccid", ICCID + "F")], id="iccid-f-filler"),
    pytest.param("b.x", "460021234509876", [("identifier.imsi", "460021234509876")],
                 id="imsi-home-network"),
    pytest.param("b.imsi", "310260123456789", [("identifier.imsi", "310260123456789")],
                 id="imsi-elsewhere-with-key"),
    pytest.param("b.x", "8c:85:90:1a:2b:3c", [("identifier.mac", "8c:85:90:1a:2b:3c")], id="mac"),
    pytest.param("b.x", "8C-85-90-1A-2B-3C", [("identifier.mac", "8C-85-90-1A-2B-3C")],
                 id="mac-dashes"),
    pytest.param("b.mac", "8c85901a2b3c", [("identifier.mac", "8c85901a2b3c")],
                 id="bare-mac-with-key"),
    pytest.param("b.wifiMac", "8c85901a2b3c", [("identifier.mac", "8c85901a2b3c")],
                 id="wifi-mac-is-the-devices-own"),
    pytest.param("b.bssid", "8c:85:90:1a:2b:3c", [("location.wifi", "8c:85:90:1a:2b:3c")],
                 id="bssid-key"),
    pytest.param("b.wifiAccessPoints.0.macAddress", "8c:85:90:1a:2b:3c",
                 [("location.wifi", "8c:85:90:1a:2b:3c")], id="inside-wifi-list"),
    pytest.param("b.x", "a,70:3a:0e:11:22:33,-60,b,a4:56:02:aa:bb:cc,-70",
                 [("location.wifi", "70:3a:0e:11:22:33"), ("location.wifi", "a4:56:02:aa:bb:cc")],
                 id="bssid-list-in-a-string"),
    pytest.param("b.x", "Home2,60:45:cb:cb:34:68,-93,8.26",
                 [("location.wifi", "60:45:cb:cb:34:68")], id="one-bssid-with-its-signal"),
    pytest.param("b.x", "HOME|74-DE-2B-44-88-8C|97&HOME1|74-DE-2B-44-88-8C|97",
                 [("location.wifi", "74-DE-2B-44-88-8C")] * 2, id="scan-with-pipes"),
    pytest.param("b.x", "mac=8c:85:90:1a:2b:3c,fw=2.0.1", [("identifier.mac",
                                                           "8c:85:90:1a:2b:3c")],
                 id="own-mac-next-to-other-fields"),
    pytest.param("b.x", "mail parent.li@example.org now",
                 [("identity.email", "parent.li@example.org")], id="email"),
    pytest.param("b.x", RESIDENT_ID, [("identity.national_id", RESIDENT_ID)], id="resident-id"),
    pytest.param("b.x", "11010820160821002X".replace("2X", "26"),
                 [("identity.national_id", "110108201608210026")], id="resident-id-2"),
    pytest.param("b.shouji", PHONES[0], [("identity.phone", PHONES[0])], id="own-phone-pinyin"),
    pytest.param("b.mobile", "150 1234 5672", [("identity.phone", "150 1234 5672")],
                 id="own-phone-spaced"),
    pytest.param("b.contacts.0.phone", PHONES[0], [("contacts.entry", PHONES[0])],
                 id="contact-in-list"),
    pytest.param("b.sos", "15012345672,18612345673",
                 [("contacts.entry", "15012345672"), ("contacts.entry", "18612345673")],
                 id="sos-numbers"),
    pytest.param("b.members.1.tel", PHONES[1], [("contacts.entry", PHONES[1])],
                 id="family-member"),
])
def test_found(path: str, value: str, expected: list) -> None:
    assert _found(path, value) == expected


@pytest.mark.parametrize(("path", "value"), [
    pytest.param("b.x", "358916049988773", id="imei-failing-luhn"),
    pytest.param("b.x", "202611281015007", id="order-number"),
    pytest.param("b.x", "123456789012347", id="luhn-valid-but-no-reporting-body"),
    pytest.param("b.x", "000000000000000", id="all-zero-imei"),
    pytest.param("b.x", f"1{IMEI}", id="imei-inside-longer-run"),
    pytest.param("b.x", "8986019876543210980", id="iccid-failing-luhn"),
    pytest.param("b.x", "310260123456789", id="imsi-elsewhere-without-key"),
    pytest.param("b.imsi", "999260123456789", id="imsi-without-a-real-mcc"),
    pytest.param("b.x", "02:00:00:00:00:00", id="android-placeholder-mac"),
    pytest.param("b.x", "ff:ff:ff:ff:ff:ff", id="broadcast-mac"),
    pytest.param("b.x", "01:00:5e:00:00:fb", id="multicast-mac"),
    pytest.param("b.x", "8c85901a2b3c", id="bare-hex-without-key"),
    pytest.param("b.nonce", "9f86d081884c", id="nonce"),
    pytest.param("b.x", "440305201503140032", id="resident-id-bad-check"),
    pytest.param("b.x", "440305201513140039", id="resident-id-bad-month"),
    pytest.param("b.x", PHONES[0], id="phone-without-key"),
    pytest.param("b.phone", "1732790000", id="timestamp-under-phone-key"),
    pytest.param("b.phone", "unknown", id="placeholder"),
    pytest.param("b.x", "user@localhost", id="email-without-domain"),
    pytest.param("b.x", "2.0.1", id="version"),
    pytest.param("b.x", "0f8fad5b-d9cb-469f-a165-70867728950e", id="uuid"),
])
def test_not_found(path: str, value: str) -> None:
    assert _found(path, value) == []


def test_key_raises_confidence() -> None:
    (plain,) = find(Field("body", "b.x", IMEI))
    (keyed,) = find(Field("body", "b.imei", IMEI))
    assert (plain[2], keyed[2]) == (CONFIDENCE, CONFIDENCE_WITH_KEY)


@pytest.mark.parametrize(("check", "value", "ok"), [
    (luhn, "79927398713", True), (luhn, "79927398710", False),
    (is_imei, IMEI, True), (is_imei, "868026045123451", False),
    (is_iccid, "8986001234567890120", True), (is_iccid, "8986001234567890121", False),
    (is_resident_id, RESIDENT_ID, True), (is_resident_id, "44030520150314003X", False),
])
def test_checks(check: object, value: str, ok: bool) -> None:
    assert check(value) is ok  # type: ignore[operator]


def test_imsi_needs_a_real_mcc_even_with_key() -> None:
    assert is_imsi("460021234509876", key_says=False)
    assert not is_imsi("310260123456789", key_says=False)
    assert is_imsi("310260123456789", key_says=True)
    assert not is_imsi("100260123456789", key_says=True)


def test_detector_reports_patterns_without_a_profile() -> None:
    fields = [Field("body", "body.json.did", IMEI), Field("body", "body.json.n", "7")]
    (d,) = Detector(Profile()).detect(tx(id=5), fields)
    assert (d.transmission, d.category, d.method, d.field, d.profile_key, d.confidence) == (
        5, "identifier.imei", "pattern", "body.json.did", "", CONFIDENCE_WITH_KEY)


def test_a_huge_value_is_not_searched_for_patterns() -> None:
    """A multi-MB value goes through the automaton and the position search only (so it costs
    little; how little is for bench/): the IMEI at its end, which the pattern search finds in
    a short value, is not reported from it."""
    value = "aa:bb:cc:dd:ee:f1," * 200_000 + IMEI
    assert Detector(Profile()).detect(tx(), [Field("body", "body.text", IMEI)]) != []
    assert Detector(Profile()).detect(tx(), [Field("body", "body.text", value)]) == []


def test_tags_and_opaque_notes_are_not_values() -> None:
    fields = [Field("tag", "payload.watch.protocol", f"protocol:{IMEI}"),
              Field("opaque", "body", f"gzip over limit at {IMEI}")]
    assert Detector(Profile()).detect(tx(), fields) == []


def test_many_fields_are_each_reported_once() -> None:
    """20,000 identifiers in one message (a hostile or a bulk upload): each IMEI and each
    position pair reported once. Pairing and dedupe are indexed, not pairwise, so this runs
    well inside the suite's timeout; how fast is for bench/."""
    fields = [Field("body", f"body.json.{i}.imei", IMEI) for i in range(10_000)]
    fields += [Field("body", f"body.json.{i}.lat", "31.2") for i in range(5_000)]
    fields += [Field("body", f"body.json.{i}.lng", "121.4") for i in range(5_000)]
    found = Detector(Profile()).detect(tx(), fields)
    assert len(found) == 15_000


MEMO_CASES = [
    pytest.param([Field("header", "header.content-type", "application/json"),
                  Field("body", "body.json.imei", IMEI),
                  Field("body", "body.json.phone", PHONES[0]),
                  Field("body", "body.json.mac", "aa:bb:cc:dd:ee:f1"),
                  Field("body", "body.json.email", "kid@example.com"),
                  Field("body", "body.json.lat", "39.98312"),
                  Field("body", "body.json.lon", "116.30791")], id="a-message"),
    pytest.param([Field("body", "body.json.d", IMEI, ("base64",)),
                  Field("query", "body.json.d", IMEI, ()),
                  Field("body", "body.json.d", IMEI, ())],
                 id="same-path-and-value-other-layers"),
    pytest.param([Field("body", "body.json.imei", IMEI), Field("body", "body.json.n", IMEI),
                  Field("body", "body.json.name", "Lily"), Field("body", "body.json.x", "Lily")],
                 id="same-value-other-keys"),
    pytest.param([Field("body", "body.json.imei", IMEI),
                  Field("query", "body.json.imei", IMEI, ("base64",))],
                 id="same-path-and-value-other-place-and-layers"),
    pytest.param([Field("body", "body.text", "x" * MEMO_VALUE + " " + IMEI)],
                 id="longer-than-remembered"),
    pytest.param([Field("body", "body.json." + "k" * MEMO_PATH + ".imei", IMEI)],
                 id="path-longer-than-remembered"),
]


@pytest.mark.parametrize("fields", MEMO_CASES)
def test_a_remembered_field_reads_as_a_fresh_one(fields: list[Field]) -> None:
    """Readings are remembered per path and value: the next message's detections carry its
    own id and each field's own place and layers, exactly as a detector that had never seen
    them would report."""
    remembering = Detector(Profile())
    remembering.detect(tx(id=1), fields)
    again = remembering.detect(tx(id=2), fields)
    assert again == Detector(Profile(), memo=0).detect(tx(id=2), fields)
    assert again and {d.transmission for d in again} == {2}


def test_the_memo_is_bounded() -> None:
    """Thousands of distinct short fields, one message each (a device that sends a new
    nonce every time): a detector keeps no more of them than its memo holds."""
    detector = Detector(Profile(), memo=16)
    tracemalloc.start()
    try:
        for i in range(4000):
            detector.detect(tx(id=i), [Field("body", "body.json.note", f"{i:0{MEMO_VALUE}d}")])
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < 512 << 10


@pytest.mark.parametrize(("path", "value"), [
    pytest.param("body.json.{i}." + "k" * (1 << 20), "87", id="1mb-path-short-value"),
    pytest.param("body.json.{i}.imei", "x" * (1 << 20), id="short-path-1mb-value"),
])
def test_the_memo_holds_nothing_of_a_long_field(path: str, value: str) -> None:
    """Fields made and dropped one message at a time: whatever the detector keeps between
    messages is all that stays allocated, and a long path or value is never kept (a memo of
    whole fields would hold each one whole, a hostile message's worth at a time)."""
    detector = Detector(Profile())
    tracemalloc.start()
    try:
        for i in range(40):
            detector.detect(tx(id=i), [Field("body", path.format(i=i), value)])
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < 4 << 20


KEY_PATHS = [
    "body.json.imei", "body.json.wifiMac", "body.json.wifi.0.mac", "body.json.contacts.0.phone",
    "body.json.sos.1", "query.email", "header.x-device-id", "body.json.note", "",
    "body.json.aps.0.bssid", "body.json." + "k" * 2000 + ".phone",
]


@pytest.mark.parametrize("path", KEY_PATHS)
def test_a_remembered_path_reads_as_a_fresh_one(path: str) -> None:
    """What a path's keys say is remembered per path: asked again, the same answer as one
    worked out afresh, and a path over MAX_PATH is answered without being kept."""
    first = path_keys(path)
    assert path_keys(path) == first == _path_keys(path)
    assert (path in patterns._PATHS) == (len(path) <= MAX_PATH)


@pytest.mark.parametrize(("path", "value"), [
    ("body.json.x", "a1b2c3d4e5f6"), ("body.json.mac", "a1b2c3d4e5f6"),
    ("body.json.wifi.0", "a1b2c3d4e5f6"), ("body.json.x", "a1:b2:c3:d4:e5:f6"),
    ("body.json.x", "a1-b2-c3-d4-e5-f6,-60"), ("body.json.note", "x" * 40),
])
def test_the_mac_guard_skips_only_fields_without_a_mac(path: str, value: str) -> None:
    """The guards before the finders (for ``_macs``: a separator, or a MAC or Wi-Fi key)
    skip only fields a finder would find nothing in: ``find`` equals every finder run."""
    f = Field("body", path, value)
    at = _path_keys(path)
    unguarded = [hit for finder in FINDERS for hit in finder(f, at)]
    assert list(find(f)) == unguarded + list(_phones(f, at, DEFAULT_REGION))


GUARD_PATHS = [*KEY_PATHS[:-1], "body.json.ts", "body.json.lat", "query.t", "body.json.mobile",
               "body.json.bssid", "body.json.contacts.0.name", "body.json.idcard"]


@settings(max_examples=400, deadline=None)
@given(path=st.sampled_from(GUARD_PATHS),
       value=st.text(alphabet="0123456789abcdefABCDEF:-@. +xX", max_size=24)
       | st.sampled_from([IMEI, ICCID, RESIDENT_ID, *PHONES, "a@b.cn", "3c:5a:b4:01:02:03",
                          "3c5ab4010203", "+86 150 1234 5672", "1790000000200"]))
def test_may_find_is_false_only_where_nothing_is_found(path: str, value: str) -> None:
    """A detector skips a field ``may_find`` rules out (when its key names no category):
    nothing is lost, whatever the value."""
    f = Field("body", path, value)
    if not may_find(value, path_keys(path)):
        assert list(find(f)) == []
        if not path_keys(path).lexicon:
            assert by_key(f) == []


_PATHS_SAYING = st.sampled_from([
    "body.json.seq", "body.json.lat", "body.json.imei", "body.json.phone", "body.json.wifiMac",
    "body.json.contacts.0.name", "body.json.wifi.0.ssid", "body.json.mac", "body.json.email",
    "body.json.x-device-id", "query.tel", "body.json.0", "", "body.json.youxiang",
])


@settings(max_examples=400, deadline=None)
@given(_PATHS_SAYING, st.text(alphabet="0123456789abcdef:-@. +", max_size=20))
def test_a_quiet_path_with_a_short_value_has_no_reading(path: str, value: str) -> None:
    """What ``Detector.detect`` skips before asking its memo (``PathKeys.quiet``, a value
    under QUIET_BELOW characters without an ``@``) is what ``may_find`` and the key tables
    find nothing in; and ``remembered_path_keys`` answers as ``path_keys`` does."""
    at = path_keys(path)
    assert patterns.remembered_path_keys(path) == at == _path_keys(path)
    if at.quiet and len(value) < patterns.QUIET_BELOW and "@" not in value:
        assert not at.lexicon and not may_find(value, at)
        assert Detector(Profile(), memo=0).readings(Field("body", path, value)) == ()
