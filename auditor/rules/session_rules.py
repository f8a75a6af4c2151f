"""Rules over the whole timeline (RULES.md: CROSS_SERVICE_LINKING, EXCESS_FREQUENCY).

Each is a step over the timeline in order: it sees one observation and the memo it keeps for
the session, and returns the hits that observation causes (possibly on earlier messages). Fed
the same timeline, a step returns the same hits: live alerts and offline reports agree.
"""

from __future__ import annotations

from array import array
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
        memo.update(seeds=_seed_index(ctx), orgs={}, carriers={}, catsets={})
    seeds, several = memo["seeds"]
    orgs: dict[str, set[str]] = memo["orgs"]
    carriers: dict[str, _Carriers] = memo["carriers"]
    catsets: dict[frozenset[str], int] = memo["catsets"]
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
        if len(seen) >= LINKED_BY:  # linked already: this message is evidence at once
            seen.add(FIRST_PARTY_ORG if cats <= maker else org)
            yield Hit(obs.transmission.id, frozenset(cats))
            continue
        seen.add(FIRST_PARTY_ORG if cats <= maker else org)
        kept = carriers.get(key)
        if kept is None:
            kept = carriers[key] = _Carriers()
        kept.add(obs.transmission.id, catsets.setdefault(frozenset(cats), len(catsets)))
        if len(seen) >= LINKED_BY:  # linked now: every carrier so far, then no more kept
            names = list(catsets)
            del carriers[key]
            yield from (Hit(tx_id, names[i]) for tx_id, i in kept)


class _Carriers:
    """The messages that carried one identifier, until a second organisation receives it:
    ids and their category sets (as indexes into the memo's ``catsets``), a few bytes each,
    for an identifier a device sends its maker every few seconds for days."""

    __slots__ = ("ids", "sets")

    def __init__(self) -> None:
        self.ids, self.sets = array("q"), array("H")

    def add(self, tx_id: int, catset: int) -> None:
        self.ids.append(tx_id)
        self.sets.append(catset)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.ids, self.sets, strict=True)


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
