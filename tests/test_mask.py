"""auditor/mask.py: values leave the tool masked (DESIGN.md findings.json, ``8612********0123``)."""

from __future__ import annotations

import base64
import json

import pytest

from auditor.mask import Masker, mask
from auditor.model import Detection
from tests.factories import ICCID, IMEI, MAC, PHONE


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("8612345678900123", "8612********0123", id="design-example"),
    pytest.param(IMEI, "864*********455", id="imei"),
    pytest.param(ICCID, "8986***********6789", id="iccid"),
    pytest.param(PHONE, "+86********000", id="phone"),
    pytest.param(MAC, "3c:5*********2:03", id="mac"),
    pytest.param("123456789012", "123******012", id="twelve"),
    pytest.param("12345678901", "12*******01", id="eleven"),
    pytest.param("123456", "1****6", id="six"),
    pytest.param("12345", "*****", id="five-fully-masked"),
    pytest.param("1", "*", id="one"),
    pytest.param("", "", id="empty"),
    pytest.param("王小明同学的家庭住址", "王小******住址", id="non-ascii"),
])
def test_mask(value: str, expected: str) -> None:
    assert mask(value) == expected


def test_passwords_are_masked_whole() -> None:
    assert mask("Tr0ub4dor&3xyz", "credentials.password") == "*" * 14


@pytest.mark.parametrize("value", [IMEI, ICCID, PHONE, MAC, "Tr0ub4dor&3", "abcdef", "abc"])
def test_mask_keeps_length_and_hides_the_middle(value: str) -> None:
    masked = mask(value)
    assert len(masked) == len(value)
    assert masked != value
    middle = len(value) // 2
    assert masked[middle] == "*"


# -- Masker: every form of a detected value, in any text written out ----------------------
def _det(value: str, encoding: tuple[str, ...] = (), category: str = "identifier.imei"
         ) -> Detection:
    return Detection(1, category, "known", "query", "query.d", encoding, "", value, 0.99)


WRAPPED = base64.b64encode(json.dumps({"dev": {"imei": IMEI}}).encode()).decode()
PCT_IMEI = "".join(f"%{b:02X}" for b in IMEI.encode())


@pytest.mark.parametrize(("detection", "text", "secret", "kept"), [
    pytest.param(_det(IMEI), f"https://h.example/r?imei={IMEI}&x=1", IMEI, "&x=1",
                 id="as-found"),
    pytest.param(_det(IMEI), f"/r?d={PCT_IMEI}&x=1", PCT_IMEI, "&x=1",
                 id="percent-per-digit"),
    pytest.param(_det(IMEI), f"/r?d={PCT_IMEI.lower()}&x=1", PCT_IMEI.lower(), "&x=1",
                 id="percent-per-digit-lower"),
    pytest.param(_det(PHONE, category="identity.phone"), "/b?tel=%2b8613800138000&x=1",
                 "8613800138000", "&x=1", id="percent-lower-plus"),
    pytest.param(_det("2017-03-09", category="identity.birthdate"), "/r?b=2017%2D03%2D09",
                 "2017%2D03%2D09", "/r?b=", id="percent-dashes"),
    pytest.param(_det("39.98312,116.30791", category="location.precise"),
                 "/loc?lat=39.98312&lon=116.30791", "39.98312", "&lon=", id="latitude"),
    pytest.param(_det("39.98312,116.30791", category="location.precise"),
                 "/loc?lat=39.98312&lon=116.30791", "116.30791", "/loc?lat=", id="longitude"),
    pytest.param(_det(IMEI, ("base64",)), f"/r?d={base64.b64encode(IMEI.encode()).decode()}",
                 base64.b64encode(IMEI.encode()).decode(), "/r?d=", id="base64-layer"),
    pytest.param(_det(IMEI, ("hex",)), f"/r?d={IMEI.encode().hex().upper()}",
                 IMEI.encode().hex().upper(), "/r?d=", id="hex-layer-upper"),
    pytest.param(_det(IMEI, ("base64", "json")), f"/r?p={WRAPPED}&x=1", WRAPPED, "&x=1",
                 id="inside-a-base64-document-masked-whole"),
    pytest.param(_det(IMEI), f"{IMEI}.t.example", IMEI, ".t.example", id="host-label"),
    pytest.param(_det(IMEI), f"body.json.{IMEI}", IMEI, "body.json.", id="field-path"),
    pytest.param(_det("Tr0ub4dor&3", category="credentials.password"), "/l?pw=Tr0ub4dor%263",
                 "Tr0ub", "/l?pw=", id="password-whole"),
])
def test_masker_hides_every_form(detection: Detection, text: str, secret: str,
                                 kept: str) -> None:
    masked = Masker([detection])(text)
    assert secret.lower() not in masked.lower()
    assert kept in masked  # the rest of the text is still there to read
    assert len(masked) == len(text) and "*" in masked


@pytest.mark.parametrize(("detections", "text"), [
    pytest.param([_det(IMEI)], "/r?imei=490154203237518&x=1", id="another-number"),
    pytest.param([_det(IMEI)], f"/r?d={base64.b64encode(b'nothing seeded').decode()}",
                 id="base64-of-something-else"),
    pytest.param([_det(IMEI)], "", id="empty-text"),
    pytest.param([], f"/r?imei={IMEI}", id="nothing-detected"),
    pytest.param([_det("abc")], "/r?abc=abcabc", id="value-too-short-to-mask-in-text"),
])
def test_masker_leaves_other_text_alone(detections: list[Detection], text: str) -> None:
    assert Masker(detections)(text) == text


@pytest.mark.parametrize("size", [16, 4_000])  # a piece short enough to be remembered, and not
def test_a_text_seen_before_is_masked_for_each_masker_by_its_own_values(size: int) -> None:
    """What is remembered of a text (its decodable pieces, what they peel to) belongs to the
    text: a second masker with other values, given the same text, hides its own."""
    first, second = "imei-" + "1" * size, "imei-" + "2" * size
    pieces = [base64.urlsafe_b64encode(json.dumps({"id": v}).encode()).decode()
              for v in (first, second)]  # the value stands in neither as such
    text = f"/up?a={pieces[0]}&b={pieces[1]}"
    for value, shown, hidden in [(first, pieces[1], pieces[0]), (second, pieces[0], pieces[1])]:
        for _ in range(2):  # the second time from what was remembered
            out = Masker([Detection(1, "identifier.device", "known", "url", "a.id",
                                    ("base64", "json"), "imei", value, 1.0)])(text)
            assert shown in out and hidden not in out
            assert len(out) == len(text)


@pytest.mark.parametrize("text", [
    f"/p?imei={IMEI}&x=1",  # found as it stands
    f"/p?imei=%{IMEI.encode().hex()[:2].upper()}{IMEI[1:]}",  # read through an escape
    f"/p/{base64.b64encode(json.dumps({'imei': IMEI}).encode()).decode()}",  # peeled
    "/p?seq=12&t=3",  # nothing to hide
])
def test_a_text_is_masked_the_same_searched_form_by_form_or_by_the_automaton(text: str
                                                                             ) -> None:
    """A short text is searched for each form in turn, a long one by the automaton: the
    same spans masked either way (``MAX_NAIVE`` sits between them)."""
    from auditor.mask import MAX_NAIVE

    pad = "/" + "z" * MAX_NAIVE  # forms x characters well past the bound
    hide = Masker([_det(IMEI), _det("39.98312,116.30791", category="location.precise")])
    short, long = hide(text), hide(text + pad)
    assert long == short + pad
    assert (IMEI not in short) and (short != text) == ("seq" not in text)


@pytest.mark.parametrize("value", [
    "", "864536040123455", "39.98246,116.30648", "3c:5a:b4:01:02:03", "a b+c&d=e/f?g#h%i",
    "~_.-", "Tr0ub4dor&3", "\t\r\n\x00\x7f", "".join(map(chr, range(128))), "北京 市",
    "né e", "x\u2028y",
])
def test_percent_forms_are_urllibs(value: str) -> None:
    """The percent-encoding a masker looks for is urllib's, written without it for ASCII."""
    from urllib.parse import quote, quote_plus

    from auditor.mask import _quoted

    assert _quoted(value) == {quote(value, safe=""), quote_plus(value)}


@pytest.mark.parametrize("text", [
    f"/p?imei={IMEI}&x=1", f"/p?imei=%{IMEI.encode().hex()[:2].upper()}{IMEI[1:]}",
    f"/p/{base64.b64encode(json.dumps({'imei': IMEI}).encode()).decode()}",
    "/loc?lat=39.98312&lon=116.30791", "/l?pw=Tr0ub4dor%263&again=Tr0ub4dor&3",
    "/p?seq=12&t=3", "", "body.json.imei",
])
def test_a_masker_of_values_is_the_masker_of_their_detections(text: str) -> None:
    """``Masker.of`` (category, value, encoding) masks as ``Masker`` of the detections does,
    a form two of them share (the password's, masked whole) included."""
    detections = [_det(IMEI), _det("39.98312,116.30791", category="location.precise"),
                  _det("Tr0ub4dor&3", category="credentials.password"),
                  _det("Tr0ub4dor&3", ("url",)), _det(IMEI, ("base64", "json"))]
    values = [(d.category, d.value, d.encoding) for d in detections]
    assert Masker.of(values)(text) == Masker(detections)(text)


@pytest.mark.parametrize("text", [[], ["a"], (), 5, 0, None, b"/r?d=864536040123455", b"",
                                  bytearray(b"ab"), {"a": 1}])
def test_a_text_of_another_type_fails_or_passes_as_it_always_did(text: object) -> None:
    """A damaged row's text that is no ``str``: the report's masker (``hashable_texts``)
    answers as the memo of texts that stood in front of it and the masker behind did, and
    a masker alone as it always did; the same error's kind, or the same answer."""
    import functools

    def outcome(hide) -> object:
        try:
            return hide(text)
        except Exception as e:  # noqa: BLE001 - the kind is what is compared
            return type(e)

    values = [("identifier.imei", IMEI, ())]
    assert outcome(Masker.of(values, hashable_texts=True)) == outcome(
        functools.lru_cache(64)(Masker.of(values)))
    assert outcome(Masker.of(values)) == outcome(Masker.of(values)._not_text)
