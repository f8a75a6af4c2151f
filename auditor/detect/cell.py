"""Cell towers: (MCC, MNC, LAC/TAC, CID) tuples, as JSON siblings or in delimited strings.

A tower id is location (DESIGN.md "Categories": location.cell): a geolocation service turns
it into coordinates. Seeded towers are found whatever the shape (Google's ``cellTowers[]``
objects, Amap's ``bts=mcc,mnc,lac,cid,signal``, a watch's ``,460,0,4286,28711,...``), with
LAC and CID written in decimal or hex. Unseeded towers count only with a real MCC and a key
that says cell.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from auditor.detect import keys
from auditor.detect.patterns import MCC
from auditor.limits import MAX_PATH
from auditor.memo import Memo
from auditor.model import Cell, Detection, Field

KNOWN_CONFIDENCE = 0.97
PATTERN_CONFIDENCE = 0.85

# Normalised key -> the part of a tower it names (Google, Amap, Baidu, Android, pinyin).
ROLES: dict[str, str] = {
    **dict.fromkeys(("mcc", "mobilecountrycode", "homemobilecountrycode", "countrycode"), "mcc"),
    **dict.fromkeys(("mnc", "mobilenetworkcode", "homemobilenetworkcode", "networkcode", "sid",
                     "systemid"), "mnc"),
    **dict.fromkeys(("lac", "tac", "locationareacode", "trackingareacode", "areacode",
                     "nid", "networkid"), "lac"),
    **dict.fromkeys(("cid", "ci", "cellid", "cellidentity", "eci", "nci", "bid",
                     "basestationid", "jizhanid"), "cid"),
}

_TOKEN = re.compile(r"[0-9A-Fa-f]+")


def _as_numbers(text: str) -> set[int]:
    """The numbers a LAC or CID token may stand for: decimal, and hex when it parses as hex."""
    text = text.strip()
    out: set[int] = set()
    if text.isdigit():
        out.add(int(text))
    if _HEX.fullmatch(text):
        out.add(int(text[2:] if text.lower().startswith("0x") else text, 16))
    return out


_SPLIT = re.compile(r"[,|;:*_\s]+")
_SEPARATOR = re.compile(r"[,|;:*_\s]")  # a value without one is one part at most
_HEX = re.compile(r"(0x)?[0-9A-Fa-f]+", re.I)
MAX_DELIMITED = 4096


# Roles of the paths seen: a device sends the same keys message after message, and each
# field's role is asked twice (the JSON and the delimited towers). Paths are bounded
# (``limits.MAX_PATH``) before detection.
_ROLES: Memo[str, str] = Memo(4096)
_remembered_role = _ROLES.lookup  # its dict.get, without a Python call around it


def _role(path: str) -> str:
    role = _ROLES.get(path)
    if role is None:
        role = _ROLES.put(path, ROLES.get(keys.normalise(keys.key_of(path)), ""))
    return role


# Whether a key along a path says cell (``keys.CELL_KEYS``), remembered per path like the
# roles: asked for every delimited value when the lab seeded no tower.
_CELL_PATHS: Memo[str, bool] = Memo(4096)


def _cell_path(path: str) -> bool:
    said = _CELL_PATHS.get(path)
    if said is None:
        said = keys.any_segment(path, keys.CELL_KEYS)
        if len(path) <= MAX_PATH:
            _CELL_PATHS.put(path, said)
    return said


def find_cells(tx_id: int, fields: Iterable[Field], towers: tuple[Cell, ...]) -> list[Detection]:
    """Seeded towers (method ``known``) and unseeded ones under a cell key (``pattern``)."""
    fields = list(fields)
    out = list(_json_towers(tx_id, fields, towers))
    out += list(_delimited_towers(tx_id, fields, towers))
    return out


def _json_towers(tx_id: int, fields: list[Field], towers: tuple[Cell, ...]
                 ) -> Iterator[Detection]:
    """Sibling keys of one object: ``{"mcc": 460, "mnc": 0, "lac": 4286, "cid": 28711}``."""
    groups: dict[str, dict[str, Field]] = {}
    roles = _remembered_role
    for f in fields:
        role = roles(f.path)  # the memo's dict asked inline: this runs for every field
        if role is None:
            role = _role(f.path)
        if role:
            groups.setdefault(keys.parent(f.path), {}).setdefault(role, f)
    for group in groups.values():
        lac, cid = group.get("lac"), group.get("cid")
        if lac is None or cid is None:
            continue
        mcc = group.get("mcc")
        path = f"{lac.path}+{cid.path}"
        value = ",".join(group[r].value for r in ("mcc", "mnc", "lac", "cid") if r in group)
        known = _seeded(towers, _as_numbers(lac.value), _as_numbers(cid.value),
                        mcc.value if mcc else "")
        if known:
            yield Detection(tx_id, "location.cell", "known", cid.location, path, cid.encoding,
                            "location.cell", value, KNOWN_CONFIDENCE)
        elif mcc is not None and mcc.value.isdigit() and int(mcc.value) in MCC \
                and not keys.is_placeholder(cid.value) and _as_numbers(cid.value) - {0}:
            yield Detection(tx_id, "location.cell", "pattern", cid.location, path, cid.encoding,
                            "", value, PATTERN_CONFIDENCE)


def _seeded(towers: tuple[Cell, ...], lacs: set[int], cids: set[int], mcc: str) -> bool:
    return any(t.lac in lacs and t.cid in cids and (not mcc or mcc == str(t.mcc))
               for t in towers)


def _delimited_towers(tx_id: int, fields: list[Field], towers: tuple[Cell, ...]
                      ) -> Iterator[Detection]:
    """``460,0,4286,28711,-65`` and ``46000,10BE,7027`` in a string, alone or in a list.

    Long values (an upload, a blob) are not split: towers travel in short strings, and
    splitting megabytes into tokens is what made offline analysis crawl."""
    for f in fields:
        if len(f.value) > MAX_DELIMITED or _SEPARATOR.search(f.value) is None:
            continue  # one part at most: most fields, told in C before any list is made
        if _role(f.path) or not towers and not _cell_path(f.path):
            continue  # an unseeded tower counts only under a cell key (_delimited_pattern)
        parts = [p for p in _SPLIT.split(f.value) if p]
        if len(parts) < 2:
            continue
        if not towers:
            yield from _delimited_pattern(tx_id, f, parts)
            continue
        for i in range(len(parts) - 1):
            lacs, cids = _as_numbers(parts[i]), _as_numbers(parts[i + 1])
            if not lacs or not cids:
                continue
            hit = _delimited_seed(towers, parts, i, lacs, cids)
            if hit is not None:
                yield Detection(tx_id, "location.cell", "known", f.location, f.path, f.encoding,
                                "location.cell", hit, KNOWN_CONFIDENCE)
                break
        else:
            yield from _delimited_pattern(tx_id, f, parts)


def _delimited_seed(towers: tuple[Cell, ...], parts: list[str], i: int, lacs: set[int],
                    cids: set[int]) -> str | None:
    """A seeded (LAC, CID) pair; a bare pair of small numbers needs the MCC before it."""
    for t in towers:
        if t.lac not in lacs or t.cid not in cids:
            continue
        before = parts[max(0, i - 2):i]
        with_mcc = str(t.mcc) in before or any(p.startswith(str(t.mcc)) for p in before)
        if with_mcc or t.cid >= 1000:
            return ",".join(parts[max(0, i - 2):i + 2])
    return None


def _delimited_pattern(tx_id: int, f: Field, parts: list[str]) -> Iterator[Detection]:
    if not _cell_path(f.path):
        return
    for i in range(len(parts) - 3):
        mcc, mnc, lac, cid = parts[i:i + 4]
        if mcc.isdigit() and int(mcc) in MCC and mnc.isdigit() and len(mnc) <= 3 \
                and _as_numbers(lac) and (_as_numbers(cid) - {0}):
            yield Detection(tx_id, "location.cell", "pattern", f.location, f.path, f.encoding,
                            "", ",".join(parts[i:i + 4]), PATTERN_CONFIDENCE)
            return
