"""What several rule families share: the category sets RULES.md names, and the few facts
about a message (who received it, what it carried) rules are worded in.

Category sets are tables derived from ``auditor.categories`` (STYLE.md 5), never if-ladders.
"""

from __future__ import annotations

import re

from auditor.categories import CATEGORIES, FAMILIES
from auditor.consent import GRANTED
from auditor.memo import memoised
from auditor.model import Observation, Organisation
from auditor.recipients import parties, registrable_domain
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
FIRST_PARTY_HOSTS = 4096  # (host, address) pairs remembered as the maker's, or not

_NOT_ALNUM = re.compile(r"[\W_]+")


def sent(obs: Observation) -> frozenset[str]:
    """The categories of personal data a message carries *out of* the device: only ``up``
    transmissions are the device's own (a ``down`` one is a server speaking)."""
    return obs.categories if obs.transmission.direction == "up" else frozenset()


def hit(categories: frozenset[str] | set[str]) -> frozenset[str] | None:
    """A data rule's answer: the categories it fires on, or None (no hit) when there are none."""
    return frozenset(categories) or None


def is_first_party(obs: Observation, ctx: RuleContext) -> bool:
    """The operator's own host: attributed so, under a profile ``first_party`` domain, or
    reached at an address inside a ``first_party`` block (cellular watches talk to bare IPs)."""
    if obs.recipient.party == "first":
        return True
    tx, profile = obs.transmission, ctx.profile
    return _makers(tx.host, obs.recipient.domain, tx.ip, profile.first_party,
                   profile.organisations)


@memoised(FIRST_PARTY_HOSTS)
def _makers(host: str, domain: str, ip: str, first_party: tuple[str, ...],
            organisations: tuple[Organisation, ...]) -> bool:
    """Remembered: a handful of rules ask it of every message, about the same few hosts."""
    return parties(first_party, organisations).is_first(host, domain, ip)


def for_the_maker(obs: Observation, ctx: RuleContext) -> frozenset[str]:
    """The categories a disclosed processor handles on the maker's behalf in this message
    (PIPL 21): disclosed with ``role: processor`` and granted for it, separately where the
    category needs a grant of its own (PIPL 29). For these it is not a third party (PIPL 23),
    and the recipient rules leave them alone."""
    tx = obs.transmission
    processed = sent(obs) & ctx.ledger.processed_for(obs.recipient, tx.host)
    out = set()
    for category in processed:
        state = ctx.ledger.state(category, obs.recipient, tx.ts, tx.host)
        if state.status == GRANTED and (state.separate or category not in NEEDS_SEPARATE_GRANT):
            out.add(category)
    return frozenset(out)


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
    """Who a recipient is, for "different organisations": every first-party domain and
    address is the one operator; others are their attributed organisation (a profile's
    ``organisations`` name the owners of addresses), else their registrable domain."""
    if is_first_party(obs, ctx):
        return FIRST_PARTY_ORG
    if obs.recipient.organization.strip():
        return obs.recipient.organization.strip().casefold()
    return registrable_domain(obs.recipient.domain or obs.transmission.host
                              or obs.transmission.ip)


def normalised(value: str) -> str:
    """A value compared across encodings: case and separators dropped (``3C:5A`` = ``3c5a``)."""
    return _NOT_ALNUM.sub("", value).casefold()
