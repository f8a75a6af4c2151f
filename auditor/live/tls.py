"""TLS as the device offers it, and hosts whose clients refuse our certificate.

The device's ClientHello gives its offered versions and suites (WEAK_TLS). When it rejects
the interception certificate (pinning, or the lab CA is not trusted), the attempt is an
uninspected ``tls`` transmission with its SNI, the host is listed under coverage, and later
connections to it pass through untouched (as mitmproxy's ``tls_passthrough`` example does)
so the device keeps working.
"""

from __future__ import annotations

from mitmproxy import tls

from auditor.extract.payload import parse_client_hello
from auditor.live.channel import Channel
from auditor.live.protocol import Uninspected
from auditor.live.terminal import kidaudit_logger
from auditor.live.traffic import Connections
from auditor.model import Transmission
from auditor.sources.mitm import now, tls_record_flow

PINNED = "client rejected the interception certificate (pinned or CA not trusted)"
PASSED = "passed through uninspected: the client rejected interception before"
QUIC = "QUIC: client rejected the interception certificate"

logger = kidaudit_logger()


class TlsHooks:
    def __init__(self, channel: Channel, conns: Connections) -> None:
        self.channel, self.conns = channel, conns
        self._passthrough: set[str] = set()  # hosts whose clients rejected our certificate

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Record what the device offers; pass a host through once its client refused us."""
        if not self.channel.active:
            return
        client = data.context.client
        try:
            hello = parse_client_hello(data.client_hello.raw_bytes())
        except Exception:  # noqa: BLE001 - an odd ClientHello is only a missing fact
            hello = None
        if hello is not None:
            self.conns.hellos[client.id] = hello
        host = _tls_host(data.context)
        if host in self._passthrough:
            data.ignore_connection = True
            self._uninspected(data.context, PASSED)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        """The device refused our certificate (pinning, or it does not trust the lab CA).
        Only the ordinary interception certificate: a refused TLS probe case is the probe's
        (``KidAudit`` asks it first), never a reason to pass the host through."""
        if not self.channel.active:
            return
        self._passthrough.add(_tls_host(data.context))
        udp_based = data.context.client.transport_protocol == "udp"
        self._uninspected(data.context, QUIC if udp_based else PINNED)

    def probe_refused(self, context, reason: str, case: str) -> None:
        """A TLS probe case the client refused (``auditor.live.probe``): an uninspected
        attempt with its case, evidence the device validates; the host is not passed
        through."""
        if self.channel.active:
            self._uninspected(context, reason, case)

    def _uninspected(self, context, reason: str, probe: str = "") -> None:
        """``probe``: the TLS probe's case the client refused (``auditor.live.probe``)."""
        client, server = context.client, context.server
        hello = self.conns.hello(client)
        host = _tls_host(context)
        address = server.address or ("", 0)
        ip = str(server.peername[0]) if server.peername else str(address[0])
        tx = Transmission(
            id=-1, ts=now(), transport="tls", host=host, port=int(address[1] or 0), ip=ip,
            inspected=False, sni=client.sni or "", tls_versions=hello.versions if hello else (),
            tls_ciphers=hello.ciphers if hello else (), probe=probe)
        try:  # the record flow lets ``analyze flows.mitm`` rebuild the attempt
            record = tls_record_flow(tx, reason, client, server).get_state()
            self.channel.send(Uninspected(tx, reason, record))
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self.channel.error(e)
            return
        logger.info(f"kidaudit: {host}: {reason}")


def _tls_host(context) -> str:
    """The name the device asked for, else the address it connected to."""
    if context.client.sni:
        return str(context.client.sni)
    address = context.server.address
    return f"{address[0]}:{address[1]}" if address else "?"
