"""The campaign page (auditor.campaign.report): sections, hostile names, languages, a browser."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from markupsafe import escape

from auditor.campaign import report
from auditor.campaign.model import Campaign, Change, FindingRow, RunResult, RunSpec
from auditor.report.document import Coverage, FindingEntry, RuleResult, judge
from auditor.report.i18n import CAMPAIGN_LABELS
from tests.browser import dump_dom, elements

SECTIONS = ("overview", "matrix", "recipients", "changes", "inconclusive", "failed")
WATCH = "Acme Kids Watch K2"
HOSTILE = [
    '<script>alert("x")</script>',
    "\"' onmouseover=alert(1) x='",
    "\u202eevil\u202c firmware \u05e9\u05dc\u05d5\u05dd",  # right-to-left override, Hebrew
    "W" * 5000,
]


def row(rule: str, severity: str, recipient: str, categories: tuple[str, ...],
        count: int = 1) -> FindingRow:
    return FindingRow(f"{rule}:{recipient}", rule, severity, f"English title of {rule}",
                      recipient, categories, count, "2026-11-28T10:00:00Z")


IMEI_TO_SDK = row("THIRD_PARTY_UNDISCLOSED", "high", "tinytrack-analytics.example",
                  ("identifier.imei",), 3)
PRE_CONSENT = row("PRE_CONSENT_PI", "critical", "Acme Watch Co.", ("identifier.imei",))
NAME_TO_MAP = row("SCOPE_EXCEEDED", "high", "pinmap-sdk.example", ("identity.name",), 2)


def run(run_id: str, firmware: str, *, device: str = WATCH, status: str = "done",
        verdict: str = "fail", reason: str = "", findings: tuple[FindingRow, ...] = (),
        rules: tuple[tuple[str, str], ...] = (), error: str = "",
        recipients: tuple[tuple[str, str, str], ...] = (),
        categories: tuple[str, ...] = (), scenario: str = "use") -> RunResult:
    return RunResult(RunSpec(run_id, device, firmware, "2.0", scenario), status, error=error,
                     verdict=verdict if status != "failed" else "", verdict_reason=reason,
                     rules=rules, findings=findings, recipients=recipients,
                     categories=categories, transmissions=12 if status != "failed" else 0)


def campaign(device: str = WATCH, firmware: str = "1.5.0", run_id: str = "k2-150") -> Campaign:
    old = run("k2-142", "1.4.2", device=device, findings=(PRE_CONSENT, IMEI_TO_SDK),
              reason="4 finding(s) of 2 rule(s) at severity low or above",
              rules=(("PRE_CONSENT_PI", "fail"), ("THIRD_PARTY_UNDISCLOSED", "fail"),
                     ("SCOPE_EXCEEDED", "pass"), ("IDLE_LOCATION", "not exercised")),
              recipients=(("Acme Watch Co.", "first", "CN"),
                          ("tinytrack-analytics.example", "third", "US"),
                          ("cdn.example", "third", "")),
              categories=("identifier.imei", "location.precise"))
    new = run(run_id, firmware, device=device, findings=(PRE_CONSENT, NAME_TO_MAP),
              reason="3 finding(s) of 2 rule(s) at severity low or above",
              rules=(("PRE_CONSENT_PI", "fail"), ("THIRD_PARTY_UNDISCLOSED", "pass"),
                     ("SCOPE_EXCEEDED", "fail"), ("IDLE_LOCATION", "not exercised")),
              recipients=(("Acme Watch Co.", "first", "CN"),
                          ("tinytrack-analytics.example", "third", "US"),
                          ("pinmap-sdk.example", "third", "CN")),
              categories=("identifier.imei", "identity.name"))
    idle = run("k2-142-idle", "1.4.2", device=device, verdict="inconclusive",
               scenario="idle", reason="9 of 10 connections could not be read",
               rules=(("PRE_CONSENT_PI", "pass"),))
    broken = run("tab-1", "7", device="Tablet", status="failed",
                 error="tab.pcap: not a capture file\n(truncated)")
    reused = run("k2-142-bind", "1.4.2", device=device, status="unchanged", verdict="pass",
                 scenario="bind", reason="no violation in 5 connection(s) read")
    return Campaign("Q4 lab campaign", (old, new, idle, broken, reused),
                    (Change(device, "use", "1.4.2", firmware, (NAME_TO_MAP,), (IMEI_TO_SDK,)),))


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return {lang: report.render_string(campaign(), lang=lang, generated="2026-12-03 14:00")
            for lang in ("en", "zh")}


# -- structure -----------------------------------------------------------------------------


@pytest.mark.parametrize("lang, html_lang, texts", [
    ("en", "en", ["Campaign report", "Q4 lab campaign", "Device × firmware × rule",
                  "What each firmware introduced or fixed", "Inconclusive runs (1)",
                  "Failed runs (1)", "2026-12-03 14:00", "0.1.0"]),
    ("zh", "zh-CN", ["测试批次报告", "Q4 lab campaign", "设备 × 固件 × 规则",
                     "各固件版本新增或修复的问题", "无法判定的运行 (1)", "失败的运行 (1)",
                     "不通过", "无法判定"]),
])
def test_sections_and_labels(pages, lang, html_lang, texts):
    page = pages[lang]
    assert f'<html lang="{html_lang}">' in page
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    for text in texts:
        assert text in page


def test_the_header_counts_runs_failed_and_unchanged():
    view = report.build_view(campaign(), "en")
    assert view["counts"] == {"runs": 5, "failed": 1, "unchanged": 1}
    assert {v["key"]: v["n"] for v in view["verdicts"]} == {"fail": 2, "pass": 1,
                                                          "inconclusive": 1}


def test_the_matrix_has_a_row_per_run_and_a_cell_per_rule():
    matrix = report.build_view(campaign(), "en")["matrix"]
    # rules that failed somewhere first, worst severity first; then the rest by id
    assert matrix["rules"] == ["PRE_CONSENT_PI", "SCOPE_EXCEEDED", "THIRD_PARTY_UNDISCLOSED",
                               "IDLE_LOCATION"]
    cells = {r["id"]: [(c["mark"], c["n"]) for c in r["cells"]] for r in matrix["rows"]}
    assert cells == {
        "k2-142": [("✗", 1), ("✓", ""), ("✗", 1), ("·", "")],
        "k2-150": [("✗", 1), ("✗", 1), ("✓", ""), ("·", "")],
        "k2-142-idle": [("✓", ""), ("", ""), ("", ""), ("", "")],
        "tab-1": [("", "")] * 4,
        "k2-142-bind": [("", "")] * 4,
    }
    verdicts = {r["id"]: (r["status_key"], r["verdict_key"]) for r in matrix["rows"]}
    assert verdicts["tab-1"] == ("failed", "none")
    assert verdicts["k2-142-bind"] == ("unchanged", "pass")


@pytest.mark.parametrize("run_id, link", [
    ("k2-150", "runs/k2-150/report.html"),
    ("../../etc", "runs/..%2F..%2Fetc/report.html"),
    ('a"b <c>', "runs/a%22b%20%3Cc%3E/report.html"),
    ("javascript:alert(1)", "runs/javascript%3Aalert%281%29/report.html"),
])
def test_each_run_links_to_its_own_report_inside_runs(run_id, link):
    view = report.build_view(campaign(run_id=run_id), "en")
    assert [r["link"] for r in view["matrix"]["rows"] if r["id"] == run_id] == [link]
    page = report.render_string(campaign(run_id=run_id))
    assert f'href="{link}"' in page


def test_a_failed_run_has_no_link_and_its_error_on_one_line():
    view = report.build_view(campaign(), "en")
    assert [(r["id"], r["link"], r["error"]) for r in view["failed"]] == [
        ("tab-1", "", "tab.pcap: not a capture file (truncated)")]
    long = Campaign("c", (run("x", "1", status="failed", error="e" * 5000),), ())
    shown = report.build_view(long, "en")["failed"][0]["error"]
    assert len(shown) == report.ERROR_CAP and shown.endswith("…")


def test_recipients_across_devices_name_the_categories_each_firmware_sent():
    rec = report.build_view(campaign(), "en")["recipients"]
    assert rec["devices"] == [{"name": WATCH, "span": 2}]  # the failed tablet has no column
    assert rec["firmwares"] == ["1.4.2", "1.5.0"]
    rows = {r["recipient"]: (r["party"], r["country"],
                             [(c["sent"], c["categories"]) for c in r["cells"]])
            for r in rec["rows"]}
    assert rows == {
        "tinytrack-analytics.example": ("third party", "US",
                                        [(True, ["identifier.imei"]), (True, [])]),
        "pinmap-sdk.example": ("third party", "CN", [(False, []), (True, ["identity.name"])]),
        "cdn.example": ("third party", "—", [(True, []), (False, [])]),
        "Acme Watch Co.": ("first party", "CN",
                           [(True, ["identifier.imei"]), (True, ["identifier.imei"])]),
    }
    assert [r["recipient"] for r in rec["rows"]][-1] == "Acme Watch Co."  # third parties first
    assert rec["every"] == [["identifier.imei", "location.precise"],
                            ["identifier.imei", "identity.name"]]


def test_what_a_firmware_introduced_and_fixed_is_listed(pages):
    (change,) = report.build_view(campaign(), "en")["changes"]
    assert (change["before"], change["after"]) == ("1.4.2", "1.5.0")
    assert [(f["rule"], f["recipient"], f["categories"]) for f in change["introduced"]] == [
        ("SCOPE_EXCEEDED", "pinmap-sdk.example", ["identity.name"])]
    assert [(f["rule"], f["recipient"]) for f in change["fixed"]] == [
        ("THIRD_PARTY_UNDISCLOSED", "tinytrack-analytics.example")]
    changes = pages["en"].split('<section id="changes">')[1].split("</section>")[0]
    assert "Introduced (1)" in changes and "Fixed (1)" in changes
    assert changes.index("pinmap-sdk.example") < changes.index("tinytrack-analytics.example")


def test_a_campaign_without_runs_renders():
    page = report.render_string(Campaign("", (), ()), lang="zh")
    assert "未命名测试批次" in page and "没有设备具有两个可对比的固件版本。" in page


# -- hostile names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_hostile_device_and_firmware_names_are_escaped_and_isolated(name, lang):
    page = report.render_string(campaign(device=name, firmware=name, run_id=name), lang=lang)
    assert "<script" not in page
    assert '" onmouseover' not in page and "' onmouseover" not in page
    assert f"<bdi>{escape(name)}</bdi>" in page  # every name printed whole, isolated
    for anchor in re.findall(r'id="([^"]*)"', page):
        assert re.fullmatch(r"[a-z-]+(-\d+)?", anchor), anchor


# -- languages -----------------------------------------------------------------------------


def test_no_label_of_the_chinese_page_is_left_in_english(pages):
    en, zh = CAMPAIGN_LABELS["en"], CAMPAIGN_LABELS["zh"]
    assert set(en) == set(zh)
    assert [k for k in en if re.search(r"[a-z]{3,}", en[k]) and zh[k] == en[k]] == []
    # and the Chinese page's text shows none of the English labels (up to a placeholder)
    text_only = re.sub(r"<[^>]*>", " ", pages["zh"])
    for key, text in en.items():
        piece = text.split("{")[0].strip()
        if re.search(r"[a-z]{3,}", piece):
            assert str(escape(piece)) not in text_only, key
    for english in ("English title of", "finding(s)", "could not be read", "third party",
                    ">FAIL<", "analysed"):
        assert english not in pages["zh"]


def _reasons() -> list[str]:
    """Every verdict reason ``judge`` writes, from the function itself."""
    finding = FindingEntry(id="f", rule="PRE_CONSENT_PI", severity="critical")
    quiet = (RuleResult("IDLE_LOCATION", "not exercised", "no idle phase happened"),)
    return [judge([finding], Coverage(3, 3)).reason,
            judge([], Coverage(0, 0)).reason,
            judge([], Coverage(4, 0)).reason,
            judge([], Coverage(10, 1)).reason,
            judge([], Coverage(10, 10)).reason,
            judge([], Coverage(10, 10), quiet).reason]


@pytest.mark.parametrize("reason", _reasons())
def test_every_verdict_reason_judge_writes_is_said_in_chinese(reason):
    zh = report.reason_text(reason, "zh")
    assert zh != reason
    assert not re.search(r"[a-z]{3,}", zh.replace("IDLE_LOCATION", "")), zh
    assert sorted(re.findall(r"\d+", zh)) == sorted(re.findall(r"\d+", reason))
    assert report.reason_text(reason, "en") == reason


def test_an_unknown_reason_is_shown_as_written():
    assert report.reason_text("something new", "zh") == "something new"


def test_build_view_reads_no_clock_and_render_writes_the_page(tmp_path):
    assert report.build_view(campaign(), "en") == report.build_view(campaign(), "en")
    out = tmp_path / "c" / report.page_name("zh")
    report.render(campaign(), out, lang="zh", now=datetime(2026, 12, 3, 14, 5, tzinfo=UTC))
    assert out.name == "campaign.zh.html" and report.page_name("en") == "campaign.html"
    assert "2026-12-03 14:05" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("lang", ["xx", ""])
def test_an_unknown_language_is_refused(lang):
    with pytest.raises(ValueError, match="unknown report language"):
        report.build_view(campaign(), lang)


# -- in a real browser ---------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_chromium_builds_the_matrix_rows_and_runs_nothing(tmp_path, lang):
    hostile = HOSTILE[0]
    out = tmp_path / report.page_name(lang)
    report.render(campaign(device=hostile, firmware=HOSTILE[2]), out, lang=lang)
    dom = dump_dom(out)
    tags = elements(dom)
    assert not [t for t, _ in tags if t == "script"]
    runs = [a for t, a in tags if t == "tr" and a.get("class") == "run"]
    assert [a["id"] for a in runs] == [f"run-{i}" for i in range(1, 6)]
    assert len([a for t, a in tags if t == "tr" and "recipient" in (a.get("class") or "")]) == 4
    links = [a["href"] for t, a in tags if t == "a" and a.get("href", "").startswith("runs/")]
    assert "runs/k2-150/report.html" in links and not [h for h in links if "tab-1" in h]
    assert hostile not in dom and "&lt;script&gt;" in dom  # the name as text, never as a tag


def test_a_devices_firmwares_stand_together_whatever_the_manifest_order():
    runs = (run("a1", "1", device="A"), run("b1", "9", device="B"), run("a2", "2", device="A"))
    rec = report.build_view(Campaign("c", runs, ()), "en")["recipients"]
    assert rec["devices"] == [{"name": "A", "span": 2}, {"name": "B", "span": 1}]
    assert rec["firmwares"] == ["1", "2", "9"]
