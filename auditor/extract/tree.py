"""The leaves of a decoded msgpack or CBOR document: both give Python values whose maps
may have keys of any type and whose bytes values may be a format of their own."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import cbor2
import msgpack

from auditor.extract.reading import Encoding, ReadContext, guarded, too_deep
from auditor.extract.text import as_text
from auditor.limits import MAX_NEST, MAX_TREE_DEPTH, NODE_COST, segment
from auditor.model import Field


def _key(key: object) -> str:
    """A msgpack / CBOR map key as a path segment (any type may be a key there)."""
    if isinstance(key, bytes | bytearray):
        return segment(bytes(key).decode("utf-8", errors="replace"))
    return segment(_scalar(key) or "?")


def _scalar(value: object) -> str | None:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    try:
        return str(value)
    except ValueError:  # an integer past Python's digit limit (a hostile CBOR bignum)
        return None


def walk_tree(doc: object, prefix: str, ctx: ReadContext, encoding: Encoding, nest: int,
              depth: int = 0) -> Iterator[Field]:
    """Leaves of a decoded msgpack / CBOR document; bytes values are sniffed in turn. A
    CBOR document may share one value in many places: each place is visited and charged."""
    ctx.budget.spend(NODE_COST, prefix)
    if depth > MAX_TREE_DEPTH:
        yield too_deep(prefix, encoding)
        return
    if doc is None or isinstance(doc, bool):
        return
    if isinstance(doc, cbor2.CBORTag):
        doc = doc.value
    elif isinstance(doc, msgpack.ExtType):
        doc = doc.data
    if isinstance(doc, Mapping):  # CBOR gives a frozendict inside tags
        for key, value in doc.items():
            yield from walk_tree(value, f"{prefix}.{_key(key)}", ctx, encoding, nest,
                                 depth + 1)
    elif isinstance(doc, list | tuple | set | frozenset):
        for i, value in enumerate(doc):
            yield from walk_tree(value, f"{prefix}.{i}", ctx, encoding, nest, depth + 1)
    elif isinstance(doc, bytes | bytearray | memoryview):
        yield from _read_blob(bytes(doc), prefix, ctx, encoding, nest + 1)
    else:
        text = _scalar(doc)
        if text is not None:
            ctx.budget.spend(len(prefix) + len(text), prefix)
            ctx.text_leaves += isinstance(doc, str) and len(text) >= 4
            yield Field(ctx.location, prefix, text, encoding)


def _read_blob(data: bytes, path: str, ctx: ReadContext, encoding: Encoding,
               nest: int) -> Iterator[Field]:
    """A bytes value inside a binary document: text, media, or a format of its own."""
    text = as_text(data)
    if text is not None:
        if text:
            ctx.budget.spend(len(path) + len(text), path)
            yield Field(ctx.location, path, text, encoding)
        return
    if nest <= MAX_NEST:
        yield from guarded(ctx.read(data, path, ctx, encoding, "", nest, text_path=path), path,
                           encoding, ctx)
