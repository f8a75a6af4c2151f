"""Coordinates near the lab's position, found by numeric proximity rather than by string.

A device rounds, reorders and reformats coordinates; what it cannot hide is that a pair of
numbers sits next to the position the lab seeded. Decimal degrees in either order, integers
scaled by 1e5 / 1e6 / 1e7 (Amap, Baidu and many watch APIs) and NMEA 0183 ``ddmm.mmmm,N``
all count. The precision class comes from the resolution the device transmitted (RULES.md:
3+ decimals, about 110 m, is precise).

Coordinates nobody seeded are reported (method ``pattern``) only next to location keys:
``lat``/``lng`` siblings (``wd``/``jd``, ``weidu``/``jingdu``) or a ``location: "lat,lon"``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from auditor.detect import keys
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
_PAIR = re.compile(r"^\s*(-?\d{1,3}\.\d+)\s*[,|; ]\s*(-?\d{1,3}\.\d+)\s*$")


@dataclass(frozen=True)
class _Hit:
    field: Field
    text: str
    value: float
    decimals: int


def _numbers(f: Field, here: Location) -> Iterator[tuple[str, float, int]]:
    """(text, degrees, decimal places or their equivalent) of every coordinate-like number."""
    for m in _DECIMAL.finditer(f.value):
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
    for m in _NMEA.finditer(f.value):
        degrees, minutes, fraction, hemisphere = m.groups()
        value = int(degrees) + float(f"{minutes}.{fraction}") / 60
        # one more decimal of minutes is about one more decimal of degrees (1' = 1.85 km)
        yield m.group(0), -value if hemisphere in "SW" else value, len(fraction) + 1


def _near(value: float, here: Location) -> bool:
    return abs(value - here.lat) <= TOLERANCE_DEG or abs(value - here.lon) <= TOLERANCE_DEG


def find_locations(tx_id: int, fields: Iterable[Field], here: Location) -> list[Detection]:
    """Detections for every latitude-like number that has a longitude-like partner of its own."""
    lats: list[_Hit] = []
    lons: list[_Hit] = []
    for f in fields:
        for text, value, decimals in _numbers(f, here):
            if abs(value - here.lat) <= TOLERANCE_DEG:
                lats.append(_Hit(f, text, value, decimals))
            elif abs(value - here.lon) <= TOLERANCE_DEG:
                lons.append(_Hit(f, text, value, decimals))
    # One longitude pairs with one latitude, the closest latitude first: an altitude or a
    # body temperature near the seeded latitude must not claim the real position's longitude.
    free = _Free(lons)
    pairs: dict[int, _Hit] = {}
    for i in sorted(range(len(lats)), key=lambda i: abs(lats[i].value - here.lat)):
        partner = free.take(lats[i])
        if partner is not None:
            pairs[i] = partner
    out: list[Detection] = []
    for i, lat in enumerate(lats):
        partner = pairs.get(i)
        if partner is None:
            continue
        decimals = min(lat.decimals, partner.decimals)
        category = "location.precise" if decimals >= PRECISE_DECIMALS else "location.coarse"
        same = partner.field.path == lat.field.path
        path = lat.field.path if same else f"{lat.field.path}+{partner.field.path}"
        out.append(Detection(tx_id, category, "known", lat.field.location, path,
                             lat.field.encoding, "location", f"{lat.text},{partner.text}",
                             CONFIDENCE))
    return out


class _Free:
    """Longitudes not yet paired, indexed so that pairing stays linear in the field count."""

    def __init__(self, lons: list[_Hit]) -> None:
        self._order = deque(range(len(lons)))
        self._lons = lons
        self._used: set[int] = set()
        self._by_path: dict[str, deque[int]] = {}
        self._by_parent: dict[str, deque[int]] = {}
        for i, h in enumerate(lons):
            self._by_path.setdefault(h.field.path, deque()).append(i)
            self._by_parent.setdefault(h.field.path.rsplit(".", 1)[0], deque()).append(i)

    def take(self, lat: _Hit) -> _Hit | None:
        """The longitude written closest to this latitude: the same field first, then a
        sibling, then any; each goes to one latitude only."""
        for pool in (self._by_path.get(lat.field.path, deque()),
                     self._by_parent.get(lat.field.path.rsplit(".", 1)[0], deque()),
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


def find_coordinate_pairs(tx_id: int, fields: Iterable[Field]) -> list[Detection]:
    """Unseeded coordinates next to location keys: ``lat``/``lng`` siblings, or one value
    ``"lat,lon"`` under a key such as ``location``. ``0.0/0.0`` is a placeholder."""
    fields = list(fields)
    out: list[Detection] = []
    lats: dict[str, Field] = {}
    lons: dict[str, Field] = {}
    for f in fields:
        key = keys.normalise(keys.key_of(f.path))
        if key in keys.LAT_KEYS:
            lats.setdefault(keys.parent(f.path), f)
        elif key in keys.LON_KEYS:
            lons.setdefault(keys.parent(f.path), f)
        elif keys.matches(keys.key_of(f.path), keys.LOCATION_KEYS):
            m = _PAIR.match(f.value)
            a, b = (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)
            if m and (_plausible(a, b) or _plausible(b, a)):  # lat,lon or lon,lat
                decimals = min(len(m.group(i).split(".")[1]) for i in (1, 2))
                out.append(Detection(tx_id, _category(decimals), "pattern", f.location, f.path,
                                     f.encoding, "", f"{m.group(1)},{m.group(2)}",
                                     PATTERN_CONFIDENCE))
    for parent, lat_field in lats.items():
        lon_field = lons.get(parent)
        if lon_field is None:
            continue
        lat, lon = _coordinate(lat_field.value), _coordinate(lon_field.value)
        if lat is None or lon is None or not _plausible(lat[0], lon[0]):
            continue
        out.append(Detection(tx_id, _category(min(lat[1], lon[1])), "pattern",
                             lat_field.location, f"{lat_field.path}+{lon_field.path}",
                             lat_field.encoding, "", f"{lat_field.value},{lon_field.value}",
                             PATTERN_CONFIDENCE))
    return out
