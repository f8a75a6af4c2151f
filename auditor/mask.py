"""Masking: values leave the tool masked unless the lab asks for ``--reveal``.

``mask`` hides one value. ``Masker`` hides the detected values inside any text the reports
write out (a URL, a host, a field path, a coverage note), in every form a message may hold
them: as found; percent-encoded in either case, character by character or not; in the
base64 (standard, URL-safe, unpadded), hex and JSON-string forms of the layers the
detection was found under; a position as each of its numbers. A text piece (a host label,
a path segment, a query key or value) from which the decoders peel a detected value that
does not stand in it as such (base64 of a whole JSON document, gzip, a JWT) is masked whole.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

import ahocorasick

from auditor.limits import Budget
from auditor.memo import Memo, memoised
from auditor.model import Detection, Field

# Categories whose value is never shown even in part: a password fragment helps an attacker.
FULLY_MASKED = frozenset({"credentials.password"})
# Categories whose value is a position written as numbers ("39.98312,116.30791"): each
# number is masked wherever it stands (``lat=39.98312&lon=116.30791``).
NUMBERED = frozenset({"location.precise", "location.coarse"})
MIN_NEEDLE = 4  # characters: a shorter text would be masked all over a URL
MAX_FORMS = 256  # forms of one detected value
MAX_PIECE = 64 * 1024  # characters of one piece handed to the decoders
# A text is searched for each form in turn (no automaton built) while forms x characters
# stay under this; beyond it, the automaton: a long text or a message of many values.
MAX_NAIVE = 20_000
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
# Pieces of a text that a device fills in on its own: between URL and path delimiters
# (keeping dots, for JWTs and numbers), and between dots too (host labels, path names).
_PIECES = (re.compile(r"[^/?&=#;,\s\"'<>{}|\\^\[\]()*]+"),
           re.compile(r"[^/?&=#;,.:@+\s\"'<>{}|\\^\[\]()*]+"))
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}|[A-Za-z0-9+/_-]{8,}")


def mask(value: str, category: str = "") -> str:
    """``8612345678900123`` -> ``8612********0123`` (DESIGN.md): enough to recognise, not to
    reuse. At most half of a value shows (a quarter at each end, four characters at most);
    short values and passwords are masked whole. The length is kept, so a masked piece of
    a text leaves every other piece where it was."""
    n = len(value)
    keep = min(4, n // 4)
    if category in FULLY_MASKED or n < 6:
        keep = 0
    return value[:keep] + "*" * (n - 2 * keep) + value[n - keep:] if keep else "*" * n


# What ``quote(v, safe="")`` and ``quote_plus(v, safe="")`` leave as it is: ASCII letters and
# digits and ``_.-~`` (urllib's always-safe set); a text of these alone is its own
# percent-encoding in both, and most values are (numbers, identifiers, coordinates).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
# An ASCII text as ``quote`` writes it, character by character (``%XX`` in upper case),
# and as ``quote_plus`` does (a space as ``+``): one ``str.translate`` instead of urllib's
# walk over the UTF-8 bytes. Anything beyond ASCII is left to urllib.
_QUOTE = {c: chr(c) if _UNRESERVED.fullmatch(chr(c)) else f"%{c:02X}" for c in range(128)}
_QUOTE_PLUS = {**_QUOTE, ord(" "): "+"}


def _quoted(v: str) -> set[str]:
    """``v`` percent-encoded as a URL holds it: whole (``quote``) and as a form field
    (``quote_plus``), as urllib writes them."""
    if _UNRESERVED.fullmatch(v):
        return {v}
    if v.isascii():
        return {v.translate(_QUOTE), v.translate(_QUOTE_PLUS)}
    return {quote(v, safe=""), quote_plus(v)}


def _b64(raw: bytes) -> set[str]:
    std, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    return {std, std.rstrip("="), url, url.rstrip("=")}


# How a value is written under one layer of its detection's chain; layers not here (the
# digests, compression) leave the value as it was found, or cannot be redone.
_WRITERS: dict[str, Callable[[str], set[str]]] = {
    "base64": lambda v: _b64(v.encode("utf-8")),
    "hex": lambda v: {v.encode("utf-8").hex()},  # matched in any case
    "json": lambda v: {json.dumps(v)[1:-1], json.dumps(v, ensure_ascii=False)[1:-1]},
    "url": _quoted,
}


def forms(d: Detection) -> frozenset[str]:
    """The texts in which ``d``'s value may stand in the message: as found (a position: each
    of its numbers too), then layer by layer outwards along its chain, and percent-encoded
    last (every value may sit in a URL). Percent-encoding of ASCII in any case and spelling
    needs no form of its own: ``Masker`` reads ``%XX`` escapes as the character."""
    return _forms(d.value, d.category, d.encoding)


@memoised(4096)  # a session repeats its values message after message
def _keys(value: str, category: str, encoding: tuple[str, ...]) -> tuple[str, ...]:
    """``_forms`` lowercased, as ``Masker`` looks them up (in ``_forms``' order)."""
    return tuple(form.lower() for form in _forms(value, category, encoding))


def _forms(value: str, category: str, encoding: tuple[str, ...]) -> frozenset[str]:
    out = {value}
    if category in NUMBERED:
        out |= set(_NUMBER.findall(value))
    for layer in reversed(encoding):
        writer = _WRITERS.get(layer)
        if writer is not None and len(out) < MAX_FORMS:
            out |= {w for v in out for w in writer(v)}
    out |= {w for v in out for w in _WRITERS["url"](v)}
    return frozenset(f for f in out if len(f) >= MIN_NEEDLE)


class Masker:
    """Hides every form of the given detections' values in a text (``__call__``)."""

    def __init__(self, detections: Iterable[Detection], show: Callable[..., str] = mask
                 ) -> None:
        self._show = show
        self._category: dict[str, str] = {}  # lowercased form -> category to mask it as
        for d in detections:
            if isinstance(d.value, str):  # a damaged row: its own build reports it
                self._add(d.category, d.value, d.encoding)
        # The automaton is built for the first text that holds a form: most texts a row
        # masks (hosts, field paths, most URLs) hold none, and a row's values are new in
        # most messages (a position, a sequence number), so most maskers never need one.
        self._auto: ahocorasick.Automaton | None = None
        self._hashable_texts = False

    @classmethod
    def of(cls, values: Iterable[tuple[str, str, tuple[str, ...]]],
           show: Callable[..., str] = mask, *, hashable_texts: bool = False) -> Masker:
        """The masker of detections given as (category, value, encoding): what
        ``Masker(detections)`` makes of detections with these, without the detections.
        ``hashable_texts``: a text that is no ``str`` and cannot be hashed is refused
        (``TypeError``), as it was when a memo of texts stood in front of the masker (the
        report's): a damaged row fails as it always did."""
        hide = cls((), show)
        hide._hashable_texts = hashable_texts
        for category, value, encoding in values:
            if isinstance(value, str):
                hide._add(category, value, encoding)
        return hide

    def _add(self, category: str, value: str, encoding: tuple[str, ...]) -> None:
        """One detection's forms, lowercased; a form two detections share is masked as the
        later one's category, but a fully masked one stays so."""
        known = self._category
        for key in _keys(value, category, encoding):
            if known.get(key) not in FULLY_MASKED:
                known[key] = category

    def _automaton(self) -> ahocorasick.Automaton:
        if self._auto is None:
            self._auto = ahocorasick.Automaton()
            for key in self._category:
                self._auto.add_word(key, key)
            self._auto.make_automaton()
        return self._auto

    def _holds(self, view: str) -> bool:
        """Whether a form stands in ``view`` (what the automaton would find any of): asked
        of each key in turn when that is cheap, else of the automaton."""
        if len(self._category) * len(view) > MAX_NAIVE:
            return True  # the automaton answers
        for key in self._category:  # noqa: SIM110 - a loop: cheaper than ``any`` of a generator
            if key in view:
                return True
        return False

    def __bool__(self) -> bool:
        return bool(self._category)

    def __call__(self, text: str) -> str:
        if type(text) is not str:
            return self._not_text(text)
        keys = self._category
        if not keys or not text:
            return text
        # Most texts (a host, a field path, most URLs) hold no form and no piece to peel:
        # ``_found``'s and ``_holds``' answer for them is worked out here, without a call.
        view = text.lower()
        # ``_decodable``'s remembered answer looked up here, without a call: most texts a
        # report masks come again (hosts, field paths, a device's few URLs)
        pieces = _DECODABLE_LOOKUP(text)
        if pieces is None:
            pieces = _decodable(text)
        if (not pieces and "%" not in text and len(view) == len(text)
                and len(keys) * len(view) <= MAX_NAIVE):
            for key in keys:
                if key in view:
                    break
            else:
                return text
        spans = self._found(text)
        if pieces:
            spans += self._hidden(text, pieces)
        if not spans:  # most texts: nothing to hide
            return text
        chars = list(text)
        for start, end, category in spans:
            chars[start:end] = self._show(text[start:end], category)
        return "".join(chars)

    def _not_text(self, text: object) -> str:
        """A text of another type (a damaged row; a ``str`` subclass), met in the order a
        text always was, so that it fails (or not) as it always did."""
        if self._hashable_texts:
            hash(text)
        if not self._category or not text:
            return text  # type: ignore[return-value]
        chars = list(text)  # type: ignore[call-overload]
        for start, end, category in [*self._found(text),  # type: ignore[arg-type]
                                     *self._hidden(text,  # type: ignore[arg-type]
                                                   _decodable(text))]:  # type: ignore[arg-type]
            chars[start:end] = self._show(text[start:end], category)  # type: ignore[index]
        return "".join(chars)

    def _found(self, text: str) -> list[tuple[int, int, str]]:
        """Spans of ``text`` that spell a form, reading each ``%XX`` as its character."""
        view = text.lower()
        if "%" not in text and len(view) == len(text):  # most texts: the view is the text
            if not self._holds(view):
                return []
            return [(end - len(key) + 1, end + 1, self._category[key])
                    for end, key in self._automaton().iter(view)]
        view, where = _unescaped(text)
        if not self._holds(view):
            return []
        out = []
        for end, key in self._automaton().iter(view):
            start = end - len(key) + 1
            out.append((where[start][0], where[end][1], self._category[key]))
        return out

    def _hidden(self, text: str, pieces: tuple[tuple[int, int], ...]
                ) -> list[tuple[int, int, str]]:
        """Pieces of ``text`` (``_decodable``'s) that the decoders turn into a text holding
        a form."""
        out = []
        for start, end in pieces:
            category = self._inside(text[start:end])
            if category is not None:
                out.append((start, end, category))
        return out

    def _inside(self, piece: str) -> str | None:
        """The category of a form found in what the decoders peel off ``piece``, if any."""
        for text in _peeled(piece):
            if not self._holds(text):
                continue
            for _, key in self._automaton().iter(text):
                return self._category[key]
        return None


MEMO_TEXT = 1024  # characters of a text or piece, and of what it peels to, remembered
_DECODABLE: Memo[str, tuple[tuple[int, int], ...]] = Memo(4096)
_DECODABLE_LOOKUP = _DECODABLE.lookup


def _decodable(text: str) -> tuple[tuple[int, int], ...]:
    """The spans of ``text``'s pieces from which the decoders peel something, in the order
    ``Masker._hidden`` looks at them; which they are depends on the text alone, and hosts,
    field paths and many URLs come again message after message: short texts' answers are
    remembered."""
    known = _DECODABLE.get(text)
    if known is not None:
        return known
    spans = []
    seen: set[tuple[int, int]] = set()
    for rx in _PIECES:
        for m in rx.finditer(text):
            if m.span() in seen or len(m.group()) > MAX_PIECE or not _ENCODED.search(
                    m.group()):
                continue
            seen.add(m.span())
            if _peeled(m.group()):
                spans.append(m.span())
    if len(text) <= MEMO_TEXT:
        _DECODABLE.put(text, tuple(spans))
    return tuple(spans)


_PEELED: Memo[str, tuple[str, ...]] = Memo(4096)


def _peeled(piece: str) -> tuple[str, ...]:
    """What the decoders peel off ``piece``: each layer's value and path, lowercased. A
    budget of its own (as a report's masking always had, outside any message's), so the
    answer depends on the piece alone; the same host labels and path pieces stand in
    message after message, so short ones are remembered (a bounded memory: a long piece,
    or a small one that inflates, is peeled again)."""
    known = _PEELED.get(piece)
    if known is not None:
        return known
    from auditor import decode  # the decoders import the extractors: only when needed

    texts = tuple(text for f in decode.expand([Field("url", "piece", piece)],
                                              budget=Budget())[1:]
                  for text in (f.value.lower(), f.path.lower()))
    if len(piece) <= MEMO_TEXT and sum(map(len, texts)) <= MEMO_TEXT:
        _PEELED.put(piece, texts)
    return texts


def _unescaped(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` lowercased with every ASCII ``%XX`` read as its character (an escape of a
    non-ASCII byte stays as written, as ``quote`` writes it), and for each character of
    that view the span of ``text`` it came from."""
    view: list[str] = []
    where: list[tuple[int, int]] = []

    def keep(piece: str, span: tuple[int, int]) -> None:
        low = piece.lower()
        piece = low if len(low) == len(piece) else piece
        view.extend(piece)
        where.extend([span] * len(piece))

    i = 0
    for m in _PCT.finditer(text):
        for j in range(i, m.start()):
            keep(text[j], (j, j + 1))
        code = int(m.group(1), 16)
        keep(chr(code) if code < 0x80 else m.group(), m.span())
        i = m.end()
    for j in range(i, len(text)):
        keep(text[j], (j, j + 1))
    return "".join(view), where
