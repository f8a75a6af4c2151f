"""Turn observations into findings: one finding per (rule, recipient, category set)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from auditor.categories import severity_rank
from auditor.model import Finding, Observation
from auditor.rules.catalogue import CATALOGUE, Rule, RuleContext


@dataclass
class _Open:
    rule: Rule
    recipient: str
    categories: tuple[str, ...]
    transmissions: list[int] = field(default_factory=list)
    first: float = float("inf")
    last: float = float("-inf")
    consent: set[str] = field(default_factory=set)

    def finding(self) -> Finding:
        key = f"{self.rule.id}|{self.recipient}|{','.join(self.categories)}"
        return Finding(
            id="KA-" + hashlib.sha1(key.encode()).hexdigest()[:10],
            rule=self.rule.id, severity=self.rule.severity, title=self.rule.title,
            categories=self.categories, recipient=self.recipient,
            transmissions=tuple(sorted(self.transmissions)), first_seen=self.first,
            last_seen=self.last, references=self.rule.references,
            consent=tuple(sorted(self.consent)))


class Aggregator:
    """Feeds observations through every rule; used live (alerts) and offline alike."""

    def __init__(self, ctx: RuleContext, rules: Iterable[Rule] = CATALOGUE) -> None:
        self.ctx = ctx
        self.rules = tuple(rules)
        self._open: dict[tuple[str, str, tuple[str, ...]], _Open] = {}

    def add(self, obs: Observation) -> list[Finding]:
        """Apply every rule to one observation; return the findings it opened."""
        opened: list[Finding] = []
        tx = obs.transmission
        for rule in self.rules:
            cats = rule.check(obs, self.ctx)
            if not cats:
                continue
            key = (rule.id, obs.recipient.domain, tuple(sorted(cats)))
            agg = self._open.get(key)
            if agg is None:
                agg = self._open[key] = _Open(rule, obs.recipient.domain, key[2])
                is_new = True
            else:
                is_new = False
            agg.transmissions.append(tx.id)
            agg.first, agg.last = min(agg.first, tx.ts), max(agg.last, tx.ts)
            for c in cats:
                agg.consent.add(self.ctx.ledger.state(c, obs.recipient, tx.ts, tx.host).status)
            if is_new:
                opened.append(agg.finding())
        return opened

    def findings(self) -> list[Finding]:
        """All findings, worst first, then the most frequent."""
        out = [agg.finding() for agg in self._open.values()]
        return sorted(out, key=lambda f: (severity_rank(f.severity), -f.count, f.rule,
                                          f.recipient))


def evaluate(observations: Iterable[Observation], ctx: RuleContext) -> list[Finding]:
    agg = Aggregator(ctx)
    for obs in sorted(observations, key=lambda o: (o.transmission.ts, o.transmission.id)):
        agg.add(obs)
    return agg.findings()
