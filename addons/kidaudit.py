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

TLS: the device's ClientHello gives its offered versions and suites (WEAK_TLS). When it
rejects the interception certificate (pinning, or the lab CA is not trusted), the attempt
is an uninspected ``tls`` transmission with its SNI, the host is listed under coverage, and
later connections to it pass through untouched (as mitmproxy's ``tls_passthrough`` example
does) so the device keeps working.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # loaded by path (`mitmdump -s`) from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mitmproxy import command, connection, ctx, dns, http, io, tcp, tls, udp
from mitmproxy.addonmanager import Loader
from mitmproxy.exceptions import OptionsError

from auditor.extract.payload import ClientHello, parse_client_hello
from auditor.marks import MARK_HOST, parse_words
from auditor.model import Transmission
from auditor.profile import ConfigError, load_consent_plan, load_profile
from auditor.session import FLOWS_FILE, Session
from auditor.sources.mitm import (
    Signals,
    StreamAssembler,
    dns_names,
    dns_transmission,
    is_mark,
    mark_event,
    mark_flow,
    now,
    raw_transmission,
    tls_record_flow,
    transmission,
    with_tls,
)

logger = logging.getLogger("kidaudit")

POLL_S = 0.25
MARKER = ":warning:"  # mitmproxy's emoji marker for flows carrying personal data
OPTIONS = ("kidaudit_profile", "kidaudit_session", "kidaudit_consent", "kidaudit_lang")
MAX_NAMES = 10_000  # DNS answers remembered to name raw-IP destinations
PINNED = "client rejected the interception certificate (pinned or CA not trusted)"
PASSED = "passed through uninspected: the client rejected interception before"
QUIC = "QUIC: client rejected the interception certificate"


class KidAudit:
    def __init__(self) -> None:
        self.session: Session | None = None
        self.signals: Signals | None = None
        self._flows_fh = None
        self._writer: io.FlowWriter | None = None
        self._error_kinds: set[str] = set()
        self._last_poll = float("-inf")
        self._streams: dict[str, StreamAssembler] = {}  # TCP flow id -> its frame buffers
        self._hellos: dict[str, ClientHello] = {}  # client connection id -> its ClientHello
        self._passthrough: set[str] = set()  # hosts whose clients rejected our certificate
        self._names: dict[str, str] = {}  # address -> the name a DNS answer gave it

    def load(self, loader: Loader) -> None:
        loader.add_option("kidaudit_profile", str, "",
                          "kidaudit: device profile YAML (the values the lab seeded).")
        loader.add_option("kidaudit_session", str, "",
                          "kidaudit: session folder for session.sqlite, flows.mitm and reports.")
        loader.add_option("kidaudit_consent", str, "",
                          "kidaudit: consent plan YAML (optional).")
        loader.add_option("kidaudit_lang", str, "en", "kidaudit: report language, en or zh.")

    def configure(self, updated: set[str]) -> None:
        if not updated & set(OPTIONS):
            return
        opts = ctx.options
        if opts.kidaudit_lang not in ("en", "zh"):
            raise OptionsError(f"kidaudit_lang: {opts.kidaudit_lang!r} is not one of en, zh")
        if not (updated & {"kidaudit_profile", "kidaudit_session", "kidaudit_consent"}):
            return
        if not opts.kidaudit_profile and not opts.kidaudit_session:
            return  # loaded but not configured: stay out of the way
        if not opts.kidaudit_profile or not opts.kidaudit_session:
            raise OptionsError("kidaudit needs both kidaudit_profile and kidaudit_session")
        try:
            profile = load_profile(opts.kidaudit_profile)
            plan = load_consent_plan(opts.kidaudit_consent) if opts.kidaudit_consent else None
            signals = Signals(plan)
        except ConfigError as e:
            raise OptionsError(str(e)) from e
        self._close()
        self.session = Session(Path(opts.kidaudit_session), profile, plan)
        self.signals = signals
        flows = self.session.directory / FLOWS_FILE
        self._flows_fh = open(flows, "ab")  # noqa: SIM115 - closed in done()
        os.chmod(flows, 0o600)
        self._writer = io.FlowWriter(self._flows_fh)
        logger.info(f"kidaudit: session {self.session.directory} "
                    f"({len(self.session.pipeline.detector.known)} known-value patterns)")

    # -- traffic ------------------------------------------------------------------------
    def request(self, flow: http.HTTPFlow) -> None:
        if self.session is None:
            return
        if is_mark(flow):
            self._answer_mark(flow)
            return
        self._poll_marks()
        tx_id = self.session.next_id()
        try:
            for ev in self.signals.events(flow) if self.signals else ():
                self.session.record_event(ev)
                logger.info(f"kidaudit: consent signal {ev.action} {','.join(ev.categories)}")
            tx = with_tls(transmission(flow, tx_id), self._hellos.get(flow.client_conn.id))
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(tx_id, e)
            return
        self._observe(flow, tx)

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:  # a WebSocket flow is saved when it ends
            self._save(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._save(flow)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        msg = flow.websocket.messages[-1]
        if msg.from_client:
            self._raw(flow, "websocket", msg.content, msg.timestamp, True)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._save(flow)

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        """Client reads, and the server's watch commands, cut into frames per direction."""
        if self.session is None:
            return
        msg = flow.messages[-1]
        assembler = self._streams.setdefault(flow.id, StreamAssembler())
        try:
            payloads = assembler.feed(msg.from_client, msg.content)
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(self.session.next_id(), e)
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
        if self.session is None:
            return
        tx_id = self.session.next_id()
        try:
            tx = dns_transmission(flow, tx_id)
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(tx_id, e)
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
        if self.session is None:
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
        if self.session is None:
            return
        self._passthrough.add(_tls_host(data.context))
        udp_based = data.context.client.transport_protocol == "udp"
        self._tls_uninspected(data.context, QUIC if udp_based else PINNED)

    def client_disconnected(self, client: connection.Client) -> None:
        self._hellos.pop(client.id, None)

    def done(self) -> None:
        if self.session is None:
            return
        try:
            self._poll_marks(force=True)  # marks written since the last request count too
            out = self.session.write_outputs(lang=ctx.options.kidaudit_lang)
            logger.info(f"kidaudit: {len(out.findings)} findings; report {out.report}")
        finally:
            self._close()

    # -- consent marks ------------------------------------------------------------------
    @command.command("kidaudit.mark")
    def mark(self, action: str, *words: str) -> None:
        """Record a consent event now: grant|refuse|withdraw CATEGORY... or phase NAME."""
        if self.session is None:
            raise OptionsError("kidaudit is not configured (set kidaudit_profile/session)")
        try:
            ev = parse_words(action, list(words), now(), "command")
        except ValueError as e:
            raise OptionsError(f"kidaudit.mark: {e}") from e
        self._record_mark(ev)

    def _answer_mark(self, flow: http.HTTPFlow) -> None:
        """The magic host: answered here, never forwarded."""
        try:
            ev = mark_event(flow)
        except ValueError as e:
            flow.response = http.Response.make(400, f"kidaudit: {e}\n".encode(),
                                               {"content-type": "text/plain"})
            return
        self.session.record_event(ev)
        logger.warning(f"kidaudit: consent mark {_describe(ev)}")
        flow.response = http.Response.make(
            200, f"kidaudit recorded: {_describe(ev)}\n".encode(), {"content-type": "text/plain"})
        flow.comment = "kidaudit: consent mark"

    def _record_mark(self, ev) -> None:
        assert self.session is not None
        self.session.record_event(ev)
        self._save(mark_flow(ev))
        logger.warning(f"kidaudit: consent mark {_describe(ev)}")

    def _poll_marks(self, force: bool = False) -> None:
        """Marks written by ``kidaudit mark --session DIR`` from another process. Polled at
        most every POLL_S on the request path: a query per request costs the device time,
        and the final report re-judges every transmission against the complete timeline."""
        assert self.session is not None
        now_s = time.monotonic()
        if now_s - self._last_poll < POLL_S and not force:
            return
        self._last_poll = now_s
        for ev in self.session.poll_events():
            self._save(mark_flow(ev))
            logger.warning(f"kidaudit: consent mark {_describe(ev)}")

    # -- internals ----------------------------------------------------------------------
    def _raw(self, flow, transport: str, payload: bytes, ts: float, from_client: bool) -> None:
        if self.session is None:
            return
        tx_id = self.session.next_id()
        try:
            tx = raw_transmission(flow, tx_id, transport, payload, ts, from_client,
                                  self._names, self._hellos.get(flow.client_conn.id))
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(tx_id, e)
            return
        self._observe(flow, tx)

    def _tls_uninspected(self, context, reason: str) -> None:
        assert self.session is not None
        client, server = context.client, context.server
        hello = self._hellos.get(client.id)
        host = _tls_host(context)
        address = server.address or ("", 0)
        ip = str(server.peername[0]) if server.peername else str(address[0])
        tx_id = self.session.next_id()
        tx = Transmission(
            id=tx_id, ts=now(), transport="tls", host=host, port=int(address[1] or 0), ip=ip,
            inspected=False, sni=client.sni or "", tls_versions=hello.versions if hello else (),
            tls_ciphers=hello.ciphers if hello else ())
        try:
            self.session.store.add_uninspected(host, reason)
            self.session.observe(tx)
            self._save(tls_record_flow(tx, reason, client, server))  # for `analyze flows.mitm`
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(tx_id, e)
            return
        logger.info(f"kidaudit: {host}: {reason}")

    def _observe(self, flow, tx: Transmission) -> None:
        assert self.session is not None
        try:
            obs, opened = self.session.observe(tx)
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(tx.id, e)
            return
        if obs.detections:
            flow.marked = MARKER
            categories = set(obs.categories)
            if flow.comment.startswith("kidaudit: "):  # a stream: keep what earlier messages had
                categories |= set(flow.comment[len("kidaudit: "):].split(", "))
            flow.comment = "kidaudit: " + ", ".join(sorted(categories))
        for f in opened:
            logger.warning(f"kidaudit: [{f.severity.upper()}] {f.rule} -> {f.recipient or '?'}"
                           f" ({', '.join(f.categories)}) tx #{tx.id}")

    def _analysis_error(self, tx_id: int, e: Exception) -> None:
        assert self.session is not None
        self.session.record_error(tx_id, "analyze", e)
        kind = type(e).__name__
        if kind not in self._error_kinds:  # logged once per kind, counted every time
            self._error_kinds.add(kind)
            logger.error(f"kidaudit: analysis error on tx #{tx_id} ({kind}: {e}); "
                         "the flow passed unchanged, further errors of this kind are counted "
                         "in the report")

    def _save(self, flow) -> None:
        if self._writer is not None and self._flows_fh is not None:
            self._writer.add(flow)
            self._flows_fh.flush()

    def _close(self) -> None:
        if self._flows_fh is not None:
            self._flows_fh.close()
        if self.session is not None:
            self.session.close()
        self._flows_fh = self._writer = self.session = None


def _tls_host(context) -> str:
    """The name the device asked for, else the address it connected to."""
    if context.client.sni:
        return str(context.client.sni)
    address = context.server.address
    return f"{address[0]}:{address[1]}" if address else "?"


def _describe(ev) -> str:
    what = ev.name if ev.action == "phase" else ",".join(ev.categories)
    extra = f" separate={','.join(ev.separate)}" if ev.separate else ""
    return f"{ev.action} {what}{extra}"


__all__: Sequence[str] = ("KidAudit", "MARK_HOST")
addons = [KidAudit()]
