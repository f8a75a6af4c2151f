"""The ``kidaudit`` command: thin commands over the core (parse, call one function, write).

One exit-code contract for every command (docs/design.md): 0 done, whatever was found; 1 only
for ``--fail-on`` (with the findings that crossed the line); 2 the user's input or usage, one
line naming the file, the place and the problem; 3 the run itself failed (port in use, disk
full, worker lost for good), one line. Never a traceback for a user's mistake:
``KIDAUDIT_DEBUG=1`` shows the traceback of a failed run.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from auditor import RULESET_VERSION, __version__
from auditor.categories import SEVERITIES, severity_rank
from auditor.profile import ConfigError, load_consent_plan, load_profile
from auditor.store import StoreError

SETTLE_S = 30.0  # how long `report` waits for a session's writer to let go
EXIT_FAIL_ON, EXIT_USAGE, EXIT_FAILED = 1, 2, 3

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="kidaudit: audit the network traffic of children's devices.")


class Lang(StrEnum):
    en = "en"
    zh = "zh"


class Severity(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"


class RunFailed(Exception):
    """The run itself failed, not the user's input: exit 3 with this one line."""


def fail(message: str) -> typer.Exit:
    say(f"kidaudit: {message}")
    return typer.Exit(EXIT_USAGE)


def _load(profile: Path, consent: Path | None):
    try:
        return (load_profile(str(profile)),
                load_consent_plan(str(consent)) if consent else None)
    except ConfigError as e:
        raise fail(str(e)) from None


def _gate(folder: Path, fail_on: Severity | None) -> None:
    """``--fail-on``: exit 1, naming every finding at or above the line (for CI logs). The
    lines come from the findings.json just written, so they are masked as the report is
    (a device controls its host names: an IMEI as a host label is a recipient)."""
    if fail_on is None:
        return
    from auditor.session import FINDINGS_FILE

    doc = json.loads((folder / FINDINGS_FILE).read_text(encoding="utf-8"))
    crossed = [f for f in doc.get("findings", [])
               if severity_rank(f["severity"]) <= severity_rank(fail_on.value)]
    if not crossed:
        return
    say(f"kidaudit: --fail-on {fail_on.value}: {len(crossed)} finding"
        f"{'s' if len(crossed) != 1 else ''} at or above {fail_on.value}:")
    for f in sorted(crossed, key=lambda f: (severity_rank(f["severity"]), f["rule"])):
        count = f.get("count", len(f.get("transmissions", [])))
        say(f"  [{f['severity'].upper()}] {f['rule']} -> {f.get('recipient') or '?'} "
            f"({', '.join(f.get('categories', [])) or '-'}), {count} transmission"
            f"{'s' if count != 1 else ''}")
    raise typer.Exit(EXIT_FAIL_ON)


def say(text: str) -> None:
    """One line to stderr, with control and bidi characters shown as escapes: notes and
    errors can quote what a device sent, and the lab's terminal must not obey it."""
    from auditor.live.terminal import clean

    typer.echo(clean(text), err=True)


ProfileOpt = Annotated[Path, typer.Option("--profile", "-p", help="Device profile YAML.")]
ConsentOpt = Annotated[Path | None, typer.Option("--consent", "-c", help="Consent plan YAML.")]
LangOpt = Annotated[Lang, typer.Option("--lang", help="Report language.")]
RevealOpt = Annotated[bool, typer.Option(
    "--reveal", help="Show unmasked values (the lab's internal copy; needs --out).")]
FailOnOpt = Annotated[Severity | None, typer.Option(
    "--fail-on", case_sensitive=False,
    help="Exit 1 when a finding at or above this severity exists (any case).")]
StandardOpt = Annotated[list[str] | None, typer.Option(
    "--standard", help="A standard's conformance table in the reports (repeatable; "
    "default: the profile's jurisdiction's, or what the session used). See: kidaudit "
    "standards.")]


def _standards(ids: list[str] | None) -> tuple[str, ...]:
    """``--standard`` ids, each checked against the catalogues: exit 2 naming the option
    and the known ids for one that is not there."""
    from auditor.standards.catalogue import by_id

    for standard in ids or ():
        try:
            by_id(standard)
        except KeyError as e:
            raise fail(f"--standard: {e.args[0]}") from None
    return tuple(ids or ())


@app.command()
def analyze(
    inputs: Annotated[list[Path], typer.Argument(
        help="Saved captures (.mitm, .pcap, .pcapng, .har).")],
    profile: ProfileOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="A new or empty output folder.")],
    consent: ConsentOpt = None,
    lang: LangOpt = Lang.en,
    reveal: Annotated[bool, typer.Option("--reveal", hidden=True)] = False,
    fail_on: FailOnOpt = None,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", help="Processes reading and analysing flow files (default: all "
        "cores); the outputs are the same for any number.")] = None,
    standard: StandardOpt = None,
) -> None:
    """Rebuild findings.json, report.html and detections.csv from saved captures."""
    if reveal:
        raise fail(f"{out}: --reveal would write unmasked values into the session folder; "
                   f"analyze, then write the unmasked copy elsewhere with: kidaudit report "
                   f"{out} --out OTHER --reveal")
    if jobs is not None and jobs < 1:
        raise fail(f"--jobs {jobs}: give 1 or more processes (default: all cores, "
                   f"{os.cpu_count() or 1} here)")
    from auditor.spawner import start_early

    processes = jobs or os.cpu_count() or 1
    start_early(inputs, processes)  # its imports beside ours
    from auditor.collector import for_batch
    from auditor.folder import FolderError
    from auditor.jobs import WorkerLost
    from auditor.live.journal import JOURNAL_FILE
    from auditor.live.lock import settled
    from auditor.offline import analyze as run
    from auditor.session import FLOWS_FILE
    from auditor.sources.mitm import InputError

    standards = _standards(standard)
    prof, plan = _load(profile, consent)
    for path in inputs:  # a capture's own evidence: first what its journal still holds
        if path.name == FLOWS_FILE and (path.parent / JOURNAL_FILE).is_file():
            settled(path.parent, SETTLE_S)
            _recover(path.parent)
    for_batch()
    try:
        result = run(list(inputs), prof, plan, out, lang=lang.value,
                     jobs=processes, progress=sys.stderr.isatty(),
                     standards=standards)
    except (InputError, ConfigError, FolderError) as e:
        raise fail(str(e)) from None
    except WorkerLost as e:
        raise RunFailed(str(e)) from None
    for note in result.notes:
        say(f"kidaudit: note: {note}")
    typer.echo(f"{len(result.findings)} findings; report: {result.report}")
    _gate(result.directory, fail_on)


@app.command()
def report(
    session: Annotated[Path, typer.Argument(help="A session folder (capture or analyze).")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the reports into this new or empty folder instead.")] = None,
    lang: LangOpt = Lang.en,
    reveal: RevealOpt = False,
    fail_on: FailOnOpt = None,
    standard: StandardOpt = None,
) -> None:
    """Write the reports of a session folder again: in place, or elsewhere with --out
    (another language beside the first; --reveal, the unmasked copy, only there)."""
    from auditor.collector import for_batch
    from auditor.folder import FolderError, check_new
    from auditor.live.lock import settled
    from auditor.session import reopen, write_outputs

    standards = _standards(standard)
    if not session.is_dir():
        raise fail(f"{session}: no such session folder")
    if reveal and out is None:
        raise fail(f"{session}: --reveal needs --out OTHER, so that an unmasked copy never "
                   "lands in the session folder that is sent out")
    if out is not None:
        try:
            check_new(out, option="--out")
        except FolderError as e:
            raise fail(str(e)) from None
    if not settled(session, SETTLE_S):  # a crashed proxy's worker finishing its last commits
        typer.echo(f"kidaudit: {session}: a capture is still writing to this session; "
                   "reporting what it has committed so far", err=True)
    _recover(session)
    try:
        store, prof, ledger = reopen(session)
    except (FileNotFoundError, ConfigError, StoreError) as e:
        raise fail(str(e)) from None
    for_batch()
    try:
        result = write_outputs(Path(session), store, prof, ledger, lang=lang.value,
                               reveal=reveal, out=out, standards=standards)
    except StoreError as e:  # damage further in than the first pages
        raise fail(str(e)) from None
    except KeyError as e:  # a standard the session remembered that is no longer shipped
        raise fail(f"{session}: {e.args[0]}") from None
    finally:
        store.close()
    typer.echo(f"{len(result.findings)} findings; report: {result.report}")
    _gate(result.directory, fail_on)


@app.command()
def mark(
    session: Annotated[Path, typer.Option("--session", "-s", help="The running session folder.")],
    action: Annotated[str, typer.Argument(help="grant | refuse | withdraw | phase")],
    words: Annotated[list[str] | None, typer.Argument(
        help="Categories (ids, families, all-disclosed) or, for phase, its name.")] = None,
    separate: Annotated[list[str] | None, typer.Option(
        "--separate", help="Categories the grant covers separately (PIPL 29).")] = None,
    recipients: Annotated[list[str] | None, typer.Option(
        "--recipient", help="Narrow the event to these recipients.")] = None,
) -> None:
    """Record a consent event on a running capture (the addon picks it up)."""
    import time

    from auditor.folder import is_running
    from auditor.marks import parse_words
    from auditor.store import Store

    extra = [f"separate={s}" for s in separate or []]
    extra += [f"recipients={r}" for r in recipients or []]
    try:
        ev = parse_words(action, [*(words or []), *extra], time.time(), "cli")
    except ValueError as e:
        raise fail(str(e)) from None
    if not (session / Store.FILE).is_file():
        raise fail(f"{session}: no {Store.FILE} here (not a kidaudit session)")
    if not is_running(session):  # a finished session's timeline is its evidence: fixed
        raise fail(f"{session}: no capture is running on this folder; a mark is recorded "
                   "live only (for a finished session, put the event in the consent plan "
                   "and analyze its flows.mitm into a new folder)")
    store = Store.open_existing(session)
    store.add_event(ev)
    store.close()
    typer.echo(f"recorded {ev.action} {ev.name or ','.join(ev.categories)} in {session}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def capture(
    ctx: typer.Context,
    profile: ProfileOpt,
    session: Annotated[Path, typer.Option(
        "--session", "-s", help="A new or empty session folder (or, with --resume, an "
        "interrupted capture's).")],
    consent: ConsentOpt = None,
    mode: Annotated[list[str] | None, typer.Option(
        help="mitmproxy mode, repeatable: regular, transparent, wireguard, socks5, "
             "reverse:tcp://HOST:PORT@LISTEN, reverse:udp://HOST:PORT@LISTEN, dns@LISTEN. "
             "A second mode needs its own @port.")] = None,
    tcp_host: Annotated[list[str] | None, typer.Option(
        "--tcp-host", help="Host (regex) always handled as raw TCP (mitmproxy tcp_hosts).")
    ] = None,
    port: Annotated[int, typer.Option(help="Listen port.")] = 8080,
    listen_host: Annotated[str, typer.Option(help="Listen address.")] = "",
    web: Annotated[bool, typer.Option("--web", help="Run mitmweb instead of mitmdump.")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted capture in --session, with the same "
        "profile and plan (checked by their SHA-256); the report says it was resumed.")
    ] = False,
    operator: Annotated[str, typer.Option(
        "--operator", help="Who runs the capture: named in the report's sign-off facts.")
    ] = "",
    standard: Annotated[list[str] | None, typer.Option(
        "--standard", help="A standard whose procedure the capture follows (the steps done "
        "and the next one are shown as each mark arrives) and whose conformance table the "
        "reports carry; repeatable (default: the profile's jurisdiction's; kidaudit "
        "procedure prints the steps).")] = None,
    tls_probe: Annotated[bool, typer.Option(
        "--tls-probe", help="The TLS-validation probe for the whole capture: each new server "
        "name's first four connections get one bad certificate each (untrusted CA, wrong "
        "host, expired, TLS 1.0 only), then normal interception. Without it, the probe runs "
        "while the session's phase is tls-probe.")] = False,
    tls_probe_host: Annotated[list[str] | None, typer.Option(
        "--tls-probe-host", help="A server name (or address) the probe tries; repeatable "
        "(default: every name).")] = None,
) -> None:
    """Run mitmproxy with the kidaudit addon until Ctrl-C, then write the reports.

    Arguments after ``--`` go to mitmproxy as they are (``-- --set block_global=false``)."""
    from auditor.folder import FolderError, check_new, check_resumable

    _load(profile, consent)  # fail early, with one clear line
    probe_hosts = _probe_hosts(tls_probe_host or [])
    from auditor.standards.catalogue import by_id

    standards = list(dict.fromkeys(standard or []))
    for s in standards:
        try:
            by_id(s)
        except KeyError as e:
            raise fail(f"--standard: {e.args[0]}") from None
    try:
        if resume:
            check_resumable(session, profile, consent)
        else:
            check_new(session, option="--session", resume_hint=True)
    except FolderError as e:
        raise fail(str(e)) from None
    modes = mode or ["regular"]
    _check_ports(listen_host, [port, *_mode_ports(modes)])
    if web:
        _check_ports("127.0.0.1", [web_port(ctx.args)])
    argv = capture_argv(profile, session, consent, modes=modes,
                        tcp_hosts=tcp_host or [], port=port, listen_host=listen_host, web=web,
                        extra=ctx.args, resume=resume, operator=operator,
                        standards=standards, tls_probe=tls_probe,
                        tls_probe_hosts=probe_hosts)
    typer.echo(" ".join(argv), err=True)
    code = _run_proxy(argv)
    if code in (0, EXIT_USAGE, EXIT_FAILED):
        if code == 0:
            from auditor.live.lock import settled
            from auditor.session import FINDINGS_FILE, REPORT_FILE

            if not settled(session, SETTLE_S):  # a worker far behind goes on alone
                typer.echo(f"kidaudit: the analysis is still committing the backlog; it "
                           f"writes the reports when done (kidaudit report {session} waits "
                           "for it)", err=True)
            elif (session / FINDINGS_FILE).is_file():
                typer.echo(f"report: {session / REPORT_FILE}")
        raise typer.Exit(code)
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    raise RunFailed(f"{Path(argv[0]).name} {how} (its own message, if any, is above); what "
                    f"was committed is in {session}: continue with capture --resume, or "
                    f"kidaudit report {session}")


def _recover(folder: Path) -> None:
    """A capture killed with its worker (``kill -9`` of both, a container stop) left what
    the proxy had finished in ``journal.kidaudit``: analysed and committed before reading."""
    from auditor.live.core import recover

    try:
        recovered = recover(folder)
    except ConfigError as e:
        raise fail(str(e)) from None
    if recovered:
        say(f"kidaudit: note: {folder}: {recovered} messages the capture had finished but "
            "not committed were recovered from its journal")


def _mode_ports(modes: list[str]) -> list[int]:
    """The listen ports the modes name themselves (``reverse:tcp://10.0.0.5:5900@5900``),
    read with mitmproxy's own parser. A mode it would refuse is the user's to fix: one line
    and exit 2 here, not mitmproxy's own error and exit 1 after it has started."""
    from mitmproxy.proxy.mode_specs import ProxyMode

    ports = []
    for spec in modes:
        try:
            parsed = ProxyMode.parse(spec)
        except ValueError as e:
            raise fail(f"--mode {spec!r}: {e} (see lab-setup.md for the modes and their "
                       "forms)") from None
        if parsed.custom_listen_port is not None:
            ports.append(parsed.custom_listen_port)
    return ports


def web_port(extra: list[str]) -> int:
    """mitmweb's own port: 8081 unless ``-- --set web_port=N`` (or ``--web-port N``) says."""
    port = 8081
    for i, arg in enumerate(extra):
        value = arg.removeprefix("web_port=") if arg.startswith("web_port=") else (
            extra[i + 1] if arg == "--web-port" and i + 1 < len(extra) else "")
        if value.isdigit():
            port = int(value)
    return port


def _check_ports(host: str, ports: list[int]) -> None:
    """A port already in use is the run failing, said in one line before mitmproxy starts
    (mitmproxy itself would print its own error and exit 1)."""
    for p in ports:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, p))
            except OSError as e:
                raise RunFailed(f"port {p} on {host or 'all addresses'}: "
                                f"{e.strerror or e}; stop whatever listens there, or choose "
                                "another with --port (or the mode's @PORT)") from None


def _run_proxy(argv: list[str]) -> int:
    """Run mitmproxy as a child and return its exit code (negative: the signal that killed
    it). Ctrl-C at the terminal reaches both processes; a SIGINT or SIGTERM sent to this
    one alone is passed on, so the proxy shuts down cleanly and writes the reports."""
    proc = subprocess.Popen(argv)

    def forward(signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def capture_argv(profile: Path, session: Path, consent: Path | None, *, modes: list[str],
                 tcp_hosts: list[str], port: int, listen_host: str, web: bool,
                 extra: list[str], resume: bool = False, operator: str = "",
                 standards: list[str] | None = None, tls_probe: bool = False,
                 tls_probe_hosts: list[str] | None = None) -> list[str]:
    """The mitmdump (or mitmweb) command line ``capture`` runs. Raw TCP stays on
    (``rawtcp``), so a watch's ``[3G*...]`` socket is seen as TCP messages."""
    tool = Path(sys.executable).with_name("mitmweb" if web else "mitmdump")
    addon = Path(__file__).resolve().parents[1] / "addons" / "kidaudit.py"
    argv = [str(tool), "-s", str(addon), "--listen-port", str(port), "--set", "rawtcp=true",
            "--set", f"kidaudit_profile={profile}", "--set", f"kidaudit_session={session}"]
    for m in modes:
        argv += ["--mode", m]
    if tcp_hosts:
        argv += ["--set", "tcp_hosts=" + "|".join(f"(?:{h})" for h in tcp_hosts)]
    if listen_host:
        argv += ["--listen-host", listen_host]
    if consent:
        argv += ["--set", f"kidaudit_consent={consent}"]
    if resume:
        argv += ["--set", "kidaudit_resume=true"]
    if operator:
        argv += ["--set", f"kidaudit_operator={operator}"]
    for standard in standards or []:  # a sequence option: each --set adds one
        argv += ["--set", f"kidaudit_standards={standard}"]
    if tls_probe:
        argv += ["--set", "kidaudit_tls_probe=true"]
    for host in tls_probe_hosts or []:
        argv += ["--set", f"kidaudit_tls_probe_hosts={host}"]
    return argv + list(extra)


def _probe_hosts(hosts: list[str]) -> list[str]:
    """``--tls-probe-host`` values: server names or addresses, not URLs (one line, exit 2)."""
    for host in hosts:
        if not host.strip() or "/" in host:
            raise fail(f"--tls-probe-host: {host!r} is not a server name or address "
                       "(give the name the device connects to, e.g. api.example.com)")
    return hosts


@app.command()
def rules(
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="The catalogue as Markdown (what docs/rules.md is made from).")
    ] = False,
) -> None:
    """The rule catalogue with the clauses each rule rests on (* = unverified)."""
    from auditor.rules import CATALOGUE

    if markdown:
        from auditor.rules.markdown import render

        sys.stdout.buffer.write(render(CATALOGUE).encode("utf-8"))
        return
    typer.echo(f"kidaudit {__version__}, ruleset {RULESET_VERSION}")
    for rule in sorted(CATALOGUE, key=lambda r: (SEVERITIES.index(r.severity), r.id)):
        typer.echo(f"\n{rule.id}  [{rule.severity}]  {rule.title}")
        typer.echo("  " + ("; ".join(rule.references) or "(no clauses: informational)"))
        if rule.unverified:
            typer.echo("  unverified: " + "; ".join(r.rstrip("*") for r in rule.unverified))


@app.command()
def standards(lang: LangOpt = Lang.en) -> None:
    """The standards catalogues: id, number, status, test items, default for which
    jurisdictions (* = items whose clause is not verified)."""
    from auditor.standards.catalogue import load_all
    from auditor.standards.model import UNVERIFIED

    zh = lang.value == "zh"
    typer.echo(f"kidaudit {__version__}, ruleset {RULESET_VERSION}")
    for s in load_all():
        unverified = sum(1 for i in s.items if i.clause_status == UNVERIFIED)
        n = len(s.items)
        items = f"{n} 项" if zh else f"{n} item{'' if n == 1 else 's'}"
        if unverified:
            items += f"（{unverified} 项未核实*）" if zh else f" ({unverified} unverified*)"
        default = ", ".join(s.default_for) or "-"
        typer.echo(f"\n{s.id}  {s.number}  [{s.status}]  {items}  "
                   f"{'默认适用' if zh else 'default for'}: {default}")
        typer.echo("  " + s.title.get(lang.value))


@app.command()
def validate() -> None:
    """The built-in validation suite: precision and recall per category and encoding."""
    from auditor.validate import format_report, run_suite

    report = run_suite()
    typer.echo(format_report(report, __version__), nl=False)
    if not report.targets_met:  # the detectors fail their own suite: this build is unfit
        raise RunFailed("the validation suite missed its targets (see above); do not use "
                        "this build's findings")


@app.command()
def procedure(
    standard: Annotated[list[str], typer.Option(
        "--standard", help="A standard's id (kidaudit standards lists them); repeatable: "
        "one session exercises them all.")],
    lang: LangOpt = Lang.en,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the Markdown here and the printable checklist beside it "
        "(the same name with .html); without it the Markdown goes to stdout.")] = None,
) -> None:
    """The session script a tester follows: the steps the standard's items need, in order,
    the mark to send at each, how long each phase must last, the clauses each exercises."""
    from auditor.standards import procedure as script
    from auditor.standards.catalogue import by_id

    try:
        chosen = [by_id(s) for s in dict.fromkeys(standard)]
    except KeyError as e:
        raise fail(f"--standard: {e.args[0]}") from None
    proc = script.procedure(chosen)
    text = script.markdown(proc, lang.value)
    if out is None:
        sys.stdout.buffer.write(text.encode("utf-8"))
        return
    from auditor.report import procedure_html

    page = out.with_suffix(".html")
    if page == out:
        raise fail(f"--out {out}: the Markdown needs another name than its .html checklist")
    out.write_text(text, encoding="utf-8")
    procedure_html.render(proc, page, lang=lang.value)
    typer.echo(f"procedure: {out}; checklist: {page}")


@app.command()
def seal(
    folder: Annotated[Path, typer.Argument(help="The folder to seal (a session, a report).")],
) -> None:
    """Write FOLDER/SEAL.json: the SHA-256 and size of every file under the folder, the tool
    version and the UTC time, so that kidaudit verify can show nothing changed after
    sign-off. Symbolic links are recorded, never followed."""
    from auditor.folder import is_running
    from auditor.seal import SealError
    from auditor.seal import seal as write_seal

    if folder.is_dir() and is_running(folder):  # its files are still changing
        raise fail(f"{folder}: a capture is still writing to this folder; seal it when the "
                   "capture has ended")
    try:
        path, count, sha = write_seal(folder)
    except SealError as e:
        raise fail(str(e)) from None
    typer.echo(f"sealed {count} files in {path}; SHA-256 of {path.name}: {sha}")


@app.command()
def verify(
    folder: Annotated[Path, typer.Argument(help="A folder sealed with kidaudit seal.")],
) -> None:
    """Check FOLDER against its SEAL.json, printing each changed, missing or added file.
    Exit 0 when intact, 1 when anything differs (a CI-style gate), 2 when there is no
    SEAL.json or it is not a seal."""
    from auditor.seal import SealError
    from auditor.seal import verify as check_seal

    try:
        doc, differences = check_seal(folder)
    except SealError as e:
        raise fail(str(e)) from None
    for d in differences:
        typer.echo(d.line())
    if differences:
        say(f"kidaudit: {folder}: {len(differences)} difference"
            f"{'s' if len(differences) != 1 else ''} from the seal of {doc.get('sealed_at')}")
        raise typer.Exit(EXIT_FAIL_ON)
    typer.echo(f"intact: {folder} matches its seal of {doc.get('sealed_at')}")


@app.command("diff")
def diff_sessions(
    old: Annotated[Path, typer.Argument(help="The earlier session folder.")],
    new: Annotated[Path, typer.Argument(help="The later session folder.")],
    out: Annotated[Path | None, typer.Option("--out", help="Also write an HTML page.")] = None,
    lang: LangOpt = Lang.en,
    fail_on_new: Annotated[Severity | None, typer.Option(
        "--fail-on-new", case_sensitive=False,
        help="Exit 1 when NEW has a new finding (or one that gained categories) at or above "
             "this severity: a regression gate between firmware versions.")] = None,
) -> None:
    """Two sessions side by side (e.g. two firmware versions)."""
    from auditor.diff import DocumentError, check, diff, format_text, regressions
    from auditor.report import diff_html
    from auditor.session import FINDINGS_FILE

    docs = []
    for folder in (old, new):
        path = folder / FINDINGS_FILE
        try:
            docs.append(check(json.loads(path.read_text(encoding="utf-8"))))
        except RecursionError:  # JSON nested deeper than Python's stack
            raise fail(f"{path}: is not a findings document (nested too deeply)") from None
        except (OSError, ValueError) as e:  # DocumentError is a ValueError too
            what = "" if isinstance(e, DocumentError | OSError) else "is not JSON: "
            raise fail(f"{path}: {what}{getattr(e, 'strerror', None) or e}") from None
    result = diff(*docs)
    typer.echo(format_text(result), nl=False)
    if out is not None:
        diff_html.render(result, out, lang=lang.value)
    if fail_on_new is not None and (crossed := regressions(result, fail_on_new.value)):
        say(f"kidaudit: --fail-on-new {fail_on_new.value}: {len(crossed)} new finding"
            f"{'s' if len(crossed) != 1 else ''} at or above {fail_on_new.value} in {new}:")
        for f in crossed:
            say(f"  [{f.severity.upper()}] {f.rule} -> {f.organisation or f.recipient or '?'} "
                f"({', '.join(f.categories) or '-'})")
        raise typer.Exit(EXIT_FAIL_ON)


@app.command()
def campaign(
    manifest: Annotated[Path, typer.Argument(help="The campaign manifest (YAML).")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="A new or empty folder, or this campaign's folder to update.")],
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="A Dask scheduler (tcp://HOST:8786) whose workers see the inputs "
                            "and --out at the same paths; default: a local cluster.")] = None,
    fail_on: FailOnOpt = None,
    fail_on_new: Annotated[Severity | None, typer.Option(
        "--fail-on-new", case_sensitive=False,
        help="Exit 1 when a firmware introduced a finding at or above this severity against "
             "the previous firmware of the same device and scenario.")] = None,
) -> None:
    """Analyse a lab's test matrix (device x firmware x app x scenario) as Dask tasks: every
    run's session folder, one Parquet dataset, a campaign report."""
    from auditor.campaign import gate
    from auditor.campaign.manifest import ManifestError, load_manifest
    from auditor.campaign.runner import (
        CampaignFailed,
        SchedulerError,
        check_scheduler,
        run_campaign,
    )
    from auditor.campaign.state import CampaignFolderError, check_out

    try:
        if scheduler is not None:
            check_scheduler(scheduler)
        plan = load_manifest(manifest)
        check_out(out)
    except (ManifestError, SchedulerError, CampaignFolderError) as e:
        raise fail(str(e)) from None

    def said(r) -> None:
        verdict = r.error if r.status == "failed" else f"{r.verdict}, {len(r.findings)} findings"
        typer.echo(f"{r.spec.id}: {r.status}: {verdict}")

    try:
        result = run_campaign(plan, out, scheduler=scheduler, on_result=said)
    except CampaignFailed as e:
        raise RunFailed(str(e)) from None
    failed = [r for r in result.runs if r.status == "failed"]
    for r in failed:
        say(f"kidaudit: run {r.spec.id} failed: {r.error}")
    if len(failed) == len(result.runs):
        raise RunFailed(f"every run of {manifest} failed (see above); {out / 'campaign.json'}")
    typer.echo(f"{len(result.runs) - len(failed)} of {len(result.runs)} runs done; "
               f"campaign: {result_page(out)}")
    crossed = [(f"{where}:", f) for where, f in gate.crossed(result, fail_on.value)
               ] if fail_on else []
    new = [(f"{where}:", f) for where, f in gate.introduced(result, fail_on_new.value)
           ] if fail_on_new else []
    for option, severity, hits, what in (("--fail-on", fail_on, crossed, "finding"),
                                         ("--fail-on-new", fail_on_new, new, "new finding")):
        if hits:
            say(f"kidaudit: {option} {severity.value}: {len(hits)} {what}"
                f"{'s' if len(hits) != 1 else ''} at or above {severity.value}:")
            for where, f in hits:
                say(gate.line(where, f))
    if crossed or new:
        raise typer.Exit(EXIT_FAIL_ON)


def result_page(out: Path) -> Path:
    """The campaign's page when the report writer wrote one, else its campaign.json."""
    page = out / "campaign.html"
    return page if page.is_file() else out / "campaign.json"


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder (default reports/demo, or reports/demo-campaign "
                            "with --campaign).")] = None,
    campaign: Annotated[bool, typer.Option(
        "--campaign", help="Capture the simulated watch on two firmwares (1.5.0 fixes one "
                           "leak of 1.4.2 and adds one) and run them as a campaign on a "
                           "local Dask cluster.")] = False,
) -> None:
    """A whole simulated lab session on loopback, through real mitmproxy."""
    from auditor.demo.run import run_demo
    from auditor.folder import FolderError

    if campaign:
        return _demo_campaign(out or Path("reports/demo-campaign"))
    try:
        result = run_demo(out or Path("reports/demo"))
    except FolderError as e:
        raise fail(str(e)) from None
    typer.echo(f"{len(result.findings)} findings")
    typer.echo(f"report: {result.report.resolve()}")


def _demo_campaign(out: Path) -> None:
    """``demo --campaign``: two live sessions, then ``kidaudit campaign`` over them."""
    from auditor.campaign.runner import CampaignFailed
    from auditor.demo.campaign import run_campaign_demo
    from auditor.folder import FolderError

    def said(r) -> None:
        verdict = r.error if r.status == "failed" else f"{r.verdict}, {len(r.findings)} findings"
        typer.echo(f"{r.spec.id}: {r.status}: {verdict}")

    try:
        result = run_campaign_demo(out, on_result=said, on_capture=lambda fw: typer.echo(
            f"capturing the simulated watch on firmware {fw}"))
    except FolderError as e:
        raise fail(str(e)) from None
    except CampaignFailed as e:
        raise RunFailed(str(e)) from None
    for c in result.campaign.changes:
        typer.echo(f"firmware {c.after} against {c.before}: {len(c.introduced)} findings "
                   f"introduced, {len(c.fixed)} fixed")
    typer.echo(f"campaign report: {result.report.resolve()}")


def main() -> None:
    """The exit-code contract, for every command. Files are created private (umask 077):
    session folders and reports hold personal data, SQLite's side files included."""
    os.umask(0o077)
    if len(sys.argv) == 1:
        sys.argv.append("--help")
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        print("kidaudit: interrupted", file=sys.stderr)
        code = 130
    except RunFailed as e:
        say(f"kidaudit: {e}")
        code = EXIT_FAILED
    except StoreError as e:  # a damaged session store, wherever a command meets it
        say(f"kidaudit: {e}")
        code = EXIT_USAGE
    except sqlite3.OperationalError as e:  # SQLite's own words for a full or failing disk
        say(f"kidaudit: the session store could not be written ({e}; is the disk full?); "
            "what was committed before stays readable")
        code = EXIT_FAILED
        _debug_traceback()
    except OSError as e:
        say(f"kidaudit: {_os_error(e)}")
        code = EXIT_USAGE if isinstance(e, USER_OS_ERRORS) else EXIT_FAILED
        _debug_traceback()
    except Exception as e:  # noqa: BLE001 - a failed run is one line, never a traceback
        if _usage_error(e):
            return _exit_usage(e)
        if type(e).__name__ == "Abort":  # click's (or typer's) Ctrl-C at a prompt
            print("kidaudit: interrupted", file=sys.stderr)
            sys.exit(130)
        say(f"kidaudit: the run failed: {type(e).__name__}: {e} (KIDAUDIT_DEBUG=1 shows the "
            "traceback; please report it)")
        code = EXIT_FAILED
        _debug_traceback()
    sys.exit(code if isinstance(code, int) else 0)


def _usage_error(e: Exception) -> bool:
    """click's usage and parameter errors (typer may bring its own copy of click, so they
    are known by what they carry, not by their class)."""
    return callable(getattr(e, "format_message", None)) and getattr(e, "exit_code", 0) == 2


def _exit_usage(e: Exception) -> None:
    ctx = getattr(e, "ctx", None)
    where = getattr(ctx, "command_path", "") or "kidaudit"
    say(f"{where}: {e.format_message()} (see {where} --help)")  # type: ignore[attr-defined]
    sys.exit(EXIT_USAGE)


# An OSError on a path the user named is theirs to fix; any other (disk full, I/O error, a
# file grown past its limit) is the run failing.
USER_OS_ERRORS = (PermissionError, FileNotFoundError, FileExistsError, NotADirectoryError,
                  IsADirectoryError)


def _os_error(e: OSError) -> str:
    where = f"{e.filename}: " if e.filename else ""
    what = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what += " (the reports may be incomplete: free some space and run kidaudit report)"
    return where + what


def _debug_traceback() -> None:
    if os.environ.get("KIDAUDIT_DEBUG"):
        import traceback

        traceback.print_exc()


if __name__ == "__main__":
    main()
