"""The ``kidaudit`` command: thin commands over the core (parse, call one function, write).

Bad input (an invalid profile, an unreadable capture) exits 2 with one line naming the file
and the problem; never a traceback for a user's mistake.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from auditor import RULESET_VERSION, __version__
from auditor.categories import SEVERITIES, severity_rank
from auditor.profile import ConfigError, load_consent_plan, load_profile

SETTLE_S = 30.0  # how long `report` waits for a session's writer to let go

app = typer.Typer(add_completion=False, no_args_is_help=True,
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


def fail(message: str) -> typer.Exit:
    typer.echo(f"kidaudit: {message}", err=True)
    return typer.Exit(2)


def _load(profile: Path, consent: Path | None):
    try:
        return (load_profile(str(profile)),
                load_consent_plan(str(consent)) if consent else None)
    except ConfigError as e:
        raise fail(str(e)) from None


ProfileOpt = Annotated[Path, typer.Option("--profile", "-p", help="Device profile YAML.")]
ConsentOpt = Annotated[Path | None, typer.Option("--consent", "-c", help="Consent plan YAML.")]
LangOpt = Annotated[Lang, typer.Option("--lang", help="Report language.")]
RevealOpt = Annotated[bool, typer.Option("--reveal", help="Show unmasked values (internal copy).")]


@app.command()
def analyze(
    inputs: Annotated[list[Path], typer.Argument(
        help="Saved captures (.mitm, .pcap, .pcapng, .har).")],
    profile: ProfileOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    consent: ConsentOpt = None,
    lang: LangOpt = Lang.en,
    reveal: RevealOpt = False,
    fail_on: Annotated[Severity | None, typer.Option(
        "--fail-on", help="Exit 1 when a finding at or above this severity exists.")] = None,
) -> None:
    """Rebuild findings.json, report.html and detections.csv from saved captures."""
    from auditor.offline import analyze as run
    from auditor.sources.mitm import InputError

    prof, plan = _load(profile, consent)
    try:
        result = run(list(inputs), prof, plan, out, lang=lang.value, reveal=reveal)
    except (InputError, ConfigError) as e:
        raise fail(str(e)) from None
    for note in result.notes:
        typer.echo(f"kidaudit: note: {note}", err=True)
    typer.echo(f"{len(result.findings)} findings; report: {result.report}")
    if fail_on is not None and any(
            severity_rank(f.severity) <= severity_rank(fail_on.value) for f in result.findings):
        raise typer.Exit(1)


@app.command()
def report(
    session: Annotated[Path, typer.Argument(help="A session folder (capture or analyze).")],
    lang: LangOpt = Lang.en,
    reveal: RevealOpt = False,
) -> None:
    """Write the reports of a session folder again (another language, or unmasked)."""
    from auditor.session import reopen, write_outputs
    from auditor.sources.live import settled

    if not settled(session, SETTLE_S):  # a crashed proxy's worker finishing its last commits
        typer.echo(f"kidaudit: {session}: a capture is still writing to this session; "
                   "reporting what it has committed so far", err=True)
    try:
        store, prof, ledger = reopen(session)
    except (FileNotFoundError, ConfigError) as e:
        raise fail(str(e)) from None
    result = write_outputs(Path(session), store, prof, ledger, lang=lang.value, reveal=reveal)
    store.close()
    typer.echo(f"{len(result.findings)} findings; report: {result.report}")


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

    from auditor.marks import parse_words
    from auditor.store import Store

    extra = [f"separate={s}" for s in separate or []]
    extra += [f"recipients={r}" for r in recipients or []]
    try:
        ev = parse_words(action, [*(words or []), *extra], time.time(), "cli")
        store = Store.open_existing(session)
    except (ValueError, FileNotFoundError) as e:
        raise fail(str(e)) from None
    store.add_event(ev)
    store.close()
    typer.echo(f"recorded {ev.action} {ev.name or ','.join(ev.categories)} in {session}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def capture(
    ctx: typer.Context,
    profile: ProfileOpt,
    session: Annotated[Path, typer.Option("--session", "-s", help="Session folder to write.")],
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
) -> None:
    """Run mitmproxy with the kidaudit addon until Ctrl-C, then write the reports.

    Arguments after ``--`` go to mitmproxy as they are (``-- --set block_global=false``)."""
    _load(profile, consent)  # fail early, with one clear line
    argv = capture_argv(profile, session, consent, modes=mode or ["regular"],
                        tcp_hosts=tcp_host or [], port=port, listen_host=listen_host, web=web,
                        extra=ctx.args)
    typer.echo(" ".join(argv), err=True)
    os.execv(argv[0], argv)


def capture_argv(profile: Path, session: Path, consent: Path | None, *, modes: list[str],
                 tcp_hosts: list[str], port: int, listen_host: str, web: bool,
                 extra: list[str]) -> list[str]:
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
    return argv + list(extra)


@app.command()
def rules() -> None:
    """The rule catalogue with the clauses each rule rests on (* = unverified)."""
    from auditor.rules import CATALOGUE

    typer.echo(f"kidaudit {__version__}, ruleset {RULESET_VERSION}")
    for rule in sorted(CATALOGUE, key=lambda r: (SEVERITIES.index(r.severity), r.id)):
        typer.echo(f"\n{rule.id}  [{rule.severity}]  {rule.title}")
        typer.echo("  " + ("; ".join(rule.references) or "(no clauses: informational)"))
        if rule.unverified:
            typer.echo("  unverified: " + "; ".join(r.rstrip("*") for r in rule.unverified))


@app.command()
def validate() -> None:
    """The built-in validation suite: precision and recall per category and encoding."""
    from auditor.validate import format_report, run_suite

    report = run_suite()
    typer.echo(format_report(report, __version__), nl=False)
    if not report.targets_met:
        raise typer.Exit(1)


@app.command("diff")
def diff_sessions(
    old: Annotated[Path, typer.Argument(help="The earlier session folder.")],
    new: Annotated[Path, typer.Argument(help="The later session folder.")],
    out: Annotated[Path | None, typer.Option("--out", help="Also write an HTML page.")] = None,
    lang: LangOpt = Lang.en,
) -> None:
    """Two sessions side by side (e.g. two firmware versions)."""
    from auditor.diff import diff, format_text
    from auditor.report import diff_html

    docs = []
    for folder in (old, new):
        path = folder / "findings.json"
        try:
            docs.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise fail(f"{path}: {getattr(e, 'strerror', None) or e}") from None
    result = diff(*docs)
    typer.echo(format_text(result), nl=False)
    if out is not None:
        diff_html.render(result, out, lang=lang.value)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "reports/demo"),
) -> None:
    """A whole simulated lab session on loopback, through real mitmproxy."""
    from auditor.demo.run import run_demo

    result = run_demo(out)
    typer.echo(f"{len(result.findings)} findings")
    typer.echo(f"report: {result.report.resolve()}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
