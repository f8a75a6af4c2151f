"""Rules over the whole timeline (RULES.md: CROSS_SERVICE_LINKING, EXCESS_FREQUENCY).

Each is a step over the timeline in order: it sees one observation and the memo it keeps for
the session, and returns the hits that observation causes (possibly on earlier messages). Fed
the same timeline, a step returns the same hits: live alerts and offline reports agree.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.model import Detection, Observation
from auditor.rules.base import Hit, RuleContext, StepMemo
from auditor.rules.common import (
    FIRST_PARTY_ORG,
    IDENTIFIERS,
    LOCATIONS,
    for_the_maker,
    idle_at,
    normalised,
    organisation,
    sent,
)

LINKED_BY = 2  # "two or more different organisations"
DEFAULT_INTERVAL_S = 60.0  # RULES.md EXCESS_FREQUENCY default: location, once a minute, idle
DEFAULT_LIMITED = LOCATIONS


# -- CROSS_SERVICE_LINKING ------------------------------------------------------------------


def _seed_index(ctx: RuleContext) -> tuple[dict[str, str], frozenset[str]]:
    """Normalised seeded identifier -> its profile key (so a pattern-found value that is a
    seeded one links with the known detections of it), and the keys seeded more than once."""
    index: dict[str, str] = {}
    for key, values in ctx.profile.identifiers.items():
        for value in values:
            index.setdefault(normalised(value), f"identifiers.{key}")
    several = frozenset(f"identifiers.{k}" for k, v in ctx.profile.identifiers.items()
                        if len(v) > 1)
    return index, several


def _identity(d: Detection, seeds: dict[str, str], several: frozenset[str]) -> str:
    """One identifier value, however it was encoded: a seeded value by its profile key (and
    by its value when the profile lists several for that key), any other by its normalised
    value."""
    value = normalised(d.value)
    seed = d.profile_key if d.method == "known" and d.profile_key else seeds.get(value)
    if seed is None:
        return f"{d.category}={value}"
    if seed in several and seeds.get(value) == seed:
        return f"{seed}={value}"
    return seed


def cross_service_linking(obs: Observation, memo: StepMemo, ctx: RuleContext
                          ) -> Iterator[Hit]:
    """The same identifier (any encoding) reaches two or more organisations: every message
    that carried it, to any of them, is evidence, from the moment the second one receives it.

    The organisation is the unit, not the host: the maker's domains and addresses are one,
    and a disclosed processor granted the identifier acts for the maker (PIPL 21)."""
    if "seeds" not in memo:
        memo.update(seeds=_seed_index(ctx), orgs={}, carriers={})
    seeds, several = memo["seeds"]
    orgs: dict[str, set[str]] = memo["orgs"]
    carriers: dict[str, list[tuple[int, frozenset[str]]]] = memo["carriers"]
    found: dict[str, set[str]] = {}
    for d in obs.detections if obs.transmission.direction == "up" else ():
        if d.category in IDENTIFIERS:
            found.setdefault(_identity(d, seeds, several), set()).add(d.category)
    if not found:
        return
    org = organisation(obs, ctx)
    maker = for_the_maker(obs, ctx) if org != FIRST_PARTY_ORG else frozenset()
    for key, cats in found.items():
        seen = orgs.setdefault(key, set())
        already = len(seen) >= LINKED_BY
        seen.add(FIRST_PARTY_ORG if cats <= maker else org)
        carriers.setdefault(key, []).append((obs.transmission.id, frozenset(cats)))
        if already:
            yield Hit(obs.transmission.id, frozenset(cats))
        elif len(seen) >= LINKED_BY:
            yield from (Hit(tx_id, c) for tx_id, c in carriers[key])


# -- EXCESS_FREQUENCY -----------------------------------------------------------------------


def _interval(category: str, ctx: RuleContext) -> tuple[float, bool] | None:
    """(minimum interval, only while idle) for a category; None: no limit applies."""
    stated = ctx.plan.limits.get("min_interval_s", {})
    if category in stated:
        return stated[category], False
    if category in DEFAULT_LIMITED:
        return DEFAULT_INTERVAL_S, True
    return None


def excess_frequency(obs: Observation, memo: StepMemo, ctx: RuleContext
                     ) -> Iterator[Hit]:
    """A category goes to one recipient sooner after the previous message than the plan's
    interval allows; both messages of each too-short interval are the evidence. Without a
    stated interval: location more than once a minute, both messages inside ``idle``."""
    last: dict[tuple[str, str], tuple[float, int]] = memo.setdefault("last", {})
    tx = obs.transmission
    for category in sorted(sent(obs)):
        limit = _interval(category, ctx)
        if limit is None:
            continue
        interval, idle_only = limit
        key = (category, obs.recipient.domain or tx.host)
        if idle_only and not idle_at(ctx, tx.ts):
            last.pop(key, None)  # a message outside idle starts the count afresh
            continue
        prev = last.get(key)
        if prev is not None and tx.ts - prev[0] < interval:
            yield Hit(prev[1], frozenset({category}))
            yield Hit(tx.id, frozenset({category}))
        last[key] = (tx.ts, tx.id)
