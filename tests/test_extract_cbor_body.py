"""auditor/extract/cbor_body.py: shared values (tags 28/29) counted from the bytes, so a
few hundred bytes cannot expand past the budget."""

from __future__ import annotations

from collections.abc import Mapping

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import limits
from auditor.extract.bodies import fields_from_bytes
from auditor.extract.cbor_body import cbor_nodes
from auditor.limits import MAX_FIELDS
from tests.factories import IMEI
from tests.wire import SHARED, body_fields, cbor_shared_bomb, cbor_uint, expanded_nodes


def test_the_cbor_bomb_is_a_few_hundred_bytes_for_2_to_the_40_leaves() -> None:
    bomb = cbor_shared_bomb(40)
    decoded = cbor2.loads(bomb)
    assert len(bomb) < 300 and decoded[0] is decoded[1]  # cbor2 builds a DAG, not a tree



def test_shared_values_are_read_in_each_place_within_the_budget() -> None:
    shared = {"imei": IMEI}
    data = cbor2.dumps([shared, shared, {"again": shared}], value_sharing=True)
    assert SHARED in data
    assert body_fields(data, "application/cbor") == [
        ("body", "body.cbor.0.imei", IMEI), ("body", "body.cbor.1.imei", IMEI),
        ("body", "body.cbor.2.again.imei", IMEI)]


@pytest.mark.parametrize(("levels", "fan_out"), [(1, 2), (5, 2), (10, 2), (4, 5), (3, 16)])
def test_cbor_nodes_counts_every_use_of_a_shared_value(levels: int, fan_out: int) -> None:
    nodes = expanded_nodes(levels, fan_out)
    assert cbor_nodes(cbor_shared_bomb(levels, fan_out), nodes, "p") == nodes
    with pytest.raises(limits.Limit, match="expands to more than"):
        cbor_nodes(cbor_shared_bomb(levels, fan_out), nodes - 1, "p")


def _tree_nodes(doc: object) -> int:
    """Nodes of a decoded document as ``cbor_nodes`` counts them: containers, keys, leaves
    (a tag is not a node of its own)."""
    if isinstance(doc, cbor2.CBORTag):
        return _tree_nodes(doc.value)
    if isinstance(doc, Mapping):  # cbor2 gives a frozendict inside a tag
        return 1 + sum(_tree_nodes(k) + _tree_nodes(v) for k, v in doc.items())
    if isinstance(doc, list | tuple):
        return 1 + sum(_tree_nodes(v) for v in doc)
    return 1


CBOR_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=5)
    # tags cbor2 gives no meaning of its own (1000-2000 held 1004, RFC 8943's date string,
    # which cbor2 decodes and refuses when its value is not a date: a hypothesis find)
    | st.builds(cbor2.CBORTag, st.integers(60000, 61000), inner),
    max_leaves=40)


@settings(max_examples=200, deadline=None)
@given(doc=CBOR_DOCS, uses=st.integers(1, 6), sharing=st.booleans())
def test_cbor_nodes_is_the_decoded_tree_with_each_shared_use_counted(
        doc: object, uses: int, sharing: bool) -> None:
    """Whatever cbor2 writes, with or without value sharing, the count read from the bytes
    is the size of the tree the walk visits: a repeated value costs each time it is used."""
    data = cbor2.dumps([doc] * uses, value_sharing=sharing)
    assert cbor_nodes(data, 10**9, "p") == _tree_nodes(cbor2.loads(data))


@settings(max_examples=100, deadline=None)
@given(levels=st.integers(1, 200), fan_out=st.integers(2, 9),
       leaf=st.sampled_from([b"\xf6", b"\x64imei", cbor_uint(8, 2) + b"\x01" * 8]),
       ctype=st.sampled_from(["application/cbor", ""]))
def test_any_shared_cbor_bomb_ends_within_the_budget(levels: int, fan_out: int, leaf: bytes,
                                                     ctype: str) -> None:
    """Bounded by construction: a document is read only when its expansion fits the budget,
    so the walk is at most MAX_WORK / NODE_COST nodes, whatever the levels and fan-out."""
    with limits.message_budget() as budget:
        fields = fields_from_bytes(cbor_shared_bomb(levels, fan_out, leaf), "body", "body",
                                   content_type=ctype)
    nodes = expanded_nodes(levels, fan_out)
    if ctype and nodes * limits.NODE_COST < limits.MAX_WORK // 4 and leaf == b"\xf6":
        assert fields == []  # small enough: read whole, and nulls are not values
    assert len(fields) <= MAX_FIELDS + 2
    assert budget.work >= -limits.MAX_BYTES
