"""The TLS-validation probe live (issue 17, item 4): real mitmproxy with the addon and
``kidaudit_tls_probe`` on 127.0.0.1, real TLS, three kinds of client over HTTPS and over raw
TLS (a watch's ``[3G*...]`` line protocol inside TLS, through the regular listener), each
retrying a refused connection as a device reconnects (bounded in attempts and time):

=================  ====================================  ===================================
client             what it checks                        findings
=================  ====================================  ===================================
accepts anything   nothing (CERT_NONE; TLS 1.0 allowed)  all four probe rules
skips hostname     the CA, not the name                  TLS_HOSTNAME_NOT_CHECKED only
validates          CA, name, expiry, TLS >= 1.2          none; its next request gets through
=================  ====================================  ===================================
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.demo.cloud import LocalCloud, self_signed
from auditor.demo.devices import API, Proxy, watch_frame
from auditor.demo.run import run_through_proxy
from auditor.store import Store
from tests.factories import IMEI
from tests.proxyrun import listening_port

pytestmark = pytest.mark.e2e

PROFILE = f"""
device: {{name: "Probe watch", firmware: "9.9"}}
identifiers: {{imei: "{IMEI}", phone: "+8613800138000"}}
location: {{lat: 39.98312, lon: 116.30791}}
first_party: [acme-watch.example, watch-tls.example]
jurisdiction: CN
"""
RAW_HOST = "watch-tls.example"  # the raw TLS server's name (SNI); reached at 127.0.0.1
ATTEMPTS = 8  # connections a client tries for one message before giving up
DEADLINE_S = 60.0
PROBE_RULES = {"untrusted-ca": "TLS_CERT_NOT_VALIDATED", "wrong-host": "TLS_HOSTNAME_NOT_CHECKED",
               "expired": "TLS_EXPIRED_CERT_ACCEPTED", "tls1.0": "TLS_LEGACY_ACCEPTED"}


# -- the clients -------------------------------------------------------------------------------

def accepts_anything(ca: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # deprecated, and exactly what this client is for
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def skips_hostname(ca: Path) -> ssl.SSLContext:
    ctx = validates(ca)
    ctx.check_hostname = False
    return ctx


def validates(ca: Path) -> ssl.SSLContext:
    """Python's default context, strict as Python 3.13 makes it on every version: only the
    case's one fault may make this client refuse a probe certificate."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


CLIENTS: dict[str, Callable[[Path], ssl.SSLContext]] = {
    "accepts-anything": accepts_anything, "skips-hostname": skips_hostname,
    "validates": validates}
EXPECTED = {  # the probe findings each client gets, per host
    "accepts-anything": set(PROBE_RULES.values()),
    "skips-hostname": {"TLS_HOSTNAME_NOT_CHECKED"},
    "validates": set(),
}


def retrying(send: Callable[[], bytes]) -> tuple[bytes, int]:
    """``send()`` until a connection gets through, as a device reconnects: its answer and how
    many connections were refused first."""
    deadline = time.monotonic() + DEADLINE_S
    for refused in range(ATTEMPTS):
        try:
            return send(), refused
        except (ssl.SSLError, ConnectionError) as e:
            if time.monotonic() > deadline:
                raise AssertionError(f"no connection got through within {DEADLINE_S} s") from e
    raise AssertionError(f"no connection got through in {ATTEMPTS} attempts")


def https_post(proxy: Proxy, ctx: ssl.SSLContext, body: dict) -> bytes:
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=ctx, timeout=10)
    conn.set_tunnel(API, 443)
    try:
        conn.request("POST", "/v1/report", body=json.dumps(body).encode(),
                     headers={"content-type": "application/json"})
        resp = conn.getresponse()
        return f"{resp.status} ".encode() + resp.read()
    finally:
        conn.close()


def raw_tls_line(proxy: Proxy, ctx: ssl.SSLContext, port: int, frame: bytes) -> bytes:
    """One watch frame inside TLS through the proxy's regular listener (CONNECT), the
    server's answer line back."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                  .encode())
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 4096:
            if not (chunk := s.recv(1024)):
                raise ConnectionError("the proxy closed the tunnel")
            head += chunk
        assert head.startswith(b"HTTP/1.1 200"), head
        with ctx.wrap_socket(s, server_hostname=RAW_HOST) as tls_sock:
            tls_sock.sendall(frame + b"\n")
            answer = b""
            while not answer.endswith(b"\n") and len(answer) < 4096:
                if not (chunk := tls_sock.recv(1024)):
                    break
                answer += chunk
            return answer


# -- the raw TLS server ------------------------------------------------------------------------

class _LineHandler(socketserver.StreamRequestHandler):
    timeout = 10

    def handle(self) -> None:
        line = self.rfile.readline(4096)
        self.wfile.write(b"OK " + line.strip()[:64] + b"\n")


@contextmanager
def line_server() -> Iterator[int]:
    """A TLS server on 127.0.0.1 answering each line with ``OK <line>``."""
    with tempfile.TemporaryDirectory(prefix="kidaudit-probe-") as tmp:
        cert, key = self_signed(Path(tmp))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _LineHandler)
        server.daemon_threads = True
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            server.server_close()


# -- a session ---------------------------------------------------------------------------------

def probe_session(tmp_path: Path, drive: Callable[[Proxy, int], object],
                  hosts: tuple[str, ...] = (), probe: bool = True) -> tuple[object, Path]:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    session = tmp_path / "session"
    with line_server() as port:
        result = run_through_proxy(
            tmp_path / "mitmproxy-conf",
            {"kidaudit_profile": str(profile), "kidaudit_session": str(session),
             "kidaudit_tls_probe": probe, "kidaudit_tls_probe_hosts": list(hosts)},
            lambda proxy: drive(proxy, port), timeout=120)
    return result, session


def findings(session: Path) -> list[dict]:
    return json.loads((session / "findings.json").read_text())["findings"]


def probe_findings(session: Path) -> dict[tuple[str, str], tuple[str, ...]]:
    """(rule, recipient) -> the categories, for the probe's rules."""
    return {(f["rule"], host): tuple(f["categories"]) for f in findings(session)
            if f["rule"] in PROBE_RULES.values() for host in f["recipients"]}


def probes_recorded(session: Path) -> list[tuple[str, str, bool]]:
    store = Store.open_existing(session)
    try:
        return [(o.transmission.host, o.transmission.probe, o.transmission.inspected)
                for o in store.iter_observations() if o.transmission.probe]
    finally:
        store.close()


@pytest.mark.parametrize("client", list(CLIENTS))
def test_the_probe_over_https_and_raw_tls(tmp_path: Path, client: str) -> None:
    frame = watch_frame(IMEI[-10:], "LK,0,0,86")

    def drive(proxy: Proxy, port: int) -> list[tuple[bytes, int]]:
        ctx = CLIENTS[client](proxy.ca)
        # five messages each: enough connections for every case and one more
        out = [retrying(lambda: https_post(proxy, ctx, {"imei": IMEI})) for _ in range(5)]
        out += [retrying(lambda: raw_tls_line(proxy, ctx, port, frame)) for _ in range(5)]
        return out

    answers, session = probe_session(tmp_path, drive)
    https, raw = answers[:5], answers[5:]
    assert all(a.startswith(b"200 ") for a, _ in https), https  # the traffic got through
    assert all(a == b"OK " + frame + b"\n" for a, _ in raw), raw
    refused = sum(n for _, n in answers)
    expected = EXPECTED[client]
    assert refused == 2 * (4 - len(expected))  # each refused case was retried, per host
    got = probe_findings(session)
    for domain in ("acme-watch.example", RAW_HOST):  # a finding is filed per organisation
        assert {rule for rule, d in got if d == domain} == expected, (domain, got)
    for (rule, host), categories in got.items():
        assert "identifier.imei" in categories, (rule, host)  # the data exposed
    recorded = probes_recorded(session)
    for host in (API, RAW_HOST):
        cases = {case for h, case, _ in recorded if h == host}
        assert cases == set(PROBE_RULES), (host, recorded)  # every case was tried on each
        accepted = {PROBE_RULES[case] for h, case, inspected in recorded
                    if h == host and inspected}
        assert accepted == expected
    assert not [f for f in findings(session) if f["rule"] == "UNINSPECTED_TRAFFIC"]
    # Offline: flows.mitm alone gives the same probe findings (the case is in the flows).
    out = tmp_path / "offline"
    result = CliRunner().invoke(app, ["analyze", str(session / "flows.mitm"), "--profile",
                                      str(tmp_path / "p.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert probe_findings(out) == got
    assert sorted(probes_recorded(out)) == sorted(recorded)


def test_curl_k_accepts_every_case(tmp_path: Path) -> None:
    """A real ``curl -k`` (TLS 1.0 allowed at security level 0): all four findings."""
    def drive(proxy: Proxy, port: int) -> list[str]:
        out = []
        for _ in range(5):
            run = subprocess.run(
                ["curl", "-k", "-sS", "--max-time", "10", "--proxy",
                 f"http://127.0.0.1:{proxy.port}", "--tlsv1.0", "--ciphers",
                 "DEFAULT:@SECLEVEL=0", "-H", "content-type: application/json",
                 "--data", json.dumps({"imei": IMEI}), f"https://{API}/v1/report"],
                capture_output=True, text=True, timeout=30, check=False)
            out.append(run.stdout if run.returncode == 0 else f"error: {run.stderr}")
        return out

    answers, session = probe_session(tmp_path, drive)
    assert all('"code": 0' in a for a in answers), answers
    assert {rule for rule, _ in probe_findings(session)} == set(PROBE_RULES.values())


def test_hosts_outside_the_allow_list_are_not_probed(tmp_path: Path) -> None:
    def drive(proxy: Proxy, port: int) -> list[tuple[bytes, int]]:
        ctx = validates(proxy.ca)
        return [retrying(lambda: https_post(proxy, ctx, {"imei": IMEI}))]

    answers, session = probe_session(tmp_path, drive, hosts=("other.example",))
    assert answers[0][1] == 0 and answers[0][0].startswith(b"200 ")
    assert probes_recorded(session) == []


def test_without_the_option_the_probe_runs_during_a_tls_probe_phase(tmp_path: Path) -> None:
    """No ``kidaudit_tls_probe``: a host is intercepted as usual until the tester marks the
    ``tls-probe`` phase; then the next new name is probed (the mark reaches the probe through
    the session's store, read at most once a second)."""
    session = tmp_path / "session"

    def phase_in_store() -> bool:
        store = Store.open_existing(session)
        try:
            return any(ev.name == "tls-probe" for _, ev in store.events())
        finally:
            store.close()

    def drive(proxy: Proxy, port: int) -> list[tuple[bytes, int]]:
        ctx = validates(proxy.ca)
        frame = watch_frame(IMEI[-10:], "LK,0,0,86")
        before = retrying(lambda: raw_tls_line(proxy, ctx, port, frame))
        proxy.http("kidaudit.mark", "GET", "/phase?name=tls-probe")
        deadline = time.monotonic() + 20
        while not phase_in_store() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.1)  # PHASE_POLL_S: the probe reads the phase again
        return [before, retrying(lambda: https_post(proxy, ctx, {"imei": IMEI}))]

    (before, after), session = probe_session(tmp_path, drive, probe=False)
    assert before[1] == 0 and after == (after[0], 4) and after[0].startswith(b"200 ")
    assert [(host, case) for host, case, _ in probes_recorded(session)] == [
        (API, case) for case in PROBE_RULES]


def test_mitmdump_with_the_probe_on_a_client_without_sni(tmp_path: Path) -> None:
    """``mitmdump -s addons/kidaudit.py --set kidaudit_tls_probe=true`` as ``capture
    --tls-probe`` runs it, and ``curl -k`` to an address (no SNI: the probe names the host
    by the address and puts it in the certificates)."""
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    session = tmp_path / "session"
    mitmdump = Path(sys.executable).with_name("mitmdump")
    addon = Path(__file__).resolve().parents[1] / "addons" / "kidaudit.py"
    with LocalCloud() as cloud:
        host, port = cloud.https_addr
        proc = subprocess.Popen(
            [str(mitmdump), "-s", str(addon), "--listen-host", "127.0.0.1", "--listen-port",
             "0", "--set", f"confdir={tmp_path / 'conf'}", "--set", "ssl_insecure=true",
             "--set", f"kidaudit_profile={profile}", "--set", f"kidaudit_session={session}",
             "--set", "kidaudit_tls_probe=true", "--set", f"kidaudit_tls_probe_hosts={host}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            proxy_port = listening_port(proc)
            answers = [subprocess.run(
                ["curl", "-k", "-sS", "--max-time", "10", "--proxy",
                 f"http://127.0.0.1:{proxy_port}", "--tlsv1.0", "--ciphers",
                 "DEFAULT:@SECLEVEL=0", f"https://{host}:{port}/r?imei={IMEI}"],
                capture_output=True, text=True, timeout=30, check=False).stdout
                for _ in range(5)]
        finally:
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=30)
    assert all('"code": 0' in a for a in answers), (answers, output[-2000:])
    assert "the client ACCEPTED the untrusted-ca case" in output, output
    got = probe_findings(session)
    assert {rule for rule, _ in got} == set(PROBE_RULES.values())
    assert {recipient for _, recipient in got} == {host}
    assert all(categories == ("identifier.imei",) for categories in got.values())
