"""tnetstrings as ``mitmproxy.io.tnetstring.dumps`` writes them, byte for byte, faster.

Why: the live session appends every flow to ``flows.mitm``, and mitmproxy's writer (pure
Python, one deque operation per fragment) was a quarter of the worker's time per flow - the
CPU the worker takes from the proxy, the device's client and its servers on a small
machine. This one builds each value's bytes with one ``%`` format and joins them.

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
    if t is dict:
        body = b"".join(_items(value))  # type: ignore[arg-type]
        return b"%d:%s}" % (len(body), body)
    if t is list or t is tuple:
        body = b"".join(_elements(value))  # type: ignore[arg-type]
        return b"%d:%s]" % (len(body), body)
    return _one(value)


def _elements(items: list | tuple) -> list[bytes]:
    """A list's elements; a header is a pair of bytes, written here without a call each."""
    out: list[bytes] = []
    add = out.append
    for v in items:
        if type(v) is bytes:
            add(b"%d:%s," % (len(v), v))
        else:
            add(_one(v))
    return out


def _items(d: dict) -> list[bytes]:
    """A dict's items, last first. Its keys are almost always ``str`` and most values
    scalars: those are written here, without a call each (a flow has about a hundred)."""
    out: list[bytes] = []
    add = out.append
    for k, v in reversed(d.items()):
        if type(k) is str:
            data = k.encode("utf8")
            add(b"%d:%s;" % (len(data), data))
        else:
            add(_one(k))
        t = type(v)
        if t is bytes:
            add(b"%d:%s," % (len(v), v))
        elif t is str:
            data = v.encode("utf8")
            add(b"%d:%s;" % (len(data), data))
        elif v is None:
            add(b"0:~")
        elif t is float:
            data = repr(v).encode()
            add(b"%d:%s^" % (len(data), data))
        elif t is bool:
            add(b"4:true!" if v else b"5:false!")
        else:
            add(_one(v))
    return out


def _one(value: object) -> bytes:
    t = type(value)
    if t is bytes:
        return b"%d:%s," % (len(value), value)  # type: ignore[arg-type]
    if t is str:
        data = value.encode("utf8")  # type: ignore[union-attr]
        return b"%d:%s;" % (len(data), data)
    if t is dict or t is list or t is tuple:
        return dumps(value)
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
