"""``application/x-www-form-urlencoded`` pairs (WHATWG URL), in a body that declares it or
has its shape, and in a URL's query (``auditor.extract.http``)."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from urllib.parse import unquote_plus

from auditor.extract.reading import Encoding, ReadContext
from auditor.limits import NODE_COST, segment
from auditor.model import Field

CONTENT_TYPE = "application/x-www-form-urlencoded"
_FORM = re.compile(r"[\w.\-\[\]%*]+=[^&\s]*(?:&[\w.\-\[\]%*]+=[^&\s]*)*")


def form_pairs(text: str) -> Iterator[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` pairs, lazily; blank values and pairs without
    ``=`` are dropped, as ``parse_qsl`` does (WHATWG URL, application/x-www-form-urlencoded)."""
    for m in re.finditer(r"[^&]+", text):
        name, eq, value = m.group().partition("=")
        if eq and value:
            yield _unquote(name), _unquote(value)


def _unquote(text: str) -> str:
    """Percent-decoded as UTF-8, or as GB18030 (GBK's superset) when the bytes are not
    UTF-8: older Chinese SDKs percent-encode GBK, which UTF-8 would turn into U+FFFD."""
    try:
        return unquote_plus(text, errors="strict")
    except UnicodeDecodeError:
        return unquote_plus(text, encoding="gb18030", errors="replace")


def read_form(text: str, prefix: str, ctx: ReadContext, encoding: Encoding
              ) -> Iterator[Field]:
    """Form pairs as fields, each charged as a node with its path (a million-key form
    stops at the budget, not at the end of the body)."""
    for name, value in form_pairs(text):
        path = f"{prefix}.form.{segment(name)}"
        ctx.budget.spend(NODE_COST + len(path), path)
        yield Field(ctx.location, path, value, encoding)


def looks_like_form(stripped: str) -> bool:
    """Undeclared text that is nothing but ``name=value`` pairs joined by ``&``."""
    return "=" in stripped and _FORM.fullmatch(stripped.rstrip()) is not None


def read_shaped_form(text: str, data: bytes, prefix: str, ctx: ReadContext,
                     encoding: Encoding, nest: int) -> Generator[Field, None, bool]:
    """Undeclared text with the shape of a form (``looks_like_form``)."""
    yield from read_form(text.strip(), prefix, ctx, encoding)
    return True
