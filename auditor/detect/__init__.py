"""Detection: which categories of personal data a message's fields carry, and how sure we are.

Three detectors, most trusted first (DESIGN.md "detect"): known values the lab seeded
(method ``known``), validated patterns (``pattern``), key names with a fitting value
(``key``). When two of them report the same value in the same field, the more trusted wins.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from auditor.detect import keys, patterns
from auditor.detect.cell import find_cells
from auditor.detect.known import KnownValues
from auditor.detect.location import find_coordinate_pairs, find_locations
from auditor.detect.media import find_media
from auditor.limits import MAX_PATH, bounded
from auditor.memo import Memo
from auditor.model import Detection, Field, Profile, Transmission

# Field locations that describe a message rather than carry a value from it: protocol tags
# (``protocol:watch``) and the limits that stopped decoding (``opaque``).
NOT_VALUES = frozenset({"tag", "opaque"})
# Lower ranks win when two detections report the same thing.
METHOD_RANK: dict[str, int] = {"known": 0, "pattern": 1, "key": 2}
# Values longer than this go through the automaton and the position search only: the
# pattern, key and tower searches are for identifiers and short messages, and a multi-MB
# text must not cost seconds (DESIGN.md: limits hold against hostile input).
MAX_SCAN = 64 * 1024
# A field holds one position: a seeded one makes any pattern reading of it redundant.
POINT = frozenset({"location.precise", "location.coarse"})
# A field's pattern and key readings depend on its path and value alone, and a device sends
# the same fields message after message (its headers, identifiers and settings): the
# readings of short fields are remembered, per session and bounded, under (path, value).
# Both must be short: the memo then holds at most MEMO_SIZE * (MEMO_VALUE + MEMO_PATH)
# characters, whatever a message carries.
MEMO_VALUE = 256  # characters
MEMO_PATH = 512  # characters
MEMO_SIZE = 8192  # fields
Reading = tuple[str, str, str, float]  # method, category, value, confidence


class _Row(NamedTuple):
    """A pattern or key reading on its way to ``dedupe``: a Detection's fields in its order,
    as a tuple. Most of them (the pattern and key readings of a seeded IMEI, say) report
    what a known value already does and are dropped there; a tuple costs a tenth of a
    frozen dataclass to make, and only the kept ones become Detections."""

    transmission: int
    category: str
    method: str
    location: str
    field: str
    encoding: tuple[str, ...]
    profile_key: str
    value: str
    confidence: float


def _as_row(*values: Any) -> Any:
    """A _Row of a Detection's fields, for a finder's ``make``."""
    return tuple.__new__(_Row, values)


class Detector:
    """Everything built once per session from the profile (the automaton above all)."""

    def __init__(self, profile: Profile, memo: int = MEMO_SIZE) -> None:
        """``memo``: how many short fields' readings to remember (0: none)."""
        self.profile = profile
        self.known = KnownValues.from_profile(profile)
        self.region = profile.region
        # (path, value) -> readings: they depend on nothing else of the field, and a key of
        # two strings hashes in C where a whole Field would hash through Python.
        self._memo: Memo[tuple[str, str], tuple[Reading, ...]] | None = (
            Memo(memo) if memo > 0 else None)

    def detect(self, tx: Transmission, fields: list[Field]) -> list[Detection]:
        """Every reading of the fields, one per fact (``dedupe``). Paths are bounded first
        (``bounded``): the readings and the key tables remember paths between messages."""
        fields = [f if len(f.path) <= MAX_PATH else bounded(f)
                  for f in fields if f.location not in NOT_VALUES]
        found: list[Detection] = []
        found.extend(self.known.scan(tx.id, fields))
        here = self.profile.location
        if here is not None:
            found.extend(find_locations(tx.id, fields, here))
        short = [f for f in fields if len(f.value) <= MAX_SCAN]
        found.extend(find_cells(tx.id, short, here.cell if here is not None else ()))
        found.extend(find_media(tx.id, fields))
        found.extend(find_coordinate_pairs(tx.id, short, _as_row))
        memo = self._memo
        recall = memo.lookup if memo is not None else None
        row = tuple.__new__  # a _Row made in C, not by the Python __new__ of a NamedTuple
        paths = patterns.remembered_path_keys
        for f in short:
            # Only short fields are remembered: a long value is rarely sent twice, and a long
            # path (a hostile key repeated over every leaf) would make the memo hold
            # megabytes per field. Tested inline: this runs once per field of every message.
            value = f.value
            if recall is not None and len(value) <= MEMO_VALUE and len(f.path) <= MEMO_PATH:
                # Most fields: a short value under keys that say nothing (a counter, a
                # coordinate, a timestamp). ``_fresh`` would find no reading and remember
                # none; told here from the path's facts, before the memo is asked.
                if len(value) < patterns.QUIET_BELOW and "@" not in value:
                    at = paths(f.path) or patterns.path_keys(f.path)
                    if at.quiet:
                        continue
                read = recall((f.path, value))
                if read is None:
                    read = self._fresh(f, memo)  # type: ignore[arg-type]
            else:
                read = self.readings(f)
            if read:
                found += [row(_Row, (tx.id, category, method, f.location, f.path, f.encoding,
                                     "", value, confidence))
                          for method, category, value, confidence in read]
        return [Detection(*d) if type(d) is _Row else d for d in dedupe(found)]

    def _fresh(self, f: Field, memo: Memo[tuple[str, str], tuple[Reading, ...]]
               ) -> tuple[Reading, ...]:
        """The readings of a field not remembered. One whose key names no category and
        whose value no pattern can match (``patterns.may_find``: a timestamp, a coordinate,
        a counter) has none and is not remembered either: such values rarely repeat, and
        remembering them would only push out the fields that do."""
        at = patterns.path_keys(f.path)
        if not at.lexicon and not patterns.may_find(f.value, at):
            return ()
        return memo.put((f.path, f.value), self.readings(f))

    def readings(self, f: Field) -> tuple[Reading, ...]:
        """The validated patterns in one field, then what its key name says it holds."""
        out = [("pattern", category, value, confidence)
               for category, value, confidence in patterns.find(f, self.region)]
        out += [("key", category, value, keys.KEY_CONFIDENCE)
                for category, value in keys.by_key(f)]
        return tuple(out)


_NOT_CORE = re.compile(r"[^0-9a-z]")


# The cores of short values seen (``_core``): dedupe compares the same identifiers message
# after message. At most CORE_MEMO values of up to CORE_VALUE characters.
CORE_MEMO = 4096
CORE_VALUE = 64
_CORES: Memo[str, str] = Memo(CORE_MEMO)
_remembered_core = _CORES.lookup  # the memo's dict.get, without a Python call around it


def _core(value: str) -> str:
    """A value reduced for comparison: ``+86 138-0013-8000`` and ``8613800138000`` overlap."""
    core = _remembered_core(value)
    if core is None:
        core = _NOT_CORE.sub("", value.lower())
        if len(value) <= CORE_VALUE:
            _CORES.put(value, core)
    return core


def _overlaps(a: str, b: str) -> bool:
    ca, cb = _core(a), _core(b)
    return bool(ca and cb) and (ca in cb or cb in ca)


def _nested(a: str, b: str) -> bool:
    """The same field, or one decoded out of the other (``query.d`` and ``query.d.base64``)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def same_fact(a: Detection, b: Detection) -> bool:
    """Two detections that report one thing. A known value accounts for any pattern or key
    reading of the same value; a field (with what was decoded out of it) holds one position."""
    if not _nested(a.field, b.field):
        return False
    if a.category in POINT and b.category in POINT:
        return True
    if a.method == "known":
        if b.method == "known":
            return a.category == b.category and a.profile_key == b.profile_key
        return _overlaps(a.value, b.value)
    if b.method == "known":
        return _overlaps(a.value, b.value)
    same_value = _core(a.value) == _core(b.value)
    return same_value and (a.category == b.category or a.method != b.method)


def _prefixes(path: str) -> list[str]:
    """The path and every field it was decoded out of: ``a.b.c`` -> a.b.c, a.b, a. (Each
    ``.`` but one at the start ends a prefix; found by ``rfind`` in C, not a loop over
    every character.)"""
    out = [path]
    i = path.rfind(".")
    while i > 0:
        out.append(path[:i])
        i = path.rfind(".", 0, i)
    return out


# The prefixes of the fields seen (``_prefixes``): a device sends the same fields message
# after message, and dedupe asks for them once per field of each. Only a field of up to
# PREFIX_PATH characters is remembered, so an entry holds at most PREFIX_PATH ** 2 / 4
# characters (a path of one-letter segments) and the memo a few megabytes at worst.
PREFIX_MEMO = 2048
PREFIX_PATH = 128
_PREFIXES: Memo[str, list[str]] = Memo(PREFIX_MEMO)


def _lineage(path: str) -> list[str]:
    """``_prefixes``, remembered for a short path."""
    if len(path) > PREFIX_PATH:
        return _prefixes(path)
    return _PREFIXES.put(path, _prefixes(path))


def dedupe(detections: list[Detection]) -> list[Detection]:
    """One detection per fact (``same_fact``). The most trusted method wins; then the innermost
    field, where the value sits once every layer is peeled; then the shortest encoding
    chain, the most direct evidence; then the first reported.

    Kept detections are indexed under their field and its ancestors, so each candidate is
    compared with the few on its own branch: a message with 20,000 fields stays linear."""
    if len(detections) < 2:  # nothing to compare: most messages
        return list(detections)
    ranked = sorted([(METHOD_RANK.get(d.method, 9), -d.field.count("."), len(d.encoding), i)
                     for i, d in enumerate(detections)])
    at: dict[str, list[Detection]] = {}  # field -> kept detections on it
    below: dict[str, list[Detection]] = {}  # field -> kept detections on it or inside it
    lines = _PREFIXES.lookup
    kept = [False] * len(detections)
    for _, _, _, i in ranked:
        d = detections[i]
        field = d.field
        ancestors = lines(field) or _lineage(field)
        # Whether a kept detection on this field or inside it, or on a field it was decoded
        # out of, reports the same fact: looked through in place, stopping at the first.
        # (Inline: this runs for every detection of every message.)
        seen = False
        for k in below.get(field, ()):
            if same_fact(d, k):
                seen = True
                break
        if not seen:
            for a in ancestors[1:]:
                for k in at.get(a, ()):
                    if same_fact(d, k):
                        seen = True
                        break
                if seen:
                    break
        if seen:
            continue
        kept[i] = True
        kept[i] = True
        at.setdefault(field, []).append(d)
        for prefix in ancestors:
            below.setdefault(prefix, []).append(d)
    return [d for d, keep in zip(detections, kept, strict=True) if keep]
