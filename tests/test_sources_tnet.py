"""The fast tnetstring writer against mitmproxy's own: the same bytes, always."""

from __future__ import annotations

import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy.io import tnetstring
from mitmproxy.test import tflow

from auditor.sources.tnet import Encoded, dumps
from tests.factories import HOST, IMEI, http_flow


class Level(enum.IntEnum):
    HIGH = 3


SCALARS = [
    None, True, False, 0, -1, 2**70, -(2**70), 0.0, -0.5, 1e300, float("inf"), b"",
    b"\x00\xff:,", "", "é中\U0001f600", "\udcff".encode("utf8", "surrogatepass"),
    Level.HIGH,  # an int subclass: mitmproxy's writer decides
]


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_scalars_are_written_as_mitmproxy_writes_them(value: object) -> None:
    assert dumps(value) == tnetstring.dumps(value)


@pytest.mark.parametrize("value", [
    [], (), {}, [1, [2, [3, []]]], ("a", b"b", None),
    {"b": 1, "a": 2, "c": {"z": [], "y": {}}},  # mitmproxy writes a dict's last item first
    {"k": [{"x": 1.5}, {"x": True}]},
], ids=repr)
def test_containers_keep_mitmproxys_order(value: object) -> None:
    assert dumps(value) == tnetstring.dumps(value)


FLOWS = {
    "http JSON POST": lambda: http_flow(f"http://{HOST}/r", 1000.0, {"imei": IMEI}),
    "http with an error": lambda: tflow.tflow(resp=True, err=True),
    "websocket": lambda: tflow.twebsocketflow(),
    "tcp": lambda: tflow.ttcpflow(),
    "udp": lambda: tflow.tudpflow(),
    "dns": lambda: tflow.tdnsflow(resp=True),
}


@pytest.mark.parametrize("make", FLOWS.values(), ids=list(FLOWS))
def test_a_flow_state_is_the_bytes_mitmproxys_writer_gives(make) -> None:
    state = make().get_state()
    assert dumps(state) == tnetstring.dumps(state)
    assert tnetstring.loads(dumps(state)) == tnetstring.loads(tnetstring.dumps(state))


def test_an_encoded_value_is_placed_as_it_is() -> None:
    state = FLOWS["http JSON POST"]().get_state()
    conn = state["client_conn"]
    assert dumps({**state, "client_conn": Encoded(dumps(conn))}) == tnetstring.dumps(state)


def test_an_object_tnetstrings_cannot_hold_is_refused_as_mitmproxy_refuses_it() -> None:
    with pytest.raises(ValueError, match="unserializable"):
        dumps({"x": object()})


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.binary()
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_any_value_is_the_same_bytes(value: object) -> None:
    assert dumps(value) == tnetstring.dumps(value)
