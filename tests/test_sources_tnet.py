"""The fast tnetstring writer against mitmproxy's own: the same bytes, always."""

from __future__ import annotations

import enum
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy.io import tnetstring
from mitmproxy.test import tflow

from auditor.sources.tnet import Encoded, dumps, loads
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


# -- reading: the same value, or the same error, as mitmproxy's reader -------------------------

def _read(reader, data: bytes) -> tuple[str, object]:
    """The value, or the error with the addresses mitmproxy's messages quote taken out."""
    try:
        return "value", reader(data)
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return type(e).__name__, re.sub(r"<memory at 0x[0-9a-f]+>", "<memory>", str(e))


@pytest.mark.parametrize("make", FLOWS.values(), ids=list(FLOWS))
def test_a_flow_record_reads_as_mitmproxy_reads_it(make) -> None:
    data = tnetstring.dumps(make().get_state())
    assert loads(data) == tnetstring.loads(data)


@pytest.mark.parametrize("data", [
    b"", b"0:", b"0:~", b"1:x~", b"4:true!", b"4:True!", b"5:false!", b"2:12#", b"2:1x#",
    b"3:+12#", b"4: 1.5^", b"3:abc^", b"3:abc,", b"3:ab,", b"03:abc,", b"+3:abc,",
    b"2:\xff\xfe;", b"5:2:ab,}", b"8:2:ab,0:~}", b"10:1:a]0:~,}", b"6:1:a,0:~]x",
    b"3:abc?", b"-1:,", b"99999999999999:x,", b"4:0:~]]", b"6:1:1#0:~}",
    b"2:ab,trailing", b"3:1:a;,", b"12:1:a,2:~~,0:~]",
    # length prefixes of one and two characters, read by their bytes
    b"1:", b"1", b"12", b":1:a,", b"a:b,", b"1a:b,", b"a1:b,", b"::,", b"1::,", b"/:,",
    b"0/:,", b"00:,", b"01:a,", b"10:1:a,3:bcd,]", b"10:1:a,9:bcd,]", b"4:1:a,]", b"3:1:a]",
    b"4:1:a,2:1:a,]", b"5:1:a,1:]", b"6:1:a,a:]", b"7:1:a,x1:]", b"9:7:1:a,1a:]]",
], ids=repr)
def test_a_broken_or_odd_record_reads_as_mitmproxy_reads_it(data: bytes) -> None:
    assert _read(loads, data) == _read(tnetstring.loads, data)


def test_nesting_deeper_than_a_flow_is_read_by_mitmproxy() -> None:
    deep: object = None
    for _ in range(100):
        deep = [deep]
    data = tnetstring.dumps(deep)
    assert loads(data) == tnetstring.loads(data)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_any_value_reads_back_as_mitmproxy_reads_it(value: object) -> None:
    data = tnetstring.dumps(value)
    assert repr(_read(loads, data)) == repr(_read(tnetstring.loads, data))  # NaN, key order


@settings(max_examples=300, deadline=None)
@given(VALUES, st.integers(min_value=0), st.sampled_from(b"0123456789:,;#^!~]}x"))
def test_a_value_with_a_byte_changed_reads_as_mitmproxy_reads_it(value: object, where: int,
                                                                  byte: int) -> None:
    """A length prefix or tag broken anywhere (the prefix read by its bytes included)."""
    data = bytearray(tnetstring.dumps(value))
    data[where % len(data)] = byte
    assert repr(_read(loads, bytes(data))) == repr(_read(tnetstring.loads, bytes(data)))


# -- a dict's members, some left as written ----------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), VALUES, max_size=6), st.sets(st.text(max_size=8)))
def test_members_are_what_loads_reads_some_left_as_written(value: dict, raw: set[str]
                                                           ) -> None:
    from auditor.sources.tnet import members

    data = tnetstring.dumps(value)
    got = members(data, frozenset(raw))
    assert got is not None
    read = loads(data)
    assert [k for k, _ in got] == list(read)  # type: ignore[call-overload]
    for key, item in got:
        if key in raw:
            assert item == tnetstring.dumps(value[key])  # its own bytes, as written
        else:
            assert repr(item) == repr(read[key])  # type: ignore[index]
    every = members(data, None)
    assert every is not None and [v for _, v in every] == [
        tnetstring.dumps(value[k]) for k, _ in every]


@pytest.mark.parametrize("data", [
    b"", b"0:~", b"2:12#", b"5:2:ab,}", b"6:1:a,0:~]", b"03:abc,", b"6:1:1#0:~}",
    b"12:1:a,2:~~,0:~]", b"9:1:a,9:x,}", b"10:1:a,0:~]x",
], ids=repr)
def test_members_of_what_is_no_plain_dict_are_none(data: bytes) -> None:
    from auditor.sources.tnet import members

    assert members(data, frozenset({"a"})) is None
    assert members(data, None) is None
