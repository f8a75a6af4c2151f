"""Session glue: marks from other processes interleaved with the session's own, and a
message the pipeline fails on is still committed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.model import ConsentEvent, Profile, Transmission
from auditor.session import Session
from auditor.store import Store
from tests.factories import run_main


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


PLAN_WITH_EVENTS = (
    "events:\n"
    "  - {at: '2026-11-28T10:15:00Z', action: grant, categories: all-disclosed}\n"
    "  - {at: '2026-11-28T10:15:08Z', action: phase, name: idle}\n"
)


def _plan_file(tmp_path: Path):
    from auditor.profile import load_consent_plan

    path = tmp_path / "plan.yaml"
    path.write_text(PLAN_WITH_EVENTS)
    return load_consent_plan(str(path))


def _timeline(ledger) -> list[tuple[str, str]]:
    return [(ev.action, ev.source) for ev in ledger.events]


TIMELINE = [("grant", "plan"), ("withdraw", "cli"), ("phase", "plan")]


def test_plan_events_come_from_the_plan_and_the_store_holds_the_sessions_own(tmp_path: Path):
    from auditor.session import reopen

    plan = _plan_file(tmp_path)
    Session(tmp_path / "s", Profile(), plan).close()
    again = Session(tmp_path / "s", Profile(), plan)  # a restarted capture: no duplicates
    again.record_event(ConsentEvent(plan.events[0].ts + 5, "withdraw", ("location",),
                                    source="cli"))
    assert [(ev.action, ev.source) for _, ev in again.store.events()] == [("withdraw", "cli")]
    assert _timeline(again.ledger) == TIMELINE
    again.close()
    store, _, ledger = reopen(tmp_path / "s")  # the plan from the folder's consent.yaml
    store.close()
    assert _timeline(ledger) == TIMELINE


@pytest.mark.parametrize("kept_plan", [True, False])
def test_a_folder_whose_store_holds_the_plans_events_reports_them_once(tmp_path: Path,
                                                                       kept_plan: bool):
    """Folders written before the plan's events stayed in the plan hold copies of them in
    the store (source ``plan``, first): the timeline is the same, each event once."""
    from auditor.session import reopen

    plan = _plan_file(tmp_path)
    Session(tmp_path / "s", Profile(), plan if kept_plan else None).close()
    old = Store.open_existing(tmp_path / "s")
    for ev in plan.events:  # what such a session wrote when it began
        old.add_event(ev)
    old.add_event(ConsentEvent(plan.events[0].ts + 5, "withdraw", ("location",), source="cli"))
    old.close()
    store, _, ledger = reopen(tmp_path / "s")
    store.close()
    assert _timeline(ledger) == TIMELINE
    resumed = Session(tmp_path / "s", Profile(), plan if kept_plan else None)
    assert _timeline(resumed.ledger) == TIMELINE
    resumed.close()


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


def _linked_and_frequent() -> list[Transmission]:
    """The IMEI to the maker, then to an ad host (CROSS_SERVICE_LINKING), and to the maker
    again and again, sooner than the plan's interval (EXCESS_FREQUENCY): session rules."""
    from tests.factories import HOST, T0, tx

    hosts = (HOST, "t.ads.example", HOST, HOST, "t.ads.example")
    return [tx(id=i, ts=T0 + 10 * i, host=h, path=f"/m{i}")
            for i, h in enumerate(hosts, 1)]


@pytest.mark.parametrize("arrival", [(1, 2, 3, 4, 5), (2, 1, 4, 5, 3), (5, 4, 3, 2, 1)])
def test_out_of_order_arrival_writes_the_findings_of_the_timeline(tmp_path: Path, arrival):
    """Concurrent connections reach the proxy out of time order: the alerts are raised where
    each message lands, the findings written are those ``evaluate`` gives the timeline."""
    import dataclasses

    from auditor.consent import Ledger
    from auditor.rules import RuleContext, evaluate
    from tests.factories import event, plan, profile

    consent = dataclasses.replace(plan(event("grant", categories="all-disclosed"),
                                       limits={"min_interval_s": {"identifier.imei": 60}}),
                                  source="")  # built here: no file to keep a copy of
    seeded = profile(source="")
    messages = _linked_and_frequent()
    session = Session(tmp_path / "s", seeded, consent)
    for i in arrival:
        session.observe(messages[i - 1])
    written = session.write_outputs().findings
    observations = session.store.observations()
    session.close()
    expected = evaluate(observations, RuleContext(seeded, Ledger(consent)))
    assert written == expected
    assert {"CROSS_SERVICE_LINKING", "EXCESS_FREQUENCY"} <= {f.rule for f in written}
    assert all(f.consent for f in written if f.categories)  # judged, once, at the end


def test_a_kept_profile_is_reopened_as_it_was_taken(tmp_path: Path):
    """A session made before the plausibility checks (or with a value the lab vouched for)
    still reports: its profile copy is the evidence, not a new form to check."""
    from auditor.profile import ConfigError, load_profile
    from auditor.session import reopen

    Session(tmp_path / "s", Profile(), None).close()
    kept = tmp_path / "s" / "profile.yaml"
    kept.write_text('identifiers: {imei: "864536040123450"}\n')  # fails its Luhn check
    with pytest.raises(ConfigError, match="fails the Luhn check"):
        load_profile(str(kept))
    store, profile, _ = reopen(tmp_path / "s")
    store.close()
    assert profile.identifiers["imei"] == ("864536040123450",)


def test_each_resumption_is_listed_in_the_report(tmp_path: Path):
    session = Session(tmp_path / "s", Profile(), None)
    session.note_resumed(1_790_000_000.0)
    session.note_resumed(1_790_000_600.0)
    out = session.write_outputs()
    session.close()
    doc = json.loads((out.directory / "findings.json").read_text())
    assert doc["session"]["resumed"] == ["2026-09-21T14:13:20.000Z", "2026-09-21T14:23:20.000Z"]
    html = (out.directory / "report.html").read_text()
    assert "Capture resumed (UTC)" in html and "2026-09-21 14:23:20" in html


# -- hostile input (issue 13) ---------------------------------------------------------------

def _session_with_imei(folder: Path) -> None:
    from tests.factories import tx as message

    session = Session(folder, Profile(), None)
    for i in (1, 2, 3):
        session.observe(message(id=i, ts=100.0 + i, path=f"/m{i}", transport="http"))
    session.close()


def _fails_on_two(obs, ctx):
    if obs.transmission.id == 2:
        raise ValueError("Invalid IPv6 URL")
    return None


@pytest.mark.parametrize("failing_on", [2, None])
def test_a_rule_failing_on_one_transmission_is_listed_and_the_reports_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_on: int | None) -> None:
    import dataclasses

    import auditor.session as session_module
    from auditor.rules import CATALOGUE, by_id
    from auditor.session import reopen, write_outputs

    failing = dataclasses.replace(by_id("WEAK_TLS"), id="FAILS", check=_fails_on_two)
    real = session_module.evaluate
    rules = (*CATALOGUE, failing) if failing_on else CATALOGUE
    monkeypatch.setattr(session_module, "evaluate",
                        lambda obs, ctx, **kwargs: real(obs, ctx, rules, **kwargs))
    _session_with_imei(tmp_path / "s")
    store, profile, ledger = reopen(tmp_path / "s")
    write_outputs(tmp_path / "s", store, profile, ledger)
    write_outputs(tmp_path / "s", store, profile, ledger)  # listed once, never stored
    store.close()
    doc = json.loads((tmp_path / "s" / "findings.json").read_text(encoding="utf-8"))
    expected = [{"transmission": 2, "stage": "rule FAILS",
                 "message": "ValueError: Invalid IPv6 URL"}] if failing_on else []
    assert doc["coverage"]["errors"] == expected
    assert doc["coverage"]["analysis_errors"] == len(expected)
    assert {2} <= {t for f in doc["findings"] for t in f["transmissions"]}  # still judged
    page = (tmp_path / "s" / "report.html").read_text(encoding="utf-8")
    assert ("rule FAILS" in page) == bool(failing_on)
    assert (tmp_path / "s" / "detections.csv").is_file()


@pytest.mark.parametrize("damage, line", [
    (lambda db: db.write_bytes(b"hello world" * 10), "file is not a database"),
    (lambda db: db.write_bytes(db.read_bytes()[:100]), "database disk image is malformed"),
    (lambda db: None, ""),  # ok: the store as written
])
def test_report_on_a_damaged_store_is_exit_2_in_one_line(tmp_path, monkeypatch, capsys,
                                                          damage, line):
    _session_with_imei(tmp_path / "s")
    db = tmp_path / "s" / Store.FILE
    store = Store.open_existing(tmp_path / "s")
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    damage(db)
    code, err = run_main(["report", str(tmp_path / "s")], monkeypatch, capsys)
    if not line:
        assert (code, err) == (0, "")
        return
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"kidaudit: {db}: is damaged or not a kidaudit session store") and (
        line in err)


@pytest.mark.parametrize("linked", [True, False])
def test_report_out_through_a_symlink_is_refused_and_its_target_untouched(
        tmp_path, monkeypatch, capsys, linked):
    import os

    _session_with_imei(tmp_path / "s")
    target = tmp_path / "home"
    target.mkdir()
    os.chmod(target, 0o755)
    out = tmp_path / "out"
    if linked:
        out.symlink_to(target)
    code, err = run_main(["report", str(tmp_path / "s"), "--out", str(out)], monkeypatch, capsys)
    if linked:
        assert code == 2 and err.startswith(f"kidaudit: {out}: is a symbolic link;")
        assert os.stat(target).st_mode & 0o777 == 0o755 and not any(target.iterdir())
    else:
        assert (code, err) == (0, "")
        assert os.stat(out).st_mode & 0o777 == 0o700


def test_a_transmission_the_ledger_fails_on_is_listed_and_the_reports_written(tmp_path):
    from auditor.session import reopen, write_outputs

    _session_with_imei(tmp_path / "s")
    store, profile, ledger = reopen(tmp_path / "s")
    real = ledger.state

    def fails_on_two(category, recipient, ts, host=""):
        if ts == 102.0:
            raise OverflowError("date value out of range")
        return real(category, recipient, ts, host)

    ledger.state = fails_on_two
    write_outputs(tmp_path / "s", store, profile, ledger)
    store.close()
    doc = json.loads((tmp_path / "s" / "findings.json").read_text(encoding="utf-8"))
    consent = [(e["transmission"], e["stage"]) for e in doc["coverage"]["errors"]
               if e["stage"] == "consent"]
    assert consent == [(2, "consent")]
    assert [bool(t["consent"]) for t in doc["transmissions"]] == [True, False, True]


def test_the_profiles_position_is_masked_even_where_a_coordinate_stands_alone(tmp_path: Path):
    """A latitude alone in a URL pairs with nothing, so no detection names it; the profile's
    own position is masked wherever it stands all the same."""
    from auditor.model import Location
    from auditor.session import reopen, write_outputs

    profile = Profile(location=Location(lat=39.98312, lon=116.30791))
    session = Session(tmp_path / "s", profile, None)
    session.observe(Transmission(id=1, ts=5.0, transport="https", host="t.example", port=443,
                                 method="GET", url="https://t.example/p?la=39.98312&z=1",
                                 path="/p?la=39.98312&z=1"))
    out = session.write_outputs()
    session.close()
    store, kept, ledger = reopen(tmp_path / "s")
    revealed = write_outputs(tmp_path / "s", store, kept, ledger, reveal=True,
                             out=tmp_path / "revealed")
    store.close()
    for name in ("findings.json", "report.html", "detections.csv"):
        assert "39.98312" not in (out.directory / name).read_text(), name
    assert "39.98312" in (revealed.directory / "findings.json").read_text()


# -- the verdict (issue 15, item 4) ---------------------------------------------------------

def _verdict_of(tmp_path: Path, messages: list[Transmission], *events: ConsentEvent) -> dict:
    import dataclasses

    from tests.factories import plan, profile

    session = Session(tmp_path / "s", dataclasses.replace(profile(), source=""),
                      dataclasses.replace(plan(*events), source="") if events else None)
    for m in messages:
        session.observe(m)
    out = session.write_outputs()
    session.close()
    return json.loads((out.directory / "findings.json").read_text())["verdict"]


def _pinned(i: int) -> Transmission:
    from tests.factories import HOST
    return Transmission(id=i, ts=100.0 + i, transport="tls", host=HOST, port=443,
                        inspected=False)


def _clean(i: int) -> Transmission:
    from tests.factories import tx
    return tx(id=i, ts=100.0 + i, json={"battery": 87})


def _imei(i: int) -> Transmission:
    from tests.factories import tx
    return tx(id=i, ts=100.0 + i)


@pytest.mark.parametrize("messages, result, basis", [
    ([], "inconclusive", "empty"),
    ([_pinned(1), _pinned(2), _pinned(3)], "inconclusive", "nothing_inspected"),
    ([_pinned(1), _pinned(2), _clean(3)], "inconclusive", "mostly_uninspected"),
    ([_pinned(1), _clean(2), _clean(3)], "pass", "clean"),
    ([_clean(1), _imei(2)], "fail", "findings"),
])
def test_the_verdict_is_never_a_pass_on_what_was_not_read(tmp_path, messages, result, basis):
    verdict = _verdict_of(tmp_path, messages)
    assert (verdict["result"], verdict["basis"]) == (result, basis)
    assert verdict["reason"]


def test_a_clean_session_lists_the_rules_it_never_exercised(tmp_path: Path):
    verdict = _verdict_of(tmp_path, [_clean(1)])
    status = {r["id"]: r["status"] for r in verdict["rules"]}
    assert verdict["result"] == "pass"
    assert status["AFTER_WITHDRAWAL"] == "not exercised"
    assert status["UNINSPECTED_TRAFFIC"] == "pass"
    assert "AFTER_WITHDRAWAL" in verdict["reason"]
    assert {r["status"] for r in verdict["rules"]} <= {"pass", "not exercised"}


def test_a_planned_withdrawal_after_the_traffic_is_not_covered(tmp_path: Path):
    from tests.factories import event
    verdict = _verdict_of(tmp_path, [_imei(1)], event("grant", 50.0, "all-disclosed"),
                          event("withdraw", 500.0, "all-disclosed"))
    status = {r["id"]: (r["status"], r["reason"]) for r in verdict["rules"]}
    assert verdict["not_covered"] == ["planned withdraw came after the last message"]
    assert status["AFTER_WITHDRAWAL"] == ("not exercised", "no withdrawal happened")


# -- the sign-off facts (issue 15, item 7) --------------------------------------------------

def _session_json(tmp_path: Path, inputs: tuple[str, ...] = (), **meta: str) -> dict:
    session = Session(tmp_path / "s", Profile(), None, inputs=inputs)
    if meta:
        session.store.set_meta(**meta)
    out = session.write_outputs()
    session.close()
    return json.loads((out.directory / "findings.json").read_text())["session"]


def test_an_analysed_session_states_its_input_kinds_and_the_versions(tmp_path: Path):
    from importlib import metadata

    facts = _session_json(tmp_path, ("watch.har", "watch.pcapng", "profile.yaml"))
    assert facts["capture"] == {"modes": ["har", "pcap"], "operator": "",
                                "clock_sync": "unknown"}
    assert facts["versions"]["mitmproxy"] == metadata.version("mitmproxy")
    assert set(facts["versions"]) == {"kidaudit", "mitmproxy", "python"}


def test_a_capture_states_the_modes_operator_and_clock_it_recorded(tmp_path: Path):
    from auditor.session import capture_facts

    recorded = capture_facts(("regular", "reverse:tcp://10.0.0.5:5900@5900"), "王工程师")
    facts = _session_json(tmp_path, **(recorded | {"clock_sync": "synchronized",
                                                   "mitmproxy_version": "11.0.0"}))
    assert facts["capture"] == {"modes": ["regular", "reverse:tcp://10.0.0.5:5900@5900"],
                                "operator": "王工程师", "clock_sync": "synchronized"}
    assert facts["versions"]["mitmproxy"] == "11.0.0"


@pytest.mark.parametrize("said, state", [
    ((0, "yes\n"), "synchronized"),
    ((0, "no\n"), "not synchronized"),
    ((1, ""), None),
    (OSError("no timedatectl"), None),
])
def test_the_clock_sync_state_is_what_the_os_says_or_unknown(monkeypatch, said, state):
    import subprocess

    from auditor import session as session_module

    def run(*args, **kwargs):
        if isinstance(said, Exception):
            raise said
        return subprocess.CompletedProcess(args, said[0], said[1], "")

    monkeypatch.setattr(session_module.subprocess, "run", run)
    fallback = ("synchronized" if Path("/run/systemd/timesync/synchronized").exists()
                else "unknown")
    assert session_module.clock_sync() == (state or fallback)


def test_capture_hands_the_proxy_its_modes_and_operator(tmp_path, monkeypatch, capsys,
                                                         watch_profile):
    from auditor import cli
    from tests.factories import run_main

    seen: list[list[str]] = []

    def proxy(argv: list[str]) -> int:
        seen.append(argv)
        return 3

    monkeypatch.setattr(cli, "_run_proxy", proxy)
    monkeypatch.setattr(cli, "_check_ports", lambda *a, **k: None)
    run_main(["capture", "-p", str(watch_profile), "--session", str(tmp_path / "new"),
              "--mode", "reverse:tcp://127.0.0.1:5900@5900", "--operator", "Li Lab"],
             monkeypatch, capsys)
    argv = " ".join(seen[0])
    assert "--mode reverse:tcp://127.0.0.1:5900@5900" in argv
    assert "--set kidaudit_operator=Li Lab" in argv


def test_a_session_of_many_small_messages_reports_the_same_as_its_findings_json(
        tmp_path: Path):
    from auditor.report import html
    from auditor.report.document import load
    from auditor.session import reopen, write_outputs
    from tests.test_store import _small

    store = Store(tmp_path / "s")
    with store.batch():
        for i in range(1, 1_501):
            store.add_observation(_small(i, 1_790_000_000.0 + i))
    store.close()
    store, profile, ledger = reopen(tmp_path / "s")
    out = write_outputs(tmp_path / "s", store, profile, ledger)
    written = json.loads((tmp_path / "s" / "findings.json").read_text(encoding="utf-8"))
    assert len(written["transmissions"]) == 1_500
    assert html.render_string(load(written)) == out.report.read_text(encoding="utf-8")
    store.close()
