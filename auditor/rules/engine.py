"""Turn observations into findings: one finding per (rule, recipient organisation).

A finding is one problem: a rule that hits the same organisation for several categories, over
several of its hosts, is still one finding, listing every category with its own count and
first/last times (a lab signs problems, not category sets: one finding per category set made
one problem several findings). Every rule runs once per observation, where it lands: message
rules judge it, session rules step through it with a memo per session; a session rule hitting
a message again adds the new categories to that message in the same finding. ``evaluate``
feeds a session in timeline order, so its findings are the same whatever order the
observations came in. Live alerts feed them as they arrive: a message that lands slightly out
of time order (concurrent connections do that) is stepped where it lands, as an alert must be
raised now; the findings a session writes come from ``evaluate`` over the stored timeline.

The consent states a finding was judged under are asked of the ledger when the findings are,
once per message and category: several rules hit one message for the same categories, and
the alerts raised while traffic flows never show them.

The consent family's rules overlap, so a message's hits from them are narrowed before they
are filed: each category goes to the most specific rule that hit it
(``consent_rules.PRECEDENCE``, applied by ``most_specific`` here and nowhere else). Every
finding stays one per (rule, organisation); only the categories a more specific
consent rule claimed leave the others.

A rule that raises on one transmission loses that one judgement, never the session's: the
engine catches it per rule and transmission and keeps it in ``errors`` (the report lists it
under coverage). One hostile message must not stop every report of a session (issue 13).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from auditor.categories import severity_rank
from auditor.memo import Memo
from auditor.model import CategoryFacts, Finding, Observation
from auditor.rules.base import Rule, RuleContext, StepMemo, timeline
from auditor.rules.catalogue import CATALOGUE
from auditor.rules.consent_rules import most_specific

Key = tuple[str, str]  # rule id, recipient organisation
Failures = dict[tuple[int, str], str]  # (transmission, rule id) -> what was raised
RULE_STAGE = "rule"  # the coverage ``stage`` of a rule's error: ``rule RULE_ID``
STATES = 1 << 16  # (message, category) consent states remembered while findings are judged


def finding_id(rule_id: str, organisation: str) -> str:
    """Stable across runs and tool versions: reports and labs' tooling refer to it. The
    categories are not part of it: a finding whose categories change stays the same finding."""
    key = f"{rule_id}|{organisation}"
    return "KA-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def recipient_of(obs: Observation) -> str:
    """The address a message went to: the registrable domain, else the host or IP."""
    return obs.recipient.domain or obs.transmission.host or obs.transmission.ip


def organisation_of(obs: Observation) -> str:
    """The name a finding is filed under: the recipient's organisation (from the profile,
    the SDK table or the maker) when known, else its address as ``recipient_of`` gives it.
    The organisation is the unit a lab holds responsible, whatever hosts or IPs it uses."""
    return obs.recipient.organization or recipient_of(obs)


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Open:
    """A finding while its messages are gathered: they are kept with the categories the rule
    hit each for, not their consent states, which are judged once, when the findings are
    asked for. A message is a member once, however often a session rule hits it."""

    rule: Rule
    organisation: str
    members: dict[int, Observation] = field(default_factory=dict)  # by transmission id
    hit: dict[int, set[str]] = field(default_factory=dict)  # transmission id -> categories

    def add(self, obs: Observation, cats: frozenset[str]) -> None:
        """File a hit: the message once, its categories merged with any earlier hit's."""
        self.members[obs.transmission.id] = obs
        self.hit.setdefault(obs.transmission.id, set()).update(cats)

    def finding(self, members: Iterable[Observation] | None = None,
                consent: frozenset[str] = frozenset()) -> Finding:
        """The finding over ``members`` (all of them unless given), judged under ``consent``."""
        kept = list(self.members.values()) if members is None else list(members)
        txs = [o.transmission for o in kept]
        times = [tx.ts for tx in txs]
        sent: dict[str, list[float]] = {}
        for o in kept:
            for cat in self.hit[o.transmission.id]:
                sent.setdefault(cat, []).append(o.transmission.ts)
        per_category = tuple(CategoryFacts(c, len(ts), min(ts), max(ts))
                             for c, ts in sorted(sent.items()))
        return Finding(
            id=finding_id(self.rule.id, self.organisation),
            rule=self.rule.id, severity=self.rule.severity, title=self.rule.title,
            categories=tuple(sorted(sent)), recipient=self.organisation,
            transmissions=tuple(sorted(tx.id for tx in txs)), first_seen=min(times),
            last_seen=max(times), references=self.rule.references,
            consent=tuple(sorted(consent)),
            recipients=tuple(sorted({recipient_of(o) for o in kept})),
            per_category=per_category)


class Aggregator:
    """Feeds observations through every rule, each where it lands; live alerts and
    ``evaluate`` alike."""

    def __init__(self, ctx: RuleContext, rules: Iterable[Rule] = CATALOGUE) -> None:
        self.ctx = ctx
        self.rules = tuple(rules)
        self._message = tuple(r for r in self.rules if r.scope == "message")
        self._session = tuple(r for r in self.rules if r.scope == "session")
        self._open: dict[Key, _Open] = {}
        self._by_id: dict[int, Observation] = {}
        self._memo: dict[str, StepMemo] = {r.id: {} for r in self._session}
        self._errors: Failures = {}  # a rule that raised on a transmission
        # the findings with their consent states and the ledger's failures, until an ``add``
        # (the ledger may have moved by then: a mark arrives while traffic flows)
        self._judged: tuple[list[Finding], Failures] | None = None

    def add(self, obs: Observation) -> list[Finding]:
        """Apply every rule to one observation; return the findings it opened, as alerts
        show them (without the consent states ``findings`` judges)."""
        self._judged = None
        self._by_id[obs.transmission.id] = obs
        hits = self._judge(obs)
        opened = [found for rule in self._message
                  if (cats := hits.get(rule.id)) is not None
                  and (found := self._record(rule, obs, cats))]
        return opened + self._step(obs) if self._session else opened

    def extend(self, observations: Iterable[Observation]) -> list[Finding]:
        """Many observations at once, in timeline order; returns the findings opened."""
        return [f for obs in timeline(observations) for f in self.add(obs)]

    def findings(self) -> list[Finding]:
        """All findings with the consent states they were judged under, worst first, then
        the most frequent; ties in a fixed order."""
        return list(self._judgement()[0])

    def errors(self) -> list[dict[str, object]]:
        """Each rule that failed on a transmission (its own judgement, or the ledger's on a
        message it hit), as coverage lists errors (``Store.errors`` rows): in transmission
        order, then by rule."""
        failures = {**self._errors, **self._judgement()[1]}
        return [{"transmission": tx_id, "stage": f"{RULE_STAGE} {rule_id}", "message": message}
                for (tx_id, rule_id), message in sorted(failures.items())]

    # -- internals ---------------------------------------------------------------------------
    def _failed(self, rule: Rule, obs: Observation, exc: Exception) -> None:
        self._errors[(obs.transmission.id, rule.id)] = _failure(exc)

    def _judge(self, obs: Observation) -> dict[str, frozenset[str]]:
        """Every message rule's hit on one message (rule id -> categories), each consent
        category left to its most specific rule. A consent rule that raised claims nothing:
        the next rule in the order that hit the category keeps it."""
        hits: dict[str, frozenset[str]] = {}
        for rule in self._message:
            assert rule.check is not None
            try:
                cats = rule.check(obs, self.ctx)
            except Exception as e:  # noqa: BLE001 - one rule on one message, not the session
                self._failed(rule, obs, e)
                continue
            if cats is not None:
                hits[rule.id] = cats
        return most_specific(hits)

    def _record(self, rule: Rule, obs: Observation, cats: frozenset[str]) -> Finding | None:
        """File one hit under its finding; the finding when this opened it (a live alert is
        raised once per finding, not per category or message)."""
        key = (rule.id, organisation_of(obs))
        agg = self._open.get(key)
        if agg is None:
            agg = self._open[key] = _Open(rule, key[1])
            agg.add(obs, cats)
            return agg.finding()
        agg.add(obs, cats)
        return None

    def _step(self, obs: Observation) -> list[Finding]:
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
                    found = self._record(rule, self._by_id[tx_id], cats)
                except Exception as e:  # noqa: BLE001 - as above, for the hit's message
                    self._failed(rule, self._by_id.get(tx_id, obs), e)
                    continue
                if found is not None:
                    opened.append(found)
        return opened

    def _judgement(self) -> tuple[list[Finding], Failures]:
        """Every finding with the consent states its messages' categories were sent under.
        The ledger is asked once per message and category, however many rules hit it; a
        message the ledger fails on leaves that finding and is listed as the rule's error,
        as if the rule had failed on it."""
        if self._judged is None:
            states: Memo[tuple[int, str], str] = Memo(STATES)
            failed: Failures = {}
            out: list[Finding] = []
            for agg in self._open.values():
                consent: set[str] = set()
                kept: list[Observation] = []
                for obs in agg.members.values():
                    cats = agg.hit[obs.transmission.id]
                    try:
                        consent |= {self._status(obs, c, states) for c in cats}
                    except Exception as e:  # noqa: BLE001 - one message, not the session
                        failed[(obs.transmission.id, agg.rule.id)] = _failure(e)
                        continue
                    kept.append(obs)
                if kept:
                    out.append(agg.finding(kept, frozenset(consent)))
            out.sort(key=lambda f: (severity_rank(f.severity), -f.count, f.rule, f.recipient,
                                    f.categories))
            self._judged = out, failed
        return self._judged

    def _status(self, obs: Observation, category: str, states: Memo[tuple[int, str], str]
                ) -> str:
        """The consent status a category was sent under, at the message's time."""
        tx = obs.transmission
        return states.get_or_make((tx.id, category), lambda: self.ctx.ledger.state(
            category, obs.recipient, tx.ts, tx.host).status)


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
