"""The sniffer: which format a payload is in, and the one entry point that reads it.

HTTP bodies, WebSocket messages and raw TCP payloads all go through ``fields_from_bytes``.
The format is sniffed in stages, each a table below: compression and media by their magic
bytes, then the declared content type (for binary formats the bytes cannot name), then a
multipart boundary, then text formats by their first character or shape, then binary
formats by their first byte. Each format reads in a module of its own (``json_body``,
``xml_body``, ``form``, ``multipart``, ``protobuf``, ``msgpack_body``, ``cbor_body``);
a part that is a format of its own comes back here through ``ReadContext.read``.

Everything is bounded by ``auditor.limits``: a limit that stops reading becomes a field
with location ``opaque`` (path: where, value: why), and one budget per message is charged
for the work every reader does.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from itertools import islice

from auditor.extract.cbor_body import CONTAINERS as CBOR_CONTAINERS
from auditor.extract.cbor_body import read_cbor
from auditor.extract.compression import (
    CONTENT_CODINGS,
    decompress,
    decompress_partial,
    sniff_compression,
)
from auditor.extract.form import CONTENT_TYPE as FORM_TYPE
from auditor.extract.form import looks_like_form, read_form, read_shaped_form
from auditor.extract.json_body import looks_like_json, read_json
from auditor.extract.media import MEDIA, sniff_media
from auditor.extract.msgpack_body import CONTAINERS as MSGPACK_CONTAINERS
from auditor.extract.msgpack_body import read_msgpack
from auditor.extract.multipart import boundary, read_multipart
from auditor.extract.protobuf import read_grpc, read_protobuf
from auditor.extract.reading import Encoding, ReadContext, Reader, TextReader
from auditor.extract.text import STRINGS, as_text, loose_text
from auditor.extract.xml_body import looks_like_xml, read_xml_text
from auditor.limits import MAX_BYTES, MAX_FIELDS, MAX_NEST, OPAQUE, Budget, Limit, current_budget
from auditor.model import Field

# Declared content types whose format cannot be told from the bytes alone (a substring of
# the type, tried in order; a reader that finds its format absent lets the next one try).
# "proto" also matches what "protobuf" does: a declared protobuf body that does not parse
# is tried, and charged, twice, as it always was (the budget's figures stay the same).
BY_CONTENT_TYPE: tuple[tuple[str, Reader], ...] = (
    ("grpc", read_grpc),
    ("protobuf", read_protobuf),
    ("proto", read_protobuf),
    ("msgpack", read_msgpack),
    ("cbor", read_cbor),
)

# Undeclared binary data: the formats worth trying by its first byte, in order. msgpack
# and CBOR documents worth reading are containers; a protobuf tag for fields 1-15 is below
# 0x80, so protobuf comes first there (no container starts below 0x80) and last above.
BY_FIRST_BYTE: tuple[tuple[frozenset[int], Reader], ...] = (
    (MSGPACK_CONTAINERS, read_msgpack),
    (CBOR_CONTAINERS, read_cbor),
    (frozenset(range(256)), read_protobuf),
)
_BINARY: tuple[tuple[Reader, ...], ...] = tuple(
    tuple(reader for first_bytes, reader in BY_FIRST_BYTE if first in first_bytes)
    for first in range(256))

# Text: (does the stripped text look like it, reader), tried in order. A reader returns
# False when the text was not its format after all, and the next one tries; text no
# format takes is kept whole as ``prefix.text``.
TEXT_FORMATS: tuple[tuple[Callable[[str], bool], TextReader], ...] = (
    (looks_like_json, read_json),
    (looks_like_xml, read_xml_text),
    (looks_like_form, read_shaped_form),
)


def read(data: bytes, prefix: str, ctx: ReadContext, encoding: Encoding, content_type: str,
         nest: int, text_path: str | None = None) -> Iterator[Field]:
    """Every field of ``data``, its format sniffed stage by stage (the tables above)."""
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
            yield from read(out, prefix, ctx, (*encoding, layer), content_type, nest + 1,
                            text_path)
            return
    mime = sniff_media(data)
    if mime is not None:
        yield Field(MEDIA, prefix, mime, encoding)
        return
    ctype = content_type.split(";")[0].strip().lower()
    for marker, reader in BY_CONTENT_TYPE:
        if marker in ctype:
            found = reader(data, prefix, ctx, encoding, nest)
            if found is not None:
                yield from found
                return
    parts = boundary(data, content_type)
    if parts:
        found = read_multipart(data, prefix, ctx, encoding, nest, parts)
        if found is not None:
            yield from found
            return
    text = as_text(data)
    if text is not None:
        yield from _read_text(text, data, prefix, ctx, encoding, ctype, nest, text_path)
        return
    for reader in _BINARY[data[0]]:
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
            yield from read(out, prefix, ctx, (*encoding, layer), content_type, nest + 1,
                            text_path)
            return
    loose = loose_text(data)
    if loose is not None:
        yield Field(ctx.location, text_path or f"{prefix}.text", loose, encoding)
        return
    strings = b"\n".join(STRINGS.findall(data)).decode("ascii")
    if strings:
        yield Field(ctx.location, f"{prefix}.strings", strings, encoding)
    yield Field(OPAQUE, prefix, f"binary data of {len(data)} bytes in no known format",
                encoding)


def _read_text(text: str, data: bytes, prefix: str, ctx: ReadContext, encoding: Encoding,
               ctype: str, nest: int, text_path: str | None) -> Generator[Field, None, None]:
    if ctype == FORM_TYPE:
        yield from read_form(text, prefix, ctx, encoding)
        return
    stripped = text.lstrip()
    for looks_like, reader in TEXT_FORMATS:
        if looks_like(stripped) and (yield from reader(text, data, prefix, ctx, encoding,
                                                       nest)):
            return
    if ctx.strict:
        return
    yield Field(ctx.location, text_path or f"{prefix}.text", text, encoding)


def fields_from_bytes(data: bytes, prefix: str, location: str,
                      encoding: Encoding = (), *, content_type: str = "",
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
        ctx = ReadContext(location, part, read, strict)
        try:
            data, encoding = _undo_codings(data, content_encoding, ctx, prefix, encoding, out)
            # The fields up to the limit and the one that passes it, taken as they are
            # read (a limit raised while reading keeps those before it), and no further:
            # what taking them one at a time and stopping at the one past it did.
            before = len(out)
            room = max(MAX_FIELDS + 1 - before, 1)
            out.extend(islice(read(data[:MAX_BYTES], prefix, ctx, encoding, content_type, 0),
                              room))
            if len(out) - before == room:  # the one past the limit: noted instead
                out[-1] = Field(OPAQUE, prefix, f"more than {MAX_FIELDS} fields, the rest "
                                "not read", encoding)
        except Limit as e:
            out.append(Field(OPAQUE, e.path, e.reason, encoding))
        except RecursionError:
            out.append(Field(OPAQUE, prefix, "nested too deep", encoding))
    if len(data) > MAX_BYTES:
        out.append(Field(OPAQUE, prefix, f"{len(data)} bytes, only the first {MAX_BYTES} "
                         "read", encoding))
    return out


def _undo_codings(data: bytes, content_encoding: str, ctx: ReadContext, prefix: str,
                  encoding: Encoding, notes: list[Field]) -> tuple[bytes, Encoding]:
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
