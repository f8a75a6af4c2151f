"""The model's own behaviour: ``Ids``, the compact ids a finding cites (issue 16: a soak's
findings cite every message, so they are 8 bytes an id, not a tuple of Python ints)."""

from __future__ import annotations

import json
import pickle
import sys

import pytest

from auditor.model import Ids


@pytest.mark.parametrize("ids", [(), (1,), (1, 2, 3), (5, 2**40, 2**62)])
def test_ids_read_like_the_tuple_they_replace(ids):
    got = Ids(ids)
    assert got == ids and ids == got and got == list(ids)
    assert len(got) == len(ids) and tuple(got) == ids and list(reversed(got)) == list(ids)[::-1]
    assert hash(got) == hash(ids) and repr(got) == repr(ids)
    assert got[1:] == ids[1:] and isinstance(got[1:], Ids)
    if ids:
        assert got[0] == ids[0] and got[-1] == ids[-1] and ids[-1] in got


@pytest.mark.parametrize(("a", "b"), [((1, 2), (1, 3)), ((1, 2), (1, 2, 3)), ((), (0,))])
def test_different_ids_are_not_equal(a, b):
    assert Ids(a) != b and Ids(a) != Ids(b) and b != Ids(a)


def test_ids_travel_and_serialise_as_a_list():
    ids = Ids([3, 1_000_000, 2**33])
    assert pickle.loads(pickle.dumps(ids)) == ids  # the live worker pickles its alerts
    assert json.loads(json.dumps({"t": ids}, default=lambda v: v.json())) == {"t": list(ids)}


def test_ids_take_a_fraction_of_a_tuple():
    n = 100_000
    as_tuple = tuple(range(10**6, 10**6 + n))
    tuple_bytes = sys.getsizeof(as_tuple) + sum(sys.getsizeof(i) for i in as_tuple)
    assert sys.getsizeof(Ids(as_tuple)._ids) * 3 < tuple_bytes
