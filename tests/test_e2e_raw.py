"""End to end over raw TCP: real mitmproxy with a real socket client speaking the watch
protocol and a tiny server that answers with a remote-listening command. Loopback only,
bounded. The modes tested are the ones that hand raw TCP to the addon without root:
``reverse:tcp`` (a watch re-pointed at the proxy by SMS), ``regular`` (an HTTP CONNECT
tunnel; mitmproxy sees the bytes are neither HTTP nor TLS) and ``socks5``."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import pytest
from mitmproxy.options import Options
from mitmproxy.tools.dump import DumpMaster

from auditor.demo.run import listening_port
from auditor.live.addon import KidAudit
from auditor.offline import analyze
from auditor.profile import load_profile
from auditor.store import Store
from tests.factories import IMEI

pytestmark = pytest.mark.e2e
ID = IMEI[:10].encode()
LK = b"[3G*" + ID + b"*0009*LK,0,0,53]"
UD = (b"[3G*" + ID + b"*0040*UD,190723,190707,A,39.983120,N,116.307910,E,8.24,127.9,21.0,5,"
      b"100,53,0,0,00010000,0,0,58.0]")
TK = b"[3G*" + ID + b"*000e*TK,#!AMR\x7d\x01\x7d\x02\x7d\x03\x7d\x04\x7d\x05\xff]"
MONITOR = b"[SG*" + ID + b"*0007*MONITOR]"
PROFILE = f"""
device: {{name: "Raw TCP watch"}}
identifiers: {{imei: "{IMEI}"}}
location: {{lat: 39.98312, lon: 116.30791}}
"""


class WatchServer:
    """Answers the watch's first position with MONITOR, then reads until it hangs up."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(20)
        with conn:
            answered = False
            while chunk := conn.recv(4096):
                self.received += chunk
                if not answered and self.received.count(b"]") >= 2:
                    conn.sendall(MONITOR)
                    answered = True
        self.sock.close()


def _connect(mode: str, proxy_port: int, server_port: int) -> socket.socket:
    """A connection through the proxy to the watch server, as each mode needs it opened."""
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=20)
    if mode == "regular":
        s.sendall(f"CONNECT 127.0.0.1:{server_port} HTTP/1.1\r\n"
                  f"Host: 127.0.0.1:{server_port}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += s.recv(1024)
        assert answer.startswith(b"HTTP/1.1 200")
    elif mode == "socks5":
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1")
                  + server_port.to_bytes(2, "big"))
        assert s.recv(10)[:2] == b"\x05\x00"
    return s


def _watch(s: socket.socket) -> bytes:
    with s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(LK + UD[:25])  # a frame and the start of the next
        time.sleep(0.2)
        s.sendall(UD[25:])
        got = b""
        while MONITOR not in got:
            got += s.recv(4096)
        s.sendall(TK + LK)  # an escaped voice message and a heartbeat in one write
        time.sleep(0.3)
    return got


@pytest.mark.parametrize("mode", ["reverse:tcp", "regular", "socks5"])
def test_watch_over_raw_tcp_through_real_mitmproxy(tmp_path: Path, mode: str) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    session = tmp_path / "session"
    server = WatchServer()

    async def main() -> bytes:
        opts = Options(listen_host="127.0.0.1", listen_port=0,
                       confdir=str(tmp_path / "conf"),
                       mode=[f"reverse:tcp://127.0.0.1:{server.port}" if mode == "reverse:tcp"
                             else mode])
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        master.addons.add(KidAudit())
        master.options.update(kidaudit_profile=str(profile), kidaudit_session=str(session))
        task = asyncio.create_task(master.run())
        try:
            port = await asyncio.wait_for(listening_port(master), timeout=15)
            sock = await asyncio.to_thread(_connect, mode, port, server.port)
            got = await asyncio.wait_for(asyncio.to_thread(_watch, sock), timeout=40)
            await asyncio.sleep(0.5)  # let the proxy see the close
            return got
        finally:
            master.shutdown()
            await asyncio.wait_for(task, timeout=30)

    got = asyncio.run(main())
    server.thread.join(timeout=10)
    assert got == MONITOR and server.received == LK + UD + TK + LK  # traffic untouched

    doc = json.loads((session / "findings.json").read_text())
    rows = [(t["transport"], t["direction"]) for t in doc["transmissions"]]
    assert rows == [("tcp", "up"), ("tcp", "up"), ("tcp", "down"), ("tcp", "up"), ("tcp", "up")]
    categories = {d["category"] for d in doc["detections"]}
    assert {"location.precise", "media.voice"} <= categories
    store = Store.open_existing(session)
    tags = [o.tags for o in store.observations()]
    store.close()
    assert "command:MONITOR" in tags[2] and "alarm:sos" in tags[1]

    # The same session rebuilt offline from flows.mitm gives the same transmissions.
    out = tmp_path / "rebuilt"
    analyze([session / "flows.mitm"], load_profile(str(profile)), None, out)
    rebuilt = json.loads((out / "findings.json").read_text())
    assert [(t["transport"], t["direction"]) for t in rebuilt["transmissions"]] == rows


def test_udp_and_dns_through_real_mitmproxy(tmp_path: Path) -> None:
    """``reverse:udp`` carries a tracker datagram; ``dns`` mode answers a lookup."""
    from scapy.layers.dns import DNS, DNSQR

    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    session = tmp_path / "session"
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    echo.settimeout(20)
    datagram = (f"S168#{IMEI}#0f12#0077#LOCA:G;GDATA:A,12,160412154800,39.983120,116.307910,"
                "5.5,152,900").encode()

    def client(udp_port: int, dns_port: int) -> tuple[bytes, bytes]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(20)
            s.sendto(datagram, ("127.0.0.1", udp_port))
            got, peer = echo.recvfrom(4096)
            echo.sendto(b"ok", peer)
            answer = s.recv(4096)
            s.sendto(bytes(DNS(id=7, rd=1, qd=DNSQR(qname="localhost"))), ("127.0.0.1", dns_port))
            return got + answer, s.recv(4096)

    async def main() -> tuple[bytes, bytes]:
        opts = Options(listen_host="127.0.0.1", listen_port=0, confdir=str(tmp_path / "conf"),
                       mode=[f"reverse:udp://127.0.0.1:{echo.getsockname()[1]}", "dns"])
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        master.addons.add(KidAudit())
        master.options.update(kidaudit_profile=str(profile), kidaudit_session=str(session))
        task = asyncio.create_task(master.run())
        try:
            await asyncio.wait_for(listening_port(master), timeout=15)
            servers = master.addons.get("proxyserver").servers
            ports = {}
            for _ in range(100):
                ports = {s.mode.type_name: s.listen_addrs[0][1] for s in servers
                         if s.is_running and s.listen_addrs}
                if len(ports) == 2:
                    break
                await asyncio.sleep(0.05)
            return await asyncio.wait_for(asyncio.to_thread(
                client, ports["reverse"], ports["dns"]), timeout=40)
        finally:
            master.shutdown()
            await asyncio.wait_for(task, timeout=30)

    (udp_seen, dns_answer) = asyncio.run(main())
    echo.close()
    assert udp_seen == datagram + b"ok" and DNS(dns_answer).id == 7
    doc = json.loads((session / "findings.json").read_text())
    assert [t["transport"] for t in doc["transmissions"]] == ["udp", "dns"]
    assert "location.precise" in {d["category"] for d in doc["detections"]}


def _pinned_server(tmp_path: Path):
    """A TLS server with its own CA (not the proxy's): a client that trusts only that CA is
    a pinning device. Returns (port, ca_file, thread)."""
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from mitmproxy.certs import CertStore

    store = CertStore.from_store(tmp_path / "pin-ca", "pinned", 2048)
    entry = store.get_cert("localhost", [x509.DNSName("localhost")])
    cert_file, key_file = tmp_path / "srv.pem", tmp_path / "srv.key"
    cert_file.write_bytes(entry.cert.to_pem())
    key_file.write_bytes(entry.privatekey.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(20)

    def serve() -> None:
        with sock:
            for _ in range(2):  # the intercepted attempt fails at the client, then the real one
                try:
                    conn, _ = sock.accept()
                    with ctx.wrap_socket(conn, server_side=True) as tls_conn:
                        tls_conn.sendall(b"hello " + tls_conn.recv(100))
                except (OSError, ssl.SSLError):
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock.getsockname()[1], tmp_path / "pin-ca" / "pinned-ca-cert.pem", thread


def test_a_pinned_host_is_uninspected_then_passed_through(tmp_path: Path) -> None:
    import ssl

    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    session = tmp_path / "session"
    port, ca_file, thread = _pinned_server(tmp_path)

    def device(proxy_port: int) -> list[str]:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        outcomes = []
        for _ in range(2):
            raw = _connect("regular", proxy_port, port)
            try:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"watch")
                    outcomes.append(s.recv(100).decode())
            except ssl.SSLError:
                outcomes.append("rejected")
        return outcomes

    async def main() -> list[str]:
        opts = Options(listen_host="127.0.0.1", listen_port=0, confdir=str(tmp_path / "conf"),
                       ssl_insecure=True)
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        master.addons.add(KidAudit())
        master.options.update(kidaudit_profile=str(profile), kidaudit_session=str(session))
        task = asyncio.create_task(master.run())
        try:
            proxy_port = await asyncio.wait_for(listening_port(master), timeout=15)
            return await asyncio.wait_for(asyncio.to_thread(device, proxy_port), timeout=40)
        finally:
            master.shutdown()
            await asyncio.wait_for(task, timeout=30)

    outcomes = asyncio.run(main())
    thread.join(timeout=10)
    assert outcomes == ["rejected", "hello watch"]  # pinned, then the device works again
    doc = json.loads((session / "findings.json").read_text())
    tls_rows = [(t["transport"], t["inspected"], t["host"]) for t in doc["transmissions"]]
    assert tls_rows == [("tls", False, "localhost")] * 2
    reasons = [u["reason"] for u in doc["coverage"]["uninspected"] if u["host"] == "localhost"]
    assert any("rejected the interception certificate" in r for r in reasons)
    assert doc["transmissions"][0]["transport"] == "tls"

    # flows.mitm keeps a record of each attempt: the offline rebuild lists the same.
    out = tmp_path / "rebuilt"
    analyze([session / "flows.mitm"], load_profile(str(profile)), None, out)
    rebuilt = json.loads((out / "findings.json").read_text())
    assert [(t["transport"], t["inspected"], t["host"]) for t in rebuilt["transmissions"]] == \
        tls_rows
    assert rebuilt["coverage"]["uninspected"] == doc["coverage"]["uninspected"]
