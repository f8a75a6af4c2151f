"""Known values: the identifiers the lab seeded, found in every plausible form.

One Aho-Corasick automaton per session over the plain forms of all seeded values (DESIGN.md
"detect" 1): case and separator variants, phone formats, dates. Matching is on the
lowercased field value, so upper-case identifiers match too. What a device writes in hex or
base64 (standard, URL-safe, unpadded) is found by decoding the hex- and base64-shaped tokens
of the value and looking the bytes up: among the forms themselves, and among the MD5 /
SHA-1 / SHA-256 / SHA-512 digests of each form (a dict). Only the plain forms are keys of
the automaton, so a seed costs a few dozen keys whatever the writings, and a profile
carrying a whole address book stays cheap to build.

Some forms are another value derived from the seed, and the detection names them in its
layers so a reviewer sees what was matched: the IMEI without its check digit, its last ten
digits (the watch id of the 3G protocol family and of many watch APIs), the IMEISV (the
IMEI's fourteen digits and any two-digit software version), a Chinese text as devices
write it (``chinese.writings``) and a Chinese name's pinyin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import ahocorasick
import phonenumbers

from auditor.categories import CHILD_KEYS, IDENTIFIER_KEYS
from auditor.detect.chinese import is_chinese, pinyin_names, writings
from auditor.memo import Memo
from auditor.model import DEFAULT_REGION, Detection, Field, Profile

# UTF-8 bytes of a plain form in the automaton: shorter ones would match all over the place
# (bytes: a two-character Chinese name is specific). Their digests are still looked for.
MIN_LEN = 4
DIGESTS: tuple[str, ...] = ("md5", "sha1", "sha256", "sha512")
DIGEST_SIZES = frozenset(hashlib.new(name).digest_size for name in DIGESTS)
CONFIDENCE = 0.99
WINDOW = 64 * 1024  # characters of a value handed to the automaton at once
# Runs of the base64 alphabet (hex is inside it): where a form or a digest written in hex
# or base64 (standard, URL-safe, unpadded) may sit. The alphanumeric segments of a run are
# the hex candidates; spans of up to MAX_SPLIT consecutive segments the base64 ones.
_RUN = re.compile(r"[A-Za-z0-9+/_-]{4,}={0,2}")
_SEGMENT = re.compile(r"[A-Za-z0-9]+")
_HEXCHARS = re.compile(r"[0-9A-Fa-f]+")
K = TypeVar("K", str, bytes)
MAX_SPLIT = 8
# Layers of the derived forms that are values in their own right, so a device may also
# hash or base64 them; the other derived forms are writings of the text, matched as written.
IMEI_14 = ("no-check-digit",)
IMEI_10 = ("last-10-digits",)
IMEISV = ("imeisv",)
PINYIN = ("pinyin",)
VALUE_FORMS = frozenset({IMEI_14, IMEI_10, PINYIN})
UTF16_HEX = ("hex", "utf-16be")
# How far back a UTF-16BE hex match looks for the start of its hex run (a multiple of 4, so
# a longer run is taken as aligned): bounds the work per match, so a hostile blob repeating
# the name costs a few dozen steps a match, not the length of the blob.
UTF16_LOOKBACK = 64
# A run longer than this is a blob, not a token, and a run of more than two segments
# shorter than MIN_SEGMENT on average is no base64 text (whose +/ come about twice in 64
# characters): only their alphanumeric segments are tried, which bounds the work per
# character whatever a hostile message holds.
LONG_RUN = 512
MIN_SEGMENT = 10
# ``_found`` remembers its result for texts up to FOUND_MEMO_TEXT characters, at most
# FOUND_MEMO of them (``auditor.memo``: bounded whatever a device sends).
FOUND_MEMO, FOUND_MEMO_TEXT = 8192, 512


@dataclass(frozen=True)
class Seed:
    category: str
    profile_key: str  # where in the profile it came from: identifiers.imei, contacts[1].phone
    value: str


@dataclass(frozen=True)
class Variant:
    seed: Seed
    layers: tuple[str, ...]  # () for the value as is (or re-formatted); else ("base64", "md5")


def seeds(profile: Profile) -> list[Seed]:
    """Every seeded value with the category it stands for."""
    out: list[Seed] = []
    for key, values in profile.identifiers.items():
        out += [Seed(IDENTIFIER_KEYS[key], f"identifiers.{key}", v) for v in values]
    for key, values in profile.child.items():
        out += [Seed(CHILD_KEYS[key], f"child.{key}", v) for v in values]
    for i, c in enumerate(profile.contacts):
        if c.name:
            out.append(Seed("contacts.entry", f"contacts[{i}].name", c.name))
        if c.phone:
            out.append(Seed("contacts.entry", f"contacts[{i}].phone", c.phone))
    for i, cred in enumerate(profile.credentials):
        if cred.password:
            out.append(Seed("credentials.password", f"credentials[{i}].password", cred.password))
    if profile.location is not None:
        for i, bssid in enumerate(profile.location.wifi):
            out.append(Seed("location.wifi", f"location.wifi[{i}]", bssid))
    return [s for s in out if s.value.strip()]


def forms(seed: Seed, region: str) -> set[str]:
    """The ways a device may write the value itself (before any hashing)."""
    v = seed.value.strip()
    out = {v, v.lower(), v.upper()}
    key = seed.profile_key.rsplit(".", 1)[-1]
    if key in ("mac",) or seed.category == "location.wifi":
        out |= _mac_forms(v)
    elif _is_phone(seed):
        out |= _phone_forms(v, region)
    elif key == "birthdate":
        out |= _date_forms(v)
    elif key == "iccid" and v.isdigit():
        out |= {v + "F", v + "f"}  # E.118: an odd-length ICCID is padded with an F nibble
    elif " " in v:
        out |= {v.replace(" ", ""), v.replace(" ", "_"), v.replace(" ", "+")}
    return {f for f in out if f}


def derived_forms(seed: Seed) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(form, layers) of the values derived from a seed and of the writings of a Chinese
    text; the layers say which, so a reviewer reads the IMEI as ``last-10-digits``."""
    v = seed.value.strip()
    key = seed.profile_key.rsplit(".", 1)[-1]
    if key == "imei" and len(v) == 15 and v.isdigit():
        # 3GPP TS 23.003 6.2.1: the IMEI without its Luhn digit, as many send it; the 3G
        # watch protocol and its APIs name the watch by the last ten digits
        yield v[:14], IMEI_14
        yield v[-10:], IMEI_10
    if is_chinese(v):
        yield from writings(v)
        if key == "name":
            yield from ((name, PINYIN) for name in pinyin_names(v))


def _mac_forms(v: str) -> set[str]:
    hexes = re.sub(r"[^0-9a-fA-F]", "", v).lower()
    if len(hexes) != 12:
        return set()
    octets = [hexes[i:i + 2] for i in range(0, 12, 2)]
    quads = [hexes[i:i + 4] for i in range(0, 12, 4)]
    out = {sep.join(octets) for sep in (":", "-", "")} | {".".join(quads)}
    return out | {f.upper() for f in out}


def _looks_phone(v: str) -> bool:
    return sum(c.isdigit() for c in v) >= 6 and not re.search(r"[A-Za-z]", v)


def _phone_forms(v: str, region: str) -> set[str]:
    digits = re.sub(r"\D", "", v)
    out = {digits, "+" + digits}
    try:
        num = phonenumbers.parse(v, region or DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return out
    national = str(num.national_number)
    cc = str(num.country_code)
    out |= {national, cc + national, "+" + cc + national, "00" + cc + national,
            "0" + national}
    for fmt in (phonenumbers.PhoneNumberFormat.NATIONAL,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.E164):
        text = phonenumbers.format_number(num, fmt)
        out |= {text, text.replace(" ", "-"), text.replace(" ", "")}
    if len(national) == 11:  # CN mobile, written 3-4-4
        spaced = f"{national[:3]} {national[3:7]} {national[7:]}"
        out |= {spaced, spaced.replace(" ", "-"), f"+{cc} {spaced}"}
    return out


def _date_forms(v: str) -> set[str]:
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", v)
    if not m:
        return set()
    y, mo, d = m.groups()
    return {f"{y}{mo}{d}", f"{y}/{mo}/{d}", f"{y}.{mo}.{d}", f"{d}/{mo}/{y}", f"{mo}/{d}/{y}",
            f"{d}.{mo}.{y}", f"{d}-{mo}-{y}", f"{y}-{int(mo)}-{int(d)}", f"{y}/{int(mo)}/{int(d)}",
            f"{y}年{int(mo)}月{int(d)}日", f"{y}年{mo}月{d}日"}


def _is_phone(seed: Seed) -> bool:
    key = seed.profile_key.rsplit(".", 1)[-1]
    return key == "phone" or seed.category == "contacts.entry" and _looks_phone(seed.value)


def _digested(seed: Seed, form: str) -> bool:
    """Whether to look for the digests of ``form``. A device hashes a phone number as
    digits (E.164 with or without ``+``, national, with a trunk or an international
    prefix), never as laid out for people (``138 0013 8000``): those forms are matched as
    written only, which keeps a contact's digests to a third."""
    return not _is_phone(seed) or re.fullmatch(r"\+?\d+", form) is not None


def _digests(form: str) -> Iterator[tuple[str, bytes]]:
    raw = form.encode("utf-8")
    for name in DIGESTS:
        yield name, hashlib.new(name, raw).digest()


class KnownValues:
    """The automaton of the forms as written, and two tables for what a device writes in hex
    or base64: the forms themselves and their digests (each written in hex or base64).

    Encoded writings are found by decoding the hex- and base64-shaped tokens of a field and
    looking the bytes up, not by putting every writing of every form into the automaton:
    that multiplied each seed's forms by every writing of them, and a profile with an address
    book grew an automaton too large and slow to build. Now a seed costs its plain forms in
    the automaton and four digests per form in a dict, and the haystack pays a regex pass
    instead."""

    def __init__(self, texts: dict[str, list[Variant]],
                 digests: dict[bytes, list[Variant]] | None = None,
                 suffixed: dict[str, list[Variant]] | None = None) -> None:
        """``texts``: lowercased form -> its seeds (layers: () or the derived form's);
        ``digests``: raw digest -> its seeds (layers: the digest's name); ``suffixed``: a
        form (in ``texts``) -> the seeds it stands for when two more digits follow it (the
        IMEISV's software version)."""
        self._texts = texts
        self._digests = digests or {}
        self._suffixed = suffixed or {}
        self._written = {k: vs for k, vs in texts.items() if len(k.encode("utf-8")) >= MIN_LEN}
        # Forms a device may also write in hex or base64: the values, not their writings.
        self._variants = {k: vs for k, vs in self._written.items()
                          if any(v.layers in VALUE_FORMS or not v.layers for v in vs)}
        self._longest = max(map(len, self._written), default=0)
        # Byte lengths an encoded token may decode to: a token of another length is skipped
        # before it is decoded (most words of a text are base64-shaped).
        self._sizes = frozenset(len(k.encode("utf-8")) for k in self._variants) | (
            DIGEST_SIZES if self._digests else frozenset())
        most = max(self._sizes, default=0)
        # Characters of the narrowest token that decodes to some size (hex: two a byte;
        # base64: at least 4/3 a byte): a shorter run holds no token (most values).
        self._narrowest = min((min(2 * n, -(-n * 4 // 3)) for n in self._sizes), default=0)
        self._widest = -(-most * 4 // 3) + 4  # base64 characters of the longest key
        self._widths = frozenset(w for n in self._sizes for w in _b64_widths(n))
        # How the forms' hex and base64 begin (their first three bytes, in any ASCII case):
        # a token beginning otherwise is not decoded, unless it is as long as a digest.
        heads = {h.encode("utf-8") for k in self._variants for h in _cases(k[:3])}
        self._hex_heads = frozenset(h[:3].hex() for h in heads)
        self._b64_heads = frozenset(base64.b64encode(h[:3]).decode()[:4] for h in heads)
        self._piece = re.compile(
            rf"(?<![A-Za-z0-9])[A-Za-z0-9]{{6,{max(2 * most, self._widest, 6)}}}(?![A-Za-z0-9])")
        self._auto = ahocorasick.Automaton()
        for key, vs in self._written.items():
            self._auto.add_word(key, (key, vs))
        if self._written:
            self._auto.make_automaton()
        # A device sends the same names (field paths) and many of the same short values
        # message after message: what ``_found`` finds in a short text is remembered.
        self._seen: Memo[str, tuple[tuple[int, int, Variant], ...]] = Memo(FOUND_MEMO)

    @classmethod
    def from_profile(cls, profile: Profile) -> KnownValues:
        region = profile.region
        texts: dict[str, list[Variant]] = {}
        digests: dict[bytes, list[Variant]] = {}
        suffixed: dict[str, list[Variant]] = {}
        for seed in seeds(profile):
            plain = Variant(seed, ())
            hashed = {name: Variant(seed, (name,)) for name in DIGESTS}
            for form in forms(seed, region):
                _add(texts, form.lower(), plain)
                for name, digest in _digests(form) if _digested(seed, form) else ():
                    _add(digests, digest, hashed[name])
            for form, layers in derived_forms(seed):
                _add(texts, form.lower(), Variant(seed, layers))
                if layers == IMEI_14:
                    _add(suffixed, form, Variant(seed, IMEISV))
        return cls(texts, digests, suffixed)

    def __len__(self) -> int:
        """Keys held: plain forms (the automaton's and shorter ones) and digests."""
        return len(self._texts) + len(self._digests)

    def _matches(self, text: str) -> Iterator[tuple[int, tuple[str, list[Variant]]]]:
        """The automaton's matches in windows: pyahocorasick copies the whole text it is given
        (four bytes a character), so a multi-MB value is fed a window at a time. Windows
        overlap by the longest key less one, and a match counts in the window it ends in."""
        if not self._written:
            return
        if len(text) <= WINDOW:
            yield from self._auto.iter(text)
            return
        overlap = self._longest - 1
        for begin in range(0, len(text), WINDOW):
            first = max(0, begin - overlap)
            for end, hit in self._auto.iter(text[first:begin + WINDOW]):
                if first + end >= begin:
                    yield first + end, hit

    def _plain(self, value: str) -> Iterator[tuple[int, int, Variant]]:
        text = value.lower()
        for end, (key, variants) in self._matches(text):
            start = end - len(key) + 1
            if _bounded(text, start, end):
                yield from ((start, end, v) for v in variants)
                continue
            for v in self._suffixed.get(key, ()):
                version = text[end + 1:end + 3]
                # an IMEISV whose version begins with the check digit is not told from the
                # IMEI inside a longer number, which is some other value: precision wins
                if (len(version) == 2 and version.isdigit() and _bounded(text, start, end + 2)
                        and text[start:end + 2] != v.seed.value.strip()):
                    yield start, end + 2, v
            for v in variants:
                if v.layers == UTF16_HEX and _aligned(text, start):
                    yield start, end, v

    def _encoded(self, value: str) -> Iterator[tuple[int, int, Variant]]:
        """Forms and digests written in hex or base64: each bounded token of that shape,
        decoded and looked up."""
        for start, end, layer, raw in self._tokens(value):
            for v in self._digests.get(raw, ()) if len(raw) in DIGEST_SIZES else ():
                yield start, end - 1, Variant(v.seed, v.layers if layer == "hex"
                                              else (layer, *v.layers))
            try:
                text = raw.decode("utf-8").lower()
            except UnicodeDecodeError:
                continue
            for v in self._variants.get(text, ()):
                yield start, end - 1, Variant(v.seed, (layer, *v.layers))

    def _tokens(self, value: str) -> Iterator[tuple[int, int, str, bytes]]:
        """(start, end, layer, bytes) for every bounded hex or base64 token of ``value`` that
        decodes to as many bytes as some key has."""
        sizes, narrowest = self._sizes, self._narrowest
        if len(value) < narrowest:
            return
        for run in _RUN.finditer(value):
            start, end = run.span()
            if end - start < narrowest:  # its segments and spans are narrower still
                continue
            if end - start > LONG_RUN:  # its alphanumeric pieces, found in C
                spans = segments = [m.span() for m in self._piece.finditer(value, start, end)]
            elif run.group().isalnum():
                spans = segments = [(start, end)]
            else:
                segments = [m.span() for m in _SEGMENT.finditer(value, start, end)]
                spans = segments
                if (len(segments) - 2) * MIN_SEGMENT <= end - start:
                    spans = _spans(value, segments, start, end, self._widths)
            for s, e in segments:
                n = e - s
                if n % 2 == 0 and n // 2 in sizes and (
                        n // 2 in DIGEST_SIZES or value[s:s + 6].lower() in self._hex_heads
                        ) and _HEXCHARS.fullmatch(value, s, e):
                    yield s, e, "hex", bytes.fromhex(value[s:e])
            for s, e in spans:
                body = e - s - (value[e - 1] == "=") - (e - s > 1 and value[e - 2] == "=")
                size = body * 3 // 4
                if body % 4 != 1 and size in sizes and (
                        size in DIGEST_SIZES
                        or value[s:s + 4].translate(_URLSAFE) in self._b64_heads):
                    raw = _unbase64(value[s:e])
                    if raw is not None:
                        yield s, e, "base64", raw

    def scan(self, tx_id: int, fields: Iterable[Field]) -> Iterator[Detection]:
        """Seeded values in each field's value, and in the names its path is made of."""
        if not self._texts:
            return
        named: set[tuple[str, Seed]] = set()
        # ``_found``'s memo asked directly: this runs twice for every field of every message,
        # and most answers are remembered and empty (a name without a seed in it).
        recall = self._seen.lookup
        for f in fields:
            value = f.value
            if len(value) > FOUND_MEMO_TEXT:
                hits = self._find(value)
            else:
                hits = recall(value)
                if hits is None:  # not remembered: found and remembered
                    hits = self._seen.put(value, self._find(value))
            for start, end, v in hits:
                yield Detection(tx_id, v.seed.category, "known", f.location, f.path,
                                (*f.encoding, *v.layers), v.seed.profile_key,
                                value[start:end + 1], CONFIDENCE)
            if recall(f.path) != ():  # not remembered as holding no seed
                yield from self._in_names(tx_id, f, named)

    def _found(self, value: str) -> tuple[tuple[int, int, Variant], ...]:
        """``_find`` of a short text from the memo (the same result: ``_find`` is pure)."""
        if len(value) > FOUND_MEMO_TEXT:
            return self._find(value)
        hit = self._seen.get(value)
        if hit is None:
            hit = self._seen.put(value, self._find(value))
        return hit

    def _find(self, value: str) -> tuple[tuple[int, int, Variant], ...]:
        """(start, end, variant) of every seed in ``value`` (``end`` inclusive). The longest
        match of a seed stands for the shorter ones inside it: the padded base64, the
        ``+86`` number around the national one."""
        if len(value) < self._narrowest:  # no hex or base64 token (``_tokens``): most values
            text = value.lower()
            # and no form as written (``_plain`` of a text in one window): told by the
            # automaton's first match in C, without the generators
            if len(text) <= WINDOW and (not self._written
                                        or next(self._auto.iter(text), None) is None):
                return ()
        spans = sorted([*self._plain(value), *self._encoded(value)], key=lambda s: s[0] - s[1])
        kept: list[tuple[int, int, Variant]] = []
        # A kept span that contains a later one of its seed begins at most the seed's
        # longest kept span before it: only those starts are looked up, so a value that
        # repeats a seed thousands of times costs linear time, not the square of the count.
        reach: dict[Seed, int] = {}  # seed -> its longest kept span
        ends: dict[tuple[Seed, int], int] = {}  # (seed, start) -> furthest kept end
        for start, end, v in spans:
            longest = reach.get(v.seed, -1)
            if any(ends.get((v.seed, s), -1) >= end
                   for s in range(max(0, start - longest), start + 1)):
                continue
            kept.append((start, end, v))
            ends[v.seed, start] = max(ends.get((v.seed, start), -1), end)
            reach[v.seed] = max(longest, end - start)
        return tuple(kept)

    def _in_names(self, tx_id: int, f: Field, named: set[tuple[str, Seed]]
                  ) -> Iterator[Detection]:
        """A seed used as a name: a JSON key (``{"864...455": 1}``), a query or form key
        (``?864...455=1``), a cookie or header name. A field's path spells every name above
        it; a hit is reported once per message on the path that ends with that name (the
        first field under it gives the layers), so siblings do not repeat it."""
        for start, end, v in self._found(f.path):
            stop = _NAME_END.search(f.path, end + 1)
            owner = f.path[:stop.start()] if stop else f.path
            if (owner, v.seed) in named:
                continue
            named.add((owner, v.seed))
            yield Detection(tx_id, v.seed.category, "known", f.location, owner,
                            (*f.encoding, *v.layers), v.seed.profile_key,
                            f.path[start:end + 1], CONFIDENCE)


_NAME_END = re.compile(r"[.\[+]")  # where a name in a field path ends


def _spans(value: str, segments: list[tuple[int, int]], start: int, end: int, widths: frozenset[int]
           ) -> list[tuple[int, int]]:
    """Spans of up to MAX_SPLIT consecutive segments of the run ``start:end`` (a base64
    text may hold ``+`` and ``/``, and a URL path is such a run) as wide as some key's
    base64 (``widths``, padding included); the first may begin at the run's start (base64
    may begin with ``/``), the last ends at the run's end when it is the run's last (its
    ``=`` padding)."""
    firsts = [s for s, _ in segments]
    lasts = [e for _, e in segments]
    firsts[0], lasts[-1] = start, end
    return [(s, e) for i, s in enumerate(firsts) for e in lasts[i:i + MAX_SPLIT]
            if e - s in widths]


def _cases(text: str) -> set[str]:
    """Every ASCII upper/lower-case spelling of a short text."""
    out = {""}
    for ch in text:
        out = {o + c for o in out for c in {ch.lower(), ch.upper()}}
    return out


def _b64_widths(size: int) -> tuple[int, int]:
    """Characters of the base64 of ``size`` bytes: unpadded, padded."""
    return -(-size * 4 // 3), -(-size // 3) * 4


def _unbase64(token: str) -> bytes | None:
    """The bytes a base64 token (standard or URL-safe, padded or not) stands for; None
    unless it is their canonical writing (so near-misses and truncations do not match)."""
    body = token.rstrip("=")
    n = len(body)
    if n % 4 == 1 or len(token) - n > 2 or (len(token) - n and len(token) % 4):
        return None
    std = body.translate(_URLSAFE)
    spare = _B64_INDEX.get(std[-1], 0) & (0xF if n % 4 == 2 else 0x3 if n % 4 == 3 else 0)
    if spare:  # the last character's unused bits are set: not what an encoder writes
        return None
    try:
        return binascii.a2b_base64(std + "=" * (-n % 4), strict_mode=True)
    except binascii.Error:
        return None


_B64_INDEX = {c: i for i, c in enumerate(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


_URLSAFE = str.maketrans("-_", "+/")


def _add(table: dict[K, list[Variant]], key: K, variant: Variant) -> None:
    bucket = table.setdefault(key, [])
    if not any(v.seed == variant.seed for v in bucket):
        bucket.append(variant)


def _bounded(text: str, start: int, end: int) -> bool:
    """A match counts only as a whole token: ``861234...`` inside a longer digit run, or a
    digest inside a longer hex string, is some other value. Chinese text has no spaces
    between words, so only ASCII letters and digits make a token longer."""
    before = text[start - 1] if start > 0 else ""
    after = text[end + 1] if end + 1 < len(text) else ""
    first, last = text[start], text[end]
    if _word(before) and _word(first):
        return False
    return not (_word(after) and _word(last))


def _aligned(text: str, start: int) -> bool:
    """Whether a UTF-16BE hex match begins on a character of its hex run (a multiple of
    four hex digits from the run's start): watch protocols send a whole message as one hex
    run, so the name sits inside it, never bounded, and only alignment keeps its match from
    being a coincidence across two characters."""
    begin = start
    while begin > 0 and start - begin < UTF16_LOOKBACK and text[begin - 1] in _HEX:
        begin -= 1
    return (start - begin) % 4 == 0


_HEX = frozenset("0123456789abcdef")


def _word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()
