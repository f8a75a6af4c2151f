"""The tester's procedure for a standard (steps, marks, durations, en/zh), its printable
checklist, ``kidaudit procedure``, and the live next-step text from a sequence of marks."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.marks import parse_mark
from auditor.model import ConsentEvent
from auditor.report import procedure_html
from auditor.standards import catalogue
from auditor.standards import procedure as p
from auditor.standards.steps import BY_ID, STEP_IDS, SessionFacts
from tests import browser

runner = CliRunner()


def _standard(items: list[dict], sid: str = "test-std", number: str = "T/TEST 1-2026"):
    return catalogue.parse({
        "id": sid, "number": number, "status": "verified", "source": "test",
        "title": {"en": "A test standard", "zh": "测试标准"}, "items": items}, "test.yaml")


def _item(clause: str, steps: list[str], evidence: str = "traffic", **extra) -> dict:
    d = {"clause": clause, "title": {"en": f"Item {clause} <b>", "zh": f"条款 {clause} <b>"},
         "summary": {"en": "s", "zh": "s"}, "evidence": evidence, **extra}
    if evidence == "traffic":
        d |= {"rules": ["PRE_CONSENT_PI"], "steps": steps}
    return d


STD = _standard([
    _item("5.1", ["withdraw", "grant"]),
    _item("5.2", ["idle", "use"], clause_status="not verified"),
    _item("5.3", ["tls-probe"]),
    _item("6.1", [], evidence="document"),
])


@pytest.mark.parametrize("std, steps", [
    (STD, ["grant", "use", "idle", "withdraw", "tls-probe"]),
    (_standard([_item("1", ["idle"]), _item("2", ["before-consent"])]),
     ["before-consent", "idle"]),
    (_standard([_item("1", [], evidence="document")]), []),
])
def test_steps_are_the_needed_ones_in_steps_order(std, steps):
    proc = p.procedure([std])
    assert [s.step.id for s in proc.steps] == steps
    assert [s.number for s in proc.steps] == list(range(1, len(steps) + 1))
    assert [i for i in STEP_IDS if i in steps] == steps


@pytest.mark.parametrize("step, cli, url, command", [
    ("grant", "kidaudit mark --session DIR grant all-disclosed",
     "http://kidaudit.mark/grant?categories=all-disclosed", ":kidaudit.mark grant all-disclosed"),
    ("idle", "kidaudit mark --session DIR phase idle", "http://kidaudit.mark/phase?name=idle",
     ":kidaudit.mark phase idle"),
    ("withdraw", "kidaudit mark --session DIR withdraw all-disclosed",
     "http://kidaudit.mark/withdraw?categories=all-disclosed",
     ":kidaudit.mark withdraw all-disclosed"),
    ("tls-probe", "kidaudit mark --session DIR phase tls-probe",
     "http://kidaudit.mark/phase?name=tls-probe", ":kidaudit.mark phase tls-probe"),
])
def test_each_step_carries_its_mark_three_ways(step, cli, url, command):
    ps = next(s for s in p.procedure([STD]).steps if s.step.id == step)
    assert (ps.cli, ps.url, ps.command) == (cli, url, command)
    if url:  # the URL is what the magic host parses back into the step's mark
        ev = parse_mark(url.removeprefix("http://kidaudit.mark"), 0.0)
        action, *words = (BY_ID[step].mark or p.PROBE_MARK).split()
        assert ev.action == action and (ev.name or ",".join(ev.categories)) == words[0]


@pytest.mark.parametrize("lang, expected", [
    ("en", ["# Test procedure: T/TEST 1-2026", "### 3. Idle", "- Lasts at least: 30 min",
            "- Exercises: 5.2* Item 5.2 <b>", "- Lasts at least: no minimum",
            "- Mark: none when the capture runs with --tls-probe; without it, the probe runs "
            "from this mark until the next phase mark:",
            "  - from a shell: `kidaudit mark --session DIR phase tls-probe`",
            "- [ ] 6.1 Item 6.1 <b>", "--session DIR --standard test-std --tls-probe",
            "## Not testable by traffic (document review)",
            "`http://kidaudit.mark/phase?name=use`", "\\* clause not verified"]),
    ("zh", ["# 测试规程: T/TEST 1-2026", "### 3. 静置", "- 至少持续: 30 分钟",
            "- 覆盖条款: 5.2* 条款 5.2", "- 标记: 抓包时加上 --tls-probe 则无需标记；",
            "## 无法通过通信测试（文档审查）", "- [ ] 6.1 条款 6.1"]),
])
def test_markdown(lang, expected):
    text = p.markdown(p.procedure([STD]), lang)
    for line in expected:
        assert line in text, line
    assert text.index("### 1.") < text.index("### 2.") < text.index("### 5.")


def test_two_standards_name_each_clause_with_its_standard():
    other = _standard([_item("9", ["grant"])], sid="other", number="X 2")
    proc = p.procedure([STD, other])
    grant = proc.steps[0]
    assert [i.standard for i in grant.items] == ["T/TEST 1-2026", "X 2"]
    text = p.markdown(proc)
    assert "T/TEST 1-2026 5.1 Item 5.1 <b>; X 2 9 Item 9 <b>" in text
    assert "--standard test-std --standard other" in proc.capture


def test_a_standard_without_items_or_number_says_so():
    std = catalogue.parse({"id": "no-number", "number": "—", "status": "number not confirmed",
                           "source": "t", "title": {"en": "Rules", "zh": "规则"}}, "t.yaml")
    text = p.markdown(p.procedure([std]))
    assert text.startswith("# Test procedure: no-number\n")
    assert "(the standard's number could not be confirmed: it lists no items)" in text
    assert "None of these items is testable by traffic" in text and "### " not in text


def test_a_document_items_note_is_shown():
    std = _standard([_item("9", [], evidence="document",
                           note={"en": "not applicable: no commands", "zh": "不适用"})])
    assert "- [ ] 9 Item 9 <b> (not applicable: no commands)" in p.markdown(p.procedure([std]))
    assert "(不适用)" in p.markdown(p.procedure([std]), "zh")


def test_the_shipped_default_standard():
    proc = p.procedure([catalogue.by_id("gbt41391-2022")])
    ids = [s.step.id for s in proc.steps]
    assert ids[0] == "before-consent" and "idle" in ids and "withdraw" in ids
    assert proc.review, "GB/T 41391 has document-review items"


@pytest.mark.parametrize("lang, marker", [("en", 'lang="en"'), ("zh", 'lang="zh-CN"')])
def test_html_is_escaped_with_a_checkbox_per_step(lang, marker):
    page = procedure_html.render_string(p.procedure([STD]), lang=lang)
    assert marker in page and "<b>" not in page and "&lt;b&gt;" in page
    assert page.count('type="checkbox"') == 5 + 1  # five steps, one document item
    assert "@media print" in page


@pytest.mark.browser
def test_html_checklist_in_browser(tmp_path):
    page = tmp_path / "procedure.html"
    procedure_html.render(p.procedure([STD]), page)
    found = browser.elements(browser.dump_dom(page))
    tags = [t for t, _ in found]
    assert "b" not in tags
    assert sum(1 for t, a in found if t == "input" and a.get("type") == "checkbox") == 6
    assert {a.get("id") for t, a in found if t == "section"} == {
        f"step-{i}" for i in ("grant", "use", "idle", "withdraw", "tls-probe")}


# -- the command ----------------------------------------------------------------------------

def test_cli_prints_markdown_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["procedure", "--standard", "gbt41391-2022", "--lang", "zh"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# 测试规程: GB/T 41391-2022")
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_markdown_and_checklist(tmp_path):
    out = tmp_path / "script.md"
    result = runner.invoke(app, ["procedure", "--standard", "gbt41391-2022", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("# Test procedure: GB/T 41391-2022")
    assert "kidaudit mark --session DIR phase idle" in (tmp_path / "script.html").read_text()


@pytest.mark.parametrize("args, words", [
    (["--standard", "no-such"], "unknown standard 'no-such'"),
    ([], "Missing option"),
    (["--standard", "gbt41391-2022", "--out", "x.html"], "another name"),
])
def test_cli_refuses(args, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["procedure", *args])
    assert result.exit_code == 2
    assert words in result.output
    assert list(tmp_path.iterdir()) == []


# -- live: the next step as marks arrive ----------------------------------------------------

def _ev(ts: float, mark: str) -> ConsentEvent:
    action, word = mark.split()
    if action == "phase":
        return ConsentEvent(ts=ts, action="phase", name=word)
    return ConsentEvent(ts=ts, action=action, categories=(word,))


NEEDED = p.needed([STD])  # grant, use, idle, withdraw, tls-probe
T0 = 1_000.0


@pytest.mark.parametrize("marks, now, done, current, next_", [
    ([], T0, (), "", "grant"),
    ([(T0 + 10, "grant all-disclosed")], T0 + 10, ("grant",), "", "use"),
    ([(T0 + 10, "grant all-disclosed"), (T0 + 20, "phase use")], T0 + 20 + 240,
     ("grant",), "use", "idle"),
    ([(T0 + 10, "grant all-disclosed"), (T0 + 20, "phase use"), (T0 + 700, "phase idle")],
     T0 + 700, ("grant", "use"), "idle", "withdraw"),
    ([(T0 + 10, "grant all-disclosed"), (T0 + 20, "phase use"), (T0 + 700, "phase idle"),
      (T0 + 2600, "withdraw all-disclosed")], T0 + 3300, ("grant", "use", "idle", "withdraw"),
     "", "tls-probe"),
    ([(T0 + 10, "grant all-disclosed"), (T0 + 20, "phase use"), (T0 + 700, "phase idle"),
      (T0 + 2600, "withdraw all-disclosed"), (T0 + 3300, "phase tls-probe")], T0 + 3300,
     ("grant", "use", "idle", "withdraw", "tls-probe"), "", ""),
])
def test_status_from_a_sequence_of_marks(marks, now, done, current, next_):
    events = [_ev(ts, m) for ts, m in marks]
    st = p.status(NEEDED, events, SessionFacts(first=T0, last=now))
    assert (st.done, st.current, st.next) == (done, current, next_)


@pytest.mark.parametrize("probe, marks, last", [
    (True, [], "all steps performed"),  # capture --tls-probe: the probe runs throughout
    (False, [], "next step: TLS validation probe: "),
    (False, ["phase tls-probe"], "all steps performed"),  # the probe runs from the mark
])
def test_tracker_knows_the_probe_step(probe, marks, last):
    steps = p.needed([_standard([_item("1", ["grant", "tls-probe"])])])
    tracker = p.Tracker(steps, probe=probe)
    tracker.saw(T0)
    tracker.event(_ev(T0 + 1, "grant all-disclosed"))
    for i, m in enumerate(marks):
        tracker.event(_ev(T0 + 2 + i, m))
    assert tracker.lines(T0 + 10)[-1].startswith(last)


def test_a_step_passed_over_is_named():
    events = [_ev(T0 + 10, "grant all-disclosed"), _ev(T0 + 20, "phase idle")]
    st = p.status(NEEDED, events, SessionFacts(first=T0, last=T0 + 30))
    assert st.skipped == ("use",) and st.current == "idle" and st.next == "withdraw"


@pytest.mark.parametrize("lang, expected", [
    ("en", ["steps done: Guardian consent", "in progress: Use every feature, 4 of 10 min",
            "next step: Idle: Leave the device untouched",
            "Mark: kidaudit mark --session /lab/s1 phase idle | "
            "http://kidaudit.mark/phase?name=idle"]),
    ("zh", ["已完成：监护人同意", "进行中：使用全部功能，4 / 10 分钟", "下一步：静置"]),
])
def test_tracker_lines(lang, expected):
    tracker = p.Tracker(NEEDED, session="/lab/s1")
    tracker.saw(T0)
    tracker.event(_ev(T0 + 10, "grant all-disclosed"))
    tracker.event(_ev(T0 + 20, "phase use"))
    lines = tracker.lines(T0 + 20 + 240, lang)
    for want in expected:
        assert any(want in line for line in lines), (want, lines)


def test_tracker_before_consent_then_all_done():
    steps = p.needed([_standard([_item("1", ["before-consent", "grant"])])])
    tracker = p.Tracker(steps)
    assert tracker.lines(T0)[-1].startswith("next step: Traffic before consent")
    tracker.saw(T0)
    tracker.saw(T0 + 120)
    assert "in progress: Traffic before consent, 2 of 5 min" in tracker.lines(T0 + 120)
    assert tracker.event(_ev(T0 + 400, "grant all-disclosed"))[-1] == "all steps performed"


# -- capture --standard ---------------------------------------------------------------------

def test_capture_passes_each_standard_to_the_addon(tmp_path):
    from auditor.cli import capture_argv

    argv = capture_argv(tmp_path / "p.yaml", tmp_path / "s", None, modes=["regular"],
                        tcp_hosts=[], port=8080, listen_host="", web=False, extra=[],
                        standards=["gbt41391-2022", "coppa-312"])
    assert " ".join(argv).endswith("--set kidaudit_standards=gbt41391-2022 "
                                   "--set kidaudit_standards=coppa-312")


def test_capture_refuses_an_unknown_standard_before_starting(tmp_path, watch_profile):
    session = tmp_path / "s"
    result = runner.invoke(app, ["capture", "--profile", str(watch_profile), "--session",
                                 str(session), "--standard", "no-such"])
    assert result.exit_code == 2 and "--standard: unknown standard 'no-such'" in result.output
    assert not session.exists()
