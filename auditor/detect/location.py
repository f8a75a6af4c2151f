"""Coordinates near the lab's position, found by numeric proximity rather than by string.

A device rounds, reorders and reformats coordinates; what it cannot hide is that a pair of
numbers sits next to the position the lab seeded. The precision class comes from the
resolution the device transmitted (RULES.md: 3+ decimals, about 110 m, is precise).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from auditor.model import Detection, Field
from auditor.profile import Location

TOLERANCE_DEG = 0.5  # ~50 km: near enough to be this position, far enough for coarse rounding
PRECISE_DECIMALS = 3
CONFIDENCE = 0.9

_DECIMAL = re.compile(r"(?<![\d.])-?\d{1,3}\.(\d+)(?![\d.])")


@dataclass(frozen=True)
class _Hit:
    field: Field
    text: str
    decimals: int


def _numbers(f: Field) -> Iterator[tuple[str, float, int]]:
    for m in _DECIMAL.finditer(f.value):
        yield m.group(0), float(m.group(0)), len(m.group(1))


def find_locations(tx_id: int, fields: Iterable[Field], here: Location) -> list[Detection]:
    """Detections for every latitude-like number that has a longitude-like partner of its own."""
    lats: list[_Hit] = []
    lons: list[_Hit] = []
    for f in fields:
        for text, value, decimals in _numbers(f):
            if abs(value - here.lat) <= TOLERANCE_DEG:
                lats.append(_Hit(f, text, decimals))
            elif abs(value - here.lon) <= TOLERANCE_DEG:
                lons.append(_Hit(f, text, decimals))
    # One longitude pairs with one latitude, the closest latitude first: an altitude or a
    # body temperature near the seeded latitude must not claim the real position's longitude.
    free = list(lons)
    pairs: dict[int, _Hit] = {}
    for i in sorted(range(len(lats)), key=lambda i: abs(float(lats[i].text) - here.lat)):
        partner = _partner(lats[i], free)
        if partner is not None:
            pairs[i] = partner
            free.remove(partner)
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


def _partner(lat: _Hit, lons: list[_Hit]) -> _Hit | None:
    """The longitude written closest to this latitude: the same field first, then a sibling."""
    if not lons:
        return None
    same = [h for h in lons if h.field.path == lat.field.path]
    if same:
        return same[0]
    parent = lat.field.path.rsplit(".", 1)[0]
    siblings = [h for h in lons if h.field.path.rsplit(".", 1)[0] == parent]
    return (siblings or lons)[0]
