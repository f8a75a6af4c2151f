"""Fields of an HTTP request: URL path and query, headers, cookies, form and JSON bodies.

The body is the one mitmproxy already decoded (``Content-Encoding`` undone); deeper layers
(base64, JSON inside strings, ...) are peeled afterwards by ``auditor.decode``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

from auditor.model import Field, Transmission

MAX_BODY = 4 * 1024 * 1024  # bytes of a body we look into; the rest is counted, not read
MAX_FIELDS = 20_000  # per message: a million-key form is cut here, not walked
MAX_JSON_DEPTH = 64

# Headers that only describe the transport: never personal data, so not worth a field.
_SKIP_HEADERS = frozenset({
    "host", "content-length", "content-type", "accept", "accept-encoding", "connection",
    "accept-language", "cache-control", "pragma", "te", "upgrade-insecure-requests",
    "transfer-encoding", "proxy-connection", "cookie",
})


def extract_http(tx: Transmission) -> list[Field]:
    """Every field of an HTTP request, in a stable order (URL, query, headers, cookies, body)."""
    fields: list[Field] = []
    for f in _iter_fields(tx):
        fields.append(f)
        if len(fields) >= MAX_FIELDS:
            break
    return fields


def _iter_fields(tx: Transmission) -> Iterator[Field]:
    parts = urlsplit(tx.path if tx.path.startswith("/") else tx.url)
    for i, seg in enumerate(s for s in parts.path.split("/") if s):
        yield Field("url", f"url.path.{i}", unquote(seg))
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        yield Field("query", f"query.{name}", value)
    for name, value in tx.headers:
        lname = name.lower()
        if lname == "cookie":
            yield from _cookies(value)
        elif lname not in _SKIP_HEADERS:
            yield Field("header", f"header.{lname}", value)
    yield from _body(tx)


def _cookies(header: str) -> Iterator[Field]:
    """A request's ``Cookie`` header is plain ``name=value; ...`` pairs (RFC 6265 4.2.1), split
    by hand: ``SimpleCookie`` reads ``path`` or ``version`` as attributes and stops silently
    at the first malformed pair, losing every cookie after it."""
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        name, value = name.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if name:
            yield Field("cookie", f"cookie.{name}", value)


def _body(tx: Transmission) -> Iterator[Field]:
    body = tx.body[:MAX_BODY]
    if not body:
        return
    ctype = tx.content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8", errors="replace")
    if ctype == "application/x-www-form-urlencoded":
        for name, value in parse_qsl(text, keep_blank_values=False):
            yield Field("body", f"body.form.{name}", value)
        return
    stripped = text.lstrip()
    if "json" in ctype or stripped[:1] in ("{", "["):
        try:
            doc = parse_json(text)
        except ValueError:
            pass
        else:
            yield from walk_json(doc, "body.json", "body", ())
            return
    yield Field("body", "body.text", text)


def parse_json(text: str) -> object:
    """JSON with numbers kept as the text that was sent (``39.98312`` stays ``"39.98312"``):
    the precision a device transmitted is itself evidence (location precise vs coarse)."""
    try:
        return json.loads(text, parse_float=str, parse_int=str)
    except RecursionError as e:
        raise ValueError("JSON nested too deep") from e


def walk_json(doc: object, prefix: str, location: str, encoding: tuple[str, ...],
              depth: int = 0) -> Iterator[Field]:
    """Leaves of a JSON document as fields with dotted paths (``body.json.dev.imei``)."""
    if depth > MAX_JSON_DEPTH:
        return
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from walk_json(value, f"{prefix}.{key}", location, encoding, depth + 1)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from walk_json(value, f"{prefix}.{i}", location, encoding, depth + 1)
    elif doc is not None and not isinstance(doc, bool):
        yield Field(location, prefix, str(doc), encoding)
