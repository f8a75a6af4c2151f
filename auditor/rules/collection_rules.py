"""Rules over what is collected and when (RULES.md: data minimisation, IDM 4.1)."""

from __future__ import annotations

import re

from auditor.model import Observation
from auditor.rules.base import RuleContext
from auditor.rules.common import HARDWARE_OR_SIM_IDS, hit, idle_at, normalised, sent

CONTACT = "contacts.entry"
BULK = 2  # "two or more contacts" in one transmission
_SEEDED_CONTACT = re.compile(r"contacts\[(\d+)\]")
_PHONE_DIGITS = 11  # compare numbers on their last 11 digits: +86 138... = 138...


def non_resettable_id(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """A hardware or SIM identifier sent at all, even to the first party."""
    return hit(sent(obs) & HARDWARE_OR_SIM_IDS)


def background_collection(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """Personal data sent while the session's phase is ``idle``."""
    if not idle_at(ctx, obs.transmission.ts):
        return None
    return hit(sent(obs))


def bulk_contacts(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """One transmission carries two or more different contacts, seeded or pattern-found; a
    contact's name and number, or one number in two encodings, count once."""
    if CONTACT not in sent(obs):
        return None
    return frozenset({CONTACT}) if len(contacts_in(obs, ctx)) >= BULK else None


def contacts_in(obs: Observation, ctx: RuleContext) -> set[str]:
    """The distinct contacts a message carries: a seeded one by its index in the profile,
    a pattern-found one by its value (matched back to a seeded contact when it is one)."""
    seeded: dict[str, int] = {}
    for i, contact in enumerate(ctx.profile.contacts):
        for key in (_contact_key(contact.phone), _contact_key(contact.name)):
            if key:
                seeded.setdefault(key, i)
    out: set[str] = set()
    for d in obs.detections:
        if d.category != CONTACT:
            continue
        match = _SEEDED_CONTACT.match(d.profile_key)
        if d.method == "known" and match:
            out.add(f"seed:{match[1]}")
            continue
        key = _contact_key(d.value)
        out.add(f"seed:{seeded[key]}" if key in seeded else f"value:{key}")
    return out


def _contact_key(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 6 and not re.search(r"[^\d\s()+.-]", value):
        return digits[-_PHONE_DIGITS:]
    return normalised(value)
