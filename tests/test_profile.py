"""Device profile and consent plan loading: the valid contract examples, and one exact line per
mistake (DESIGN.md "Contracts"; STYLE.md 9: errors a person can act on)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.categories import CATEGORIES
from auditor.detect import patterns
from auditor.model import (
    Cell,
    ConsentEvent,
    ConsentPlan,
    Contact,
    Credential,
    Device,
    Disclosure,
    Location,
    Organisation,
    Profile,
    Signal,
)
from auditor.profile import ConfigError, load_consent_plan, load_profile
from auditor.sources.pcap import _ip6

# An IPv4-mapped IPv6 address is written the same on every Python (auditor.addresses), and
# as a capture's packets are, so the two compare equal.
MAPPED_AS_IN_A_PCAP = "::ffff:10.0.0.1"
assert _ip6(ipaddress.IPv6Address(MAPPED_AS_IN_A_PCAP).packed) == MAPPED_AS_IN_A_PCAP

# The DESIGN.md examples, filled in with the values a lab would seed.
PROFILE = """\
device: {name: "Acme Kids Watch K2", kind: smartwatch, firmware: "1.4.2", ca_trusted: false,
         ip: ["192.168.50.23", "FE80:0:0::1"]}
identifiers: {imei: 860000000000009, imsi: 460001234567890, iccid: 8986001234567890120F,
              serial: AK2-0001, mac: "aa:bb:cc:dd:ee:ff", android_id: 9774d56d682e549c,
              advertising_id: "38400000-8cf0-11bd-b23e-10b96e40000d",
              phone: +8613800138000}
child: {name: 小明, birthdate: 2017-03-09, school: "No. 1 Primary", email: xm@example.cn,
        national_id: "11010520170309001X", address: "1 Zhongguancun St"}
location: {lat: 39.98312, lon: 116.30791, cell: [{mcc: 460, mnc: 0, lac: 4286, cid: 28711}],
           wifi: ["aa:bb:cc:dd:ee:01", "aa-bb-cc-dd-ee-02"]}
contacts: [{name: Mum, phone: "+86 138-0013-8001"}]
credentials: [{username: xiaoming, password: 0123}]
first_party: [Acme-Watch.example]
jurisdiction: cn
"""

PLAN = """\
disclosed:                                   # from the privacy notice
  - recipient: acme-watch.example            # a domain or an organisation name
    categories: [location.precise, identifier.imei, contacts.entry]
    purpose: "family locator service"
  - recipient: amap.com
    categories: [location]
    purpose: "positioning"
events:                                      # ISO 8601 times; optional
  - {at: "2026-11-28T10:15:00Z", action: grant, categories: all-disclosed,
     separate: [location.precise]}
  - {at: "2026-11-28T10:40:00Z", action: withdraw, categories: [location.precise]}
  - {at: 2026-11-28T10:20:00Z, action: phase, name: idle}
  - {at: 2026-11-28T18:10:00+08:00, action: refuse, categories: media, recipients: ads.example}
signals:                                     # traffic that itself is an event
  - {filter: "~u /api/privacy/agree & ~m POST", action: grant, categories: all-disclosed}
limits:                                      # optional thresholds for frequency rules
  min_interval_s: {location.precise: 60}
withdrawal_grace_s: 30
"""


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> str:
    """Writes the file and returns its name relative to the cwd, as a user would give it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text, encoding="utf-8")
    return name


# --------------------------------------------------------------------------- valid files


def test_profile_example_loads_as_written(tmp_path, monkeypatch):
    profile = load_profile(_write(tmp_path, monkeypatch, "profile.yaml", PROFILE))
    assert profile == Profile(
        device=Device(name="Acme Kids Watch K2", kind="smartwatch", firmware="1.4.2",
                      ca_trusted=False, ip=("192.168.50.23", "fe80::1")),
        identifiers={
            "imei": ("860000000000009",),
            "imsi": ("460001234567890",),
            "iccid": ("8986001234567890120F",),
            "serial": ("AK2-0001",),
            "mac": ("aa:bb:cc:dd:ee:ff",),
            "android_id": ("9774d56d682e549c",),
            "advertising_id": ("38400000-8cf0-11bd-b23e-10b96e40000d",),
            "phone": ("+8613800138000",),
        },
        child={
            "name": ("小明",),
            "birthdate": ("2017-03-09",),
            "school": ("No. 1 Primary",),
            "email": ("xm@example.cn",),
            "national_id": ("11010520170309001X",),
            "address": ("1 Zhongguancun St",),
        },
        location=Location(lat=39.98312, lon=116.30791,
                          cell=(Cell(mcc=460, mnc=0, lac=4286, cid=28711),),
                          wifi=("aa:bb:cc:dd:ee:01", "aa-bb-cc-dd-ee-02")),
        contacts=(Contact(name="Mum", phone="+86 138-0013-8001"),),
        credentials=(Credential(username="xiaoming", password="0123"),),  # not YAML-octal 83
        first_party=("acme-watch.example",),
        jurisdiction="CN",
        source="profile.yaml",
    )


def test_empty_mapping_is_a_profile_with_defaults(tmp_path, monkeypatch):
    profile = load_profile(_write(tmp_path, monkeypatch, "p.yaml", "{}\n"))
    assert profile == Profile(source="p.yaml")
    assert profile.device.ca_trusted is True


@pytest.mark.parametrize(("text", "attribute", "expected"), [
    # a list of values for one key, and YAML that would otherwise change the value
    ("identifiers: {imei: [860000000000009, '860000000000017']}", "identifiers",
     {"imei": ("860000000000009", "860000000000017")}),
    ("identifiers: {imei: 012345678901237}", "identifiers", {"imei": ("012345678901237",)}),
    ("identifiers: {mac: [aabbccddeeff, aabb.ccdd.eeff, AA-BB-CC-DD-EE-FF]}", "identifiers",
     {"mac": ("aabbccddeeff", "aabb.ccdd.eeff", "AA-BB-CC-DD-EE-FF")}),
    ("identifiers: {phone: '(010) 6275-1234'}", "identifiers", {"phone": ("(010) 6275-1234",)}),
    ("jurisdiction: NO", "jurisdiction", "NO"),  # Norway, not YAML's false
    ("first_party: Acme.Example.", "first_party", ("acme.example",)),
    # domains, hostnames, addresses and CIDR blocks, addresses in canonical text
    ("first_party: [watch.acme.example, 203.0.113.7, 198.51.100.0/24, '2001:DB8::/32',\n"
     "              '[2001:db8::1]']", "first_party",
     ("watch.acme.example", "203.0.113.7", "198.51.100.0/24", "2001:db8::/32", "2001:db8::1")),
    ("organisations:\n  - {name: ' Acme Watch Co. ', addresses: [203.0.113.0/24, "
     "'2001:db8::/32'],\n     domains: acme-watch.example}", "organisations",
     (Organisation("Acme Watch Co.", ("203.0.113.0/24", "2001:db8::/32"),
                   ("acme-watch.example",)),)),
    ("organisations: [{name: Lab Cloud, addresses: 192.0.2.10}]", "organisations",
     (Organisation("Lab Cloud", ("192.0.2.10",)),)),
    ("device: {firmware: 1.10}", "device", Device(firmware="1.10")),
    ("device: {ip: '::ffff:0a00:0001'}", "device", Device(ip=(MAPPED_AS_IN_A_PCAP,))),
    ("location: {lat: '-33.9', lon: 0, cell: [{mcc: 460, mnc: 01, tac: 17, cid: 5}],\n"
     "           wifi: '00:11:22:33:44:55'}", "location",
     Location(lat=-33.9, lon=0.0, cell=(Cell(mcc=460, mnc=1, lac=17, cid=5),),
              wifi=("00:11:22:33:44:55",))),
    ("location: {lat: 1, lon: 2, cell: [{mcc: 460, mnc: 08, lac: 1, cid: 2}]}", "location",
     Location(lat=1.0, lon=2.0, cell=(Cell(mcc=460, mnc=8, lac=1, cid=2),))),
])
def test_profile_values_keep_their_text(tmp_path, monkeypatch, text, attribute, expected):
    profile = load_profile(_write(tmp_path, monkeypatch, "profile.yaml", text + "\n"))
    assert getattr(profile, attribute) == expected


def test_plan_example_loads_sorted_and_expanded(tmp_path, monkeypatch):
    plan = load_consent_plan(_write(tmp_path, monkeypatch, "plan.yaml", PLAN))
    assert plan == ConsentPlan(
        disclosed=(
            Disclosure("acme-watch.example",
                       ("location.precise", "identifier.imei", "contacts.entry"),
                       "family locator service"),
            Disclosure("amap.com",
                       ("location.precise", "location.coarse", "location.cell",
                        "location.wifi"),
                       "positioning"),
        ),
        events=(
            ConsentEvent(ts=_at("2026-11-28T10:10:00+00:00"), action="refuse",
                         categories=("media",), recipients=("ads.example",)),
            ConsentEvent(ts=_at("2026-11-28T10:15:00+00:00"), action="grant",
                         categories=("all-disclosed",), separate=("location.precise",)),
            ConsentEvent(ts=_at("2026-11-28T10:20:00+00:00"), action="phase", name="idle"),
            ConsentEvent(ts=_at("2026-11-28T10:40:00+00:00"), action="withdraw",
                         categories=("location.precise",)),
        ),
        signals=(Signal(filter="~u /api/privacy/agree & ~m POST", action="grant",
                        categories=("all-disclosed",)),),
        limits={"min_interval_s": {"location.precise": 60.0}},
        withdrawal_grace_s=30.0,
        source="plan.yaml",
    )
    assert all(event.source == "plan" for event in plan.events)


@pytest.mark.parametrize("at", [
    "2026-11-28T10:15:00Z",
    "'2026-11-28T10:15:00Z'",
    "2026-11-28T18:15:00+08:00",
    "2026-11-28 10:15:00Z",
    "2026-11-28 10:15:00 Z",  # a YAML 1.1 timestamp Python's own parser refuses
    "2026-11-28T10:15:00.000+00:00",
])
def test_event_times_quoted_or_not_give_the_same_instant(tmp_path, monkeypatch, at):
    name = _write(tmp_path, monkeypatch, "plan.yaml",
                  f"events: [{{at: {at}, action: phase, name: setup}}]\n")
    [event] = load_consent_plan(name).events
    assert event.ts == datetime(2026, 11, 28, 10, 15, tzinfo=UTC).timestamp()


def test_simultaneous_events_keep_file_order(tmp_path, monkeypatch):
    name = _write(tmp_path, monkeypatch, "plan.yaml", (
        "events:\n"
        "  - {at: '2026-11-28T10:00:00Z', action: phase, name: b}\n"
        "  - {at: '2026-11-28T09:00:00Z', action: phase, name: a}\n"
        "  - {at: '2026-11-28T10:00:00Z', action: phase, name: c}\n"
    ))
    assert [event.name for event in load_consent_plan(name).events] == ["a", "b", "c"]


@pytest.mark.parametrize(("text", "role"), [
    ("", "third_party"),  # what a plan without roles always meant
    ("    role: processor\n", "processor"),
    ("    role: third_party\n", "third_party"),
])
def test_a_disclosure_says_whether_the_recipient_is_a_processor(tmp_path, monkeypatch, text,
                                                                 role):
    plan = load_consent_plan(_write(tmp_path, monkeypatch, "plan.yaml",
                                    "disclosed:\n  - recipient: amap.com\n"
                                    "    categories: [location.precise]\n" + text))
    assert plan.disclosed == (Disclosure("amap.com", ("location.precise",), role=role),)


def test_plan_defaults(tmp_path, monkeypatch):
    plan = load_consent_plan(_write(tmp_path, monkeypatch, "plan.yaml", "{}\n"))
    assert plan == ConsentPlan(source="plan.yaml")
    assert plan.withdrawal_grace_s == 60.0


# --------------------------------------------------------------------------- invalid files

PROFILE_ERRORS = [
    ("device: {name: K2}\nidentifiers:\n  imei: 12345\n",
     'profile.yaml, line 3: identifiers.imei "12345" is not 15 digits'),
    ("identifiers:\n  imei:\n    - 860000000000009\n    - 86000000000000A\n",
     'profile.yaml, line 4: identifiers.imei[1] "86000000000000A" is not 15 digits'),
    ("identifiers: {imie: 860000000000009}\n",
     "profile.yaml, line 1: identifiers.imie is not a known key; did you mean imei? (allowed: "
     "imei, imsi, iccid, serial, mac, android_id, advertising_id, phone)"),
    ("identifiers: {imsi: 4600012345678}\n",
     'profile.yaml, line 1: identifiers.imsi "4600012345678" is not 14-15 digits'),
    ("identifiers: {iccid: 89860012345678901F2}\n",
     'profile.yaml, line 1: identifiers.iccid "89860012345678901F2" is not 18-22 digits '
     "(a final F is allowed)"),
    ("identifiers: {mac: 'aa:bb:cc:dd:ee'}\n",
     'profile.yaml, line 1: identifiers.mac "aa:bb:cc:dd:ee" is not a MAC address '
     "(six hex octets, : - . or no separators)"),
    ("identifiers: {mac: 'aa:bb-cc:dd:ee:ff'}\n",
     'profile.yaml, line 1: identifiers.mac "aa:bb-cc:dd:ee:ff" is not a MAC address '
     "(six hex octets, : - . or no separators)"),
    ("identifiers: {phone: '12345'}\n",
     'profile.yaml, line 1: identifiers.phone "12345" is not a phone number '
     "(6-15 digits; + spaces - ( ) allowed)"),
    ("identifiers: {phone: 'tel:13800138000'}\n",
     'profile.yaml, line 1: identifiers.phone "tel:13800138000" is not a phone number '
     "(6-15 digits; + spaces - ( ) allowed)"),
    ("identifiers: {serial: ''}\n", "profile.yaml, line 1: identifiers.serial is empty"),
    ("identifiers:\n  serial:\n", "profile.yaml, line 2: identifiers.serial is empty"),
    ("identifiers: {serial: []}\n",
     "profile.yaml, line 1: identifiers.serial is an empty list"),
    ("identifiers: {serial: {a: 1}}\n",
     "profile.yaml, line 1: identifiers.serial is a mapping; expected a single value"),
    ("identifiers: [imei]\n",
     "profile.yaml, line 1: identifiers is a list; expected a mapping of keys"),
    ("identifiers:\n  imei: 860000000000009\n  imei: 860000000000017\n",
     "profile.yaml, line 3: identifiers.imei appears twice (first on line 2)"),
    ("child: {birthdate: 2017-02-30}\n",
     'profile.yaml, line 1: child.birthdate "2017-02-30" is not an ISO date (YYYY-MM-DD)'),
    ("child: {birthdate: 9 March 2017}\n",
     'profile.yaml, line 1: child.birthdate "9 March 2017" is not an ISO date (YYYY-MM-DD)'),
    ("child: {email: xm.example.cn}\n",
     'profile.yaml, line 1: child.email "xm.example.cn" is not an e-mail address (no @)'),
    ("child: {age: 9}\n",
     "profile.yaml, line 1: child.age is not a known key (allowed: name, birthdate, school, "
     "email, national_id, address)"),
    ("location:\n  lat: 39.9\n",
     "profile.yaml, line 2: location.lon is missing (a location needs both lat and lon)"),
    ("location: {lat: 91, lon: 0}\n",
     'profile.yaml, line 1: location.lat "91" is not between -90 and 90'),
    ("location: {lat: 0, lon: -180.5}\n",
     'profile.yaml, line 1: location.lon "-180.5" is not between -180 and 180'),
    ("location: {lat: north, lon: 0}\n",
     'profile.yaml, line 1: location.lat "north" is not a number'),
    ("location: {lat: .nan, lon: 0}\n",
     'profile.yaml, line 1: location.lat ".nan" is not a number'),
    ("location:\n  lat: 1\n  lon: 2\n  cell:\n    - {mcc: 460, mnc: x, lac: 1, cid: 2}\n",
     'profile.yaml, line 5: location.cell[0].mnc "x" is not a whole number'),
    ("location:\n  lat: 1\n  lon: 2\n  cell:\n    - {mcc: 4600, mnc: 0, lac: 1, cid: 2}\n",
     'profile.yaml, line 5: location.cell[0].mcc "4600" is larger than 999'),
    ("location:\n  lat: 1\n  lon: 2\n  cell:\n    - {mcc: 460, mnc: 0, lac: 1}\n",
     "profile.yaml, line 5: location.cell[0].cid is missing"),
    ("location:\n  lat: 1\n  lon: 2\n  cell:\n    - {mcc: 460, mnc: 0, cid: 1}\n",
     "profile.yaml, line 5: location.cell[0].lac is missing (or tac)"),
    ("location:\n  lat: 1\n  lon: 2\n  cell:\n    - {mcc: 460, mnc: 0, lac: 1, tac: 1, cid: 1}\n",
     "profile.yaml, line 5: location.cell[0].tac repeats lac; give one of lac or tac"),
    ("location: {lat: 1, lon: 2, cell: {mcc: 460}}\n",
     "profile.yaml, line 1: location.cell is a mapping; expected a list"),
    ("location: {lat: 1, lon: 2, wifi: [aa:bb:cc:dd:ee:01, 'home']}\n",
     'profile.yaml, line 1: location.wifi[1] "home" is not a MAC address '
     "(six hex octets, : - . or no separators)"),
    ("contacts: {name: Mum}\n",
     "profile.yaml, line 1: contacts is a mapping; expected a list"),
    ("contacts:\n  - {name: Mum, phone: '13800138001'}\n  - {}\n",
     "profile.yaml, line 3: contacts[1] has none of name, phone"),
    ("contacts:\n  - {name: Mum, phone: mum}\n",
     'profile.yaml, line 2: contacts[0].phone "mum" is not a phone number '
     "(6-15 digits; + spaces - ( ) allowed)"),
    ("credentials: [{user: kid, password: x}]\n",
     "profile.yaml, line 1: credentials[0].user is not a known key; did you mean username? "
     "(allowed: username, password)"),
    ("device: {ca_trusted: maybe}\n",
     'profile.yaml, line 1: device.ca_trusted "maybe" is not true or false'),
    ("device: {ca_trusted: 'true'}\n",
     'profile.yaml, line 1: device.ca_trusted "true" is not true or false'),
    ("device: {ip: [10.0.0.1, 10.0.0.256]}\n",
     'profile.yaml, line 1: device.ip[1] "10.0.0.256" is not an IP address'),
    ("first_party: ['https://acme.example/']\n",
     'profile.yaml, line 1: first_party[0] "https://acme.example/" is not a domain name '
     "(like acme.example) or an IP address or CIDR block (like 203.0.113.0/24 or "
     "2001:db8::/32)"),
    ("first_party: [acme.example, 300.1.2.3]\n",
     'profile.yaml, line 1: first_party[1] "300.1.2.3" is not a domain name '
     "(like acme.example) or an IP address or CIDR block (like 203.0.113.0/24 or "
     "2001:db8::/32)"),
    ("first_party: ['203.0.113.7/24']\n",  # host bits set: the address or the block?
     'profile.yaml, line 1: first_party[0] "203.0.113.7/24" is not a domain name '
     "(like acme.example) or an IP address or CIDR block (like 203.0.113.0/24 or "
     "2001:db8::/32)"),
    ("organisations:\n  - {name: Acme}\n",
     "profile.yaml, line 2: organisations[0] has neither addresses nor domains; give what "
     "the organisation owns"),
    ("organisations:\n  - {addresses: [203.0.113.0/24]}\n",
     "profile.yaml, line 2: organisations[0].name is missing"),
    ("organisations:\n  - {name: Acme, addresses: [203.0.113.0/24, 'acme.example']}\n",
     'profile.yaml, line 2: organisations[0].addresses[1] "acme.example" is not an IP '
     "address or CIDR block (like 203.0.113.0/24 or 2001:db8::/32)"),
    ("organisations: {name: Acme, domains: acme.example}\n",
     "profile.yaml, line 1: organisations is a mapping; expected a list"),
    ("jurisdiction: CHN\n",
     'profile.yaml, line 1: jurisdiction "CHN" is not a 2-letter ISO country code (like CN)'),
    ("device: {name: K2}\n\nidentifers: {}\n",
     "profile.yaml, line 3: identifers is not a known key; did you mean identifiers? (allowed: "
     "device, identifiers, child, location, contacts, credentials, first_party, organisations, "
     "jurisdiction, irregular)"),
    ("device: {name: K2}\nidentifiers: {imei: '1\n",
     "profile.yaml, line 3: is not valid YAML: while scanning a quoted scalar, "
     "found unexpected end of stream"),
    ("device:\n  name: K2\n kind: watch\n",
     "profile.yaml, line 3: is not valid YAML: while parsing a block mapping, "
     "expected <block end>, but found '<block mapping start>'"),
    ("a: 1\n---\nb: 2\n",
     "profile.yaml, line 2: is not valid YAML: expected a single document in the stream, "
     "but found another document"),
    ("- imei\n- imsi\n", "profile.yaml, line 1: top level is not a mapping of keys"),
    ("# nothing yet\n",
     "profile.yaml, line 1: is empty; expected a mapping of keys (write {} for none)"),
    ("? [a]\n: 1\n", "profile.yaml, line 1: top level has a key that is not a plain name"),
]


@pytest.mark.parametrize(("text", "message"), PROFILE_ERRORS)
def test_profile_errors_name_file_line_key_and_problem(tmp_path, monkeypatch, text, message):
    with pytest.raises(ConfigError) as caught:
        load_profile(_write(tmp_path, monkeypatch, "profile.yaml", text))
    assert str(caught.value) == message


# --------------------------------------------------------------------------- plausibility

# Beyond its format, a seeded IMEI or ICCID must pass its Luhn check, an IMSI start with a
# known MCC and a phone number fit its numbering plan, unless irregular: lists its key.
SKIPPABLE = ("identifiers.imei, identifiers.imsi, identifiers.iccid, identifiers.phone, "
             "contacts.phone")
ELSEWHERE = "(a typo? a number from elsewhere needs + and its country code)"

PLAUSIBILITY_ERRORS = [
    # IMEI: the Luhn digit, whether the value is alone or one of a list
    ("device: {name: K2}\nidentifiers:\n  imei: '864536040123450'\n",
     'profile.yaml, line 3: identifiers.imei "864536040123450" fails the Luhn check (a typo?); '
     "if the device really reports it, list identifiers.imei under irregular:"),
    ("identifiers:\n  imei:\n    - 864536040123455\n    - 864536040123454\n",
     'profile.yaml, line 4: identifiers.imei[1] "864536040123454" fails the Luhn check '
     "(a typo?); if the device really reports it, list identifiers.imei under irregular:"),
    # ICCID: the Luhn digit over all 18, 19 or 20 digits, a final F aside (as patterns.is_iccid)
    ("identifiers: {iccid: '898600220912345678'}\n",
     'profile.yaml, line 1: identifiers.iccid "898600220912345678" fails the Luhn check '
     "(a typo?); if the SIM really reports it, list identifiers.iccid under irregular:"),
    ("identifiers: {iccid: 8986002209123456780}\n",
     'profile.yaml, line 1: identifiers.iccid "8986002209123456780" fails the Luhn check '
     "(a typo?); if the SIM really reports it, list identifiers.iccid under irregular:"),
    ("identifiers: {iccid: 89860022091234567890}\n",
     'profile.yaml, line 1: identifiers.iccid "89860022091234567890" fails the Luhn check '
     "(a typo?); if the SIM really reports it, list identifiers.iccid under irregular:"),
    ("identifiers: {iccid: 8986001234567890123F}\n",
     'profile.yaml, line 1: identifiers.iccid "8986001234567890123F" fails the Luhn check '
     "(a typo?); if the SIM really reports it, list identifiers.iccid under irregular:"),
    # IMSI: the MCC, 15 or 14 digits; 001 is the test network's, not a country's
    ("identifiers:\n  imsi: '999001234567890'\n",
     'profile.yaml, line 2: identifiers.imsi "999001234567890" starts with 999, which is not a '
     "mobile country code (a typo?); if the SIM really reports it, list identifiers.imsi under "
     "irregular:"),
    ("identifiers: {imsi: '00101123456789'}\n",
     'profile.yaml, line 1: identifiers.imsi "00101123456789" starts with 001, which is not a '
     "mobile country code (a typo?); if the SIM really reports it, list identifiers.imsi under "
     "irregular:"),
    # phone numbers: with + by their own country code, a digit short or no country at all
    ("identifiers: {phone: '+86 138 0013 800'}\njurisdiction: CN\n",
     'profile.yaml, line 1: identifiers.phone "+86 138 0013 800" is not a valid phone number '
     "(a typo?); if the SIM really has that number, list identifiers.phone under irregular:"),
    ("identifiers: {phone: '+999 1234 5678'}\n",
     'profile.yaml, line 1: identifiers.phone "+999 1234 5678" is not a valid phone number '
     "(a typo?); if the SIM really has that number, list identifiers.phone under irregular:"),
    # ... without +, in the jurisdiction's plan, wherever in the file the jurisdiction is
    ("contacts:\n  - {name: Mum, phone: '+8613800138001'}\n  - {name: Dad, phone: '12345678'}\n"
     "jurisdiction: CN\n",
     'profile.yaml, line 3: contacts[1].phone "12345678" is not a valid phone number in CN, '
     f"the jurisdiction {ELSEWHERE}; if the number is really in use, list contacts.phone under "
     "irregular:"),
    ("identifiers: {phone: '13800138000'}\njurisdiction: us\n",
     'profile.yaml, line 1: identifiers.phone "13800138000" is not a valid phone number in US, '
     f"the jurisdiction {ELSEWHERE}; if the SIM really has that number, list identifiers.phone "
     "under irregular:"),
    # ... and in CN's without one, as the detectors read them
    ("contacts: [{name: Mum, phone: '12345678'}]\n",
     'profile.yaml, line 1: contacts[0].phone "12345678" is not a valid phone number in CN, '
     f"assumed when no jurisdiction is set {ELSEWHERE}; if the number is really in use, list "
     "contacts.phone under irregular:"),
    # the first failing value in the file, whichever check it fails
    ("identifiers:\n  imsi: '999001234567890'\n  imei: '864536040123450'\n",
     'profile.yaml, line 2: identifiers.imsi "999001234567890" starts with 999, which is not a '
     "mobile country code (a typo?); if the SIM really reports it, list identifiers.imsi under "
     "irregular:"),
    ("contacts: [{name: Mum, phone: '12345678'}]\nidentifiers: {imei: '864536040123450'}\n",
     'profile.yaml, line 1: contacts[0].phone "12345678" is not a valid phone number in CN, '
     f"assumed when no jurisdiction is set {ELSEWHERE}; if the number is really in use, list "
     "contacts.phone under irregular:"),
    # irregular: skips the checks of the keys it lists, no others
    ("identifiers: {imei: '864536040123450', imsi: '999001234567890'}\n"
     "irregular: [identifiers.imei]\n",
     'profile.yaml, line 1: identifiers.imsi "999001234567890" starts with 999, which is not a '
     "mobile country code (a typo?); if the SIM really reports it, list identifiers.imsi under "
     "irregular:"),
    ("identifiers: {phone: '12345678'}\ncontacts: [{phone: '12345678'}]\n"
     "irregular: contacts.phone\n",
     'profile.yaml, line 1: identifiers.phone "12345678" is not a valid phone number in CN, '
     f"assumed when no jurisdiction is set {ELSEWHERE}; if the SIM really has that number, list "
     "identifiers.phone under irregular:"),
    # ... and never the format checks
    ("identifiers: {imei: '12345'}\nirregular: [identifiers.imei]\n",
     'profile.yaml, line 1: identifiers.imei "12345" is not 15 digits'),
    ("contacts: [{name: Mum, phone: mum}]\nirregular: [contacts.phone]\n",
     'profile.yaml, line 1: contacts[0].phone "mum" is not a phone number '
     "(6-15 digits; + spaces - ( ) allowed)"),
    # irregular's own mistakes: typos as in any other key, keys with nothing to skip
    ("irregular: [identifiers.imie]\n",
     'profile.yaml, line 1: irregular[0] "identifiers.imie" is not a key with checks to skip; '
     f"did you mean identifiers.imei? (allowed: {SKIPPABLE})"),
    ("irregular:\n  - identifiers.imsi\n  - imei\n",
     'profile.yaml, line 3: irregular[1] "imei" is not a key with checks to skip; '
     f"did you mean identifiers.imei? (allowed: {SKIPPABLE})"),
    ("irregular: ['contacts[0].phone']\n",
     'profile.yaml, line 1: irregular[0] "contacts[0].phone" is not a key with checks to skip; '
     f"did you mean contacts.phone? (allowed: {SKIPPABLE})"),
    ("irregular: [phone]\n",  # two keys end in phone: no guess
     'profile.yaml, line 1: irregular[0] "phone" is not a key with checks to skip '
     f"(allowed: {SKIPPABLE})"),
    ("irregular: [identifiers.mac]\n",
     'profile.yaml, line 1: irregular[0] "identifiers.mac" has no checksum, MCC or '
     f"numbering-plan check to skip (keys that have one: {SKIPPABLE})"),
    ("irregular: []\n", "profile.yaml, line 1: irregular is an empty list"),
    ("irregular: {identifiers.imei: true}\n",
     "profile.yaml, line 1: irregular is a mapping; expected a single value"),
]


@pytest.mark.parametrize(("text", "message"), PLAUSIBILITY_ERRORS)
def test_implausible_values_name_key_line_and_the_way_out(tmp_path, monkeypatch, text,
                                                          message):
    with pytest.raises(ConfigError) as caught:
        load_profile(_write(tmp_path, monkeypatch, "profile.yaml", text))
    assert str(caught.value) == message


@pytest.mark.parametrize(("text", "attribute", "expected"), [
    ("identifiers: {imei: '864536040123455'}", "identifiers", {"imei": ("864536040123455",)}),
    ("identifiers: {iccid: ['898600220912345670', 8986002209123456789, 8986002209123456789F,\n"
     "                      89860022091234567893]}", "identifiers",
     {"iccid": ("898600220912345670", "8986002209123456789", "8986002209123456789F",
                "89860022091234567893")}),
    # 21-22 digits: no check digit the detector knows of either
    ("identifiers: {iccid: 8986001234567890123456}", "identifiers",
     {"iccid": ("8986001234567890123456",)}),
    ("identifiers: {imsi: [460001234567890, '31026012345678']}", "identifiers",
     {"imsi": ("460001234567890", "31026012345678")}),
    ("identifiers: {phone: '+8613800138000'}", "identifiers", {"phone": ("+8613800138000",)}),
    ("identifiers: {phone: '13800138000'}\njurisdiction: CN", "identifiers",
     {"phone": ("13800138000",)}),
    ("identifiers: {phone: '+1 202 555 0100'}\njurisdiction: CN", "identifiers",
     {"phone": ("+1 202 555 0100",)}),  # + and a country code: the jurisdiction does not apply
    ("contacts: [{phone: '020 7946 0018'}]\njurisdiction: GB", "contacts",
     (Contact(phone="020 7946 0018"),)),
    ("jurisdiction: NO\ncontacts: [{phone: '22 22 22 22'}]", "contacts",
     (Contact(phone="22 22 22 22"),)),
    ("contacts: [{name: Mum, phone: '(010) 6275-1234'}]", "contacts",  # CN without jurisdiction
     (Contact(name="Mum", phone="(010) 6275-1234"),)),
])
def test_plausible_values_load(tmp_path, monkeypatch, text, attribute, expected):
    profile = load_profile(_write(tmp_path, monkeypatch, "profile.yaml", text + "\n"))
    assert getattr(profile, attribute) == expected
    assert profile.irregular == frozenset()


@pytest.mark.parametrize(("text", "irregular", "attribute", "expected"), [
    ("identifiers: {imei: '864536040123450'}\nirregular: [identifiers.imei]",
     {"identifiers.imei"}, "identifiers", {"imei": ("864536040123450",)}),
    ("identifiers: {iccid: 8986002209123456780}\nirregular: identifiers.iccid",  # one, no list
     {"identifiers.iccid"}, "identifiers", {"iccid": ("8986002209123456780",)}),
    ("irregular: [identifiers.imsi]\nidentifiers: {imsi: '001010123456789'}",  # a test SIM
     {"identifiers.imsi"}, "identifiers", {"imsi": ("001010123456789",)}),
    ("identifiers: {phone: '+86 138 0013 800'}\nirregular: [identifiers.phone]",
     {"identifiers.phone"}, "identifiers", {"phone": ("+86 138 0013 800",)}),
    ("contacts:\n  - {name: Lab, phone: '12345678'}\n  - {name: Mum, phone: '+8613800138001'}\n"
     "  - {name: Desk, phone: '5550100'}\njurisdiction: CN\nirregular: [contacts.phone]",
     {"contacts.phone"}, "contacts",
     (Contact("Lab", "12345678"), Contact("Mum", "+8613800138001"), Contact("Desk", "5550100"))),
    ("identifiers: {imei: ['864536040123450', '864536040123455'], imsi: '999001234567890'}\n"
     "irregular: [identifiers.imsi, identifiers.imei, identifiers.imsi]",
     {"identifiers.imei", "identifiers.imsi"}, "identifiers",
     {"imei": ("864536040123450", "864536040123455"), "imsi": ("999001234567890",)}),
])
def test_irregular_accepts_the_values_of_the_keys_it_lists(tmp_path, monkeypatch, text,
                                                           irregular, attribute, expected):
    profile = load_profile(_write(tmp_path, monkeypatch, "profile.yaml", text + "\n"))
    assert getattr(profile, attribute) == expected
    assert profile.irregular == irregular


@pytest.mark.parametrize("iccid", [
    "898600220912345670", "898600220912345678", "8986002209123456789", "8986002209123456780",
    "89860022091234567893", "89860022091234567890", "8986002209123456789F",
    "8986001234567890123F",
])
def test_iccid_check_agrees_with_the_detector(tmp_path, monkeypatch, iccid):
    name = _write(tmp_path, monkeypatch, "profile.yaml", f"identifiers: {{iccid: '{iccid}'}}\n")
    try:
        load_profile(name)
    except ConfigError:
        accepted = False
    else:
        accepted = True
    assert accepted == patterns.is_iccid(iccid)


def test_mcc_table_is_the_imsi_detectors(tmp_path, monkeypatch):
    """One table: an MCC the detector learns is one the profile accepts."""
    name = _write(tmp_path, monkeypatch, "profile.yaml", "identifiers: {imsi: '999001234567890'}\n")
    with pytest.raises(ConfigError):
        load_profile(name)
    monkeypatch.setattr(patterns, "MCC", patterns.MCC | {999})
    assert load_profile(name).identifiers == {"imsi": ("999001234567890",)}


PLAN_ERRORS = [
    ("events:\n"
     "  - {at: '2026-11-28T10:15:00Z', action: grant, categories: all-disclosed}\n"
     "  - {at: '2026-11-28T10:16:00Z', action: phase, name: use}\n"
     "  - {at: '2026-11-28T10:17:00Z', action: grnt, categories: location}\n",
     'plan.yaml, line 4: events[2].action "grnt" is not one of grant, refuse, withdraw, phase'),
    ("events:\n  - {at: '2026-11-28T10:15:00', action: phase, name: setup}\n",
     'plan.yaml, line 2: events[0].at "2026-11-28T10:15:00" has no time zone '
     "(add Z or an offset like +08:00)"),
    ("events:\n  - {at: 2026-11-28, action: phase, name: setup}\n",
     'plan.yaml, line 2: events[0].at "2026-11-28" has no time zone '
     "(add Z or an offset like +08:00)"),
    ("events:\n  - {at: 'yesterday', action: phase, name: setup}\n",
     'plan.yaml, line 2: events[0].at "yesterday" is not an ISO 8601 time '
     "(like 2026-11-28T10:15:00Z)"),
    ("events:\n  - {action: phase, name: setup}\n",
     "plan.yaml, line 2: events[0].at is missing"),
    ("events:\n  - at: '2026-11-28T10:15:00Z'\n    name: setup\n",
     "plan.yaml, line 2: events[0].action is missing"),
    ("events:\n  - {at: '2026-11-28T10:15:00Z', action: grant}\n",
     "plan.yaml, line 2: events[0].categories is missing (required for grant)"),
    ("events:\n  - {at: '2026-11-28T10:15:00Z', action: phase}\n",
     "plan.yaml, line 2: events[0].name is missing (required for phase)"),
    ("events:\n  - {at: '2026-11-28T10:15:00Z', action: grant, categories: [locaton]}\n",
     'plan.yaml, line 2: events[0].categories[0] "locaton" is not a category id, family or '
     "all-disclosed; did you mean location?"),
    ("events:\n  - {at: '2026-11-28T10:15:00Z', action: withdraw, categories: []}\n",
     "plan.yaml, line 2: events[0].categories is an empty list"),
    ("events:\n  - {at: '2026-11-28T10:15:00Z', action: grant, categories: location,\n"
     "     separate: [all-disclosed]}\n",
     "plan.yaml, line 3: events[0].separate[0] all-disclosed is not allowed here; "
     "name the categories"),
    ("events:\n  - {at: '2026-11-28T10:15:00Z', action: grant, categories: location,\n"
     "     recipients: ['']}\n",
     "plan.yaml, line 3: events[0].recipients[0] is empty"),
    ("events:\n  - {at: '2026-11-28T10:15:00Z', action: grant, categories: location,\n"
     "     whom: amap.com}\n",
     "plan.yaml, line 3: events[0].whom is not a known key (allowed: at, action, categories, "
     "recipients, separate, name)"),
    ("events: {at: '2026-11-28T10:15:00Z', action: phase, name: x}\n",
     "plan.yaml, line 1: events is a mapping; expected a list"),
    ("disclosed:\n  - recipient: amap.com\n    categories: all-disclosed\n",
     "plan.yaml, line 3: disclosed[0].categories all-disclosed is not allowed here; "
     "name the categories"),
    ("disclosed:\n  - categories: [location]\n",
     "plan.yaml, line 2: disclosed[0].recipient is missing"),
    ("disclosed:\n  - {recipient: amap.com, categories: [location], role: procesor}\n",
     'plan.yaml, line 2: disclosed[0].role "procesor" is not one of processor, third_party; '
     "did you mean processor?"),
    ("disclosed:\n  - recipient: amap.com\n",
     "plan.yaml, line 2: disclosed[0].categories is missing"),
    ("disclosed:\n  - recipient: amap.com\n    categories: [location, gps]\n",
     'plan.yaml, line 3: disclosed[0].categories[1] "gps" is not a category id or family'),
    ("signals:\n  - {filter: '', action: grant, categories: all-disclosed}\n",
     "plan.yaml, line 2: signals[0].filter is empty"),
    ("signals:\n  - {at: '2026-11-28T10:15:00Z', action: grant, categories: all-disclosed}\n",
     "plan.yaml, line 2: signals[0].at is not a known key (allowed: filter, action, categories, "
     "recipients, separate, name)"),
    ("signals:\n  - {action: grant, categories: all-disclosed}\n",
     "plan.yaml, line 2: signals[0].filter is missing"),
    ("limits:\n  min_interval_s: {location.precise: 0}\n",
     'plan.yaml, line 2: limits.min_interval_s.location.precise "0" is not a positive number'),
    ("limits:\n  min_interval_s:\n    location: 60\n",
     "plan.yaml, line 3: limits.min_interval_s.location is a family; give each id "
     "(location.precise, location.coarse, location.cell, location.wifi)"),
    ("limits:\n  min_interval_s:\n    location.gps: 60\n",
     "plan.yaml, line 3: limits.min_interval_s.location.gps is not a known key; did you mean "
     f"location.precise? (allowed: {', '.join(CATEGORIES)})"),
    ("limits:\n  max_per_hour: {}\n",
     "plan.yaml, line 2: limits.max_per_hour is not a known key (allowed: min_interval_s)"),
    ("withdrawal_grace_s: -1\n", 'plan.yaml, line 1: withdrawal_grace_s "-1" is negative'),
    ("withdrawal_grace_s: soon\n",
     'plan.yaml, line 1: withdrawal_grace_s "soon" is not a number'),
    ("withdrawal_grace_s: true\n",
     'plan.yaml, line 1: withdrawal_grace_s "true" is not a number'),
    ("disclosed: []\nevent: []\n",
     "plan.yaml, line 2: event is not a known key; did you mean events? (allowed: disclosed, "
     "events, signals, limits, withdrawal_grace_s)"),
]


@pytest.mark.parametrize(("text", "message"), PLAN_ERRORS)
def test_plan_errors_name_file_line_key_and_problem(tmp_path, monkeypatch, text, message):
    with pytest.raises(ConfigError) as caught:
        load_consent_plan(_write(tmp_path, monkeypatch, "plan.yaml", text))
    assert str(caught.value) == message


def test_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^nowhere\.yaml: file not found$"):
        load_profile("nowhere.yaml")


def test_directory_is_not_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    with pytest.raises(ConfigError, match=r"^conf: is a directory, not a file$"):
        load_consent_plan("conf")


def test_binary_file_names_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.yaml").write_bytes(b"events: []\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"^plan\.yaml, line 2: is not UTF-8 text$"):
        load_consent_plan("plan.yaml")


def test_control_character_names_the_line(tmp_path, monkeypatch):
    name = _write(tmp_path, monkeypatch, "profile.yaml", "device:\n  name: K\x002\n")
    with pytest.raises(ConfigError, match=r"^profile\.yaml, line 2: is not valid YAML: "):
        load_profile(name)


def test_path_is_named_as_given(tmp_path):
    path = str(tmp_path / "profile.yaml")
    Path(path).write_text("jurisdiction: China\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    assert str(caught.value).startswith(f"{path}, line 1: jurisdiction ")


def test_messages_stay_on_one_line(tmp_path, monkeypatch):
    name = _write(tmp_path, monkeypatch, "profile.yaml", 'identifiers: {imei: "12\\n345"}\n')
    with pytest.raises(ConfigError) as caught:
        load_profile(name)
    assert str(caught.value) == r'profile.yaml, line 1: identifiers.imei "12\n345" is not 15 digits'


# --------------------------------------------------------------------------- unrepresentable
# Values that pass the format checks but could not be written later (issue 13): refused at
# load, in one line, instead of a traceback when a report writes them.

_CELL = "location: {{lat: 1, lon: 2, cell: [{{mcc: 460, mnc: 0, lac: {lac}, cid: 1}}]}}\n"


@pytest.mark.parametrize(("name", "text", "message"), [
    ("plan.yaml", 'events:\n  - {at: "0001-01-01T00:30:00+01:00", action: phase, name: idle}\n',
     'plan.yaml, line 2: events[0].at "0001-01-01T00:30:00+01:00" is outside the years 1 to '
     "9999 once in UTC"),
    ("plan.yaml", "events:\n  - {at: 9999-12-31 23:30:00 -01:00, action: phase, name: idle}\n",
     'plan.yaml, line 2: events[0].at "9999-12-31 23:30:00 -01:00" is outside the years 1 to '
     "9999 once in UTC"),
    ("profile.yaml", _CELL.format(lac="9" * 5000),
     f'profile.yaml, line 1: location.cell[0].lac "{"9" * 60}..." is too large (more than 18 '
     "digits)"),
    ("profile.yaml", "device: " + "[" * 5000 + "]" * 5000 + "\n",
     "profile.yaml: is nested too deeply to be a profile or consent plan (lists or mappings "
     "inside each other hundreds of levels down)"),
    ("plan.yaml", "events: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
     "plan.yaml: is nested too deeply to be a profile or consent plan (lists or mappings "
     "inside each other hundreds of levels down)"),
])
def test_values_that_cannot_be_represented_are_refused_at_load(tmp_path, monkeypatch, name,
                                                               text, message):
    load = load_consent_plan if name == "plan.yaml" else load_profile
    with pytest.raises(ConfigError) as caught:
        load(_write(tmp_path, monkeypatch, name, text))
    assert str(caught.value) == message


@pytest.mark.parametrize(("name", "text", "attribute", "expected"), [
    ("plan.yaml", 'events:\n  - {at: "0001-01-01T00:30:00-01:00", action: phase, name: a}\n',
     lambda plan: plan.events[0].ts, _at("0001-01-01T00:30:00-01:00")),
    ("plan.yaml", 'events:\n  - {at: "9999-12-31T23:30:00+01:00", action: phase, name: a}\n',
     lambda plan: plan.events[0].ts, _at("9999-12-31T23:30:00+01:00")),
    ("profile.yaml", _CELL.format(lac="0" * 30 + "4286"),
     lambda prof: prof.location.cell[0].lac, 4286),
    ("profile.yaml", _CELL.format(lac="9" * 18),
     lambda prof: prof.location.cell[0].lac, 10 ** 18 - 1),
])
def test_values_at_the_edge_of_what_can_be_represented_load(tmp_path, monkeypatch, name, text,
                                                            attribute, expected):
    load = load_consent_plan if name == "plan.yaml" else load_profile
    assert attribute(load(_write(tmp_path, monkeypatch, name, text))) == expected


@pytest.mark.parametrize(("text", "message"), [
    ('contacts: [{"\\ud800": x}]\n',
     "profile.yaml, line 1: contacts[0].\\ud800 is not a known key (allowed: name, phone)"),
    ('identifiers: {imei: "\\udcff"}\n',
     'profile.yaml, line 1: identifiers.imei "\\xff" is not 15 digits'),
    ('identifiers: {imei: "1"}\n', 'profile.yaml, line 1: identifiers.imei "1" is not 15 digits'),
])
def test_a_lone_surrogate_in_a_message_is_shown_escaped(tmp_path, monkeypatch, text, message):
    """YAML's ``"\\ud800"`` escape makes a lone surrogate, which a strict stream cannot
    write: the one line shows it as an escape."""
    with pytest.raises(ConfigError) as caught:
        load_profile(_write(tmp_path, monkeypatch, "profile.yaml", text))
    assert str(caught.value) == message
    str(caught.value).encode("utf-8")  # writable anywhere
