"""The findings document: built transmission by transmission and masked in every form; the
one serialiser, whose keys and times are those findings.json has always had; ``load``, the
way back from a file."""

from __future__ import annotations

import json

import pytest

from auditor.model import (
    CategoryFacts,
    ConsentEvent,
    Detection,
    Finding,
    Observation,
    Recipient,
)
from auditor.report import document
from auditor.report.document import (
    CoverageError,
    Device,
    Document,
    RecipientEntry,
    SessionInfo,
)
from tests.factories import FIRST_PARTY, HOST, IMEI, LAT, T0, tx


# -- the document: masked in every form, built transmission by transmission --------------
def _obs(tx_id: int, url: str, *detections: Detection, host: str = HOST) -> Observation:
    return Observation(tx(id=tx_id, host=host, url=url), Recipient(FIRST_PARTY, party="first"),
                       detections)


def _imei(tx_id: int, field: str = "query.d", value: str = IMEI,
          encoding: tuple[str, ...] = ()) -> Detection:
    return Detection(tx_id, "identifier.imei", "known", "query", field, encoding,
                     "identifiers.imei", value, 0.99)


BROKEN = Detection(2, "identifier.imei", "known", "query", "query.d", (), "identifiers.imei",
                   None, 0.99)  # type: ignore[arg-type]  # a row that cannot be built


@pytest.mark.parametrize(("observations", "written", "failed"), [
    pytest.param([_obs(1, f"https://{HOST}/a?d={IMEI}", _imei(1))], [1], [], id="one-row"),
    pytest.param([_obs(1, f"https://{HOST}/a?d={IMEI}", _imei(1)),
                  _obs(2, f"https://{HOST}/b?d={IMEI}", BROKEN),
                  _obs(3, f"https://{HOST}/c?d={IMEI}", _imei(3))], [1, 3], [2],
                 id="the-broken-row-is-an-error-the-rest-written"),
    pytest.param([_obs(2, f"https://{HOST}/b", BROKEN)], [], [2], id="only-a-broken-row"),
])
def test_each_transmission_is_built_on_its_own(observations: list[Observation],
                                               written: list[int], failed: list[int]) -> None:
    doc = document.to_dict(document.build(
        SessionInfo(), observations, [], [],
        {"errors": [{"transmission": 9, "stage": "detect", "message": "earlier"}]}))
    assert [t["id"] for t in doc["transmissions"]] == written
    assert sorted({d["transmission"] for d in doc["detections"]}) == written
    errors = doc["coverage"]["errors"]
    assert [e["transmission"] for e in errors] == [9, *failed]
    assert doc["coverage"]["analysis_errors"] == 1 + len(failed)
    assert [(e["stage"], e["message"]) for e in errors[1:]] == [
        ("report", "transmission left out (TypeError)")] * len(failed)


PCT = "".join(f"%{b:02x}" for b in IMEI.encode())


@pytest.mark.parametrize(("obs", "reveal", "raw"), [
    pytest.param(_obs(1, f"https://{IMEI}.t.example/a", _imei(1, "url.host"),
                      host=f"{IMEI}.t.example"), False, IMEI, id="host-label"),
    pytest.param(_obs(1, f"https://{HOST}/a?d={PCT}", _imei(1)), False, PCT,
                 id="percent-per-digit"),
    pytest.param(_obs(1, f"https://{HOST}/a?{IMEI}=1", _imei(1, f"query.{IMEI}")), False,
                 IMEI, id="query-key-and-field-path"),
    pytest.param(_obs(1, f"https://{HOST}/a?d={PCT}", _imei(1)), True, PCT,
                 id="revealed-stays-as-sent"),
])
def test_document_masks_every_form(obs: Observation, reveal: bool, raw: str) -> None:
    doc = document.to_dict(document.build(SessionInfo(), [obs], [], [], {}, reveal=reveal))
    text = json.dumps(doc)
    assert (raw in text) is reveal
    assert doc["session"]["masked"] is not reveal
    assert doc["transmissions"][0]["url"].startswith("https://")


@pytest.mark.parametrize(("url", "seeded", "raw"), [
    pytest.param(f"https://{HOST}/a?lat={LAT}", [("location.precise", str(LAT))], str(LAT),
                 id="a-lone-seeded-latitude-is-masked"),
    pytest.param(f"https://{HOST}/a?lat=12.34567", [("location.precise", str(LAT))], "",
                 id="other-numbers-stay"),
])
def test_seeded_values_are_masked_without_a_detection(url: str, seeded: list, raw: str
                                                      ) -> None:
    doc = document.to_dict(document.build(SessionInfo(), [_obs(1, url)], [], [], {},
                                          seeded=seeded))
    written = doc["transmissions"][0]["url"]
    assert (written == url) is (not raw)
    assert not raw or raw not in written


# -- the serialiser and the way back -------------------------------------------------------
def _built(*, reveal: bool = False) -> Document:
    obs = [_obs(1, f"https://{HOST}/a?d={IMEI}", _imei(1)),
           _obs(3, f"https://{HOST}/c", _imei(3, encoding=("base64",)))]
    if not reveal:  # revealed, the broken row is written as it is (a null value)
        obs.insert(1, _obs(2, f"https://{HOST}/b?d={IMEI}", BROKEN))
    finding = Finding("f1", "NON_RESETTABLE_ID", "medium", "t", ("identifier.imei",),
                      FIRST_PARTY, (1, 3), T0, T0 + 1.2345, ("IDM 4.1",), ("none",),
                      (FIRST_PARTY,), (CategoryFacts("identifier.imei", 2, T0, T0 + 1.2345),))
    events = [ConsentEvent(T0 - 60, "phase", name="setup"),
              ConsentEvent(T0 + 0.5, "grant", ("all-disclosed",), (), ("location.precise",),
                           source="mark")]
    session = SessionInfo(id="s1", device=Device("Watch", "smartwatch", "1.0"),
                          inputs=("flows.mitm",), resumed=(document.at(T0 + 2),),
                          rules_applied=("NON_RESETTABLE_ID",))
    coverage = {"uninspected": [{"host": "pinned.example", "reason": "pinned"}],
                "errors": [{"transmission": None, "stage": "rules", "message": "m"}]}
    return document.build(session, obs, [finding], events, coverage,
                          consent={1: {"identifier.imei": "none"}}, reveal=reveal)


@pytest.mark.parametrize("reveal", [False, True])
def test_a_document_read_back_from_its_json_is_the_same(reveal: bool) -> None:
    doc = _built(reveal=reveal)
    assert document.load(document.to_dict(doc)) == doc.materialised()


@pytest.mark.parametrize(("path", "written"), [
    (("schema",), "kidaudit.findings/1"),
    (("session", "started"), "2026-11-28T10:15:00.000Z"),  # the first transmission
    (("session", "resumed"), ["2026-11-28T10:15:02.000Z"]),
    (("findings", 0, "last_seen"), "2026-11-28T10:15:01.234Z"),  # cut, not rounded
    (("findings", 0, "recipients"), [FIRST_PARTY]),
    (("findings", 0, "per_category"), {"identifier.imei": {
        "count": 2, "first_seen": "2026-11-28T10:15:00.000Z",
        "last_seen": "2026-11-28T10:15:01.234Z"}}),
    (("transmissions", 0, "recipient", "organization"), None),  # unknown: null, not ""
    (("coverage", "analysis_errors"), 2),  # the store's error and the left-out row
    (("coverage", "errors", 1, "message"), "transmission left out (TypeError)"),
])
def test_findings_json_values(path: tuple, written: object) -> None:
    value: object = document.to_dict(_built())
    for key in path:
        value = value[key]  # type: ignore[index]
    assert value == written


@pytest.mark.parametrize(("section", "keys"), [
    ("session", ["id", "device", "inputs", "resumed", "tool_version", "ruleset",
                 "profile_sha256", "consent_sha256", "flows_sha256", "rules_applied",
                 "country_source", "masked", "started", "ended",
                 # issue 15's sign-off facts, added after every key written before them
                 "capture", "versions"]),
    ("transmissions", ["id", "ts", "transport", "direction", "host", "ip", "port", "method",
                       "url", "inspected", "bytes", "recipient", "consent"]),
    ("detections", ["transmission", "category", "method", "location", "field", "encoding",
                    "profile_key", "value", "confidence"]),
    ("findings", ["id", "rule", "severity", "title", "categories", "recipient",
                  "transmissions", "first_seen", "last_seen", "count", "references",
                  "consent",
                  # one finding per (rule, organisation): the hosts and each category's
                  # extent, added after every key written before them
                  "recipients", "per_category"]),
    ("events", ["ts", "action", "categories", "recipients", "separate", "name", "source"]),
    ("coverage", ["connections", "inspected", "uninspected", "opaque_payloads", "opaque",
                  "analysis_errors", "errors"]),
])
def test_keys_in_the_order_findings_json_has_always_written_them(section: str,
                                                                   keys: list[str]) -> None:
    value = document.to_dict(_built())[section]
    assert list(value[0] if isinstance(value, list) else value) == keys


@pytest.mark.parametrize(("added", "count"), [([], 2), ([CoverageError(None, "r", "x")], 3)])
def test_errors_found_while_rendering_are_added_and_counted(added: list, count: int) -> None:
    doc = _built().with_errors(added)
    assert doc.coverage.analysis_errors == len(doc.coverage.errors) == count


@pytest.mark.parametrize(("written", "part", "read"), [
    pytest.param({"findings": [{"count": "x", "transmissions": [1, 2]}]},
                 lambda d: d.findings[0].count, 2, id="count-unreadable-counts-its-evidence"),
    pytest.param({"session": {"device": "Watch X"}}, lambda d: d.session.device,
                 Device("Watch X"), id="device-as-a-name"),
    pytest.param({"session": {"started": "not a time"}}, lambda d: d.session.started, None,
                 id="time-unreadable"),
    pytest.param({"transmissions": [{"id": [1], "recipient": "x"}]},
                 lambda d: (d.transmissions[0].id, d.transmissions[0].recipient),
                 ("1", RecipientEntry()), id="id-as-a-list-recipient-as-text"),
    pytest.param({"coverage": {"errors": ["boom"], "uninspected": ["h.example"]}},
                 lambda d: (d.coverage.errors, d.coverage.uninspected),
                 ((CoverageError(None, "", "boom"),), (document.Uninspected("h.example"),)),
                 id="coverage-rows-as-text"),
    pytest.param({"findings": [{"rule": "R", "per_category": {"a": {"count": 2}, "b": 5}}]},
                 lambda d: [(c.category, c.count, c.first_seen)
                            for c in d.findings[0].per_category],
                 [("a", 2, None), ("b", 0, None)],
                 id="per-category-partial-or-not-a-record"),
    pytest.param({"findings": [{"rule": "R"}]},
                 lambda d: (d.findings[0].recipients, d.findings[0].per_category),
                 ((), ()), id="finding-written-before-per-category"),
    pytest.param({"events": [5, {"ts": "2026-11-28T10:00:00+08:00", "action": "grant"}]},
                 lambda d: [(e.ts, e.action) for e in d.events],
                 [(document.at(T0 - 8 * 3600 - 15 * 60), "grant")],
                 id="events-not-records-skipped-times-to-utc"),
])
def test_load_reads_what_other_writers_leave(written: dict, part, read: object) -> None:
    assert part(document.load(written)) == read


def test_load_refuses_another_schema() -> None:
    with pytest.raises(ValueError, match="kidaudit.findings/2"):
        document.load({"schema": "kidaudit.findings/2"})


# -- the verdict (issue 15, item 4) ---------------------------------------------------------

def _finding(severity: str) -> document.FindingEntry:
    return document.FindingEntry(id="KA-1", rule="R", severity=severity, count=1)


@pytest.mark.parametrize("findings, connections, inspected, result", [
    ((), 0, 0, "inconclusive"),
    ((), 3, 0, "inconclusive"),
    ((), 4, 1, "inconclusive"),
    ((), 4, 2, "pass"),
    ((_finding("info"),), 4, 0, "inconclusive"),
    ((_finding("info"),), 4, 4, "pass"),
    ((_finding("low"),), 4, 4, "fail"),
    ((_finding("critical"),), 4, 0, "fail"),
])
def test_judge(findings, connections, inspected, result):
    verdict = document.judge(findings, document.Coverage(connections, inspected))
    assert verdict.result == result


def test_the_verdict_is_the_last_key_and_reads_back():
    verdict = document.Verdict("pass", "why", "clean", ("planned withdraw",),
                               (document.RuleResult("WEAK_TLS", "pass", "ok"),))
    data = document.to_dict(document.Document(verdict=verdict))
    assert list(data)[-1] == "verdict"
    assert data["verdict"] == {"result": "pass", "reason": "why", "basis": "clean",
                               "not_covered": ["planned withdraw"],
                               "rules": [{"id": "WEAK_TLS", "status": "pass", "reason": "ok"}]}
    assert document.load(data).verdict == verdict
    assert "verdict" not in document.to_dict(document.Document())


def test_the_sign_off_facts_read_back():
    session = document.SessionInfo(capture_modes=("regular", "reverse:tcp://10.0.0.5:5900"),
                                   operator="Li Lab", clock_sync="synchronized",
                                   versions={"kidaudit": "0.3.0", "python": "3.11.9"})
    data = document.to_dict(document.Document(session=session))
    assert data["session"]["capture"] == {"modes": ["regular", "reverse:tcp://10.0.0.5:5900"],
                                          "operator": "Li Lab", "clock_sync": "synchronized"}
    assert document.load(data).session == session
    assert document.load({}).session.clock_sync == "unknown"


@pytest.mark.parametrize(("probe", "keys"), [("", False), ("wrong-host", True)])
def test_a_tls_probe_message_carries_its_case_and_reads_back(probe: str, keys: bool) -> None:
    """Only a message of the TLS probe has ``probe``: other sessions' files are as before."""
    from dataclasses import replace

    obs = _obs(1, f"https://{HOST}/a?d={IMEI}", _imei(1))
    obs = replace(obs, transmission=replace(obs.transmission, probe=probe))
    doc = document.build(SessionInfo(), [obs], [], [], {})
    (written,) = document.to_dict(doc)["transmissions"]
    assert ("probe" in written) is keys and written.get("probe", "") == probe
    assert document.load(document.to_dict(doc)).transmissions[0].probe == probe


@pytest.mark.parametrize(("cases", "connections", "result"), [
    ((), 1, "pass"),
    (("untrusted-ca", "wrong-host", "expired", "tls1.0"), 1, "pass"),
])
def test_refused_tls_probe_cases_are_not_connections_left_unread(cases, connections, result):
    """A device that refuses the probe's four bad certificates on a host, then sends one
    message over the fifth connection, had everything it sent read: not inconclusive."""
    from dataclasses import replace

    sent = _obs(1, f"https://{HOST}/a")
    refused = [replace(sent, transmission=replace(sent.transmission, id=i, transport="tls",
                                                  inspected=False, probe=case, url=""))
               for i, case in enumerate(cases, 2)]
    doc = document.build(SessionInfo(), [sent, *refused], [], [], {})
    assert (doc.coverage.connections, doc.coverage.inspected) == (connections, 1)
    assert document.judge([], doc.coverage).result == result
    assert len(document.to_dict(doc)["transmissions"]) == 1 + len(cases)  # all still listed


@pytest.mark.parametrize("notes", [(), (f"body.json.d: too deep ({IMEI})",)])
def test_opaque_notes_are_listed_and_none_looked_for_when_no_message_had_one(notes) -> None:
    """The coverage's opaque rows: each message's notes, masked; a session whose messages
    had none (the survey counted them) is not walked again to find none."""
    import dataclasses

    from auditor.mask import mask

    plain = _obs(1, f"https://{HOST}/a", _imei(1))
    noted = dataclasses.replace(_obs(2, f"https://{HOST}/b", _imei(2)), opaque=notes)
    walks = []

    def observations():
        walks.append(1)
        return iter([plain, noted])

    survey = document.Survey()
    for o in observations():
        survey.add(o)
    doc = document.build(SessionInfo(), document.Replay(observations), [], [], {},
                         survey=survey)
    before = len(walks)
    listed = [(o.transmission, o.fields) for o in doc.coverage.opaque]
    assert listed == ([(2, (f"body.json.d: too deep ({mask(IMEI)})",))] if notes else [])
    assert len(walks) - before == (1 if notes else 0)


# -- the rows' quick constructor (``document._quick_init``) --------------------------------


@pytest.mark.parametrize("cls", [document.RecipientEntry, document.TransmissionEntry,
                                 document.DetectionEntry])
def test_a_row_made_by_the_quick_init_is_the_dataclass_one(cls: type) -> None:
    """The same parameters in the same order, defaults (a factory's value new for each row),
    values kept as given, positional or by name; equal and hashed as rows are; still
    frozen."""
    import dataclasses
    import inspect

    fields = dataclasses.fields(cls)
    assert list(inspect.signature(cls).parameters) == [f.name for f in fields]
    required = [f for f in fields if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    with pytest.raises(TypeError):
        cls(*[object() for _ in required[:-1]]) if required else cls(**{"no_such": 1})
    least = cls(*[7 for _ in required])
    again = cls(*[7 for _ in required])
    for f in fields:
        if f in required:
            assert getattr(least, f.name) == 7
        elif f.default is not dataclasses.MISSING:
            assert getattr(least, f.name) is f.default
        else:
            assert getattr(least, f.name) == f.default_factory()
            assert getattr(least, f.name) is not getattr(again, f.name)
    values = [(f.name,) for f in fields]  # a distinct value a field, hashable
    given = cls(*values)
    named = cls(**{f.name: v for f, v in zip(fields, values, strict=True)})
    for f, v in zip(fields, values, strict=True):
        assert getattr(given, f.name) is v
        assert getattr(named, f.name) is v
    assert given == named and hash(given) == hash(named) and given != least
    assert dataclasses.replace(given, **{fields[0].name: 1}) == cls(1, *values[1:])
    with pytest.raises(dataclasses.FrozenInstanceError):
        given.__setattr__(fields[0].name, 2)
