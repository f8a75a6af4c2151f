"""MessagePack documents (msgpack.org spec), as fields ``prefix.msgpack.a``."""

from __future__ import annotations

from collections.abc import Iterator

import msgpack

from auditor.extract.reading import Encoding, ReadContext
from auditor.extract.tree import walk_tree
from auditor.model import Field

# First bytes of a msgpack map or array: undeclared msgpack worth reading is a container.
CONTAINERS = frozenset(range(0x80, 0xA0)) | {0xDC, 0xDD, 0xDE, 0xDF}


def read_msgpack(data: bytes, prefix: str, ctx: ReadContext, encoding: Encoding, nest: int
                 ) -> Iterator[Field] | None:
    ctx.budget.spend(len(data), prefix)
    try:
        doc = msgpack.unpackb(data, raw=False, strict_map_key=False,
                              unicode_errors="replace", timestamp=3)
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException):
        return None
    return walk_tree(doc, f"{prefix}.msgpack", ctx, encoding, nest)
