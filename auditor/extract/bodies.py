"""Body formats read from any bytes: compression, media, JSON, XML, form, multipart,
schema-less protobuf, msgpack and CBOR.

HTTP bodies, WebSocket messages and raw TCP payloads all go through ``fields_from_bytes``,
which sniffs the format (magic bytes first, then the declared content type, then the shape
of the data). Everything is bounded: a limit that stops reading becomes a field with
location ``opaque`` (path: where, value: why), which ``auditor.decode.expand`` moves into
the observation's opaque list, so the report says what was not looked into. The limits
count work, not only input: one budget per message (``Budget``, ``message_budget``) is
charged for bytes read and produced, nodes visited and layers peeled, so a document that
shares or repeats itself (CBOR tags 28/29, a million empty arrays) ends as early as a
decompression bomb does.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus
from xml.etree import ElementTree

import brotli
import cbor2
import msgpack
import zstandard

from auditor.model import Field

MAX_BYTES = 4 * 1024 * 1024  # bytes of one payload we look into; the rest is noted opaque
MAX_FIELDS = 20_000  # fields per payload
MAX_TREE_DEPTH = 64  # nesting inside one JSON / XML / msgpack / CBOR / protobuf document
MAX_NEST = 8  # formats inside formats: gzip in a multipart part in a msgpack bytes value
MAX_OUTPUT = 4 * 1024 * 1024  # bytes one decompression may produce
MAX_RATIO = 100  # output:input of a decompression, checked once output passes RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024
# Work per message, in units of one byte read or produced. It stands in for a time and
# memory budget: the clock is not read in the core (STYLE.md 1), and counted work gives the
# same report on every machine, so ``kidaudit analyze`` stays reproducible. Every reader,
# tree walk and decoding layer of one message draws on the same budget (``message_budget``).
MAX_WORK = 32 * 1024 * 1024
# What a node of a document tree costs beyond its bytes: a walk over a structure that
# shares or repeats itself (CBOR value sharing, empty containers, nulls) produces nothing
# but still takes time, so visiting a node is charged like reading this many bytes.
NODE_COST = 32
LAYER_COST = 256  # one decoding layer peeled off a value (decode.py)
# A key longer than this is shortened in paths (``segment``): every leaf under it repeats
# its path, so a 1 MB key over 1,500 leaves would otherwise hold 1.5 GB of paths.
MAX_SEGMENT = 256
# A whole path longer than this (a long name the HTTP reader took as it came, segments piled
# up by nesting) is shortened the same way (``bounded``), keeping its start and its end
# (the key a field sits under), with room for the layers decoded below it.
MAX_PATH = 1024
_CHUNK = 64 * 1024  # decompression output per step, so a bomb is stopped early
_BROTLI_STEP = 4  # brotli input bytes per step: brotli 1.1 has no output limit of its own

OPAQUE = "opaque"  # the location of a field that records a limit, not a value
MEDIA = "media"  # the location of a field whose value is a sniffed MIME type


class Limit(Exception):
    """A limit stopped reading at ``path``; the reason is the message."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


@dataclass
class Budget:
    """Work left for one message: bytes read and produced, nodes visited, layers peeled.
    Plain integer arithmetic, so charging it costs nothing next to the work it counts."""

    work: int = MAX_WORK

    def spend(self, n: int, path: str) -> None:
        """Charge ``n`` units; ``Limit`` (recorded as opaque at ``path``) once none are left."""
        self.work -= n
        if self.work < 0:
            raise Limit(path, f"work budget used up ({MAX_WORK} units a message, one part "
                        "at most half of what is left; bytes read and produced, nodes "
                        "visited, layers peeled)")

    @property
    def used_up(self) -> bool:
        """Nothing is left: later readers of the same message stop at once."""
        return self.work < 0

    @contextmanager
    def share(self) -> Iterator[Budget]:
        """A budget for one part of the message (a payload, a multipart part, a value read
        as a format of its own): half of what is left, so a bomb in one part spends its
        share and stops, and the parts after it are still read with the rest. What the
        part spent is charged here, so the message's total stays within its budget."""
        given = max(self.work, 0) // 2
        part = Budget(given)
        try:
            yield part
        finally:  # a charge past the share was refused, not done: the share is the most
            self.work -= given - max(part.work, 0)


_MESSAGE: ContextVar[Budget | None] = ContextVar("kidaudit_message_budget", default=None)


@contextmanager
def message_budget() -> Iterator[Budget]:
    """One budget for everything read out of one message (extraction and decoding), so
    a message's parts and layers cannot each spend a budget of their own. Readers called
    outside it get a fresh budget per call."""
    budget = Budget()
    token = _MESSAGE.set(budget)
    try:
        yield budget
    finally:
        _MESSAGE.reset(token)


def current_budget() -> Budget:
    """The budget of the message being read, or a fresh one outside ``message_budget``."""
    budget = _MESSAGE.get()
    return budget if budget is not None else Budget()


def segment(key: str) -> str:
    """``key`` as one path segment: a key longer than ``MAX_SEGMENT`` keeps its start,
    its length and a CRC-32 of the whole (two long keys stay two paths), because every
    field below it repeats its path and memory must not grow with the key times the
    leaves."""
    if len(key) <= MAX_SEGMENT:
        return key
    return _shortened(key)


def _shortened(key: str) -> str:
    digest = zlib.crc32(key.encode("utf-8", errors="surrogatepass"))
    return f"{key[:MAX_SEGMENT // 2]}…[{len(key)} characters, crc32 {digest:08x}]"


def bounded(f: Field) -> Field:
    """``f`` with a path of at most ``MAX_PATH`` characters: a longer one keeps its first
    and last few hundred characters, its length and a CRC-32 of the whole, so fields stay
    apart and their key readable, and memory no longer grows with the path times the
    fields (the detector's readings and key tables remember paths)."""
    path = f.path
    if len(path) <= MAX_PATH:
        return f
    digest = zlib.crc32(path.encode("utf-8", errors="surrogatepass"))
    short = (f"{path[:MAX_PATH // 4]}…[{len(path)} characters, crc32 {digest:08x}]…"
             f"{path[-MAX_PATH // 8:]}")
    return Field(f.location, short, f.value, f.encoding)


# --- compression -------------------------------------------------------------------------

def sniff_compression(data: bytes) -> str | None:
    """The compression layer announced by ``data``'s magic bytes (RFC 1952, RFC 1950,
    RFC 8878). Brotli and raw deflate have no magic; ``decompress`` tries them on request."""
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7 \
            and (data[0] << 8 | data[1]) % 31 == 0:
        return "zlib"
    return None


def decompress(data: bytes, layer: str, budget: Budget | None = None,
               path: str = "") -> bytes | None:
    """``data`` with one compression layer removed; None when it is not that format.

    Raises ``Limit`` when the output passes ``MAX_OUTPUT``, the ratio passes ``MAX_RATIO``
    (a decompression bomb) or the budget runs out. A stream cut short gives what it held.
    """
    return decompress_partial(data, layer, budget, path)[0]


def decompress_partial(data: bytes, layer: str, budget: Budget | None = None,
                       path: str = "") -> tuple[bytes | None, bool]:
    """Like ``decompress``, and whether the stream was whole (False: cut short or corrupt
    after some output, which is still returned: captures lose a trailer more than data)."""
    budget = budget if budget is not None else Budget()
    reader = _DECOMPRESSORS.get(layer)
    if reader is None:
        return None, True
    out = bytearray()

    def grow(chunk: bytes, consumed: int) -> None:
        out.extend(chunk)
        budget.spend(len(chunk), path)
        if len(out) > MAX_OUTPUT:
            raise Limit(path, f"{layer} output over {MAX_OUTPUT} bytes")
        if len(out) > RATIO_FLOOR and len(out) > MAX_RATIO * max(consumed, 1):
            raise Limit(path, f"{layer} ratio over {MAX_RATIO}:1 (decompression bomb)")

    try:
        whole = reader(data, grow)
    except (zlib.error, brotli.error, zstandard.ZstdError):
        whole = False
    return (bytes(out) if out else None), whole


_Grow = Callable[[bytes, int], None]


def _zlib_stream(wbits: int) -> Callable[[bytes, _Grow], bool]:
    def run(data: bytes, grow: _Grow) -> bool:
        d = zlib.decompressobj(wbits)
        buf = data
        while True:
            chunk = d.decompress(buf, _CHUNK)
            buf = d.unconsumed_tail
            grow(chunk, len(data) - len(buf))
            if d.eof:
                return True
            if not chunk:
                return False
    return run


def _brotli_stream(data: bytes, grow: _Grow) -> bool:
    d = brotli.Decompressor()
    for i in range(0, len(data), _BROTLI_STEP):
        grow(d.process(data[i:i + _BROTLI_STEP]), i + _BROTLI_STEP)
        if d.is_finished():
            return True
    return False


def _zstd_stream(data: bytes, grow: _Grow) -> bool:
    dctx = zstandard.ZstdDecompressor(max_window_size=8 * 1024 * 1024)
    with dctx.stream_reader(data, read_across_frames=True) as reader:
        while chunk := reader.read(_CHUNK):
            grow(chunk, len(data))
    return True


_DECOMPRESSORS: dict[str, Callable[[bytes, _Grow], bool]] = {
    "gzip": _zlib_stream(16 + zlib.MAX_WBITS),
    "zlib": _zlib_stream(zlib.MAX_WBITS),
    "deflate": _zlib_stream(-zlib.MAX_WBITS),
    "brotli": _brotli_stream,
    "zstd": _zstd_stream,
}

# HTTP content codings (RFC 9110 8.4.1; "deflate" is the zlib format, sent raw by some
# servers and devices) to the layers that undo them, tried in order.
CONTENT_CODINGS: dict[str, tuple[str, ...]] = {
    "gzip": ("gzip",), "x-gzip": ("gzip",), "deflate": ("zlib", "deflate"),
    "br": ("brotli",), "zstd": ("zstd",),
}


# --- media -------------------------------------------------------------------------------

# (offset, magic, MIME type), first match wins: file signatures as data (STYLE.md 5).
# AMR: RFC 4867 section 5; Ogg: RFC 3533; RIFF/WAVE and WebP share "RIFF"; HEIC/AVIF and
# M4A are ISO-BMFF "ftyp" boxes told apart by their major brand.
MEDIA_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"#!AMR-WB\n", "audio/amr-wb"),
    (0, b"#!AMR\n", "audio/amr"),
    (0, b"#!SILK_V3", "audio/silk"),
    (1, b"#!SILK_V3", "audio/silk"),  # WeChat-style voice notes prefix one byte
    (0, b"OggS", "audio/ogg"),
    (8, b"WAVE", "audio/wav"),
    (8, b"WEBP", "image/webp"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (4, b"ftypheic", "image/heic"),
    (4, b"ftypheix", "image/heic"),
    (4, b"ftyphevc", "image/heic"),
    (4, b"ftypheim", "image/heic"),
    (4, b"ftypheis", "image/heic"),
    (4, b"ftypmif1", "image/heic"),
    (4, b"ftypmsf1", "image/heic"),
    (4, b"ftypavif", "image/avif"),
    (4, b"ftypM4A ", "audio/mp4"),
)


def sniff_media(data: bytes) -> str | None:
    """The audio or image MIME type ``data`` starts with, from its magic bytes."""
    for offset, magic, mime in MEDIA_SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            if mime == "audio/ogg" and b"OpusHead" in data[:80]:
                return "audio/opus"
            if magic == b"WAVE" or magic == b"WEBP":
                return mime if data[:4] == b"RIFF" else None
            return mime
    if len(data) >= 4 and data[0] == 0xFF:
        if data[1] & 0xF6 == 0xF0:  # ADTS: 12-bit sync, layer 00 (ISO 14496-3 1.A.2)
            return "audio/aac"
        if data[1] & 0xE0 == 0xE0 and data[1] & 0x06 and data[2] & 0xF0 != 0xF0:
            return "audio/mpeg"  # MPEG audio frame sync, layer I-III, valid bitrate
    return None


# --- text --------------------------------------------------------------------------------

_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"
TEXT_BYTES = bytes(b for b in range(256) if b not in _CONTROL)
_STRINGS = re.compile(rb"[\x20-\x7e]{4,}")
_FORM = re.compile(r"[\w.\-\[\]%*]+=[^&\s]*(?:&[\w.\-\[\]%*]+=[^&\s]*)*")
_BOUNDARY = re.compile(rb"--([0-9A-Za-z'()+_,\-./:=?]{1,70})\r?\n")


def as_text(data: bytes) -> str | None:
    """``data`` as UTF-8 text when it is text: valid UTF-8, no control bytes but tab/CR/LF."""
    if data.translate(None, TEXT_BYTES):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _loose_text(data: bytes) -> str | None:
    """Text in UTF-8 or GB18030 (what Chinese devices often send) with a few bad bytes."""
    if len(data.translate(None, TEXT_BYTES)) > len(data) // 20:
        return None
    for codec in ("utf-8", "gb18030"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    text = data.decode("utf-8", errors="replace")
    return text if text.count("\ufffd") <= len(text) // 20 else None


def form_pairs(text: str) -> Iterator[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` pairs, lazily; blank values and pairs without
    ``=`` are dropped, as ``parse_qsl`` does (WHATWG URL, application/x-www-form-urlencoded)."""
    for m in re.finditer(r"[^&]+", text):
        name, eq, value = m.group().partition("=")
        if eq and value:
            yield unquote_plus(name), unquote_plus(value)


# --- tree documents (JSON, msgpack, CBOR) --------------------------------------------------

def parse_json(text: str) -> object:
    """JSON with numbers kept as the text that was sent (``39.98312`` stays ``"39.98312"``):
    the precision a device transmitted is itself evidence (location precise vs coarse)."""
    try:
        return json.loads(text, parse_float=str, parse_int=str)
    except RecursionError as e:
        raise NestedTooDeep("JSON nested too deep to parse") from e


class NestedTooDeep(ValueError):
    """A document nested past what a parser recurses into: a limit, not a format error."""


def _too_deep(path: str, encoding: tuple[str, ...]) -> Field:
    return Field(OPAQUE, path, f"nested more than {MAX_TREE_DEPTH} deep, the rest not read",
                 encoding)


def walk_json(doc: object, prefix: str, location: str, encoding: tuple[str, ...],
              depth: int = 0, budget: Budget | None = None) -> Iterator[Field]:
    """Leaves of a JSON document as fields with dotted paths (``body.json.dev.imei``).
    Each node visited and each leaf's path are charged to ``budget`` (the message's)."""
    yield from _walk_json(doc, prefix, location, encoding, depth,
                          budget if budget is not None else current_budget())


def _walk_json(doc: object, prefix: str, location: str, encoding: tuple[str, ...],
               depth: int, budget: Budget) -> Iterator[Field]:
    budget.work -= NODE_COST  # inline: this runs once per node of every JSON document
    if budget.work < 0:
        budget.spend(0, prefix)
    if depth > MAX_TREE_DEPTH:
        yield _too_deep(prefix, encoding)
        return
    if isinstance(doc, dict):
        for key, value in doc.items():
            seg = key if len(key) <= MAX_SEGMENT else _shortened(key)
            yield from _walk_json(value, f"{prefix}.{seg}", location, encoding, depth + 1,
                                  budget)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _walk_json(value, f"{prefix}.{i}", location, encoding, depth + 1,
                                  budget)
    elif doc is not None and not isinstance(doc, bool):
        budget.spend(len(prefix), prefix)
        yield Field(location, prefix, str(doc), encoding)


@dataclass
class _Ctx:
    location: str
    budget: Budget
    strict: bool = False  # a value decoded from base64: binary formats need some text in them
    text_leaves: int = 0  # strings of 4+ characters seen in binary documents


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


def _walk_tree(doc: object, prefix: str, ctx: _Ctx, encoding: tuple[str, ...], nest: int,
               depth: int = 0) -> Iterator[Field]:
    """Leaves of a decoded msgpack / CBOR document; bytes values are sniffed in turn. A
    CBOR document may share one value in many places: each place is visited and charged."""
    ctx.budget.spend(NODE_COST, prefix)
    if depth > MAX_TREE_DEPTH:
        yield _too_deep(prefix, encoding)
        return
    if doc is None or isinstance(doc, bool):
        return
    if isinstance(doc, cbor2.CBORTag):
        doc = doc.value
    elif isinstance(doc, msgpack.ExtType):
        doc = doc.data
    if isinstance(doc, Mapping):  # CBOR gives a frozendict inside tags
        for key, value in doc.items():
            yield from _walk_tree(value, f"{prefix}.{_key(key)}", ctx, encoding, nest,
                                  depth + 1)
    elif isinstance(doc, list | tuple | set | frozenset):
        for i, value in enumerate(doc):
            yield from _walk_tree(value, f"{prefix}.{i}", ctx, encoding, nest, depth + 1)
    elif isinstance(doc, bytes | bytearray | memoryview):
        yield from _read_blob(bytes(doc), prefix, ctx, encoding, nest + 1)
    else:
        text = _scalar(doc)
        if text is not None:
            ctx.budget.spend(len(prefix) + len(text), prefix)
            ctx.text_leaves += isinstance(doc, str) and len(text) >= 4
            yield Field(ctx.location, prefix, text, encoding)


def _guarded(fields: Iterator[Field], path: str, encoding: tuple[str, ...], ctx: _Ctx
             ) -> Iterator[Field]:
    """A nested reader (not started yet) whose limit marks only its own part opaque, not
    the parts after it: it reads with a share of the budget (``Budget.share``)."""
    outer = ctx.budget
    with outer.share() as part:
        ctx.budget = part
        try:
            yield from fields
        except Limit as e:
            yield Field(OPAQUE, e.path, e.reason, encoding)
        except RecursionError:
            yield Field(OPAQUE, path, "nested too deep", encoding)
        finally:
            ctx.budget = outer


def _read_blob(data: bytes, path: str, ctx: _Ctx, encoding: tuple[str, ...],
               nest: int) -> Iterator[Field]:
    """A bytes value inside a binary document: text, media, or a format of its own."""
    text = as_text(data)
    if text is not None:
        if text:
            ctx.budget.spend(len(path) + len(text), path)
            yield Field(ctx.location, path, text, encoding)
        return
    if nest <= MAX_NEST:
        yield from _guarded(_read(data, path, ctx, encoding, "", nest, text_path=path), path,
                            encoding, ctx)


def _msgpack(data: bytes, prefix: str, ctx: _Ctx, encoding: tuple[str, ...], nest: int
             ) -> Iterator[Field] | None:
    ctx.budget.spend(len(data), prefix)
    try:
        doc = msgpack.unpackb(data, raw=False, strict_map_key=False,
                              unicode_errors="replace", timestamp=3)
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException):
        return None
    return _walk_tree(doc, f"{prefix}.msgpack", ctx, encoding, nest)


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


def _cbor(data: bytes, prefix: str, ctx: _Ctx, encoding: tuple[str, ...], nest: int
          ) -> Iterator[Field] | None:
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
    return _walk_tree(doc, f"{prefix}.cbor", ctx, encoding, nest)


# --- protobuf (schema-less wire format, protobuf.dev/programming-guides/encoding) --------

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


def _pb_fields(entries: list[tuple[int, int, int | bytes]], prefix: str, ctx: _Ctx,
               encoding: tuple[str, ...], nest: int, depth: int = 0) -> Iterator[Field]:
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


def _pb_bytes(value: bytes, path: str, ctx: _Ctx, encoding: tuple[str, ...], nest: int,
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
        yield _too_deep(path, encoding)
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
        yield from _guarded(_read(value, path, ctx, encoding, "", nest + 1, text_path=path),
                            path, encoding, ctx)


def _protobuf(data: bytes, prefix: str, ctx: _Ctx, encoding: tuple[str, ...], nest: int
              ) -> Iterator[Field] | None:
    ctx.budget.spend(len(data), prefix)
    entries = pb_parse(data)
    if not entries:
        return None
    return _pb_fields(entries, f"{prefix}.pb", ctx, encoding, nest)


def _grpc(data: bytes, prefix: str, ctx: _Ctx, encoding: tuple[str, ...], nest: int
          ) -> Iterator[Field] | None:
    """gRPC length-prefixed messages (grpc/doc/PROTOCOL-HTTP2.md): flag, 4-byte length."""
    frames: list[tuple[bool, bytes]] = []
    pos = 0
    while pos + 5 <= len(data):
        size = int.from_bytes(data[pos + 1:pos + 5], "big")
        frames.append((bool(data[pos] & 1), data[pos + 5:pos + 5 + size]))
        pos += 5 + size
    if pos != len(data) or not frames:
        return _protobuf(data, prefix, ctx, encoding, nest)

    def walk() -> Iterator[Field]:
        for compressed, frame in frames:
            if compressed:
                yield from _guarded(_read(frame, prefix, ctx, encoding,
                                          "application/x-protobuf", nest + 1), prefix, encoding,
                                    ctx)
            else:
                it = _protobuf(frame, prefix, ctx, encoding, nest)
                if it is not None:
                    yield from it
    return walk()


# --- XML -----------------------------------------------------------------------------------

def _xml(data: bytes, prefix: str, ctx: _Ctx, encoding: tuple[str, ...], nest: int
         ) -> Iterator[Field] | None:
    """Elements' text and attributes; paths are local names (namespaces dropped), repeated
    siblings share a path. Entity declarations are never expanded (billion laughs)."""
    if re.search(rb"<!ENTITY", data, re.IGNORECASE):
        raise Limit(prefix, "XML with entity declarations, not expanded")
    ctx.budget.spend(len(data), prefix)
    parser = ElementTree.XMLParser()
    try:
        parser.feed(data)
        root = parser.close()
    except (ElementTree.ParseError, ValueError, LookupError):
        return None

    def local(tag: object) -> str:
        return segment(tag.rpartition("}")[2]) if isinstance(tag, str) else "?"

    def walk() -> Iterator[Field]:
        stack = [(root, f"{prefix}.xml.{local(root.tag)}", 0)]
        while stack:
            elem, path, depth = stack.pop()
            ctx.budget.spend(NODE_COST + len(path), path)
            for name, value in elem.attrib.items():
                ctx.budget.spend(NODE_COST + len(path), path)
                yield Field(ctx.location, f"{path}.@{local(name)}", value, encoding)
            text = (elem.text or "").strip()
            if text:
                yield Field(ctx.location, path, text, encoding)
            if depth < MAX_TREE_DEPTH:
                stack.extend((child, f"{path}.{local(child.tag)}", depth + 1)
                             for child in reversed(elem))
            elif len(elem):
                yield _too_deep(path, encoding)
    return walk()


# --- multipart (RFC 2046 5.1, RFC 7578) ----------------------------------------------------

def _ctype_params(content_type: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return params


def _disposition(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for m in re.finditer(r';\s*([\w*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', value):
        name, raw = m.group(1).lower(), m.group(2).strip()
        if raw.startswith('"'):
            raw = raw[1:-1].replace('\\"', '"')
        if name.endswith("*"):  # RFC 5987: charset'lang'percent-encoded
            name, raw = name[:-1], unquote(raw.split("'", 2)[-1], errors="replace")
        params.setdefault(name, raw)
    return params


def _multipart(data: bytes, prefix: str, ctx: _Ctx, encoding: tuple[str, ...], nest: int,
               boundary: str) -> Iterator[Field] | None:
    delimiter = b"--" + boundary.encode("latin-1", errors="replace")
    pieces = data.split(delimiter)
    if len(pieces) < 2:
        return None

    def walk() -> Iterator[Field]:
        for i, piece in enumerate(pieces[1:]):
            if piece.startswith(b"--"):
                return
            piece = piece.partition(b"\n")[2]  # the rest of the delimiter line
            if piece[:1] == b"\n" or piece[:2] == b"\r\n":  # a part with no headers
                head, body = b"", piece.removeprefix(b"\r").removeprefix(b"\n")
            else:
                head, sep, body = piece.partition(b"\r\n\r\n")
                if not sep:
                    head, sep, body = piece.partition(b"\n\n")
            body = body.removesuffix(b"\r\n") if body.endswith(b"\r\n") \
                else body.removesuffix(b"\n")
            headers = {}
            for line in head.decode("utf-8", errors="replace").splitlines():
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            disp = _disposition(headers.get("content-disposition", ""))
            path = f"{prefix}.multipart.{segment(disp.get('name') or f'part{i}')}"
            ctx.budget.spend(NODE_COST + len(path) + len(head), path)
            if disp.get("filename"):
                yield Field(ctx.location, f"{path}.filename", disp["filename"], encoding)
            yield from _guarded(_read(body, path, ctx, encoding,
                                      headers.get("content-type", ""), nest + 1,
                                      text_path=path), path, encoding, ctx)
    return walk()


# --- the sniffer ---------------------------------------------------------------------------

_Reader = Callable[[bytes, str, _Ctx, tuple[str, ...], int], "Iterator[Field] | None"]

# Declared content types whose format cannot be told from the bytes alone (substring match).
BINARY_BY_CTYPE: tuple[tuple[str, _Reader], ...] = (
    ("grpc", _grpc),
    ("protobuf", _protobuf),
    ("proto", _protobuf),
    ("msgpack", _msgpack),
    ("cbor", _cbor),
)

_MSGPACK_CONTAINERS = frozenset(range(0x80, 0xA0)) | {0xDC, 0xDD, 0xDE, 0xDF}
_CBOR_CONTAINERS = frozenset(range(0x80, 0xC0)) | {0xD9}


def _binary_sniffers(data: bytes) -> list[_Reader]:
    """Binary formats worth trying on undeclared bytes, by the first byte: a protobuf tag
    for fields 1-15 is below 0x80; msgpack and CBOR documents worth reading are containers."""
    first = data[0]
    out: list[_Reader] = []
    if first < 0x80:
        out.append(_protobuf)
    if first in _MSGPACK_CONTAINERS:
        out.append(_msgpack)
    if first in _CBOR_CONTAINERS:
        out.append(_cbor)
    if first >= 0x80:
        out.append(_protobuf)
    return out


def _read(data: bytes, prefix: str, ctx: _Ctx, encoding: tuple[str, ...], content_type: str,
          nest: int, text_path: str | None = None) -> Iterator[Field]:
    if not data:
        return
    if nest > MAX_NEST:
        raise Limit(prefix, f"formats nested more than {MAX_NEST} deep")
    layer = sniff_compression(data)
    if layer is not None:
        out, whole = decompress_partial(data, layer, ctx.budget, prefix)
        if out is not None:
            if not whole:
                yield Field(OPAQUE, prefix, f"{layer} stream cut short or corrupt after "
                            f"{len(out)} bytes; only those read", encoding)
            yield from _read(out, prefix, ctx, (*encoding, layer), content_type, nest + 1,
                             text_path)
            return
    mime = sniff_media(data)
    if mime is not None:
        yield Field(MEDIA, prefix, mime, encoding)
        return
    ctype = content_type.split(";")[0].strip().lower()
    for marker, reader in BINARY_BY_CTYPE:
        if marker in ctype:
            found = reader(data, prefix, ctx, encoding, nest)
            if found is not None:
                yield from found
                return
    boundary = _boundary(data, content_type)
    if boundary:
        found = _multipart(data, prefix, ctx, encoding, nest, boundary)
        if found is not None:
            yield from found
            return
    text = as_text(data)
    if text is not None:
        yield from _read_text(text, data, prefix, ctx, encoding, content_type, nest, text_path)
        return
    for reader in _binary_sniffers(data):
        found = reader(data, prefix, ctx, encoding, nest)
        if found is None:
            continue
        if not ctx.strict:
            yield from found
            return
        seen = ctx.text_leaves
        fields = list(found)
        if ctx.text_leaves > seen or any(f.location == MEDIA for f in fields):
            yield from fields
            return
    if ctx.strict:
        return
    for layer in ("deflate", "brotli"):  # no magic: kept only when the result is readable
        out = decompress(data, layer, ctx.budget, prefix)
        if out is not None and (as_text(out) is not None or sniff_media(out) is not None):
            yield from _read(out, prefix, ctx, (*encoding, layer), content_type, nest + 1,
                             text_path)
            return
    loose = _loose_text(data)
    if loose is not None:
        yield Field(ctx.location, text_path or f"{prefix}.text", loose, encoding)
        return
    strings = b"\n".join(_STRINGS.findall(data)).decode("ascii")
    if strings:
        yield Field(ctx.location, f"{prefix}.strings", strings, encoding)
    yield Field(OPAQUE, prefix, f"binary data of {len(data)} bytes in no known format",
                encoding)


_JSON_SEQ = json.JSONDecoder(parse_float=str, parse_int=str)


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


def _boundary(data: bytes, content_type: str) -> str | None:
    """The declared multipart boundary, or one sniffed from a first line ``--boundary``
    followed by a part header (devices send multipart as octet-stream)."""
    if content_type.split(";")[0].strip().lower().startswith("multipart/"):
        declared = _ctype_params(content_type).get("boundary")
        if declared:
            return declared
    m = _BOUNDARY.match(data[:80].lstrip())
    if m is not None and b"content-disposition" in data[:2048].lower():
        return m.group(1).decode("ascii")
    return None


def _read_text(text: str, data: bytes, prefix: str, ctx: _Ctx, encoding: tuple[str, ...],
               content_type: str, nest: int, text_path: str | None) -> Iterator[Field]:
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        yield from _form(text, prefix, ctx, encoding)
        return
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
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
                    return
            elif _cut_short(e, text):
                yield Field(OPAQUE, f"{prefix}.json", f"JSON cut short after {len(text)} "
                            "characters; read as text", encoding)
        else:
            yield from walk_json(doc, f"{prefix}.json", ctx.location, encoding,
                                 budget=ctx.budget)
            return
    if stripped[:1] == "<":
        found = _xml(data, prefix, ctx, encoding, nest)
        if found is not None:
            yield from found
            return
    if "=" in text and _FORM.fullmatch(stripped.rstrip()):
        yield from _form(stripped.rstrip(), prefix, ctx, encoding)
        return
    if ctx.strict:
        return
    yield Field(ctx.location, text_path or f"{prefix}.text", text, encoding)


def _form(text: str, prefix: str, ctx: _Ctx, encoding: tuple[str, ...]) -> Iterator[Field]:
    """Form pairs as fields, each charged as a node with its path (a million-key form
    stops at the budget, not at the end of the body)."""
    for name, value in form_pairs(text):
        path = f"{prefix}.form.{segment(name)}"
        ctx.budget.spend(NODE_COST + len(path), path)
        yield Field(ctx.location, path, value, encoding)


def fields_from_bytes(data: bytes, prefix: str, location: str,
                      encoding: tuple[str, ...] = (), *, content_type: str = "",
                      content_encoding: str = "", strict: bool = False,
                      budget: Budget | None = None) -> list[Field]:
    """Every field in a payload of any format, sniffed: ``prefix.json.a``, ``prefix.form.a``,
    ``prefix.xml.root.a``, ``prefix.multipart.name``, ``prefix.pb.1.2``, ``prefix.msgpack.a``,
    ``prefix.cbor.a``, ``prefix.text``; compression layers go into ``encoding``, never into
    the path. ``content_encoding`` (an HTTP header value) names codings to undo first, so
    a body passed as sent (``raw_content``) is decompressed here, within the limits; one
    that was already decoded simply does not decompress again. ``strict`` (for bytes
    decoded out of a value) keeps only formats that were recognised and, for binary ones,
    held some text. ``budget`` is the work the message has left (by default that of the
    ``message_budget`` around the call, or a fresh one), of which the payload may spend
    half (``Budget.share``): what runs it out is noted opaque where it stopped, and the
    message's other parts and layers are still read. Never raises on hostile input."""
    message = budget if budget is not None else current_budget()
    out: list[Field] = []
    with message.share() as part:  # the rest is left for the message's other parts
        ctx = _Ctx(location, part, strict)
        try:
            data, encoding = _undo_codings(data, content_encoding, ctx, prefix, encoding, out)
            for f in _read(data[:MAX_BYTES], prefix, ctx, encoding, content_type, 0):
                if len(out) >= MAX_FIELDS:
                    out.append(Field(OPAQUE, prefix, f"more than {MAX_FIELDS} fields, the "
                                     "rest not read", encoding))
                    break
                out.append(f)
        except Limit as e:
            out.append(Field(OPAQUE, e.path, e.reason, encoding))
        except RecursionError:
            out.append(Field(OPAQUE, prefix, "nested too deep", encoding))
    if len(data) > MAX_BYTES:
        out.append(Field(OPAQUE, prefix, f"{len(data)} bytes, only the first {MAX_BYTES} "
                         "read", encoding))
    return out


def _undo_codings(data: bytes, content_encoding: str, ctx: _Ctx, prefix: str,
                  encoding: tuple[str, ...], notes: list[Field]
                  ) -> tuple[bytes, tuple[str, ...]]:
    """Declared codings, last applied first (RFC 9110 8.4: listed in the order applied)."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings[:4]):
        for layer in CONTENT_CODINGS.get(coding, ()):
            out, whole = decompress_partial(data, layer, ctx.budget, prefix)
            if out is not None:
                if not whole:
                    notes.append(Field(OPAQUE, prefix, f"{layer} stream cut short or "
                                       f"corrupt after {len(out)} bytes; only those read",
                                       encoding))
                data, encoding = out, (*encoding, layer)
                break
        else:
            return data, encoding
    return data, encoding


def basic_credentials(token: str) -> tuple[str, str] | None:
    """``user:password`` out of an HTTP Basic token (RFC 7617 2)."""
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = raw.decode("utf-8", errors="replace").partition(":")
    return (user, password) if sep else None
