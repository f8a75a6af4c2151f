"""Known values: the identifiers the lab seeded, found in every plausible form.

One Aho-Corasick automaton per session over all variants of all seeded values (DESIGN.md
"detect" 1): case and separator variants, phone formats, dates, and the MD5 / SHA-1 /
SHA-256 / SHA-512 digests of each normalised form, and the base64 and hex of each form and
digest. Matching is on the lowercased field value, so upper-case digests and identifiers
match too (base64 keys are lowercased alike: a collision across case needs a 6+ character
base64 string equal to a seeded one but for case, which random data does not produce).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import ahocorasick
import phonenumbers

from auditor.categories import CHILD_KEYS, IDENTIFIER_KEYS
from auditor.model import Detection, Field
from auditor.profile import Profile

MIN_LEN = 4  # UTF-8 bytes; shorter variants would match all over the place
DIGESTS: tuple[str, ...] = ("md5", "sha1", "sha256", "sha512")
# How a form or a digest may be written out: layer name -> bytes to text (all of them kept).
WRITINGS: dict[str, tuple[Callable[[bytes], str], ...]] = {
    "base64": (lambda b: base64.b64encode(b).decode(),
               lambda b: base64.b64encode(b).decode().rstrip("="),
               lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    "hex": (lambda b: b.hex(),),
}
CONFIDENCE = 0.99
WINDOW = 64 * 1024  # characters of a value handed to the automaton at once


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
    elif key == "phone" or seed.category == "contacts.entry" and _looks_phone(v):
        out |= _phone_forms(v, region)
    elif key == "birthdate":
        out |= _date_forms(v)
    elif key == "iccid" and v.isdigit():
        out |= {v + "F", v + "f"}  # E.118: an odd-length ICCID is padded with an F nibble
    elif key == "imei" and len(v) == 15 and v.isdigit():
        out.add(v[:14])  # 3GPP TS 23.003 6.2.1: the IMEI without its Luhn digit, as many send it
    elif " " in v:
        out |= {v.replace(" ", ""), v.replace(" ", "_"), v.replace(" ", "+")}
    return {f for f in out if f}


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
        num = phonenumbers.parse(v, region or "CN")
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


def written(form: str) -> Iterator[tuple[tuple[str, ...], str]]:
    """(layers, text) for every way a device may send one form: its base64 and hex, each
    digest in hex (matched in either case) and in base64, outermost layer first."""
    raw = form.encode("utf-8")
    for layer, writers in WRITINGS.items():
        for write in writers:
            yield (layer,), write(raw)
    for name in DIGESTS:
        digest = hashlib.new(name, raw)
        yield (name,), digest.hexdigest()
        for write in WRITINGS["base64"]:
            yield ("base64", name), write(digest.digest())


class KnownValues:
    """The automaton and what each of its keys stands for."""

    def __init__(self, variants: dict[str, list[Variant]]) -> None:
        self._variants = variants
        self._longest = max(map(len, variants), default=0)
        self._auto = ahocorasick.Automaton()
        for key, vs in variants.items():
            self._auto.add_word(key, (key, vs))
        if variants:
            self._auto.make_automaton()

    @classmethod
    def from_profile(cls, profile: Profile) -> KnownValues:
        region = profile.jurisdiction or "CN"
        table: dict[str, list[Variant]] = {}
        for seed in seeds(profile):
            for form in forms(seed, region):
                _add(table, form.lower(), Variant(seed, ()))
                for layers, text in written(form):
                    _add(table, text.lower(), Variant(seed, layers))
        return cls(table)

    def __len__(self) -> int:
        return len(self._variants)

    def _matches(self, text: str) -> Iterator[tuple[int, tuple[str, list[Variant]]]]:
        """The automaton's matches in windows: pyahocorasick copies the whole text it is given
        (four bytes a character), so a multi-MB value is fed a window at a time. Windows
        overlap by the longest key less one, and a match counts in the window it ends in."""
        if len(text) <= WINDOW:
            yield from self._auto.iter(text)
            return
        overlap = self._longest - 1
        for begin in range(0, len(text), WINDOW):
            first = max(0, begin - overlap)
            for end, hit in self._auto.iter(text[first:begin + WINDOW]):
                if first + end >= begin:
                    yield first + end, hit

    def scan(self, tx_id: int, fields: Iterable[Field]) -> Iterator[Detection]:
        if not self._variants:
            return
        for f in fields:
            text = f.value.lower()
            spans: list[tuple[int, int, Variant]] = []
            for end, (key, variants) in self._matches(text):
                start = end - len(key) + 1
                if _bounded(text, start, end):
                    spans += [(start, end, v) for v in variants]
            # The longest match of a seed stands for the shorter ones inside it: the padded
            # base64, the ``+86`` number around the national one.
            spans.sort(key=lambda s: s[0] - s[1])
            kept: list[tuple[int, int, Variant]] = []
            for start, end, v in spans:
                if any(k[2].seed == v.seed and k[0] <= start and end <= k[1] for k in kept):
                    continue
                kept.append((start, end, v))
                yield Detection(tx_id, v.seed.category, "known", f.location, f.path,
                                (*f.encoding, *v.layers), v.seed.profile_key,
                                f.value[start:end + 1], CONFIDENCE)


def _add(table: dict[str, list[Variant]], key: str, variant: Variant) -> None:
    if len(key.encode("utf-8")) < MIN_LEN:  # bytes: a two-character Chinese name is specific
        return
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


def _word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()
