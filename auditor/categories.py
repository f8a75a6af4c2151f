"""Category ids (a contract: DESIGN.md "Categories") and their attributes (RULES.md table)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CategoryInfo:
    id: str
    label: str
    sensitive: bool
    non_resettable: bool


_TABLE: tuple[tuple[str, str, bool, bool], ...] = (
    # id, label, sensitive (CN), non-resettable
    ("location.precise", "precise location", True, False),
    ("location.coarse", "coarse location", True, False),
    ("location.cell", "cell-tower ids", True, False),
    ("location.wifi", "Wi-Fi BSSIDs", True, False),
    ("identifier.imei", "IMEI", True, True),
    ("identifier.imsi", "IMSI", True, True),
    ("identifier.iccid", "ICCID", True, True),
    ("identifier.serial", "serial number", True, True),
    ("identifier.mac", "MAC address", True, True),
    ("identifier.android_id", "Android ID", True, False),
    ("identifier.advertising", "advertising id", True, False),
    ("identity.phone", "child's phone number", True, True),
    ("identity.name", "child's name", True, False),
    ("identity.birthdate", "child's birthdate", True, False),
    ("identity.email", "child's e-mail", True, False),
    ("identity.national_id", "child's national id", True, False),
    ("identity.school", "child's school", True, False),
    ("identity.address", "child's address", True, False),
    ("contacts.entry", "contact entry", True, False),
    ("credentials.password", "password", True, False),
    ("media.voice", "voice recording", True, False),
    ("media.photo", "photo", True, False),
)

CATEGORIES: dict[str, CategoryInfo] = {row[0]: CategoryInfo(*row) for row in _TABLE}
FAMILIES: dict[str, tuple[str, ...]] = {}
for _cid in CATEGORIES:
    FAMILIES.setdefault(_cid.split(".")[0], ())
    FAMILIES[_cid.split(".")[0]] += (_cid,)

ALL_DISCLOSED = "all-disclosed"

# Profile keys -> the category a seeded value of that key belongs to.
IDENTIFIER_KEYS: dict[str, str] = {
    "imei": "identifier.imei",
    "imsi": "identifier.imsi",
    "iccid": "identifier.iccid",
    "serial": "identifier.serial",
    "mac": "identifier.mac",
    "android_id": "identifier.android_id",
    "advertising_id": "identifier.advertising",
    "phone": "identity.phone",
}
CHILD_KEYS: dict[str, str] = {
    "name": "identity.name",
    "birthdate": "identity.birthdate",
    "school": "identity.school",
    "email": "identity.email",
    "national_id": "identity.national_id",
    "address": "identity.address",
}

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")


def severity_rank(severity: str) -> int:
    """0 for critical ... 4 for info: lower is worse, so sorting puts the worst first."""
    return SEVERITIES.index(severity)


def expand(spec: str | list[str] | tuple[str, ...], disclosed: frozenset[str] = frozenset()
           ) -> frozenset[str]:
    """Category ids named by a consent-plan ``categories`` value.

    A value is a list of ids and families (``location``), or ``all-disclosed``, which stands
    for every category the privacy notice disclosed for any recipient.
    """
    items = [spec] if isinstance(spec, str) else list(spec)
    out: set[str] = set()
    for item in items:
        if item == ALL_DISCLOSED:
            out |= disclosed
        elif item in CATEGORIES:
            out.add(item)
        elif item in FAMILIES:
            out |= set(FAMILIES[item])
        else:
            raise ValueError(f"unknown category {item!r}")
    return frozenset(out)


def is_category_spec(item: str) -> bool:
    return item == ALL_DISCLOSED or item in CATEGORIES or item in FAMILIES
