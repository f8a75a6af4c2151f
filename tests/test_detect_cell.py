"""auditor/detect/cell.py: cell towers as JSON siblings or delimited strings."""

from __future__ import annotations

import pytest

from auditor.detect import cell, keys
from auditor.detect.cell import find_cells
from auditor.limits import MAX_PATH
from auditor.model import Cell, Field

TOWERS = (Cell(460, 0, 10140, 23561), Cell(460, 1, 4291, 188543))


def _found(*fields: tuple[str, str]) -> list[tuple[str, str, str]]:
    fs = [Field("body", path, value) for path, value in fields]
    return [(d.method, d.field, d.value) for d in find_cells(3, fs, TOWERS)]


@pytest.mark.parametrize(("fields", "expected"), [
    pytest.param([("b.t.0.cellId", "23561"), ("b.t.0.locationAreaCode", "10140"),
                  ("b.t.0.mobileCountryCode", "460"), ("b.t.0.mobileNetworkCode", "0")],
                 [("known", "b.t.0.locationAreaCode+b.t.0.cellId", "460,0,10140,23561")],
                 id="google-geolocation-object"),
    pytest.param([("b.c.mcc", "460"), ("b.c.mnc", "01"), ("b.c.lac", "10C3"),
                  ("b.c.ci", "2E07F")],
                 [("known", "b.c.lac+b.c.ci", "460,01,10C3,2E07F")], id="hex-lac-and-ci"),
    pytest.param([("b.c.tac", "10140"), ("b.c.eci", "23561")],
                 [("known", "b.c.tac+b.c.eci", "10140,23561")], id="lte-names-without-mcc"),
    pytest.param([("q.bts", "460,0,10140,23561,-65")],
                 [("known", "q.bts", "460,0,10140,23561")], id="amap-bts"),
    pytest.param([("q.nearbts", "460,0,9350,42211,-90|460,1,4291,188543,-80")],
                 [("known", "q.nearbts", "460,1,4291,188543")], id="amap-nearbts-second"),
    pytest.param([("b.text", "[3G*1*0*UD,1,2,V,0,N,0,E,0,0,0,0,1,460,0,10140,23561,14,0]")],
                 [("known", "b.text", "460,0,10140,23561")], id="watch-frame"),
    pytest.param([("b.c.mcc", "460"), ("b.c.mnc", "0"), ("b.c.lac", "9350"),
                  ("b.c.cid", "42211")],
                 [("pattern", "b.c.lac+b.c.cid", "460,0,9350,42211")],
                 id="unseeded-object-with-real-mcc"),
    pytest.param([("q.bts", "460,0,9350,42211,-90")],
                 [("pattern", "q.bts", "460,0,9350,42211")], id="unseeded-bts"),
])
def test_found(fields: list, expected: list) -> None:
    assert _found(*fields) == expected


@pytest.mark.parametrize("fields", [
    pytest.param([("b.c.mcc", "460"), ("b.c.mnc", "00")], id="mcc-mnc-alone"),
    pytest.param([("b.c.mcc", "999"), ("b.c.lac", "9350"), ("b.c.cid", "42211")],
                 id="unseeded-without-real-mcc"),
    pytest.param([("b.c.lac", "9350"), ("b.c.cid", "42211")], id="unseeded-without-mcc"),
    pytest.param([("b.v", "460,0,9350,42211,-90")], id="unseeded-string-without-cell-key"),
    pytest.param([("b.v", "10140")], id="lac-alone"),
    pytest.param([("b.v", "1,2,10140,5")], id="lac-next-to-other-number"),
    pytest.param([("q.bts", "460,0,0,0")], id="zero-cell"),
])
def test_not_found(fields: list) -> None:
    assert _found(*fields) == []


@pytest.mark.parametrize("path", [
    "body.json.bts", "query.nearbts", "body.json.cellTowers.0.x", "body.json.note", "",
    "body.json.lbs." + "k" * 2000,
])
def test_a_remembered_cell_path_is_the_fresh_answer(path: str) -> None:
    """Whether a path's keys say cell is remembered per path: the same as the key tables
    say, asked once or twice, and a path over MAX_PATH is not kept."""
    fresh = keys.any_segment(path, keys.CELL_KEYS)
    assert cell._cell_path(path) == cell._cell_path(path) == fresh
    assert (path in cell._CELL_PATHS) == (len(path) <= MAX_PATH)


@pytest.mark.parametrize("value", ["460 0 4286 28711", "460\t0\t4286\t28711", "460*0*4286*28711",
                                   "460_0_4286_28711", "4600042862871", "460,0,4286,28711"])
def test_a_delimited_tower_under_a_cell_key_is_found_whatever_the_separator(value: str) -> None:
    """The separator test before splitting lets every separator of ``_SPLIT`` through, and a
    value without one (a single token) holds no delimited tower."""
    found = find_cells(1, [Field("body", "body.json.bts", value)], ())
    assert bool(found) == (value != "4600042862871")
