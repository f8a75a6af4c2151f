"""The model's own behaviour: ``Ids``, the compact ids a finding cites (issue 16: a soak's
findings cite every message, so they are 8 bytes an id, not a tuple of Python ints)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import pickle
import sys

import pytest

from auditor.model import Field, Ids, Transmission, _stored_directly


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


def _as_dataclass_makes_it(cls: type) -> type:
    """The same fields as ``cls``, with the ``__init__`` ``dataclass`` itself writes."""
    return dataclasses.make_dataclass(
        cls.__name__, [(f.name, f.type, dataclasses.field(default=f.default))
                       if f.default is not dataclasses.MISSING else (f.name, f.type)
                       for f in dataclasses.fields(cls)], frozen=True)


@pytest.mark.parametrize(("cls", "args", "kwargs"), [
    (Field, ("body", "body.json.a", "v"), {}),
    (Field, ("body", "body.json.a", "v", ("gzip", "json")), {}),
    (Field, (), {"location": "url", "path": "url.host", "value": "h", "encoding": ("b",)}),
    (Transmission, (1, 2.5, "https", "h.example", 443), {}),
    (Transmission, (3, 1.0, "tcp", "h", 5900), {"payload": b"\x00", "direction": "down",
                                                "tls_versions": ("TLS 1.2",), "probe": "x"}),
    (Transmission, (), {f.name: f"v{i}" for i, f in
                        enumerate(dataclasses.fields(Transmission))}),
])
def test_direct_init_makes_what_the_dataclass_init_makes(cls, args, kwargs):
    """``_stored_directly``: the same members, in the same order, the same defaults and
    signature; frozen, equal, hashed, replaced and pickled as before."""
    made, reference = cls(*args, **kwargs), _as_dataclass_makes_it(cls)(*args, **kwargs)
    assert list(vars(made).items()) == list(vars(reference).items())
    assert (inspect.signature(cls.__init__).parameters.keys()
            == inspect.signature(type(reference).__init__).parameters.keys())
    assert ([p.default for p in inspect.signature(cls.__init__).parameters.values()]
            == [p.default for p in inspect.signature(type(reference).__init__)
                .parameters.values()])
    assert made == cls(*args, **kwargs) and hash(made) == hash(cls(*args, **kwargs))
    assert pickle.loads(pickle.dumps(made)) == made
    assert repr(made).split("(", 1)[1] == repr(reference).split("(", 1)[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.path = "changed"  # type: ignore[misc]
    first = dataclasses.fields(cls)[0].name
    assert vars(dataclasses.replace(made, **{first: "other"}))[first] == "other"


def test_direct_init_refuses_a_default_factory():
    @dataclasses.dataclass(frozen=True)
    class Holder:
        items: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError):
        _stored_directly(Holder)
