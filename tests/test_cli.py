"""The kidaudit command line: through typer's CliRunner, and its exit-code contract through
the installed command and through ``mitmdump -s``."""

from __future__ import annotations

import json
import re
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.rules import CATALOGUE
from auditor.store import Store
from tests.factories import EPOCH, IMEI, WATCH_PROFILE_YAML, http_flow, write_flows

runner = CliRunner()


@pytest.fixture
def files(tmp_path: Path, watch_profile: Path, consent_plan: Path) -> dict[str, Path]:
    """A lab's profile and plan and a four-request capture: the maker's API before and after
    the agree page that grants, once over plain HTTP."""
    capture = write_flows(tmp_path / "cap.mitm", [
        http_flow("https://api.acme-watch.example/reg", EPOCH, {"imei": IMEI}),
        http_flow("https://app.acme-watch.example/privacy/agree", EPOCH + 1, {"ok": 1}),
        http_flow("http://api.acme-watch.example/ping", EPOCH + 2, {"imei": IMEI}),
        http_flow("https://api.acme-watch.example/empty", EPOCH + 3, {"n": 1}),
    ])
    return {"profile": watch_profile, "plan": consent_plan, "capture": capture, "tmp": tmp_path}


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


@pytest.mark.parametrize(("fail_on", "code"), [
    ("critical", 1), ("CRITICAL", 1), ("Info", 1), ("info", 1), (None, 0)])
def test_fail_on_gates_the_exit_code_in_any_case_and_names_what_crossed(files, fail_on, code):
    result, _ = _analyze(files, *(["--fail-on", fail_on] if fail_on else []))
    assert result.exit_code == code, result.output
    if code:
        assert f"--fail-on {fail_on.lower()}: " in result.output
        assert "[CRITICAL] PRE_CONSENT_PI -> acme-watch.example (identifier.imei)" in (
            result.output)
    else:
        assert "--fail-on" not in result.output


def test_report_writes_another_language_and_the_unmasked_copy_elsewhere(files):
    _, out = _analyze(files)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    zh, revealed = files["tmp"] / "zh", files["tmp"] / "revealed"
    assert runner.invoke(app, ["report", str(out), "--out", str(zh), "--lang", "zh"]
                         ).exit_code == 0
    result = runner.invoke(app, ["report", str(out), "--out", str(revealed), "--reveal"])
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the folder sent out
    assert 'lang="zh' in (zh / "report.html").read_text()
    assert 'lang="en' in (out / "report.html").read_text()
    doc = json.loads((revealed / "findings.json").read_text())
    assert IMEI in {d["value"] for d in doc["detections"]}
    assert doc["session"]["masked"] is False
    assert IMEI not in (out / "findings.json").read_text()
    assert IMEI not in (out / "detections.csv").read_text()
    assert sorted(p.name for p in revealed.iterdir()) == [
        "detections.csv", "findings.json", "report.html"]


@pytest.mark.parametrize("args", [
    ["--reveal"], ["--lang", "zh", "--reveal"], ["--out", "{out}", "--reveal"],
    ["--out", "{plan}"]])
def test_report_refuses_to_write_unmasked_in_place_or_over_anything(files, args):
    _, out = _analyze(files)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    args = [a.format(out=out, plan=files["plan"]) for a in args]
    result = runner.invoke(app, ["report", str(out), *args])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize(("prepare", "expected"), [
    (lambda out: out.mkdir() or (out / "notes.txt").write_text("lab notes"),
     "already holds other files"),
    (lambda out: out.write_text("a file"), "is a file"),
])
def test_analyze_refuses_an_output_folder_that_holds_anything(files, prepare, expected):
    out = files["tmp"] / "out"
    prepare(out)
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir()) if out.is_dir() else (
        out.read_bytes())
    result, _ = _analyze(files)
    assert result.exit_code == 2 and expected in result.output
    assert len(result.output.strip().splitlines()) == 1
    after = sorted((p.name, p.read_bytes()) for p in out.iterdir()) if out.is_dir() else (
        out.read_bytes())
    assert after == before


def test_analyze_refuses_a_second_analysis_into_the_same_session(files):
    first, out = _analyze(files)
    assert first.exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again, _ = _analyze(files)
    assert again.exit_code == 2 and "already holds a kidaudit session" in again.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_analyze_of_a_session_folder_points_at_its_evidence(files):
    _, out = _analyze(files)
    result = runner.invoke(app, ["analyze", str(out), "--profile", str(files["profile"]),
                                 "--out", str(files["tmp"] / "again")])
    assert result.exit_code == 2
    assert f"{out}: is a folder, not a capture; to analyse its evidence again, give " \
           f"{out / 'flows.mitm'}" in result.output


def test_analyze_refuses_reveal_and_says_where_the_unmasked_copy_goes(files):
    result, out = _analyze(files, "--reveal")
    assert result.exit_code == 2 and f"kidaudit report {out} --out OTHER --reveal" in (
        result.output)
    assert not out.exists()


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


def test_mark_writes_an_event_while_a_capture_runs(files):
    from auditor.live.lock import hold_lock

    _, out = _analyze(files)
    lock = hold_lock(out)  # what a running capture's analysis holds
    try:
        result = runner.invoke(app, ["mark", "--session", str(out), "withdraw",
                                     "location.precise", "--recipient", "amap.com"])
        bad = runner.invoke(app, ["mark", "--session", str(out), "grant", "locaton"])
    finally:
        lock.close()
    assert result.exit_code == 0, result.output
    store = Store.open_existing(out)
    (_, ev), = [e for e in store.events() if e[1].source == "cli"]
    store.close()
    assert (ev.action, ev.categories, ev.recipients) == (
        "withdraw", ("location.precise",), ("amap.com",))
    assert bad.exit_code == 2 and "unknown category" in bad.output


def test_mark_refuses_a_finished_session_and_changes_nothing(files):
    _, out = _analyze(files)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = runner.invoke(app, ["mark", "--session", str(out), "grant", "all-disclosed"])
    assert result.exit_code == 2 and "no capture is running on this folder" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_rules_lists_every_rule_with_its_clauses():
    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 0
    for rule in CATALOGUE:
        assert rule.id in result.output
        assert all(ref in result.output for ref in rule.references)
    assert "unverified: COPPA 312.5(a)" in result.output


@pytest.mark.parametrize(("extra", "port"), [
    ([], 8081), (["--set", "web_port=9100"], 9100), (["--web-port", "9101"], 9101),
    (["--set", "web_host=127.0.0.1", "--set", "web_port=x"], 8081)])
def test_mitmwebs_own_port_is_read_from_the_mitmproxy_arguments(extra, port):
    from auditor.cli import web_port

    assert web_port(extra) == port


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


@pytest.mark.parametrize(("probe", "hosts", "expected"), [
    (False, [], []),
    (True, [], ["--set", "kidaudit_tls_probe=true"]),
    (True, ["api.example", "10.0.0.2"], ["--set", "kidaudit_tls_probe=true", "--set",
                                         "kidaudit_tls_probe_hosts=api.example", "--set",
                                         "kidaudit_tls_probe_hosts=10.0.0.2"]),
])
def test_capture_command_line_with_the_tls_probe(probe, hosts, expected, tmp_path):
    from auditor.cli import capture_argv

    argv = capture_argv(tmp_path / "p.yaml", tmp_path / "s", None, modes=["regular"],
                        tcp_hosts=[], port=8080, listen_host="", web=False, extra=[],
                        tls_probe=probe, tls_probe_hosts=hosts)
    assert [a for a in argv if "tls_probe" in a] == expected[1::2]
    assert " ".join(expected) in " ".join(argv)


def test_a_bad_tls_probe_host_is_one_line_and_exit_2(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(WATCH_PROFILE_YAML)
    result = runner.invoke(app, ["capture", "--profile", str(profile), "--session",
                                 str(tmp_path / "s"), "--tls-probe",
                                 "--tls-probe-host", "https://api.example/"])
    assert result.exit_code == 2
    assert "--tls-probe-host: 'https://api.example/' is not a server name" in result.output
    assert not (tmp_path / "s").exists()


# -- the exit-code contract, through the installed command, as a lab runs it -----------------
# 0 done; 1 only for --fail-on (naming what crossed); 2 the user's input or usage, one line;
# 3 the run itself failed, one line. Never a traceback.

KIDAUDIT = Path(sys.executable).with_name("kidaudit")
MITMDUMP = Path(sys.executable).with_name("mitmdump")
ADDON = Path(__file__).resolve().parents[1] / "addons" / "kidaudit.py"


def _busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


# Each case: the command's arguments (formatted with the fixture's paths; {port} is a port in
# use), the expected exit code, a pattern the first line of stderr must match (of stdout for
# exit 0).
CONTRACT = [
    ([], 0, r"Usage: kidaudit"),
    (["rules"], 0, r"AFTER_WITHDRAWAL  \[critical\]"),
    (["validate"], 0, r"precision"),
    (["analyze", "{capture}", "-p", "{profile}", "-o", "{new}", "--fail-on", "critical"], 1,
     r"^kidaudit: --fail-on critical: 2 findings at or above critical:"),
    (["frob"], 2, r"^kidaudit: No such command 'frob'"),
    (["analyze", "{capture}"], 2, r"^kidaudit analyze: Missing option '--profile'"),
    (["analyze", "{capture}", "-p", "{bad}", "-o", "{new}"], 2,
     r"bad.yaml, line 1: identifiers.imei"),
    (["analyze", "{session}", "-p", "{profile}", "-o", "{new}"], 2,
     r"is a folder, not a capture; to analyse its evidence again, give .*flows.mitm"),
    (["analyze", "{capture}", "-p", "{profile}", "-o", "{plan}"], 2, r"plan.yaml: is a file"),
    (["analyze", "{capture}", "-p", "{profile}", "-o", "{session}"], 2,
     r"already holds a kidaudit session"),
    (["analyze", "{capture}", "-p", "{profile}", "-o", "{new}", "--fail-on", "HIGH"], 1,
     r"^kidaudit: --fail-on high: 2 findings at or above high:"),
    (["analyze", "{capture}", "-p", "{profile}", "-o", "{new}", "--fail-on", "loud"], 2,
     r"Invalid value for '--fail-on'"),
    (["report", "{new}"], 2, r"no such session folder"),
    (["report", "{session}", "--reveal"], 2, r"--reveal needs --out OTHER"),
    (["report", "{session}", "--out", "{session}"], 2, r"already holds a kidaudit session"),
    (["report", "{session}", "--out", "{new}", "--fail-on", "critical"], 1,
     r"^kidaudit: --fail-on critical: 2 findings at or above critical:"),
    (["mark", "--session", "{session}", "grant", "all-disclosed"], 2,
     r"no capture is running on this folder"),
    (["mark", "--session", "{new}", "grant", "all-disclosed"], 2, r"not a kidaudit session"),
    (["capture", "-p", "{bad}", "--session", "{new}"], 2, r"bad.yaml, line 1"),
    (["capture", "-p", "{profile}", "--session", "{plan}"], 2, r"plan.yaml: is a file"),
    (["capture", "-p", "{profile}", "--session", "{session}"], 2,
     r"already holds a kidaudit session .* add --resume"),
    (["capture", "-p", "{profile}", "--session", "{session}", "--resume"], 2,
     r"made by analyze .* --resume only continues a capture"),
    (["capture", "-p", "{profile}", "--session", "{new}", "--resume"], 2,
     r"holds no kidaudit session to resume"),
    (["capture", "-p", "{profile}", "--session", "{new}", "--listen-host", "127.0.0.1",
      "--port", "{port}"], 3, r"^kidaudit: port \d+ on 127.0.0.1: Address already in use"),
    (["capture", "-p", "{profile}", "--session", "{new}", "--listen-host", "127.0.0.1",
      "--port", "0", "--web", "--", "--set", "web_port={port}"], 3,
     r"^kidaudit: port \d+ on 127.0.0.1: Address already in use"),
    (["diff", "{session}", "{new}"], 2, r"findings.json: No such file"),
    (["capture", "-p", "{profile}", "--session", "{new}", "--mode", "reverse:"], 2,
     r"^kidaudit: --mode 'reverse:': Invalid server specification"),
    (["report", "{session}", "--out", "{session}/zh", "--reveal"], 2,
     r"zh: is inside the session folder .* give --out a folder outside it"),
    (["analyze", "{capture}", "-p", "{profile}", "-o", "{session}/again"], 2,
     r"again: is inside the session folder"),
    (["analyze", "{badhar}", "-p", "{profile}", "-o", "{new}"], 2,
     r"bad.har: not a HAR file \(log.entries is a number, not a list\)"),
    (["analyze", "{capture}", "-p", "{profile}", "-o", "{link}"], 2, r"is a symbolic link"),
    (["report", "{session}", "--out", "{link}"], 2, r"is a symbolic link"),
    (["demo", "--out", "{tmp}"], 2, r"already holds other files"),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("args", "code", "first_line"), CONTRACT,
                         ids=[" ".join(c[0][:3]) or "(none)" for c in CONTRACT])
def test_every_command_keeps_the_exit_code_contract(files, args, code, first_line):
    _, session = _analyze(files)
    bad = files["tmp"] / "bad.yaml"
    bad.write_text("identifiers: {imei: '12345'}\n")
    badhar = files["tmp"] / "bad.har"
    badhar.write_text('{"log": {"entries": 5}}')
    elsewhere = files["tmp"].parent / f"{files['tmp'].name}-elsewhere"
    elsewhere.mkdir(mode=0o755)
    (files["tmp"] / "link").symlink_to(elsewhere)
    with _busy_port() as busy:
        paths = {**files, "session": session, "new": files["tmp"] / "new", "bad": bad,
                 "port": busy.getsockname()[1], "badhar": badhar, "link": files["tmp"] / "link"}
        before = sorted(p.name for p in files["tmp"].iterdir())
        run = subprocess.run([str(KIDAUDIT), *(a.format(**paths) for a in args)],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    if code == 0:
        assert re.search(first_line, run.stdout) and not run.stderr, run.stderr
        return
    lines = run.stderr.splitlines()
    assert re.search(first_line, lines[0]), lines[0]
    if code == 1:
        assert all(line.startswith("  [") for line in lines[1:]) and len(lines) > 1
    else:
        assert len(lines) == 1, run.stderr
        assert sorted(p.name for p in files["tmp"].iterdir()) == before  # nothing touched
        assert not any(elsewhere.iterdir()) and elsewhere.stat().st_mode & 0o777 == 0o755


@pytest.mark.e2e
@pytest.mark.parametrize("limit_kb", [40, 60, 90])  # the store fills up at 40 and 60 KB,
def test_a_disk_that_fills_up_is_the_run_failing(files, limit_kb):  # its WAL at 90
    """Never a report that silently lacks what the disk could not hold: exit 3, one line."""
    out = files["tmp"] / "out"

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, as a full disk gives ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_kb * 1024, limit_kb * 1024))

    run = subprocess.run(
        [str(KIDAUDIT), "analyze", str(files["capture"]), "-p", str(files["profile"]),
         "-o", str(out)], capture_output=True, text=True, timeout=60, preexec_fn=limit)
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.splitlines()) == 1, run.stderr
    assert re.search(r"^kidaudit: .*(File too large|disk is full|disk I/O error)",
                     run.stderr), run.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(("sets", "expected"), [
    (["kidaudit_profile={bad}", "kidaudit_session={new}"], r"bad.yaml, line 1"),
    (["kidaudit_profile={profile}"], r"needs both kidaudit_profile and kidaudit_session"),
    (["kidaudit_profile={profile}", "kidaudit_session={session}"],
     r"already holds a kidaudit session"),
    (["kidaudit_profile={profile}", "kidaudit_session={plan}"], r"plan.yaml: is a file"),
    (["kidaudit_profile={profile}", "kidaudit_session={new}", "kidaudit_lang=fr"],
     r"kidaudit_lang: 'fr' is not one of en, zh"),
])
def test_the_addon_started_by_hand_gives_one_line_and_exit_2(files, sets, expected):
    _, session = _analyze(files)
    bad = files["tmp"] / "bad.yaml"
    bad.write_text("identifiers: {imei: '12345'}\n")
    paths = {**files, "session": session, "new": files["tmp"] / "new", "bad": bad}
    argv = [str(MITMDUMP), "-q", "--listen-host", "127.0.0.1", "--listen-port", "0",
            "--set", f"confdir={files['tmp'] / 'conf'}", "-s", str(ADDON)]
    for s in sets:
        argv += ["--set", s.format(**paths)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith("kidaudit: ")
    assert re.search(expected, run.stderr), run.stderr
    assert not (files["tmp"] / "new").exists()


@pytest.mark.e2e
def test_a_note_or_an_error_cannot_write_to_the_labs_terminal(files):
    """A file name or a value a device chose can hold escape sequences and bidi overrides;
    whatever kidaudit prints shows them as escapes."""
    hostile = files["tmp"] / "cap\x1b[2J\u202e.txt"
    hostile.write_bytes(b"x")
    run = subprocess.run([str(KIDAUDIT), "analyze", str(hostile), "-p", str(files["profile"]),
                          "-o", str(files["tmp"] / "out")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2
    assert "\x1b" not in run.stderr and "\u202e" not in run.stderr
    assert "\\x1b[2J\\u202e.txt" in run.stderr


# -- --standard and the standards catalogues (issue 17 item 2) -------------------------------


@pytest.mark.parametrize("command", ["analyze", "report"])
def test_an_unknown_standard_is_exit_2_in_one_line_naming_the_option_and_the_known_ids(
        files, command):
    from auditor.standards.catalogue import load_all

    if command == "analyze":
        result, out = _analyze(files, "--standard", "nope")
        assert not out.exists()
    else:
        _, out = _analyze(files)
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        result = runner.invoke(app, ["report", str(out), "--standard", "nope"])
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("kidaudit: --standard: unknown standard 'nope': use one of ")
    assert all(s.id in line for s in load_all())


def test_a_report_judges_the_standards_its_analysis_was_given_unless_told_otherwise(files):
    from auditor.standards.catalogue import defaults_for, load_all

    others = [s.id for s in load_all() if not s.default_for][:2]
    _, out = _analyze(files, *(a for s in others for a in ("--standard", s)))

    def judged(folder: Path) -> list[str]:
        return [c["id"] for c in json.loads((folder / "findings.json").read_text())[
            "conformance"]]

    assert judged(out) == others
    assert runner.invoke(app, ["report", str(out), "--out", str(files["tmp"] / "again")]
                         ).exit_code == 0
    assert judged(files["tmp"] / "again") == others
    result = runner.invoke(app, ["report", str(out), "--out", str(files["tmp"] / "cn"),
                                 "--standard", "gbt41391-2022"])
    assert result.exit_code == 0, result.output
    assert judged(files["tmp"] / "cn") == ["gbt41391-2022"]
    assert judged(_analyze(files | {"tmp": files["tmp"] / "none"})[1]) == []  # no jurisdiction
    cn = files["tmp"] / "cn.yaml"
    cn.write_text(files["profile"].read_text() + "jurisdiction: CN\n")
    _, default = _analyze(files | {"tmp": files["tmp"] / "d", "profile": cn})
    assert judged(default) == [s.id for s in defaults_for("CN")] != []


@pytest.mark.parametrize(("lang", "words"), [("en", ("item", "default for")),
                                            ("zh", ("项", "默认适用"))])
def test_standards_lists_every_catalogue(lang, words):
    from auditor.standards.catalogue import load_all

    result = runner.invoke(app, ["standards", "--lang", lang])
    assert result.exit_code == 0, result.output
    for s in load_all():
        line = next(line for line in result.output.splitlines() if line.startswith(s.id + " "))
        assert s.number in line and f"[{s.status}]" in line and str(len(s.items)) in line
        assert all(word in line for word in words)
        assert ", ".join(s.default_for) in line if s.default_for else line.endswith(": -")
