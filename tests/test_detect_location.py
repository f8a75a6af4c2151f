"""auditor/detect/location.py: coordinates near the lab by numeric proximity, not by string."""

from __future__ import annotations

import pytest

from auditor.detect import Detector, _as_row, keys, location
from auditor.detect.location import (
    BD09,
    CONFIDENCE,
    GCJ02,
    ROLE_LAT,
    ROLE_LON,
    ROLE_PAIR,
    WGS84,
    datums,
    find_coordinate_pairs,
    find_locations,
    gcj02_to_bd09,
    wgs84_to_gcj02,
)
from auditor.limits import MAX_PATH
from auditor.model import Detection, Field, Location, Profile
from tests.factories import LAT, LON, tx

HERE = Location(LAT, LON)


def _found(*fields: tuple[str, str]) -> list[tuple[str, str, str]]:
    fs = [Field("body", path, value) for path, value in fields]
    return [(d.category, d.field, d.value) for d in find_locations(7, fs, HERE)]


@pytest.mark.parametrize(("fields", "expected"), [
    pytest.param([("body.json.lat", "39.98312"), ("body.json.lon", "116.30791")],
                 [("location.precise", "body.json.lat+body.json.lon", "39.98312,116.30791")],
                 id="sibling-fields-precise"),
    pytest.param([("body.json.lon", "116.30791"), ("body.json.lat", "39.98312")],
                 [("location.precise", "body.json.lat+body.json.lon", "39.98312,116.30791")],
                 id="sibling-fields-lon-first"),
    pytest.param([("body.json.lat", "39.983"), ("body.json.lon", "116.308")],
                 [("location.precise", "body.json.lat+body.json.lon", "39.983,116.308")],
                 id="three-decimals-precise"),
    pytest.param([("body.json.lat", "39.98"), ("body.json.lon", "116.31")],
                 [("location.coarse", "body.json.lat+body.json.lon", "39.98,116.31")],
                 id="two-decimals-coarse"),
    pytest.param([("body.json.lat", "39.98312"), ("body.json.lon", "116.3")],
                 [("location.coarse", "body.json.lat+body.json.lon", "39.98312,116.3")],
                 id="coarser-of-the-pair-decides"),
    pytest.param([("body.json.loc", "116.30791,39.98312")],
                 [("location.precise", "body.json.loc", "39.98312,116.30791")],
                 id="lon-lat-in-one-string"),
    pytest.param([("body.text", "lat=39.98312&lng=116.30791")],
                 [("location.precise", "body.text", "39.98312,116.30791")],
                 id="lat-lon-in-text"),
    pytest.param([("body.json.a.lat", "39.98312"), ("body.json.a.lon", "116.30791"),
                  ("body.json.b.lat", "39.9"), ("body.json.b.lon", "116.3")],
                 [("location.precise", "body.json.a.lat+body.json.a.lon", "39.98312,116.30791"),
                  ("location.coarse", "body.json.b.lat+body.json.b.lon", "39.9,116.3")],
                 id="two-points-pair-with-their-siblings"),
    pytest.param([("body.json.temp", "39.6"), ("body.json.lat", "39.98312"),
                  ("body.json.lon", "116.30791")],
                 [("location.precise", "body.json.lat+body.json.lon", "39.98312,116.30791")],
                 id="body-temperature-does-not-take-the-longitude"),
    pytest.param([("body.json.lat", "39.98312"), ("body.json.lon", "116.30791"),
                  ("body.json.alt", "40.2")],
                 [("location.precise", "body.json.lat+body.json.lon", "39.98312,116.30791")],
                 id="altitude-does-not-add-a-coarse-location"),
    *(pytest.param([("body.json.y", str(round(LAT * 10 ** k))), ("body.json.x",
                                                                   str(round(LON * 10 ** k)))],
                   [("location.precise", "body.json.y+body.json.x",
                     f"{round(LAT * 10 ** k)},{round(LON * 10 ** k)}")],
                   id=f"integers-scaled-1e{k}") for k in (5, 6, 7)),
    pytest.param([("body.json.y", "3998000"), ("body.json.x", "11631000")],
                 [("location.coarse", "body.json.y+body.json.x", "3998000,11631000")],
                 id="scaled-with-trailing-zeros-is-coarse"),
    pytest.param([("body.text", "*HQ,1234567890,V1,104000,A,3958.9872,N,11618.4746,E,0.0#")],
                 [("location.precise", "body.text", "3958.9872,N,11618.4746,E")],
                 id="nmea-ddmm-mmmm"),
    pytest.param([("body.text", "A,3959,N,11618,E")], [], id="nmea-without-minute-decimals"),
    pytest.param([("body.text", "$GPRMC,A,3958.9,N,11618.5,E")],
                 [("location.coarse", "body.text", "3958.9,N,11618.5,E")],
                 id="nmea-tenth-of-a-minute-is-coarse"),
])
def test_found(fields: list, expected: list) -> None:
    assert _found(*fields) == expected


@pytest.mark.parametrize("fields", [
    pytest.param([("body.json.lat", "31.23041"), ("body.json.lon", "121.47370")],
                 id="far-away-shanghai"),
    pytest.param([("body.json.lat", "-39.98312"), ("body.json.lon", "-116.30791")],
                 id="mirrored-hemisphere"),
    pytest.param([("body.json.fw", "1.4.2")], id="version-string"),
    pytest.param([("body.json.v", "39.98.1"), ("body.json.w", "116.30.2")],
                 id="version-strings-near-the-numbers"),
    pytest.param([("body.json.ts", "1732790000.123")], id="timestamp"),
    pytest.param([("body.json.lat", "39.98312")], id="latitude-without-partner"),
    pytest.param([("body.json.lon", "116.30791")], id="longitude-without-partner"),
    pytest.param([("body.json.lat", "39.98312"), ("body.json.t", "40.1")],
                 id="two-latitude-like-numbers"),
    pytest.param([("body.json.lat", "40"), ("body.json.lon", "116")], id="integers"),
    pytest.param([("body.json.x", "")], id="empty"),
    pytest.param([("body.json.ts", "1732790000"), ("body.json.ms", "1732790000123")],
                 id="epoch-times-are-no-scaled-coordinates"),
    pytest.param([("body.text", "3958.9872,S,11618.4746,W")], id="nmea-other-hemisphere"),
])
def test_not_found(fields: list) -> None:
    assert _found(*fields) == []


def test_detection_keeps_transmission_location_and_encoding() -> None:
    fields = [Field("query", "query.d.base64.lat", "39.98312", ("base64", "json")),
              Field("query", "query.d.base64.lon", "116.30791", ("base64", "json"))]
    (d,) = find_locations(7, fields, HERE)
    assert (d.transmission, d.method, d.location, d.encoding, d.profile_key, d.confidence) == (
        7, "known", "query", ("base64", "json"), "location", CONFIDENCE)


def _pairs(*fields: tuple[str, str]) -> list[tuple[str, str, str, str]]:
    fs = [Field("body", path, value) for path, value in fields]
    return [(d.category, d.method, d.field, d.value) for d in find_coordinate_pairs(7, fs)]


@pytest.mark.parametrize(("fields", "expected"), [
    pytest.param([("b.pos.lat", "31.23041"), ("b.pos.lng", "121.47370")],
                 [("location.precise", "pattern", "b.pos.lat+b.pos.lng", "31.23041,121.47370")],
                 id="lat-lng-siblings"),
    pytest.param([("b.wd", "31.23041"), ("b.jd", "121.47370")],
                 [("location.precise", "pattern", "b.wd+b.jd", "31.23041,121.47370")],
                 id="pinyin-abbreviations"),
    pytest.param([("b.weidu", "31.2"), ("b.jingdu", "121.5")],
                 [("location.coarse", "pattern", "b.weidu+b.jingdu", "31.2,121.5")],
                 id="pinyin-coarse"),
    pytest.param([("b.location", "121.47370,31.23041")],
                 [("location.precise", "pattern", "b.location", "121.47370,31.23041")],
                 id="location-key-pair"),
    pytest.param([("b.gps", "31.23041|121.47370")],
                 [("location.precise", "pattern", "b.gps", "31.23041|121.47370".replace("|", ","))],
                 id="gps-key-pipe"),
])
def test_unseeded_pairs_found(fields: list, expected: list) -> None:
    assert _pairs(*fields) == expected


@pytest.mark.parametrize("fields", [
    pytest.param([("b.lat", "0.0"), ("b.lng", "0.0")], id="placeholder-zero"),
    pytest.param([("b.location", "0.0,0.0")], id="placeholder-zero-string"),
    pytest.param([("b.a.lat", "31.23041"), ("b.b.lng", "121.47370")], id="not-siblings"),
    pytest.param([("b.lat", "131.2"), ("b.lng", "121.4")], id="latitude-out-of-range"),
    pytest.param([("b.lat", "31"), ("b.lng", "121")], id="integers"),
    pytest.param([("b.x", "0.5"), ("b.y", "0.25")], id="x-y-are-no-location-keys"),
    pytest.param([("b.ratio", "31.2,121.4")], id="pair-under-a-neutral-key"),
    pytest.param([("b.flat", "31.23041"), ("b.belong", "121.47370")], id="words-ending-in-lat"),
])
def test_unseeded_pairs_not_found(fields: list) -> None:
    assert _pairs(*fields) == []


@pytest.mark.parametrize(("convert", "wgs", "expected"), [
    # the published libraries' own reference point (wandergis/coordtransform's test)
    pytest.param(wgs84_to_gcj02, (39.915, 116.404), (39.91640428150164, 116.41024449916938),
                 id="wgs84-to-gcj02"),
    pytest.param(gcj02_to_bd09, (39.915, 116.404), (39.92133699351021, 116.41036949371029),
                 id="gcj02-to-bd09"),
    pytest.param(wgs84_to_gcj02, (48.8566, 2.3522), (48.8566, 2.3522),
                 id="outside-china-unchanged"),
])
def test_datum_conversions(convert, wgs: tuple[float, float],
                           expected: tuple[float, float]) -> None:
    assert convert(*wgs) == pytest.approx(expected, abs=1e-9)


def _shifted(datum: str, decimals: int = 6) -> tuple[str, str]:
    lat, lon = datums(HERE)[datum]
    return f"{lat:.{decimals}f}", f"{lon:.{decimals}f}"


def _datum_found(lat: str, lon: str) -> list[tuple[str, tuple[str, ...]]]:
    fs = [Field("body", "body.json.lat", lat), Field("body", "body.json.lng", lon)]
    return [(d.category, d.encoding) for d in find_locations(7, fs, HERE)]


@pytest.mark.parametrize(("lat", "lon", "expected"), [
    pytest.param(*_shifted(GCJ02), [("location.precise", ("gcj-02",))], id="gcj-02"),
    pytest.param(*_shifted(BD09), [("location.precise", ("bd-09",))], id="bd-09"),
    pytest.param(*_shifted(GCJ02, 4), [("location.precise", ("gcj-02",))],
                 id="gcj-02-four-decimals"),
    pytest.param(*_shifted(WGS84), [("location.precise", ())], id="wgs-84-not-noted"),
    pytest.param(*_shifted(GCJ02, 3), [("location.precise", ())],
                 id="three-decimals-cannot-tell"),
    pytest.param("39.99312", "116.34791", [("location.precise", ())],
                 id="near-but-in-no-datum"),
    pytest.param("31.23041", "121.47370", [], id="another-city"),
])
def test_datum_noted(lat: str, lon: str, expected: list) -> None:
    assert _datum_found(lat, lon) == expected


def _dm(degrees: float) -> str:
    whole = int(degrees)
    return f"{whole}{(degrees - whole) * 60:07.4f}"


@pytest.mark.parametrize(("fields", "expected"), [
    pytest.param([("body.json.gps.lat", _dm(LAT)), ("body.json.gps.ns", "N"),
                  ("body.json.gps.lon", _dm(LON)), ("body.json.gps.ew", "E")],
                 [("location.precise", "body.json.gps.lat+body.json.gps.lon",
                   f"{_dm(LAT)},{_dm(LON)}")], id="hemispheres-in-siblings"),
    pytest.param([("body.json.lat", _dm(LAT)), ("body.json.lon", _dm(LON)),
                  ("body.json.ns", "n"), ("body.json.ew", "e")],
                 [("location.precise", "body.json.lat+body.json.lon",
                   f"{_dm(LAT)},{_dm(LON)}")], id="lower-case-letters"),
    pytest.param([("body.json.lat", _dm(LAT)), ("body.json.lon", _dm(LON)),
                  ("body.json.ns", "N")], [], id="longitude-without-its-hemisphere"),
    pytest.param([("body.json.lat", _dm(LAT)), ("body.json.lon", _dm(LON))], [],
                 id="no-hemisphere-no-reading"),
    pytest.param([("body.json.a.lat", _dm(LAT)), ("body.json.a.lon", _dm(LON)),
                  ("body.json.b.ns", "N")], [], id="hemisphere-of-another-object"),
    pytest.param([("body.json.lat", _dm(LAT)), ("body.json.ns", "S"),
                  ("body.json.lon", _dm(LON)), ("body.json.ew", "E")], [],
                 id="southern-hemisphere-is-elsewhere"),
    pytest.param([("body.json.lat", "3112.3456"), ("body.json.ns", "N"),
                  ("body.json.lon", "12128.4220"), ("body.json.ew", "E")], [],
                 id="other-position"),
])
def test_degrees_minutes_with_sibling_hemisphere(fields: list, expected: list) -> None:
    assert _found(*fields) == expected


@pytest.mark.parametrize("path", [
    "body.json.lat", "query.lng", "body.json.geo.weidu", "body.json.location", "body.json.gpsPoint",
    "body.json.flat", "body.json.x-did", "body.json.0", "", "body.json." + "k" * 2000 + ".lat",
])
def test_a_remembered_path_role_is_the_fresh_one(path: str) -> None:
    """What a path's key says to the pair finder is remembered per path: the same as the key
    tables say, asked once or twice, and a path over MAX_PATH is not kept."""
    key = keys.key_of(path)
    norm = keys.normalise(key)
    fresh = (ROLE_LAT if norm in keys.LAT_KEYS else ROLE_LON if norm in keys.LON_KEYS
             else ROLE_PAIR if keys.matches(key, keys.LOCATION_KEYS) else "")
    assert location._pair_role(path) == location._pair_role(path) == fresh
    assert (path in location._PAIR_ROLES) == (len(path) <= MAX_PATH)


def _hits_by_searching(fields: list[Field], here: Location) -> tuple[list, list]:
    """``location._hits`` as written before its shortcuts: every coordinate-like field read
    by the three searches of ``_numbers`` (and ``_degrees_minutes`` under a hemisphere)."""
    lats: list = []
    lons: list = []
    hemispheres = location._hemispheres(fields)
    for f in fields:
        if location._MAYBE.search(f.value) is None:
            continue
        found = list(location._numbers(f, here))
        letters = hemispheres.get(keys.parent(f.path))
        if letters:
            found += location._degrees_minutes(f, letters, here)
        for text, value, decimals in found:
            if abs(value - here.lat) <= location.TOLERANCE_DEG:
                lats.append((f, text, value, decimals))
            elif abs(value - here.lon) <= location.TOLERANCE_DEG:
                lons.append((f, text, value, decimals))
    return lats, lons


_SCALED_LAT = str(round(LAT * 10**6))
_SCALED_LON = str(round(LON * 10**5))


@pytest.mark.parametrize("value", [
    # one digit run: a timestamp, an id, scaled integers of every length around 6-10
    "1790000000200", "1790000002", "100080", "12345", "864536040123455", _SCALED_LAT,
    _SCALED_LON, _SCALED_LAT + "0", _SCALED_LAT[:-1], "0" + _SCALED_LAT, _SCALED_LON + "000",
    str(round(LAT * 10**7)), str(round(LON * 10**7)), "0000000", "",
    # digits other than ASCII (``\d`` and ``str.isdecimal`` both take category Nd)
    "٣٩٩٨٣١٢", "３９９８３１２", "39.٩٨٣", "²³⁴⁵⁶⁷⁸",
    # one decimal number alone, and near misses that take the searches
    f"{LAT}", f"{LON}", f"-{LAT}", f"{LAT:.1f}", f"{LON:.7f}", "39.", ".98", "3998.312",
    "11618.4746", "1161.84746", f"+{LAT}", f" {LAT}", f"{LAT} ", f"{LAT}\n", f"{LAT}.5",
    f"{LAT},{LON}", f"{LON},{LAT}", f"-{LAT}-{LON}", "3958.9872N", "11618.4746,E",
    f"{LAT}E", "39.98312e2", "0x3998312", f"{_SCALED_LAT}.0", f"-{_SCALED_LAT}",
])
@pytest.mark.parametrize("path", ["body.json.lat", "body.json.gps"])
def test_hits_are_those_of_the_three_searches(value: str, path: str) -> None:
    """The shortcuts of ``_hits`` (a digit run, one decimal number) read what the searches
    read, under a hemisphere sibling or not."""
    for fields in ([Field("body", path, value)],
                   [Field("body", path, value), Field("body", "body.json.ns", "N"),
                    Field("body", "body.json.ew", "E")]):
        assert location._hits(fields, HERE) == _hits_by_searching(fields, HERE)


@pytest.mark.parametrize("lons", [
    ["body.json.lon"], ["body.json.a.lon", "body.json.lon"], ["body.json.a.lon", "body.json.b.lon"],
    ["body.json.lon", "body.json.lon"], ["body.json.a.lon", "body.json.lat", "body.json.lon"],
    ["body.json.lat"], ["body.json.lat", "body.json.lat"], ["body.json"], ["lon"],
])
def test_one_latitude_takes_what_the_index_gives(lons: list[str]) -> None:
    """One latitude skips the index of free longitudes (``_Free``) for the one ``take``
    gives: the same field's, else a sibling's, else the first."""
    lat = (Field("body", "body.json.lat", str(LAT)), str(LAT), LAT, 5)
    hits = [(Field("body", p, f"{LON + i / 1000:.5f}"), "x", LON, 5) for i, p in enumerate(lons)]
    assert location._pairs([lat], hits, LAT) == [(lat, location._Free(hits).take(lat))]


@pytest.mark.parametrize("fields", [
    [("body.json.lat", "39.98312"), ("body.json.lng", "116.30791")],
    [("body.json.location", "39.98312,116.30791")],
    [("body.json.a.lat", "12.5"), ("body.json.a.lon", "-70.25"), ("body.json.b.gps", "1.5|2.5")],
])
def test_pairs_made_as_rows_are_the_detections(fields: list[tuple[str, str]]) -> None:
    """The Detector has unseeded pairs made as rows for dedupe (``make``): the same fields
    in the same order, and what it reports of them are Detections."""
    fs = [Field("body", path, value) for path, value in fields]
    found = find_coordinate_pairs(7, fs)
    assert found and [Detection(*r) for r in find_coordinate_pairs(7, fs, _as_row)] == found
    reported = Detector(Profile()).detect(tx(id=7), fs)
    assert {type(d) for d in reported} == {Detection}
    assert [d for d in reported if d.category.startswith("location.")] == found
