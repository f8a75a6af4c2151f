"""auditor/recipients.py: registrable domain, SDK identity, party and country, all offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from auditor.data import load_sdks
from auditor.model import Organisation, Recipient
from auditor.recipients import (
    Recipients,
    country_of,
    matches_domain,
    parties,
    registrable_domain,
    sdk_for,
)
from tests.factories import FIRST_PARTY, MAKER_BLOCK, MAKER_BLOCK6, MAKER_ORG

SDKS = load_sdks()
ROOT = Path(__file__).resolve().parent.parent


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


AMAP = dict(organization="AutoNavi", sdk="Amap (AutoNavi) maps and location",
            sdk_type="location")


@pytest.mark.parametrize(("first_party", "host", "ip", "expected"), [
    pytest.param((FIRST_PARTY,), "api.acme-watch.example", "",
                 Recipient("acme-watch.example", party="first"), id="first-subdomain"),
    pytest.param((FIRST_PARTY,), "acme-watch.example", "",
                 Recipient("acme-watch.example", party="first"), id="first-apex"),
    pytest.param(("Acme-Watch.Example",), "API.acme-watch.example", "",
                 Recipient("acme-watch.example", party="first"), id="first-any-case"),
    pytest.param((FIRST_PARTY,), "m.amap.com", "",
                 Recipient("amap.com", party="third", **AMAP), id="third-sdk"),
    pytest.param((FIRST_PARTY,), "evilacme-watch.example", "",
                 Recipient("evilacme-watch.example", party="third"), id="look-alike-is-third"),
    pytest.param((FIRST_PARTY,), "", "203.0.113.10",
                 Recipient("203.0.113.10", party="third"), id="bare-ip-third"),
    pytest.param((), "m.amap.com", "",
                 Recipient("amap.com", party="unknown", **AMAP), id="no-first-party-list-unknown"),
    pytest.param((FIRST_PARTY,), "", "", Recipient("", party="unknown"), id="nothing-unknown"),
    pytest.param(("amap.com",), "m.amap.com", "",
                 Recipient("amap.com", party="first", **AMAP), id="profile-wins-over-sdk-list"),
    pytest.param((FIRST_PARTY,), "api.acme-watch.example", "8.8.8.8",
                 Recipient("acme-watch.example", party="first", country="US"),
                 id="first-party-on-a-foreign-cloud"),
    pytest.param((FIRST_PARTY,), "", "114.114.114.114",
                 Recipient("114.114.114.114", party="third", country="CN"), id="bare-ip-country"),
    pytest.param((FIRST_PARTY,), "114.114.114.114", "",
                 Recipient("114.114.114.114", party="third", country="CN"),
                 id="ip-literal-host-country"),
])
def test_attribute(first_party: tuple[str, ...], host: str, ip: str,
                   expected: Recipient) -> None:
    assert Recipients(first_party, SDKS).attribute(host, ip) == expected


MAKER = (FIRST_PARTY, MAKER_BLOCK, MAKER_BLOCK6)


@pytest.mark.parametrize(("first_party", "host", "ip", "party"), [
    pytest.param(MAKER, "", "203.0.113.10", "first", id="ip-in-v4-block"),
    pytest.param(MAKER, "203.0.113.10", "", "first", id="ip-literal-host-in-block"),
    pytest.param(MAKER, "", "203.0.114.1", "third", id="ip-outside-block"),
    pytest.param(MAKER, "", "2001:db8::7", "first", id="ip-in-v6-block"),
    pytest.param(MAKER, "[2001:db8::7]", "", "first", id="bracketed-v6-host"),
    pytest.param(MAKER, "", "::ffff:203.0.113.10", "first", id="v4-mapped-in-v4-block"),
    pytest.param(MAKER, "", "2001:db9::1", "third", id="ip-outside-v6-block"),
    pytest.param((FIRST_PARTY, "203.0.113.10"), "", "203.0.113.10", "first", id="one-address"),
    pytest.param((FIRST_PARTY, "203.0.113.10"), "", "203.0.113.11", "third",
                 id="the-next-address-is-not"),
    pytest.param(("watch.acme-watch.example",), "watch.acme-watch.example", "", "first",
                 id="hostname"),
    pytest.param(("watch.acme-watch.example",), "cdn.acme-watch.example", "", "third",
                 id="hostname-not-its-domain"),
    pytest.param((MAKER_BLOCK,), "t.example", "203.0.113.10", "first",
                 id="named-host-at-a-maker-address"),
    pytest.param((MAKER_BLOCK,), "", "198.51.100.1", "third", id="only-a-block-declared"),
])
def test_first_party_by_address(first_party: tuple[str, ...], host: str, ip: str,
                                party: str) -> None:
    """Cellular watches reach their maker by bare IP: a profile's addresses and CIDR blocks
    make such a recipient first party (issue 15, item 1)."""
    assert Recipients(first_party, SDKS).attribute(host, ip).party == party


ACME = Organisation(MAKER_ORG, (MAKER_BLOCK, MAKER_BLOCK6), (FIRST_PARTY,))
CLOUD = Organisation("Lab Cloud", ("198.51.100.0/24",))
LOCAL_MAPS = Organisation("Local Maps", (), ("amap.com",))


@pytest.mark.parametrize(("first_party", "host", "ip", "expected"), [
    pytest.param((FIRST_PARTY,), "", "203.0.113.10",
                 Recipient("203.0.113.10", MAKER_ORG, party="first"),
                 id="org-owning-a-first-party-domain-makes-its-block-first"),
    pytest.param((FIRST_PARTY,), "api.acme-watch.example", "",
                 Recipient(FIRST_PARTY, MAKER_ORG, party="first"), id="org-by-domain"),
    pytest.param((FIRST_PARTY,), "", "2001:db8::1",
                 Recipient("2001:db8::1", MAKER_ORG, party="first"), id="org-by-v6-block"),
    pytest.param((FIRST_PARTY,), "", "198.51.100.9",
                 Recipient("198.51.100.9", "Lab Cloud", party="third"),
                 id="org-for-a-third-party-block"),
    pytest.param((FIRST_PARTY,), "restapi.amap.com", "",
                 Recipient("amap.com", "Local Maps", party="third",
                           sdk="Amap Web Service API", sdk_type="location"),
                 id="profile-org-outranks-sdk-table-org"),
    pytest.param((FIRST_PARTY,), "", "192.0.2.1", Recipient("192.0.2.1", party="third"),
                 id="no-org-for-other-addresses"),
])
def test_profile_organisations_attribute_their_addresses(
        first_party: tuple[str, ...], host: str, ip: str, expected: Recipient) -> None:
    recipients = Recipients(first_party, SDKS, organisations=(ACME, CLOUD, LOCAL_MAPS))
    assert recipients.attribute(host, ip) == expected


@pytest.mark.parametrize(("name", "expected"), [
    (FIRST_PARTY, True), ("api.acme-watch.example", True), ("amap.com", False),
    ("evilacme-watch.example", False),
])
def test_parties_name_the_maker_by_its_domains(name: str, expected: bool) -> None:
    assert parties((FIRST_PARTY, MAKER_BLOCK), ()).names_maker(name) is expected


def test_attribution_remembered_within_a_small_bound_is_the_same_answer() -> None:
    """Past its ceiling the memo forgets; what is asked again is worked out again, the same."""
    recipients = Recipients((FIRST_PARTY,), SDKS, memo=4)
    pairs = [(f"h{i}.{FIRST_PARTY}", f"10.0.0.{i}") for i in range(10)] + [
        ("alog.umeng.com", ""), ("alog.umeng.com", "114.114.114.114")]
    first = [recipients.attribute(h, ip) for h, ip in pairs]
    again = [recipients.attribute(h, ip) for h, ip in pairs]
    fresh = [Recipients((FIRST_PARTY,), SDKS).attribute(h, ip) for h, ip in pairs]
    assert again == first == fresh
    assert first[-1].country == "CN" and first[-2].country != "CN"  # the address counts


@pytest.mark.parametrize(("host", "organization", "sdk", "sdk_type"), [
    ("alog.umeng.com", "Umeng", "Umeng+ (U-App / U-Push / U-APM)", "analytics"),
    ("ULOGS.umeng.com.", "Umeng", "Umeng+ (U-App / U-Push / U-APM)", "analytics"),
    ("umeng.com", "Umeng", "Umeng+ (U-App / U-Push / U-APM)", "analytics"),
    ("s.jpush.cn", "Aurora Mobile", "JPush", "push"),
    ("sdk.open.api.igexin.com", "Getui", "Getui push (former igexin brand)",
     "push"),
    ("android.bugly.qq.com", "Tencent", "Bugly", "crash"),
    ("restapi.amap.com", "AutoNavi", "Amap Web Service API", "location"),  # longest wins
    ("apilocate.amap.com", "AutoNavi", "Amap Location SDK", "location"),
    ("firebaseinstallations.googleapis.com", "Google", "Firebase Installations", "device-id"),
    ("app-measurement.com", "Google", "Google Analytics for Firebase", "analytics"),
    ("googleads.g.doubleclick.net", "Google", "Google AdMob", "advertising"),  # longest wins
    ("stats.g.doubleclick.net", "Google", "Google DoubleClick / Ad Manager", "advertising"),
    ("graph.facebook.com", "Meta", "Facebook SDK (App Events / Graph API)", "analytics"),
    ("www.facebook.com", "Meta", "Facebook SDK (login / share)", "social"),
    ("o123.ingest.sentry.io", "Sentry", "Sentry SDK", "crash"),
    ("vop.baidu.com", "Baidu", "Baidu Speech Recognition", "speech"),
    ("events.mapbox.com", "Mapbox", "Mapbox telemetry", "analytics"),  # longest wins
    ("api.mapbox.com", "Mapbox", "Mapbox Maps / location", "location"),
])
def test_sdk_attribution(host: str, organization: str, sdk: str, sdk_type: str) -> None:
    recipient = Recipients((FIRST_PARTY,), SDKS).attribute(host)
    assert (recipient.organization, recipient.sdk, recipient.sdk_type) == (
        organization, sdk, sdk_type)
    assert recipient.party == "third"


@pytest.mark.parametrize("host", [
    "weixin.qq.com",  # qq.com itself is not listed: only its SDK endpoints are
    "www.baidu.com",
    "xumeng.com",  # a look-alike is not a subdomain
    "umeng.com.evil.example",
    "api.acme-watch.example",
    "203.0.113.10",
    "",
])
def test_unknown_hosts_have_no_sdk(host: str) -> None:
    assert sdk_for(host, SDKS) is None
    recipient = Recipients((FIRST_PARTY,), SDKS).attribute(host)
    assert (recipient.organization, recipient.sdk, recipient.sdk_type) == ("", "", "")


# What iptocc's shipped registry data says (checked against iptocc 3.3.170): the registered
# country of the block, not where an anycast resolver answers from (1.1.1.1 is APNIC's
# research block, registered in AU, served by Cloudflare worldwide).
@pytest.mark.parametrize(("ip", "country"), [
    ("1.1.1.1", "AU"),
    ("8.8.8.8", "US"),
    ("114.114.114.114", "CN"),
    ("223.5.5.5", "CN"),
    ("119.29.29.29", "CN"),
    ("2001:4860:4860::8888", "US"),
    ("2400:3200::1", "CN"),
    ("[2001:4860:4860::8888]", "US"),
    ("::ffff:8.8.8.8", "US"),  # IPv4-mapped IPv6: looked up as the IPv4 address
    (" 8.8.8.8 ", "US"),
])
def test_country_of_public_ip(ip: str, country: str) -> None:
    assert country_of(ip) == country


@pytest.mark.parametrize("ip", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1",  # private
    "127.0.0.1", "::1",  # loopback
    "169.254.1.1", "fe80::1", "fe80::1%eth0",  # link-local
    "100.64.0.1",  # carrier-grade NAT
    "fc00::1", "fd12:3456::1",  # unique local
    "192.0.2.1", "198.51.100.1", "203.0.113.10", "2001:db8::1",  # documentation
    "224.0.0.1", "ff02::1",  # multicast
    "240.0.0.1", "255.255.255.255", "0.0.0.0", "::",  # reserved / unspecified
    "::ffff:192.168.1.1",  # a private IPv4 inside IPv6
    "not-an-ip", "acme-watch.example", "",
])
def test_country_of_non_public_is_empty(ip: str) -> None:
    assert country_of(ip) == ""


def test_importing_attribution_reads_no_file() -> None:
    """The SDK table and the country database's name are the edge's to read (auditor.data):
    the pure module opens nothing but its own code."""
    probe = ("import sys\n"
             "opened = []\n"
             "sys.addaudithook(lambda event, args: event == 'open' and opened.append(args[0]))\n"
             "import auditor.recipients\n"
             "print([p for p in opened if not str(p).endswith(('.py', '.pyc', '.zip'))])\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
