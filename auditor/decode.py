"""Layered decoding: peel compression, percent-encoding, base64, hex, JSON-inside-a-string
and JWT payloads off field values, recursively.

Each derived field carries the chain of layers it took (outermost first), so a finding can
say *how* a value was hidden. Limits on depth, count, size, decompression ratio and work
(``auditor.limits``, shared with extraction: one budget per message) hold against hostile
input: a limit never raises, it records the field as opaque.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

from auditor.extract.bodies import fields_from_bytes
from auditor.extract.compression import decompress, sniff_compression
from auditor.extract.json_body import NestedTooDeep, parse_json, walk_json
from auditor.extract.media import MEDIA, sniff_media
from auditor.extract.text import TEXT_BYTES
from auditor.limits import (
    LAYER_COST,
    MAX_DERIVED,
    MAX_LAYERS,
    MAX_PATH,
    MAX_VALUE,
    OPAQUE,
    Budget,
    Limit,
    bounded,
    current_budget,
)
from auditor.model import Field

LAYERS = ("gzip", "zlib", "deflate", "brotli", "zstd", "url", "base64", "hex", "json", "jwt")

_B64 = re.compile(r"^[A-Za-z0-9+/_-]{12,}={0,2}$")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2}){4,}$")
_HEXCHARS = re.compile(r"^[0-9A-Fa-f]+$")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
# RFC 7519: a JWS in compact form; the header is a JSON object, so base64url of '{"'.
_JWT = re.compile(r"^(eyJ[A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$")


@dataclass
class _State:
    derived: int = MAX_DERIVED
    work: Budget = field(default_factory=Budget)
    opaque: list[str] = field(default_factory=list)
    noted: set[str] = field(default_factory=set)

    def note(self, path: str, reason: str) -> None:
        entry = f"{path}: {reason}"
        if entry not in self.noted:
            self.noted.add(entry)
            self.opaque.append(entry)


def expand(fields: Iterable[Field], opaque: list[str] | None = None,
           budget: Budget | None = None) -> list[Field]:
    """The fields plus every decoded layer found inside them.

    ``opaque`` collects ``"field: reason"`` for every value a limit stopped us reading (and
    every ``opaque`` field an extractor emitted), so the report can say what was not looked
    into instead of claiming it was clean. ``budget`` is the message's (by default the one
    extraction drew on, ``limits.message_budget``): every layer peeled and byte it gives
    is charged; once it is used up the fields are still passed on, undecoded.
    """
    state = _State(opaque=opaque if opaque is not None else [],
                   work=budget if budget is not None else current_budget())
    out: list[Field] = []
    for f in fields:
        if f.location == OPAQUE:
            state.note(f.path, f.value)
            continue
        if len(f.path) > MAX_PATH:
            f = bounded(f)
        out.append(f)
        if state.work.used_up or _undecodable(f.value):
            continue
        try:
            for child in _peel(f, 0, state):
                out.append(child if len(child.path) <= MAX_PATH else bounded(child))
        except Limit as e:
            state.note(e.path, e.reason)
    if state.derived <= 0:
        state.note("*", f"more than {MAX_DERIVED} decoded fields, the rest not decoded")
    return out


def _undecodable(value: str) -> bool:
    """True when ``_decodings`` finds no layer in the value, told without a regex: most
    fields of a message (words, counters, coordinates, timestamps) are, and ``_peel`` is two
    generators and five searches a field. It has no JSON bracket and no ``%XX``, and:
    is shorter than the shortest JWT (``eyJ?.?.``, 7 characters); or holds a ``:``, which
    no base64, hex or JWT text has; or a ``.`` (in neither base64 nor hex) without beginning
    as a JWT does; or is all digits (never read as base64) of a length no hex has (odd, or
    under 8); or is an unpadded odd length under 12 (base64 needs 12, hex an even length)
    without beginning as a JWT."""
    if "%" in value or "{" in value or "[" in value:
        return False
    n = len(value)
    if n < 7 or ":" in value:
        return True
    if "." in value:
        return not value.lstrip().startswith("eyJ")
    if n % 2 == 0 and n >= 8:
        return False
    return value.isdigit() or n < 12 and value.strip() == value and not value.startswith("eyJ")


def _peel(f: Field, depth: int, state: _State) -> Iterator[Field]:
    if f.location == MEDIA or state.derived <= 0:
        return
    if len(f.value) > MAX_VALUE:
        if _B64.match(f.value) or _HEX.match(f.value):
            state.note(f.path, f"value of {len(f.value)} characters, over {MAX_VALUE}, "
                       "not decoded")
        return
    if depth >= MAX_LAYERS:
        if next(_decodings(f, state), None) is not None:
            state.note(f.path, f"more than {MAX_LAYERS} layers, the rest not decoded")
        return
    for child in _decodings(f, state):
        if child.location == OPAQUE:
            state.note(child.path, child.value)
            continue
        if state.derived <= 0:  # one JSON-in-a-string can hold more leaves than the budget
            return
        state.derived -= 1
        state.work.spend(LAYER_COST + len(child.value), child.path)
        yield child
        yield from _peel(child, depth + 1, state)


def _decodings(f: Field, state: _State) -> Iterator[Field]:
    """Fields one layer below ``f``: only decodings that yield readable text, a document,
    media or a known compressed stream."""
    v = f.value.strip()
    if v[:1] in ("{", "[") and len(v) > 1:
        yield from _text_child(f, "json", v, state)
        return
    if _PCT.search(v):
        yield from _text_child(f, "url", unquote(v), state)
    m = _JWT.match(v)
    if m is not None:
        yield from _jwt(f, m.group(1), m.group(2), state)
        return
    if _B64.match(v) and not v.isdigit() and not _HEXCHARS.match(v):
        raw = _b64(v)
        if raw is not None:
            yield from _bytes_child(f, "base64", raw, state)
    if _HEX.match(v):
        raw = bytes.fromhex(v)
        if _readable(raw) is not None or sniff_compression(raw) is not None:
            yield from _bytes_child(f, "hex", raw, state, structured=False)


def _text_child(parent: Field, layer: str, text: str, state: _State,
                chain: tuple[str, ...] | None = None, path: str | None = None
                ) -> Iterator[Field]:
    """Decoded text as one field, or as a JSON document's leaves when it is one (its
    parse and every node of its walk charged to the message's budget)."""
    chain = chain if chain is not None else (*parent.encoding, layer)
    path = path if path is not None else f"{parent.path}.{layer}"
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        state.work.spend(len(text), path)
        try:
            doc = parse_json(text)
        except NestedTooDeep as e:
            yield Field(OPAQUE, path, str(e), chain)
        except ValueError:
            pass
        else:
            json_chain = chain if chain[-1:] == ("json",) else (*chain, "json")
            yield from walk_json(doc, path, parent.location, json_chain, budget=state.work)
            return
    if layer != "json":
        yield Field(parent.location, path, text, chain)


def _jwt(f: Field, header: str, payload: str, state: _State) -> Iterator[Field]:
    """A JWS's payload claims (RFC 7519 3), once its header reads as a JOSE header."""
    head, body = _b64(header), _b64(payload)
    if head is None or body is None:
        return
    try:
        jose = parse_json(head.decode("utf-8"))
        claims = parse_json(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return
    if isinstance(jose, dict) and ("alg" in jose or "typ" in jose):
        yield from walk_json(claims, f"{f.path}.jwt", f.location, (*f.encoding, "jwt", "json"),
                             budget=state.work)


def _bytes_child(f: Field, layer: str, raw: bytes, state: _State, structured: bool = True
                 ) -> Iterator[Field]:
    """Bytes a text layer gave: readable text, or compressed (peeled, each layer in the
    chain), or media, or (``structured``) a binary document that holds some text."""
    chain = (*f.encoding, layer)
    path = f"{f.path}.{layer}"
    try:
        state.work.spend(len(raw), path)
        for _ in range(MAX_LAYERS):
            comp = sniff_compression(raw)
            if comp is None:
                break
            out = decompress(raw, comp, state.work, path)
            if out is None:
                return
            raw, chain = out, (*chain, comp)
    except Limit as e:
        yield Field(OPAQUE, e.path, e.reason, chain)
        return
    text = _readable(raw)
    if text is not None:
        yield from _text_child(f, layer, text, state, chain, path)
        return
    mime = sniff_media(raw)
    if mime is not None:
        yield Field(MEDIA, path, mime, chain)
        return
    if structured:
        for trial in ("deflate", "brotli"):  # no magic: kept only when the result is text
            try:
                out = decompress(raw, trial, state.work, path)
            except Limit as e:
                yield Field(OPAQUE, e.path, e.reason, (*chain, trial))
                return
            text = _readable(out) if out is not None else None
            if text is not None:
                yield from _text_child(f, layer, text, state, (*chain, trial), path)
                return
    if structured or chain[-1] != layer:
        yield from fields_from_bytes(raw, path, f.location, chain, strict=True,
                                            budget=state.work)


def _b64(v: str) -> bytes | None:
    """Standard, URL-safe or unpadded base64 (RFC 4648 4, 5)."""
    padded = v + "=" * (-len(v) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def _readable(raw: bytes) -> str | None:
    """UTF-8 text of which 95% or more is printable."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    bad = len(raw.translate(None, TEXT_BYTES))  # ASCII control bytes, counted in C
    if not raw.isascii():
        bad += sum(not ch.isprintable() for ch in text if ord(ch) > 127)
    return text if bad <= 0.05 * len(text) else None
