"""The demo's local "cloud": HTTP and HTTPS servers on 127.0.0.1 answering for every host,
and the watch maker's raw-TCP ``[3G*...]`` server on its own loopback address.

The HTTPS server's certificate is self-signed and generated at start; mitmproxy is told not
to verify upstream certificates for the demo, as it would be for a lab's own test server.
The watch server sits on ``MAKER_IP`` (127.0.0.2), not 127.0.0.1: every hostname the demo
re-routes lands on 127.0.0.1, and the profile names the maker's address as first party, so
sharing it would make the analytics host the maker too.
"""

from __future__ import annotations

import datetime
import json
import re
import socketserver
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MAX_BODY = 1 << 20
MAKER_IP = "127.0.0.2"  # the demo maker's server address: loopback, but not the cloud's
WATCH_FRAME = re.compile(rb"\[3G\*(\d+)\*[0-9A-Fa-f]{4}\*(\w+)")


class _Handler(BaseHTTPRequestHandler):
    # One request per connection: with HTTP/1.1 keep-alive and the demo's re-routing of
    # hostnames (RouteToCloud), a long run of requests on one client connection could
    # stall; the device side stays keep-alive either way.
    protocol_version = "HTTP/1.0"
    # Small responses would otherwise wait for the client's delayed ACK before leaving.
    disable_nagle_algorithm = True
    server_version = "demo-cloud/1"

    def _answer(self) -> None:
        length = min(int(self.headers.get("content-length") or 0), MAX_BODY)
        self.rfile.read(length)
        body = json.dumps({"code": 0, "msg": "ok", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kidaudit demo cloud")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cloud-cert.pem", directory / "cloud-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _KeepAliveHandler(_Handler):
    """For clients that address the cloud directly (the benchmark): a real server keeps
    connections open, and the proxy's cost is measured against that."""

    protocol_version = "HTTP/1.1"


class LocalCloud:
    """Both servers on ephemeral loopback ports; ``with LocalCloud() as cloud: ...``."""

    def __init__(self, keep_alive: bool = False) -> None:
        handler = _KeepAliveHandler if keep_alive else _Handler
        self._tmp = tempfile.TemporaryDirectory(prefix="kidaudit-cloud-")
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.https = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        cert, key = self_signed(Path(self._tmp.name))
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        self.https.socket = tls.wrap_socket(self.https.socket, server_side=True)
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True)
                         for s in (self.http, self.https)]

    @property
    def http_addr(self) -> tuple[str, int]:
        return self.http.server_address[:2]

    @property
    def https_addr(self) -> tuple[str, int]:
        return self.https.server_address[:2]

    def __enter__(self) -> LocalCloud:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in (self.http, self.https):
            s.shutdown()
            s.server_close()
        self._tmp.cleanup()


class _WatchHandler(socketserver.BaseRequestHandler):
    """Answers each heartbeat (``LK``) as 3G servers do, with ``[3G*ID*0002*LK]``, and
    position reports not at all: the watch waits for the heartbeat's answer, so the demo
    ends its TCP session at a known point, after the server has read every frame."""

    def handle(self) -> None:
        self.request.settimeout(10)
        buffer = b""
        while chunk := self.request.recv(4096):
            buffer += chunk
            while (end := buffer.find(b"]")) >= 0:
                frame, buffer = buffer[:end + 1], buffer[end + 1:]
                m = WATCH_FRAME.match(frame)
                if m and m.group(2) == b"LK":
                    self.request.sendall(b"[3G*" + m.group(1) + b"*0002*LK]")


class WatchServer:
    """The maker's raw-TCP watch server on ``MAKER_IP``; ``with WatchServer() as s: ...``."""

    def __init__(self, host: str = MAKER_IP) -> None:
        self.server = socketserver.ThreadingTCPServer((host, 0), _WatchHandler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def addr(self) -> tuple[str, int]:
        return self.server.server_address[:2]

    def __enter__(self) -> WatchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
