"""``detect.dedupe``: one detection per fact, the same choice as the rule it states (the
straightforward pairwise version below), on generated detections."""

from __future__ import annotations

import dataclasses
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import detect
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


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab.+é", max_size=12) | st.just("a." * 80))
def test_a_remembered_lineage_is_the_fresh_one(path: str) -> None:
    """The prefixes dedupe remembers per field are ``_prefixes``'s, asked once or twice, and
    a field over PREFIX_PATH characters is not kept."""
    assert detect._lineage(path) == detect._lineage(path) == _prefixes(path)
    assert (path in detect._PREFIXES) == (len(path) <= detect.PREFIX_PATH)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="aB1 -+.é", max_size=80))
def test_a_remembered_core_is_the_fresh_one(value: str) -> None:
    fresh = re.sub(r"[^0-9a-z]", "", value.lower())
    assert detect._core(value) == detect._core(value) == fresh
    assert (value in detect._CORES) == (len(value) <= detect.CORE_VALUE)


def test_a_reading_row_is_a_detection_in_waiting() -> None:
    """Pattern and key readings go to dedupe as rows of a Detection's fields in its order;
    dedupe reads them as it reads Detections, and what it keeps becomes one."""
    assert detect._Row._fields == tuple(f.name for f in dataclasses.fields(Detection))
    values = (3, "identifier.imei", "pattern", "body", "a.b", ("base64",), "", "x", 0.9)
    row = tuple.__new__(detect._Row, values)
    assert Detection(*row) == Detection(*values)
    assert dedupe([row, Detection(*values)]) == [row]


@settings(max_examples=200, deadline=None)
@given(_DETECTIONS)
def test_dedupe_of_rows_keeps_what_it_keeps_of_detections(detections: list[Detection]) -> None:
    rows = [tuple.__new__(detect._Row, dataclasses.astuple(d)) for d in detections]
    assert [Detection(*r) for r in dedupe(rows)] == dedupe(detections)
