"""JSON (RFC 8259) and documents sent back to back (NDJSON), as fields with dotted paths.

Numbers are kept as the text that was sent, because the precision a device transmitted is
itself evidence (a location precise or coarse). ``auditor.decode`` reads JSON found inside
values with the same ``parse_json`` and ``walk_json``.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator

from auditor.extract.reading import Encoding, ReadContext, too_deep
from auditor.limits import (
    MAX_FIELDS,
    MAX_SEGMENT,
    MAX_TREE_DEPTH,
    NODE_COST,
    OPAQUE,
    Budget,
    current_budget,
    shortened,
)
from auditor.model import Field

# ``json.loads(text, parse_float=str, parse_int=str)``'s decoder (it keeps no state
# between calls: its scanner's memo is emptied after each).
_DECODER = json.JSONDecoder(parse_float=str, parse_int=str)


class NestedTooDeep(ValueError):
    """A document nested past what a parser recurses into: a limit, not a format error."""


def parse_json(text: str) -> object:
    """JSON with numbers kept as the text that was sent (``39.98312`` stays ``"39.98312"``):
    the precision a device transmitted is itself evidence (location precise vs coarse)."""
    try:
        if type(text) is str and not text.startswith("\ufeff"):
            # What ``json.loads`` does for such a text, with one decoder made once rather
            # than a decoder and its scanner made for each value (most values are short).
            return _DECODER.decode(text)
        return json.loads(text, parse_float=str, parse_int=str)  # a BOM refused, bytes...
    except RecursionError as e:
        raise NestedTooDeep("JSON nested too deep to parse") from e


def walk_json(doc: object, prefix: str, location: str, encoding: Encoding,
              depth: int = 0, budget: Budget | None = None) -> Iterator[Field]:
    """Leaves of a JSON document as fields with dotted paths (``body.json.dev.imei``).
    Each node visited and each leaf's path are charged to ``budget`` (the message's)."""
    if budget is not None:  # the walk itself, one generator fewer for each field to pass
        return _walk_json(doc, prefix, location, encoding, depth, budget)
    return _lazily_budgeted(doc, prefix, location, encoding, depth)


def _lazily_budgeted(doc: object, prefix: str, location: str, encoding: Encoding,
                     depth: int) -> Iterator[Field]:
    """``walk_json`` without a budget: the message's, as it is when the walk starts."""
    yield from _walk_json(doc, prefix, location, encoding, depth, current_budget())


def _walk_json(doc: object, prefix: str, location: str, encoding: Encoding,
               depth: int, budget: Budget) -> Iterator[Field]:
    budget.work -= NODE_COST  # inline: this runs once per node of every JSON document
    if budget.work < 0:
        budget.spend(0, prefix)
    if depth > MAX_TREE_DEPTH:
        yield too_deep(prefix, encoding)
        return
    if isinstance(doc, dict):
        members, named = doc.items(), True
    elif isinstance(doc, list):
        members, named = enumerate(doc), False
    else:
        if doc is not None and not isinstance(doc, bool):
            budget.spend(len(prefix), prefix)
            yield Field(location, prefix, str(doc), encoding)
        return
    # A string leaf (most of a document: ``parse_json`` reads numbers as strings too) is
    # visited in its parent's loop, charge for charge as ``_walk_json`` would visit it,
    # without a generator of its own: that generator, and passing each of its fields up
    # through it, cost more than the visit itself.
    below = depth + 1
    for key, value in members:
        path = f"{prefix}.{shortened(key) if named and len(key) > MAX_SEGMENT else key}"
        if type(value) is not str:
            yield from _walk_json(value, path, location, encoding, below, budget)
            continue
        budget.work -= NODE_COST
        if budget.work < 0:
            budget.spend(0, path)
        if below > MAX_TREE_DEPTH:
            yield too_deep(path, encoding)
            continue
        budget.spend(len(path), path)
        yield Field(location, path, value, encoding)


def looks_like_json(stripped: str) -> bool:
    return stripped[:1] in ("{", "[")


def read_json(text: str, data: bytes, prefix: str, ctx: ReadContext, encoding: Encoding,
              nest: int) -> Generator[Field, None, bool]:
    """A text body that opens like JSON: its leaves (``prefix.json.a``), or those of each
    document back to back (``prefix.json.0.a``). Returns False when it was not JSON after
    all, so the sniffer reads the text some other way; a document nested too deep or cut
    short is noted opaque first."""
    ctx.budget.spend(len(data), prefix)
    try:
        doc = parse_json(text)
    except NestedTooDeep as e:
        yield Field(OPAQUE, f"{prefix}.json", str(e), encoding)
    except json.JSONDecodeError as e:
        if e.msg.startswith("Extra data"):  # NDJSON, or documents back to back
            docs, cut = _json_sequence(text)
            if docs:
                for i, doc in enumerate(docs):
                    yield from walk_json(doc, f"{prefix}.json.{i}", ctx.location, encoding,
                                         budget=ctx.budget)
                if cut:
                    yield Field(OPAQUE, f"{prefix}.json", f"JSON cut short after "
                                f"{len(text)} characters", encoding)
                return True
        elif _cut_short(e, text):
            yield Field(OPAQUE, f"{prefix}.json", f"JSON cut short after {len(text)} "
                        "characters; read as text", encoding)
    else:
        yield from walk_json(doc, f"{prefix}.json", ctx.location, encoding, budget=ctx.budget)
        return True
    return False


_JSON_SEQ = _DECODER


def _cut_short(e: json.JSONDecodeError, text: str) -> bool:
    """The parser ran out of input (a string never closed runs to the end): a body cut
    short in capture or by the device, which the report should say."""
    return e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string")


def _json_sequence(text: str) -> tuple[list[object], bool]:
    """Documents back to back (NDJSON, RFC 7464 without its separators): the documents,
    and whether the last was cut short. Nothing unless every gap is only whitespace."""
    docs: list[object] = []
    pos, end = 0, len(text)
    try:
        while pos < end and len(docs) < MAX_FIELDS:
            doc, pos = _JSON_SEQ.raw_decode(text, pos)
            docs.append(doc)
            while pos < end and text[pos] in " \t\r\n":
                pos += 1
    except json.JSONDecodeError as e:
        return (docs, True) if _cut_short(e, text) else ([], False)
    except RecursionError:
        return [], False
    return docs, False
