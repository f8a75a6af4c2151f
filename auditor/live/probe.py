"""The active TLS-validation probe (issue 17, item 4): does the device check certificates?

A lab that trusts its own CA on the device can read the traffic, but learns nothing about
whether the device would also talk to an attacker. With the probe on, each new server name
the device contacts (its SNI; the server's address for a client without SNI) gets, on its
first connections, one deliberately bad TLS case per connection, in this order:

==============  ===========================================================================
case            what the device is shown
==============  ===========================================================================
untrusted-ca    a certificate for the right name, signed by a throwaway CA made when the
                probe starts (never written anywhere, so nothing trusts it)
wrong-host      a certificate from the lab CA (mitmproxy's, which the device trusts) for
                ``wrong-host.invalid``
expired         a lab-CA certificate for the right name whose validity ended a month ago
tls1.0          a lab-CA certificate for the right name, the server offering TLS 1.0 only
==============  ===========================================================================

A case the device accepts (``tls_established_client``) is a finding: the flows on that
connection carry the case in their metadata (``PROBE_META``), so their transmissions, live
and read back from ``flows.mitm``, have ``Transmission.probe`` set, and what the device sent
over them is analysed like any other message (the data an attacker would have got). A case
the device refuses (``tls_failed_client``) is recorded as an uninspected ``tls``
transmission with the case: evidence that it validates. A refusal of a probe case is never
taken for pinning (``TlsHooks`` passes a host through only when the device refuses the
ordinary interception certificate). After its cases a host is intercepted as usual, so the
session goes on: a device that validates must retry (as real devices reconnect), and its
next connection gets through.

When it runs: with ``kidaudit_tls_probe`` on (``capture --tls-probe``), for the whole
capture; or, without the option, while the session's phase is ``tls-probe``: the latest of
its phase marks (``kidaudit mark phase tls-probe``, the magic host, a plan signal), read
from the session's store at most once a second, and of the plan's timed phase events that
have come. ``kidaudit_tls_probe_hosts`` limits it to the
names listed (the demo probes one host). State per host is bounded (``MAX_HOSTS``, the
oldest forgotten first: a host forgotten is probed again if it comes back).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from mitmproxy import connection, ctx, http, tcp, tls
from OpenSSL import SSL, crypto

from auditor.live.terminal import kidaudit_logger
from auditor.memo import Memo
from auditor.rules.transport_rules import EXPIRED, PROBE_CASES, TLS10, UNTRUSTED_CA, WRONG_HOST
from auditor.sources.mitm import PROBE_META
from auditor.store import Store

PHASE = "tls-probe"  # the phase during which the probe runs without the option
WRONG_NAME = "wrong-host.invalid"  # the wrong-host case's name (.invalid: never anyone's)
MAX_HOSTS = 10_000  # hosts whose cases are tracked; the oldest forgotten past this
MAX_LEAVES = 1024  # certificates remembered (one per host and case)
PHASE_POLL_S = 1.0  # the session's latest phase is read at most this often
LEGACY_CIPHERS = b"ALL:@SECLEVEL=0"  # OpenSSL 3 refuses TLS 1.0 at its default level

ACCEPTED, REFUSED = "accepted", "refused"
REFUSED_REASON = ("TLS probe {case}: the client refused the certificate (it validates; "
                  "not pinning, the host is intercepted after the probe)")

logger = kidaudit_logger()


@dataclass
class HostProbe:
    """One host's probe: the next case to show, and each attempt's outcome so far."""

    next: int = 0
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (case, outcome)


class Hosts:
    """Per-host state, bounded: at most ``limit`` hosts, the oldest dropped first."""

    def __init__(self, limit: int = MAX_HOSTS) -> None:
        self.limit = limit
        self._hosts: OrderedDict[str, HostProbe] = OrderedDict()

    def next_case(self, host: str) -> str | None:
        """The case this host's next connection gets, or None once it has had them all."""
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = HostProbe()
            while len(self._hosts) > self.limit:
                self._hosts.popitem(last=False)
        if state.next >= len(PROBE_CASES):
            return None
        state.next += 1
        return PROBE_CASES[state.next - 1]

    def record(self, host: str, case: str, outcome: str) -> None:
        state = self._hosts.get(host)
        if state is not None:
            state.attempts.append((case, outcome))

    def attempts(self, host: str) -> list[tuple[str, str]]:
        state = self._hosts.get(host)
        return list(state.attempts) if state is not None else []

    def __len__(self) -> int:
        return len(self._hosts)


class Certificates:
    """The probe's certificates: a throwaway CA and one leaf key made once, and a leaf per
    host and case, signed by the throwaway CA or by the lab CA (``lab``: its certificate and
    key, mitmproxy's CertStore's)."""

    def __init__(self, lab: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
        self.lab = lab
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rogue = (_ca_cert(rogue_key), rogue_key)
        self._leaves: Memo[tuple[str, str], x509.Certificate] = Memo(MAX_LEAVES)

    def leaf(self, case: str, name: str) -> x509.Certificate:
        return self._leaves.get_or_make((case, name), lambda: self._make(case, name))

    def _make(self, case: str, name: str) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        issuer = self.rogue if case == UNTRUSTED_CA else self.lab
        if case == EXPIRED:
            start, end = now - datetime.timedelta(days=400), now - datetime.timedelta(days=30)
        else:
            start, end = now - datetime.timedelta(days=2), now + datetime.timedelta(days=30)
        return _signed(WRONG_NAME if case == WRONG_HOST else name, self.key, issuer, start, end)


def _ca_cert(key: rsa.RSAPrivateKey) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kidaudit TLS probe "
                                            "throwaway CA (untrusted)"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kidaudit probe")])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=2))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))


def _signed(name: str, key: rsa.RSAPrivateKey,
            issuer: tuple[x509.Certificate, rsa.RSAPrivateKey],
            start: datetime.datetime, end: datetime.datetime) -> x509.Certificate:
    """A server certificate for ``name`` (a DNS name or an address), with the extensions a
    strict verifier (Python 3.13's default context) asks for, so only the case's one fault
    can make a client refuse it."""
    issuer_cert, issuer_key = issuer
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        san = x509.DNSName(name)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64])]))
            .issuer_name(issuer_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_key.public_key()), critical=False)
            .sign(issuer_key, hashes.SHA256()))


class PhaseWatch:
    """The session's phase now: the latest of its phase marks, read from its store
    (read-only) at most once per ``PHASE_POLL_S`` (marks reach the store from ``kidaudit
    mark``, the ``kidaudit.mark`` command, the magic host and the plan's signals alike), and
    of the plan's own timed phase events (``planned``: time, name) that have come."""

    def __init__(self, directory: str = "",
                 planned: Iterable[tuple[float, str]] = ()) -> None:
        self.path = Path(directory) / Store.FILE if directory else None
        self.planned = tuple(sorted(planned))
        self._db: sqlite3.Connection | None = None
        self._marked: tuple[float, str] = (float("-inf"), "")
        self._read_at = -PHASE_POLL_S

    def current(self) -> str:
        clock = time.monotonic()
        if self.path is not None and clock - self._read_at >= PHASE_POLL_S:
            self._read_at = clock
            self._marked = self._read()
        now = time.time()
        due = [(ts, name) for ts, name in self.planned if ts <= now]
        return max([self._marked, *due[-1:]])[1].casefold()

    def _read(self) -> tuple[float, str]:
        try:
            if self._db is None:
                if self.path is None or not self.path.is_file():
                    return self._marked
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                           check_same_thread=False, timeout=0.2)
            row = self._db.execute("SELECT ts, name FROM events WHERE action = 'phase' "
                                   "ORDER BY ts DESC, id DESC LIMIT 1").fetchone()
        except sqlite3.Error:
            return self._marked  # busy or not there yet: the last answer stands
        return (float(row[0]), str(row[1] or "")) if row else self._marked

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


class TlsProbe:
    """The probe's mitmproxy hooks (``KidAudit`` hands them over): ``tls_start_client``
    shows a case, ``tls_established_client`` / ``tls_failed_client`` record the outcome,
    ``tag`` marks the flows of an accepted case's connection."""

    def __init__(self, refused) -> None:
        """``refused(context, reason, probe)``: records a refused case (``TlsHooks``)."""
        self.refused = refused
        self.enabled = False
        self.only: frozenset[str] = frozenset()  # names probed; empty: every name
        self.phase = PhaseWatch()
        self.hosts = Hosts()
        self._certs: Certificates | None = None
        self._legacy: SSL.Context | None = None
        self._pending: dict[str, tuple[str, str]] = {}  # client id -> (host, case) shown
        self._accepted: dict[str, str] = {}  # client id -> case its handshake accepted

    def configure(self, enabled: bool, hosts: Iterable[str], session: str,
                  planned: Iterable[tuple[float, str]] = ()) -> None:
        """``planned``: the plan's timed phase events (time, name)."""
        self.enabled = enabled
        self.only = frozenset(h.strip().lower().rstrip(".") for h in hosts if h.strip())
        self.phase.close()
        self.phase = PhaseWatch(session, planned)

    def active(self) -> bool:
        return self.enabled or self.phase.current() == PHASE

    # -- the hooks ---------------------------------------------------------------------------
    def tls_start_client(self, data: tls.TlsData) -> None:
        """A case for this connection, if its host has one left: mitmproxy's own TLS setup
        (``tlsconfig``) is given the case's certificate, or replaced by a TLS 1.0-only one.
        A script's addon (``mitmdump -s``) runs before ``tlsconfig``: its setup is then
        made here first (it leaves a connection already made alone)."""
        if data.is_dtls or not isinstance(data.conn, connection.Client):
            return
        name = _name(data.context)
        if not name or (self.only and name.lower() not in self.only) or not self.active():
            return
        host = _host(data.context)
        case = self.hosts.next_case(host)
        if case is None:
            return
        try:
            if data.ssl_conn is None:
                ctx.master.addons.get("tlsconfig").tls_start_client(data)
            data.ssl_conn = self._show(case, name, data.ssl_conn)
        except Exception as e:  # noqa: BLE001 - the probe must never break the device's TLS
            logger.warning(f"kidaudit: TLS probe: {host}: {case} not shown ({e})")
            return
        self._pending[data.conn.id] = (host, case)

    def tls_established_client(self, data: tls.TlsData) -> None:
        shown = self._pending.pop(data.conn.id, None)
        if shown is None:
            return
        host, case = shown
        self._accepted[data.conn.id] = case
        self.hosts.record(host, case, ACCEPTED)
        logger.warning(f"kidaudit: TLS probe: {host}: the client ACCEPTED the {case} case")

    def tls_failed_client(self, data: tls.TlsData) -> bool:
        """True when the failed handshake was a probe case (recorded here, and no reason to
        pass the host through); False for an ordinary one, ``TlsHooks``'s to judge."""
        shown = self._pending.pop(data.conn.id, None)
        if shown is None:
            return False
        host, case = shown
        self.hosts.record(host, case, REFUSED)
        self.refused(data.context, REFUSED_REASON.format(case=case), case)
        return True

    def tag(self, flow: http.HTTPFlow | tcp.TCPFlow) -> None:
        """A flow on a connection that accepted a case carries the case."""
        case = self._accepted.get(flow.client_conn.id) if flow.client_conn else None
        if case is not None:
            flow.metadata[PROBE_META] = case

    def client_disconnected(self, client: connection.Client) -> None:
        self._pending.pop(client.id, None)
        self._accepted.pop(client.id, None)

    def done(self) -> None:
        self.phase.close()

    # -- the cases ---------------------------------------------------------------------------
    def _show(self, case: str, name: str, conn: SSL.Connection) -> SSL.Connection:
        certs = self._certificates()
        leaf = certs.leaf(case, name)
        if case == TLS10:
            legacy = SSL.Connection(self._legacy_context())
            legacy.set_app_data(conn.get_app_data())
            legacy.set_accept_state()
            conn = legacy
        _use(conn, leaf, certs.key)
        return conn

    def _certificates(self) -> Certificates:
        if self._certs is None:
            store = ctx.master.addons.get("tlsconfig").certstore
            self._certs = Certificates((_cryptography(store.default_ca), store.default_privatekey))
        return self._certs

    def _legacy_context(self) -> SSL.Context:
        """A server context that speaks TLS 1.0 and nothing newer, ALPN answered as
        mitmproxy answers it."""
        if self._legacy is None:
            from mitmproxy.addons.tlsconfig import alpn_select_callback

            context = SSL.Context(SSL.TLS_SERVER_METHOD)
            context.set_min_proto_version(SSL.TLS1_VERSION)
            context.set_max_proto_version(SSL.TLS1_VERSION)
            context.set_cipher_list(LEGACY_CIPHERS)
            context.set_alpn_select_callback(alpn_select_callback)
            self._legacy = context
        return self._legacy

    def prepare(self) -> None:
        """Make the keys now (at start-up), not on the device's first connection."""
        self._certificates()


def _use(conn: SSL.Connection, leaf: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
    """The leaf and its key on the connection (pyOpenSSL 24.3+ takes cryptography's objects;
    older ones want its own)."""
    try:
        conn.use_certificate(leaf)  # type: ignore[arg-type]
        conn.use_privatekey(key)  # type: ignore[arg-type]
    except TypeError:
        conn.use_certificate(crypto.X509.from_cryptography(leaf))
        conn.use_privatekey(crypto.PKey.from_cryptography_key(key))


def _cryptography(cert) -> x509.Certificate:
    """mitmproxy's ``Cert`` as cryptography's certificate (its method names vary)."""
    for attr in ("to_cryptography", "_cert"):
        value = getattr(cert, attr, None)
        value = value() if callable(value) else value
        if isinstance(value, x509.Certificate):
            return value
    raise TypeError(f"cannot read the lab CA certificate from {type(cert).__name__}")


def _name(context) -> str:
    """The name the certificate is for: the SNI, else the server's address."""
    if context.client.sni:
        return str(context.client.sni)
    address = context.server.address
    return str(address[0]) if address else ""


def _host(context) -> str:
    """The host's key, as ``TlsHooks`` names it: the SNI, else address:port."""
    if context.client.sni:
        return str(context.client.sni)
    address = context.server.address
    return f"{address[0]}:{address[1]}" if address else "?"
