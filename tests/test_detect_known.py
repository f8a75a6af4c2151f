"""auditor/detect/known.py and the Detector: seeded values found in every plausible form."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.detect import Detector, dedupe
from auditor.detect.known import CONFIDENCE, KnownValues
from auditor.extract.watchproto import payload_fields
from auditor.model import Contact, Credential, Detection, Field, Location, Profile
from tests.factories import BIRTHDATE, CHILD_NAME, IMEI, LAT, LON, profile, tx

PASSWORD = "Tr0ub4dor&3"
BSSID = "aa:bb:cc:dd:ee:01"
SEEDED = profile(credentials=(Credential("xiaoming", PASSWORD),),
                 location=Location(LAT, LON, wifi=(BSSID,)))


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(SEEDED)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _digest(name: str, value: str) -> str:
    return hashlib.new(name, value.encode()).hexdigest()


def _found(detector: Detector, value: str, encoding: tuple[str, ...] = ()
           ) -> list[tuple[str, str, tuple[str, ...], str]]:
    field = Field("body", "body.json.x", value, encoding)
    return sorted((d.category, d.profile_key, d.encoding, d.value)
                  for d in detector.detect(tx(), [field]) if d.method == "known")


IMEI_HIT = ("identifier.imei", "identifiers.imei")


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(IMEI, (*IMEI_HIT, (), IMEI), id="plain"),
    pytest.param(f"dev={IMEI};fw=1.4.2", (*IMEI_HIT, (), IMEI), id="in-longer-text"),
    pytest.param(f"[3G*{IMEI}*0009*LK]", (*IMEI_HIT, (), IMEI), id="watch-protocol"),
    *(pytest.param(_digest(name, IMEI), (*IMEI_HIT, (name,), _digest(name, IMEI)),
                   id=f"{name}-lower") for name in ("md5", "sha1", "sha256", "sha512")),
    *(pytest.param(_digest(name, IMEI).upper(),
                   (*IMEI_HIT, (name,), _digest(name, IMEI).upper()), id=f"{name}-upper")
      for name in ("md5", "sha1", "sha256", "sha512")),
    pytest.param(f"sign={_digest('md5', IMEI)}&t=1",
                 (*IMEI_HIT, ("md5",), _digest("md5", IMEI)), id="md5-in-text"),
    pytest.param(_b64(IMEI.encode()), (*IMEI_HIT, ("base64",), _b64(IMEI.encode())),
                 id="base64"),
    pytest.param(_b64(IMEI.encode()).rstrip("="),
                 (*IMEI_HIT, ("base64",), _b64(IMEI.encode()).rstrip("=")), id="base64-unpadded"),
    pytest.param(IMEI.encode().hex(), (*IMEI_HIT, ("hex",), IMEI.encode().hex()), id="hex"),
    pytest.param(IMEI.encode().hex().upper(), (*IMEI_HIT, ("hex",), IMEI.encode().hex().upper()),
                 id="hex-upper"),
    *(pytest.param(_b64(hashlib.new(name, IMEI.encode()).digest()),
                   (*IMEI_HIT, ("base64", name), _b64(hashlib.new(name, IMEI.encode()).digest())),
                   id=f"{name}-base64") for name in ("md5", "sha1", "sha256", "sha512")),
])
def test_imei(detector: Detector, value: str, expected: tuple) -> None:
    assert _found(detector, value) == [expected]


@pytest.mark.parametrize("value", [
    "3c:5a:b4:01:02:03", "3c-5a-b4-01-02-03", "3c5ab4010203", "3c5a.b401.0203",
    "3C:5A:B4:01:02:03", "3C-5A-B4-01-02-03", "3C5AB4010203",
])
def test_mac_forms(detector: Detector, value: str) -> None:
    assert _found(detector, value) == [("identifier.mac", "identifiers.mac", (), value)]


@pytest.mark.parametrize("value", [
    "+8613800138000", "8613800138000", "13800138000", "008613800138000",
    "138 0013 8000", "138-0013-8000", "+86 138 0013 8000", "tel:13800138000",
])
def test_phone_forms(detector: Detector, value: str) -> None:
    found = _found(detector, value)
    assert [(c, k) for c, k, _, _ in found] == [("identity.phone", "identifiers.phone")]
    assert found[0][3] in value


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(BIRTHDATE, ("identity.birthdate", "child.birthdate"), id="birthdate-iso"),
    pytest.param("20170309", ("identity.birthdate", "child.birthdate"), id="birthdate-compact"),
    pytest.param("2017/03/09", ("identity.birthdate", "child.birthdate"), id="birthdate-slash"),
    pytest.param("09.03.2017", ("identity.birthdate", "child.birthdate"), id="birthdate-dotted"),
    pytest.param("2017年3月9日", ("identity.birthdate", "child.birthdate"), id="birthdate-zh"),
    pytest.param("2017-3-9", ("identity.birthdate", "child.birthdate"), id="birthdate-unpadded"),
    pytest.param(CHILD_NAME, ("identity.name", "child.name"), id="name"),
    pytest.param("wangxiaoming", ("identity.name", "child.name"), id="name-joined-lower"),
    pytest.param("Wang_Xiaoming", ("identity.name", "child.name"), id="name-underscore"),
    pytest.param("Li Mei", ("contacts.entry", "contacts[0].name"), id="contact-0-name"),
    pytest.param("Zhang Wei", ("contacts.entry", "contacts[1].name"), id="contact-1-name"),
    pytest.param("13900139001", ("contacts.entry", "contacts[0].phone"), id="contact-0-national"),
    pytest.param("+86 137 0013 7002", ("contacts.entry", "contacts[1].phone"),
                 id="contact-1-spaced"),
    pytest.param(PASSWORD, ("credentials.password", "credentials[0].password"), id="password"),
    pytest.param(BSSID.upper(), ("location.wifi", "location.wifi[0]"), id="bssid-upper"),
    pytest.param("aabbccddee01", ("location.wifi", "location.wifi[0]"), id="bssid-bare"),
    pytest.param("8986002209123456789", ("identifier.iccid", "identifiers.iccid"), id="iccid"),
])
def test_other_seeds(detector: Detector, value: str, expected: tuple[str, str]) -> None:
    assert [(c, k) for c, k, _, _ in _found(detector, value)] == [expected]


@pytest.mark.parametrize("value", [
    pytest.param(f"9{IMEI}", id="imei-inside-longer-digit-run-before"),
    pytest.param(f"{IMEI}0", id="imei-inside-longer-digit-run-after"),
    pytest.param(f"1{IMEI}2", id="imei-inside-longer-digit-run"),
    pytest.param("a" + _digest("md5", IMEI), id="md5-inside-longer-hex-before"),
    pytest.param(_digest("sha1", IMEI) + "0", id="sha1-inside-longer-hex-after"),
    pytest.param("490154203237518", id="unrelated-15-digits"),
    pytest.param(base64.b64encode(IMEI.encode()).decode()[:-2], id="base64-truncated"),
    pytest.param("x" + IMEI.encode().hex(), id="hex-inside-longer-word"),
    pytest.param(IMEI[1:], id="imei-missing-its-first-digit"),
    pytest.param(IMEI[:13], id="imei-cut-to-13-digits"),
    pytest.param(_digest("md5", IMEI)[:-1], id="md5-truncated"),
    pytest.param("138001380001", id="phone-inside-longer-digit-run"),
    pytest.param("", id="empty"),
])
def test_negatives(detector: Detector, value: str) -> None:
    assert _found(detector, value) == []


@pytest.mark.parametrize(("encoding", "digest", "expected"), [
    pytest.param((), "sha256", ("sha256",), id="bare"),
    pytest.param(("base64",), "md5", ("base64", "md5"), id="after-base64"),
    pytest.param(("url", "json"), "sha1", ("url", "json", "sha1"), id="after-url-json"),
])
def test_chain_records_the_digest(detector: Detector, encoding: tuple, digest: str,
                                  expected: tuple) -> None:
    (hit,) = _found(detector, _digest(digest, IMEI), encoding)
    assert hit[2] == expected


def test_detection_carries_field_and_transmission(detector: Detector) -> None:
    field = Field("query", "query.did", IMEI)
    (d,) = detector.detect(tx(id=42), [field])
    assert (d.transmission, d.method, d.location, d.field, d.confidence) == (
        42, "known", "query", "query.did", CONFIDENCE)


@pytest.mark.parametrize("empty", [
    pytest.param(Profile(), id="default"),
    pytest.param(profile(identifiers={}, child={}, contacts=(), location=None), id="cleared"),
    pytest.param(profile(identifiers={"imei": ("  ",)}, child={}, contacts=(), location=None),
                 id="blank-values"),
])
def test_empty_profile_detects_nothing(empty: Profile) -> None:
    fields = [Field("body", "body.json.x", v) for v in
              (IMEI, "13800138000", "39.98312,116.30791", "Li Mei", "    ")]
    assert len(KnownValues.from_profile(empty)) == 0
    assert [d for d in Detector(empty).detect(tx(), fields) if d.method == "known"] == []


def test_one_detection_per_field_for_overlapping_phone_forms(detector: Detector) -> None:
    # "+8613800138000" also contains "8613800138000": the same fact, reported once.
    found = detector.detect(tx(), [Field("body", "body.json.tel", "+8613800138000")])
    assert len(found) == 1


def _det(field: str, encoding: tuple[str, ...], category: str = "identifier.imei",
         key: str = "identifiers.imei") -> Detection:
    return Detection(1, category, "known", "body", field, encoding, key, IMEI, CONFIDENCE)


@pytest.mark.parametrize(("detections", "expected"), [
    pytest.param([_det("a", ("base64", "md5")), _det("a", ("md5",))], [_det("a", ("md5",))],
                 id="shortest-chain-wins"),
    pytest.param([_det("a", ()), _det("a", ("base64",))], [_det("a", ())],
                 id="first-shortest-kept"),
    pytest.param([_det("a", ()), _det("b", ())], [_det("a", ()), _det("b", ())],
                 id="different-fields-kept"),
    pytest.param([_det("a", ()), _det("a", (), "identity.phone", "identifiers.phone")],
                 [_det("a", ()), _det("a", (), "identity.phone", "identifiers.phone")],
                 id="different-categories-kept"),
    pytest.param([_det("a", (), key="identifiers.imei"), _det("a", (), key="contacts[0].phone")],
                 [_det("a", (), key="identifiers.imei"), _det("a", (), key="contacts[0].phone")],
                 id="different-profile-keys-kept"),
    pytest.param([], [], id="empty"),
])
def test_dedupe(detections: list[Detection], expected: list[Detection]) -> None:
    assert dedupe(detections) == expected


def _any(method: str, field: str, category: str, value: str, key: str = "",
         encoding: tuple[str, ...] = ()) -> Detection:
    return Detection(1, category, method, "body", field, encoding, key, value, 0.5)


KNOWN_IMEI = _any("known", "a", "identifier.imei", IMEI, "identifiers.imei")
PATTERN_IMEI = _any("pattern", "a", "identifier.imei", IMEI)
KEY_IMEI = _any("key", "a", "identifier.imei", IMEI)


@pytest.mark.parametrize(("detections", "expected"), [
    pytest.param([PATTERN_IMEI, KNOWN_IMEI], [KNOWN_IMEI], id="known-beats-pattern"),
    pytest.param([KEY_IMEI, PATTERN_IMEI], [PATTERN_IMEI], id="pattern-beats-key"),
    pytest.param([KEY_IMEI, _any("pattern", "a", "identifier.serial", IMEI)],
                 [_any("pattern", "a", "identifier.serial", IMEI)],
                 id="pattern-beats-key-of-another-category"),
    pytest.param([KNOWN_IMEI, _any("pattern", "b", "identifier.imei", IMEI)],
                 [KNOWN_IMEI, _any("pattern", "b", "identifier.imei", IMEI)],
                 id="other-field-kept"),
    pytest.param([_any("known", "a", "contacts.entry", "+8613900139001", "contacts[0].phone"),
                  _any("pattern", "a", "identity.phone", "13900139001")],
                 [_any("known", "a", "contacts.entry", "+8613900139001", "contacts[0].phone")],
                 id="known-contact-beats-pattern-phone-of-the-same-number"),
    pytest.param([_any("known", "a", "contacts.entry", "13900139001", "contacts[0].phone"),
                  _any("pattern", "a", "contacts.entry", "15012345672")],
                 [_any("known", "a", "contacts.entry", "13900139001", "contacts[0].phone"),
                  _any("pattern", "a", "contacts.entry", "15012345672")],
                 id="unseeded-contact-next-to-seeded-one-kept"),
    pytest.param([_any("pattern", "a", "contacts.entry", "15012345672"),
                  _any("pattern", "a", "contacts.entry", "18612345673")],
                 [_any("pattern", "a", "contacts.entry", "15012345672"),
                  _any("pattern", "a", "contacts.entry", "18612345673")],
                 id="two-unseeded-contacts-kept"),
    pytest.param([_any("known", "q.d", "identifier.imei", IMEI, "identifiers.imei", ("base64",)),
                  _any("known", "q.d.base64", "identifier.imei", IMEI, "identifiers.imei",
                       ("base64",))],
                 [_any("known", "q.d.base64", "identifier.imei", IMEI, "identifiers.imei",
                       ("base64",))],
                 id="decoded-field-reports-once-innermost"),
    pytest.param([_any("known", "a+b", "location.precise", "39.98312,116.30791", "location"),
                  _any("pattern", "a+b", "location.precise", "39.98312,116.30791")],
                 [_any("known", "a+b", "location.precise", "39.98312,116.30791", "location")],
                 id="known-position-beats-pattern"),
    pytest.param([_any("known", "p", "location.precise", "39.98312,116.30791", "location"),
                  _any("pattern", "p", "location.precise", "116.30791,39.98312")],
                 [_any("known", "p", "location.precise", "39.98312,116.30791", "location")],
                 id="one-position-per-field-whatever-the-order"),
])
def test_dedupe_across_methods(detections: list[Detection], expected: list[Detection]) -> None:
    assert dedupe(detections) == expected


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("陈小雨", ["child.name"], id="chinese-name"),
    pytest.param("宝贝陈小雨的手表", ["child.name"], id="chinese-name-inside-chinese-text"),
    pytest.param("name=陈小雨&x=1", ["child.name"], id="chinese-name-in-form-text"),
    pytest.param("陈小", [], id="part-of-the-name"),
    pytest.param(IMEI[:14], ["identifiers.imei"], id="imei-without-check-digit"),
    pytest.param(IMEI[:14] + "07", ["identifiers.imei"], id="imeisv"),
])
def test_short_and_chinese_seeds(value: str, expected: list[str]) -> None:
    seeded = profile(child={"name": (CHILD_NAME, "陈小雨")})
    found = Detector(seeded).detect(tx(), [Field("body", "body.json.x", value)])
    assert [d.profile_key for d in found if d.method == "known"] == expected


def test_iccid_with_filler_nibble(detector: Detector) -> None:
    found = _found(detector, "ICCID,8986002209123456789F")
    assert [(c, k) for c, k, _, _ in found] == [("identifier.iccid", "identifiers.iccid")]


@pytest.mark.parametrize("at", [0, 65_536 - 7, 65_536, 65_536 * 3 - 3, 300_000])
def test_long_values_are_scanned_in_windows_without_losing_matches(detector: Detector,
                                                                   at: int) -> None:
    """A seeded value straddling a window edge is found once, at its place in the text."""
    text = "x" * at + f" {IMEI} " + "y" * 300_000
    found = [d for d in detector.detect(tx(), [Field("body", "body.text", text)])
             if d.method == "known"]
    assert [(d.profile_key, d.value) for d in found] == [("identifiers.imei", IMEI)]


# -- profiles of real size -----------------------------------------------------------
# A phone's address book: 10,000 contacts, each a name and a Chinese mobile number. Every
# plain form of a seed is a key of the automaton and every digest a key of a dict; the
# hex and base64 writings are found by decoding the text's tokens, so a contact costs a
# few dozen keys (many times more when every writing of every form was a key, which made
# a profile of this size too big and too slow to build).
BOOK = 10_000
KEYS_PER_CONTACT = 60
PEAK_RSS_MB = 500
BUILD_BOOK = """
import json, sys
from auditor.detect import Detector
from auditor.model import Contact, Field
from tests.factories import profile, tx
SYLLABLES = ("an bo chen da fang gu hua jun kai li ming na ping qing rui shan tao wei xin "
             "yu zhi ze xiao yan hong").split()
def name(i):
    a, b, c = (SYLLABLES[i // 25 ** k % 25] for k in range(3))
    return f"{a.title()} {b.title()}{c}"
book = tuple(Contact(name(i), f"+86139{i:08d}") for i in range(int(sys.argv[1])))
detector = Detector(profile(contacts=book))
bare = len(Detector(profile(contacts=())).known)
last = book[-1]
field = Field("body", "body.json.book", f"{last.name},{last.phone[3:]}")
found = sorted(d.profile_key for d in detector.detect(tx(), [field]) if d.method == "known")
# VmHWM: this process image's own peak (ru_maxrss would carry the forking parent's).
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"keys": len(detector.known) - bare, "found": found,
                  "rss_mb": int(hwm.split()[1]) / 1024}))
"""


def test_a_ten_thousand_contact_profile_builds_small() -> None:
    """Keys grow linearly with a small constant, and the whole build stays under 500 MB
    (peak RSS of a child process that only builds it and looks up one contact)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", BUILD_BOOK, str(BOOK)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = json.loads(proc.stdout)
    assert 0 < built["keys"] <= KEYS_PER_CONTACT * BOOK, built
    assert built["found"] == [f"contacts[{BOOK - 1}].name", f"contacts[{BOOK - 1}].phone"]
    assert built["rss_mb"] < PEAK_RSS_MB, built


# -- seeds used as names -------------------------------------------------------------
def _observed(**overrides: object) -> list[tuple[str, str, str]]:
    """(field, profile key, value) of the known detections of one request, read whole."""
    from auditor.data import load_sdks
    from auditor.pipeline import Pipeline

    obs = Pipeline.for_profile(SEEDED, load_sdks()).observe(tx(**overrides))
    return sorted((d.field, d.profile_key, d.value) for d in obs.detections
                  if d.method == "known")


IMEI_B64 = _b64(IMEI.encode())


@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"host": f"{IMEI}.t.example", "path": "/", "body": b""},
                 [("url.host", "identifiers.imei", IMEI)], id="host-label"),
    pytest.param({"host": f"{_digest('md5', IMEI)}.t.example", "path": "/", "body": b""},
                 [("url.host", "identifiers.imei", _digest("md5", IMEI))], id="host-label-md5"),
    pytest.param({"path": f"/r?{IMEI}=1", "body": b""},
                 [(f"query.{IMEI}", "identifiers.imei", IMEI)], id="query-key"),
    pytest.param({"json": {IMEI: 1}, "path": "/"},
                 [(f"body.json.{IMEI}", "identifiers.imei", IMEI)], id="json-key"),
    pytest.param({"json": {"book": {IMEI: {"a": 1, "b": 2}}}, "path": "/"},
                 [(f"body.json.book.{IMEI}", "identifiers.imei", IMEI)],
                 id="json-key-above-two-fields-once"),
    pytest.param({"json": {IMEI_B64: 1}, "path": "/"},
                 [(f"body.json.{IMEI_B64}", "identifiers.imei", IMEI_B64)],
                 id="json-key-base64"),
    pytest.param({"json": {"13800138000": "x"}, "path": "/"},
                 [("body.json.13800138000", "identifiers.phone", "13800138000")],
                 id="json-key-phone"),
    pytest.param({"host": "api.acme-watch.example", "path": "/r?a=1", "json": {"b": 1}}, [],
                 id="no-seed-anywhere"),
    pytest.param({"host": f"9{IMEI}.t.example", "path": f"/r?{IMEI}0=1", "body": b""}, [],
                 id="longer-digit-runs-are-other-numbers"),
])
def test_seeds_used_as_names(overrides: dict, expected: list) -> None:
    assert _observed(**overrides) == expected


ZH_NAME = "王小明"
ZH_SCHOOL = "海淀实验小学"
ZH_SEEDED = profile(child={"name": (CHILD_NAME, ZH_NAME), "school": (ZH_SCHOOL,)})


def _derived(value: str) -> list[tuple[str, tuple[str, ...]]]:
    found = Detector(ZH_SEEDED).detect(tx(), [Field("body", "body.json.x", value)])
    return sorted((d.profile_key, d.encoding) for d in found if d.method == "known")


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(IMEI[-10:], [("identifiers.imei", ("last-10-digits",))], id="watch-id"),
    pytest.param(f"[3G*{IMEI[-10:]}*0009*LK]", [("identifiers.imei", ("last-10-digits",))],
                 id="watch-id-in-3g-frame"),
    pytest.param(IMEI[:14], [("identifiers.imei", ("no-check-digit",))], id="imei-14"),
    pytest.param(IMEI[:14] + "07", [("identifiers.imei", ("imeisv",))], id="imeisv"),
    pytest.param(f"sv={IMEI[:14]}99&x=1", [("identifiers.imei", ("imeisv",))],
                 id="imeisv-in-text"),
    pytest.param(IMEI, [("identifiers.imei", ())], id="whole-imei-stays-plain"),
    pytest.param("9112345679", [], id="other-ten-digit-number"),
    pytest.param(IMEI[-11:], [], id="suffix-inside-a-longer-number"),
    pytest.param(IMEI[-10:] + "1", [], id="suffix-followed-by-a-digit"),
    pytest.param(IMEI[:14] + "071", [], id="seventeen-digits-are-no-imeisv"),
    pytest.param(IMEI + "0", [], id="imei-inside-a-longer-number"),
])
def test_imei_forms(value: str, expected: list) -> None:
    assert _derived(value) == expected


def _utf16(text: str) -> str:
    return text.encode("utf-16-be").hex()


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(ZH_NAME, [("child.name", ())], id="utf-8"),
    pytest.param(quote(ZH_NAME), [("child.name", ("url",))], id="percent-utf-8"),
    pytest.param(quote(ZH_NAME).lower(), [("child.name", ("url",))], id="percent-utf-8-lower"),
    pytest.param(quote(ZH_NAME.encode("gbk")), [("child.name", ("url", "gbk"))],
                 id="percent-gbk"),
    pytest.param(ZH_NAME.encode("gbk").decode("latin-1"), [("child.name", ("gbk",))],
                 id="raw-gbk-read-as-latin-1"),
    pytest.param(ZH_NAME.encode().decode("latin-1"), [("child.name", ("utf-8",))],
                 id="raw-utf-8-read-as-latin-1"),
    pytest.param(_utf16(ZH_NAME).upper(), [("child.name", ("hex", "utf-16be"))],
                 id="utf-16be-hex"),
    pytest.param(_utf16("你好" + ZH_NAME + "同学").upper(),
                 [("child.name", ("hex", "utf-16be"))], id="utf-16be-hex-inside-a-message"),
    pytest.param("00" + _utf16(ZH_NAME) + "00", [], id="utf-16be-hex-off-by-a-byte"),
    pytest.param(json.dumps(ZH_NAME), [("child.name", ("json-escape",))], id="json-escape"),
    pytest.param(quote(ZH_SCHOOL.encode("gbk")), [("child.school", ("url", "gbk"))],
                 id="school-percent-gbk"),
    pytest.param(_utf16(ZH_SCHOOL), [("child.school", ("hex", "utf-16be"))],
                 id="school-utf-16be-hex"),
    pytest.param("王小红", [], id="other-chinese-name"),
    pytest.param(quote("王小红".encode("gbk")), [], id="other-name-percent-gbk"),
    pytest.param(_utf16("海淀外国语学校"), [], id="other-school-utf-16be-hex"),
])
def test_chinese_writings(value: str, expected: list) -> None:
    assert _derived(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    *(pytest.param(v, [("child.name", ())], id=f"seeded-{v}")
      for v in ("Wang Xiaoming", "wangxiaoming", "WANG Xiaoming", "wang_xiaoming")),
    *(pytest.param(v, [("child.name", ("pinyin",))], id=v)
      for v in ("Xiaoming Wang", "wang xiao ming", "XiaomingWang")),
    pytest.param("Wang Xiaohong", [], id="other-name"),
    pytest.param("Xiaoming", [], id="given-name-alone"),
    pytest.param("wangxiaomingfan", [], id="inside-a-longer-word"),
])
def test_pinyin(value: str, expected: list) -> None:
    assert _derived(value) == expected


def test_pinyin_is_derived_for_contacts_without_a_latin_name() -> None:
    seeded = profile(contacts=(Contact("李娜", "+8613912345670"),))
    found = Detector(seeded).detect(tx(), [Field("body", "body.json.x", "Li Na")])
    assert [(d.profile_key, d.encoding) for d in found if d.method == "known"] == [
        ("contacts[0].name", ("pinyin",))]


@pytest.mark.parametrize(("frame", "expected"), [
    pytest.param(f"[3G*{IMEI[-10:]}*0009*LK,0,10,100]",
                 [("payload.watch.id", ("last-10-digits",))], id="3g-watch-id"),
    pytest.param(f"[SG*{IMEI}*0009*LK,0,10,100]", [("payload.watch.id", ())], id="whole-imei"),
    pytest.param("[3G*9112345679*0009*LK,0,10,100]", [], id="another-watch"),
])
def test_watch_id_from_the_frame_header(frame: str, expected: list) -> None:
    """The 3G family's header field reaches the detector as ``payload.watch.id``."""
    fields = payload_fields(frame.encode())
    found = Detector(ZH_SEEDED).detect(tx(), fields)
    assert [(d.field, d.encoding) for d in found if d.method == "known"] == expected


REMEMBERED_FIELDS = [
    Field("body", "body.json.x", IMEI),
    Field("body", f"body.json.{IMEI}", "1"),
    Field("body", f"body.json.{IMEI}.a", "2"),
    Field("query", "query.t", "x" * 600 + " " + IMEI),
    Field("body", "body.json." + "k" * 600 + "." + IMEI, "3"),
    Field("body", "body.json.y", "nothing here"),
]


def test_a_remembered_scan_reads_as_a_fresh_one() -> None:
    """What ``scan`` finds in a value or a path is remembered (short ones): a second message
    of the same fields reads exactly as one a fresh automaton scans."""
    known = KnownValues.from_profile(SEEDED)
    first = list(known.scan(1, REMEMBERED_FIELDS))
    again = list(known.scan(1, REMEMBERED_FIELDS))
    assert first == again == list(KnownValues.from_profile(SEEDED).scan(1, REMEMBERED_FIELDS))
    assert {d.field for d in again} == {f"body.json.{IMEI}", "body.json.x", "query.t",
                                       "body.json." + "k" * 600 + "." + IMEI}


SHORT_SECRET = "Ab1!"  # MIN_LEN bytes: its unpadded base64 is the narrowest token there is


@pytest.mark.parametrize("written", [
    _b64(SHORT_SECRET.encode()), _b64(SHORT_SECRET.encode()).rstrip("="),
    SHORT_SECRET.encode().hex(), f"k={_b64(SHORT_SECRET.encode()).rstrip('=')}&t=1",
])
def test_the_narrowest_token_is_still_decoded(written: str) -> None:
    """Runs narrower than the narrowest token a key decodes from are skipped undecoded: one
    exactly that wide (the unpadded base64 of a four-byte seed) is still found."""
    known = KnownValues.from_profile(profile(credentials=(Credential("u", SHORT_SECRET),)))
    found = list(known.scan(1, [Field("body", "body.json.x", written)]))
    assert [d.profile_key for d in found] == ["credentials[0].password"]


_NARROW_KNOWN = KnownValues.from_profile(SEEDED)
_PIECES = [IMEI, IMEI[:6], IMEI[-10:], CHILD_NAME, CHILD_NAME[:1], PASSWORD[:5], "xiaoming",
           "aa:bb", "aabb", "İ", "ß", "x", "0", " ", ":", "=", "+"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=4).map("".join))
def test_a_value_without_a_token_and_a_match_has_no_seed_and_one_with_has(value: str) -> None:
    """``_find``'s shortcut (a value narrower than any encoded token, and no automaton
    match) says () exactly where the full search finds no span; a value it keeps finds
    some (the longest span of a seed is always kept)."""
    known = _NARROW_KNOWN
    spans = [*known._plain(value), *known._encoded(value)]
    assert bool(known._find(value)) == bool(spans)
    if len(value) < known._narrowest:
        assert not list(known._encoded(value))
