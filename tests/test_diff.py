"""``kidaudit diff``: two sessions (e.g. two firmware versions) compared, as text and HTML.

Findings are matched on (rule, recipient organisation); a category change is a change; what
one session's input could not hold is not comparable; ``--fail-on-new`` gates regressions.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from auditor.diff import diff, format_text, regressions  # noqa: E402
from auditor.report import diff_html  # noqa: E402
from tests import browser  # noqa: E402
from tests.factories import FIRST_PARTY as FIRST  # noqa: E402
from tests.factories import run_main  # noqa: E402
from tests.test_report_html import INJECTED_TAGS, PAYLOADS, watch_doc  # noqa: E402

SDK = "tracklytics.example"


def _organisation(domain: str) -> str:
    """The organisation watch_doc's transmissions give ``domain``."""
    return next(tx["recipient"]["organization"] for tx in watch_doc()["transmissions"]
                if tx["recipient"]["domain"] == domain)


FIRST_ORG, SDK_ORG = _organisation(FIRST), _organisation(SDK)
MAKER_IP = "198.51.100.20"  # the watch server, reached by IP (issue 15)


def _upgrade(**changes) -> dict:
    """The watch session after a firmware update, with ``changes`` applied."""
    doc = copy.deepcopy(watch_doc())
    doc["session"] |= {"id": "2026-12-05-k2-fw150"}
    doc["session"]["device"]["firmware"] = "1.5.0"
    for name, change in changes.items():
        CHANGES[name](doc, change)
    return doc


def _finding(doc, rule):
    return next(f for f in doc["findings"] if f["rule"] == rule)


def _drop_rule(doc, rule):
    doc["findings"] = [f for f in doc["findings"] if f["rule"] != rule]


def _add_finding(doc, finding):
    doc["findings"].append(finding)


def _recount(doc, rule):
    _finding(doc, rule)["count"] += 10


def _categories(doc, spec):
    rule, categories = spec
    _finding(doc, rule)["categories"] = list(categories)


def _set(doc, spec):
    """``(rule, key, value)``: one key of one finding set."""
    rule, key, value = spec
    _finding(doc, rule)[key] = value


def _split(doc, rule):
    """The finding written one per category set, as findings.json was before issue 15."""
    f = _finding(doc, rule)
    doc["findings"].remove(f)
    doc["findings"].extend(f | {"id": f"{f['id']}-{c}", "categories": [c], "count": 1}
                           for c in f["categories"])


def _drop_recipient(doc, domain):
    keep = {tx["id"] for tx in doc["transmissions"] if tx["recipient"]["domain"] != domain}
    doc["transmissions"] = [tx for tx in doc["transmissions"] if tx["id"] in keep]
    doc["detections"] = [d for d in doc["detections"] if d["transmission"] in keep]


def _add_recipient(doc, spec):
    domain, category = spec
    doc["transmissions"].append(doc["transmissions"][0] | {
        "id": 99, "host": f"api.{domain}",
        "recipient": {"domain": domain, "party": "third", "country": "SG"}})
    doc["detections"].append(doc["detections"][0] | {"transmission": 99, "category": category})


def _add_category(doc, spec):
    domain, category = spec
    tid = next(tx["id"] for tx in doc["transmissions"] if tx["recipient"]["domain"] == domain)
    doc["detections"].append(doc["detections"][0] | {"transmission": tid, "category": category})


def _by_ip(doc, rule):
    """``rule``'s finding filed under the maker's IP, its evidence sent there by raw TCP."""
    doc["transmissions"].append(doc["transmissions"][0] | {
        "id": 50, "transport": "tcp", "host": MAKER_IP, "ip": MAKER_IP, "method": "", "url": "",
        "recipient": {"domain": MAKER_IP, "organization": FIRST_ORG, "party": "first",
                      "country": "CN"}})
    _finding(doc, rule).update(recipient=MAKER_IP, transmissions=[50])


def _inputs(doc, inputs):
    doc["session"]["inputs"] = list(inputs)


def _tcp_finding(doc, rule):
    """A finding whose only evidence went by raw TCP (a HAR cannot hold it)."""
    _by_ip(doc, rule)


def _coverage(doc, changes):
    doc["coverage"] |= changes


def _session(doc, changes):
    doc["session"] |= changes


def _drop_tcp(doc, _):
    """What a HAR export of the session keeps: no TCP message, no finding resting on one."""
    tcp = {tx["id"] for tx in doc["transmissions"] if tx["transport"] == "tcp"}
    doc["transmissions"] = [tx for tx in doc["transmissions"] if tx["id"] not in tcp]
    doc["findings"] = [f for f in doc["findings"] if not set(f["transmissions"]) & tcp]


CHANGES = {"drop_rule": _drop_rule, "add_finding": _add_finding, "recount": _recount,
           "categories": _categories, "set": _set, "split": _split,
           "drop_recipient": _drop_recipient, "add_recipient": _add_recipient,
           "add_category": _add_category, "by_ip": _by_ip, "tcp_finding": _tcp_finding,
           "inputs": _inputs, "coverage": _coverage, "session": _session,
           "drop_tcp": _drop_tcp}
NEW_FINDING = {"id": "f-new", "rule": "CROSS_BORDER", "severity": "high", "title": "t",
               "categories": ["location.precise", "identifier.imei"], "recipient": SDK,
               "transmissions": [3], "count": 1, "references": []}
HAR = ["watch.har", "profile.yaml"]


@pytest.mark.parametrize("changes, expect", [
    ({}, {}),
    ({"drop_rule": "CLEARTEXT_PI"}, {"fixed": [("CLEARTEXT_PI", FIRST_ORG)]}),
    ({"add_finding": NEW_FINDING}, {"introduced": [("CROSS_BORDER", SDK_ORG)]}),
    ({"recount": "PRE_CONSENT_PI"}, {}),  # same key, other count: neither fixed nor new
    ({"drop_recipient": SDK}, {"vanished": [SDK]}),
    ({"add_recipient": ("adnet.example", "identifier.imei")},
     {"new": ["adnet.example"], "new_categories": {"adnet.example": ("identifier.imei",)}}),
    ({"add_category": (SDK, "location.precise")},
     {"new_categories": {SDK: ("location.precise",)}}),
], ids=["same", "fixed", "introduced", "count-only", "vanished-recipient", "new-recipient",
        "new-category"])
def test_diff(changes, expect):
    d = diff(watch_doc(), _upgrade(**changes))
    assert [f.key for f in d.findings_fixed] == expect.get("fixed", [])
    assert [f.key for f in d.findings_introduced] == expect.get("introduced", [])
    assert list(d.recipients_vanished) == expect.get("vanished", [])
    assert list(d.recipients_new) == expect.get("new", [])
    assert d.categories_new == expect.get("new_categories", {})
    assert d.changed == bool(expect)
    assert (d.old.firmware, d.new.firmware) == ("1.4.2", "1.5.0")


# -- matched on (rule, recipient organisation): a category change is a change -------------

IMEI, LOC, ICCID = "identifier.imei", "location.precise", "identifier.iccid"


@pytest.mark.parametrize("old_changes, new_changes, changed", [
    # (rule, added, removed) for each finding in both sessions whose categories changed
    ({}, {"categories": ("PRE_CONSENT_PI", [IMEI])}, [("PRE_CONSENT_PI", (), (LOC,))]),
    ({}, {"categories": ("NON_RESETTABLE_ID", [IMEI, ICCID])},
     [("NON_RESETTABLE_ID", (ICCID,), ())]),
    ({}, {"categories": ("PRE_CONSENT_PI", [IMEI, ICCID])},
     [("PRE_CONSENT_PI", (ICCID,), (LOC,))]),
    ({"split": "PRE_CONSENT_PI"}, {}, []),               # one per category set, added up
    ({}, {"by_ip": "CLEARTEXT_PI"}, []),                 # the maker's IP is the maker
    ({}, {"set": ("CLEARTEXT_PI", "recipient", "gps.acme-watch.example")}, []),  # its host
    ({}, {"set": ("CLEARTEXT_PI", "organisation", FIRST_ORG)}, []),  # said, not derived
], ids=["shrank", "grew", "swapped", "split-old-document", "by-ip", "by-host",
        "organisation-given"])
def test_findings_are_matched_on_rule_and_organisation(old_changes, new_changes, changed):
    old, new = _upgrade(**old_changes), _upgrade(**new_changes)
    d = diff(old, new)
    assert (d.findings_introduced, d.findings_fixed) == ((), ())
    assert [(c.new.rule, c.added, c.removed) for c in d.findings_changed] == changed
    assert all(c.comparable for c in d.findings_changed)


@pytest.mark.parametrize("where, organisation, key", [
    ("finding", "Acme Holdings", ("CLEARTEXT_PI", "Acme Holdings")),     # the finding says
    ("finding-en-us", "Acme Holdings", ("CLEARTEXT_PI", "Acme Holdings")),
    ("recipients", "Acme Holdings", ("CLEARTEXT_PI", "Acme Holdings")),  # the document's table
    ("transmissions", FIRST_ORG, ("CLEARTEXT_PI", FIRST_ORG)),          # derived from them
    ("nowhere", "", ("CLEARTEXT_PI", FIRST)),                           # the recipient's name
])
def test_a_findings_organisation_comes_from_the_document(where, organisation, key):
    doc = _upgrade()
    f = _finding(doc, "CLEARTEXT_PI")
    if where == "finding":
        f["organisation"] = organisation
    elif where == "finding-en-us":
        f["organization"] = {"name": organisation}
    elif where == "recipients":
        doc["recipients"] = [{"domain": FIRST, "organisation": organisation}]
    elif where == "nowhere":
        for tx in doc["transmissions"]:
            tx["recipient"]["organization"] = None
    d = diff({}, doc)
    introduced = {ref.rule: ref for ref in d.findings_introduced}
    assert introduced["CLEARTEXT_PI"].key == key


# -- what one input cannot hold is not comparable, and the sessions' differences come first -

@pytest.mark.parametrize("old_changes, new_changes, expect", [
    # a live capture with a TCP finding, then its HAR export: TCP is out of the HAR's reach
    ({"tcp_finding": "CLEARTEXT_PI"}, {"tcp_finding": "CLEARTEXT_PI", "drop_tcp": None,
                                       "inputs": HAR},
     {"not_comparable_old": [("CLEARTEXT_PI", FIRST_ORG)]}),
    # the HTTP finding a HAR could have shown is fixed all the same
    ({"tcp_finding": "CLEARTEXT_PI"}, {"tcp_finding": "CLEARTEXT_PI", "drop_tcp": None,
                                       "inputs": HAR, "drop_rule": "PRE_CONSENT_SDK"},
     {"not_comparable_old": [("CLEARTEXT_PI", FIRST_ORG)],
      "fixed": [("PRE_CONSENT_SDK", SDK_ORG)]}),
    # the other way round: a TCP finding the old HAR could not show is not new
    ({"tcp_finding": "CLEARTEXT_PI", "drop_tcp": None, "inputs": HAR},
     {"tcp_finding": "CLEARTEXT_PI"}, {"not_comparable_new": [("CLEARTEXT_PI", FIRST_ORG)]}),
    # a pcap (no keys) shows HTTPS as TLS: an HTTPS finding missing from it is unknown
    ({}, {"drop_rule": "PRE_CONSENT_SDK", "inputs": ["watch.pcapng"]},
     {"not_comparable_old": [("PRE_CONSENT_SDK", SDK_ORG)]}),
    # two live captures: a TCP finding gone is fixed
    ({"tcp_finding": "CLEARTEXT_PI"}, {"tcp_finding": "CLEARTEXT_PI", "drop_tcp": None},
     {"fixed": [("CLEARTEXT_PI", FIRST_ORG)]}),
], ids=["har-drops-tcp", "har-fixes-http", "old-har", "pcap-drops-https", "live-drops-tcp"])
def test_what_one_input_cannot_hold_is_not_comparable(old_changes, new_changes, expect):
    d = diff(_upgrade(**old_changes), _upgrade(**new_changes))
    assert [f.key for f in d.findings_fixed] == expect.get("fixed", [])
    assert [f.key for f in d.findings_introduced] == expect.get("introduced", [])
    assert [f.key for f in d.not_comparable_old] == expect.get("not_comparable_old", [])
    assert [f.key for f in d.not_comparable_new] == expect.get("not_comparable_new", [])
    assert regressions(d, "info") == ()


def _tcp_upload(doc, category):
    """The maker's IP also gets ``category`` by raw TCP (a watch frame)."""
    doc["transmissions"].append(doc["transmissions"][0] | {
        "id": 60, "transport": "tcp", "method": "", "url": ""})
    doc["detections"].append(doc["detections"][0] | {"transmission": 60, "category": category})


@pytest.mark.parametrize("old_inputs, new_inputs, expect", [
    # the HAR export keeps the HTTP part only: the TCP-only flows are not comparable
    (["live capture (flows.mitm)"], HAR,
     {"recipients_not_comparable": (MAKER_IP,), "categories_not_comparable": {
         FIRST: ("contacts.entry",)}}),
    # two live captures: the same flows gone are gone
    (["live capture (flows.mitm)"], ["live capture (flows.mitm)"],
     {"recipients_vanished": (MAKER_IP,), "categories_vanished": {FIRST: ("contacts.entry",)}}),
    # the other way round: what the old HAR could not hold is not new either
    (HAR, ["live capture (flows.mitm)"], "mirror"),
], ids=["har", "live", "old-har"])
def test_flows_over_a_transport_one_input_cannot_hold_are_not_comparable(old_inputs,
                                                                          new_inputs, expect):
    live = _upgrade(tcp_finding="CLEARTEXT_PI")
    _tcp_upload(live, "contacts.entry")
    export = _upgrade(drop_tcp=None)
    old, new = (live, export) if expect != "mirror" else (export, live)
    old["session"]["inputs"], new["session"]["inputs"] = old_inputs, new_inputs
    d = diff(old, new)
    if expect == "mirror":
        expect = {"recipients_not_comparable": (MAKER_IP,),
                  "categories_not_comparable": {FIRST: ("contacts.entry",)}}
    for name in ("recipients_vanished", "recipients_new", "recipients_not_comparable"):
        assert getattr(d, name) == expect.get(name, ()), name
    for name in ("categories_vanished", "categories_new", "categories_not_comparable"):
        assert getattr(d, name) == expect.get(name, {}), name


def test_categories_lost_over_a_transport_the_new_input_cannot_hold_are_not_a_fix():
    old = _upgrade(tcp_finding="CLEARTEXT_PI")
    new = _upgrade(inputs=HAR, categories=("CLEARTEXT_PI", []))  # what the HTTP part kept
    (change,) = diff(old, new).findings_changed
    assert (change.removed, change.comparable) == ((LOC,), False)
    assert "removal not comparable: the new input cannot hold tcp" in format_text(
        diff(old, new))


@pytest.mark.parametrize("old_changes, new_changes, caveats", [
    ({}, {}, []),
    ({}, {"inputs": HAR}, [("inputs", "mitmproxy flows", "HAR")]),
    ({"inputs": ["live capture (flows.mitm)"]}, {"inputs": ["a.pcap", "b.har"]},
     [("inputs", "live capture", "HAR + pcap")]),
    ({"session": {"capture": {"modes": ["regular", "reverse:tcp"]}}},
     {"session": {"capture": {"modes": ["regular"]}}},
     [("capture", "regular + reverse:tcp", "regular")]),
    ({"session": {"capture": "wireguard"}}, {}, []),  # a session that does not say: no caveat
    ({}, {"coverage": {"uninspected": []}}, [("uninspected", "1", "0")]),
    ({}, {"coverage": {"analysis_errors": 4}}, [("errors", "1", "4")]),
    ({}, {"tcp_finding": "CLEARTEXT_PI"}, [("transports", "http + https + tls",
                                            "http + https + tcp + tls")]),
], ids=["same", "har", "live-vs-files", "capture-modes", "capture-unsaid", "uninspected",
        "errors", "transports"])
def test_the_sessions_differences_are_caveats(old_changes, new_changes, caveats):
    d = diff(_upgrade(**old_changes), _upgrade(**new_changes))
    assert [(c.kind, c.old, c.new) for c in d.caveats] == caveats
    text = format_text(d)
    assert ("caveats: the sessions differ in" in text) == bool(caveats)


# -- --fail-on-new: a regression gate between firmware versions ----------------------------

CRITICAL_NEW = NEW_FINDING | {"rule": "LOCATION_TO_THIRD_PARTY", "severity": "critical",
                              "categories": [LOC]}


@pytest.mark.parametrize("new_changes, severity, crossed", [
    ({}, "info", []),
    ({"add_finding": NEW_FINDING}, "high", [("CROSS_BORDER", SDK_ORG)]),
    ({"add_finding": NEW_FINDING}, "critical", []),                    # below the line
    ({"add_finding": CRITICAL_NEW}, "high", [("LOCATION_TO_THIRD_PARTY", SDK_ORG)]),
    ({"categories": ("CLEARTEXT_PI", [LOC, IMEI])}, "critical", [("CLEARTEXT_PI", FIRST_ORG)]),
    ({"categories": ("PRE_CONSENT_PI", [IMEI])}, "info", []),         # only lost categories
    ({"drop_rule": "CLEARTEXT_PI"}, "info", []),                     # a fix is no regression
    ({"recount": "PRE_CONSENT_PI"}, "info", []),                     # nor a count
], ids=["same", "new-high", "new-below", "new-critical", "gained-category", "lost-category",
        "fixed", "count"])
def test_regressions(new_changes, severity, crossed):
    d = diff(watch_doc(), _upgrade(**new_changes))
    assert [f.key for f in regressions(d, severity)] == crossed


def _folders(tmp_path: Path, old: dict, new: dict) -> tuple[Path, Path]:
    folders = tmp_path / "old", tmp_path / "new"
    for folder, doc in zip(folders, (old, new), strict=True):
        folder.mkdir()
        (folder / "findings.json").write_text(json.dumps(doc), encoding="utf-8")
    return folders


@pytest.mark.parametrize("new_changes, args, code, err", [
    ({"add_finding": CRITICAL_NEW}, [], 0, ""),                       # no gate asked for
    ({"add_finding": CRITICAL_NEW}, ["--fail-on-new", "high"], 1,
     "kidaudit: --fail-on-new high: 1 new finding at or above high in {new}:\n"
     f"  [CRITICAL] LOCATION_TO_THIRD_PARTY -> {SDK_ORG} ({LOC})\n"),
    ({"add_finding": CRITICAL_NEW}, ["--fail-on-new", "CRITICAL"], 1,
     "kidaudit: --fail-on-new critical: 1 new finding at or above critical in {new}:\n"
     f"  [CRITICAL] LOCATION_TO_THIRD_PARTY -> {SDK_ORG} ({LOC})\n"),
    ({"add_finding": NEW_FINDING}, ["--fail-on-new", "critical"], 0, ""),
    ({"categories": ("PRE_CONSENT_PI", [IMEI])}, ["--fail-on-new", "info"], 0, ""),
    ({"tcp_finding": "CLEARTEXT_PI"}, ["--fail-on-new", "info"], 0, ""),  # both live: same
    ({}, ["--fail-on-new", "severe"], 2, None),                       # not a severity
], ids=["no-gate", "crossed", "any-case", "below", "only-lost", "unchanged", "bad-severity"])
def test_fail_on_new_through_the_cli(tmp_path, monkeypatch, capsys, new_changes, args, code,
                                     err):
    old_doc = _upgrade(tcp_finding="CLEARTEXT_PI") if "tcp_finding" in new_changes \
        else watch_doc()
    old, new = _folders(tmp_path, old_doc, _upgrade(**new_changes))
    got_code, got_err = run_main(["diff", str(old), str(new), *args], monkeypatch, capsys)
    assert got_code == code
    if err is not None:
        assert got_err == err.format(new=new)


def test_the_cli_names_the_caveats_before_anything_fixed(tmp_path):
    from typer.testing import CliRunner

    from auditor.cli import app

    old, new = _folders(tmp_path, _upgrade(tcp_finding="CLEARTEXT_PI"),
                        _upgrade(tcp_finding="CLEARTEXT_PI", drop_tcp=None, inputs=HAR))
    result = CliRunner().invoke(app, ["diff", str(old), str(new)])
    assert result.exit_code == 0
    out = result.output
    assert out.index("input kind: old mitmproxy flows, new HAR") < out.index("findings fixed (0)")
    assert f"?- [CRITICAL] CLEARTEXT_PI -> {FIRST_ORG} [{MAKER_IP}]" in out


def test_diff_is_symmetric_in_what_it_reports():
    old, new = watch_doc(), _upgrade(drop_rule="CLEARTEXT_PI", drop_recipient=SDK)
    there, back = diff(old, new), diff(new, old)
    assert [f.key for f in there.findings_fixed] == [f.key for f in back.findings_introduced]
    assert there.recipients_vanished == back.recipients_new
    assert there.categories_vanished == {}  # only recipients in both sessions
    assert back.categories_new == {SDK: ("identifier.imei",)}  # a new recipient's categories


@pytest.mark.parametrize("doc", [{}, {"findings": [{}], "transmissions": [{}, "x"]},
                                 {"session": {"device": "Watch"}, "detections": [None]}],
                         ids=["empty", "odd-records", "odd-session"])
def test_diff_reads_defensively(doc):
    d = diff(doc, watch_doc())
    assert d.recipients_new == (FIRST, SDK)
    assert format_text(d)


@pytest.mark.parametrize("changes, lines", [
    ({}, ["no change", "findings introduced (0)"]),
    ({"drop_rule": "CLEARTEXT_PI"},
     ["findings fixed (1)",
      f"- [CRITICAL] CLEARTEXT_PI -> {FIRST_ORG} [{FIRST}] (location.precise) x2"]),
    ({"add_recipient": ("adnet.example", "identifier.imei")},
     ["new recipients (1)", "+ adnet.example: identifier.imei"]),
    ({"recount": "PRE_CONSENT_PI"}, [f"= PRE_CONSENT_PI -> {FIRST_ORG} [{FIRST}]: 2 -> 12"]),
    ({"categories": ("PRE_CONSENT_PI", [IMEI, ICCID])},
     ["findings whose categories changed (1)",
      f"~ [CRITICAL] PRE_CONSENT_PI -> {FIRST_ORG} [{FIRST}]: +{ICCID} -{LOC} x2 -> x2",
      "0 introduced, 0 fixed, 1 changed"]),
    ({"inputs": HAR}, ["caveats: the sessions differ in (1)",
                       "input kind: old mitmproxy flows, new HAR"]),
], ids=["same", "fixed", "new-recipient", "count", "changed", "caveat"])
def test_format_text(changes, lines):
    text = format_text(diff(watch_doc(), _upgrade(**changes)))
    assert text.startswith("old: Acme Kids Watch K2 firmware 1.4.2")
    for line in lines:
        assert line in text


@pytest.mark.parametrize("lang, texts", [
    ("en", ["Findings fixed (1)", "New recipients (1)", "1.4.2 → 1.5.0", "adnet.example",
            "Findings whose categories changed (1)", "Input kind: old mitmproxy flows, new HAR",
            FIRST_ORG]),
    ("zh", ["已修复的发现项 (1)", "新增接收方 (1)", "明文传输个人信息",
            "数据类别有变化的发现项 (1)", "输入类型：旧 mitmproxy 流量文件，新 HAR"]),
])
def test_html_page(tmp_path, lang, texts):
    d = diff(watch_doc(), _upgrade(drop_rule="CLEARTEXT_PI",
                                   add_recipient=("adnet.example", "identifier.imei"),
                                   categories=("PRE_CONSENT_PI", [IMEI]), inputs=HAR))
    diff_html.render(d, tmp_path / "diff.html", lang=lang)
    page = (tmp_path / "diff.html").read_text(encoding="utf-8")
    for text in texts:
        assert text in page


def test_html_page_shows_what_is_not_comparable():
    d = diff(_upgrade(tcp_finding="CLEARTEXT_PI"),
             _upgrade(tcp_finding="CLEARTEXT_PI", drop_tcp=None, inputs=HAR))
    page = diff_html.render_string(d)
    assert 'id="not-comparable"' in page and "Not comparable (2)" in page
    assert MAKER_IP in page.split('id="not-comparable"')[1].split("</section>")[0]


@pytest.mark.browser
def test_html_page_keeps_hostile_names_as_text_in_browser(tmp_path):
    evil = " ".join(PAYLOADS)
    new = _upgrade(add_recipient=(evil, evil), add_finding=NEW_FINDING | {
        "rule": evil, "title": evil, "recipient": evil, "categories": [evil], "severity": evil})
    new["session"]["device"] |= {"name": evil, "firmware": evil}
    new["session"] |= {"inputs": [evil], "capture": evil}
    _finding(new, "PRE_CONSENT_PI")["categories"] = [evil]
    diff_html.render(diff(watch_doc(), new), tmp_path / "diff.html")
    found = browser.elements(browser.dump_dom(tmp_path / "diff.html"))
    assert not INJECTED_TAGS & {tag for tag, _ in found}
    for tag, attrs in found:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert "data-pwned" not in attrs, (tag, attrs)
    assert {"introduced", "fixed", "recipients-new", "changed"} <= {
        a.get("id") for _, a in found}


def test_unknown_language_is_refused(tmp_path):
    with pytest.raises(ValueError, match="language"):
        diff_html.render(diff({}, {}), tmp_path / "d.html", lang="fr")


def test_diff_labels_match_across_languages():
    from auditor.report.i18n import DIFF_LABELS, LABELS

    assert set(DIFF_LABELS) == set(LABELS)
    en, zh = DIFF_LABELS["en"], DIFF_LABELS["zh"]
    assert set(en) == set(zh)
    # a label holding an English word (three lower-case letters or more) must be translated
    assert [k for k in en if re.search(r"[a-z]{3,}", en[k]) and zh[k] == en[k]] == []


# -- hostile input (issue 13): a findings.json diff cannot read is exit 2, one line ----------

def _sessions(tmp_path: Path, old_text: str) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):
        folder.mkdir()
    (old / "findings.json").write_text(old_text, encoding="utf-8")
    (new / "findings.json").write_text(json.dumps(watch_doc()), encoding="utf-8")
    return old, new


@pytest.mark.parametrize("text, problem", [
    ("[]", "is a JSON array, not a findings document (an object with findings, "
           "transmissions and detections)"),
    ('{"findings": 5}', "findings is a JSON number, not a list"),
    ('{"transmissions": {"a": 1}}', "transmissions is a JSON object, not a list"),
    ('"text"', "is a JSON string, not a findings document (an object with findings, "
               "transmissions and detections)"),
    ("[" * 100_000 + "]" * 100_000, "is not a findings document (nested too deeply)"),
    ("{", "is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
          "(char 1)"),
])
def test_a_findings_json_diff_cannot_read_is_exit_2_in_one_line(tmp_path, text, problem):
    from typer.testing import CliRunner

    from auditor.cli import app

    old, new = _sessions(tmp_path, text)
    result = CliRunner().invoke(app, ["diff", str(old), str(new)])
    assert (result.exit_code, result.output) == (
        2, f"kidaudit: {old / 'findings.json'}: {problem}\n")


@pytest.mark.parametrize("text", ["[]", "{"], ids=["array", "not-json"])
def test_a_findings_json_diff_cannot_read_is_exit_2_under_the_gate(tmp_path, monkeypatch,
                                                                    capsys, text):
    old, new = _sessions(tmp_path, text)
    code, err = run_main(["diff", str(old), str(new), "--fail-on-new", "info"], monkeypatch,
                         capsys)
    assert code == 2 and err.startswith(f"kidaudit: {old / 'findings.json'}: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize("doc", [
    {"findings": [{"categories": 5, "count": float("inf"), "transmissions": "x"}]},  # hit
    {"detections": [{"transmission": [1], "category": "identifier.imei"}],
     "transmissions": [{"id": [1], "host": "a.example"}]},                           # hit
    {"findings": [], "transmissions": [], "detections": []},                         # ok
    {"session": {"inputs": "x.har", "capture": [1, {"a": None}]}, "coverage": [],    # odd
     "recipients": ["x", {"organisation": 5}],
     "findings": [{"organisation": ["x"], "transmissions": [[1], None]}]},
])
def test_odd_values_inside_the_lists_are_read_defensively(doc):
    d = diff(doc, watch_doc())
    assert d.recipients_new and format_text(d).endswith("\n")
    assert diff_html.render_string(diff(watch_doc(), doc))
