"""Device profile and consent plan (DESIGN.md "Contracts"): load, validate, clear errors.

This is the edge that reads the lab's files; the types it builds (``Profile``,
``ConsentPlan`` and their parts) live in ``auditor.model``, which the core imports instead.

Both files are read as YAML *nodes* (``yaml.compose``), never constructed objects, for two
reasons: every error can name its line, and every value keeps the text the lab wrote. A
constructed document would turn an IMEI into an int, ``0123`` into 83 (YAML 1.1 octal),
``+8613800138000`` into a number and ``jurisdiction: NO`` (Norway) into ``False``.

A seeded value is checked twice. Its *format* (15 digits for an IMEI) always. Then whether
it is *plausible*: an IMEI's and an ICCID's Luhn digit, an IMSI's country code, a phone
number's numbering plan. A value failing those is nearly always a typo, and a typo is worse
than an error: the value and its digests are looked for as written, and the leak of the
real one is missed. Some devices do report irregular values (test SIMs, engineering IMEIs,
lab numbers): the profile's ``irregular:`` lists the keys whose plausibility checks to skip,
for example ``irregular: [identifiers.imei, contacts.phone]``.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

import phonenumbers
import yaml

from auditor.addresses import ip_text
from auditor.categories import (
    ALL_DISCLOSED,
    CATEGORIES,
    CHILD_KEYS,
    FAMILIES,
    IDENTIFIER_KEYS,
    expand,
    is_category_spec,
)
from auditor.detect import patterns
from auditor.model import (
    DEFAULT_REGION,
    ROLES,
    THIRD_PARTY,
    Cell,
    ConsentEvent,
    ConsentPlan,
    Contact,
    Credential,
    Device,
    Disclosure,
    Location,
    Organisation,
    Profile,
    Signal,
)
from auditor.store import printable


class ConfigError(Exception):
    """A user's file is wrong. ``str(err)`` is the one line the CLI prints before exiting 2:
    ``profile.yaml, line 7: identifiers.imei "12345" is not 15 digits``."""


# --------------------------------------------------------------------------- public API


def load_profile(path: str, *, plausible: bool = True) -> Profile:
    """The device profile at ``path``; any mistake in it raises a one-line ConfigError.

    ``plausible=False`` skips the checksum, country-code and numbering-plan checks: for the
    copy a finished session keeps, which was taken as it stands when the session was made
    (by an older version, perhaps) and is the evidence the report must be rebuilt from."""
    root = _read(path)
    with _located(path):
        sections = _mapping(root, "", _PROFILE_SECTIONS)
        parsed = {key: _PROFILE_SECTIONS[key](node, key) for key, node in sections.items()}
        if plausible:
            _check_plausible(sections, parsed.get("irregular", frozenset()),
                             parsed.get("jurisdiction", ""))
    return Profile(**parsed, source=path)


def load_consent_plan(path: str) -> ConsentPlan:
    """The consent plan at ``path``, events sorted by time; mistakes raise ConfigError."""
    root = _read(path)
    with _located(path):
        sections = _mapping(root, "", _PLAN_SECTIONS)
        parsed = {key: _PLAN_SECTIONS[key](node, key) for key, node in sections.items()}
    if "events" in parsed:  # sorted() is stable: simultaneous events keep the file's order
        parsed["events"] = tuple(sorted(parsed["events"], key=lambda event: event.ts))
    return ConsentPlan(**parsed, source=path)


# --------------------------------------------------------------------------- reading


class _Invalid(Exception):
    """A mistake at a node; ``_located`` adds the file name and turns it into ConfigError."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1
        self.message = message


def _fail(node: yaml.Node, path: str, problem: str) -> NoReturn:
    raise _Invalid(node, f"{path} {problem}" if path else problem)


@contextmanager
def _located(path: str) -> Iterator[None]:
    """Turns an ``_Invalid`` raised while walking the nodes into the user-facing one line."""
    try:
        yield
    except _Invalid as err:
        raise _error(path, err.line, err.message) from None


def _error(path: str, line: int | None, message: str) -> ConfigError:
    """One line, whatever the message holds: the CLI prints it as-is and exits 2."""
    where = f"{path}, line {line}" if line is not None else path
    # one line, and text any terminal or log can write: a lone surrogate (YAML's "\ud800"
    # escape allows one) is shown as an escape
    return ConfigError(printable(re.sub(r"\s*[\r\n]+\s*", " ", f"{where}: {message}")))


def _read(path: str) -> yaml.Node:
    """The file's single YAML document as a node tree, or ConfigError naming what went wrong."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise _error(path, None, "file not found") from None
    except IsADirectoryError:
        raise _error(path, None, "is a directory, not a file") from None
    except OSError as err:
        raise _error(path, None, f"cannot be read ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise _error(path, line, "is not UTF-8 text") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = ", ".join(part for part in (err.context, err.problem) if part)
        raise _error(path, mark.line + 1 if mark else None, f"is not valid YAML: {what}") from None
    except yaml.reader.ReaderError as err:
        line = text[: err.position].count("\n") + 1
        raise _error(path, line, f"is not valid YAML: {err.reason}") from None
    except yaml.YAMLError as err:  # any other PyYAML error: still one line, never a traceback
        raise _error(path, None, f"is not valid YAML: {err}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise _error(path, None, "is nested too deeply to be a profile or consent plan "
                     "(lists or mappings inside each other hundreds of levels down)") from None
    if root is None:
        raise _error(path, 1, "is empty; expected a mapping of keys (write {} for none)")
    if not isinstance(root, yaml.MappingNode):
        raise _error(path, root.start_mark.line + 1, "top level is not a mapping of keys")
    return root


# --------------------------------------------------------------------------- node helpers

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(text: str, limit: int = 60) -> str:
    """A value quoted for a message: escaped so it stays on one line, cut if it is long."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return json.dumps(text, ensure_ascii=False)


def _kind(node: yaml.Node) -> str:
    """What a node is, for "expected ..." messages."""
    if isinstance(node, yaml.SequenceNode):
        return "is a list"
    if isinstance(node, yaml.MappingNode):
        return "is a mapping"
    if node.tag == _NULL and node.style is None:
        return "is empty"
    return f"is {_show(node.value)}"


def _allowed(names: Any) -> str:
    return ", ".join(names)


def _mapping(node: yaml.Node, path: str, allowed: Mapping[str, Any]) -> dict[str, yaml.Node]:
    """Key -> value node of a YAML mapping; non-string, unknown and repeated keys are errors.

    A repeated key is an error rather than last-one-wins: a profile that lists ``imei`` twice
    almost always meant two values, and silently dropping one would miss a leak.
    """
    if not isinstance(node, yaml.MappingNode):
        _fail(node, path or "top level", f"{_kind(node)}; expected a mapping of keys")
    out: dict[str, yaml.Node] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            _fail(key_node, path or "top level", "has a key that is not a plain name")
        key = key_node.value
        where = _join(path, key)
        if key not in allowed:
            hint = _did_you_mean(key, allowed)
            _fail(key_node, where, f"is not a known key{hint} (allowed: {_allowed(allowed)})")
        if key in out:
            _fail(key_node, where, f"appears twice (first on line {lines[key]})")
        out[key] = value_node
        lines[key] = key_node.start_mark.line + 1
    return out


def _did_you_mean(word: str, choices: Any) -> str:
    """A hint for a typo; ties go to the choice sharing most letters (``imie`` -> imei)."""
    close = difflib.get_close_matches(word, list(choices), n=3)
    if not close:
        return ""
    best = max(close, key=lambda c: (sum((Counter(word) & Counter(c)).values()), -close.index(c)))
    return f"; did you mean {best}?"


def _require(node: yaml.Node, path: str, fields: Mapping[str, yaml.Node], key: str,
             why: str = "") -> yaml.Node:
    if key not in fields:
        _fail(node, _join(path, key), f"is missing{why}")
    return fields[key]


def _scalar(node: yaml.Node, path: str) -> str:
    """The text of a scalar exactly as written (quoted or not), never its YAML-typed value."""
    if not isinstance(node, yaml.ScalarNode):
        _fail(node, path, f"{_kind(node)}; expected a single value")
    if node.tag == _NULL and node.style is None:
        _fail(node, path, "is empty")
    return node.value


def _nonempty(node: yaml.Node, path: str) -> str:
    text = _scalar(node, path)
    if not text.strip():
        _fail(node, path, "is empty")
    return text


def _items(node: yaml.Node, path: str) -> list[tuple[yaml.Node, str]]:
    """(node, path) of each entry of a list, or of the one value where a list is allowed."""
    if isinstance(node, yaml.SequenceNode):
        if not node.value:
            _fail(node, path, "is an empty list")
        return [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
    return [(node, path)]


def _list(node: yaml.Node, path: str) -> list[tuple[yaml.Node, str]]:
    """Entries of a value that must be a list (of mappings, typically)."""
    if not isinstance(node, yaml.SequenceNode):
        _fail(node, path, f"{_kind(node)}; expected a list")
    return _items(node, path)


def _texts(node: yaml.Node, path: str) -> tuple[str, ...]:
    """One non-empty string or a list of them."""
    return tuple(_nonempty(item, where) for item, where in _items(node, path))


def _flag(node: yaml.Node, path: str) -> bool:
    text = _scalar(node, path)
    if node.tag != _BOOL or node.style is not None:
        _fail(node, path, f"{_show(text)} is not true or false")
    return yaml.constructor.SafeConstructor.bool_values[text.lower()]


def _number(node: yaml.Node, path: str) -> float:
    """A finite number; quoted numbers are accepted, YAML's ``.inf`` and ``.nan`` are not."""
    text = _scalar(node, path)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if node.tag == _BOOL or not math.isfinite(value):
        _fail(node, path, f"{_show(text)} is not a number")
    return value


# The most digits a whole number may have: an NR cell id (36 bits) has 11. Python refuses to
# read an integer of more than 4300 digits at all, and no tower's number comes near this.
_WHOLE_DIGITS = 18


def _whole(node: yaml.Node, path: str) -> int:
    """A non-negative integer read as decimal digits: ``mnc: 01`` is 1, not YAML-octal."""
    text = _scalar(node, path)
    if not re.fullmatch(r"\d+", text):
        _fail(node, path, f"{_show(text)} is not a whole number")
    if len(text.lstrip("0")) > _WHOLE_DIGITS:
        _fail(node, path, f"{_show(text)} is too large (more than {_WHOLE_DIGITS} digits)")
    return int(text)


# --------------------------------------------------------------------------- profile values

_MAC = re.compile(r"[0-9A-Fa-f]{2}([:.-]?)[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}"
                  r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")
_PHONE_CHARS = re.compile(r"\+?[\d\s().-]+")
_DOMAIN = re.compile(r"[\w-]+(\.[\w-]+)*\.?")


def _is_mac(text: str) -> bool:
    return bool(_MAC.fullmatch(text))


def _is_phone(text: str) -> bool:
    return bool(_PHONE_CHARS.fullmatch(text)) and 6 <= sum(c.isdigit() for c in text) <= 15


def _is_iso_date(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _digits(low: int, high: int) -> Callable[[str], bool]:
    pattern = re.compile(rf"\d{{{low},{high}}}")
    return lambda text: bool(pattern.fullmatch(text))


# Format checks for seeded values: key -> (accepts the text, what is wrong when it does not).
# Keys absent here take any non-empty text (serial numbers and names have no fixed shape).
_FORMATS: dict[str, tuple[Callable[[str], bool], str]] = {
    "imei": (_digits(15, 15), "is not 15 digits"),
    "imsi": (_digits(14, 15), "is not 14-15 digits"),
    # ITU-T E.118: 18-22 characters; some SIMs print a trailing F filler nibble.
    "iccid": (lambda t: bool(re.fullmatch(r"\d{17,21}[\dFf]", t)),
              "is not 18-22 digits (a final F is allowed)"),
    "mac": (_is_mac, "is not a MAC address (six hex octets, : - . or no separators)"),
    "phone": (_is_phone, "is not a phone number (6-15 digits; + spaces - ( ) allowed)"),
    "birthdate": (_is_iso_date, "is not an ISO date (YYYY-MM-DD)"),
    "email": (lambda t: "@" in t, "is not an e-mail address (no @)"),
}


def _checked(node: yaml.Node, path: str, kind: str) -> str:
    text = _nonempty(node, path)
    accepts, problem = _FORMATS.get(kind, (None, ""))
    if accepts is not None and not accepts(text):
        _fail(node, path, f"{_show(text)} {problem}")
    return text


def _seeded(allowed: Mapping[str, str]) -> Callable[[yaml.Node, str], dict[str, tuple[str, ...]]]:
    """Reader for ``identifiers`` / ``child``: key -> one value or a list, each format-checked."""
    def read(node: yaml.Node, path: str) -> dict[str, tuple[str, ...]]:
        return {key: tuple(_checked(item, where, key)
                           for item, where in _items(value, _join(path, key)))
                for key, value in _mapping(node, path, allowed).items()}
    return read


def _ips(node: yaml.Node, path: str) -> tuple[str, ...]:
    """Addresses in ``ipaddress``'s canonical form, so they compare equal to a pcap's."""
    out = []
    for item, where in _items(node, path):
        text = _nonempty(item, where)
        try:
            out.append(ip_text(ipaddress.ip_address(text.strip())))
        except ValueError:
            _fail(item, where, f"{_show(text)} is not an IP address")
    return tuple(out)


def _records(cls: type, fields: Mapping[str, Callable[[yaml.Node, str], Any]], *,
             need_one: bool = False) -> Callable[[yaml.Node, str], Any]:
    """Reader building ``cls`` from a mapping whose keys are read by ``fields``."""
    def read(node: yaml.Node, path: str) -> Any:
        values = {key: fields[key](value, _join(path, key))
                  for key, value in _mapping(node, path, fields).items()}
        if need_one and not any(values.values()):
            _fail(node, path, f"has none of {_allowed(fields)}")
        return cls(**values)
    return read


def _each(read: Callable[[yaml.Node, str], Any]) -> Callable[[yaml.Node, str], tuple[Any, ...]]:
    return lambda node, path: tuple(read(item, where) for item, where in _list(node, path))


_read_device = _records(Device, {
    "name": _scalar, "kind": _scalar, "firmware": _scalar, "ca_trusted": _flag, "ip": _ips,
})
_read_contact = _records(Contact, {
    "name": _scalar, "phone": lambda node, path: _checked(node, path, "phone"),
}, need_one=True)
_read_credential = _records(Credential, {"username": _scalar, "password": _scalar}, need_one=True)


def _coordinate(limit: float) -> Callable[[yaml.Node, str], float]:
    def read(node: yaml.Node, path: str) -> float:
        value = _number(node, path)
        if not -limit <= value <= limit:
            _fail(node, path, f"{_show(node.value)} is not between -{limit:g} and {limit:g}")
        return value
    return read


def _code(high: int) -> Callable[[yaml.Node, str], int]:
    def read(node: yaml.Node, path: str) -> int:
        value = _whole(node, path)
        if value > high:
            _fail(node, path, f"{_show(node.value)} is larger than {high}")
        return value
    return read


# 3GPP TS 23.003: MCC and MNC are 3 digits at most; LAC/TAC and CID vary by RAT, so unbounded.
_CELL_FIELDS: dict[str, Callable[[yaml.Node, str], int]] = {
    "mcc": _code(999), "mnc": _code(999), "lac": _whole, "tac": _whole, "cid": _whole,
}


def _read_cell(node: yaml.Node, path: str) -> Cell:
    """One tower; ``tac`` (LTE/NR) is accepted as another name for ``lac``."""
    fields = _mapping(node, path, _CELL_FIELDS)
    if "lac" in fields and "tac" in fields:
        _fail(fields["tac"], _join(path, "tac"), "repeats lac; give one of lac or tac")
    area = "tac" if "tac" in fields else "lac"
    values = {key: _CELL_FIELDS[key](_require(node, path, fields, key, why), _join(path, key))
              for key, why in (("mcc", ""), ("mnc", ""), (area, " (or tac)"), ("cid", ""))}
    return Cell(mcc=values["mcc"], mnc=values["mnc"], lac=values[area], cid=values["cid"])


def _wifi(node: yaml.Node, path: str) -> tuple[str, ...]:
    return tuple(_checked(item, where, "mac") for item, where in _items(node, path))


_LOCATION_FIELDS: dict[str, Callable[[yaml.Node, str], Any]] = {
    "lat": _coordinate(90), "lon": _coordinate(180), "cell": _each(_read_cell), "wifi": _wifi,
}


def _read_location(node: yaml.Node, path: str) -> Location:
    fields = _mapping(node, path, _LOCATION_FIELDS)
    for key in ("lat", "lon"):
        _require(node, path, fields, key, " (a location needs both lat and lon)")
    return Location(**{key: _LOCATION_FIELDS[key](value, _join(path, key))
                       for key, value in fields.items()})


def _domains(node: yaml.Node, path: str) -> tuple[str, ...]:
    out = []
    for item, where in _items(node, path):
        text = _nonempty(item, where).strip().lower()
        if not _DOMAIN.fullmatch(text):
            _fail(item, where, f"{_show(item.value)} is not a domain name (like acme.example)")
        out.append(text.rstrip("."))
    return tuple(out)


def _block(text: str) -> str | None:
    """An IP address or CIDR block in ``ipaddress``'s canonical text; None when it is not one.
    A block with host bits set (``203.0.113.7/24``) is refused: the lab meant either the
    address or the block, and guessing which would widen or narrow the maker."""
    text = text.strip().strip("[]")
    try:
        return ip_text(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        return str(ipaddress.ip_network(text))
    except ValueError:
        return None


_BLOCK_HELP = "an IP address or CIDR block (like 203.0.113.0/24 or 2001:db8::/32)"


def _addresses(node: yaml.Node, path: str) -> tuple[str, ...]:
    out = []
    for item, where in _items(node, path):
        text = _nonempty(item, where)
        block = _block(text)
        if block is None:
            _fail(item, where, f"{_show(text)} is not {_BLOCK_HELP}")
        out.append(block)
    return tuple(out)


def _parties(node: yaml.Node, path: str) -> tuple[str, ...]:
    """``first_party``: the maker's domains and hostnames (subdomains match), and its IP
    addresses and CIDR blocks, which cellular watches reach without any name."""
    out = []
    for item, where in _items(node, path):
        text = _nonempty(item, where).strip().lower()
        block = _block(text)
        if block is not None:
            out.append(block)
        # digits and dots alone are a mistyped address (300.1.2.3), never a domain meant
        elif re.fullmatch(r"[\d./]+", text) or not _DOMAIN.fullmatch(text):
            _fail(item, where, f"{_show(item.value)} is not a domain name (like acme.example) "
                               f"or {_BLOCK_HELP}")
        else:
            out.append(text.rstrip("."))
    return tuple(out)


_ORGANISATION_FIELDS: dict[str, Callable[[yaml.Node, str], Any]] = {
    "name": _nonempty, "addresses": _addresses, "domains": _domains,
}


def _read_organisation(node: yaml.Node, path: str) -> Organisation:
    """One operator the lab knows: a name, and the addresses and domains that are its own."""
    fields = _mapping(node, path, _ORGANISATION_FIELDS)
    _require(node, path, fields, "name")
    if "addresses" not in fields and "domains" not in fields:
        _fail(node, path, "has neither addresses nor domains; give what the organisation owns")
    values = {key: _ORGANISATION_FIELDS[key](value, _join(path, key))
              for key, value in fields.items()}
    values["name"] = values["name"].strip()
    return Organisation(**values)


def _country(node: yaml.Node, path: str) -> str:
    text = _scalar(node, path)  # the node's text: ``NO`` (Norway) is not YAML's false here
    if not re.fullmatch(r"[A-Za-z]{2}", text):
        _fail(node, path, f"{_show(text)} is not a 2-letter ISO country code (like CN)")
    return text.upper()


# --------------------------------------------------------------------------- plausibility
#
# Checks beyond a value's format, run once the whole file is read: a phone number's depends
# on the jurisdiction, and each one on ``irregular:``, wherever in the file those stand. They
# walk the nodes the section readers have already accepted, so only these checks fail here.
# Each returns what is wrong with the text ("" for nothing), given the jurisdiction ("" for
# none); the format check has already passed. The IMEI, ICCID and IMSI checks are the pattern
# detector's own, so that the profile and the detector agree on what a valid one is.


def _imei_problem(text: str, jurisdiction: str) -> str:
    return "" if patterns.luhn(text) else "fails the Luhn check (a typo?)"


def _iccid_problem(text: str, jurisdiction: str) -> str:
    """As the ICCID detector (``patterns.is_iccid``) checks: the Luhn digit over all of an
    18-20 digit ICCID, a final F filler aside. Other lengths have no check digit to test."""
    digits = text.rstrip("Ff")
    if not 18 <= len(digits) <= 20 or patterns.luhn(digits):
        return ""
    return "fails the Luhn check (a typo?)"


def _imsi_problem(text: str, jurisdiction: str) -> str:
    if int(text[:3]) in patterns.MCC:  # the table the IMSI detector checks against
        return ""
    return f"starts with {text[:3]}, which is not a mobile country code (a typo?)"


def _phone_problem(text: str, jurisdiction: str) -> str:
    """``phonenumbers``' verdict on the number read as the detectors read it: a number
    without + in the jurisdiction's numbering plan, or in DEFAULT_REGION's if none is set."""
    region = jurisdiction or DEFAULT_REGION
    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(text, region))
    except phonenumbers.NumberParseException:
        valid = False
    if valid:
        return ""
    if text.lstrip().startswith("+"):
        return "is not a valid phone number (a typo?)"
    read_in = "the jurisdiction" if jurisdiction else "assumed when no jurisdiction is set"
    return (f"is not a valid phone number in {region}, {read_in} (a typo? a number from "
            "elsewhere needs + and its country code)")


# dotted key -> (its plausibility check, who would vouch for an irregular value). The keys
# are what ``irregular:`` may list; a list entry's key has no index (contacts.phone).
_PLAUSIBLE: dict[str, tuple[Callable[[str, str], str], str]] = {
    "identifiers.imei": (_imei_problem, "the device really reports it"),
    "identifiers.imsi": (_imsi_problem, "the SIM really reports it"),
    "identifiers.iccid": (_iccid_problem, "the SIM really reports it"),
    "identifiers.phone": (_phone_problem, "the SIM really has that number"),
    "contacts.phone": (_phone_problem, "the number is really in use"),
}


# Seeded keys with no more than a format check: nothing for ``irregular:`` to skip.
_UNCHECKED = frozenset({
    *(f"identifiers.{key}" for key in IDENTIFIER_KEYS), *(f"child.{key}" for key in CHILD_KEYS),
    "contacts.name", "credentials.password", "location.wifi",
}) - _PLAUSIBLE.keys()


def _irregular(node: yaml.Node, path: str) -> frozenset[str]:
    """The dotted keys whose plausibility checks the lab asks to skip (one or a list); any
    other entry is an error, a typo above all, as with any other key."""
    out = set()
    for item, where in _items(node, path):
        text = _nonempty(item, where)
        if text in _UNCHECKED:
            _fail(item, where, f"{_show(text)} has no checksum, MCC or numbering-plan check to "
                               f"skip (keys that have one: {_allowed(_PLAUSIBLE)})")
        if text not in _PLAUSIBLE:
            # ``imei`` for identifiers.imei: too short a word for difflib to call it close
            ends = [key for key in _PLAUSIBLE if key.endswith("." + text)]
            hint = _did_you_mean(text, _PLAUSIBLE) or (
                f"; did you mean {ends[0]}?" if len(ends) == 1 else "")
            _fail(item, where, f"{_show(text)} is not a key with checks to skip{hint} "
                               f"(allowed: {_allowed(_PLAUSIBLE)})")
        out.add(text)
    return frozenset(out)


def _values_of(sections: Mapping[str, yaml.Node], key: str) -> Iterator[tuple[yaml.Node, str]]:
    """(node, path) of every value a dotted key names: each of identifiers.imei's values,
    the phone of each entry of contacts."""
    section, name = key.split(".")
    if section not in sections:
        return
    node = sections[section]
    entries = _list(node, section) if isinstance(node, yaml.SequenceNode) else [(node, section)]
    for entry, where in entries:
        for key_node, value in entry.value:
            if key_node.value == name:
                yield from _items(value, _join(where, name))


def _check_plausible(sections: Mapping[str, yaml.Node], irregular: frozenset[str],
                     jurisdiction: str) -> None:
    """The first value in the file failing its plausibility check, as an error that names
    the way to accept it."""
    checked = sorted(((node, where, key) for key in _PLAUSIBLE if key not in irregular
                      for node, where in _values_of(sections, key)),
                     key=lambda one: one[0].start_mark.index)
    for node, where, key in checked:
        check, who = _PLAUSIBLE[key]
        problem = check(node.value, jurisdiction)
        if problem:
            _fail(node, where, f"{_show(node.value)} {problem}; if {who}, "
                               f"list {key} under irregular:")


_PROFILE_SECTIONS: dict[str, Callable[[yaml.Node, str], Any]] = {
    "device": _read_device,
    "identifiers": _seeded(IDENTIFIER_KEYS),
    "child": _seeded(CHILD_KEYS),
    "location": _read_location,
    "contacts": _each(_read_contact),
    "credentials": _each(_read_credential),
    "first_party": _parties,
    "organisations": _each(_read_organisation),
    "jurisdiction": _country,
    "irregular": _irregular,
}


# --------------------------------------------------------------------------- consent plan

_ACTIONS = ("grant", "refuse", "withdraw", "phase")
# action -> the field an event of that kind means nothing without.
_ACTION_NEEDS: dict[str, str] = {
    "grant": "categories", "refuse": "categories", "withdraw": "categories", "phase": "name",
}


def _category(node: yaml.Node, path: str, *, all_disclosed: bool) -> str:
    """A category id or family as written; ``all-disclosed`` only where the caller allows it."""
    text = _nonempty(node, path)
    if text == ALL_DISCLOSED and not all_disclosed:
        _fail(node, path, f"{ALL_DISCLOSED} is not allowed here; name the categories")
    if not is_category_spec(text):
        extra = [ALL_DISCLOSED] if all_disclosed else []
        names = [*CATEGORIES, *FAMILIES, *extra]
        what = f"a category id, family or {ALL_DISCLOSED}" if extra else "a category id or family"
        _fail(node, path, f"{_show(text)} is not {what}{_did_you_mean(text, names)}")
    return text


def _specs(node: yaml.Node, path: str) -> tuple[str, ...]:
    return tuple(_category(item, where, all_disclosed=True) for item, where in _items(node, path))


def _ids(node: yaml.Node, path: str) -> tuple[str, ...]:
    return tuple(_category(item, where, all_disclosed=False)
                 for item, where in _items(node, path))


def _action(node: yaml.Node, path: str) -> str:
    text = _scalar(node, path)
    if text not in _ACTIONS:
        _fail(node, path, f"{_show(text)} is not one of {_allowed(_ACTIONS)}")
    return text


def _moment(node: yaml.Node, path: str) -> float:
    """Epoch seconds of an ISO 8601 time with its zone; a zoneless time would be ambiguous.

    The node's text is parsed whether YAML tagged it a timestamp or a string, so quoted and
    unquoted times behave the same.
    """
    text = _scalar(node, path)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = _yaml_timestamp(node)
        if moment is None:
            _fail(node, path, f"{_show(text)} is not an ISO 8601 time "
                              "(like 2026-11-28T10:15:00Z)")
    if moment.tzinfo is None:
        _fail(node, path, f"{_show(text)} has no time zone (add Z or an offset like +08:00)")
    try:  # reports write every time in UTC: it must be a date there too
        datetime.fromtimestamp(moment.astimezone(UTC).timestamp(), UTC)
    except (OverflowError, ValueError, OSError):
        _fail(node, path, f"{_show(text)} is outside the years 1 to 9999 once in UTC")
    return moment.timestamp()


def _yaml_timestamp(node: yaml.Node) -> datetime | None:
    """YAML 1.1 timestamps Python's parser refuses (``2026-11-28 10:15:00 Z``)."""
    if node.tag != "tag:yaml.org,2002:timestamp":
        return None
    try:
        value = yaml.constructor.SafeConstructor().construct_yaml_timestamp(node)
    except (ValueError, OverflowError):
        return None
    return value if isinstance(value, datetime) else None


_EVENT_FIELDS: dict[str, Callable[[yaml.Node, str], Any]] = {
    "action": _action,
    "categories": _specs,
    "recipients": _texts,
    "separate": _ids,
    "name": _nonempty,
}


def _event_fields(node: yaml.Node, path: str, when: str,
                  read_when: Callable[[yaml.Node, str], Any]) -> dict[str, Any]:
    """The fields events and signals share; ``when`` is ``at`` or ``filter``."""
    readers = {when: read_when, **_EVENT_FIELDS}
    fields = _mapping(node, path, readers)
    _require(node, path, fields, when)
    action = _action(_require(node, path, fields, "action"), _join(path, "action"))
    needed = _ACTION_NEEDS[action]
    _require(node, path, fields, needed, f" (required for {action})")
    return {key: readers[key](value, _join(path, key)) for key, value in fields.items()}


def _read_event(node: yaml.Node, path: str) -> ConsentEvent:
    values = _event_fields(node, path, "at", _moment)
    values["ts"] = values.pop("at")
    return ConsentEvent(**values, source="plan")


def _read_signal(node: yaml.Node, path: str) -> Signal:
    return Signal(**_event_fields(node, path, "filter", _nonempty))


def _read_disclosure(node: yaml.Node, path: str) -> Disclosure:
    """One recipient named by the privacy notice; families become the ids they stand for."""
    fields = _mapping(node, path, {"recipient": None, "categories": None, "purpose": None,
                                   "role": None})
    recipient = _nonempty(_require(node, path, fields, "recipient"), _join(path, "recipient"))
    named = _ids(_require(node, path, fields, "categories"), _join(path, "categories"))
    ids = [cid for spec in named for cid in CATEGORIES if cid in expand(spec)]
    purpose = _scalar(fields["purpose"], _join(path, "purpose")) if "purpose" in fields else ""
    role = _role(fields["role"], _join(path, "role")) if "role" in fields else THIRD_PARTY
    return Disclosure(recipient=recipient, categories=tuple(dict.fromkeys(ids)),
                      purpose=purpose, role=role)


def _role(node: yaml.Node, path: str) -> str:
    """``processor`` (acts for the maker, PIPL 21) or ``third_party`` (PIPL 23)."""
    text = _scalar(node, path)
    if text not in ROLES:
        _fail(node, path, f"{_show(text)} is not one of {_allowed(ROLES)}"
                          f"{_did_you_mean(text, ROLES)}")
    return text


def _positive(node: yaml.Node, path: str) -> float:
    value = _number(node, path)
    if value <= 0:
        _fail(node, path, f"{_show(node.value)} is not a positive number")
    return value


def _grace(node: yaml.Node, path: str) -> float:
    value = _number(node, path)
    if value < 0:
        _fail(node, path, f"{_show(node.value)} is negative")
    return value


def _per_category(node: yaml.Node, path: str) -> dict[str, float]:
    """Category id -> threshold; a family is refused so each threshold names one category."""
    for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
        if key_node.value in FAMILIES:
            ids = _allowed(FAMILIES[key_node.value])
            _fail(key_node, _join(path, key_node.value), f"is a family; give each id ({ids})")
    return {cid: _positive(value, _join(path, cid))
            for cid, value in _mapping(node, path, CATEGORIES).items()}


_LIMITS: dict[str, Callable[[yaml.Node, str], dict[str, float]]] = {
    "min_interval_s": _per_category,
}


def _limits(node: yaml.Node, path: str) -> dict[str, dict[str, float]]:
    return {key: _LIMITS[key](value, _join(path, key))
            for key, value in _mapping(node, path, _LIMITS).items()}


_PLAN_SECTIONS: dict[str, Callable[[yaml.Node, str], Any]] = {
    "disclosed": _each(_read_disclosure),
    "events": _each(_read_event),
    "signals": _each(_read_signal),
    "limits": _limits,
    "withdrawal_grace_s": _grace,
}
