"""Protocol Buffers without a schema (protobuf.dev/programming-guides/encoding) and the
gRPC framing around them: field numbers as paths (``prefix.pb.1.2``), values as sent.

Without the schema a length-delimited field may be text, a nested message, media or a
compressed stream; it is read as the first of those that fits all of its bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator

from auditor.extract.compression import sniff_compression
from auditor.extract.media import MEDIA, sniff_media
from auditor.extract.reading import Encoding, ReadContext, guarded, too_deep
from auditor.extract.text import as_text
from auditor.limits import MAX_FIELDS, MAX_NEST, MAX_TREE_DEPTH, NODE_COST, OPAQUE
from auditor.model import Field

_MAX_FIELD_NUMBER = (1 << 29) - 1


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A base-128 varint at ``pos``: (value, next position); ValueError when malformed."""
    value = shift = 0
    for i in range(pos, min(pos + 10, len(buf))):
        b = buf[i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i + 1
        shift += 7
    raise ValueError("bad varint")


def pb_parse(buf: bytes) -> list[tuple[int, int, int | bytes]] | None:
    """One message level as (field number, wire type, value), or None unless all of
    ``buf`` parses. Groups (wire types 3, 4) are long deprecated and read as not protobuf.
    Past ``MAX_FIELDS`` entries the rest is not parsed: the caller cuts and notes it."""
    out: list[tuple[int, int, int | bytes]] = []
    pos, end = 0, len(buf)
    try:
        while pos < end:
            tag, pos = _varint(buf, pos)
            number, wire = tag >> 3, tag & 7
            if not 1 <= number <= _MAX_FIELD_NUMBER:
                return None
            if len(out) > MAX_FIELDS:
                return out
            if wire == 0:
                value, pos = _varint(buf, pos)
                out.append((number, 0, value))
            elif wire in (1, 5):
                size = 8 if wire == 1 else 4
                if pos + size > end:
                    return None
                out.append((number, wire, buf[pos:pos + size]))
                pos += size
            elif wire == 2:
                size, pos = _varint(buf, pos)
                if pos + size > end:
                    return None
                out.append((number, 2, buf[pos:pos + size]))
                pos += size
            else:
                return None
    except ValueError:
        return None
    return out


def _float_text(raw: bytes) -> str | None:
    """A fixed32/fixed64 as the shortest decimal that reads back to the same bits, when it is
    a plausible number (coordinates, speeds), not an integer's bits seen as a float."""
    if len(raw) == 8:
        value = struct.unpack("<d", raw)[0]
        text = repr(value)
    else:
        value = struct.unpack("<f", raw)[0]
        text = repr(value)
        for digits in range(6, 10):
            candidate = f"{value:.{digits}g}"
            if struct.pack("<f", float(candidate)) == raw:
                text = candidate
                break
    if not math.isfinite(value) or not (value == 0 or 1e-9 < abs(value) < 1e15):
        return None
    return text


def _pb_fields(entries: list[tuple[int, int, int | bytes]], prefix: str, ctx: ReadContext,
               encoding: Encoding, nest: int, depth: int = 0) -> Iterator[Field]:
    if len(entries) > MAX_FIELDS:  # pb_parse stopped: entries that yield nothing (empty
        entries = entries[:MAX_FIELDS]  # strings) would otherwise hide the cut
        yield Field(OPAQUE, prefix, f"more than {MAX_FIELDS} entries in one message, the "
                    "rest not read", encoding)
    for number, wire, value in entries:
        path = f"{prefix}.{number}"
        ctx.budget.spend(NODE_COST + len(path), path)
        if isinstance(value, int):
            signed = value - (1 << 64) if value >= 1 << 63 else value
            yield Field(ctx.location, path, str(signed), encoding)
        elif wire in (1, 5):
            yield Field(ctx.location, path, str(int.from_bytes(value, "little")), encoding)
            text = _float_text(value)
            if text is not None:
                yield Field(ctx.location, path, text, encoding)
        else:
            yield from _pb_bytes(value, path, ctx, encoding, nest, depth)


def _pb_bytes(value: bytes, path: str, ctx: ReadContext, encoding: Encoding, nest: int,
              depth: int) -> Iterator[Field]:
    """A length-delimited field: text when it is all text (a nested message nearly always
    holds a tag or length byte below 0x20), else a nested message when it parses fully,
    else media by magic bytes, else skipped."""
    text = as_text(value)
    if text is not None:
        if text:
            ctx.text_leaves += len(text) >= 4
            yield Field(ctx.location, path, text, encoding)
        return
    if depth >= MAX_TREE_DEPTH:
        yield too_deep(path, encoding)
        return
    ctx.budget.spend(len(value), path)
    nested = pb_parse(value)
    if nested:
        yield from _pb_fields(nested, path, ctx, encoding, nest, depth + 1)
        return
    mime = sniff_media(value)
    if mime is not None:
        yield Field(MEDIA, path, mime, encoding)
    elif nest < MAX_NEST and sniff_compression(value) is not None:
        yield from guarded(ctx.read(value, path, ctx, encoding, "", nest + 1, text_path=path),
                           path, encoding, ctx)


def read_protobuf(data: bytes, prefix: str, ctx: ReadContext, encoding: Encoding, nest: int
                  ) -> Iterator[Field] | None:
    ctx.budget.spend(len(data), prefix)
    entries = pb_parse(data)
    if not entries:
        return None
    return _pb_fields(entries, f"{prefix}.pb", ctx, encoding, nest)


def read_grpc(data: bytes, prefix: str, ctx: ReadContext, encoding: Encoding, nest: int
              ) -> Iterator[Field] | None:
    """gRPC length-prefixed messages (grpc/doc/PROTOCOL-HTTP2.md): flag, 4-byte length."""
    frames: list[tuple[bool, bytes]] = []
    pos = 0
    while pos + 5 <= len(data):
        size = int.from_bytes(data[pos + 1:pos + 5], "big")
        frames.append((bool(data[pos] & 1), data[pos + 5:pos + 5 + size]))
        pos += 5 + size
    if pos != len(data) or not frames:
        return read_protobuf(data, prefix, ctx, encoding, nest)

    def walk() -> Iterator[Field]:
        for compressed, frame in frames:
            if compressed:
                yield from guarded(ctx.read(frame, prefix, ctx, encoding,
                                            "application/x-protobuf", nest + 1),
                                   prefix, encoding, ctx)
            else:
                it = read_protobuf(frame, prefix, ctx, encoding, nest)
                if it is not None:
                    yield from it
    return walk()
