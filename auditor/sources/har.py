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
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from auditor.model import Transmission
from auditor.sources.mitm import InputError


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _body(post: dict) -> tuple[bytes, str]:
    text = post.get("text")
    mime = str(post.get("mimeType", ""))
    if text is None and post.get("params"):
        text = "&".join(f"{p.get('name', '')}={p.get('value', '')}" for p in post["params"])
    if text is None:
        return b"", mime
    if post.get("encoding") == "base64":
        try:
            return base64.b64decode(text), mime
        except (binascii.Error, ValueError):
            pass
    return str(text).encode("utf-8", errors="surrogateescape"), mime


def read_har(path: Path, notes: list[str]) -> Iterator[Transmission]:
    """Every request (and client WebSocket message) in a HAR file, in time order."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        entries = doc["log"]["entries"]
    except OSError as e:
        raise InputError(f"{path}: cannot open ({e.strerror})") from e
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a HAR file ({type(e).__name__}: {e})") from e
    out: list[Transmission] = []
    for i, entry in enumerate(entries):
        try:
            out.extend(_entry(entry))
        except (KeyError, TypeError, ValueError) as e:
            notes.append(f"{path}: entry {i} skipped ({type(e).__name__}: {e})")
    out.sort(key=lambda tx: tx.ts)
    yield from out


def _entry(entry: dict) -> Iterator[Transmission]:
    req = entry["request"]
    ts = _ts(entry["startedDateTime"])
    url = str(req["url"])
    parts = urlsplit(url)
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme or "http")
    port = parts.port or (443 if scheme == "https" else 80)
    headers = tuple((str(h["name"]), str(h["value"])) for h in req.get("headers", [])
                    if not str(h["name"]).startswith(":"))
    body, mime = _body(req.get("postData") or {})
    lower = {k.lower(): v for k, v in headers}
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    ip = str(entry.get("serverIPAddress", "") or "").strip("[]")
    host = parts.hostname or lower.get("host", "")
    head = sum(len(k) + len(v) + 4 for k, v in headers)
    yield Transmission(id=0, ts=ts, transport=scheme, host=host, port=port, ip=ip,
                       method=str(req.get("method", "GET")), url=url, path=path,
                       headers=headers, body=body,
                       content_type=lower.get("content-type", mime), size=head + len(body))
    for msg in entry.get("_webSocketMessages") or ():
        if msg.get("type") != "send":
            continue
        data = str(msg.get("data", ""))
        try:
            payload = base64.b64decode(data) if msg.get("opcode") == 2 else data.encode()
        except (binascii.Error, ValueError):
            payload = data.encode()
        yield Transmission(id=0, ts=float(msg.get("time", ts)), transport="websocket",
                           host=host, port=port, ip=ip, url=url, path=path,
                           payload=payload, size=len(payload))
