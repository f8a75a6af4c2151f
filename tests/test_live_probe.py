"""The TLS probe's parts (auditor/live/probe.py) without a network: the cases in order per
host, bounded; each case's certificate; the phase read from the store; and the hooks in
mitmproxy's own harness (a refused case is never pinning). Live runs: test_e2e_probe.py."""

from __future__ import annotations

import datetime
import json
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from mitmproxy import tls
from mitmproxy.addons.tlsconfig import TlsConfig
from mitmproxy.exceptions import OptionsError
from mitmproxy.proxy.context import Context
from mitmproxy.test import taddons, tflow
from OpenSSL import SSL

from auditor.live.addon import KidAudit
from auditor.live.probe import (
    PHASE,
    WRONG_NAME,
    Certificates,
    Hosts,
    PhaseWatch,
    _ca_cert,
    _cryptography,
)
from auditor.model import ConsentEvent
from auditor.rules.transport_rules import PROBE_CASES
from auditor.sources.mitm import PROBE_META
from auditor.store import Store
from tests.factories import WATCH_PROFILE_YAML
from tests.test_live_addon import _hook, _observations


def test_a_host_gets_each_case_once_in_order_then_normal_interception() -> None:
    hosts = Hosts()
    assert [hosts.next_case("a.example") for _ in range(6)] == [*PROBE_CASES, None, None]
    assert hosts.next_case("b.example") == PROBE_CASES[0]  # each host its own cases


def test_hosts_tracked_are_bounded_the_oldest_dropped_first() -> None:
    hosts = Hosts(limit=3)
    for name in ("a", "b", "c", "d"):
        hosts.next_case(name)
    hosts.record("d", "untrusted-ca", "refused")
    assert len(hosts) == 3 and hosts.attempts("a") == []
    assert hosts.attempts("d") == [("untrusted-ca", "refused")]
    assert hosts.next_case("a") == PROBE_CASES[0]  # forgotten: probed again


LAB_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
LAB = (_ca_cert(LAB_KEY), LAB_KEY)
CERTS = Certificates(LAB)
NOW = datetime.datetime.now(datetime.UTC)


@pytest.mark.parametrize(("case", "name", "signer", "san", "expired"), [
    ("untrusted-ca", "api.example", "rogue", x509.DNSName("api.example"), False),
    ("wrong-host", "api.example", "lab", x509.DNSName(WRONG_NAME), False),
    ("expired", "api.example", "lab", x509.DNSName("api.example"), True),
    ("tls1.0", "api.example", "lab", x509.DNSName("api.example"), False),
    ("expired", "203.0.113.10", "lab", x509.IPAddress(ip_address("203.0.113.10")), True),
])
def test_each_case_has_the_certificate_that_tests_one_thing(case, name, signer, san,
                                                            expired) -> None:
    leaf = CERTS.leaf(case, name)
    issuer = CERTS.rogue[0] if signer == "rogue" else LAB[0]
    assert leaf.issuer == issuer.subject
    issuer.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(),
                               leaf.signature_hash_algorithm)
    assert list(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) \
        == [san]
    assert (leaf.not_valid_after_utc < NOW) is expired
    assert CERTS.leaf(case, name) is leaf  # made once per host and case


def test_the_throwaway_ca_is_not_the_lab_ca_and_is_made_per_probe() -> None:
    other = Certificates(LAB)
    assert CERTS.rogue[0].subject == other.rogue[0].subject
    assert CERTS.rogue[0].public_key() != other.rogue[0].public_key() != LAB[0].public_key()


@pytest.mark.parametrize(("phases", "current"), [
    ((), ""), (("setup",), "setup"), (("setup", PHASE), PHASE), ((PHASE, "idle"), "idle"),
])
def test_the_phase_is_the_sessions_latest_phase_mark(tmp_path: Path, phases, current) -> None:
    store = Store(tmp_path)
    for i, name in enumerate(phases):
        store.add_event(ConsentEvent(100.0 + i, "phase", name=name, source="cli"))
    store.close()
    watch = PhaseWatch(str(tmp_path))
    assert watch.current() == current
    watch.close()
    assert PhaseWatch(str(tmp_path / "none")).current() == ""  # no store yet: no phase


@pytest.mark.parametrize(("marked", "planned", "current"), [
    ((), ((-60.0, PHASE),), PHASE),  # the plan's tls-probe phase has begun
    ((), ((+3600.0, PHASE),), ""),  # not yet
    ((), ((-120.0, PHASE), (-60.0, "idle")), "idle"),  # and ended with the next phase
    (((-30.0, "idle"),), ((-60.0, PHASE),), "idle"),  # a later mark ends it too
    (((-90.0, "idle"),), ((-60.0, PHASE),), PHASE),
])
def test_the_plans_timed_phases_count_with_the_marks(tmp_path: Path, marked, planned,
                                                     current) -> None:
    import time

    now = time.time()
    store = Store(tmp_path)
    for ago, name in marked:
        store.add_event(ConsentEvent(now + ago, "phase", name=name, source="cli"))
    store.close()
    watch = PhaseWatch(str(tmp_path), [(now + at, name) for at, name in planned])
    assert watch.current() == current
    watch.close()


# -- the hooks in mitmproxy's harness ------------------------------------------------------------

@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(WATCH_PROFILE_YAML)
    return path


def _tls_data(tctx, sni: str) -> tls.TlsData:
    client = tflow.tclient_conn()
    client.sni = sni
    context = Context(client, tctx.options)
    context.server = tflow.tserver_conn()
    data = tls.TlsData(client, context)
    data.ssl_conn = SSL.Connection(SSL.Context(SSL.TLS_SERVER_METHOD))  # as tlsconfig made it
    return data


def test_a_refused_case_is_recorded_and_never_taken_for_pinning(tmp_path, profile) -> None:
    addon, config = KidAudit(), TlsConfig()
    with taddons.context(addon, config) as tctx:
        tctx.configure(config, confdir=str(tmp_path / "conf"))
        tctx.configure(addon, kidaudit_profile=str(profile), kidaudit_session=str(
            tmp_path / "s"), kidaudit_worker=False, kidaudit_tls_probe=True)
        addon.running()
        for _ in PROBE_CASES:
            data = _tls_data(tctx, "api.acme-watch.example")
            _hook(addon, "tls_start_client", data)
            assert data.ssl_conn.get_certificate() is not None  # a case's certificate
            _hook(addon, "tls_failed_client", data)
        hello = tls.ClientHelloData(_tls_data(tctx, "api.acme-watch.example").context,
                                    tls.ClientHello(_hello()))
        _hook(addon, "tls_clienthello", hello)
        assert not hello.ignore_connection  # refused probe cases are not pinning
        after = _tls_data(tctx, "api.acme-watch.example")
        _hook(addon, "tls_start_client", after)
        assert after.ssl_conn.get_certificate() is None  # mitmproxy's own setup, untouched
        addon.done()
    txs = [o.transmission for o in _observations(tmp_path / "s")]
    assert [(t.transport, t.inspected, t.probe) for t in txs] == [
        ("tls", False, case) for case in PROBE_CASES]
    doc = json.loads((tmp_path / "s" / "findings.json").read_text())
    assert doc["findings"] == []  # neither a probe finding nor uninspected traffic
    assert all(u["reason"].startswith("TLS probe") for u in doc["coverage"]["uninspected"])


def test_an_accepted_case_tags_the_flows_of_its_connection(tmp_path, profile) -> None:
    addon, config = KidAudit(), TlsConfig()
    with taddons.context(addon, config) as tctx:
        tctx.configure(config, confdir=str(tmp_path / "conf"))
        tctx.configure(addon, kidaudit_tls_probe=True)
        data = _tls_data(tctx, "api.acme-watch.example")
        _hook(addon, "tls_start_client", data)
        _hook(addon, "tls_established_client", data)
        flow = tflow.tflow(client_conn=data.conn)
        other = tflow.tflow()
        for f in (flow, other):
            _hook(addon, "request", f)
        assert flow.metadata[PROBE_META] == PROBE_CASES[0] and PROBE_META not in other.metadata
        assert addon.probe.hosts.attempts("api.acme-watch.example") == [
            (PROBE_CASES[0], "accepted")]
        _hook(addon, "client_disconnected", data.conn)
        later = tflow.tflow(client_conn=data.conn)
        _hook(addon, "request", later)
        assert PROBE_META not in later.metadata


@pytest.mark.parametrize(("options", "probed"), [
    ({}, False),
    ({"kidaudit_tls_probe": True}, True),
    ({"kidaudit_tls_probe": True, "kidaudit_tls_probe_hosts": ["other.example"]}, False),
    ({"kidaudit_tls_probe": True, "kidaudit_tls_probe_hosts": ["API.acme-watch.example."]},
     True),
])
def test_the_probe_runs_with_the_option_on_the_names_listed(tmp_path, options, probed) -> None:
    addon, config = KidAudit(), TlsConfig()
    with taddons.context(addon, config) as tctx:
        tctx.configure(config, confdir=str(tmp_path / "conf"))
        tctx.configure(addon, **options)
        data = _tls_data(tctx, "api.acme-watch.example")
        before = data.ssl_conn
        _hook(addon, "tls_start_client", data)
        assert (data.ssl_conn.get_certificate() is not None) is probed
        assert data.ssl_conn is before  # a certificate case keeps mitmproxy's connection


def test_the_probe_runs_during_a_tls_probe_phase_without_the_option(tmp_path, profile) -> None:
    session = tmp_path / "s"
    addon, config = KidAudit(), TlsConfig()
    with taddons.context(addon, config) as tctx:
        tctx.configure(config, confdir=str(tmp_path / "conf"))
        tctx.configure(addon, kidaudit_profile=str(profile), kidaudit_session=str(session),
                       kidaudit_worker=False)
        addon.running()
        store = Store.open_existing(session)
        store.add_event(ConsentEvent(1.0, "phase", name=PHASE, source="cli"))
        store.close()
        data = _tls_data(tctx, "api.acme-watch.example")
        _hook(addon, "tls_start_client", data)
        assert data.ssl_conn.get_certificate() is not None
        addon.done()


@pytest.mark.parametrize("hosts", [[""], ["https://api.example/"]])
def test_a_bad_probe_host_is_one_clear_option_error(hosts) -> None:
    addon = KidAudit()
    with taddons.context(addon) as tctx, pytest.raises(OptionsError,
                                                       match="kidaudit_tls_probe_hosts"):
        tctx.configure(addon, kidaudit_tls_probe_hosts=hosts)


def _hello() -> bytes:
    from tests.test_payload import client_hello

    return client_hello("api.acme-watch.example", ciphers=(0x1301,), record=False)[4:]


def test_a_script_addon_running_before_tlsconfig_still_probes(tmp_path) -> None:
    """Under ``mitmdump -s`` the addon's hook runs before mitmproxy's ``tlsconfig``: no
    connection is made yet, so the probe has ``tlsconfig`` make it, then shows its case;
    ``tlsconfig`` leaves a connection already made alone."""
    addon, config = KidAudit(), TlsConfig()
    with taddons.context(addon, config) as tctx:
        tctx.configure(config, confdir=str(tmp_path / "conf"))
        tctx.configure(addon, kidaudit_tls_probe=True)
        data = _tls_data(tctx, "api.acme-watch.example")
        data.ssl_conn = None
        _hook(addon, "tls_start_client", data)
        made = data.ssl_conn
        assert made is not None and made.get_certificate() is not None
        config.tls_start_client(data)
        assert data.ssl_conn is made
        cert = made.get_certificate().to_cryptography()
        assert cert.issuer != _cryptography(config.certstore.default_ca).subject  # untrusted


def test_a_tls_probe_phase_in_the_plan_runs_the_probe(tmp_path, profile) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text('events:\n  - {at: "2020-01-01T00:00:00Z", action: phase, '
                    'name: tls-probe}\n')
    addon, config = KidAudit(), TlsConfig()
    with taddons.context(addon, config) as tctx:
        tctx.configure(config, confdir=str(tmp_path / "conf"))
        tctx.configure(addon, kidaudit_profile=str(profile), kidaudit_consent=str(plan),
                       kidaudit_session=str(tmp_path / "s"), kidaudit_worker=False)
        data = _tls_data(tctx, "api.acme-watch.example")
        _hook(addon, "tls_start_client", data)
        assert data.ssl_conn.get_certificate() is not None
