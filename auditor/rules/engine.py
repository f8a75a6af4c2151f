"""Turn observations into findings: one finding per (rule, recipient, category set).

Message rules judge each observation as it arrives. Session rules step through the timeline
in order with a memo per session; a hit on a message a session rule already hit merges into
that message's categories (it moves to the finding for the larger set). A message that
arrives out of time order replays the session rules over the sorted timeline, so live
alerts and the offline ``evaluate`` of the same observations give the same findings.

A rule that raises on one transmission loses that one judgement, never the session's: the
engine catches it per rule and transmission and keeps it in ``errors`` (the report lists it
under coverage). One hostile message must not stop every report of a session (issue 13).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from auditor.categories import severity_rank
from auditor.model import Finding, Observation
from auditor.rules.base import Rule, RuleContext, StepMemo, timeline
from auditor.rules.catalogue import CATALOGUE

Key = tuple[str, str, tuple[str, ...]]  # rule id, recipient, sorted categories
_NONE: frozenset[str] = frozenset()
RULE_STAGE = "rule"  # the coverage ``stage`` of a rule's error: ``rule RULE_ID``


def finding_id(rule_id: str, recipient: str, categories: tuple[str, ...]) -> str:
    """Stable across runs and tool versions: reports and labs' tooling refer to it."""
    key = f"{rule_id}|{recipient}|{','.join(categories)}"
    return "KA-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def recipient_of(obs: Observation) -> str:
    """The name a finding is filed under: the registrable domain, else the host or IP."""
    return obs.recipient.domain or obs.transmission.host or obs.transmission.ip


def _order(obs: Observation) -> tuple[float, int]:
    return obs.transmission.ts, obs.transmission.id


@dataclass
class _Open:
    rule: Rule
    recipient: str
    categories: tuple[str, ...]
    # transmission id -> (its time, the consent states its categories were judged under)
    members: dict[int, tuple[float, frozenset[str]]] = field(default_factory=dict)

    def finding(self) -> Finding:
        times = [ts for ts, _ in self.members.values()]
        consent = frozenset().union(*(states for _, states in self.members.values()))
        return Finding(
            id=finding_id(self.rule.id, self.recipient, self.categories),
            rule=self.rule.id, severity=self.rule.severity, title=self.rule.title,
            categories=self.categories, recipient=self.recipient,
            transmissions=tuple(sorted(self.members)), first_seen=min(times),
            last_seen=max(times), references=self.rule.references,
            consent=tuple(sorted(consent)))


class Aggregator:
    """Feeds observations through every rule; used live (alerts) and offline alike."""

    def __init__(self, ctx: RuleContext, rules: Iterable[Rule] = CATALOGUE, *,
                 exact: bool = True, consent: bool = True) -> None:
        """``exact=False`` is for live alerts: a message that arrives slightly out of time
        order (concurrent connections do that) is stepped where it lands instead of
        replaying the whole timeline, which would cost O(n) per message. The findings a
        session writes come from ``evaluate`` over the complete, ordered timeline.

        ``consent=False`` leaves out the consent states a finding was judged under (its
        ``consent`` stays empty): live alerts do not show them, the report judges them again
        from the whole timeline, and asking the ledger for each hit was about a twentieth
        of the live worker's time per message."""
        self.exact = exact
        self.consent = consent
        self.ctx = ctx
        self.rules = tuple(rules)
        self._message = tuple(r for r in self.rules if r.scope == "message")
        self._session = tuple(r for r in self.rules if r.scope == "session")
        self._open: dict[Key, _Open] = {}
        self._history: list[Observation] = []  # in timeline order
        self._by_id: dict[int, Observation] = {}
        self._memo: dict[str, StepMemo] = {r.id: {} for r in self._session}
        self._placed: dict[tuple[str, int], Key] = {}  # (session rule, tx) -> its finding
        self._newest: tuple[float, int] | None = None  # the last observation stepped
        self._states: dict[tuple[int, str], str] = {}  # (tx, category) -> status, per add
        # (transmission, rule id) -> what the rule raised on it; a replay overwrites, so each
        # failure is listed once however often the timeline is stepped again
        self._errors: dict[tuple[int, str], str] = {}

    def add(self, obs: Observation) -> list[Finding]:
        """Apply every rule to one observation; return the findings it opened."""
        self._states.clear()
        bisect.insort(self._history, obs, key=_order)
        self._by_id[obs.transmission.id] = obs
        opened = [found for rule in self._message if (found := self._judge(rule, obs))]
        if self._session:
            in_order = self._newest is None or _order(obs) > self._newest
            opened += self._step(obs) if in_order or not self.exact else self._replay()
        return opened

    def extend(self, observations: Iterable[Observation]) -> list[Finding]:
        """Many observations at once, in timeline order; returns the findings opened."""
        return [f for obs in timeline(observations) for f in self.add(obs)]

    def findings(self) -> list[Finding]:
        """All findings, worst first, then the most frequent; ties in a fixed order."""
        out = [agg.finding() for agg in self._open.values()]
        return sorted(out, key=lambda f: (severity_rank(f.severity), -f.count, f.rule,
                                          f.recipient, f.categories))

    def errors(self) -> list[dict[str, object]]:
        """Each rule that failed on a transmission, as coverage lists errors (``Store.errors``
        rows): in transmission order, then by rule."""
        return [{"transmission": tx_id, "stage": f"{RULE_STAGE} {rule_id}", "message": message}
                for (tx_id, rule_id), message in sorted(self._errors.items())]

    # -- internals ---------------------------------------------------------------------------
    def _failed(self, rule: Rule, obs: Observation, exc: Exception) -> None:
        self._errors[(obs.transmission.id, rule.id)] = f"{type(exc).__name__}: {exc}"

    def _judge(self, rule: Rule, obs: Observation) -> Finding | None:
        assert rule.check is not None
        try:
            cats = rule.check(obs, self.ctx)
            return None if cats is None else self._record(rule, obs, cats)
        except Exception as e:  # noqa: BLE001 - one rule on one message, not the session
            self._failed(rule, obs, e)
            return None

    def _record(self, rule: Rule, obs: Observation, cats: frozenset[str]) -> Finding | None:
        """File one hit under its finding; the finding when this opened it."""
        tx = obs.transmission
        key = (rule.id, recipient_of(obs), tuple(sorted(cats)))
        # the states first: the ledger raising leaves no finding without members behind
        states = frozenset(self._state(obs, c) for c in cats) if self.consent else _NONE
        agg = self._open.get(key)
        is_new = agg is None
        if agg is None:
            agg = self._open[key] = _Open(rule, key[1], key[2])
        agg.members[tx.id] = (tx.ts, states)
        return agg.finding() if is_new else None

    def _state(self, obs: Observation, category: str) -> str:
        """The consent status a category was sent under. Several rules hit one message for
        the same categories; the ledger is asked once per message and category (the memo
        lasts one ``add``: the ledger may have changed by the next)."""
        key = (obs.transmission.id, category)
        status = self._states.get(key)
        if status is None:
            tx = obs.transmission
            status = self._states[key] = self.ctx.ledger.state(
                category, obs.recipient, tx.ts, tx.host).status
        return status

    def _step(self, obs: Observation) -> list[Finding]:
        self._newest = _order(obs)
        opened: list[Finding] = []
        for rule in self._session:
            assert rule.step is not None
            try:  # the hits as a list first: a step failing halfway places none of them
                hits = list(rule.step(obs, self._memo[rule.id], self.ctx))
            except Exception as e:  # noqa: BLE001 - one rule on one message, not the session
                self._failed(rule, obs, e)
                continue
            for tx_id, cats in hits:
                try:
                    found = self._place(rule, self._by_id[tx_id], cats)
                except Exception as e:  # noqa: BLE001 - as above, for the hit's message
                    self._failed(rule, self._by_id.get(tx_id, obs), e)
                    continue
                if found is not None:
                    opened.append(found)
        return opened

    def _place(self, rule: Rule, obs: Observation, cats: frozenset[str]) -> Finding | None:
        """A session rule's hit: merged with the categories it already hit that message for."""
        placed = (rule.id, obs.transmission.id)
        old = self._placed.get(placed)
        if old is not None:
            merged = cats | frozenset(old[2])
            if len(merged) == len(old[2]):
                return None
            cats = merged
            del self._open[old].members[obs.transmission.id]
            if not self._open[old].members:
                del self._open[old]
        self._placed[placed] = (rule.id, recipient_of(obs), tuple(sorted(cats)))
        return self._record(rule, obs, cats)

    def _replay(self) -> list[Finding]:
        """A message arrived out of time order: redo the session rules over the timeline."""
        ids = {r.id for r in self._session}
        before = {key for key in self._open if key[0] in ids}
        self._open = {key: agg for key, agg in self._open.items() if key[0] not in ids}
        self._memo = {rid: {} for rid in ids}
        self._placed.clear()
        for obs in self._history:
            self._step(obs)
        return [agg.finding() for key, agg in self._open.items()
                if key[0] in ids and key not in before]


def evaluate(observations: Iterable[Observation], ctx: RuleContext,
             rules: Iterable[Rule] = CATALOGUE, *,
             errors: list[dict[str, object]] | None = None) -> list[Finding]:
    """Every finding of a session, the same for the same input whatever its order. A rule
    that failed on a transmission is appended to ``errors`` (coverage rows), when given."""
    agg = Aggregator(ctx, rules)
    agg.extend(observations)
    if errors is not None:
        errors.extend(agg.errors())
    return agg.findings()
