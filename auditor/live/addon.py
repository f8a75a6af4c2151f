"""kidaudit as a mitmproxy addon: every outgoing request or message is analysed as it passes.

    mitmdump -s addons/kidaudit.py --set kidaudit_profile=P.yaml --set kidaudit_session=DIR \
        [--set kidaudit_consent=PLAN.yaml]

Works the same under mitmweb and the mitmproxy console. Each request is committed to
DIR/session.sqlite; raw flows go to DIR/flows.mitm; flows with personal data are marked and
commented with the categories; each new finding is logged as one line; on shutdown
DIR/findings.json, DIR/detections.csv and DIR/report.html are written. The device's traffic
is never touched: an analysis error is caught, counted, logged once and shown under
coverage in the report, and the flow passes unchanged.

``KidAudit`` owns the options and the session's life: options are declared in ``load``,
checked in ``configure`` (a bad one is one line and exit code 2 at start-up, as for
``kidaudit capture``), and the analysis starts in ``running`` (under mitmproxy's test
harness, the test calls ``running`` itself). Each traffic hook is one line handing the event
to the small addon that handles it:

=====================================  =================================================
part                                   hooks
=====================================  =================================================
``traffic.Connections``                connections closing: their states, ClientHellos
``traffic.HttpHooks``                  HTTP (consent signals, the magic host), WebSocket
``traffic.StreamHooks``                raw TCP (watch frames) and UDP
``traffic.DnsHooks``                   DNS queries; answers name raw-IP destinations
``tls.TlsHooks``                       ClientHellos; pinned hosts passed through
``probe.TlsProbe``                     the TLS probe's bad cases (``kidaudit_tls_probe``)
``consent.ConsentMarks``               the ``kidaudit.mark`` command
=====================================  =================================================

They are not registered as mitmproxy sub-addons (an ``addons`` attribute): mitmproxy would
then walk all of them for every event of every flow, on the proxy's event loop, to find the
two or three that handle it.

Beyond HTTP, each client message is a transmission (a TCP stream is first cut into watch
frames; the server's watch commands are transmissions with direction ``down``). Which proxy
modes hand what to these hooks (mitmproxy 11; "tested" = ``tests/test_e2e_raw.py`` runs it
on loopback):

==========================  ===  ===  ===  ===============================================
mode                        TCP  UDP  DNS  notes
==========================  ===  ===  ===  ===============================================
regular                     yes  no   no   tested (HTTP CONNECT, then watch frames): bytes
                                           that are neither HTTP nor TLS become raw TCP by
                                           themselves (``rawtcp``, on by default);
                                           ``tcp_hosts`` forces raw TCP for a host
reverse:tcp://HOST:PORT     yes  --   --   tested: a watch re-pointed at the proxy by SMS
reverse:udp://HOST:PORT     --   yes  --   tested
dns                         --   --   yes  tested: the device's resolver set to the proxy
socks5                      yes  no   no   tested; SOCKS5 UDP ASSOCIATE is not supported
transparent                 yes  no   no   needs iptables redirection (root)
wireguard                   yes  yes  yes  userspace; the device joins the tunnel
local                       --   --   --   does not work on Linux with mitmproxy 11
==========================  ===  ===  ===  ===============================================

Where the work happens: the hooks hand each message to the ``Channel``
(``auditor.live.channel``), which appends it to the session's journal for the analysis
worker (``auditor.live.worker``), a child process that runs the pipeline, the rules, SQLite
and the flow file, so the proxy's event loop stays free for the device's traffic. With
``kidaudit_worker=false`` the same analysis runs in the proxy's own process.

Everything logged here passes through ``auditor.live.terminal.clean``: a device's host
name, a consent mark's name or an error's text never reaches the lab's terminal with
control or bidi characters in it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from mitmproxy import command, connection, ctx, dns, hooks, http, tcp, tls, udp
from mitmproxy.addonmanager import Loader
from mitmproxy.exceptions import OptionsError
from mitmproxy.proxy import server_hooks

from auditor.folder import FolderError, check_new, check_resumable
from auditor.live.channel import EXIT_USAGE, Channel
from auditor.live.consent import ConsentMarks
from auditor.live.core import Inline
from auditor.live.probe import TlsProbe
from auditor.live.protocol import Settings
from auditor.live.terminal import clean, kidaudit_logger, procedure_tracker
from auditor.live.tls import TlsHooks
from auditor.live.traffic import MAX_NAMES, Connections, DnsHooks, HttpHooks, StreamHooks
from auditor.live.worker import Worker, WorkerError
from auditor.memo import Memo
from auditor.profile import ConfigError, load_consent_plan, load_profile
from auditor.sources.mitm import Signals
from auditor.standards.catalogue import by_id

OPTIONS = ("kidaudit_profile", "kidaudit_session", "kidaudit_consent", "kidaudit_lang",
           "kidaudit_worker", "kidaudit_resume", "kidaudit_operator", "kidaudit_standards")
PROBE_OPTIONS = {"kidaudit_tls_probe", "kidaudit_tls_probe_hosts", "kidaudit_session",
                 "kidaudit_consent"}
SESSION_OPTIONS = {"kidaudit_profile", "kidaudit_session", "kidaudit_consent",
                   "kidaudit_worker", "kidaudit_resume", "kidaudit_standards"}
logger = kidaudit_logger()


class KidAudit:
    def __init__(self) -> None:
        self.channel = Channel()
        self.marks = ConsentMarks(self.channel)
        conns, names = Connections(), Memo[str, str](MAX_NAMES)
        self.conns = conns
        self.http = HttpHooks(self.channel, conns, self.marks)
        self.streams = StreamHooks(self.channel, conns, names)
        self.dns = DnsHooks(self.channel, conns, names)
        self.tls = TlsHooks(self.channel, conns)
        self.probe = TlsProbe(self.tls.probe_refused)
        self._pending: tuple[Settings, Signals] | None = None  # checked, not started yet
        self._running = False  # mitmproxy has started: option errors go to its UI from now
        self._opened: set[Path] = set()  # session folders this proxy has written to

    @property
    def analysis(self) -> Inline | Worker | None:
        """The analysis now running (a ``Worker``, or ``Inline``), None when there is none."""
        return self.channel.analysis

    def load(self, loader: Loader) -> None:
        loader.add_option("kidaudit_profile", str, "",
                          "kidaudit: device profile YAML (the values the lab seeded).")
        loader.add_option("kidaudit_session", str, "",
                          "kidaudit: session folder for session.sqlite, flows.mitm and reports.")
        loader.add_option("kidaudit_consent", str, "",
                          "kidaudit: consent plan YAML (optional).")
        loader.add_option("kidaudit_lang", str, "en", "kidaudit: report language, en or zh.")
        loader.add_option("kidaudit_worker", bool, True,
                          "kidaudit: analyse in a worker process, off the proxy's event loop "
                          "(false: in the proxy's own process).")
        loader.add_option("kidaudit_resume", bool, False,
                          "kidaudit: continue an interrupted capture in kidaudit_session "
                          "(same profile and plan); otherwise the folder must be new or empty.")
        loader.add_option("kidaudit_operator", str, "",
                          "kidaudit: who runs the capture, named in the report's sign-off facts.")
        loader.add_option("kidaudit_tls_probe", bool, False,
                          "kidaudit: the TLS-validation probe: each new server name's first "
                          "connections get a bad certificate each (untrusted CA, wrong host, "
                          "expired, TLS 1.0 only), then normal interception. Without it, the "
                          "probe runs while the session's phase is tls-probe.")
        loader.add_option("kidaudit_tls_probe_hosts", Sequence[str], [],
                          "kidaudit: the server names (SNI, or address) the TLS probe tries; "
                          "empty: every name.")
        loader.add_option("kidaudit_standards", Sequence[str], [],
                          "kidaudit: standard ids (kidaudit standards lists them) whose procedure "
                          "the capture follows, shown step by step as marks arrive, and whose "
                          "conformance tables the reports carry; default: the profile's "
                          "jurisdiction's.")

    def configure(self, updated: set[str]) -> None:
        """Options are checked here; the session starts in ``running`` (or here, when the
        options change on a running proxy)."""
        try:
            self._configure_probe(updated)
            self._configure(updated)
            if self._running and self._pending is not None:
                self._start()
        except OptionsError as e:
            self._refuse(e)

    def running(self) -> None:
        """The proxy is up: start the session configured before. Whether flows are shown in
        a UI (mitmweb's ``view``), to be refreshed when a result marks one, is decided here,
        once."""
        self._running = True
        self.channel.on_update = _ui_refresh()
        if ctx.options.kidaudit_tls_probe:
            self.probe.prepare()  # its keys made now, not on the device's first connection
        if self._pending is not None:
            try:
                self._start()
            except OptionsError as e:
                self._refuse(e, starting=True)

    def _configure_probe(self, updated: set[str]) -> None:
        if not updated & PROBE_OPTIONS:
            return
        opts = ctx.options
        bad = [h for h in opts.kidaudit_tls_probe_hosts if not h.strip() or "/" in h]
        if bad:
            raise OptionsError(f"kidaudit_tls_probe_hosts: {bad[0]!r} is not a server name "
                               "or address")
        try:  # the plan's timed phases (a tls-probe phase runs the probe); a bad plan is
            plan = load_consent_plan(opts.kidaudit_consent) if opts.kidaudit_consent else None
        except ConfigError:  # the session's own check's to report, in ``_configure``
            plan = None
        planned = [(ev.ts, ev.name) for ev in plan.events if ev.action == "phase"] if plan else []
        self.probe.configure(opts.kidaudit_tls_probe, opts.kidaudit_tls_probe_hosts,
                             opts.kidaudit_session, planned)
        if opts.kidaudit_tls_probe and self._running:
            self.probe.prepare()

    def _refuse(self, e: OptionsError, *, starting: bool = False) -> None:
        """At start-up under mitmdump or mitmweb a bad option is one line and exit code 2,
        as for ``kidaudit capture`` (mitmproxy would print the script's traceback and exit
        1); once running, it is an option error for the UI (or the test harness)."""
        if (self._running and not starting) or ctx.master.addons.get("errorcheck") is None:
            raise e
        print(f"kidaudit: {clean(str(e))}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None

    def _configure(self, updated: set[str]) -> None:
        if not updated & set(OPTIONS):
            return
        opts = ctx.options
        if opts.kidaudit_lang not in ("en", "zh"):
            raise OptionsError(f"kidaudit_lang: {opts.kidaudit_lang!r} is not one of en, zh")
        for standard in opts.kidaudit_standards:
            try:
                by_id(standard)
            except KeyError as e:
                raise OptionsError(f"kidaudit_standards: {e.args[0]}") from None
        if not updated & SESSION_OPTIONS:
            return
        if not opts.kidaudit_profile and not opts.kidaudit_session:
            return  # loaded but not configured: stay out of the way
        if not opts.kidaudit_profile or not opts.kidaudit_session:
            raise OptionsError("kidaudit needs both kidaudit_profile and kidaudit_session")
        try:  # read here too, so a bad file is an option error before any traffic
            jurisdiction = load_profile(opts.kidaudit_profile).jurisdiction
            plan = load_consent_plan(opts.kidaudit_consent) if opts.kidaudit_consent else None
            signals = Signals(plan)
        except ConfigError as e:
            raise OptionsError(str(e)) from None
        self._check_folder(Path(opts.kidaudit_session), opts)
        settings = Settings(opts.kidaudit_session, opts.kidaudit_profile, opts.kidaudit_consent,
                            resume=opts.kidaudit_resume, modes=tuple(opts.mode),
                            operator=opts.kidaudit_operator,
                            standards=tuple(dict.fromkeys(opts.kidaudit_standards)),
                            tls_probe=opts.kidaudit_tls_probe)
        self._pending = settings, signals
        self._procedure = procedure_tracker(settings.standards, jurisdiction,
                                            settings.directory, probe=settings.tls_probe)

    def _start(self) -> None:
        assert self._pending is not None
        settings, signals = self._pending
        self._pending = None
        worker = ctx.options.kidaudit_worker
        # Every result goes back to mark its flow when a UI shows the flows; in-process,
        # marking is free.
        marks = self.channel.on_update is not None or not worker
        try:
            self.channel.start(replace(settings, marks=marks), worker=worker,
                               loop=ctx.master.event_loop)
        except (WorkerError, OSError) as e:
            raise OptionsError(f"kidaudit_session: {e}") from e
        self.marks.signals = signals
        self._opened.add(Path(settings.directory).resolve())
        self._show_procedure(resumed=settings.resume)

    def _show_procedure(self, *, resumed: bool) -> None:
        """The steps to perform, and the first one (a resumed capture's next step shows
        with its next mark)."""
        steps = self._procedure.steps
        logger.info("kidaudit: procedure: " + " > ".join(s.title.en for s in steps))
        if not resumed:
            for line in self._procedure.lines(0.0)[1:]:
                logger.info(f"kidaudit: procedure: {line}")

    def _check_folder(self, folder: Path, opts) -> None:
        """A session folder holds one session: a new or empty one, or, with
        ``kidaudit_resume``, an interrupted capture with the same profile and plan. The folder
        this proxy already writes to may be configured again (another plan, say)."""
        if folder.resolve() in self._opened:
            return
        try:
            if opts.kidaudit_resume:
                check_resumable(folder, Path(opts.kidaudit_profile),
                                Path(opts.kidaudit_consent) if opts.kidaudit_consent else None)
            else:
                check_new(folder, option="kidaudit_session")
        except FolderError as e:
            raise OptionsError(str(e)) from None

    def done(self) -> None:
        self.probe.done()
        self.channel.finish(ctx.options.kidaudit_lang)

    # -- the hooks, each handed to its part ------------------------------------------------
    def request(self, flow: http.HTTPFlow) -> None:
        self.probe.tag(flow)
        self.http.request(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self.http.response(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.http.error(flow)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        self.http.websocket_message(flow)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self.http.websocket_end(flow)

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        self.probe.tag(flow)

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        self.streams.tcp_message(flow)

    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        self.streams.tcp_end(flow)

    def tcp_error(self, flow: tcp.TCPFlow) -> None:
        self.streams.tcp_error(flow)

    def udp_message(self, flow: udp.UDPFlow) -> None:
        self.streams.udp_message(flow)

    def udp_end(self, flow: udp.UDPFlow) -> None:
        self.streams.udp_end(flow)

    def udp_error(self, flow: udp.UDPFlow) -> None:
        self.streams.udp_error(flow)

    def dns_request(self, flow: dns.DNSFlow) -> None:
        self.dns.dns_request(flow)

    def dns_response(self, flow: dns.DNSFlow) -> None:
        self.dns.dns_response(flow)

    def dns_error(self, flow: dns.DNSFlow) -> None:
        self.dns.dns_error(flow)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        self.tls.tls_clienthello(data)

    def tls_start_client(self, data: tls.TlsData) -> None:
        self.probe.tls_start_client(data)

    def tls_established_client(self, data: tls.TlsData) -> None:
        self.probe.tls_established_client(data)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        if not self.probe.tls_failed_client(data):  # a refused probe case is not pinning
            self.tls.tls_failed_client(data)

    def client_disconnected(self, client: connection.Client) -> None:
        self.conns.client_disconnected(client)
        self.probe.client_disconnected(client)

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.conns.server_disconnected(data)

    @command.command("kidaudit.mark")
    def mark(self, action: str, *words: str) -> None:
        """Record a consent event now: grant|refuse|withdraw CATEGORY... or phase NAME."""
        self.marks.mark(action, *words)


def _ui_refresh() -> Callable[[object], None] | None:
    """How to show a flow marked after its response went out, where a UI lists the flows
    (mitmweb and the console have a ``view`` addon; mitmdump has none): None without one."""
    if ctx.master.addons.get("view") is None:
        return None
    return lambda flow: ctx.master.addons.trigger(hooks.UpdateHook([flow]))
