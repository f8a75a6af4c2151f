"""``kidaudit diff``: two sessions (e.g. two firmware versions) compared, as text and HTML."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from auditor.diff import diff, format_text  # noqa: E402
from auditor.report import diff_html  # noqa: E402
from tests import browser  # noqa: E402
from tests.factories import FIRST_PARTY as FIRST  # noqa: E402
from tests.test_report_html import INJECTED_TAGS, PAYLOADS, watch_doc  # noqa: E402

SDK = "tracklytics.example"


def _upgrade(**changes) -> dict:
    """The watch session after a firmware update, with ``changes`` applied."""
    doc = copy.deepcopy(watch_doc())
    doc["session"] |= {"id": "2026-12-05-k2-fw150"}
    doc["session"]["device"]["firmware"] = "1.5.0"
    for name, change in changes.items():
        CHANGES[name](doc, change)
    return doc


def _drop_rule(doc, rule):
    doc["findings"] = [f for f in doc["findings"] if f["rule"] != rule]


def _add_finding(doc, finding):
    doc["findings"].append(finding)


def _recount(doc, rule):
    for f in doc["findings"]:
        if f["rule"] == rule:
            f["count"] += 10


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


CHANGES = {"drop_rule": _drop_rule, "add_finding": _add_finding, "recount": _recount,
           "drop_recipient": _drop_recipient, "add_recipient": _add_recipient,
           "add_category": _add_category}
NEW_FINDING = {"id": "f-new", "rule": "CROSS_BORDER", "severity": "high", "title": "t",
               "categories": ["location.precise", "identifier.imei"], "recipient": SDK,
               "transmissions": [3], "count": 1, "references": []}


@pytest.mark.parametrize("changes, expect", [
    ({}, {}),
    ({"drop_rule": "CLEARTEXT_PI"},
     {"fixed": [("CLEARTEXT_PI", FIRST, ("location.precise",))]}),
    ({"add_finding": NEW_FINDING},
     {"introduced": [("CROSS_BORDER", SDK, ("identifier.imei", "location.precise"))]}),
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
     ["findings fixed (1)", f"- [CRITICAL] CLEARTEXT_PI -> {FIRST} (location.precise) x2"]),
    ({"add_recipient": ("adnet.example", "identifier.imei")},
     ["new recipients (1)", "+ adnet.example: identifier.imei"]),
    ({"recount": "PRE_CONSENT_PI"}, [f"= PRE_CONSENT_PI -> {FIRST}: 2 -> 12"]),
])
def test_format_text(changes, lines):
    text = format_text(diff(watch_doc(), _upgrade(**changes)))
    assert text.startswith("old: Acme Kids Watch K2 firmware 1.4.2")
    for line in lines:
        assert line in text


@pytest.mark.parametrize("lang, texts", [
    ("en", ["Findings fixed (1)", "New recipients (1)", "1.4.2 → 1.5.0", "adnet.example"]),
    ("zh", ["已修复的发现项 (1)", "新增接收方 (1)", "明文传输个人信息"]),
])
def test_html_page(tmp_path, lang, texts):
    d = diff(watch_doc(), _upgrade(drop_rule="CLEARTEXT_PI",
                                   add_recipient=("adnet.example", "identifier.imei")))
    diff_html.render(d, tmp_path / "diff.html", lang=lang)
    page = (tmp_path / "diff.html").read_text(encoding="utf-8")
    for text in texts:
        assert text in page


@pytest.mark.browser
def test_html_page_keeps_hostile_names_as_text_in_browser(tmp_path):
    evil = " ".join(PAYLOADS)
    new = _upgrade(add_recipient=(evil, evil), add_finding=NEW_FINDING | {
        "rule": evil, "title": evil, "recipient": evil, "categories": [evil], "severity": evil})
    new["session"]["device"] |= {"name": evil, "firmware": evil}
    diff_html.render(diff(watch_doc(), new), tmp_path / "diff.html")
    found = browser.elements(browser.dump_dom(tmp_path / "diff.html"))
    assert not INJECTED_TAGS & {tag for tag, _ in found}
    for tag, attrs in found:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert "data-pwned" not in attrs, (tag, attrs)
    assert {"introduced", "fixed", "recipients-new"} <= {a.get("id") for _, a in found}


def test_unknown_language_is_refused(tmp_path):
    with pytest.raises(ValueError, match="language"):
        diff_html.render(diff({}, {}), tmp_path / "d.html", lang="fr")


def test_diff_labels_match_across_languages():
    from auditor.report.i18n import DIFF_LABELS, LABELS

    assert set(DIFF_LABELS) == set(LABELS)
    assert set(DIFF_LABELS["en"]) == set(DIFF_LABELS["zh"])


# -- hostile input (issue 13): a findings.json diff cannot read is exit 2, one line ----------

def _sessions(tmp_path: Path, old_text: str) -> tuple[Path, Path]:
    import json

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


@pytest.mark.parametrize("doc", [
    {"findings": [{"categories": 5, "count": float("inf"), "transmissions": "x"}]},  # hit
    {"detections": [{"transmission": [1], "category": "identifier.imei"}],
     "transmissions": [{"id": [1], "host": "a.example"}]},                           # hit
    {"findings": [], "transmissions": [], "detections": []},                         # ok
])
def test_odd_values_inside_the_lists_are_read_defensively(doc):
    d = diff(doc, watch_doc())
    assert d.recipients_new and format_text(d).endswith("\n")
