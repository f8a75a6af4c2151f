"""Coordinates near the lab's position, found by numeric proximity rather than by string.

A device rounds, reorders and reformats coordinates; what it cannot hide is that a pair of
numbers sits next to the position the lab seeded. Decimal degrees in either order, integers
scaled by 1e5 / 1e6 / 1e7 (Amap, Baidu and many watch APIs) and NMEA 0183 ``ddmm.mmmm,N``
all count, and so does ``ddmm.mmmm`` alone when its hemisphere (``N``/``S``/``E``/``W``)
sits in a sibling field, as watch APIs split it. The precision class comes from the
resolution the device transmitted (RULES.md: 3+ decimals, about 110 m, is precise).

Chinese map SDKs (Amap, Tencent: GCJ-02; Baidu: BD-09) send the position shifted by the
national datum's obfuscation, a few hundred metres: still near the lab, so still found. When
the transmitted resolution can tell, the detection notes the datum it matched in (a layer
``gcj-02`` or ``bd-09``): a reviewer then knows the position went through such an SDK. The
conversions are the published formulas (the GCJ-02 polynomial of the "eviltransform" /
"coordtransform" libraries, and Baidu's BD-09 rotation), pure functions of the position.

Coordinates nobody seeded are reported (method ``pattern``) only next to location keys:
``lat``/``lng`` siblings (``wd``/``jd``, ``weidu``/``jingdu``) or a ``location: "lat,lon"``.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import chain

from auditor.detect import keys
from auditor.limits import MAX_PATH
from auditor.memo import Memo, memoised
from auditor.model import Detection, Field, Location

TOLERANCE_DEG = 0.5  # ~50 km: near enough to be this position, far enough for coarse rounding
PRECISE_DECIMALS = 3
CONFIDENCE = 0.9
PATTERN_CONFIDENCE = 0.85
SCALES: tuple[int, ...] = (5, 6, 7)  # integer coordinates: degrees times 10**scale
MAX_SCALED_SCAN = 64 * 1024  # scaled and NMEA forms are looked for in short values only

_DECIMAL = re.compile(r"(?<![\d.])-?\d{1,3}\.(\d+)(?![\d.])")
_SCALED = re.compile(r"(?<![\d.])-?\d{6,10}(?![\d.])")
# NMEA 0183: latitude ddmm.mmmm and longitude dddmm.mmmm, each followed by its hemisphere.
_NMEA = re.compile(r"(?<![\d.])(\d{2,3})([0-5]\d)\.(\d+),?([NSEW])(?![A-Za-z])")
# ddmm.mmmm alone in a field: a degrees-minutes value whose hemisphere is a sibling field.
_DM = re.compile(r"\s*(\d{2,3})([0-5]\d)\.(\d+)\s*")
HEMISPHERES = frozenset("NSEW")
MAX_LETTER = 3  # characters of a field holding a hemisphere letter, spaces included
# Every coordinate form has a digit, a point and a digit (decimal degrees, NMEA and
# ``ddmm.mmmm`` alone) or six digits in a row (scaled integers): a field without either
# (most: words, small counters, ids with dashes) is told by one search in C. The same
# ``\d`` as the forms'.
_MAYBE = re.compile(r"\d\.\d|\d{6}")
# One decimal number alone, the commonest coordinate value: see ``find_locations``.
_ONE_DECIMAL = re.compile(r"-?\d{1,3}\.(\d+)")
_PAIR = re.compile(r"^\s*(-?\d{1,3}\.\d+)\s*[,|; ]\s*(-?\d{1,3}\.\d+)\s*$")


# Krasovsky 1940, the ellipsoid of the GCJ-02 formulas
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
_BD_X_PI = math.pi * 3000.0 / 180.0
# A datum is noted only when the value resolves it (4+ decimals, about 11 m, against shifts
# of hundreds of metres) and lies this close to it: nearer than any other datum's point.
DATUM_DECIMALS = 4
DATUM_MATCH_DEG = 0.0005
WGS84, GCJ02, BD09 = "wgs-84", "gcj-02", "bd-09"
DATUM_MEMO = 64  # lab positions whose conversions are remembered (a session has one)


def _out_of_china(lat: float, lon: float) -> bool:
    """The published formulas leave positions outside China's bounding box as they are."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _shift_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
    return ret


def _shift_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    return ret


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """A WGS-84 position as GCJ-02 (what Amap and Tencent maps send)."""
    if _out_of_china(lat, lon):
        return lat, lon
    dlat = _shift_lat(lon - 105.0, lat - 35.0)
    dlon = _shift_lon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _GCJ_EE * math.sin(rad) ** 2
    dlat = dlat * 180.0 / (_GCJ_A * (1 - _GCJ_EE) / (magic * math.sqrt(magic)) * math.pi)
    dlon = dlon * 180.0 / (_GCJ_A / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lat + dlat, lon + dlon


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """A GCJ-02 position as BD-09 (what Baidu maps send)."""
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _BD_X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


@memoised(DATUM_MEMO)
def datums(here: Location) -> dict[str, tuple[float, float]]:
    """The lab's position in each datum a device may send it in: the same few positions
    every message of a session, so remembered rather than converted per detection."""
    gcj = wgs84_to_gcj02(here.lat, here.lon)
    return {WGS84: (here.lat, here.lon), GCJ02: gcj, BD09: gcj02_to_bd09(*gcj)}


def datum_of(lat: float, lon: float, decimals: int, here: Location) -> str:
    """The datum a transmitted position matches (WGS-84 unless the value resolves another
    and lies by its point): "" when it cannot tell."""
    if decimals < DATUM_DECIMALS:
        return ""
    points = datums(here)
    if len({points[GCJ02], points[WGS84]}) == 1:  # outside China: one position
        return ""
    # the nearest point, the first of equals (as ``min`` picks), in a plain loop: this runs
    # for every position found
    items = iter(points.items())
    name, (plat, plon) = next(items)
    nearest = math.hypot(lat - plat, lon - plon)
    for other, (plat, plon) in items:
        distance = math.hypot(lat - plat, lon - plon)
        if distance < nearest:
            name, nearest = other, distance
    return name if nearest <= DATUM_MATCH_DEG else ""


# A number near the seeded latitude or longitude: (field, text, degrees, decimals). A plain
# tuple: one is made for every coordinate of every message.
_Hit = tuple[Field, str, float, int]


def _hemispheres(fields: Iterable[Field]) -> dict[str, set[str]]:
    """Parent path -> the hemisphere letters its fields hold (``{"ns": "N", "ew": "E"}``)."""
    out: dict[str, set[str]] = {}
    for f in fields:
        if len(f.value) > MAX_LETTER:  # most fields: told by their length alone
            continue
        letter = f.value.strip().upper()
        if len(letter) == 1 and letter in HEMISPHERES:
            out.setdefault(keys.parent(f.path), set()).add(letter)
    return out


def _degrees_minutes(f: Field, letters: set[str], here: Location
                     ) -> Iterator[tuple[str, float, int]]:
    """A field that is ``ddmm.mmmm`` alone, signed by a hemisphere of its siblings: N or S
    for a latitude, E or W for a longitude."""
    m = _DM.fullmatch(f.value)
    if m is None:
        return
    degrees, minutes, fraction = m.groups()
    value = int(degrees) + float(f"{minutes}.{fraction}") / 60
    for letter in letters:
        signed = -value if letter in "SW" else value
        seeded = here.lat if letter in "NS" else here.lon
        if abs(signed - seeded) <= TOLERANCE_DEG:
            yield f.value.strip(), signed, len(fraction) + 1


def _numbers(f: Field, here: Location) -> Iterator[tuple[str, float, int]]:
    """(text, degrees, decimal places or their equivalent) of every coordinate-like number.
    Decimal degrees and NMEA hold a point: a value without one (a timestamp, an id) is
    searched for scaled integers only."""
    point = "." in f.value
    for m in _DECIMAL.finditer(f.value) if point else ():
        yield m.group(0), float(m.group(0)), len(m.group(1))
    if len(f.value) > MAX_SCALED_SCAN:
        return
    for m in _SCALED.finditer(f.value):
        text = m.group(0)
        for scale in SCALES:
            value = int(text) / 10 ** scale
            if _near(value, here):
                kept = len(text.lstrip("-")) - len(text.lstrip("-").rstrip("0"))
                yield text, value, scale - kept
                break
    for m in _NMEA.finditer(f.value) if point else ():
        degrees, minutes, fraction, hemisphere = m.groups()
        value = int(degrees) + float(f"{minutes}.{fraction}") / 60
        # one more decimal of minutes is about one more decimal of degrees (1' = 1.85 km)
        yield m.group(0), -value if hemisphere in "SW" else value, len(fraction) + 1


def _near(value: float, here: Location) -> bool:
    return abs(value - here.lat) <= TOLERANCE_DEG or abs(value - here.lon) <= TOLERANCE_DEG


def _scaled(text: str, here: Location) -> list[tuple[str, float, int]]:
    """``_numbers`` of a value that is one run of digits (``str.isdecimal``: the ``\\d`` of
    the forms): a scaled integer when it has six to ten digits, nothing otherwise."""
    if not 6 <= len(text) <= 10:
        return []
    for scale in SCALES:
        value = int(text) / 10 ** scale
        if _near(value, here):
            return [(text, value, scale - (len(text) - len(text.rstrip("0"))))]
    return []


def find_locations(tx_id: int, fields: Iterable[Field], here: Location) -> list[Detection]:
    """Detections for every latitude-like number that has a longitude-like partner of its own."""
    lats, lons = _hits(list(fields), here)
    if not lats or not lons:  # no pair: most messages without a position
        return []
    out: list[Detection] = []
    for lat, partner in _pairs(lats, lons, here.lat):
        lat_field, text, number, decimals = lat
        decimals = min(decimals, partner[3])
        category = "location.precise" if decimals >= PRECISE_DECIMALS else "location.coarse"
        lon_path = partner[0].path
        path = lat_field.path if lon_path == lat_field.path else f"{lat_field.path}+{lon_path}"
        datum = datum_of(number, partner[2], decimals, here)
        encoding = ((*lat_field.encoding, datum) if datum and datum != WGS84
                    else lat_field.encoding)
        out.append(Detection(tx_id, category, "known", lat_field.location, path, encoding,
                             "location", f"{text},{partner[1]}", CONFIDENCE))
    return out


def _hits(fields: list[Field], here: Location) -> tuple[list[_Hit], list[_Hit]]:
    """The numbers near the seeded latitude, and those near its longitude, in field order.

    Speed (this runs on every field of every message): the two commonest coordinate-like
    values, a run of digits (a timestamp, an id, a scaled integer) and one decimal number
    alone (``39.98279``), are read by one test each instead of the three searches of
    ``_numbers``, with the same result: in a value that is one digit run, only ``_SCALED``
    can match, and only the whole run; in ``-?ddd.ddd`` only ``_DECIMAL`` can, and only the
    whole value (``_SCALED`` and ``_NMEA`` need more digits before the point, ``_DM`` too).
    ``str.isdecimal`` holds for the characters ``\\d`` matches (Unicode category Nd)."""
    lats: list[_Hit] = []
    lons: list[_Hit] = []
    hemispheres = _hemispheres(fields)
    lat0, lon0 = here.lat, here.lon
    plain = _ONE_DECIMAL.fullmatch
    maybe = _MAYBE.search
    for f in fields:
        value = f.value
        found: Iterable[tuple[str, float, int]]
        if value.isdecimal():
            found = _scaled(value, here)
        elif (m := plain(value)) is not None:
            found = ((value, float(value), len(m.group(1))),)
        elif maybe(value) is None:  # no coordinate form can match: most other fields
            continue
        else:
            found = _numbers(f, here)
        if hemispheres:
            letters = hemispheres.get(keys.parent(f.path))
            if letters:
                found = chain(found, _degrees_minutes(f, letters, here))
        for text, number, decimals in found:
            if abs(number - lat0) <= TOLERANCE_DEG:
                lats.append((f, text, number, decimals))
            elif abs(number - lon0) <= TOLERANCE_DEG:
                lons.append((f, text, number, decimals))
    return lats, lons


def _pairs(lats: list[_Hit], lons: list[_Hit], lat0: float) -> list[tuple[_Hit, _Hit]]:
    """(latitude, longitude) pairs in the latitudes' order. One longitude pairs with one
    latitude, the closest latitude first: an altitude or a body temperature near the seeded
    latitude must not claim the real position's longitude. One latitude takes the longitude
    ``_Free.take`` would give it (the same field's, a sibling's, else the first): the
    commonest message, told without building the index."""
    if len(lats) == 1:
        return [(lats[0], _Free.first_for(lats[0], lons))]
    free = _Free(lons)
    pairs: dict[int, _Hit] = {}
    for i in sorted(range(len(lats)), key=lambda i: abs(lats[i][2] - lat0)):
        partner = free.take(lats[i])
        if partner is not None:
            pairs[i] = partner
    return [(lat, pairs[i]) for i, lat in enumerate(lats) if i in pairs]


class _Free:
    """Longitudes not yet paired, indexed so that pairing stays linear in the field count."""

    def __init__(self, lons: list[_Hit]) -> None:
        self._order = deque(range(len(lons)))
        self._lons = lons
        self._used: set[int] = set()
        self._by_path: dict[str, deque[int]] = {}
        self._by_parent: dict[str, deque[int]] = {}
        for i, h in enumerate(lons):
            self._by_path.setdefault(h[0].path, deque()).append(i)
            self._by_parent.setdefault(h[0].path.rsplit(".", 1)[0], deque()).append(i)

    @staticmethod
    def first_for(lat: _Hit, lons: list[_Hit]) -> _Hit:
        """What ``take`` gives the first latitude asking (``lons`` not empty): the first
        longitude in its field, else the first in a sibling, else the first."""
        path = lat[0].path
        parent = path.rsplit(".", 1)[0]
        sibling = None
        for h in lons:
            other = h[0].path
            if other == path:
                return h
            if sibling is None and other.rsplit(".", 1)[0] == parent:
                sibling = h
        return sibling if sibling is not None else lons[0]

    def take(self, lat: _Hit) -> _Hit | None:
        """The longitude written closest to this latitude: the same field first, then a
        sibling, then any; each goes to one latitude only."""
        path = lat[0].path
        for pool in (self._by_path.get(path, deque()),
                     self._by_parent.get(path.rsplit(".", 1)[0], deque()),
                     self._order):
            while pool and pool[0] in self._used:
                pool.popleft()
            if pool:
                self._used.add(pool[0])
                return self._lons[pool[0]]
        return None


def _category(decimals: int) -> str:
    return "location.precise" if decimals >= PRECISE_DECIMALS else "location.coarse"


def _coordinate(text: str) -> tuple[float, int] | None:
    m = _DECIMAL.fullmatch(text.strip())
    return (float(m.group(0)), len(m.group(1))) if m else None


def _plausible(lat: float, lon: float) -> bool:
    return abs(lat) <= 90 and abs(lon) <= 180 and not (abs(lat) < 1e-6 and abs(lon) < 1e-6)


# What a path's key says for ``find_coordinate_pairs``: a latitude, a longitude, a whole
# position, or nothing (most paths). Remembered per path: a device sends the same paths
# message after message, and detection bounds them to ``limits.MAX_PATH`` characters (a
# longer one is worked out and not kept).
ROLE_LAT, ROLE_LON, ROLE_PAIR = "lat", "lon", "pair"
_PAIR_ROLES: Memo[str, str] = Memo(4096)
_remembered_role = _PAIR_ROLES.lookup  # its dict.get, without a Python call around it


def _pair_role(path: str) -> str:
    role = _PAIR_ROLES.get(path)
    if role is None:
        key = keys.key_of(path)
        norm = keys.normalise(key)
        role = (ROLE_LAT if norm in keys.LAT_KEYS else ROLE_LON if norm in keys.LON_KEYS
                else ROLE_PAIR if keys.matches(key, keys.LOCATION_KEYS) else "")
        if len(path) <= MAX_PATH:
            _PAIR_ROLES.put(path, role)
    return role


def find_coordinate_pairs(tx_id: int, fields: Iterable[Field],
                          make: Callable[..., Detection] = Detection) -> list[Detection]:
    """Unseeded coordinates next to location keys: ``lat``/``lng`` siblings, or one value
    ``"lat,lon"`` under a key such as ``location``. ``0.0/0.0`` is a placeholder.

    ``make`` builds each from a Detection's fields, in their order: the Detector passes a
    lighter row for ``dedupe`` (a seeded position, when the lab gave one, reports the
    same fact and this one is dropped there)."""
    fields = list(fields)
    out: list[Detection] = []
    lats: dict[str, Field] = {}
    lons: dict[str, Field] = {}
    roles = _remembered_role
    for f in fields:
        role = roles(f.path)  # the memo's dict asked inline: this runs for every field
        if role is None:
            role = _pair_role(f.path)
        if not role:  # most fields
            continue
        if role == ROLE_LAT:
            lats.setdefault(keys.parent(f.path), f)
        elif role == ROLE_LON:
            lons.setdefault(keys.parent(f.path), f)
        else:
            m = _PAIR.match(f.value)
            a, b = (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)
            if m and (_plausible(a, b) or _plausible(b, a)):  # lat,lon or lon,lat
                decimals = min(len(m.group(i).split(".")[1]) for i in (1, 2))
                out.append(make(tx_id, _category(decimals), "pattern", f.location, f.path,
                                     f.encoding, "", f"{m.group(1)},{m.group(2)}",
                                     PATTERN_CONFIDENCE))
    for parent, lat_field in lats.items():
        lon_field = lons.get(parent)
        if lon_field is None:
            continue
        lat, lon = _coordinate(lat_field.value), _coordinate(lon_field.value)
        if lat is None or lon is None or not _plausible(lat[0], lon[0]):
            continue
        out.append(make(tx_id, _category(min(lat[1], lon[1])), "pattern",
                             lat_field.location, f"{lat_field.path}+{lon_field.path}",
                             lat_field.encoding, "", f"{lat_field.value},{lon_field.value}",
                             PATTERN_CONFIDENCE))
    return out
