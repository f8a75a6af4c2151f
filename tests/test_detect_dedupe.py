"""``detect.dedupe``: one detection per fact, the same choice as the rule it states (the
straightforward pairwise version below), on generated detections."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.detect import METHOD_RANK, _prefixes, dedupe, same_fact
from auditor.model import Detection


def _plainly(detections: list[Detection]) -> list[Detection]:
    """The rule as ``dedupe``'s docstring states it, pairwise: in rank order, keep each
    detection that reports no fact a kept one reports; then in the given order."""
    ranked = sorted(enumerate(detections), key=lambda p: (
        METHOD_RANK.get(p[1].method, 9), -p[1].field.count("."), len(p[1].encoding), p[0]))
    kept: list[tuple[int, Detection]] = []
    for i, d in ranked:
        if not any(same_fact(d, k) for _, k in kept):
            kept.append((i, d))
    return [d for _, d in sorted(kept, key=lambda p: p[0])]


_DETECTIONS = st.lists(st.builds(
    Detection, st.just(1),
    st.sampled_from(["identifier.imei", "location.precise", "location.coarse",
                     "contact.phone"]),
    st.sampled_from(["known", "pattern", "key", "other"]),
    st.just("body"),
    st.sampled_from(["a", "a.b", "a.b.c", "a.bc", "b", "a.b.base64"]),
    st.sampled_from([(), ("base64",), ("gzip", "json")]),
    st.sampled_from(["", "imei", "phone"]),
    st.sampled_from(["", "8613800138000", "+86 138-0013-8000", "138", "39.98,116.30",
                     "x"]),
    st.just(0.9)), max_size=12)


@settings(max_examples=400, deadline=None)
@given(_DETECTIONS)
def test_dedupe_keeps_what_the_pairwise_rule_keeps(detections: list[Detection]) -> None:
    assert dedupe(detections) == _plainly(detections)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab.+é", max_size=12))
def test_prefixes_are_the_path_and_each_field_it_was_decoded_out_of(path: str) -> None:
    """Every prefix that ends before a ``.`` (one at the very start aside), longest first:
    the definition, character by character."""
    assert _prefixes(path) == [path] + [path[:i] for i in range(len(path) - 1, 0, -1)
                                        if path[i] == "."]
