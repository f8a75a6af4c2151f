"""The HTML report: sections, languages, evidence, and that hostile captured data stays text.

Captured URLs, hosts, field names and values are chosen by whoever wrote the device's
firmware; the report is opened by labs, makers and regulators, so markup in them must
reach the page escaped. Checked in the file and again in a real browser's DOM.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import struct
import sys
from pathlib import Path

import pytest
from markupsafe import escape

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the bare `pytest` script does not put the project root there
    sys.path.insert(0, str(ROOT))

from auditor.report import html as report_html  # noqa: E402
from auditor.report.document import load  # noqa: E402
from tests import browser  # noqa: E402

SECTIONS = ("summary", "verdict", "findings", "flows", "timeline", "coverage", "rules")
IMEI_MASKED = "8612********0123"
API = "api.acme-watch.example"
SDK = "sdk.tracklytics.example"


def _tx(tid, ts, transport, method, url, host, recipient, *, inspected=True, port=443):
    return {"id": tid, "ts": ts, "transport": transport, "direction": "up", "host": host,
            "ip": "203.0.113.7", "port": port, "method": method, "url": url,
            "inspected": inspected, "bytes": 512, "recipient": recipient}


def _det(tid, category, field, value, encoding=(), method="known", confidence=0.99):
    return {"transmission": tid, "category": category, "method": method,
            "location": field.split(".")[0], "field": field, "encoding": list(encoding),
            "profile_key": category.split(".")[-1], "value": value, "confidence": confidence}


def _finding(fid, rule, severity, title, categories, recipient, txs, consent, refs,
             first="", last=""):
    return {"id": fid, "rule": rule, "severity": severity, "title": title,
            "categories": categories, "recipient": recipient, "transmissions": txs,
            "first_seen": first, "last_seen": last, "count": len(txs),
            "consent": consent, "references": refs}


def watch_doc() -> dict:
    """A kids' watch session: registers with its IMEI before consent, reports precise
    location, feeds a third-party analytics host, and posts GPS fixes over plain HTTP."""
    first = {"domain": "acme-watch.example", "organization": "Acme Watch Co.",
             "party": "first", "country": "CN"}
    third = {"domain": "tracklytics.example", "organization": "Tracklytics Inc.",
             "party": "third", "country": "US", "sdk": "Tracklytics SDK",
             "sdk_type": "analytics"}
    loc = "39.98***,116.30***"
    doc = {
        "schema": "kidaudit.findings/1",
        "session": {
            "id": "2026-11-28-k2-fw142",
            "device": {"name": "Acme Kids Watch K2", "kind": "smartwatch", "firmware": "1.4.2"},
            "started": "2026-11-28T10:00:00Z", "ended": "2026-11-28T10:45:00Z",
            "inputs": ["flows.mitm", "profile.yaml", "consent.yaml"],
            "tool_version": "0.1.0", "ruleset": "v1",
            "profile_sha256": "9f2c" + "0" * 56 + "a1b2",
            "flows_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "consent_sha256": "",
        },
        "transmissions": [
            _tx(1, "2026-11-28T10:02:11Z", "https", "POST",
                f"https://{API}/v1/device/register", API, first),
            _tx(2, "2026-11-28T10:02:40.250Z", "https", "POST",
                f"https://{API}/v1/loc/report", API, first),
            _tx(3, "2026-11-28T10:03:05Z", "https", "GET",
                f"https://{SDK}/v2/collect?did=MzNhYjE%3D&ev=boot", SDK, third),
            _tx(4, "2026-11-28T10:16:30Z", "http", "POST",
                "http://gps.acme-watch.example/up", "gps.acme-watch.example", first, port=80),
            _tx(5, "2026-11-28T10:17:30Z", "http", "POST",
                "http://gps.acme-watch.example/up", "gps.acme-watch.example", first, port=80),
            _tx(6, "2026-11-28T10:18:00Z", "https", "GET",
                f"https://{SDK}/v2/collect?did=MzNhYjE%3D&ev=tick", SDK, third),
            _tx(7, "2026-11-28T10:19:00Z", "tls", "", "", "pinned.acme-watch.example", first,
                inspected=False),
        ],
        "detections": [
            _det(1, "identifier.imei", "body.json.dev.imei", IMEI_MASKED),
            _det(2, "location.precise", "body.json.loc", loc, ["gzip", "json"], "pattern", 0.9),
            _det(3, "identifier.imei", "query.did", "33ab****", ["url", "base64", "md5"]),
            _det(4, "location.precise", "body.form.lat", loc, method="pattern", confidence=0.9),
            _det(5, "location.precise", "body.form.lat", loc, method="pattern", confidence=0.9),
            _det(6, "identifier.imei", "query.did", "33ab****", ["url", "base64", "md5"]),
        ],
        "findings": [
            _finding("f-nonreset", "NON_RESETTABLE_ID", "medium",
                     "A hardware or SIM identifier is sent", ["identifier.imei"],
                     "acme-watch.example", [1], ["none"], ["41391 Annex F", "IDM 4.1"]),
            _finding("f-third", "THIRD_PARTY_UNDISCLOSED", "high",
                     "Personal data to an undisclosed third party", ["identifier.imei"],
                     "tracklytics.example", [3, 6], ["none", "granted"],
                     ["PIPL 23", "CPI 10, 17", "COPPA 312.5(a)(2)"]),
            _finding("f-pre", "PRE_CONSENT_PI", "critical",
                     "Personal data leaves the device before any guardian grant",
                     ["identifier.imei", "location.precise"], "acme-watch.example", [1, 2],
                     ["none"], ["PIPL 13, 31", "CPI 9", "COPPA 312.5(a)*"]),
            _finding("f-clear", "CLEARTEXT_PI", "critical",
                     "Personal data over a cleartext transport", ["location.precise"],
                     "acme-watch.example", [4, 5], ["granted"],
                     ["PIPL 51(3)", "ETSI 5.5-1", "FTC v. VTech (2018)"]),
            _finding("f-sdk", "PRE_CONSENT_SDK", "high",
                     "A third-party SDK receives an identifier before any grant",
                     ["identifier.imei"], "tracklytics.example", [3], ["none"],
                     ["IDM 2.1, 3.1", "FTC v. Apitor (2025)"]),
            _finding("f-uninspected", "UNINSPECTED_TRAFFIC", "info",
                     "Connections the auditor could not read", [],
                     "pinned.acme-watch.example", [7], [], []),
        ],
        "events": [
            {"ts": "2026-11-28T10:00:00Z", "action": "phase", "name": "setup", "source": "plan"},
            {"ts": "2026-11-28T10:15:00Z", "action": "grant", "categories": ["all-disclosed"],
             "recipients": [], "separate": ["location.precise"], "source": "signal"},
            {"ts": "2026-11-28T10:16:00Z", "action": "phase", "name": "use", "source": "plan"},
            {"ts": "2026-11-28T10:20:00Z", "action": "phase", "name": "idle", "source": "plan"},
            {"ts": "2026-11-28T10:40:00Z", "action": "withdraw",
             "categories": ["location.precise"], "recipients": ["acme-watch.example"],
             "separate": [], "source": "mark"},
        ],
        "coverage": {
            "connections": 7, "inspected": 6, "opaque_payloads": 1, "analysis_errors": 1,
            "uninspected": [{"host": "pinned.acme-watch.example",
                             "reason": "TLS handshake failed: the device pins its certificate"}],
            "errors": [{"transmission": 5, "stage": "decode",
                        "message": "brotli: output ratio limit exceeded"}],
            "opaque": [{"transmission": 2,
                        "fields": ["body.bin: high-entropy payload, no known encoding"]}],
        },
    }
    judged = {1: {"identifier.imei": "none"}, 2: {"location.precise": "none"},
              3: {"identifier.imei": "none"}, 4: {"location.precise": "granted (separate)"},
              5: {"location.precise": "granted (separate)"}, 6: {"identifier.imei": "refused"}}
    for tx in doc["transmissions"]:
        tx["consent"] = judged.get(tx["id"], {})
    when = {tx["id"]: tx["ts"] for tx in doc["transmissions"]}
    for f in doc["findings"]:
        f["first_seen"], f["last_seen"] = when[f["transmissions"][0]], when[f["transmissions"][-1]]
    return doc


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("report")
    rendered = {}
    for lang in ("en", "zh"):
        report_html.render(load(watch_doc()), out / f"report-{lang}.html", lang=lang)
        rendered[lang] = (out / f"report-{lang}.html").read_text(encoding="utf-8")
    return rendered


# -- structure and languages ---------------------------------------------------------------


@pytest.mark.parametrize("lang, html_lang, labels", [
    ("en", "en", ["Summary", "Verdict", "Findings", "Data flows", "Coverage", "Critical"]),
    ("zh", "zh-CN", ["概要", "结论", "发现项", "数据流向", "检测覆盖范围", "严重", "依据条款"]),
])
def test_sections_rule_ids_and_labels(pages, lang, html_lang, labels):
    page = pages[lang]
    assert f'<html lang="{html_lang}">' in page
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    for rule in ("PRE_CONSENT_PI", "CLEARTEXT_PI", "THIRD_PARTY_UNDISCLOSED"):
        assert rule in page
    for label in labels:
        assert label in page


def test_zh_has_no_english_headings(pages):
    for english in (">Summary<", ">Findings<", ">Coverage<", ">Evidence<"):
        assert english not in pages["zh"]


@pytest.mark.parametrize("text", [
    "Acme Kids Watch K2", "1.4.2", "flows.mitm", "v1", "0.1.0",            # summary
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",    # evidence hash
    IMEI_MASKED, "body.json.dev.imei",                                      # field and value
    "url → base64 → md5", "gzip → json",                                    # encoding chains
    f"GET https://{SDK}/v2/collect?did=MzNhYjE%3D&amp;ev=boot",            # method + URL
    "2026-11-28 10:02:40.250",                                              # time, UTC
    "tracklytics.example", "Tracklytics Inc.", "third party", "US",         # flows
    "TLS handshake failed: the device pins its certificate",                # uninspected
    "brotli: output ratio limit exceeded",                                  # analysis error
    'COPPA 312.5(a)<span class="unverified">unverified</span>',            # RULES.md `*`
])
def test_english_page_shows(pages, text):
    assert text in pages["en"]


@pytest.mark.parametrize("lang", ["fr", "EN", "", "zh-CN"])
def test_unknown_language_is_refused(tmp_path, lang):
    with pytest.raises(ValueError, match="language"):
        report_html.render(load(watch_doc()), tmp_path / "r.html", lang=lang)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("document", [
    lambda: load(watch_doc() | {"schema": "kidaudit.findings/2"}),  # read back from a file
    lambda: dataclasses.replace(load(watch_doc()), schema="kidaudit.findings/2"),
], ids=["json", "object"])
def test_other_schema_is_refused(tmp_path, document):
    with pytest.raises(ValueError, match="kidaudit.findings/2"):
        report_html.render(document(), tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_label_tables_match():
    assert set(report_html.LABELS["en"]) == set(report_html.LABELS["zh"])
    for kind, words in report_html.TERMS["en"].items():
        assert set(words) == set(report_html.TERMS["zh"][kind]), kind


# -- view model ----------------------------------------------------------------------------


def test_findings_worst_first_then_by_count():
    view = report_html.build_view(load(watch_doc()))
    assert [f["rule"] for f in view["findings"]] == [
        "CLEARTEXT_PI", "PRE_CONSENT_PI",              # critical, 2 each: by rule id
        "THIRD_PARTY_UNDISCLOSED", "PRE_CONSENT_SDK",  # high: 2 before 1
        "NON_RESETTABLE_ID", "UNINSPECTED_TRAFFIC",
    ]
    assert view["verdict"]["status"] == "fail"
    assert {c["severity"]: c["n"] for c in view["verdict"]["counts"]} == {
        "critical": 2, "high": 2, "medium": 1, "low": 0, "info": 1}


ALL_IN_FILES = "; findings.json and detections.csv list every one"


@pytest.mark.parametrize("n, rows, more", [
    (1, 1, ""),
    (20, 20, ""),
    (21, 20, "and 1 more transmissions not listed" + ALL_IN_FILES),
    (57, 20, "and 37 more transmissions not listed" + ALL_IN_FILES),
])
def test_evidence_is_capped(n, rows, more):
    doc = watch_doc()
    base = doc["transmissions"][3]
    doc["transmissions"] = [base | {"id": 100 + i, "ts": f"2026-11-28T10:{i // 60 + 20:02d}:"
                                                         f"{i % 60:02d}Z"} for i in range(n)]
    doc["detections"] = [_det(100 + i, "location.precise", "body.form.lat", "39.98***")
                         for i in range(n)]
    doc["findings"] = [_finding("f", "CLEARTEXT_PI", "critical", "t", ["location.precise"],
                                "acme-watch.example", [100 + i for i in range(n)], [], [])]
    (finding,) = report_html.build_view(load(doc))["findings"]
    assert len(finding["evidence"]) == rows
    assert finding["evidence"][0]["time"] == "2026-11-28 10:20:00"  # earliest first
    assert finding["more"] == more


@pytest.mark.parametrize("doc", [
    {},
    {"schema": "kidaudit.findings/1"},
    {"findings": [{}], "detections": [{}], "transmissions": [{}], "events": [{}]},
    {"session": {"device": "Watch X", "started": "not a time"},
     "findings": [{"rule": "R", "severity": "bogus", "transmissions": [99], "count": "x"}],
     "events": [{"action": "grant", "ts": "2026-11-28T10:00:00+08:00"}],
     "coverage": {"uninspected": ["h.example"], "errors": ["boom", {}]}},
], ids=["empty", "schema-only", "empty-records", "odd-values"])
def test_missing_or_odd_keys_still_render(tmp_path, doc):
    report_html.render(load(doc), tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in page


@pytest.mark.parametrize("masked, text", [
    (True, "Personal values are masked."),
    (False, "this copy is for the lab&#39;s internal use only"),
    (None, "masked unless the lab chose to reveal them"),
])
def test_masking_state_is_stated(masked, text):
    doc = watch_doc()
    doc["session"]["masked"] = masked
    assert text in report_html.render_string(load(doc))


def test_no_findings_says_so():
    # Issue 15: a session without findings is a PASS only on what was read, and says so
    # (it was "NO FINDINGS" before the verdict existed).
    doc = watch_doc() | {"findings": []}
    page = report_html.render_string(load(doc))
    assert "<strong>PASS</strong>" in page
    assert "No violation in the 6 connections read (of 7)." in page
    assert "No findings. No rule fired on the traffic the auditor inspected." in page


# -- hostile input -------------------------------------------------------------------------

PWN = "document.documentElement.setAttribute('data-pwned','{}')"
PAYLOADS = (
    "<script>window.__pwned=1;" + PWN.format("script") + "</script>",
    '"><img src=x onerror="' + PWN.format("img") + '">',
    "'><svg onload=\"" + PWN.format("svg") + "\"></svg>",
    "</title></style></textarea><iframe src=\"javascript:parent.__pwned=1\"></iframe>",
    "<a href=\"javascript:void(0)\" onmouseover=\"" + PWN.format("a") + "\">x</a>",
)
INJECTED_TAGS = {"script", "img", "iframe", "object", "embed"}


def hostile_doc() -> dict:
    """The watch session with markup in every place captured traffic can reach."""
    doc = copy.deepcopy(watch_doc())
    evil = " ".join(PAYLOADS)
    doc["session"]["device"]["name"] = evil
    doc["session"]["inputs"].append(evil)
    for tx in doc["transmissions"]:
        tx["url"] = f"https://{SDK}/c?{evil}"
        tx["host"] = evil
        tx["recipient"] = tx["recipient"] | {"domain": evil, "organization": evil,
                                             "country": evil}
    for det in doc["detections"]:
        det |= {"field": evil, "value": evil, "encoding": [evil, "base64"], "category": evil}
    for f in doc["findings"]:
        f |= {"title": evil, "recipient": evil, "rule": evil, "severity": evil,
              "references": [evil], "consent": [evil], "categories": [evil]}
    for ev in doc["events"]:
        ev |= {"name": evil, "categories": [evil], "recipients": [evil], "action": evil}
    doc["coverage"]["uninspected"][0] |= {"host": evil, "reason": evil}
    doc["coverage"]["errors"][0] |= {"stage": evil, "message": evil}
    doc["coverage"]["opaque"][0] |= {"fields": [evil], "transmission": evil}
    doc["session"] |= {"clock_note": evil, "country_source": evil, "rules_applied": [evil]}
    for tx in doc["transmissions"]:
        tx["consent"] = {evil: evil}
        tx["recipient"] |= {"sdk": evil, "sdk_type": evil}
        tx["transport"] = evil
    return doc


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_markup_is_escaped_in_file(tmp_path, payload):
    report_html.render(load(hostile_doc()), tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert payload not in page
    for tag in INJECTED_TAGS | {"svg onload"}:
        assert f"<{tag} " not in page and f"<{tag}>" not in page
    assert "&lt;" in page and "&#34;&gt;" in page  # present as text, escaped


@pytest.mark.browser
def test_hostile_markup_stays_text_in_browser(tmp_path):
    page = tmp_path / "hostile.html"
    report_html.render(load(hostile_doc()), page)
    dom = browser.dump_dom(page)
    found = browser.elements(dom)
    tags = [tag for tag, _ in found]
    assert not INJECTED_TAGS & set(tags), sorted(INJECTED_TAGS & set(tags))
    for tag, attrs in found:
        handlers = [a for a in attrs if a.startswith("on")]
        assert not handlers and "data-pwned" not in attrs, (tag, attrs)
        assert not (attrs.get("href") or "").startswith("javascript:"), (tag, attrs)
    ids = {attrs.get("id") for _, attrs in found}
    assert set(SECTIONS) <= ids, "the page stopped rendering its sections"
    assert tags.count("article") == len(hostile_doc()["findings"])


@pytest.mark.browser
def test_browser_check_sees_unescaped_markup(tmp_path):
    """Control: the same payloads pasted raw are caught, so the check above is not vacuous."""
    page = tmp_path / "raw.html"
    page.write_text("<!DOCTYPE html><html><body><p>" + " ".join(PAYLOADS) + "</p></body></html>",
                    encoding="utf-8")
    found = browser.elements(browser.dump_dom(page))
    assert {"script", "img", "iframe"} <= {tag for tag, _ in found}
    assert any(attrs.get("data-pwned") for tag, attrs in found if tag == "html")


def test_missing_chromium_fails_not_skips(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        browser.dump_dom(tmp_path / "r.html", binary=tmp_path / "no-such-chromium")


# -- looks ---------------------------------------------------------------------------------


@pytest.mark.browser
def test_screenshot_is_a_real_png(tmp_path):
    page = tmp_path / "report.html"
    report_html.render(load(watch_doc()), page)
    png = browser.screenshot(page, tmp_path / "report.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == browser.WINDOW
    assert len(data) > 10_000, len(data)


def test_page_is_self_contained(pages):
    for page in pages.values():
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
        assert "<link" not in page and "@import" not in page and "url(" not in page
        assert "@media print" in page


# -- evidence chain, consent, matrix, coverage ---------------------------------------------


@pytest.mark.parametrize("lang, texts", [
    ("en", ["Timestamps are the auditor host&#39;s UTC clock", "Country source",
            "not recorded"]),
    ("zh", ["时间戳取自抓包期间审计主机的 UTC 时钟", "国家/地区来源", "未记录"]),
])
def test_clock_and_country_source_defaults(pages, lang, texts):
    for text in texts:
        assert text in pages[lang]


def test_clock_and_country_source_from_session():
    doc = watch_doc()
    doc["session"] |= {"clock_note": "Host synced to ntp.lab.example, offset 3 ms",
                       "country_source": "DB-IP Lite 2026-11 (offline)"}
    page = report_html.render_string(load(doc))
    assert "Host synced to ntp.lab.example, offset 3 ms" in page
    assert "DB-IP Lite 2026-11 (offline)" in page
    assert "auditor host&#39;s UTC clock" not in page


@pytest.mark.parametrize("lang, state", [
    ("en", "granted (separate)"), ("en", "refused"), ("zh", "已单独同意"), ("zh", "已拒绝"),
])
def test_evidence_rows_show_the_consent_state_they_were_judged_under(lang, state):
    view = report_html.build_view(load(watch_doc()), lang=lang)
    states = {d["consent"] for f in view["findings"] for row in f["evidence"]
              for d in row["details"]}
    assert state in states


def test_flow_matrix_carries_sdk_country_transport_and_encodings():
    flows = report_html.build_view(load(watch_doc()))["flows"]
    sdk_row = next(r for r in flows["rows"] if r["domain"] == "tracklytics.example")
    assert sdk_row["sdk"] == "Tracklytics SDK · analytics"
    assert (sdk_row["party"], sdk_row["country"]) == ("third party", "US")
    assert flows["rows"][0]["domain"] == "tracklytics.example"  # third parties first
    detail = next(d for d in flows["details"]
                  if (d["domain"], d["category"]) == ("acme-watch.example", "location.precise"))
    assert detail["count"] == 3
    assert detail["first_seen"] == "2026-11-28 10:02:40.250"
    assert detail["transports"] == "http, https"
    assert detail["encodings"] == ["as sent", "gzip → json"]


def test_coverage_lists_opaque_payloads_with_reasons(pages):
    assert "body.bin: high-entropy payload, no known encoding" in pages["en"]
    assert f"POST https://{API}/v1/loc/report" in pages["en"]


@pytest.mark.parametrize("lang, extent", [
    ("en", "5 transmissions, 2026-11-28 10:00:01 to 2026-11-28 10:05:00"),
    ("zh", "5 条报文，2026-11-28 10:00:01 至 2026-11-28 10:05:00"),
])
def test_a_finding_shows_each_category_with_its_count_and_its_addresses(lang, extent):
    doc = watch_doc()
    finding = doc["findings"][0]
    finding |= {
        "recipient": "Acme Watch Co.",
        "recipients": ["198.51.100.20", "acme-watch.example"],
        "per_category": {
            "identifier.imei": {"count": 5, "first_seen": "2026-11-28T10:00:01Z",
                                "last_seen": "2026-11-28T10:05:00Z"},
            "location.precise": {"count": 3, "first_seen": "2026-11-28T10:01:00Z",
                                 "last_seen": "2026-11-28T10:02:00Z"}}}
    page = report_html.render_string(load(doc), lang=lang)
    sep = "、" if lang == "zh" else ", "
    assert (f'<span title="{extent}"><code>identifier.imei</code> ×5</span>{sep}'
            '<span title="') in page
    assert "<code>location.precise</code> ×3" in page
    assert f"198.51.100.20{sep}acme-watch.example</dd>" in page


def test_finding_without_categories_renders():
    view = report_html.build_view(load(watch_doc()))
    (uninspected,) = [f for f in view["findings"] if f["rule"] == "UNINSPECTED_TRAFFIC"]
    assert uninspected["categories"] == []
    assert uninspected["evidence"][0]["request"] == "TLS pinned.acme-watch.example:443"


# Issue 15: a pass is claimed only for a rule the verdict says was exercised; rules_applied
# alone (a document from before the verdict) no longer makes one.
STATUSES = [{"id": "PRE_CONSENT_PI", "status": "fail", "reason": "has findings"},
            {"id": "WEAK_TLS", "status": "pass", "reason": "exercised, nothing found"},
            {"id": "AFTER_WITHDRAWAL", "status": "not exercised",
             "reason": "no withdrawal happened"}]


@pytest.mark.parametrize("applied, statuses, results", [
    (None, None, {"FAIL", "NOTE"}),
    (["PRE_CONSENT_PI", "WEAK_TLS"], None, {"FAIL", "NOTE"}),
    (["PRE_CONSENT_PI", "WEAK_TLS", "AFTER_WITHDRAWAL"], STATUSES,
     {"FAIL", "NOTE", "PASS", "NOT EXERCISED"}),
])
def test_passes_only_for_rules_the_verdict_says_passed(applied, statuses, results):
    doc = watch_doc()
    if applied:
        doc["session"]["rules_applied"] = applied
    if statuses:
        doc["verdict"] = {"result": "fail", "reason": "", "basis": "findings", "rules": statuses}
    rows = report_html.build_view(load(doc))["verdict"]["rules"]
    assert {r["result"] for r in rows} == results
    assert [r["rule"] for r in rows if r["result"] == "PASS"] == (
        ["WEAK_TLS"] if statuses else [])
    assert [r["why"] for r in rows if r["result"] == "NOT EXERCISED"] == (
        ["no withdrawal happened"] if statuses else [])


# -- rule titles in every language ---------------------------------------------------------

RULES_MD_IDS = (
    "PRE_CONSENT_PI", "PRE_CONSENT_SDK", "SCOPE_EXCEEDED", "AFTER_REFUSAL", "AFTER_WITHDRAWAL",
    "SENSITIVE_NO_SEPARATE_CONSENT", "THIRD_PARTY_UNDISCLOSED", "PERSISTENT_ID_TO_THIRD_PARTY",
    "CROSS_SERVICE_LINKING", "LOCATION_TO_THIRD_PARTY", "DIRECT_IDS_TO_THIRD_PARTY",
    "AD_TRACKER_RECEIVES_CHILD_DATA", "CROSS_BORDER", "NON_RESETTABLE_ID", "EXCESS_FREQUENCY",
    "BACKGROUND_COLLECTION", "BULK_CONTACTS", "MEDIA_UPLOAD", "CLEARTEXT_PI",
    "CREDENTIALS_EXPOSED", "WEAK_TLS", "NO_CERT_VALIDATION", "INSECURE_UPDATE", "COVERT_MONITOR",
    "UNINSPECTED_TRAFFIC", "TLS_CERT_NOT_VALIDATED", "TLS_HOSTNAME_NOT_CHECKED",
    "TLS_EXPIRED_CERT_ACCEPTED", "TLS_LEGACY_ACCEPTED",
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_rule_table_covers_every_rule_of_rules_md():
    assert set(report_html.RULE_TEXT) == set(RULES_MD_IDS)
    for rule, langs in report_html.RULE_TEXT.items():
        assert set(langs) == set(report_html.LABELS), rule
        for lang, (title, explanation) in langs.items():
            assert title and explanation, (rule, lang)
            assert bool(CJK.search(title + explanation)) == (lang == "zh"), (rule, lang)


def every_rule_doc() -> dict:
    doc = watch_doc()
    doc["findings"] = [_finding(f"f-{rule}", rule, "high", f"English title of {rule}",
                                ["identifier.imei"], "tracklytics.example", [3], ["none"],
                                ["PIPL 23", "COPPA 312.5(a)*"])
                       for rule in RULES_MD_IDS]
    return doc


def test_zh_renders_every_rule_title_and_explanation_in_chinese():
    page = report_html.render_string(load(every_rule_doc()), lang="zh")
    for rule in RULES_MD_IDS:
        title, explanation = report_html.RULE_TEXT[rule]["zh"]
        assert page.count(title) >= 3, rule  # verdict, finding, appendix
        assert explanation in page, rule
        assert f"English title of {rule}" not in page


def test_en_keeps_the_catalogue_title_and_adds_the_explanation():
    page = report_html.render_string(load(every_rule_doc()), lang="en")
    for rule in RULES_MD_IDS:
        assert f"English title of {rule}" in page
        assert str(escape(report_html.RULE_TEXT[rule]["en"][1])) in page


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_unknown_rule_falls_back_to_the_findings_own_title(lang):
    doc = watch_doc()
    doc["findings"][0] |= {"rule": "FUTURE_RULE", "title": "A rule from a newer ruleset"}
    page = report_html.render_string(load(doc), lang=lang)
    assert "FUTURE_RULE" in page and "A rule from a newer ruleset" in page


def test_appendix_lists_fired_rules_with_unverified_clauses():
    view = report_html.build_view(load(every_rule_doc()), lang="zh")
    assert [r["rule"] for r in view["rules"]] == sorted(RULES_MD_IDS)
    for row in view["rules"]:
        assert row["references"] == [{"text": "PIPL 23", "unverified": False},
                                     {"text": "COPPA 312.5(a)", "unverified": True}]
        assert row["explanation"] == report_html.RULE_TEXT[row["rule"]]["zh"][1]


# -- timeline ------------------------------------------------------------------------------


def _lane(page: str, category: str) -> str:
    match = re.search(rf'<g class="lane" data-category="{re.escape(category)}">(.*?)</g>',
                      page, re.S)
    assert match, category
    return match.group(1)


def test_timeline_has_a_lane_per_category_with_marks_and_consent_bands(pages):
    page = pages["en"]
    imei = _lane(page, "identifier.imei")
    assert imei.count('class="mark sev-') == 3
    assert 'class="mark sev-critical"' in imei   # tx 1: PRE_CONSENT_PI
    assert 'class="band st-none"' in imei and 'class="band st-refused"' in imei
    location = _lane(page, "location.precise")
    assert 'class="mark sev-critical"' in location
    assert 'class="band st-separate"' in location
    everything = _lane(page, "")
    assert everything.count('class="mark sev-') == 7  # every message, with or without data
    assert 'class="band' not in everything
    assert page.count('class="phase phase-') == 3     # setup, use, idle
    assert 'class="mk k-grant"' in page and 'class="mk k-withdraw"' in page


def test_timeline_marks_without_findings_are_plain():
    doc = watch_doc() | {"findings": []}
    lane = _lane(report_html.render_string(load(doc)), "identifier.imei")
    assert lane.count('class="mark sev-plain"') == 3


# -- a long session ------------------------------------------------------------------------


def long_session(n: int = 10_000) -> dict:
    """A watch that reports its position every second for a few hours, to a first and a
    third party, before and after consent: 10k transmissions, every one in a finding."""
    doc = watch_doc()
    first = doc["transmissions"][1]["recipient"]
    third = doc["transmissions"][2]["recipient"]
    txs, dets = [], []
    for i in range(n):
        tid = 1000 + i
        ts = f"2026-11-28T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        to_sdk = i % 5 == 0
        txs.append(_tx(tid, ts, "https", "POST", f"https://{SDK if to_sdk else API}/up?seq={i}",
                       SDK if to_sdk else API, third if to_sdk else first)
                   | {"consent": {"location.precise": "none" if i < n // 2 else "granted",
                                  "identifier.imei": "none"}})
        dets.append(_det(tid, "location.precise", "body.json.loc", "39.98***,116.30***",
                         ["gzip", "json"], "pattern", 0.9))
        dets.append(_det(tid, "identifier.imei", "body.json.imei", IMEI_MASKED, ["base64"]))
    ids = [tx["id"] for tx in txs]
    doc["transmissions"], doc["detections"] = txs, dets
    doc["session"] |= {"started": txs[0]["ts"], "ended": txs[-1]["ts"]}
    doc["findings"] = [
        _finding("f-loc", "LOCATION_TO_THIRD_PARTY", "critical", "Location to a third party",
                 ["location.precise"], "tracklytics.example", ids[::5], ["none", "granted"],
                 ["PIPL 23"], txs[0]["ts"], txs[-5]["ts"]),
        _finding("f-id", "NON_RESETTABLE_ID", "medium", "A hardware identifier is sent",
                 ["identifier.imei"], "acme-watch.example", ids, ["none"], ["IDM 4.1"],
                 txs[0]["ts"], txs[-1]["ts"]),
    ]
    doc["coverage"] |= {
        "connections": n, "inspected": n,
        "uninspected": [{"host": f"h{i}.example", "reason": "pinned"} for i in range(500)],
        "opaque": [{"transmission": tid, "fields": ["body: opaque"]} for tid in ids[:300]],
        "errors": [{"transmission": tid, "stage": "decode", "message": "x"}
                   for tid in ids[:250]],
    }
    return doc


@pytest.fixture(scope="module")
def long_report(tmp_path_factory) -> Path:
    page = tmp_path_factory.mktemp("long") / "report.html"
    report_html.render(load(long_session()), page)
    return page


def test_long_session_caps_every_list(long_report):
    page = long_report.read_text(encoding="utf-8")
    assert long_report.stat().st_size < 5_000_000, long_report.stat().st_size
    assert "and 9980 more transmissions not listed" in page
    assert "and 1980 more transmissions not listed" in page
    # evidence of two findings, plus the opaque-payload rows of Coverage
    assert page.count("?seq=") == 2 * report_html.EVIDENCE_CAP + report_html.LIST_CAP
    for more in (400, 200, 150):  # uninspected, opaque, errors beyond LIST_CAP
        assert f"and {more} more not listed; findings.json lists every one" in page
    for category in ("location.precise", "identifier.imei", ""):
        assert _lane(page, category).count('class="mark ') <= 400


@pytest.mark.browser
def test_long_session_opens_in_the_browser(long_report):
    found = browser.elements(browser.dump_dom(long_report))
    ids = {attrs.get("id") for _, attrs in found}
    assert set(SECTIONS) <= ids
    assert [tag for tag, _ in found].count("article") == 2
    assert any(tag == "svg" for tag, _ in found)


@pytest.mark.browser
def test_report_prints_to_pdf(tmp_path):
    page = tmp_path / "report.html"
    report_html.render(load(watch_doc()), page)
    pdf = browser.print_pdf(page, tmp_path / "report.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert browser.pdf_pages(pdf) >= 2  # the appendix starts on a page of its own


# -- hostile input (issue 13): a row that cannot be shown is left out alone -----------------

class _Unshowable(str):
    """A URL the page fails on when it writes it (a stand-in for any fault of one row)."""

    def __format__(self, spec: str) -> str:
        raise ValueError("cannot show this one")


def test_a_finding_the_page_cannot_show_is_listed_under_coverage(tmp_path):
    doc = watch_doc()
    typed = load(doc)
    typed = dataclasses.replace(typed, transmissions=tuple(
        dataclasses.replace(tx, url=_Unshowable(tx.url)) if SDK in tx.url else tx
        for tx in typed.transmissions))
    errors = report_html.render(typed, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    left_out = {f["id"] for f in doc["findings"]
                if any(SDK in doc["transmissions"][t - 1]["url"] for t in f["transmissions"])}
    assert left_out and len(errors) == len(left_out)
    assert {e.stage for e in errors} == {"report report.html"}
    assert all(e.message.endswith("left out (ValueError)") for e in errors)
    assert page.count("left out (ValueError)") == len(left_out)  # under coverage errors
    assert "cannot show this one" not in page  # an exception's text may quote a value
    shown = {f["id"] for f in report_html.build_view(typed)["findings"]}
    assert shown and shown == {f["id"] for f in doc["findings"]} - left_out


@pytest.mark.parametrize("value, shown, on_page", [
    # hits: before year 1 / after year 9999 in UTC: no datetime holds them, so a document
    # read back has no time there (a dash) and the text alone shows them as written
    ("0001-01-01T00:30:00+01:00", "0001-01-01T00:30:00+01:00", "odd"),
    ("9999-12-31T23:30:00-01:00", "9999-12-31T23:30:00-01:00", "odd"),
    ("2026-11-28T10:00:00+08:00", "2026-11-28 02:00:00", "2026-11-28 02:00:00"),  # ok
])
def test_a_time_outside_utc_dates_is_shown_as_written(tmp_path, value, shown, on_page):
    doc = watch_doc()
    doc["events"].append({"action": "phase", "name": "odd", "ts": value})
    doc["findings"][0]["first_seen"] = value
    errors = report_html.render(load(doc), tmp_path / "r.html")
    assert report_html.fmt_ts(value) == shown and errors == []
    assert on_page in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_text_that_is_not_unicode_is_written_escaped(tmp_path):
    doc = watch_doc()
    doc["transmissions"][0]["url"] = "http://ho\udcffst.example/p"
    report_html.render(load(doc), tmp_path / "r.html")
    assert "ho\\xffst.example" in (tmp_path / "r.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("existed", [False, True])
def test_a_folder_the_page_makes_is_private_and_an_existing_one_left_alone(tmp_path, existed):
    import os

    folder = tmp_path / "a" / "b"
    if existed:
        folder.mkdir(parents=True)
        os.chmod(folder, 0o755)
    report_html.render(load(watch_doc()), folder / "r.html")
    assert os.stat(folder).st_mode & 0o777 == (0o755 if existed else 0o700)
    assert (folder / "r.html").is_file()


# -- sign-off facts: the clause legend and a Chinese page without English (issue 15) -------

def test_every_clause_abbreviation_of_the_catalogue_has_its_title_in_both_languages():
    from auditor.report.i18n import CLAUSE_TITLES, clause_abbreviation
    from auditor.rules import CATALOGUE

    used = {clause_abbreviation(ref) for rule in CATALOGUE for ref in rule.references}
    assert sorted(used - set(CLAUSE_TITLES)) == []
    for abbr, titles in CLAUSE_TITLES.items():
        assert titles["en"] and titles["zh"] and titles["en"] != titles["zh"], abbr


@pytest.mark.parametrize("lang, title", [
    ("en", "Methods for Identifying the Illegal Collection"),
    ("zh", "《App违法违规收集使用个人信息行为认定方法》"),
])
def test_the_page_spells_out_each_abbreviation_its_references_use(lang, title):
    view = report_html.build_view(load(watch_doc()), lang=lang)
    used = {r["text"].split(" ", 1)[0] for rule in view["rules"] for r in rule["references"]}
    assert used and {c["abbr"] for c in view["legend"]} == used
    assert title in report_html.render_string(load(watch_doc()), lang=lang)


def test_no_label_of_the_chinese_page_is_left_in_english():
    from auditor.report.i18n import LABELS, TERMS

    en, zh = LABELS["en"], LABELS["zh"]
    assert set(en) == set(zh)
    # a label holding an English word (three lower-case letters or more) must be translated
    assert [k for k in en if re.search(r"[a-z]{3,}", en[k]) and zh[k] == en[k]] == []
    for group, words in TERMS["en"].items():
        assert [w for w in words if TERMS["zh"][group].get(w, words[w]) == words[w]] == [], group


@pytest.mark.parametrize("lang, texts", [
    ("en", ["Capture modes", "<code>regular</code>", "Operator", "Li Lab",
            "synchronised (the OS says so)", "mitmproxy <span class=\"mono\">11.1.3</span>"]),
    ("zh", ["抓包方式", "操作人员", "Li Lab", "已同步（据操作系统）", "软件版本"]),
])
def test_the_page_carries_the_sign_off_facts(lang, texts):
    doc = watch_doc()
    doc["session"]["capture"] = {"modes": ["regular"], "operator": "Li Lab",
                                 "clock_sync": "synchronized"}
    doc["session"]["versions"] = {"kidaudit": "0.3.0", "mitmproxy": "11.1.3",
                                  "python": "3.11.9"}
    page = report_html.render_string(load(doc), lang=lang)
    for text in texts:
        assert text in page


@pytest.mark.parametrize("lang, line, shown", [
    ("en", "planned withdraw came after the last message",
     "planned withdraw came after the last message"),
    ("zh", "planned withdraw came after the last message", "计划中的“撤回”在最后一条报文之后"),
    ("zh", "signalled phase 'idle' never happened", "由流量信号触发的“阶段 'idle'”始终未发生"),
    ("zh", "something else", "something else"),
])
def test_the_plans_uncovered_steps_are_said_in_the_pages_language(lang, line, shown):
    doc = watch_doc()
    doc["verdict"] = {"result": "fail", "basis": "findings", "not_covered": [line]}
    assert report_html.build_view(load(doc), lang=lang)["verdict"]["not_covered"] == [shown]


# The tool's own fixed phrases (not a device's text), as the sources write them.
_OWN_PHRASES = [
    ("input", "live capture (flows.mitm)"),
    ("uninspected", "client rejected the interception certificate (pinned or CA not trusted)"),
    ("uninspected", "passed through uninspected: the client rejected interception before"),
    ("uninspected", "QUIC: client rejected the interception certificate"),
    ("uninspected", "TLS: encrypted in the capture (SNI, versions and suites read)"),
    ("uninspected", "QUIC: encrypted in the capture (ClientHello read from its Initials)"),
    ("uninspected", "not inspected"),
    ("country", "iptocc 3.3.170, registry allocation data of 2026-10-27 (wheel build date)"),
]


@pytest.mark.parametrize("where, phrase", _OWN_PHRASES)
def test_the_tools_own_phrases_are_in_the_chinese_pages_language(where, phrase):
    doc = watch_doc()
    if where == "input":
        doc["session"]["inputs"] = [phrase]
    elif where == "country":
        doc["session"]["country_source"] = phrase
    else:
        doc["coverage"]["uninspected"] = [{"host": "pinned.example", "reason": phrase}]
    zh = report_html.render_string(load(doc), lang="zh")
    en = report_html.render_string(load(doc), lang="en")
    assert str(escape(phrase)) in en
    assert str(escape(phrase)) not in zh
    kept = re.sub(r"[a-z]{3,}", "", phrase.replace("capture", ""))  # digits, names kept
    assert all(part in zh for part in re.findall(r"\d[\d.-]+", kept))


def test_the_reason_sources_write_are_all_translated():
    """A reason added to a source without a Chinese phrase would show in English again."""
    from auditor.live import tls
    from auditor.report.i18n import in_language
    from auditor.session import LIVE_INPUT
    from auditor.sources.pcap import REASONS

    for text in (tls.PINNED, tls.PASSED, tls.QUIC, *REASONS.values(), LIVE_INPUT):
        assert not re.search(r"[a-z]{4,}", in_language(text, "zh").replace("QUIC", "")
                             .replace("TLS", "").replace("SNI", "")
                             .replace("ClientHello", "").replace("Initial", "")), text


# -- a page from a session's stream --------------------------------------------------------


def test_a_long_finding_pages_its_evidence_and_counts_the_rest(tmp_path):
    from tests.test_report_findings_json import streamed_doc

    n = report_html.EVIDENCE_CAP
    doc = streamed_doc(tmp_path / "s", 3 * n * 7)  # the finding cites every 7th: 3n of them
    (finding,) = report_html.build_view(doc)["findings"]
    assert [row["id"] for row in finding["evidence"]] == [str(i) for i in range(1, 7 * n, 7)]
    assert finding["more"] == f"and {2 * n} more transmissions not listed" + ALL_IN_FILES


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_page_is_the_same_streamed_or_from_its_findings_json(tmp_path, lang):
    from tests.test_report_findings_json import streamed_doc

    doc = streamed_doc(tmp_path / "s")
    back = load(document_to_dict(doc))
    assert report_html.render_string(doc, lang=lang) == report_html.render_string(back,
                                                                                  lang=lang)


def document_to_dict(doc):
    from auditor.report import document

    return document.to_dict(doc)


# -- the conformance section and the session steps (issue 17 items 2 and 3) ------------------


def conformance_doc() -> dict:
    """The watch session with a standard's table: a failed item citing two findings, a
    passed one, one not exercised for a missing step (its reason hostile: a file written by
    hand), one not testable, an unverified clause; and the steps."""
    doc = watch_doc()
    item = {"title": "", "clause_verified": True, "findings": [], "rules": [],
            "missing_steps": [], "reason": ""}
    doc["conformance"] = [
        {"id": "gbt41391-2022", "number": "GB/T 41391-2022", "title": "App collection",
         "status": "verified", "items": [
             item | {"clause": "6.4", "title": "Notice and consent", "status": "fail",
                     "findings": ["f-pre", "f-sdk"], "rules": ["PRE_CONSENT_PI"]},
             item | {"clause": "6.3", "title": "Specific types", "status": "pass",
                     "rules": ["BULK_CONTACTS"]},
             item | {"clause": "6.1", "title": "Minimum necessary", "status": "not exercised",
                     "missing_steps": ["idle"], "reason": PAYLOADS[1],
                     "clause_verified": False},
             item | {"clause": "6.5", "title": "System permissions",
                     "status": "not testable by traffic", "reason": "seen on the screen"}]},
        {"id": "miit-x", "number": "MIIT ?", "title": "A notice", "status":
         "number not confirmed", "items": []}]
    doc["steps"] = [
        {"id": "grant", "performed": True, "at": "2026-11-28T10:15:00.000Z",
         "duration_s": 1800.0, "missing": ""},
        {"id": "idle", "performed": False, "at": None, "duration_s": None,
         "missing": "no 'idle' phase mark"}]
    return doc


def _conformance_section(page: str) -> str:
    start = page.index('<section id="conformance">')
    return page[start:page.index("</section>", start)]


@pytest.mark.parametrize(("lang", "words"), [
    ("en", ("Conformance", "FAIL", "PASS", "NOT EXERCISED", "NOT TESTABLE BY TRAFFIC",
            "Missing steps:", "Idle", "Session steps", "performed", "missed",
            "could not be confirmed", "not verified against")),
    ("zh", ("符合性", "不通过", "通过", "未检验", "不可通过流量检验", "缺少的步骤：", "静置",
            "会话步骤", "已执行", "未执行", "未能确认", "未与标准原文核对")),
])
def test_the_conformance_section_follows_the_verdict_in_each_language(lang, words):
    page = report_html.render_string(load(conformance_doc()), lang=lang)
    section = _conformance_section(page)
    assert page.index('id="verdict"') < page.index('id="conformance"') < page.index(
        'id="findings"')
    for word in words:
        assert word in section, word
    view = report_html.build_view(load(conformance_doc()), lang=lang)
    anchors = {f["id"]: f["anchor"] for f in view["findings"]}
    for fid in ("f-pre", "f-sdk"):
        assert f'<a href="#{anchors[fid]}"><bdi>{fid}</bdi></a>' in section
    assert "<bdi>6.1</bdi>*" in section and "<bdi>6.4</bdi>*" not in section
    assert PAYLOADS[1] not in section and str(escape(PAYLOADS[1])) in section
    assert 'href="#conformance"' in page


def test_a_findings_json_from_before_the_tables_has_no_conformance_section():
    page = report_html.render_string(load(watch_doc()))
    assert 'id="conformance"' not in page and 'href="#conformance"' not in page


def test_a_session_without_a_standard_says_how_to_choose_one():
    doc = conformance_doc() | {"conformance": []}
    section = _conformance_section(report_html.render_string(load(doc)))
    assert "No standard was chosen" in section and "Session steps" in section


@pytest.mark.browser
def test_the_conformance_section_opens_in_the_browser_with_working_links(tmp_path):
    page = tmp_path / "report.html"
    report_html.render(load(conformance_doc()), page, lang="zh")
    found = browser.elements(browser.dump_dom(page))
    ids = {attrs.get("id") for _, attrs in found}
    assert {"conformance", "steps", "standard-gbt41391-2022"} <= ids
    links = [attrs["href"][1:] for tag, attrs in found
             if tag == "a" and (attrs.get("href") or "").startswith("#finding-")]
    assert len(links) == 2 and set(links) <= ids
    assert not INJECTED_TAGS & {tag for tag, _ in found}
