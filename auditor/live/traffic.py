"""The device's traffic into messages: mitmproxy's HTTP, WebSocket, TCP, UDP and DNS hooks.

Each hook reads what it needs off the flow, hands one message to the ``Channel`` and
returns: the analysis happens elsewhere (``auditor.live.core``), and an error here is
counted, never raised into mitmproxy, so the device's traffic always passes unchanged.
What the hooks share about connections lives in ``Connections``.
"""

from __future__ import annotations

from mitmproxy import connection, dns, http, tcp, udp
from mitmproxy.proxy import server_hooks

from auditor.extract.payload import ClientHello
from auditor.live.channel import Channel
from auditor.live.consent import ConsentMarks
from auditor.live.protocol import HttpFlow, Raw, SaveFlow
from auditor.live.states import ConnectionStates, flow_state
from auditor.memo import Memo
from auditor.model import Transmission
from auditor.sources.mitm import (
    StreamAssembler,
    dns_names,
    dns_transmission,
    is_mark,
    raw_transmission,
)

MAX_NAMES = 10_000  # DNS answers remembered to name raw-IP destinations (see ``Memo``)


class Connections:
    """What the proxy knows about its open connections: each client's ClientHello (its
    offered TLS versions and suites go with every message on it), and each connection's
    serialised state (written once per change, not once per flow). Forgotten as they close."""

    def __init__(self) -> None:
        self.hellos: dict[str, ClientHello] = {}  # client connection id -> its ClientHello
        self.states = ConnectionStates()

    def hello(self, client: connection.Client | None) -> ClientHello | None:
        return self.hellos.get(client.id) if client is not None else None

    def client_disconnected(self, client: connection.Client) -> None:
        self.hellos.pop(client.id, None)
        self.states.forget(client)

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.states.forget(data.server)


class Sender:
    """What every traffic hook does with a finished message or flow."""

    def __init__(self, channel: Channel, conns: Connections) -> None:
        self.channel, self.conns = channel, conns

    def observe(self, flow, tx: Transmission) -> None:
        self.channel.send(Raw(self.channel.token(flow), tx))

    def raw(self, flow, transport: str, payload: bytes, ts: float, from_client: bool,
            names: Memo[str, str] | None = None) -> None:
        if not self.channel.active:
            return
        try:  # numbered by the analysis side (-1 here)
            tx = raw_transmission(flow, -1, transport, payload, ts, from_client, names,
                                  self.conns.hello(flow.client_conn))
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self.channel.error(e)
            return
        self.observe(flow, tx)

    def save(self, flow) -> None:
        """Appended to flows.mitm by the analysis side, after the messages before it."""
        if self.channel.active:
            self.channel.send(SaveFlow(flow_state(flow, self.conns.states)))


class HttpHooks(Sender):
    """HTTP and WebSocket. A request is analysed once its flow is finished (its response
    went to the device, or it failed), as the flow's state, which is also what
    ``flows.mitm`` keeps; the plan's consent signals are matched as the request passes."""

    def __init__(self, channel: Channel, conns: Connections, marks: ConsentMarks) -> None:
        super().__init__(channel, conns)
        self.marks = marks
        self._requests: set[str] = set()  # HTTP flows whose request is not analysed yet

    def request(self, flow: http.HTTPFlow) -> None:
        if not self.channel.active:
            return
        if is_mark(flow):
            self.marks.answer(flow)
            return
        self.marks.signals_of(flow)
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
            self.raw(flow, "websocket", msg.content, msg.timestamp, True)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def _finished(self, flow: http.HTTPFlow) -> None:
        """An HTTP flow is done: saved, and its request analysed if not yet."""
        if not self.channel.active:
            return
        state = flow_state(flow, self.conns.states)
        if flow.id in self._requests:
            self._requests.discard(flow.id)
            self.channel.send(HttpFlow(self.channel.token(flow), state,
                                       self.conns.hello(flow.client_conn)))
        else:  # a consent mark answered here, or a WebSocket's end
            self.channel.send(SaveFlow(state))


class StreamHooks(Sender):
    """Raw TCP and UDP. A TCP stream is cut into watch frames per direction (the server's
    watch commands become transmissions going ``down``); each client datagram is one
    transmission. A destination given only as an address is named by an earlier DNS
    answer (``names``)."""

    def __init__(self, channel: Channel, conns: Connections, names: Memo[str, str]) -> None:
        super().__init__(channel, conns)
        self.names = names
        self._streams: dict[str, StreamAssembler] = {}  # TCP flow id -> its frame buffers

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        """Client reads, and the server's watch commands, cut into frames per direction."""
        if not self.channel.active:
            return
        msg = flow.messages[-1]
        assembler = self._streams.setdefault(flow.id, StreamAssembler())
        try:
            payloads = assembler.feed(msg.from_client, msg.content)
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self.channel.error(e)
            return
        for payload in payloads:
            self.raw(flow, "tcp", payload, msg.timestamp, msg.from_client, self.names)

    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        self._streams.pop(flow.id, None)
        self.save(flow)

    tcp_error = tcp_end

    def udp_message(self, flow: udp.UDPFlow) -> None:
        msg = flow.messages[-1]
        if msg.from_client:
            self.raw(flow, "udp", msg.content, msg.timestamp, True, self.names)

    def udp_end(self, flow: udp.UDPFlow) -> None:
        self.save(flow)

    udp_error = udp_end


class DnsHooks(Sender):
    """Each query is a transmission; each answer's addresses are remembered with the name
    asked (``names``), so raw TCP or UDP to that address later carries the name."""

    def __init__(self, channel: Channel, conns: Connections, names: Memo[str, str]) -> None:
        super().__init__(channel, conns)
        self.names = names

    def dns_request(self, flow: dns.DNSFlow) -> None:
        if not self.channel.active:
            return
        try:
            tx = dns_transmission(flow, -1)
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self.channel.error(e)
            return
        self.observe(flow, tx)

    def dns_response(self, flow: dns.DNSFlow) -> None:
        try:
            names = dns_names(flow)
        except Exception:  # noqa: BLE001 - a response we cannot read names nothing
            names = []
        for name, ip in names:
            self.names.put(ip, name)
        self.save(flow)

    def dns_error(self, flow: dns.DNSFlow) -> None:
        self.save(flow)
