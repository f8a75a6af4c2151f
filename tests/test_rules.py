"""Every rule carries its own proof: a hit and an ok fixture per rule (semgrep-rules style),
and a walk over the catalogue that fails when a rule lacks either."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from auditor.consent import Ledger
from auditor.model import ConsentEvent, Detection, Observation, Recipient, Transmission
from auditor.profile import ConsentPlan, Disclosure, Profile
from auditor.rules import CATALOGUE, Aggregator, RuleContext, by_id, evaluate

T0 = 1_790_000_000.0
FIRST = Recipient("acme-watch.example", party="first")


@dataclass(frozen=True)
class Case:
    """One transmission carrying ``categories`` at ``T0 + at`` over ``transport``, judged
    against ``events``."""

    categories: tuple[str, ...] = ("identifier.imei",)
    transport: str = "https"
    at: float = 100.0
    events: tuple[ConsentEvent, ...] = ()
    recipient: Recipient = FIRST
    direction: str = "up"
    disclosed: tuple[Disclosure, ...] = field(default=(
        Disclosure("acme-watch.example", ("identifier.imei", "location.precise")),))

    def observation(self) -> Observation:
        tx = Transmission(id=1, ts=T0 + self.at, transport=self.transport,
                          host="api." + self.recipient.domain, port=443,
                          direction=self.direction)
        dets = tuple(Detection(1, c, "known", "body", f"body.json.{c}", (), c, "v", 0.99)
                     for c in self.categories)
        return Observation(tx, self.recipient, dets)

    def context(self) -> RuleContext:
        return RuleContext(Profile(first_party=("acme-watch.example",)),
                           Ledger(ConsentPlan(disclosed=self.disclosed, events=self.events)))


GRANT = ConsentEvent(T0, "grant", ("all-disclosed",))

CASES: dict[str, dict[str, list[Case]]] = {
    "PRE_CONSENT_PI": {
        "hit": [Case(), Case(events=(ConsentEvent(T0 + 500, "grant", ("all-disclosed",)),))],
        "ok": [Case(events=(GRANT,)), Case(categories=()),
               Case(direction="down")],
    },
    "CLEARTEXT_PI": {
        "hit": [Case(transport="http", events=(GRANT,)), Case(transport="tcp"),
                Case(transport="dns")],
        "ok": [Case(transport="https"), Case(transport="http", categories=()),
               Case(transport="websocket")],
    },
}


def test_every_rule_has_hit_and_ok_fixtures() -> None:
    for rule in CATALOGUE:
        cases = CASES.get(rule.id, {})
        assert cases.get("hit") and cases.get("ok"), f"{rule.id} lacks hit or ok fixtures"


def test_rule_ids_are_unique_and_severities_known() -> None:
    ids = [r.id for r in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert {r.severity for r in CATALOGUE} <= {"critical", "high", "medium", "low", "info"}


@pytest.mark.parametrize(("rule_id", "case"), [
    (rid, c) for rid, cases in CASES.items() for c in cases["hit"]])
def test_rule_hits(rule_id: str, case: Case) -> None:
    assert by_id(rule_id).check(case.observation(), case.context()) == frozenset(case.categories)


@pytest.mark.parametrize(("rule_id", "case"), [
    (rid, c) for rid, cases in CASES.items() for c in cases["ok"]])
def test_rule_stays_quiet(rule_id: str, case: Case) -> None:
    assert by_id(rule_id).check(case.observation(), case.context()) == frozenset()


def _obs(tx_id: int, at: float, cats: tuple[str, ...], transport: str = "https",
         recipient: Recipient = FIRST) -> Observation:
    tx = Transmission(id=tx_id, ts=T0 + at, transport=transport, host=recipient.domain,
                      port=443)
    return Observation(tx, recipient, tuple(
        Detection(tx_id, c, "known", "body", "f", (), c, "v", 0.99) for c in cats))


def test_findings_aggregate_per_rule_recipient_and_category_set() -> None:
    ctx = Case().context()
    third = Recipient("tracker.example", party="third")
    observations = [_obs(1, 1, ("identifier.imei",)), _obs(2, 2, ("identifier.imei",)),
                    _obs(3, 3, ("identifier.imei", "location.precise")),
                    _obs(4, 4, ("identifier.imei",), recipient=third)]
    findings = evaluate(observations, ctx)
    summary = {(f.rule, f.recipient, f.categories): (f.transmissions, f.count)
               for f in findings}
    assert summary == {
        ("PRE_CONSENT_PI", "acme-watch.example", ("identifier.imei",)): ((1, 2), 2),
        ("PRE_CONSENT_PI", "acme-watch.example", ("identifier.imei", "location.precise")):
            ((3,), 1),
        ("PRE_CONSENT_PI", "tracker.example", ("identifier.imei",)): ((4,), 1),
    }
    first = findings[0]
    assert first.count == 2 and first.first_seen == T0 + 1 and first.last_seen == T0 + 2


def test_aggregator_reports_a_finding_only_when_it_opens() -> None:
    agg = Aggregator(Case().context())
    assert [f.rule for f in agg.add(_obs(1, 1, ("identifier.imei",), "http"))] == [
        "PRE_CONSENT_PI", "CLEARTEXT_PI"]
    assert agg.add(_obs(2, 2, ("identifier.imei",), "http")) == []
    assert {f.count for f in agg.findings()} == {2}


def test_findings_are_sorted_worst_first_and_record_the_consent_state() -> None:
    ctx = Case(events=(GRANT,)).context()
    (finding,) = evaluate([_obs(1, 5, ("identifier.imei",), "http")], ctx)
    assert finding.rule == "CLEARTEXT_PI" and finding.consent == ("granted",)
