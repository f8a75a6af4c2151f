"""kidaudit as a mitmproxy addon: every outgoing request or message is analysed as it passes.

    mitmdump -s addons/kidaudit.py --set kidaudit_profile=P.yaml --set kidaudit_session=DIR \
        [--set kidaudit_consent=PLAN.yaml]

Works the same under mitmweb and the mitmproxy console. Each request is committed to
DIR/session.sqlite at once; raw flows go to DIR/flows.mitm; flows with personal data are
marked and commented with the categories; each new finding is logged as one line; on
shutdown DIR/findings.json, DIR/detections.csv and DIR/report.html are written.

The device's traffic is never touched: an analysis error is caught, counted, logged once
and shown under coverage in the report, and the flow passes unchanged.

Beyond HTTP, the TCP, UDP, WebSocket and DNS hooks feed the same pipeline: each client
message is a transmission (a TCP stream is first cut into watch frames; the server's watch
commands are transmissions with direction ``down``). Which proxy modes hand what to these
hooks (mitmproxy 11; "tested" = ``tests/test_e2e_raw.py`` runs it on loopback):

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

Where the work happens: the hooks append each message to the session's journal
(``auditor.sources.journal``, one ``os.write``) for the analysis worker
(``auditor.sources.worker``), a child process that runs the pipeline, the rules, SQLite and
the flow file, so the proxy's event loop stays free for the device's traffic. An HTTP flow
goes over once, as ``flow.get_state()``, when its response is about to go to the device
(or it failed); a raw message goes over as it passes. Results come back to mark and
comment the flow and to log alerts. What the journal holds survives a kill of both
processes: the worker, or the next session to open the folder, commits it. Under
mitmproxy's test harness (no running event loop), or with ``kidaudit_worker=false``, the
same analysis runs in the proxy's own process.

Everything logged here passes through ``auditor.sources.live.clean``: a device's host name,
a consent mark's name or an error's text never reaches the lab's terminal with control or
bidi characters in it.

TLS: the device's ClientHello gives its offered versions and suites (WEAK_TLS). When it
rejects the interception certificate (pinning, or the lab CA is not trusted), the attempt
is an uninspected ``tls`` transmission with its SNI, the host is listed under coverage, and
later connections to it pass through untouched (as mitmproxy's ``tls_passthrough`` example
does) so the device keeps working.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

if __package__ in (None, ""):  # loaded by path (`mitmdump -s`) from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mitmproxy import command, connection, ctx, dns, hooks, http, tcp, tls, udp
from mitmproxy.addonmanager import Loader
from mitmproxy.exceptions import OptionsError
from mitmproxy.proxy import server_hooks

from auditor.extract.payload import ClientHello, parse_client_hello
from auditor.folder import FolderError, check_new, check_resumable
from auditor.marks import MARK_HOST, parse_words
from auditor.model import Transmission
from auditor.profile import ConfigError, load_consent_plan, load_profile
from auditor.sources.live import (
    COMMENT,
    MARKER,
    Inline,
    Reply,
    Result,
    Settings,
    clean,
    describe,
    error_text,
)
from auditor.sources.mitm import (
    ConnectionStates,
    Signals,
    StreamAssembler,
    dns_names,
    dns_transmission,
    flow_state,
    is_mark,
    mark_event,
    now,
    raw_transmission,
    tls_record_flow,
)
from auditor.sources.worker import JournalFailed, Worker, WorkerError, WorkerUnavailable


class _Clean(logging.Filter):
    """Every kidaudit log line made safe for a terminal (see ``clean``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        safe = clean(text)
        if safe is not text or record.args:
            record.msg, record.args = safe, None
        return True


logger = logging.getLogger("kidaudit")
if not any(isinstance(f, _Clean) for f in logger.filters):  # the script may be reloaded
    logger.addFilter(_Clean())

OPTIONS = ("kidaudit_profile", "kidaudit_session", "kidaudit_consent", "kidaudit_lang",
           "kidaudit_worker", "kidaudit_resume")
SESSION_OPTIONS = {"kidaudit_profile", "kidaudit_session", "kidaudit_consent",
                   "kidaudit_worker", "kidaudit_resume"}
EXIT_USAGE, EXIT_FAILED = 2, 3  # kidaudit's exit codes: the user's input; the run itself
MAX_NAMES = 10_000  # DNS answers remembered to name raw-IP destinations
PINNED = "client rejected the interception certificate (pinned or CA not trusted)"
PASSED = "passed through uninspected: the client rejected interception before"
QUIC = "QUIC: client rejected the interception certificate"


class KidAudit:
    def __init__(self) -> None:
        self.analysis: Inline | Worker | None = None
        self.signals: Signals | None = None
        self._settings: Settings | None = None
        self._tokens = 0
        self._ui = False  # a flow view to refresh when a result marks a flow (mitmweb)
        self._error_kinds: set[str] = set()
        self._to_mark: dict[int, object] = {}  # token -> its flow, until the result is back
        self._requests: set[str] = set()  # HTTP flows whose request is not analysed yet
        self._streams: dict[str, StreamAssembler] = {}  # TCP flow id -> its frame buffers
        self._hellos: dict[str, ClientHello] = {}  # client connection id -> its ClientHello
        self._passthrough: set[str] = set()  # hosts whose clients rejected our certificate
        self._names: dict[str, str] = {}  # address -> the name a DNS answer gave it
        self._conns = ConnectionStates()  # connections' states, serialised once per change
        self._running = False  # mitmproxy has started: option errors go to its UI from now
        self._opened: set[Path] = set()  # session folders this proxy has written to
        self._lost = ""  # why analysis stopped for good (the capture then exits with 3)

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

    def running(self) -> None:
        self._running = True

    def configure(self, updated: set[str]) -> None:
        """Options are checked here. At start-up under mitmdump or mitmweb a bad option is
        one line and exit code 2, as for ``kidaudit capture`` (mitmproxy would print the
        script's traceback and exit 1); once running, it is an option error for the UI."""
        try:
            self._configure(updated)
        except OptionsError as e:
            if self._running or ctx.master.addons.get("errorcheck") is None:
                raise  # a running proxy's UI (or the test harness) shows it
            print(f"kidaudit: {clean(str(e))}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None

    def _configure(self, updated: set[str]) -> None:
        if not updated & set(OPTIONS):
            return
        opts = ctx.options
        if opts.kidaudit_lang not in ("en", "zh"):
            raise OptionsError(f"kidaudit_lang: {opts.kidaudit_lang!r} is not one of en, zh")
        if not updated & SESSION_OPTIONS:
            return
        if not opts.kidaudit_profile and not opts.kidaudit_session:
            return  # loaded but not configured: stay out of the way
        if not opts.kidaudit_profile or not opts.kidaudit_session:
            raise OptionsError("kidaudit needs both kidaudit_profile and kidaudit_session")
        try:  # read here too, so a bad file is an option error before any traffic
            load_profile(opts.kidaudit_profile)
            plan = load_consent_plan(opts.kidaudit_consent) if opts.kidaudit_consent else None
            signals = Signals(plan)
        except ConfigError as e:
            raise OptionsError(str(e)) from None
        self._check_folder(Path(opts.kidaudit_session), opts)
        self._close()
        self._ui = ctx.master.addons.get("view") is not None
        loop = ctx.master.event_loop
        worker = opts.kidaudit_worker and loop.is_running()
        settings = Settings(opts.kidaudit_session, opts.kidaudit_profile, opts.kidaudit_consent,
                            marks=self._ui or not worker,  # in-process, marking is free
                            resume=opts.kidaudit_resume)
        try:
            if worker:
                try:
                    self.analysis = Worker(settings, loop, self._reply, self._worker_died)
                except WorkerUnavailable as e:
                    logger.warning(f"kidaudit: {e}; analysing in mitmproxy's process")
                    settings = replace(settings, marks=True)
            if self.analysis is None:
                self.analysis = Inline(settings, self._reply)
        except (WorkerError, OSError) as e:
            raise OptionsError(f"kidaudit_session: {e}") from e
        self._settings, self.signals = settings, signals
        self._opened.add(Path(settings.directory).resolve())
        where = "worker process" if isinstance(self.analysis, Worker) else "in-process"
        logger.info(f"kidaudit: session {settings.directory} "
                    f"({self.analysis.patterns} known-value patterns, analysis {where})")

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

    # -- traffic ------------------------------------------------------------------------
    def request(self, flow: http.HTTPFlow) -> None:
        if self.analysis is None:
            return
        if is_mark(flow):
            self._answer_mark(flow)
            return
        try:
            for ev in self.signals.events(flow) if self.signals else ():
                self._send(("event", ev, False))
                logger.info(f"kidaudit: consent signal {ev.action} {','.join(ev.categories)}")
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(e)
        self._requests.add(flow.id)  # analysed once it is finished: response or error

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:  # a WebSocket flow is saved when it ends
            self._finished(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        msg = flow.websocket.messages[-1]
        if msg.from_client:
            self._raw(flow, "websocket", msg.content, msg.timestamp, True)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        """Client reads, and the server's watch commands, cut into frames per direction."""
        if self.analysis is None:
            return
        msg = flow.messages[-1]
        assembler = self._streams.setdefault(flow.id, StreamAssembler())
        try:
            payloads = assembler.feed(msg.from_client, msg.content)
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(e)
            return
        for payload in payloads:
            self._raw(flow, "tcp", payload, msg.timestamp, msg.from_client)

    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        self._streams.pop(flow.id, None)
        self._save(flow)

    tcp_error = tcp_end

    def udp_message(self, flow: udp.UDPFlow) -> None:
        msg = flow.messages[-1]
        if msg.from_client:
            self._raw(flow, "udp", msg.content, msg.timestamp, True)

    def udp_end(self, flow: udp.UDPFlow) -> None:
        self._save(flow)

    udp_error = udp_end

    def dns_request(self, flow: dns.DNSFlow) -> None:
        if self.analysis is None:
            return
        try:
            tx = dns_transmission(flow, -1)
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(e)
            return
        self._observe(flow, tx)

    def dns_response(self, flow: dns.DNSFlow) -> None:
        try:
            names = dns_names(flow)
        except Exception:  # noqa: BLE001 - a response we cannot read names nothing
            names = []
        if len(self._names) + len(names) > MAX_NAMES:
            self._names.clear()
        self._names.update((ip, name) for name, ip in names)
        self._save(flow)

    def dns_error(self, flow: dns.DNSFlow) -> None:
        self._save(flow)

    # -- TLS ----------------------------------------------------------------------------
    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Record what the device offers; pass a host through once its client refused us."""
        if self.analysis is None:
            return
        client = data.context.client
        try:
            hello = parse_client_hello(data.client_hello.raw_bytes())
        except Exception:  # noqa: BLE001 - an odd ClientHello is only a missing fact
            hello = None
        if hello is not None:
            self._hellos[client.id] = hello
        host = _tls_host(data.context)
        if host in self._passthrough:
            data.ignore_connection = True
            self._tls_uninspected(data.context, PASSED)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        """The device refused our certificate (pinning, or it does not trust the lab CA)."""
        if self.analysis is None:
            return
        self._passthrough.add(_tls_host(data.context))
        udp_based = data.context.client.transport_protocol == "udp"
        self._tls_uninspected(data.context, QUIC if udp_based else PINNED)

    def client_disconnected(self, client: connection.Client) -> None:
        self._hellos.pop(client.id, None)
        self._conns.forget(client)

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._conns.forget(data.server)

    def done(self) -> None:
        if self._lost:
            self._exit_lost()
        if self.analysis is None or self._settings is None:
            return
        lang = ctx.options.kidaudit_lang
        finished = self.analysis.finish(lang)
        if finished is None:  # the worker died while writing: take over, then write them here
            assert isinstance(self.analysis, Worker)
            self._worker_died(self.analysis.exit_code, " while writing the reports")
            if self.analysis is None:  # the take-over failed too: lost for good
                self._exit_lost()
            finished = self.analysis.finish(lang)
        if finished[0] == "detached":  # the worker is far behind: it goes on alone
            _, pid, left = finished
            logger.warning(
                f"kidaudit: the analysis worker (pid {pid}) is still committing "
                f"{left / 1e6:.1f} MB of messages and then writes the reports; it goes on after "
                f"mitmproxy exits. `kidaudit report {self._settings.directory}` waits for it, "
                "and analyses whatever it leaves in the journal")
        else:
            _, count, report = finished
            logger.info(f"kidaudit: {count} findings; report {report}")
        self.analysis = None

    # -- consent marks ------------------------------------------------------------------
    @command.command("kidaudit.mark")
    def mark(self, action: str, *words: str) -> None:
        """Record a consent event now: grant|refuse|withdraw CATEGORY... or phase NAME."""
        if self.analysis is None:
            raise OptionsError("kidaudit is not configured (set kidaudit_profile/session)")
        try:
            ev = parse_words(action, list(words), now(), "command")
        except ValueError as e:
            raise OptionsError(f"kidaudit.mark: {e}") from e
        self._send(("event", ev, True))  # the mark goes into flows.mitm as a flow too
        logger.warning(f"kidaudit: consent mark {describe(ev)}")

    def _answer_mark(self, flow: http.HTTPFlow) -> None:
        """The magic host: answered here, never forwarded."""
        try:
            ev = mark_event(flow)
        except ValueError as e:
            flow.response = http.Response.make(400, f"kidaudit: {e}\n".encode(),
                                               {"content-type": "text/plain"})
            return
        self._send(("event", ev, False))  # the flow itself is saved with its response
        logger.warning(f"kidaudit: consent mark {describe(ev)}")
        flow.response = http.Response.make(
            200, f"kidaudit recorded: {describe(ev)}\n".encode(), {"content-type": "text/plain"})
        flow.comment = "kidaudit: consent mark"

    # -- internals ----------------------------------------------------------------------
    def _raw(self, flow, transport: str, payload: bytes, ts: float, from_client: bool) -> None:
        if self.analysis is None:
            return
        try:  # numbered by the analysis side (-1 here)
            tx = raw_transmission(flow, -1, transport, payload, ts, from_client,
                                  self._names, self._hellos.get(flow.client_conn.id))
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(e)
            return
        self._observe(flow, tx)

    def _tls_uninspected(self, context, reason: str) -> None:
        client, server = context.client, context.server
        hello = self._hellos.get(client.id)
        host = _tls_host(context)
        address = server.address or ("", 0)
        ip = str(server.peername[0]) if server.peername else str(address[0])
        tx = Transmission(
            id=-1, ts=now(), transport="tls", host=host, port=int(address[1] or 0), ip=ip,
            inspected=False, sni=client.sni or "", tls_versions=hello.versions if hello else (),
            tls_ciphers=hello.ciphers if hello else ())
        try:  # the record flow lets ``analyze flows.mitm`` rebuild the attempt
            record = tls_record_flow(tx, reason, client, server).get_state()
            self._send(("uninspected", tx, reason, record))
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(e)
            return
        logger.info(f"kidaudit: {host}: {reason}")

    def _observe(self, flow, tx: Transmission) -> None:
        self._send(("tx", self._token(flow), tx))

    def _finished(self, flow: http.HTTPFlow) -> None:
        """An HTTP flow is done: saved, and its request analysed if not yet."""
        if self.analysis is None:
            return
        state = flow_state(flow, self._conns)
        if flow.id in self._requests:
            self._requests.discard(flow.id)
            hello = self._hellos.get(flow.client_conn.id) if flow.client_conn else None
            self._send(("http", self._token(flow), state, hello))
        else:  # a consent mark answered here, or a WebSocket's end
            self._send(("save", state))

    def _token(self, flow) -> int | None:
        """A handle for the flow the result of a message will mark (if flows are shown)."""
        if flow is None or self._settings is None or not self._settings.marks:
            return None
        self._tokens += 1
        self._to_mark[self._tokens] = flow
        return self._tokens

    def _reply(self, reply: Reply) -> None:
        """A reply from the analysis: mark the flow, raise the alerts, log the lines."""
        kind = reply[0]
        if kind == "log":
            logger.log(reply[1], reply[2])
            return
        if kind != "result":
            return
        result: Result = reply[1]
        flow = self._to_mark.pop(result.token, None) if result.token is not None else None
        if result.error:
            self._log_error(result.tx_id, result.error_kind, result.error)
        if flow is not None and result.categories:
            flow.marked = MARKER
            categories = set(result.categories)
            if flow.comment.startswith(COMMENT):  # a stream: keep what earlier messages had
                categories |= set(flow.comment[len(COMMENT):].split(", "))
            flow.comment = COMMENT + ", ".join(sorted(categories))
            if self._ui and isinstance(self.analysis, Worker):
                ctx.master.addons.trigger(hooks.UpdateHook([flow]))  # mitmweb shows it now
        for alert in result.alerts:
            logger.warning(f"kidaudit: {alert}")

    def _send(self, msg: tuple) -> None:
        assert self.analysis is not None
        try:
            self.analysis.send(msg)
        except JournalFailed as e:  # a full disk: nothing more can be recorded
            self._lose(f"the journal cannot be written ({e})")
        except WorkerError:  # died just now: ``_worker_died`` has put the analysis in-process
            if self.analysis is not None:
                self.analysis.send(msg)

    def _worker_died(self, code: int, during: str = "") -> None:
        """Take over, and say so under the report's coverage as well as in the log: a lab
        reading only the report must see that the analysis changed process."""
        try:
            again, quarantined = self._take_over()
        except Exception as e:  # noqa: BLE001 - the proxy keeps serving the device
            self._lose(f"the worker exited with code {code}{during} and the proxy could not "
                       f"take over ({error_text(e)})")
            return
        text = (f"analysis worker exited with code {code}{during}; analysis continues in the "
                f"proxy's process, from the {again} messages the worker had not committed")
        if quarantined:
            text += (f" ({quarantined} it died analysing quarantined, not analysed again: "
                     "see coverage)")
        logger.error(f"kidaudit: {text}")
        self._send(("error", "worker", text))

    def _lose(self, why: str) -> None:
        """Analysis cannot go on: the proxy keeps forwarding, and exits with code 3."""
        self._lost = (f"analysis lost for good: {why}; traffic after that was forwarded but "
                      f"not recorded; what was committed is in "
                      f"{self._settings.directory if self._settings else '?'}")
        with contextlib.suppress(Exception):  # the worker commits what it has, unwaited for
            if isinstance(self.analysis, Worker):
                self.analysis.detach()
            elif self.analysis is not None:
                self.analysis.close()
        self.analysis = None
        logger.error(f"kidaudit: {self._lost}")

    def _exit_lost(self) -> NoReturn:
        """Nothing more can be written: the run failed, and says so in one line (exit 3)."""
        print(f"kidaudit: {clean(self._lost)}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED)

    def _take_over(self) -> tuple[int, int]:
        """The worker is gone: analysis goes on in this process, starting with what the
        journal holds beyond the worker's last commit (each message once: the stand-in
        reads how far that commit got, and cuts ``flows.mitm`` back to it). A message the
        worker was analysing when it died is quarantined, never run here: it may be what
        killed it, and here it would stop the proxy. Returns how many messages were
        analysed again, and how many quarantined."""
        assert self._settings is not None and isinstance(self.analysis, Worker)
        self.analysis = None  # nothing is sent to the dead worker while the stand-in starts
        self.analysis = Inline(self._settings, self._reply, take_over=True)
        return self.analysis.core.recovered, self.analysis.core.quarantined

    def _analysis_error(self, e: Exception) -> None:
        text = error_text(e)
        self._send(("error", "analyze", text))
        self._log_error(None, type(e).__name__, text)

    def _log_error(self, tx_id: int | None, kind: str, text: str) -> None:
        if kind not in self._error_kinds:  # logged once per kind, counted every time
            self._error_kinds.add(kind)
            where = f" on tx #{tx_id}" if tx_id is not None else ""
            logger.error(f"kidaudit: analysis error{where} ({text}); "
                         "the flow passed unchanged, further errors of this kind are counted "
                         "in the report")

    def _save(self, flow) -> None:
        """Appended to flows.mitm by the analysis side, after the messages before it."""
        if self.analysis is not None:
            self._send(("save", flow_state(flow, self._conns)))

    def _close(self) -> None:
        if self.analysis is not None:
            self.analysis.close()
        self.analysis = None


def _tls_host(context) -> str:
    """The name the device asked for, else the address it connected to."""
    if context.client.sni:
        return str(context.client.sni)
    address = context.server.address
    return f"{address[0]}:{address[1]}" if address else "?"


__all__: Sequence[str] = ("KidAudit", "MARK_HOST")
addons = [KidAudit()]
