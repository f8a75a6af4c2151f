"""Rules over who receives the data (RULES.md: third parties, SDKs, ad tech, countries)."""

from __future__ import annotations

from auditor.model import Observation
from auditor.rules.base import RuleContext
from auditor.rules.common import (
    AD_SDK_TYPES,
    DIRECT_IDS,
    IDENTIFIERS_OR_LOCATION,
    LOCATIONS,
    NON_RESETTABLE,
    for_the_maker,
    hit,
    is_first_party,
    is_third_party,
    sent,
)


def third_party_undisclosed(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """Personal data to a non-first-party recipient the plan does not disclose for that
    category (by domain, subdomains included, or by organisation name)."""
    if is_first_party(obs, ctx):
        return None
    disclosed = ctx.ledger.disclosed_for(obs.recipient, obs.transmission.host)
    return hit(sent(obs) - disclosed)


def _to_third_party(obs: Observation, ctx: RuleContext,
                    among: frozenset[str]) -> frozenset[str] | None:
    """What a third party receives of ``among``, less what a granted processor handles for
    the maker (PIPL 21: it acts for the maker, not as a third party)."""
    if not is_third_party(obs, ctx):
        return None
    cats = sent(obs) & among
    return hit(cats - for_the_maker(obs, ctx)) if cats else None


def persistent_id_to_third_party(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """IMEI, IMSI, ICCID, serial, MAC or phone number to a third party."""
    return _to_third_party(obs, ctx, NON_RESETTABLE)


def location_to_third_party(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """Any location category (precise, coarse, cell, Wi-Fi) to a third party."""
    return _to_third_party(obs, ctx, LOCATIONS)


def direct_ids_to_third_party(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """The child's name, birthdate, school, address, phone, e-mail or national id to a third
    party."""
    return _to_third_party(obs, ctx, DIRECT_IDS)


def ad_tracker_receives_child_data(obs: Observation, ctx: RuleContext
                                   ) -> frozenset[str] | None:
    """An advertising or attribution SDK host receives any identifier or location (unless
    the plan discloses it as the maker's processor for that category, granted)."""
    if obs.recipient.sdk_type not in AD_SDK_TYPES:
        return None
    cats = sent(obs) & IDENTIFIERS_OR_LOCATION
    return hit(cats - for_the_maker(obs, ctx)) if cats else None


def cross_border(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    """Personal data to an IP located outside the profile's jurisdiction (both must be
    known: an unlocated IP or a profile without a jurisdiction decides nothing). A processor
    counts here like anyone else: data abroad is abroad (PIPL 38)."""
    country, home = obs.recipient.country.upper(), ctx.profile.jurisdiction.upper()
    if not country or not home or country == home:
        return None
    return hit(sent(obs))
