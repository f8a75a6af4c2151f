"""Multipart bodies (RFC 2046 5.1, RFC 7578): each part read as a format of its own.

Devices often send multipart as ``application/octet-stream``, so a boundary is also sniffed
from the first line. Each part reads with a share of the message's budget
(``reading.guarded``): a bomb in one part is noted and the parts after it are still read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

from auditor.extract.reading import Encoding, ReadContext, guarded
from auditor.limits import NODE_COST, segment
from auditor.model import Field

_BOUNDARY = re.compile(rb"--([0-9A-Za-z'()+_,\-./:=?]{1,70})\r?\n")


def ctype_params(content_type: str) -> dict[str, str]:
    """The ``name=value`` parameters of a Content-Type header, names lower-cased."""
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


def boundary(data: bytes, content_type: str) -> str | None:
    """The declared multipart boundary, or one sniffed from a first line ``--boundary``
    followed by a part header (devices send multipart as octet-stream)."""
    if content_type.split(";")[0].strip().lower().startswith("multipart/"):
        declared = ctype_params(content_type).get("boundary")
        if declared:
            return declared
    m = _BOUNDARY.match(data[:80].lstrip())
    if m is not None and b"content-disposition" in data[:2048].lower():
        return m.group(1).decode("ascii")
    return None


def read_multipart(data: bytes, prefix: str, ctx: ReadContext, encoding: Encoding, nest: int,
                   boundary: str) -> Iterator[Field] | None:
    """Each part as ``prefix.multipart.<name>`` (its file name as ``.filename``); None when
    the boundary never occurs."""
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
            yield from guarded(ctx.read(body, path, ctx, encoding,
                                        headers.get("content-type", ""), nest + 1,
                                        text_path=path), path, encoding, ctx)
    return walk()
