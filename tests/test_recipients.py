"""auditor/recipients.py: registrable domain (offline public-suffix list) and party."""

from __future__ import annotations

import pytest

from auditor.model import Recipient
from auditor.recipients import Recipients, matches_domain, registrable_domain
from tests.factories import FIRST_PARTY


@pytest.mark.parametrize(("host", "expected"), [
    ("api.acme-watch.example", "acme-watch.example"),
    ("acme-watch.example", "acme-watch.example"),
    ("API.Acme-Watch.Example.", "acme-watch.example"),
    ("a.b.example.co.uk", "example.co.uk"),
    ("restapi.amap.com", "amap.com"),
    ("x.y.lan", "y.lan"),
    ("localhost", "localhost"),
    ("203.0.113.10", "203.0.113.10"),
    ("2001:db8::1", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("", ""),
])
def test_registrable_domain(host: str, expected: str) -> None:
    assert registrable_domain(host) == expected


@pytest.mark.parametrize(("host", "domain", "expected"), [
    ("acme-watch.example", "acme-watch.example", True),
    ("api.acme-watch.example", "acme-watch.example", True),
    ("API.ACME-WATCH.EXAMPLE.", "acme-watch.example", True),
    ("evilacme-watch.example", "acme-watch.example", False),
    ("acme-watch.example.evil.example", "acme-watch.example", False),
    ("acme-watch.example", "api.acme-watch.example", False),
])
def test_matches_domain(host: str, domain: str, expected: bool) -> None:
    assert matches_domain(host, domain) is expected


@pytest.mark.parametrize(("first_party", "host", "ip", "expected"), [
    pytest.param((FIRST_PARTY,), "api.acme-watch.example", "",
                 Recipient("acme-watch.example", party="first"), id="first-subdomain"),
    pytest.param((FIRST_PARTY,), "acme-watch.example", "",
                 Recipient("acme-watch.example", party="first"), id="first-apex"),
    pytest.param(("Acme-Watch.Example",), "API.acme-watch.example", "",
                 Recipient("acme-watch.example", party="first"), id="first-any-case"),
    pytest.param((FIRST_PARTY,), "restapi.amap.com", "",
                 Recipient("amap.com", party="third"), id="third"),
    pytest.param((FIRST_PARTY,), "evilacme-watch.example", "",
                 Recipient("evilacme-watch.example", party="third"), id="look-alike-is-third"),
    pytest.param((FIRST_PARTY,), "", "203.0.113.10",
                 Recipient("203.0.113.10", party="third"), id="bare-ip-third"),
    pytest.param((), "restapi.amap.com", "",
                 Recipient("amap.com", party="unknown"), id="no-first-party-list-unknown"),
    pytest.param((FIRST_PARTY,), "", "", Recipient("", party="unknown"), id="nothing-unknown"),
])
def test_attribute(first_party: tuple[str, ...], host: str, ip: str,
                   expected: Recipient) -> None:
    assert Recipients(first_party).attribute(host, ip) == expected
