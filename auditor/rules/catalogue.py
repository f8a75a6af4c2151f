"""Rules as data (RULES.md "v1 rules"). Ids are stable: reports and CI gates key on them.

A reference ending in ``*`` is a clause RULES.md could not confirm from the published text;
reports show it as unverified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auditor.consent import Ledger
from auditor.model import Observation
from auditor.profile import ConsentPlan, Profile
from auditor.rules import consent_rules, transport_rules


@dataclass(frozen=True)
class RuleContext:
    profile: Profile
    ledger: Ledger

    @property
    def plan(self) -> ConsentPlan:
        return self.ledger.plan


Check = Callable[[Observation, RuleContext], frozenset[str]]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str
    references: tuple[str, ...]
    check: Check  # the categories of this observation the rule fires on; empty: no hit

    @property
    def unverified(self) -> tuple[str, ...]:
        return tuple(r for r in self.references if r.endswith("*"))


CATALOGUE: tuple[Rule, ...] = (
    Rule("PRE_CONSENT_PI", "critical",
         "Personal data sent before any guardian consent",
         ("PIPL 13", "PIPL 31", "CPI 9", "IDM 3.1", "35273 5.4", "GDPR 8(1)", "ETSI 6-2",
          "COPPA 312.5(a)*"),
         consent_rules.pre_consent_pi),
    Rule("CLEARTEXT_PI", "critical",
         "Personal data sent in cleartext (HTTP, plain TCP/UDP, MQTT or DNS)",
         ("PIPL 51(3)", "35273 6.3 a)", "ETSI 5.5-1", "ETSI 5.8-1", "ETSI 5.8-2",
          "18031 SCM-1", "18031 SCM-3", "FTC v. VTech (2018)"),
         transport_rules.cleartext_pi),
)


def by_id(rule_id: str) -> Rule:
    for rule in CATALOGUE:
        if rule.id == rule_id:
            return rule
    raise KeyError(rule_id)
