"""What several rule families share: the category sets RULES.md names, and the few facts
about a message (who received it, what it carried) rules are worded in.

Category sets are tables derived from ``auditor.categories`` (STYLE.md 5), never if-ladders.
"""

from __future__ import annotations

import re

from auditor.categories import CATEGORIES, FAMILIES
from auditor.memo import memoised
from auditor.model import Observation
from auditor.recipients import matches_domain, registrable_domain
from auditor.rules.base import RuleContext

# RULES.md says "identifier" for the device and SIM ids: the ``identifier`` family.
IDENTIFIERS = frozenset(FAMILIES["identifier"])
LOCATIONS = frozenset(FAMILIES["location"])
IDENTIFIERS_OR_LOCATION = IDENTIFIERS | LOCATIONS
# DIRECT_IDS_TO_THIRD_PARTY: name, birthdate, school, address, phone, e-mail, national id.
DIRECT_IDS = frozenset(FAMILIES["identity"])
MEDIA = frozenset(FAMILIES["media"])
# PERSISTENT_ID_TO_THIRD_PARTY: the non-resettable column of the RULES.md category table.
NON_RESETTABLE = frozenset(cid for cid, info in CATEGORIES.items() if info.non_resettable)
# NON_RESETTABLE_ID: "a hardware or SIM identifier" (IMEI, IMSI, ICCID, serial, MAC).
HARDWARE_OR_SIM_IDS = NON_RESETTABLE & IDENTIFIERS
# SENSITIVE_NO_SEPARATE_CONSENT (PIPL 29): the categories that need a grant of their own.
NEEDS_SEPARATE_GRANT = frozenset({
    "location.precise", "media.voice", "media.photo", "contacts.entry", "identity.national_id",
})
AD_SDK_TYPES = frozenset({"advertising", "attribution"})

FIRST_PARTY_ORG = "(first party)"
# The phase BACKGROUND_COLLECTION and the default EXCESS_FREQUENCY interval are about.
IDLE = "idle"
FIRST_PARTY_HOSTS = 4096  # hosts remembered as under a first-party domain, or not

_NOT_ALNUM = re.compile(r"[\W_]+")


def sent(obs: Observation) -> frozenset[str]:
    """The categories of personal data a message carries *out of* the device: only ``up``
    transmissions are the device's own (a ``down`` one is a server speaking)."""
    return obs.categories if obs.transmission.direction == "up" else frozenset()


def hit(categories: frozenset[str] | set[str]) -> frozenset[str] | None:
    """A data rule's answer: the categories it fires on, or None (no hit) when there are none."""
    return frozenset(categories) or None


def is_first_party(obs: Observation, ctx: RuleContext) -> bool:
    """The operator's own host: attributed so, or under a profile ``first_party`` domain."""
    if obs.recipient.party == "first":
        return True
    return _under(obs.transmission.host, obs.recipient.domain, ctx.profile.first_party)


@memoised(FIRST_PARTY_HOSTS)
def _under(host: str, domain: str, first_party: tuple[str, ...]) -> bool:
    """Remembered: a handful of rules ask it of every message, about the same few hosts."""
    return any(matches_domain(h, fp) for h in (host, domain) if h for fp in first_party)


def idle_at(ctx: RuleContext, ts: float) -> bool:
    """The session's phase at ``ts`` is ``idle`` (the lab's mark, any case)."""
    return ctx.ledger.phase_at(ts).casefold() == IDLE


def is_third_party(obs: Observation, ctx: RuleContext) -> bool:
    """Known to be someone else's: attributed third, a known SDK endpoint, or simply not one
    of the profile's first-party domains. Without a ``first_party`` list an unattributed host
    stays unknown: we do not guess (recipients.py)."""
    if is_first_party(obs, ctx):
        return False
    return (obs.recipient.party == "third" or bool(obs.recipient.sdk)
            or bool(ctx.profile.first_party))


def is_sdk_host(obs: Observation, ctx: RuleContext) -> bool:
    """A third-party SDK endpoint (attribution named the SDK or its type)."""
    r = obs.recipient
    return bool(r.sdk or r.sdk_type) and not is_first_party(obs, ctx)


def organisation(obs: Observation, ctx: RuleContext) -> str:
    """Who a recipient is, for "different organisations": every first-party domain is the one
    operator; others are their attributed organisation, else their registrable domain."""
    if is_first_party(obs, ctx):
        return FIRST_PARTY_ORG
    if obs.recipient.organization.strip():
        return obs.recipient.organization.strip().casefold()
    return registrable_domain(obs.recipient.domain or obs.transmission.host
                              or obs.transmission.ip)


def normalised(value: str) -> str:
    """A value compared across encodings: case and separators dropped (``3C:5A`` = ``3c5a``)."""
    return _NOT_ALNUM.sub("", value).casefold()
