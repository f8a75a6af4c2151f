"""The conformance table: each test item of a standard judged on one session's rule statuses,
findings and steps, and the steps' facts gathered on the walk that feeds the rules."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from auditor.model import Finding
from auditor.rules.exercise import FAIL, NOT_EXERCISED, PASS, RuleStatus, Seen
from auditor.standards.catalogue import parse
from auditor.standards.conformance import NOT_TESTABLE, facts, judge
from auditor.standards.model import Text
from auditor.standards.steps import STEP_IDS, SessionFacts, StepResult

ITEM = {"clause": "6.4", "title": {"en": "Notice and consent", "zh": "告知同意"},
        "summary": {"en": "Nothing before consent.", "zh": "同意前不发送。"},
        "rules": ["PRE_CONSENT_PI", "AFTER_WITHDRAWAL"], "steps": ["grant", "withdraw"]}
DOC_ITEM = {"clause": "6.5", "title": {"en": "System permissions", "zh": "系统权限"},
            "summary": {"en": "Seen on the screen.", "zh": "界面上查看。"},
            "evidence": "document",
            "note": {"en": "read the permission prompts", "zh": "查看权限提示"}}


def standard(*items: dict, status: str = "verified") -> object:
    return parse({"id": "test-std", "number": "T/TEST 1-2026", "source": "the tests",
                  "title": {"en": "A test standard", "zh": "测试标准"}, "status": status,
                  "items": list(items)}, "test-std.yaml")


def done(*performed: str) -> list[StepResult]:
    return [StepResult(s, True, 0.0, 600.0) if s in performed
            else StepResult(s, False, missing=Text(f"no {s} mark", f"没有 {s} 标记"))
            for s in STEP_IDS]


def rules(**status: str) -> list[RuleStatus]:
    reason = {PASS: "exercised, nothing found", FAIL: "has findings",
              NOT_EXERCISED: "no withdrawal happened"}
    return [RuleStatus(r, s, reason[s]) for r, s in status.items()]


def finding(rule: str, fid: str) -> Finding:
    return Finding(id=fid, rule=rule, severity="high", title="t", categories=(),
                   recipient="r", transmissions=(1,), first_seen=0.0, last_seen=0.0,
                   references=())


@pytest.mark.parametrize(("statuses", "found", "steps", "status", "evidence"), [
    # a finding fails the item: its ids and the rule that failed it
    (rules(PRE_CONSENT_PI=FAIL, AFTER_WITHDRAWAL=PASS), [finding("PRE_CONSENT_PI", "KA-1")],
     done("grant", "withdraw"), FAIL, (("KA-1",), ("PRE_CONSENT_PI",), ())),
    # fail beats not exercised: the finding is evidence even when steps are missing, and
    # the steps still lacking are named beside it
    (rules(PRE_CONSENT_PI=FAIL, AFTER_WITHDRAWAL=NOT_EXERCISED),
     [finding("PRE_CONSENT_PI", "KA-1"), finding("PRE_CONSENT_PI", "KA-2")], done(),
     FAIL, (("KA-1", "KA-2"), ("PRE_CONSENT_PI",), ("grant", "withdraw"))),
    # every step performed, one rule exercised, nothing found: pass, naming that rule
    (rules(PRE_CONSENT_PI=PASS, AFTER_WITHDRAWAL=NOT_EXERCISED), [],
     done("grant", "withdraw"), PASS, ((), ("PRE_CONSENT_PI",), ())),
    # a step missing: not exercised, the missing step named
    (rules(PRE_CONSENT_PI=PASS, AFTER_WITHDRAWAL=PASS), [], done("grant"),
     NOT_EXERCISED, ((), (), ("withdraw",))),
    # steps performed but no rule had anything to judge
    (rules(PRE_CONSENT_PI=NOT_EXERCISED, AFTER_WITHDRAWAL=NOT_EXERCISED), [],
     done("grant", "withdraw"), NOT_EXERCISED,
     ((), ("PRE_CONSENT_PI", "AFTER_WITHDRAWAL"), ())),
])
def test_an_item_is_judged_fail_pass_or_not_exercised(statuses, found, steps, status,
                                                      evidence):
    (item,) = judge(standard(ITEM), statuses, found, steps).items
    assert item.status == status
    assert (item.findings, item.rules, item.missing_steps) == evidence
    assert (item.reason is not None) == (status == NOT_EXERCISED)


def test_a_missing_step_is_named_with_why_in_both_languages():
    (item,) = judge(standard(ITEM), rules(PRE_CONSENT_PI=PASS, AFTER_WITHDRAWAL=PASS), [],
                    done("grant")).items
    assert item.reason == Text("Withdrawal: no withdraw mark", "撤回同意：没有 withdraw 标记")


def test_rules_not_exercised_are_named_with_their_reasons_translated():
    (item,) = judge(standard(ITEM), rules(AFTER_WITHDRAWAL=NOT_EXERCISED), [],
                    done("grant", "withdraw")).items
    assert item.reason.en == ("PRE_CONSENT_PI: not judged; "
                              "AFTER_WITHDRAWAL: no withdrawal happened")
    assert item.reason.zh == "PRE_CONSENT_PI：未评估；AFTER_WITHDRAWAL：未发生撤回"


def test_a_document_item_is_not_testable_by_traffic_with_its_note_whatever_happened():
    (item,) = judge(standard(DOC_ITEM), rules(PRE_CONSENT_PI=FAIL),
                    [finding("PRE_CONSENT_PI", "KA-1")], done()).items
    assert (item.status, item.findings) == (NOT_TESTABLE, ())
    assert item.reason == Text("read the permission prompts", "查看权限提示")


@pytest.mark.parametrize(("clause_status", "verified"), [("verified", True),
                                                         ("not verified", False)])
def test_the_clause_status_is_carried_for_the_reports_star(clause_status, verified):
    (item,) = judge(standard(dict(ITEM, clause_status=clause_status)), [], [], done()).items
    assert item.clause_verified is verified
    assert item.json()["clause_verified"] is verified


def test_a_standard_whose_number_is_not_confirmed_shows_as_such_with_no_items():
    table = judge(standard(status="number not confirmed"), rules(PRE_CONSENT_PI=FAIL),
                  [finding("PRE_CONSENT_PI", "KA-1")], done())
    assert table.json() == {"id": "test-std", "number": "T/TEST 1-2026",
                            "title": "A test standard", "status": "number not confirmed",
                            "items": []}


def test_the_json_of_an_item_has_the_contracts_keys_in_order():
    table = judge(standard(ITEM, DOC_ITEM), rules(PRE_CONSENT_PI=FAIL),
                  [finding("PRE_CONSENT_PI", "KA-1")], done())
    assert [i.json() for i in table.items] == [
        {"clause": "6.4", "title": "Notice and consent", "status": "fail",
         "clause_verified": True, "findings": ["KA-1"], "rules": ["PRE_CONSENT_PI"],
         "missing_steps": ["grant", "withdraw"], "reason": ""},
        {"clause": "6.5", "title": "System permissions", "status": "not testable by traffic",
         "clause_verified": True, "findings": [], "rules": [], "missing_steps": [],
         "reason": "read the permission prompts"}]
    assert (table.count(FAIL), table.count(NOT_TESTABLE), table.count(PASS)) == (1, 1, 0)


# -- the steps' facts, from the walk that feeds the rules -----------------------------------

def _walked(messages, events=()) -> Seen:
    from auditor.data import load_sdks
    from auditor.pipeline import Pipeline
    from tests.factories import profile

    pipeline = Pipeline.for_profile(profile(), load_sdks())
    return Seen.of([pipeline.observe(m) for m in messages], events)


@pytest.mark.parametrize(("grant_at", "before"), [(None, True), (50.0, False),
                                                  (100.0, False), (150.0, True)])
def test_facts_from_a_walk(grant_at, before):
    from tests.factories import event, tx

    messages = [tx(id=1, ts=100.0), tx(id=2, ts=300.0, host="a.ads.example", probe="expired"),
                tx(id=3, ts=200.0, host="b.example", probe="wrong-host"),
                tx(id=4, ts=250.0, host="b.example", probe="expired")]
    events = [event("grant", grant_at, "all-disclosed")] if grant_at is not None else []
    got = facts(_walked(messages, events), events)
    assert got == SessionFacts(first=100.0, last=300.0, traffic_before_grant=before,
                               probed_hosts=2, update_fetch=False)


def test_an_empty_walk_has_no_traffic_before_consent():
    assert facts(_walked([]), []) == SessionFacts()


# -- the session's reports carry the table ----------------------------------------------------

def _session(tmp_path: Path, messages, *events, standards=()) -> dict:
    from auditor.session import Session
    from tests.factories import plan, profile

    session = Session(tmp_path / "s", dataclasses.replace(profile(), source=""),
                      dataclasses.replace(plan(*events), source="") if events else None)
    for m in messages:
        session.observe(m)
    out = session.write_outputs(standards=standards)
    session.close()
    return json.loads((out.directory / "findings.json").read_text())


def test_findings_json_carries_the_table_and_the_steps_after_the_verdict(tmp_path: Path):
    from tests.factories import event, tx

    doc = _session(tmp_path, [tx(id=1, ts=100.0), tx(id=2, ts=900.0, probe="expired")],
                   event("grant", 500.0, "all-disclosed"),
                   standards=[standard(ITEM, DOC_ITEM)])
    assert list(doc)[-3:] == ["verdict", "conformance", "steps"]
    (table,) = doc["conformance"]
    assert (table["id"], [i["status"] for i in table["items"]]) == (
        "test-std", ["fail", "not testable by traffic"])
    ids = {f["id"] for f in doc["findings"] if f["rule"] == "PRE_CONSENT_PI"}
    assert set(table["items"][0]["findings"]) == ids and ids
    steps = {s["id"]: s for s in doc["steps"]}
    assert [s["id"] for s in doc["steps"]] == list(STEP_IDS)
    assert steps["before-consent"] == {"id": "before-consent", "performed": True,
                                       "at": "1970-01-01T00:01:40.000Z", "duration_s": 400.0,
                                       "missing": ""}
    assert steps["tls-probe"]["performed"] is True
    assert steps["withdraw"] == {"id": "withdraw", "performed": False, "at": None,
                                 "duration_s": None, "missing": "no withdraw mark"}


def test_the_jurisdictions_default_is_judged_when_none_is_given(tmp_path: Path):
    from auditor.standards.catalogue import defaults_for
    from tests.factories import tx

    doc = _session(tmp_path, [tx(id=1, ts=100.0)])
    assert [c["id"] for c in doc["conformance"]] == [s.id for s in defaults_for("CN")]
    assert doc["conformance"], "the CN profile's default standard"


def test_a_session_remembers_the_standards_it_was_given_for_a_later_report(tmp_path: Path):
    from auditor.session import reopen, write_outputs
    from auditor.standards.catalogue import load_all
    from tests.factories import tx

    chosen = [s.id for s in load_all() if not s.default_for][:1]
    _session(tmp_path, [tx(id=1, ts=100.0)], standards=chosen)
    store, profile, ledger = reopen(tmp_path / "s")
    try:
        out = write_outputs(tmp_path / "s", store, profile, ledger, out=tmp_path / "again")
    finally:
        store.close()
    doc = json.loads((out.directory / "findings.json").read_text())
    assert [c["id"] for c in doc["conformance"]] == chosen


def test_an_unknown_standard_is_refused_before_anything_is_written(tmp_path: Path):
    from auditor.session import Session

    session = Session(tmp_path / "s", dataclasses.replace(_profile(), source=""), None)
    with pytest.raises(KeyError, match="unknown standard 'nope'"):
        session.write_outputs(standards=["nope"])
    session.close()
    assert not (tmp_path / "s" / "findings.json").exists()


def _profile():
    from tests.factories import profile
    return profile()


def test_the_steps_of_an_analysed_capture_of_real_flows(tmp_path: Path):
    """tflow-built flows in a .mitm file, analysed: the first message's time and the traffic
    before the plan's grant make the before-consent step; no phase, no probe."""
    from auditor.offline import analyze
    from tests.factories import EPOCH, IMEI, event, http_flow, plan, profile, write_flows

    capture = write_flows(tmp_path / "cap.mitm", [
        http_flow("https://api.acme-watch.example/reg", EPOCH, {"imei": IMEI}),
        http_flow("https://api.acme-watch.example/ping", EPOCH + 400, {"imei": IMEI})])
    grant = event("grant", EPOCH + 350, "all-disclosed")
    out = analyze([capture], dataclasses.replace(profile(), source=""),
                  dataclasses.replace(plan(grant), source=""), tmp_path / "out",
                  standards=[standard(ITEM)])
    doc = json.loads((out.directory / "findings.json").read_text())
    steps = {s["id"]: s for s in doc["steps"]}
    assert (steps["before-consent"]["performed"], steps["before-consent"]["duration_s"]) == (
        True, 350.0)
    assert steps["before-consent"]["at"] == doc["session"]["started"]
    assert (steps["grant"]["performed"], steps["grant"]["duration_s"]) == (True, 50.0)
    assert not steps["idle"]["performed"] and not steps["tls-probe"]["performed"]
    (item,) = doc["conformance"][0]["items"]
    # PRE_CONSENT_PI fired; the withdrawal it also tests never happened
    assert (item["status"], item["missing_steps"]) == ("fail", ["withdraw"])
