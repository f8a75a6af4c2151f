"""Key names: what a field's name says it holds (English, pinyin, SDK abbreviations).

A key name alone never proves personal data (DESIGN.md "detect" 3): it raises a validated
pattern's confidence, decides between two categories a value could belong to (a MAC is the
device's own or a Wi-Fi access point's), and labels a field only when its value also has
the category's shape. Everything here is a table; the functions only look things up.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from auditor.memo import memoised
from auditor.model import Field

KEY_CONFIDENCE = 0.5

# Path segments that name a decoding layer or a carrier, never a key the device chose.
LAYER_SEGMENTS = frozenset({
    "base64", "url", "json", "hex", "gzip", "deflate", "brotli", "zstd", "jwt", "text",
    "form", "body", "query", "header", "cookie", "payload", "msgpack", "cbor", "protobuf",
    "xml", "multipart", "media",
})

# Normalised key (lower case, letters and digits only) -> categories a value under it may be.
# Several categories: the value's shape picks one (a ``did`` is an IMEI or an Android ID).
_DEVICE_ID = ("identifier.imei", "identifier.android_id", "identifier.serial")
KEY_LEXICON: dict[str, tuple[str, ...]] = {
    # IMEI / MEID
    **dict.fromkeys(("imei", "imei1", "imei2", "meid", "deviceimei", "devimei", "imeino",
                     "imeicode", "shebeihao", "chuanhao"), ("identifier.imei",)),
    # generic device ids: English, SDK abbreviations, pinyin
    **dict.fromkeys(("did", "devid", "deviceid", "udid", "umid", "cuid", "utdid",
                     "deviceno", "devicecode", "devicesn", "shebeiid", "sbid"),
                    _DEVICE_ID),
    **dict.fromkeys(("imsi", "subscriberid", "imsicode"), ("identifier.imsi",)),
    **dict.fromkeys(("iccid", "simserial", "simserialnumber", "simid", "iccidcode"),
                    ("identifier.iccid",)),
    **dict.fromkeys(("sn", "serial", "serialno", "serialnumber", "xuliehao"),
                    ("identifier.serial",)),
    **dict.fromkeys(("mac", "macaddr", "macaddress", "wifimac", "smac", "devicemac",
                     "btmac", "bluetoothmac", "wlanmac"), ("identifier.mac",)),
    **dict.fromkeys(("androidid", "identityandroidid", "ssaid"),
                    ("identifier.android_id",)),
    **dict.fromkeys(("oaid", "gaid", "adid", "idfa", "advertisingid", "aaid", "vaid",
                     "googleadid", "adtrackingid"), ("identifier.advertising",)),
    # the child's own phone number
    **dict.fromkeys(("phone", "mobile", "tel", "msisdn", "phonenum", "phonenumber",
                     "mobileno", "mobilephone", "shouji", "shoujihao", "dianhua", "telno",
                     "simphone", "cellphone", "devicephone", "watchphone"),
                    ("identity.phone",)),
    **dict.fromkeys(("birthday", "birthdate", "dob", "birth", "dateofbirth", "shengri",
                     "chushengriqi"), ("identity.birthdate",)),
    **dict.fromkeys(("email", "mail", "emailaddress", "youxiang"), ("identity.email",)),
    **dict.fromkeys(("idcard", "idno", "sfz", "shenfenzheng", "sfzh", "idcardno",
                     "nationalid", "citizenid"), ("identity.national_id",)),
    **dict.fromkeys(("childname", "babyname", "kidname", "xingming", "realname",
                     "truename", "studentname"), ("identity.name",)),
    **dict.fromkeys(("school", "schoolname", "xuexiao"), ("identity.school",)),
}

# Keys that say "a Wi-Fi access point" (a MAC under them is location.wifi, not the device's).
WIFI_KEYS = frozenset({
    "bssid", "bssids", "wifi", "wifis", "wifilist", "wifiaccesspoints", "mmac", "macs",
    "ap", "aps", "aplist", "wifiinfo", "nearbywifi", "scanresults", "wlan", "wifimacs",
})
# Keys that say "somebody else's number": a phone under them is a contact.
CONTACT_KEYS = frozenset({
    "contact", "contacts", "contactlist", "phonebook", "addressbook", "friends", "family",
    "familynumbers", "sos", "sosnumbers", "sosnum", "whitelist", "phb", "tongxunlu",
    "lianxiren", "guardian", "guardians", "members", "relatives", "sosphone", "contactphone",
    "contacttel", "contactnumber", "emergencycontact",
})
# Keys under which a phone number may sit (own or a contact's, the context decides).
PHONE_KEYS = frozenset({
    "phone", "mobile", "tel", "msisdn", "phonenum", "phonenumber", "number", "num",
    "mobileno", "mobilephone", "shouji", "shoujihao", "dianhua", "telno", "cellphone",
    "haoma", "simphone", "devicephone", "watchphone", "sosphone", "contactphone",
    "contacttel", "contactnumber",
})
# Latitude and longitude keys, English and pinyin (weidu/jingdu) plus jd/wd abbreviations.
LAT_KEYS = frozenset({"lat", "latitude", "wd", "weidu", "gpslat", "locationlat",
                      "mlat", "blat"})
LON_KEYS = frozenset({"lon", "lng", "long", "longitude", "jd", "jingdu", "gpslon",
                      "gpslng", "locationlng", "locationlon", "mlon", "mlng", "blng"})
# Keys whose value may be a whole "lat,lon" (or "lon,lat") pair.
LOCATION_KEYS = frozenset({
    "location", "loc", "gps", "pos", "position", "coord", "coords", "coordinate",
    "latlng", "lnglat", "latlon", "lonlat", "point", "zuobiao", "dingwei", "weizhi", "geo",
    "center", "gpspoint", "lastlocation",
})
# Keys that say "cell tower(s)" (a delimited mcc,mnc,lac,cid under them is location.cell).
CELL_KEYS = frozenset({
    "bts", "nearbts", "cell", "cells", "celltowers", "cellinfo", "celllist", "jizhan",
    "lbs", "basestation", "neighborcells", "servingcell",
})

# Values that stand for "no value": never personal data, whatever key they sit under.
PLACEHOLDERS = frozenset({
    "", "0", "0.0", "00", "-1", "null", "nil", "none", "unknown", "undefined", "n/a", "na",
    "false", "true", "02:00:00:00:00:00", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff",
    "020000000000", "000000000000", "ffffffffffff", "0.0,0.0", "0,0", "0.000000,0.000000",
    "00000000-0000-0000-0000-000000000000", "9774d56d682e549c",  # the emulator Android ID
    "000000000000000", "<unknown ssid>", "unknownssid", "test", "default",
})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def normalise(key: str) -> str:
    """``$identity_android_id`` -> ``identityandroidid``; ``X-Device-Id`` -> ``xdeviceid``."""
    return _NOT_ALNUM.sub("", key.lower())


def tokens(key: str) -> tuple[str, ...]:
    """``homeMobileCountryCode`` -> (home, mobile, country, code); ``x-device-id`` ->
    (x, device, id)."""
    return tuple(t for t in _SEPARATORS.split(_CAMEL.sub("_", key).lower()) if t)


@memoised(4096)
def key_of(path: str) -> str:
    """The key a field sits under: the last path segment that is neither an index nor a
    decoding layer (``body.json.contacts.0.phone`` -> ``phone``). Remembered: a device
    sends the same few paths in every message, and each finder asks for the key."""
    for seg in reversed(path.split(".")):
        if seg and not seg.isdigit() and seg not in LAYER_SEGMENTS:
            return seg
    return ""


def segments(path: str) -> list[str]:
    """The normalised keys along a path, outermost first, without indices and layers."""
    return [normalise(s) for s in path.split(".")
            if s and not s.isdigit() and s not in LAYER_SEGMENTS]


def in_list(path: str) -> bool:
    """A field inside a list of entries (``contacts.0.phone``)."""
    return any(seg.isdigit() for seg in path.split("."))


def parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def matches(key: str, table: frozenset[str] | dict[str, tuple[str, ...]]) -> str:
    """The table entry a key names, or "": the whole key, one of its words of three letters or
    more, or (for entries of four letters or more) its ending. So ``x-device-imei`` names
    ``imei``, but ``flat`` is no ``lat`` and the ``x`` of ``x-did`` no longitude."""
    _TABLES.setdefault(id(table), table)
    return _matches(key, id(table))


_TABLES: dict[int, frozenset[str] | dict[str, tuple[str, ...]]] = {}


@memoised(8192)
def _matches(key: str, table_id: int) -> str:
    table = _TABLES[table_id]
    norm = normalise(key)
    if not norm:
        return ""
    if norm in table:
        return norm
    for tok in tokens(key):
        if len(tok) >= 3 and tok in table:
            return tok
    for entry in _endings(table_id):
        if norm.endswith(entry):
            return entry
    return ""


@memoised(64)
def _endings(table_id: int) -> tuple[str, ...]:
    return tuple(sorted((e for e in _TABLES[table_id] if len(e) >= 4), key=len, reverse=True))


def any_segment(path: str, table: frozenset[str]) -> bool:
    """Some key along the path (the field's own or an enclosing one) is in the table."""
    return any(matches(seg, table) for seg in path.split(".")
               if seg and not seg.isdigit() and seg not in LAYER_SEGMENTS)


def is_placeholder(value: str) -> bool:
    """``02:00:00:00:00:00``, all-zero ids, ``unknown``, ``0.0/0.0`` and the like."""
    v = value.strip().lower()
    if v in PLACEHOLDERS:
        return True
    if "0" not in v and "f" not in v:  # all-0 or all-f needs one of them: most values go here
        return False
    core = _NOT_ALNUM.sub("", v)
    return bool(core) and len(set(core)) == 1 and core[0] in "0f"


# --------------------------------------------------------------------------- key method

def _is_uuid(v: str) -> bool:
    try:
        uuid.UUID(v)
    except ValueError:
        return False
    return len(v) in (32, 36)


def _date_like(v: str) -> bool:
    return bool(re.fullmatch(r"(19|20)\d\d[-/.]?(0[1-9]|1[0-2])[-/.]?(0[1-9]|[12]\d|3[01])", v))


# The shape a value must have before a key name alone may label it (DESIGN.md "detect" 3).
SHAPES: dict[str, Callable[[str], bool]] = {
    "identifier.imei": lambda v: bool(re.fullmatch(r"\d{14,16}", v)),
    "identifier.imsi": lambda v: bool(re.fullmatch(r"\d{14,15}", v)),
    "identifier.iccid": lambda v: bool(re.fullmatch(r"89\d{16,19}[\dFf]?", v)),
    "identifier.serial": lambda v: bool(re.fullmatch(r"[A-Za-z0-9-]{6,32}", v))
    and any(c.isdigit() for c in v) and any(c.isalpha() for c in v)
    and not re.fullmatch(r"[0-9a-fA-F]{20,}", v),  # a long hex run is a hash, not a serial
    "identifier.mac": lambda v: bool(re.fullmatch(r"[0-9A-Fa-f]{12}", v)),
    "identifier.android_id": lambda v: bool(re.fullmatch(r"[0-9a-fA-F]{15,16}", v)),
    "identifier.advertising": _is_uuid,
    "identity.birthdate": _date_like,
    "identity.name": lambda v: bool(re.fullmatch(r"[^\W\d_][^\W\d_ .'-]*(?:[ .'-][^\W\d_]+){0,3}",
                                                 v)) and 2 <= len(v) <= 40,
}


def by_key(f: Field) -> list[tuple[str, str]]:
    """(category, value) for a field whose key name says what it holds and whose whole value
    has that category's shape; the weakest evidence, reported as method ``key``."""
    value = f.value.strip()
    if is_placeholder(value):
        return []
    entry = matches(key_of(f.path), KEY_LEXICON)
    if not entry:
        return []
    for category in KEY_LEXICON[entry]:
        shape = SHAPES.get(category)
        if shape is not None and shape(value):
            return [(category, value)]
    return []
