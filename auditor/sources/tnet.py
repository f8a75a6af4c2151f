"""tnetstrings as ``mitmproxy.io.tnetstring.dumps`` writes them, byte for byte, faster.

Why: the live session appends every flow to ``flows.mitm``, and mitmproxy's writer (pure
Python, one deque operation per fragment) is a large part of the worker's time per flow -
the CPU the worker takes from the proxy, the device's client and its servers on a small
machine (bench/results.md has the worker's cost per request). This one builds each value's
bytes with one ``%`` format and joins them.

The output is the same bytes, including mitmproxy's order for dicts (last item first), so
``flows.mitm`` reads back in mitmproxy, mitmweb and ``kidaudit analyze`` exactly as
before; the tests compare the two on real flow states and on generated values. A type this
module does not know (a subclass, say) is handed to mitmproxy's writer, which decides.
"""

from __future__ import annotations

from mitmproxy.io import tnetstring


class Encoded(bytes):
    """A value already written as a tnetstring: placed as it is (a connection's state,
    which a keep-alive connection repeats in every one of its flows)."""


def dumps(value: object) -> bytes:
    t = type(value)
    if t is bytes:
        return b"%d:%s," % (len(value), value)  # type: ignore[arg-type]
    if t is str:
        data = value.encode("utf8")  # type: ignore[union-attr]
        return b"%d:%s;" % (len(data), data)
    if t is dict:
        body = b"".join([dumps(k) + dumps(v)
                         for k, v in reversed(value.items())])  # type: ignore[union-attr]
        return b"%d:%s}" % (len(body), body)
    if t is list or t is tuple:
        body = b"".join([dumps(v) for v in value])  # type: ignore[union-attr]
        return b"%d:%s]" % (len(body), body)
    if t is Encoded:
        return value  # type: ignore[return-value]
    if value is None:
        return b"0:~"
    if t is bool:
        return b"4:true!" if value else b"5:false!"
    if t is int:
        data = b"%d" % value  # type: ignore[str-format]
        return b"%d:%s#" % (len(data), data)
    if t is float:
        data = repr(value).encode()
        return b"%d:%s^" % (len(data), data)
    return tnetstring.dumps(value)  # type: ignore[arg-type]


# -- reading ------------------------------------------------------------------------------
# ``tnetstring.loads`` finds each length prefix one character at a time in Python; a flow
# file's records hold a few hundred values each, so reading was a third of ``analyze``.
# This reader finds prefixes with ``bytes.index`` and reads by offset. It takes the plain
# shapes mitmproxy's writer makes (prefixes of ASCII digits, known type tags, shallow
# nesting) and hands anything else to mitmproxy's reader, which decides: the same value or
# the same error for every input, which the tests check on real and on broken records.
MAX_DEPTH = 64  # deeper than any flow state: mitmproxy's reader (and its RecursionError)


class _Unusual(Exception):
    """Not a shape this reader takes: mitmproxy's reader reads it."""


def loads(data: bytes) -> object:
    """``tnetstring.loads(data)``, faster on what mitmproxy writes."""
    try:
        return _value(data, 0, len(data), 0)[0]
    except (_Unusual, ValueError, IndexError, TypeError, RecursionError):
        return tnetstring.loads(data)


def _value(data: bytes, at: int, stop: int, depth: int) -> tuple[object, int]:
    """The value at ``at`` (within ``data[:stop]``) and where the next one starts."""
    # Most values of a record have a length of one or two digits (keys, numbers, short
    # strings): read by their bytes' values, those cost no search, slice or ``int`` call;
    # this is a fifth of the time of reading a record. A colon found past ``stop`` gives
    # an ``end`` past it too: refused below, like any other prefix the search would miss.
    if data[at + 1] == 58:  # :
        n = data[at] - 48  # 0
        if not 0 <= n <= 9:
            raise _Unusual
        begin = at + 2
    elif data[at + 2] == 58:
        tens, units = data[at] - 48, data[at + 1] - 48
        if not (0 <= tens <= 9 and 0 <= units <= 9):
            raise _Unusual
        n = tens * 10 + units
        begin = at + 3
    else:
        colon = data.index(b":", at, stop)
        prefix = data[at:colon]
        if not prefix.isdigit():
            raise _Unusual
        begin = colon + 1
        n = int(prefix)
    end = begin + n
    if end >= stop:
        raise _Unusual
    tag = data[end]
    if tag == 44:  # ,
        return data[begin:end], end + 1
    if tag == 59:  # ;
        return data[begin:end].decode("utf8"), end + 1
    if tag == 125:  # }
        if depth >= MAX_DEPTH:
            raise _Unusual
        d = {}
        at = begin
        while at < end:
            key, at = _value(data, at, end, depth + 1)
            if at >= end:
                raise _Unusual
            d[key], at = _value(data, at, end, depth + 1)
        return d, end + 1
    if tag == 93:  # ]
        if depth >= MAX_DEPTH:
            raise _Unusual
        items = []
        at = begin
        while at < end:
            item, at = _value(data, at, end, depth + 1)
            items.append(item)
        return items, end + 1
    if tag == 35:  # #
        return int(data[begin:end]), end + 1
    if tag == 126 and end == begin:  # ~
        return None, end + 1
    if tag == 33:  # !
        text = data[begin:end]
        if text == b"true":
            return True, end + 1
        if text == b"false":
            return False, end + 1
    if tag == 94:  # ^
        return float(data[begin:end]), end + 1
    raise _Unusual


def members(data: bytes, raw: frozenset[str] | None = frozenset()
            ) -> list[tuple[object, object]] | None:
    """The members of the dict ``data`` holds, in order, as ``loads`` reads them, except the
    values of the keys in ``raw`` (None: of every key): each left as its own tnetstring
    bytes (a flow's connection states, which repeat from flow to flow: read once, by
    whoever remembers them). None when ``data`` is not a dict of the plain shapes this
    reader takes: the caller then reads it whole, as before."""
    try:
        colon = data.index(b":", 0, len(data))
        prefix = data[:colon]
        if not prefix.isdigit():
            return None
        at = colon + 1
        end = at + int(prefix)
        if end >= len(data) or data[end] != 125:  # }
            return None
        out: list[tuple[object, object]] = []
        while at < end:
            key, at = _value(data, at, end, 1)
            if at >= end:
                return None
            if raw is None or (type(key) is str and key in raw):
                stop = _skipped(data, at, end)
                out.append((key, data[at:stop]))
                at = stop
            else:
                value, at = _value(data, at, end, 1)
                out.append((key, value))
        return out
    except (_Unusual, ValueError, IndexError, TypeError, RecursionError):
        return None


def _skipped(data: bytes, at: int, stop: int) -> int:
    """Where the value at ``at`` ends, without reading it (its length prefix says)."""
    colon = data.index(b":", at, stop)
    prefix = data[at:colon]
    if not prefix.isdigit():
        raise _Unusual
    end = colon + 1 + int(prefix)
    if end >= stop:
        raise _Unusual
    return end + 1

