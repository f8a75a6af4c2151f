"""Each rule's precondition (auditor/rules/exercise.py): a rule silent on a session that never
gave it anything to judge is ``not exercised``, never a pass (issue 15, item 4)."""

from __future__ import annotations

import pytest

from auditor.model import Observation, Recipient
from auditor.rules import CATALOGUE
from auditor.rules.exercise import PRECONDITIONS, Seen, not_covered, statuses
from tests.factories import FIRST_PARTY, event, tx


def _obs(party: str = "first", **overrides: object) -> Observation:
    from auditor.model import Detection

    message = tx(**overrides)
    return Observation(message, Recipient(FIRST_PARTY, party=party),
                       (Detection(message.id, "identifier.imei", "known", "body", "body.imei",
                                  (), "identifiers.imei", "864536040123455", 0.99),))


def test_every_rule_of_the_catalogue_names_its_precondition():
    assert [r.id for r in CATALOGUE if r.id not in PRECONDITIONS] == []
    assert [r for r in PRECONDITIONS if r not in {rule.id for rule in CATALOGUE}] == []


@pytest.mark.parametrize("rule, events, party, status", [
    ("AFTER_WITHDRAWAL", (), "first", "not exercised"),
    ("AFTER_WITHDRAWAL", (event("withdraw", 0.0),), "first", "pass"),
    ("AFTER_WITHDRAWAL", (event("withdraw", 9e12),), "first", "not exercised"),
    ("BACKGROUND_COLLECTION", (event("phase", 0.0, name="idle"),), "first", "pass"),
    ("BACKGROUND_COLLECTION", (event("phase", 0.0, name="setup"),), "first", "not exercised"),
    ("LOCATION_TO_THIRD_PARTY", (), "first", "not exercised"),
    ("LOCATION_TO_THIRD_PARTY", (), "third", "pass"),
    ("PRE_CONSENT_PI", (), "first", "pass"),
])
def test_a_rule_is_exercised_only_when_its_precondition_happened(rule, events, party, status):
    (result,) = statuses([rule], [], [_obs(party)], events)
    assert result.status == status
    if status == "not exercised":
        assert result.reason == PRECONDITIONS[rule].missing


@pytest.mark.parametrize("rule, events, party, status", [
    ("AFTER_WITHDRAWAL", (event("withdraw", 0.0),), "first", "pass"),
    ("AFTER_WITHDRAWAL", (event("withdraw", 9e12),), "first", "not exercised"),
    ("LOCATION_TO_THIRD_PARTY", (), "third", "pass"),
    ("COVERT_MONITOR", (), "first", "not exercised"),
])
def test_a_stream_gathered_one_message_at_a_time_gives_the_same_statuses(rule, events, party,
                                                                         status):
    seen = Seen()
    for o in (_obs(party), _obs(party, id=2, ts=1.0)):
        seen.add(o)
    (result,) = statuses([rule], [], seen.close(events))
    assert result.status == status
    assert [result] == statuses([rule], [], [_obs(party), _obs(party, id=2, ts=1.0)], events)


def test_a_rule_with_findings_fails_whatever_its_precondition():
    (result,) = statuses(["AFTER_WITHDRAWAL"], ["AFTER_WITHDRAWAL"], [], [])
    assert result.status == "fail"


@pytest.mark.parametrize("planned, signals, happened, ended, gaps", [
    ((event("withdraw", 50.0),), (), (), 100.0, []),
    ((event("withdraw", 150.0),), (), (), 100.0,
     ["planned withdraw came after the last message"]),
    ((event("grant", 0.0),), (), (), None, ["planned grant came after the last message"]),
    ((), (("withdraw", "unbind"),), (), 100.0, ["signalled withdraw 'unbind' never happened"]),
    ((), (("withdraw", "unbind"),),
     (event("withdraw", 60.0, name="unbind", source="signal"),), 100.0, []),
])
def test_the_plans_steps_the_session_did_not_cover(planned, signals, happened, ended, gaps):
    assert not_covered(planned, signals, happened, ended) == gaps


@pytest.mark.parametrize("rule, probes, status", [
    ("TLS_CERT_NOT_VALIDATED", (), "not exercised"),
    ("TLS_CERT_NOT_VALIDATED", ("untrusted-ca",), "pass"),
    ("TLS_HOSTNAME_NOT_CHECKED", ("untrusted-ca",), "not exercised"),
    ("TLS_HOSTNAME_NOT_CHECKED", ("untrusted-ca", "wrong-host"), "pass"),
    ("TLS_EXPIRED_CERT_ACCEPTED", ("expired",), "pass"),
    ("TLS_LEGACY_ACCEPTED", ("expired",), "not exercised"),
    ("TLS_LEGACY_ACCEPTED", ("tls1.0",), "pass"),
])
def test_a_tls_probe_rule_is_exercised_only_when_the_probe_ran_its_case(rule, probes, status):
    """A refused case (uninspected) exercises its rule as much as an accepted one."""
    observations = [_obs(), *(_obs(id=i, transport="tls", inspected=False, probe=case)
                               for i, case in enumerate(probes, 2))]
    (result,) = statuses([rule], [], observations, ())
    assert result.status == status
    if status == "not exercised":
        assert result.reason.startswith("the TLS probe did not run")
