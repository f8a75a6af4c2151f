"""Session glue: marks from other processes interleaved with the session's own, and a
message the pipeline fails on is still committed."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.model import ConsentEvent, Transmission
from auditor.profile import Profile
from auditor.session import Session
from auditor.store import Store


def test_a_mark_from_another_process_is_not_skipped_by_a_later_own_mark(tmp_path: Path):
    session = Session(tmp_path / "s", Profile(), None)
    other = Store.open_existing(tmp_path / "s")
    other.add_event(ConsentEvent(1.0, "grant", ("all-disclosed",), source="cli"))
    other.close()
    session.record_event(ConsentEvent(2.0, "phase", name="idle", source="mark"))
    polled = session.poll_events()
    assert [e.source for e in polled] == ["cli"]
    assert [e.source for e in session.ledger.events] == ["cli", "mark"]
    assert session.poll_events() == []
    session.close()


def test_a_message_the_pipeline_fails_on_is_committed_as_opaque(tmp_path: Path):
    session = Session(tmp_path / "s", Profile(), None)

    def broken(tx):
        raise ValueError("bad frame")

    session.pipeline.observe = broken
    tx = Transmission(id=1, ts=5.0, transport="tcp", host="watch.example", port=9000,
                      payload=b"[3G*...")
    with pytest.raises(ValueError):
        session.observe(tx)
    (obs,) = session.store.observations()
    assert obs.transmission.id == 1 and obs.opaque == ("*: analysis failed (ValueError)",)
    session.close()


def test_plan_events_land_in_the_store_once_with_their_source(tmp_path: Path):
    from auditor.profile import ConsentPlan
    from auditor.session import reopen

    plan = ConsentPlan(events=(ConsentEvent(1.0, "grant", ("all-disclosed",)),
                               ConsentEvent(9.0, "phase", name="idle")))
    Session(tmp_path / "s", Profile(), plan).close()
    again = Session(tmp_path / "s", Profile(), plan)  # a restarted capture: no duplicates
    again.record_event(ConsentEvent(5.0, "withdraw", ("location",), source="cli"))
    assert [(ev.action, ev.source) for _, ev in again.store.events()] == [
        ("grant", "plan"), ("phase", "plan"), ("withdraw", "cli")]
    assert [ev.action for ev in again.ledger.events] == ["grant", "withdraw", "phase"]
    again.close()
    store, _, ledger = reopen(tmp_path / "s")
    assert len(ledger.events) == 3
    store.close()


def test_the_reports_let_go_of_the_live_timeline_and_judge_from_the_store(tmp_path: Path):
    profile = Profile(first_party=("acme-watch.example",))
    session = Session(tmp_path / "s", profile, None)
    tx = Transmission(id=1, ts=5.0, transport="http", host="api.acme-watch.example", port=80,
                      method="POST", url="http://api.acme-watch.example/r?imei=864536040123455",
                      path="/r?imei=864536040123455")
    _, opened = session.observe(tx)
    assert opened and session.aggregator.findings()
    out = session.write_outputs()
    assert session.aggregator.findings() == []  # the live copy is gone
    assert {f.rule for f in out.findings} == {f.rule for f in opened}
    session.close()
