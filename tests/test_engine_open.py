"""rules.engine._Open.file, rewritten for speed, against the way it first filed a hit: for any
sequence of hits (members new and old, categories repeated, times in any order, ties and
NaN included) the finding it gathers is the same."""

from __future__ import annotations

import math
from array import array

from hypothesis import given
from hypothesis import strategies as st

from auditor.rules.catalogue import CATALOGUE
from auditor.rules.engine import _Open


def _reference(agg: _Open, tx_id: int, ts: float, label: str, cats: list[str]) -> None:
    """``file`` as it was first written: the mask of the hit, then its new bits counted."""
    i, member = agg._index(tx_id)
    mask = 0
    for category in cats:
        mask |= agg._bit(category)
    if member:
        mask &= ~agg.masks[i]
        agg.masks[i] |= mask
    else:
        agg.ids.insert(i, tx_id)
        agg.masks.insert(i, mask)
        agg.first, agg.last = min(agg.first, ts), max(agg.last, ts)
        agg.recipients.add(label)
    for category in agg.categories(mask):
        facts = agg.facts.get(category)
        if facts is None:
            agg.facts[category] = [1, ts, ts]
        else:
            facts[0] += 1
            facts[1], facts[2] = min(facts[1], ts), max(facts[2], ts)


def _state(agg: _Open) -> tuple:
    def same(x: float) -> object:
        return "nan" if isinstance(x, float) and math.isnan(x) else (x, math.copysign(1, x))
    return (list(agg.ids), list(agg.masks), agg.names, sorted(agg.recipients),
            same(agg.first), same(agg.last),
            sorted((c, n, same(a), same(b)) for c, (n, a, b) in agg.facts.items()))


TIMES = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2.5, math.nan, math.inf]),
                  st.floats(allow_nan=False, width=32))
CATEGORIES = st.lists(st.sampled_from([f"c{i}" for i in range(20)]), max_size=6)
HITS = st.lists(st.tuples(st.integers(0, 30), TIMES, st.sampled_from("ab"), CATEGORIES),
                max_size=40)


@given(HITS)
def test_filing_gathers_what_the_first_way_gathered(hits: list) -> None:
    rule = CATALOGUE[0]
    fast, slow = _Open(rule, "org"), _Open(rule, "org")
    for tx_id, ts, label, cats in hits:
        fast.file(tx_id, ts, label, cats)
        _reference(slow, tx_id, ts, label, cats)
        assert _state(fast) == _state(slow)
    assert isinstance(fast.ids, array)


@given(HITS)
def test_filing_at_a_known_place_gathers_the_same(hits: list) -> None:
    """``_record`` looks the member up once and hands ``at`` to ``new_categories`` and
    ``file``: the same categories, and the same finding, as each looking it up itself."""
    rule = CATALOGUE[0]
    given_at, looked_up = _Open(rule, "org"), _Open(rule, "org")
    for tx_id, ts, label, cats in hits:
        at = given_at._index(tx_id)
        new = given_at.new_categories(tx_id, cats, at)
        assert new == looked_up.new_categories(tx_id, cats)
        given_at.file(tx_id, ts, label, new, at)
        looked_up.file(tx_id, ts, label, new)
        assert _state(given_at) == _state(looked_up)
