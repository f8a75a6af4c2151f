"""HAR files (HTTP Archive 1.2: browsers, Charles, HTTP Toolkit, PCAPdroid) -> Transmissions.

A HAR says nothing about whether the device accepted an interception certificate, so
nothing read from one counts as ``decrypted`` (NO_CERT_VALIDATION needs live evidence).

Each entry's request becomes the same fields as a live HTTP request; the WebSocket
messages Chrome and HTTP Toolkit keep in ``_webSocketMessages`` become ``websocket``
transmissions (``send``: up). Bodies marked ``"encoding": "base64"`` are decoded.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from auditor.model import Transmission
from auditor.sources.mitm import InputError


class _Malformed(Exception):
    """A value of the wrong kind where HAR 1.2 says what belongs: the file is not HAR as
    written, so it is refused (exit 2) naming the place, not skipped."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where} {problem}")


def _kind(value: object) -> str:
    kinds = ((dict, "an object"), (list, "a list"), (str, "a string"), (bool, "a boolean"),
             (int | float, "a number"))
    return next((name for cls, name in kinds if isinstance(value, cls)), "null")


def _expect(value: object, kind: type | tuple[type, ...], where: str, what: str) -> None:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _Malformed(where, f"is {_kind(value)}, not {what}")


def _representable(ts: float, where: str, written: object = None) -> float:
    """Epoch seconds every report can write as a UTC date (years 1 to 9999)."""
    try:
        datetime.fromtimestamp(ts, UTC)
    except (OverflowError, ValueError, OSError):
        shown = ts if written is None else written
        raise _Malformed(where, f"{shown!r} is not a time between the years 1 and 9999"
                         ) from None
    return ts


def _ts(text: object, where: str) -> float:
    _expect(text, str, where, "an ISO 8601 time")
    assert isinstance(text, str)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))  # ValueError: skipped
    try:
        return _representable(moment.timestamp(), where, text)
    except OverflowError:
        raise _Malformed(where, f"{text!r} is not a time between the years 1 and 9999") from None


def _body(post: object, where: str) -> tuple[bytes, str]:
    _expect(post, dict, where, "an object")
    assert isinstance(post, dict)
    text = post.get("text")
    mime = str(post.get("mimeType", ""))
    if text is None and post.get("params"):
        _expect(post["params"], list, f"{where}.params", "a list")
        for k, param in enumerate(post["params"]):
            _expect(param, dict, f"{where}.params[{k}]", "an object")
        text = "&".join(f"{p.get('name', '')}={p.get('value', '')}" for p in post["params"])
    if text is None:
        return b"", mime
    _expect(text, str, f"{where}.text", "a string")
    if post.get("encoding") == "base64":
        try:
            return base64.b64decode(text), mime
        except (binascii.Error, ValueError):
            pass
    return _bytes(str(text)), mime


def _bytes(text: str) -> bytes:
    """Text as sent; a lone surrogate JSON's ``\\udcff`` escape allows is kept, not fatal."""
    return text.encode("utf-8", errors="surrogatepass")


def read_har(path: Path, notes: list[str]) -> Iterator[Transmission]:
    """Every request (and client WebSocket message) in a HAR file, in time order. An entry
    missing a part is skipped with a note; a value of the wrong kind refuses the file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        entries = doc["log"]["entries"]
    except OSError as e:
        raise InputError(f"{path}: cannot open ({e.strerror})") from e
    except RecursionError:
        raise InputError(f"{path}: not a HAR file (JSON nested too deeply)") from None
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a HAR file ({type(e).__name__}: {e})") from e
    if not isinstance(entries, list):
        raise InputError(f"{path}: not a HAR file (log.entries is {_kind(entries)}, not a list)")
    out: list[Transmission] = []
    for i, entry in enumerate(entries):
        try:
            out.extend(_entry(entry, f"log.entries[{i}]"))
        except _Malformed as e:
            raise InputError(f"{path}: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            notes.append(f"{path}: entry {i} skipped ({type(e).__name__}: {e})")
    out.sort(key=lambda tx: tx.ts)
    yield from out


def _split(url: str, host_header: str) -> tuple[str, str, int | None, str, str]:
    """(scheme, host, port, path, query) of a request URL. One ``urlsplit`` refuses (a host
    holding ``[``, a port past 65535) is cut by hand, so the request is still read."""
    try:
        parts = urlsplit(url)
        return parts.scheme, parts.hostname or "", parts.port, parts.path, parts.query
    except ValueError:
        scheme, sep, rest = url.partition("://")
        tail = rest[min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest)):]
        path, _, query = tail.partition("#")[0].partition("?")
        return (scheme if sep else ""), host_header, None, path, query


def _entry(entry: object, where: str) -> Iterator[Transmission]:
    _expect(entry, dict, where, "an object")
    assert isinstance(entry, dict)
    req = entry["request"]
    _expect(req, dict, f"{where}.request", "an object")
    ts = _ts(entry["startedDateTime"], f"{where}.startedDateTime")
    url = req["url"]
    _expect(url, str, f"{where}.request.url", "a string")
    raw_headers = req.get("headers") or []
    _expect(raw_headers, list, f"{where}.request.headers", "a list")
    headers = tuple((str(h["name"]), str(h["value"])) for h in raw_headers
                    if not str(h["name"]).startswith(":"))
    body, mime = _body(req.get("postData") or {}, f"{where}.request.postData")
    lower = {k.lower(): v for k, v in headers}
    scheme, host, port, path, query = _split(url, lower.get("host", ""))
    scheme = {"wss": "https", "ws": "http"}.get(scheme, scheme or "http")
    port = port or (443 if scheme == "https" else 80)
    path = (path or "/") + ("?" + query if query else "")
    ip = str(entry.get("serverIPAddress", "") or "").strip("[]")
    host = host or lower.get("host", "")
    head = sum(len(k) + len(v) + 4 for k, v in headers)
    yield Transmission(id=0, ts=ts, transport=scheme, host=host, port=port, ip=ip,
                       method=str(req.get("method", "GET")), url=url, path=path,
                       headers=headers, body=body,
                       content_type=lower.get("content-type", mime), size=head + len(body))
    messages = entry.get("_webSocketMessages") or []
    _expect(messages, list, f"{where}._webSocketMessages", "a list")
    for j, msg in enumerate(messages):
        yield from _websocket(msg, f"{where}._webSocketMessages[{j}]", ts, host, port, ip,
                              url, path)


def _websocket(msg: object, where: str, ts: float, host: str, port: int, ip: str, url: str,
               path: str) -> Iterator[Transmission]:
    """A message the client sent on a WebSocket (Chrome's and HTTP Toolkit's extension)."""
    _expect(msg, dict, where, "an object")
    assert isinstance(msg, dict)
    if msg.get("type") != "send":
        return
    at = msg.get("time", ts)
    _expect(at, int | float, f"{where}.time", "a number")
    at = _representable(float(at), f"{where}.time")
    data = str(msg.get("data", ""))
    try:
        payload = base64.b64decode(data) if msg.get("opcode") == 2 else _bytes(data)
    except (binascii.Error, ValueError):
        payload = _bytes(data)
    yield Transmission(id=0, ts=at, transport="websocket", host=host, port=port, ip=ip,
                       url=url, path=path, payload=payload, size=len(payload))
