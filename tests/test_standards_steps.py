"""Which session steps one session performed: the facts a conformance item's *pass* rests on."""

from __future__ import annotations

import pytest

from auditor.model import ConsentEvent
from auditor.standards.steps import BY_ID, STEP_IDS, STEPS, SessionFacts, performed


def grant(ts: float) -> ConsentEvent:
    return ConsentEvent(ts=ts, action="grant", categories=("all-disclosed",))


def phase(ts: float, name: str) -> ConsentEvent:
    return ConsentEvent(ts=ts, action="phase", name=name)


def act(ts: float, action: str) -> ConsentEvent:
    return ConsentEvent(ts=ts, action=action, categories=("location.precise",))


def result(events, facts, step):
    return {r.step: r for r in performed(events, facts)}[step]


FULL = SessionFacts(first=0.0, last=10_000.0, traffic_before_grant=True)


def test_every_step_is_judged_once_in_procedure_order():
    assert [r.step for r in performed([], SessionFacts())] == list(STEP_IDS)
    assert len(set(STEP_IDS)) == len(STEPS)


def test_every_step_says_what_to_do_in_both_languages():
    for step in STEPS:
        assert step.title.en and step.title.zh and step.how.en and step.how.zh, step.id


@pytest.mark.parametrize(("events", "facts", "step", "done"), [
    # before-consent: traffic before the first grant, for at least five minutes
    ([grant(600)], FULL, "before-consent", True),
    ([grant(100)], FULL, "before-consent", False),
    ([grant(600)], SessionFacts(first=0, last=900, traffic_before_grant=False),
     "before-consent", False),
    ([], FULL, "before-consent", True),  # never granted: the whole session was before it
    # instants with use after them
    ([grant(10)], FULL, "grant", True),
    ([], FULL, "grant", False),
    ([act(9_000, "withdraw")], FULL, "withdraw", True),
    ([act(9_900, "withdraw")], FULL, "withdraw", False),  # too little use after it
    ([act(20_000, "withdraw")], FULL, "withdraw", False),  # after the last message
    ([act(100, "refuse")], FULL, "refuse", True),
    # phases last until the next phase mark or the last message
    ([phase(0, "idle")], FULL, "idle", True),
    ([phase(0, "idle"), phase(600, "use")], FULL, "idle", False),
    ([phase(0, "IDLE")], FULL, "idle", True),
    ([phase(0, "idle"), phase(600, "use"), phase(5_000, "idle")], FULL, "idle", True),
    ([phase(0, "binding")], FULL, "binding", True),
    ([phase(0, "use"), phase(100, "idle")], FULL, "use", False),
    # the traffic itself can show a step
    ([], SessionFacts(first=0, last=10, update_fetch=True), "update", True),
    ([], FULL, "update", False),
    ([], SessionFacts(first=0, last=10, probed_hosts=2), "tls-probe", True),
    ([], FULL, "tls-probe", False),
])
def test_performed(events, facts, step, done):
    assert result(events, facts, step).performed is done


def test_a_short_phase_says_how_long_it_lasted_and_how_long_it_needed():
    r = result([phase(0, "idle"), phase(600, "use")], FULL, "idle")
    assert (r.at, r.duration_s) == (0, 600)
    assert r.missing.en == f"lasted 10 min of the {BY_ID['idle'].min_duration_s // 60} min needed"
    assert "10" in r.missing.zh


def test_a_missing_step_names_its_mark():
    r = result([], FULL, "idle")
    assert r.missing is not None and "idle" in r.missing.en and r.at is None
