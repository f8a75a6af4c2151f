"""What a rule is, and what it is given: the types every rule family and the engine share.

They live here, below both the rule families and the catalogue, so imports only go one way:
``base`` <- the families (``*_rules.py``, ``common``) <- ``catalogue`` <- ``engine``.

Two kinds of rule, one shape. A *message* rule (``check``) judges one observation and
returns the categories it fires on (``None``: no hit; an empty set: a hit about the
connection rather than the data, as UNINSPECTED_TRAFFIC). A *session* rule (``step``) reads
the timeline one observation at a time, in order, keeping what it needs in a memo the engine
holds for the session, and returns the hits that observation causes, anywhere in the timeline
so far (CROSS_SERVICE_LINKING needs a second organisation, EXCESS_FREQUENCY a previous
message). Its hits over a timeline are a pure function of that timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from auditor.consent import Ledger
from auditor.model import ConsentPlan, Observation, Profile


@dataclass(frozen=True)
class RuleContext:
    """What every rule may consult besides the message: the lab's profile and the ledger."""

    profile: Profile
    ledger: Ledger

    @property
    def plan(self) -> ConsentPlan:
        return self.ledger.plan


class Hit(NamedTuple):
    """A rule fired on one transmission, for these categories (possibly none)."""

    transmission: int
    categories: frozenset[str]


Check = Callable[[Observation, RuleContext], "frozenset[str] | None"]
StepMemo = dict[str, Any]  # a session rule's own state for one session, held by the engine
Step = Callable[[Observation, StepMemo, RuleContext], Iterable[Hit]]


def timeline(observations: Iterable[Observation]) -> list[Observation]:
    """The order every rule sees a session in: by time, then by transmission id."""
    return sorted(observations, key=lambda o: (o.transmission.ts, o.transmission.id))


@dataclass(frozen=True)
class Rule:
    """Rules as data (STYLE.md 3): an id reports and CI gates key on, and one function."""

    id: str
    severity: str
    title: str
    references: tuple[str, ...]
    check: Check | None = None  # message rule
    step: Step | None = None  # session rule

    def __post_init__(self) -> None:
        if (self.check is None) == (self.step is None):
            raise ValueError(f"{self.id}: a rule has exactly one of check or step")

    @property
    def scope(self) -> str:
        return "message" if self.check is not None else "session"

    @property
    def unverified(self) -> tuple[str, ...]:
        return tuple(r for r in self.references if r.endswith("*"))

    def hits(self, observations: Iterable[Observation], ctx: RuleContext) -> list[Hit]:
        """Every hit of this rule over a session, one per transmission, in timeline order."""
        ordered = timeline(observations)
        if self.check is not None:
            return [Hit(o.transmission.id, cats) for o in ordered
                    if (cats := self.check(o, ctx)) is not None]
        assert self.step is not None
        memo: StepMemo = {}
        merged: dict[int, frozenset[str]] = {}
        for obs in ordered:
            for tx_id, cats in self.step(obs, memo, ctx):
                merged[tx_id] = merged.get(tx_id, frozenset()) | cats
        rank = {o.transmission.id: i for i, o in enumerate(ordered)}
        return [Hit(tx_id, merged[tx_id]) for tx_id in sorted(merged, key=rank.__getitem__)]
