"""auditor/detect/location.py: coordinates near the lab by numeric proximity, not by string."""

from __future__ import annotations

import pytest

from auditor.detect.location import CONFIDENCE, find_locations
from auditor.model import Field
from auditor.profile import Location
from tests.factories import LAT, LON

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
])
def test_not_found(fields: list) -> None:
    assert _found(*fields) == []


def test_detection_keeps_transmission_location_and_encoding() -> None:
    fields = [Field("query", "query.d.base64.lat", "39.98312", ("base64", "json")),
              Field("query", "query.d.base64.lon", "116.30791", ("base64", "json"))]
    (d,) = find_locations(7, fields, HERE)
    assert (d.transmission, d.method, d.location, d.encoding, d.profile_key, d.confidence) == (
        7, "known", "query", ("base64", "json"), "location", CONFIDENCE)
