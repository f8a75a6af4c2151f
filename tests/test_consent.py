"""auditor/consent.py: the ledger's state for (category, recipient, time) (RULES.md
"The consent ledger")."""

from __future__ import annotations

import pytest

from auditor.consent import GRANTED, NONE, REFUSED, WITHDRAWN, Ledger, recipient_matches
from auditor.model import Recipient
from tests.factories import T0, event, plan

ACME = Recipient("acme-watch.example", party="first")
AMAP = Recipient("amap.com", organization="AutoNavi", party="third")
ADS = Recipient("ads.example", party="third")

GRANT_ALL = event("grant", T0, "all-disclosed", separate="location.precise")
WITHDRAW_PRECISE = event("withdraw", T0 + 1000, "location.precise")


@pytest.mark.parametrize(("events", "category", "recipient", "dt", "expected"), [
    pytest.param((), "location.precise", ACME, 0, (NONE, False), id="no-events"),
    pytest.param((GRANT_ALL,), "location.precise", ACME, -1, (NONE, False),
                 id="before-the-grant"),
    pytest.param((GRANT_ALL,), "location.precise", ACME, 0, (GRANTED, True),
                 id="at-the-grant"),
    pytest.param((GRANT_ALL,), "identifier.imei", ACME, 5, (GRANTED, False),
                 id="all-disclosed-covers-disclosed-category"),
    pytest.param((GRANT_ALL,), "location.wifi", ACME, 5, (NONE, False),
                 id="all-disclosed-not-for-category-disclosed-elsewhere"),
    pytest.param((GRANT_ALL,), "location.wifi", AMAP, 5, (GRANTED, False),
                 id="all-disclosed-for-that-recipient"),
    pytest.param((GRANT_ALL,), "location.precise", AMAP, 5, (GRANTED, True),
                 id="separate-for-the-named-category"),
    pytest.param((GRANT_ALL,), "identifier.imei", ADS, 5, (NONE, False),
                 id="all-disclosed-undisclosed-recipient"),
    pytest.param((GRANT_ALL,), "identity.birthdate", ACME, 5, (NONE, False),
                 id="all-disclosed-undisclosed-category"),
    pytest.param((event("grant", T0, "location"),), "location.cell", ADS, 5, (GRANTED, False),
                 id="family-expands"),
    pytest.param((event("grant", T0, "location"),), "identifier.imei", ACME, 5, (NONE, False),
                 id="family-covers-only-its-members"),
    pytest.param((event("grant", T0, "location", recipients="amap.com"),),
                 "location.cell", AMAP, 5, (GRANTED, False), id="narrowed-recipient-covered"),
    pytest.param((event("grant", T0, "location", recipients="amap.com"),),
                 "location.cell", ACME, 5, (NONE, False), id="narrowed-other-recipient"),
    pytest.param((event("grant", T0, "location", recipients="autonavi"),),
                 "location.cell", AMAP, 5, (GRANTED, False), id="narrowed-by-organisation"),
    pytest.param((event("grant", T0, ["identifier.imei", "location"], separate="location"),),
                 "location.wifi", ADS, 5, (GRANTED, True), id="separate-family"),
    pytest.param((event("grant", T0, ["identifier.imei", "location"], separate="location"),),
                 "identifier.imei", ADS, 5, (GRANTED, False), id="separate-only-named"),
    pytest.param((event("refuse", T0, "media"),), "media.voice", ACME, 5, (REFUSED, False),
                 id="refuse-family"),
    pytest.param((GRANT_ALL, event("refuse", T0 + 10, "location.precise")),
                 "location.precise", ACME, 20, (REFUSED, False), id="refuse-after-grant"),
    pytest.param((event("refuse", T0, "location.precise"), GRANT_ALL),
                 "location.precise", ACME, 20, (GRANTED, True), id="grant-after-refuse"),
    pytest.param((GRANT_ALL, event("phase", T0 + 10, name="idle")),
                 "location.precise", ACME, 20, (GRANTED, True), id="phase-changes-nothing"),
])
def test_state(events: tuple, category: str, recipient: Recipient, dt: float,
               expected: tuple[str, bool]) -> None:
    state = Ledger(plan(*events)).state(category, recipient, T0 + dt)
    assert (state.status, state.separate) == expected
    assert (state.event is None) == (expected[0] == NONE)


def test_a_ledger_with_nothing_in_it_answers_at_once_until_an_event_arrives() -> None:
    """``state`` answers "no event" at once for a ledger without a notice or an event (no
    plan, as the bench capture's), asking again at each call: a mark added later counts."""
    ledger = Ledger(plan(disclosed={}))
    assert ledger.state("location.precise", ACME, T0 + 5).status == NONE
    ledger.add(event("grant", T0, "location.precise"))
    state = ledger.state("location.precise", ACME, T0 + 5)
    assert (state.status, state.event is not None) == (GRANTED, True)
    assert Ledger().state("location.precise", ACME, T0).event is None


@pytest.mark.parametrize(("grace", "dt", "expected"), [
    pytest.param(None, 999, GRANTED, id="before-withdrawal"),
    pytest.param(None, 1000, GRANTED, id="at-withdrawal-in-flight"),
    pytest.param(None, 1059.9, GRANTED, id="just-before-default-grace"),
    pytest.param(None, 1060.1, WITHDRAWN, id="just-after-default-grace"),
    pytest.param(30.0, 1029.9, GRANTED, id="just-before-plan-grace"),
    pytest.param(30.0, 1030.1, WITHDRAWN, id="just-after-plan-grace"),
    pytest.param(0.0, 1000, WITHDRAWN, id="no-grace"),
])
def test_withdrawal_grace(grace: float | None, dt: float, expected: str) -> None:
    extra = {} if grace is None else {"withdrawal_grace_s": grace}
    ledger = Ledger(plan(GRANT_ALL, WITHDRAW_PRECISE, **extra))
    assert ledger.state("location.precise", ACME, T0 + dt).status == expected
    # The withdrawal names one category: the others stay granted.
    assert ledger.state("identifier.imei", ACME, T0 + dt + 1000).status == GRANTED


@pytest.mark.parametrize(("dt", "expected"), [
    pytest.param(1045, GRANTED, id="inside-grace"),
    pytest.param(1100, GRANTED, id="after-grace"),
])
def test_regrant_inside_the_grace_window_outlives_the_withdrawal(dt: float,
                                                                 expected: str) -> None:
    regrant = event("grant", T0 + 1030, "location.precise", separate="location.precise")
    ledger = Ledger(plan(GRANT_ALL, WITHDRAW_PRECISE, regrant))
    state = ledger.state("location.precise", ACME, T0 + dt)
    assert (state.status, state.event) == (expected, regrant)


def test_withdrawal_narrowed_to_a_recipient() -> None:
    withdraw = event("withdraw", T0 + 100, "location", recipients="amap.com")
    ledger = Ledger(plan(GRANT_ALL, withdraw))
    t = T0 + 100 + 61
    assert ledger.state("location.precise", AMAP, t, host="restapi.amap.com").status == WITHDRAWN
    assert ledger.state("location.precise", ACME, t).status == GRANTED


def test_events_after_the_plan_are_merged_in_time_order() -> None:
    ledger = Ledger(plan(GRANT_ALL), (event("refuse", T0 - 50, "location.precise", source="mark"),
                                      event("withdraw", T0 + 10, "location", source="mark")))
    assert [e.action for e in ledger.events] == ["refuse", "grant", "withdraw"]
    assert ledger.state("location.precise", ACME, T0 - 1).status == REFUSED
    assert ledger.state("location.precise", ACME, T0 + 5).status == GRANTED
    ledger.add(event("grant", T0 + 500, "location"))
    assert ledger.state("location.precise", ACME, T0 + 501).status == GRANTED
    assert ledger.events[-1].ts == T0 + 500


@pytest.mark.parametrize(("dt", "expected"), [
    (-1, ""), (0, "setup"), (99, "setup"), (100, "idle"), (5000, "idle"),
])
def test_phase_at(dt: float, expected: str) -> None:
    ledger = Ledger(plan(event("phase", T0, name="setup"), GRANT_ALL,
                         event("phase", T0 + 100, name="idle")))
    assert ledger.phase_at(T0 + dt) == expected


@pytest.mark.parametrize(("events", "dt", "expected"), [
    pytest.param((), 0, False, id="no-events"),
    pytest.param((GRANT_ALL,), -1, False, id="before"),
    pytest.param((GRANT_ALL,), 0, True, id="at"),
    pytest.param((GRANT_ALL,), 1, True, id="after"),
    pytest.param((event("refuse", T0, "location"), event("phase", T0, name="x")), 10, False,
                 id="refuse-and-phase-are-not-grants"),
    pytest.param((event("grant", T0, "media", recipients="ads.example"),), 10, True,
                 id="any-grant-counts"),
])
def test_any_grant_before(events: tuple, dt: float, expected: bool) -> None:
    assert Ledger(plan(*events)).any_grant_before(T0 + dt) is expected


def test_disclosed_for() -> None:
    ledger = Ledger(plan())
    assert ledger.disclosed_for(AMAP) == {"location.precise", "location.wifi", "location.cell"}
    assert ledger.disclosed_for(ADS) == frozenset()
    assert ledger.disclosed_for(Recipient("x.example"), host="api.acme-watch.example") == {
        "location.precise", "identifier.imei", "contacts.entry"}


@pytest.mark.parametrize(("name", "recipient", "host", "expected"), [
    ("amap.com", AMAP, "", True),
    ("AMAP.com", AMAP, "", True),
    ("autonavi", AMAP, "", True),
    ("restapi.amap.com", AMAP, "restapi.amap.com", True),
    ("restapi.amap.com", AMAP, "", False),
    ("amap.com", ACME, "", False),
    ("acme", ACME, "", False),
])
def test_recipient_matches(name: str, recipient: Recipient, host: str, expected: bool) -> None:
    assert recipient_matches(name, recipient, host) is expected
