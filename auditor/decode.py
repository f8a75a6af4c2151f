"""Layered decoding: peel base64, percent-encoding and JSON-inside-a-string off field values.

Each derived field carries the chain of layers it took (outermost first), so a finding can
say *how* a value was hidden. Limits on depth, count and size hold against hostile input.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from urllib.parse import unquote

from auditor.extract.http import parse_json, walk_json
from auditor.model import Field

MAX_DEPTH = 4
MAX_VALUE = 256 * 1024  # a value longer than this is matched as is, not decoded
MAX_DERIVED = 5_000  # derived fields per message

_B64 = re.compile(r"^[A-Za-z0-9+/_-]{12,}={0,2}$")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")


def expand(fields: Iterable[Field], opaque: list[str] | None = None) -> list[Field]:
    """The fields plus every decoded layer found inside them.

    ``opaque`` collects ``"field: reason"`` for every value a limit stopped us reading, so
    the report can say what was not looked into instead of claiming it was clean.
    """
    out: list[Field] = []
    budget = [MAX_DERIVED]
    for f in fields:
        out.append(f)
        out.extend(_peel(f, 0, budget))
    if budget[0] <= 0 and opaque is not None:
        opaque.append(f"*: more than {MAX_DERIVED} decoded fields, the rest not decoded")
    return out


def _peel(f: Field, depth: int, budget: list[int]) -> Iterator[Field]:
    if depth >= MAX_DEPTH or len(f.value) > MAX_VALUE or budget[0] <= 0:
        return
    for layer, decoded in _layers(f.value):
        if budget[0] <= 0:
            return
        chain = (*f.encoding, layer)
        for child in _as_fields(f, decoded, layer, chain):
            if budget[0] <= 0:  # one JSON-in-a-string can hold more leaves than the budget
                return
            budget[0] -= 1
            yield child
            yield from _peel(child, depth + 1, budget)


def _as_fields(parent: Field, decoded: str, layer: str, chain: tuple[str, ...]
               ) -> Iterator[Field]:
    stripped = decoded.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            doc = parse_json(decoded)
        except ValueError:
            pass
        else:
            json_chain = chain if layer == "json" else (*chain, "json")
            yield from walk_json(doc, f"{parent.path}.{layer}", parent.location, json_chain)
            return
    if layer != "json":
        yield Field(parent.location, f"{parent.path}.{layer}", decoded, chain)


def _layers(value: str) -> Iterator[tuple[str, str]]:
    """Candidate decodings of one value: only those that yield readable text."""
    v = value.strip()
    if v[:1] in ("{", "[") and len(v) > 1:
        yield "json", v
        return
    if _PCT.search(v):
        yield "url", unquote(v)
    if _B64.match(v) and not v.isdigit() and not _is_hex(v):
        text = _b64_text(v)
        if text is not None:
            yield "base64", text


def _is_hex(v: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in v)


def _b64_text(v: str) -> str | None:
    padded = v + "=" * (-len(v) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    if not text or printable < 0.95 * len(text):
        return None
    return text
