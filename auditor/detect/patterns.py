"""Validated patterns: personal data nobody seeded, recognised by a checksum or a registry.

A 15-digit number is an IMEI only when its Luhn digit checks out and its first two digits
are a GSMA reporting body (3GPP TS 23.003 6.2); an 18-character string is a resident ID
only with a valid GB 11643-1999 check character. Shapes too common to prove anything on
their own (a 12-hex MAC, a phone number, a 15-digit IMSI outside a known home network)
need the key name to agree. The key name otherwise only raises the confidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import phonenumbers

from auditor.detect import keys
from auditor.limits import MAX_PATH
from auditor.memo import Memo
from auditor.model import DEFAULT_REGION, Field

CONFIDENCE = 0.8
CONFIDENCE_WITH_KEY = 0.9

# GSMA reporting-body identifiers: the first two digits of every allocated IMEI TAC.
IMEI_RBI = frozenset({"01", "10", "30", "33", "35", "44", "45", "49", "50", "51", "52",
                      "53", "54", "86", "91", "98", "99"})

# ITU-T E.212 mobile country codes in use.
_MCC_TEXT = """
202 204 206 208 212 213 214 216 218 219 220 221 222 225 226 228 230 231 232 234 235 238 240
242 244 246 247 248 250 255 257 259 260 262 266 268 270 272 274 276 278 280 282 283 284 286
288 289 290 292 293 294 295 297 302 308 310 311 312 313 314 315 316 330 332 334 338 340 342
344 346 348 350 352 354 356 358 360 362 363 364 365 366 368 370 372 374 376 400 401 402 404
405 406 410 412 413 414 415 416 417 418 419 420 421 422 424 425 426 427 428 429 430 431 432
434 436 437 438 440 441 450 452 454 455 456 457 460 461 466 467 470 472 502 505 510 514 515
520 525 528 530 536 537 539 540 541 542 543 544 545 546 547 548 549 550 551 552 553 554 555
602 603 604 605 606 607 608 609 610 611 612 613 614 615 616 617 618 619 620 621 622 623 624
625 626 627 628 629 630 631 632 633 634 635 636 637 638 639 640 641 642 643 645 646 647 648
649 650 651 652 653 654 655 657 658 659 702 704 706 708 710 712 714 716 722 724 730 732 734
736 738 740 744 746 748 750 901
"""
MCC: frozenset[int] = frozenset(int(c) for c in re.findall(r"\d{3}", _MCC_TEXT))

# MCC+MNC of home networks whose IMSIs are recognised without a key name (the watches this
# tool audits carry these SIMs). Any other IMSI needs a key that says imsi.
HOME_NETWORKS = frozenset({
    "46000", "46001", "46002", "46003", "46004", "46005", "46006", "46007", "46008", "46009",
    "46011", "46015", "46020", "45400", "45403", "45406", "46692", "46697",
})

# GB 11643-1999: weights of the 17 digits, and the check character for sum mod 11.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_DIGITS = re.compile(r"(?<![\dA-Za-z])\d{15,22}[Ff]?(?![\dA-Za-z])")
_RESIDENT_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
_MAC_SEP = re.compile(r"(?<![0-9A-Fa-f:.-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}"
                      r"(?:\1[0-9A-Fa-f]{2}){4}(?![0-9A-Fa-f]|[:-][0-9A-Fa-f])")
_SIGNAL_AFTER = re.compile(r"\s*[,|;]\s*-?\d{1,3}(?![\d.:A-Fa-f-])")
_MAC_BARE = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{12}(?![0-9A-Za-z])")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
                    r"(?![\w-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\d[\d -]{5,17}\d(?![\w])")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def is_imei(v: str) -> bool:
    return len(v) == 15 and v[:2] in IMEI_RBI and luhn(v) and not keys.is_placeholder(v)


def is_iccid(v: str) -> bool:
    """ITU-T E.118: 89, country code, issuer, account, Luhn digit (a final F is filler)."""
    digits = v.rstrip("Ff")
    return (18 <= len(digits) <= 20 and digits.startswith("89") and digits.isdigit()
            and luhn(digits))


def is_imsi(v: str, key_says: bool) -> bool:
    if not (len(v) == 15 and v.isdigit()) or keys.is_placeholder(v):
        return False
    if int(v[:3]) not in MCC:
        return False
    return key_says or v[:5] in HOME_NETWORKS


def is_resident_id(v: str) -> bool:
    if not _RESIDENT_ID.fullmatch(v):
        return False
    total = sum(int(d) * w for d, w in zip(v[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != v[17].upper():
        return False
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= 2100


def valid_phone(text: str, region: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or len(set(digits)) <= 2:
        return False
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(num)


# --------------------------------------------------------------------------- finders

Hit = tuple[str, str, float]  # category, value, confidence


def _conf(key_says: bool) -> float:
    return CONFIDENCE_WITH_KEY if key_says else CONFIDENCE


@dataclass(frozen=True)
class PathKeys:
    """What a field's path says to the finders: its key, the categories the key names and
    whether a key along the path says Wi-Fi, e-mail, phone or contacts. These are functions
    of the path alone, and a device sends the same paths message after message, so they are
    worked out once per path (``path_keys``) instead of once per finder per field."""

    key: str
    lexicon: tuple[str, ...]  # KEY_LEXICON categories the key names
    wifi_key: bool  # a key along the path says Wi-Fi (the field's own MAC key aside)
    email_key: bool
    phone_key: bool
    contact_ctx: bool  # the key or an enclosing one says contacts
    in_list: bool
    # No key along the path says anything (no category, phone, contacts, Wi-Fi or MAC): a
    # value shorter than QUIET_BELOW without an ``@`` under it has no reading (``may_find``)
    quiet: bool = False

    @property
    def mac_key(self) -> bool:
        return "identifier.mac" in self.lexicon


EMAIL_KEYS = frozenset({"email", "mail", "emailaddress", "youxiang"})
# Paths whose PathKeys are remembered (``auditor.memo``); detection bounds paths to
# ``limits.MAX_PATH`` characters first, and a longer path is worked out and not kept.
PATH_MEMO = 4096
_PATHS: Memo[str, PathKeys] = Memo(PATH_MEMO)


# ``_PATHS.get`` without a Python call around it, for a loop that asks once per field
remembered_path_keys = _PATHS.lookup
# See ``PathKeys.quiet``: the shortest value ``may_find`` may say yes to under a quiet path
# (a MAC with separators, twelve characters; an ``@`` aside).
QUIET_BELOW = 12


def path_keys(path: str) -> PathKeys:
    """The PathKeys of a path, remembered (the same answer: ``_path_keys`` is pure)."""
    facts = _PATHS.get(path)
    if facts is None:
        facts = _path_keys(path)
        if len(path) <= MAX_PATH:
            _PATHS.put(path, facts)
    return facts


def _path_keys(path: str) -> PathKeys:
    key = keys.key_of(path)
    lexicon = keys.KEY_LEXICON.get(keys.matches(key, keys.KEY_LEXICON), ())
    # the field's own key wins over its words: ``wifiMac`` is the device's Wi-Fi MAC
    outer = path.rsplit(".", 1)[0] if "identifier.mac" in lexicon else path
    wifi_key = keys.any_segment(outer, keys.WIFI_KEYS)
    phone_key = bool(keys.matches(key, keys.PHONE_KEYS))
    contact_ctx = keys.any_segment(path, keys.CONTACT_KEYS)
    return PathKeys(key=key, lexicon=lexicon, wifi_key=wifi_key,
                    email_key=bool(keys.matches(key, EMAIL_KEYS)), phone_key=phone_key,
                    contact_ctx=contact_ctx, in_list=keys.in_list(path),
                    quiet=not (lexicon or wifi_key or phone_key or contact_ctx))


def _numbers(f: Field, at: PathKeys) -> Iterator[Hit]:
    """IMEI, ICCID and IMSI: long digit runs that pass their checks."""
    lexicon = at.lexicon
    for m in _DIGITS.finditer(f.value):
        v = m.group(0)
        if is_imei(v):
            yield "identifier.imei", v, _conf("identifier.imei" in lexicon)
        elif is_iccid(v):
            yield "identifier.iccid", v, _conf("identifier.iccid" in lexicon)
        elif is_imsi(v, "identifier.imsi" in lexicon):
            yield "identifier.imsi", v, _conf("identifier.imsi" in lexicon)


def _resident_ids(f: Field, at: PathKeys) -> Iterator[Hit]:
    says = "identity.national_id" in at.lexicon
    for m in _RESIDENT_ID.finditer(f.value):
        if is_resident_id(m.group(0)):
            yield "identity.national_id", m.group(0), _conf(says)


def _macs(f: Field, at: PathKeys) -> Iterator[Hit]:
    """A MAC is a Wi-Fi BSSID when a key along the path says Wi-Fi, the field lists several,
    or a signal strength follows it (a scan result: ``mac,-60``, ``mac|97``); otherwise the
    device's own. Bare 12-hex runs count only under a MAC or Wi-Fi key: a
    random nonce has that shape too."""
    matches = list(_MAC_SEP.finditer(f.value))
    found = [m.group(0) for m in matches]
    scanned = any(_SIGNAL_AFTER.match(f.value, m.end()) for m in matches)
    mac_key, wifi_key = at.mac_key, at.wifi_key
    if wifi_key or mac_key:
        found += [m.group(0) for m in _MAC_BARE.finditer(f.value)]
    found = [v for v in found if not keys.is_placeholder(v) and not _multicast(v)]
    category = ("location.wifi" if wifi_key or scanned or len(set(found)) > 1
                else "identifier.mac")
    for v in found:
        yield category, v, _conf(wifi_key or mac_key)


def _multicast(mac: str) -> bool:
    return bool(int(re.sub(r"[^0-9A-Fa-f]", "", mac)[:2], 16) & 1)


def _emails(f: Field, at: PathKeys) -> Iterator[Hit]:
    for m in _EMAIL.finditer(f.value):
        yield "identity.email", m.group(0), _conf(at.email_key)


def _phones(f: Field, at: PathKeys, region: str) -> Iterator[Hit]:
    """Unseeded numbers only under a phone key: a contact's when the key or an enclosing one
    says contacts, or the field sits in a list of entries; the child's own otherwise."""
    phone_key, contact_ctx = at.phone_key, at.contact_ctx
    if not (phone_key or contact_ctx):
        return
    found = [m.group(0) for m in _PHONE.finditer(f.value) if valid_phone(m.group(0), region)]
    if contact_ctx or (phone_key and at.in_list) or len(found) > 1:
        category = "contacts.entry"
    else:
        category = "identity.phone"
    for v in found:
        yield category, v, CONFIDENCE_WITH_KEY


FINDERS: tuple[Callable[[Field, PathKeys], Iterator[Hit]], ...] = (
    _numbers, _resident_ids, _macs, _emails,
)


def _worth_a_look(value: str, digits: int, at: PathKeys) -> tuple[bool, ...]:
    """Cheap guards, one per finder in FINDERS order, so the common field (a short word, a
    small number) skips the regexes and key lookups it cannot match: this runs on every
    field of every message on the proxy path. ``digits``: how many the value has. A MAC
    needs a ``:`` or ``-`` between its octets unless a MAC or Wi-Fi key lets a bare one
    count (``_MAC_SEP``, ``_MAC_BARE``)."""
    return (digits >= 15, digits >= 17,
            len(value) >= 12 and (at.wifi_key or at.mac_key or ":" in value or "-" in value),
            "@" in value)


def may_find(value: str, at: PathKeys) -> bool:
    """False only when ``find`` finds nothing in ``value`` under a path whose keys say
    ``at``: the guards of ``_worth_a_look`` and ``_phones``, told by the value's length and a
    few characters instead of its digits (a value of n characters has at most n). Most
    fields of a message (counters, timestamps, coordinates, words) are told here, so a
    detector need not remember them to skip them."""
    n = len(value)
    if n >= 15 or "@" in value:  # an IMEI, ICCID, IMSI or resident ID; an e-mail
        return True
    if n >= 7 and (at.phone_key or at.contact_ctx):
        return True
    return n >= 12 and (at.wifi_key or at.mac_key or ":" in value or "-" in value)


def find(f: Field, region: str = DEFAULT_REGION) -> Iterator[Hit]:
    """Every validated pattern in one field."""
    if keys.is_placeholder(f.value):
        return
    at = path_keys(f.path)
    digits = sum(map(str.isdigit, f.value))
    for finder, worth in zip(FINDERS, _worth_a_look(f.value, digits, at), strict=True):
        if worth:
            yield from finder(f, at)
    if digits >= 7:  # the shortest number _PHONE accepts
        yield from _phones(f, at, region)
