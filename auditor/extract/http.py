"""Fields of an HTTP request: URL path and query, headers (with the tokens inside
User-Agent and Authorization), cookies, and the body in whatever format it came.

The body is the one mitmproxy already decoded (``Content-Encoding`` undone); a body still
compressed, and every body format, is sniffed by ``auditor.extract.bodies``. Deeper layers
inside values (base64, JSON inside strings, JWTs, ...) are peeled by ``auditor.decode``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterator
from itertools import islice
from urllib.parse import unquote, urlsplit

from auditor.extract.bodies import fields_from_bytes
from auditor.extract.form import form_pairs
from auditor.limits import MAX_FIELDS, MAX_TOKENS, OPAQUE
from auditor.model import Field, Transmission

# Headers that only describe the transport: never personal data, so not worth a field.
_SKIP_HEADERS = frozenset({
    "host", "content-length", "content-type", "accept", "accept-encoding", "connection",
    "accept-language", "cache-control", "pragma", "te", "upgrade-insecure-requests",
    "transfer-encoding", "proxy-connection", "cookie",
})

_UA_SPLIT = re.compile(r"[\s;(),\[\]]+")
_PRODUCT = re.compile(r"([A-Za-z][\w.+!-]*)/(.+)")
_PAIR = re.compile(r"([A-Za-z][\w-]{0,31})[=:]([^=].*)")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_AUTH_PARAM = re.compile(r'([\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


def extract_http(tx: Transmission) -> list[Field]:
    """Every field of an HTTP request, in a stable order (URL, query, headers, cookies,
    body). Fields with location ``opaque`` record limits; ``decode.expand`` collects them."""
    # The URL's and headers' fields, at most one past the limit (they cost no budget);
    # the body is read only when the limit was not passed before it, as when the fields
    # were taken one at a time, and its fields are added as one list.
    fields = list(islice(_head_fields(tx), MAX_FIELDS + 1))
    if len(fields) <= MAX_FIELDS and tx.body:
        coding = ", ".join(v for k, v in tx.headers if k.lower() == "content-encoding")
        fields += fields_from_bytes(tx.body, "body", "body", content_type=tx.content_type,
                                    content_encoding=coding)
    if len(fields) > MAX_FIELDS:
        del fields[MAX_FIELDS:]
        fields.append(Field(OPAQUE, "request", f"more than {MAX_FIELDS} fields, the rest "
                            "not read"))
    return fields


def _head_fields(tx: Transmission) -> Iterator[Field]:
    """The fields of the URL and the headers, in order."""
    host = _host_name(tx)
    if host:
        yield Field("url", "url.host", host)
    parts = urlsplit(tx.path if tx.path.startswith("/") else tx.url)
    for i, seg in enumerate(s for s in parts.path.split("/") if s):
        yield Field("url", f"url.path.{i}", unquote(seg))
    for name, value in form_pairs(parts.query):
        yield Field("query", f"query.{name}", value)
    for name, value in tx.headers:
        lname = name.lower()
        if lname == "cookie":
            yield from _cookies(value)
        elif lname not in _SKIP_HEADERS:
            yield Field("header", f"header.{lname}", value)
            yield from _HEADER_TOKENS.get(lname, _no_tokens)(f"header.{lname}", value)


# What an IPv4 literal is made of (ASCII digits and dots); an IPv6 literal has colons. A
# host of neither shape is a name, which ``ip_address`` would say by raising twice: a
# quarter of the time of reading a request's URL and headers, for nearly every request.
_IPV4_CHARS = frozenset("0123456789.")


def _host_name(tx: Transmission) -> str:
    """The host name the request was sent to, as a value: a device may put its IMEI or a
    hash of it in a label (``864...455.t.example``, a per-device subdomain). An IP literal
    names no one and is left out."""
    host = tx.host.strip().rstrip(".").strip("[]")
    if ":" not in host and not _IPV4_CHARS.issuperset(host):
        return host  # no IP literal's shape: a name, without asking ``ip_address``
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return ""


def _no_tokens(path: str, value: str) -> Iterator[Field]:
    return iter(())


def _user_agent(path: str, value: str) -> Iterator[Field]:
    """Tokens of a User-Agent (RFC 9110 10.1.5: products and comments): ``name/version``
    and ``key=value`` / ``key:value`` become ``header.user-agent.<name>``; other words of
    four or more characters ``header.user-agent.token``. Devices hide IMEIs, serials and
    base64 blobs in there, and a token is decoded on its own where the whole is not."""
    for token in [t for t in _UA_SPLIT.split(value) if t][:MAX_TOKENS]:
        m = _PRODUCT.fullmatch(token) or _PAIR.fullmatch(token)
        if m is not None:
            yield Field("header", f"{path}.{m.group(1).lower()}", m.group(2))
        elif len(token) >= 4:
            yield Field("header", f"{path}.token", token)


def _authorization(path: str, value: str) -> Iterator[Field]:
    """Credentials (RFC 9110 11.4): ``Basic`` gives the user and password (RFC 7617), a
    ``token68`` scheme (``Bearer``) its token, and auth-params (``Digest``, vendor schemes)
    each parameter as ``header.authorization.<param>``."""
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    lscheme = scheme.lower()
    if not rest:
        return
    if lscheme == "basic":
        yield Field("header", f"{path}.basic", rest)
        creds = basic_credentials(rest)
        if creds is not None:
            yield Field("header", f"{path}.basic.username", creds[0], ("base64",))
            yield Field("header", f"{path}.basic.password", creds[1], ("base64",))
        return
    params = [] if _TOKEN68.fullmatch(rest) else list(_AUTH_PARAM.finditer(rest))[:MAX_TOKENS]
    if params:
        for m in params:
            raw = m.group(2)
            if raw.startswith('"'):
                raw = raw[1:-1].replace('\\"', '"')
            if raw:
                yield Field("header", f"{path}.{m.group(1).lower()}", raw)
        return
    yield Field("header", f"{path}.{lscheme}", rest)


_HEADER_TOKENS = {
    "user-agent": _user_agent,
    "authorization": _authorization,
    "proxy-authorization": _authorization,
}


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


def basic_credentials(token: str) -> tuple[str, str] | None:
    """``user:password`` out of an HTTP Basic token (RFC 7617 2)."""
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = raw.decode("utf-8", errors="replace").partition(":")
    return (user, password) if sep else None
