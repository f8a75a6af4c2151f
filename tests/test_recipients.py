"""auditor/recipients.py: registrable domain, SDK identity, party and country, all offline."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from auditor.model import Recipient
from auditor.recipients import (
    COUNTRY_SOURCE,
    SDK_COLUMNS,
    SDK_CSV,
    SDK_TYPES,
    SOURCE_PREFIXES,
    Recipients,
    country_of,
    matches_domain,
    parse_sdk_table,
    registrable_domain,
    sdk_for,
    sdk_table,
)
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
    assert Recipients(first_party).attribute(host, ip) == expected


def test_attribution_is_remembered_per_host_and_address_within_a_bound(monkeypatch) -> None:
    recipients = Recipients((FIRST_PARTY,))
    monkeypatch.setattr(recipients, "MEMO", 4)
    pairs = [(f"h{i}.{FIRST_PARTY}", f"10.0.0.{i}") for i in range(10)] + [
        ("alog.umeng.com", ""), ("alog.umeng.com", "114.114.114.114")]
    first = [recipients.attribute(h, ip) for h, ip in pairs]
    again = [recipients.attribute(h, ip) for h, ip in pairs]
    assert again == first == [Recipients((FIRST_PARTY,)).attribute(h, ip) for h, ip in pairs]
    assert first[-1].country == "CN" and first[-2].country != "CN"  # the address counts
    assert len(recipients._memo) <= 4


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
    recipient = Recipients((FIRST_PARTY,)).attribute(host)
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
    assert sdk_for(host) is None
    recipient = Recipients((FIRST_PARTY,)).attribute(host)
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


def test_country_source_names_the_database() -> None:
    assert COUNTRY_SOURCE.startswith("iptocc ")
    assert "registry allocation data of " in COUNTRY_SOURCE


def _rows() -> list[dict[str, str]]:
    text = resources.files("auditor").joinpath(SDK_CSV).read_text(encoding="utf-8")
    reader = csv.DictReader(text.splitlines())
    assert tuple(reader.fieldnames or ()) == SDK_COLUMNS
    return list(reader)


def test_sdk_csv_rows_are_complete() -> None:
    rows = _rows()
    assert 80 <= len(rows) <= 150
    for row in rows:
        assert None not in row, row  # no extra columns
        assert all((row[col] or "").strip() for col in SDK_COLUMNS), row
        assert row["sdk_type"] in SDK_TYPES, row
        assert row["source"].startswith(SOURCE_PREFIXES), row
        assert "://" in row["source"], row
        assert row["domain"] == row["domain"].strip().lower().strip("."), row


def test_sdk_csv_lists_no_domain_twice() -> None:
    domains = [row["domain"] for row in _rows()]
    assert len(domains) == len(set(domains))
    assert len(sdk_table()) == len(domains)


@pytest.mark.parametrize("domain", [
    "umeng.com", "jpush.cn", "jiguang.cn", "getui.com", "igexin.com", "bugly.qq.com",
    "amap.com", "loc.map.baidu.com", "pingma.qq.com", "sensorsdata.cn", "talkingdata.com",
    "pangolin-sdk-toutiao.com", "push-api.cloud.huawei.com", "xmpush.xiaomi.com",
    "app-measurement.com", "firebaseinstallations.googleapis.com",
    "googleads.g.doubleclick.net", "appsflyer.com", "adjust.com", "graph.facebook.com",
    "mixpanel.com", "amplitude.com", "segment.io", "sentry.io", "shuzilm.cn", "xfyun.cn",
    "mob.com", "growingio.com", "e.kuaishou.com", "push.oppomobile.com",
    "api-push.vivo.com.cn", "imtt.qq.com", "hivoice.cn",
])
def test_sdk_csv_covers_the_issue_list(domain: str) -> None:
    assert domain in sdk_table()


HEADER = "domain,organization,sdk,sdk_type,source\n"
ROW = "x.example,X,X SDK,push,vendor site: https://x.example/\n"


@pytest.mark.parametrize(("text", "message"), [
    ("domain,organization\n", "header"),
    (HEADER + ROW.replace(",push,", ",,"), "line 2: every column"),
    (HEADER + ROW.replace(",push,", ",tracking,"), "sdk_type 'tracking'"),
    (HEADER + "x.example,X,X SDK,push,a blog\n", "source must start"),
    (HEADER + ROW + ROW.replace("x.example,", "X.Example.,"),
     "line 3: domain 'x.example' is listed twice"),
])
def test_bad_sdk_table_names_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="sdks.csv") as err:
        parse_sdk_table(text)
    assert message in str(err.value)
