"""Known values: the identifiers the lab seeded, found in every plausible form.

One Aho-Corasick automaton per session over all variants of all seeded values (DESIGN.md
"detect" 1): case and separator variants, phone formats, dates, and the MD5 / SHA-1 /
SHA-256 / SHA-512 digests of each normalised form. Matching is on the lowercased field
value, so upper-case digests and identifiers match too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import ahocorasick
import phonenumbers

from auditor.categories import CHILD_KEYS, IDENTIFIER_KEYS
from auditor.model import Detection, Field
from auditor.profile import Profile

MIN_LEN = 4  # shorter variants would match all over the place
DIGESTS: tuple[str, ...] = ("md5", "sha1", "sha256", "sha512")
CONFIDENCE = 0.99


@dataclass(frozen=True)
class Seed:
    category: str
    profile_key: str  # where in the profile it came from: identifiers.imei, contacts[1].phone
    value: str


@dataclass(frozen=True)
class Variant:
    seed: Seed
    layer: str  # "" for the value as is (or re-formatted); otherwise md5, sha256, ...


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
            f"{y}年{int(mo)}月{int(d)}日"}


def _digests(form: str) -> Iterator[tuple[str, str]]:
    raw = form.encode("utf-8")
    for name in DIGESTS:
        yield name, hashlib.new(name, raw).hexdigest()


class KnownValues:
    """The automaton and what each of its keys stands for."""

    def __init__(self, variants: dict[str, list[Variant]]) -> None:
        self._variants = variants
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
                _add(table, form.lower(), Variant(seed, ""))
                for name, digest in _digests(form):
                    _add(table, digest, Variant(seed, name))
        return cls(table)

    def __len__(self) -> int:
        return len(self._variants)

    def scan(self, tx_id: int, fields: Iterable[Field]) -> Iterator[Detection]:
        if not self._variants:
            return
        for f in fields:
            text = f.value.lower()
            for end, (key, variants) in self._auto.iter(text):
                start = end - len(key) + 1
                if not _bounded(text, start, end):
                    continue
                for v in variants:
                    chain = (*f.encoding, v.layer) if v.layer else f.encoding
                    yield Detection(tx_id, v.seed.category, "known", f.location, f.path, chain,
                                    v.seed.profile_key, f.value[start:end + 1], CONFIDENCE)


def _add(table: dict[str, list[Variant]], key: str, variant: Variant) -> None:
    if len(key) < MIN_LEN:
        return
    bucket = table.setdefault(key, [])
    if not any(v.seed == variant.seed for v in bucket):
        bucket.append(variant)


def _bounded(text: str, start: int, end: int) -> bool:
    """A match counts only as a whole token: ``861234...`` inside a longer digit run, or a
    digest inside a longer hex string, is some other value."""
    before = text[start - 1] if start > 0 else ""
    after = text[end + 1] if end + 1 < len(text) else ""
    first, last = text[start], text[end]
    if before and first.isalnum() and before.isalnum():
        return False
    return not (after and last.isalnum() and after.isalnum())
