"""CBOR documents (RFC 8949), as fields ``prefix.cbor.a``.

CBOR can share one value in many places (IANA tags 28/29), so a few hundred bytes can
decode to more nodes than any budget allows: ``cbor_nodes`` counts them from the bytes
before ``cbor2`` builds anything.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import cbor2

from auditor.extract.reading import Encoding, ReadContext
from auditor.extract.tree import walk_tree
from auditor.limits import NODE_COST, Limit
from auditor.model import Field

# First bytes of a CBOR array, map or self-described document: undeclared CBOR worth
# reading is a container.
CONTAINERS = frozenset(range(0x80, 0xC0)) | {0xD9}

_CBOR_ARG = {24: 1, 25: 2, 26: 4, 27: 8}  # RFC 8949 3: additional information -> bytes
_SHAREABLE, _SHARED_REF = 28, 29  # IANA CBOR tags: value sharing
# An open item: [items left (-1: indefinite), nodes so far, kind]; kind is _CONTAINER,
# _TAG, or the index of the tag 28 value it is.
_Frame = list[int]
_CONTAINER, _TAG = -1, -2


def _cbor_head(data: bytes, pos: int) -> tuple[int, int, int, int]:
    """(major type, additional information, argument, next position) of the item at
    ``pos`` (RFC 8949 3); IndexError when the data ends, ValueError when malformed."""
    first = data[pos]
    major, info = first >> 5, first & 0x1F
    size = _CBOR_ARG.get(info, 0)
    if 28 <= info <= 30 or (info == 31 and major in (0, 1, 6)):
        raise ValueError("reserved additional information")
    if pos + 1 + size > len(data):
        raise IndexError("cut short")
    arg = info if size == 0 else int.from_bytes(data[pos + 1:pos + 1 + size], "big")
    return major, info, arg, pos + 1 + size


def cbor_nodes(data: bytes, limit: int, path: str) -> int | None:
    """How many nodes the CBOR document in ``data`` decodes to once every shared value
    (tag 29, a reference to a tag 28 value) is expanded in each place it is used, read
    from the bytes before cbor2 builds anything; None when ``data`` is not one whole
    CBOR item. Raises ``Limit`` as soon as the count passes ``limit``, or on a reference
    to a value that holds it (a cycle): a 260-byte document of 40 shared levels expands
    to 2**40 nodes, and walking or hashing what cbor2 returns would never end."""
    shared: list[int | None] = []  # nodes of each tag 28 value, None while still open
    stack: list[_Frame] = [[1, 0, _TAG]]  # a root frame holding the one top-level item
    pos, end = 0, len(data)
    try:
        while True:
            major, info, arg, pos = _cbor_head(data, pos)
            if major == 7 and info == 31:  # "break": ends an indefinite container
                frame = stack.pop()
                if frame[0] != -1 or not stack:
                    return None
                nodes = frame[1] + 1
            elif major in (2, 3):
                if info == 31:  # indefinite string: definite chunks up to a break
                    while data[pos] != 0xFF:
                        _, chunk_info, size, pos = _cbor_head(data, pos)
                        if chunk_info == 31:
                            return None
                        pos += size
                    pos += 1
                else:
                    pos += arg
                if pos > end:
                    return None
                nodes = 1
            elif major in (4, 5) and (arg or info == 31):
                stack.append([-1 if info == 31 else arg * (major - 3), 0, _CONTAINER])
                continue
            elif major == 6 and arg == _SHAREABLE:
                shared.append(None)
                stack.append([1, 0, len(shared) - 1])
                continue
            elif major == 6 and arg == _SHARED_REF:
                kind, _, index, pos = _cbor_head(data, pos)
                if kind != 0 or index >= len(shared):
                    return None
                found = shared[index]
                if found is None:
                    raise Limit(path, "CBOR shared reference inside the value it refers to "
                                "(a cycle), not expanded")
                nodes = found
            elif major == 6:
                stack.append([1, 0, _TAG])
                continue
            else:
                nodes = 1
            while True:  # the item is whole: count it in its container, close full ones
                frame = stack[-1]
                frame[1] += nodes
                if frame[1] > limit:
                    raise Limit(path, f"CBOR document expands to more than {limit} nodes "
                                "(shared values counted where used), not read")
                if frame[0] == -1:
                    break
                frame[0] -= 1
                if frame[0]:
                    break
                stack.pop()
                if frame[2] >= 0:
                    shared[frame[2]] = frame[1]
                if not stack:
                    return frame[1] if pos == end else None
                nodes = frame[1] + (frame[2] == _CONTAINER)  # a container is a node too
    except (IndexError, ValueError):
        return None


def read_cbor(data: bytes, prefix: str, ctx: ReadContext, encoding: Encoding, nest: int
              ) -> Iterator[Field] | None:
    """The document, once ``cbor_nodes`` has shown it fits the budget with every shared
    value expanded; None unless all of ``data`` is one CBOR item."""
    ctx.budget.spend(len(data), prefix)
    if cbor_nodes(data, ctx.budget.work // NODE_COST, prefix) is None:
        return None
    fp = io.BytesIO(data)
    try:
        doc = cbor2.CBORDecoder(fp).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, LookupError,
            RecursionError):
        return None
    if fp.tell() != len(data):
        return None
    return walk_tree(doc, f"{prefix}.cbor", ctx, encoding, nest)
