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
