"""The kidaudit command line, through typer's CliRunner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.rules import CATALOGUE
from auditor.store import Store
from tests.factories import http_flow, write_flows

IMEI = "864536040123455"
T0 = 1_790_000_000.0
runner = CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    profile = tmp_path / "profile.yaml"
    profile.write_text(f'identifiers: {{imei: "{IMEI}"}}\nfirst_party: [acme-watch.example]\n')
    plan = tmp_path / "plan.yaml"
    plan.write_text("disclosed:\n  - {recipient: acme-watch.example, categories: [identifier]}\n"
                    "signals:\n  - {filter: '~u /privacy/agree', action: grant,"
                    " categories: all-disclosed}\n")
    capture = write_flows(tmp_path / "cap.mitm", [
        http_flow("https://api.acme-watch.example/reg", T0, {"imei": IMEI}),
        http_flow("https://app.acme-watch.example/privacy/agree", T0 + 1, {"ok": 1}),
        http_flow("http://api.acme-watch.example/ping", T0 + 2, {"imei": IMEI}),
        http_flow("https://api.acme-watch.example/empty", T0 + 3, {"n": 1}),
    ])
    return {"profile": profile, "plan": plan, "capture": capture, "tmp": tmp_path}


def _analyze(files, *extra: str):
    out = files["tmp"] / "out"
    args = ["analyze", str(files["capture"]), "--profile", str(files["profile"]),
            "--consent", str(files["plan"]), "--out", str(out), *extra]
    return runner.invoke(app, args), out


def test_analyze_writes_the_three_outputs_and_applies_signals(files):
    result, out = _analyze(files)
    assert result.exit_code == 0, result.output
    for name in ("findings.json", "report.html", "detections.csv", "flows.mitm"):
        assert (out / name).is_file()
    doc = json.loads((out / "findings.json").read_text())
    rules = {(f["rule"], tuple(f["transmissions"])) for f in doc["findings"]}
    # tx 1 before the signal's grant; tx 3 after it, but over plain HTTP; both carry the IMEI.
    assert rules == {("PRE_CONSENT_PI", (1,)), ("CLEARTEXT_PI", (3,)),
                     ("NON_RESETTABLE_ID", (1, 3))}
    assert [e["source"] for e in doc["events"]] == ["signal"]


@pytest.mark.parametrize(("fail_on", "code"), [("critical", 1), ("info", 1), (None, 0)])
def test_fail_on_gates_the_exit_code(files, fail_on, code):
    result, _ = _analyze(files, *(["--fail-on", fail_on] if fail_on else []))
    assert result.exit_code == code, result.output


def test_report_rerenders_a_session_in_chinese_and_unmasked(files):
    _, out = _analyze(files)
    result = runner.invoke(app, ["report", str(out), "--lang", "zh", "--reveal"])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "findings.json").read_text())
    assert IMEI in {d["value"] for d in doc["detections"]}
    assert doc["session"]["masked"] is False
    assert 'lang="zh' in (out / "report.html").read_text()


@pytest.mark.parametrize(("setup", "expected"), [
    (lambda f: f["profile"].write_text("identifiers: {imei: '12345'}\n"),
     r"profile.yaml, line 1: identifiers.imei .* 15 digits"),
    (lambda f: f["capture"].write_bytes(b"this is not a flow file"), r"cap.mitm: not a mitmproxy"),
    (lambda f: f.update(capture=f["capture"].rename(f["tmp"] / "cap.txt")),
     r"cap.txt: unknown capture type"),
    (lambda f: f.update(capture=f["tmp"] / "nope.mitm"), r"nope.mitm: no such file"),
])
def test_bad_input_is_one_line_and_exit_2(files, setup, expected):
    setup(files)
    result, _ = _analyze(files)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert re.search(expected, lines[0]), lines[0]


def test_truncated_capture_is_analysed_up_to_the_cut(files):
    data = files["capture"].read_bytes()
    files["capture"].write_bytes(data[: len(data) - 40])
    result, out = _analyze(files)
    assert result.exit_code == 0
    assert "stopped after 3 flows" in result.output
    doc = json.loads((out / "findings.json").read_text())
    assert [t["url"].rsplit("/", 1)[-1] for t in doc["transmissions"]] == [
        "reg", "agree", "ping"]
    assert doc["coverage"]["errors"][0]["stage"] == "input"


def test_mark_writes_an_event_into_the_session(files):
    _, out = _analyze(files)
    result = runner.invoke(app, ["mark", "--session", str(out), "withdraw", "location.precise",
                                 "--recipient", "amap.com"])
    assert result.exit_code == 0, result.output
    store = Store.open_existing(out)
    (_, ev), = [e for e in store.events() if e[1].source == "cli"]
    store.close()
    assert (ev.action, ev.categories, ev.recipients) == (
        "withdraw", ("location.precise",), ("amap.com",))
    bad = runner.invoke(app, ["mark", "--session", str(out), "grant", "locaton"])
    assert bad.exit_code == 2 and "unknown category" in bad.output


def test_rules_lists_every_rule_with_its_clauses():
    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 0
    for rule in CATALOGUE:
        assert rule.id in result.output
        assert all(ref in result.output for ref in rule.references)
    assert "unverified: COPPA 312.5(a)" in result.output


@pytest.mark.parametrize(("modes", "tcp_hosts", "expected"), [
    (["regular"], [], ["--mode", "regular"]),
    (["regular", "reverse:tcp://203.0.113.5:9000@9000"], ["watch\\.example"],
     ["--mode", "regular", "--mode", "reverse:tcp://203.0.113.5:9000@9000",
      "--set", "tcp_hosts=(?:watch\\.example)"]),
    (["wireguard"], ["a", "b"], ["--mode", "wireguard", "--set", "tcp_hosts=(?:a)|(?:b)"]),
])
def test_capture_command_line(modes, tcp_hosts, expected, tmp_path):
    from auditor.cli import capture_argv

    argv = capture_argv(tmp_path / "p.yaml", tmp_path / "s", None, modes=modes,
                        tcp_hosts=tcp_hosts, port=8080, listen_host="", web=False,
                        extra=["--set", "x=1"])
    assert argv[0].endswith("mitmdump") and argv[1:3] == ["-s", argv[2]]
    assert argv[2].endswith("addons/kidaudit.py")
    assert "rawtcp=true" in argv and argv[-2:] == ["--set", "x=1"]
    joined = " ".join(argv)
    assert " ".join(expected) in joined
