"""Every rule carries its own proof: hit and ok fixtures per rule (semgrep-rules style), a walk
over the catalogue that fails when a rule lacks either, and one scripted session through the
whole catalogue with the exact findings it must produce."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import pytest

from auditor.categories import SEVERITIES
from auditor.consent import ConsentState, Ledger
from auditor.data import load_sdks
from auditor.model import (
    CategoryFacts,
    ConsentEvent,
    ConsentPlan,
    Detection,
    Device,
    Disclosure,
    Observation,
    Organisation,
    Profile,
    Recipient,
    Transmission,
)
from auditor.pipeline import Pipeline
from auditor.rules import CATALOGUE, Aggregator, Hit, RuleContext, by_id, evaluate
from auditor.rules.consent_rules import PRECEDENCE, most_specific
from auditor.rules.engine import finding_id
from tests.factories import (
    FIRST_PARTY,
    HOST,
    IMEI,
    LAT,
    LON,
    MAKER_BLOCK,
    MAKER_ORG,
    T0,
    event,
    plan,
    profile,
    tx,
)

FIRST = Recipient(FIRST_PARTY, party="first")
AMAP = Recipient("amap.com", organization="AutoNavi", party="third", country="CN",
                 sdk="AMap", sdk_type="location")
AUTONAVI = Recipient("autonavi.com", organization="AutoNavi", party="third", country="CN")
UMENG = Recipient("umeng.com", organization="Alibaba", party="third", country="CN",
                  sdk="Umeng", sdk_type="analytics")
ADS = Recipient("ads.example", organization="AdCo", party="third", country="US",
                sdk="AdSDK", sdk_type="advertising")
APPSFLYER = Recipient("appsflyer.com", organization="AppsFlyer", party="third",
                      sdk="AppsFlyer", sdk_type="attribution")
CDN = Recipient("cdn.example", party="third")
UNKNOWN = Recipient("somewhere.example", party="unknown")

IMEI_C, ADV, MAC = "identifier.imei", "identifier.advertising", "identifier.mac"
PRECISE, WIFI, CELL = "location.precise", "location.wifi", "location.cell"
CONTACT, VOICE, PHOTO, PASSWORD = ("contacts.entry", "media.voice", "media.photo",
                                   "credentials.password")

DISCLOSED = plan().disclosed  # the maker: IMEI, precise location, contacts; AMap: locations

# The maker's watch server, reached by bare IP (issue 15): the profile lists its block, and
# attribution calls it first party; WATCH_AS_SEEN is how it looks when nothing says so.
WATCH_IP = "203.0.113.10"
MAKER_BY_IP = profile(first_party=(FIRST_PARTY, MAKER_BLOCK))
WATCH = Recipient(WATCH_IP, party="first")
WATCH_AS_SEEN = Recipient(WATCH_IP, party="third")
# An organisation the profile names for a block no public data attributes.
CLOUD_IP = "198.51.100.9"
CLOUD_PROFILE = profile(organisations=(
    Organisation("Acme Cloud", ("198.51.100.0/24",), ("acme-cloud.example",)),))
CLOUD = Recipient(CLOUD_IP, "Acme Cloud", party="third")


def processor(*disclosures: Disclosure) -> tuple[Disclosure, ...]:
    """The plan's disclosures, with these recipients disclosed as the maker's processors
    (PIPL 21) instead of whatever the plan said of them."""
    named = {d.recipient for d in disclosures}
    return (*(d for d in DISCLOSED if d.recipient not in named),
            *(dataclasses.replace(d, role="processor") for d in disclosures))


AMAP_PROCESSOR = processor(Disclosure("amap.com", (PRECISE, WIFI, CELL)))
UMENG_PROCESSOR = processor(Disclosure("umeng.com", (IMEI_C, "identity.name")))
ADS_PROCESSOR = processor(Disclosure("ads.example", (ADV, PRECISE)))


@dataclass(frozen=True)
class Found:
    """A detection beyond the plain known one a message's ``categories`` give."""

    category: str
    value: str = "v"
    method: str = "known"
    profile_key: str = ""
    location: str = "body"
    field: str = ""


@dataclass(frozen=True)
class Msg:
    """One transmission: ``categories`` each found once as a known value, plus ``found``."""

    categories: tuple[str, ...] = (IMEI_C,)
    at: float = 100.0
    transport: str = "https"
    recipient: Recipient = FIRST
    direction: str = "up"
    host: str = ""
    ip: str = ""
    url: str = ""
    method: str = "POST"
    tags: tuple[str, ...] = ()
    inspected: bool = True
    opaque: tuple[str, ...] = ()
    tls_versions: tuple[str, ...] = ()
    tls_ciphers: tuple[str, ...] = ()
    decrypted: bool = False
    probe: str = ""
    found: tuple[Found, ...] = ()

    def observation(self, tx_id: int) -> Observation:
        host = self.host or "api." + self.recipient.domain
        tx = Transmission(id=tx_id, ts=T0 + self.at, transport=self.transport, host=host,
                          port=443, ip=self.ip, direction=self.direction, method=self.method,
                          url=self.url, inspected=self.inspected, decrypted=self.decrypted,
                          tls_versions=self.tls_versions, tls_ciphers=self.tls_ciphers,
                          probe=self.probe)
        plain = [Found(c, profile_key=c) for c in self.categories]
        dets = tuple(Detection(tx_id, f.category, f.method, f.location,
                               f.field or f"body.json.{f.category}", (), f.profile_key,
                               f.value, 0.99) for f in (*plain, *self.found))
        return Observation(tx, self.recipient, dets, self.opaque, self.tags)


@dataclass(frozen=True)
class Case:
    """A short timeline (transmission ids 1, 2, ... in the order of ``msgs``) judged against
    ``events``. ``expect``: the hits as (transmission id, categories); None means message 1
    with every category found in it."""

    msgs: tuple[Msg, ...] = (Msg(),)
    events: tuple[ConsentEvent, ...] = ()
    disclosed: tuple[Disclosure, ...] = DISCLOSED
    profile: Profile = profile()
    limits: tuple[tuple[str, float], ...] = ()
    grace: float = 60.0
    expect: tuple[tuple[int, tuple[str, ...]], ...] | None = None

    def observations(self) -> list[Observation]:
        return [m.observation(i) for i, m in enumerate(self.msgs, 1)]

    def context(self) -> RuleContext:
        limits = {"min_interval_s": dict(self.limits)} if self.limits else {}
        plan = ConsentPlan(disclosed=self.disclosed, events=self.events, limits=limits,
                           withdrawal_grace_s=self.grace)
        return RuleContext(self.profile, Ledger(plan, profile=self.profile))

    def expected(self) -> list[Hit]:
        if self.expect is None:
            return [Hit(1, self.observations()[0].categories)]
        return [Hit(tx, frozenset(cats)) for tx, cats in self.expect]


_CASE_FIELDS = {f.name for f in dataclasses.fields(Case)}


def case(*msgs: Msg, **kw: object) -> Case:
    """A Case; keyword arguments that are not Case fields describe its single message."""
    own = {k: v for k, v in kw.items() if k in _CASE_FIELDS}
    rest = {k: v for k, v in kw.items() if k not in _CASE_FIELDS}
    return Case(msgs or (Msg(**rest),), **own)  # type: ignore[arg-type]


def grant(at: float = 0.0, cats: tuple[str, ...] = ("all-disclosed",), **kw: object
          ) -> ConsentEvent:
    return ConsentEvent(T0 + at, "grant", cats, **kw)  # type: ignore[arg-type]


def ev(action: str, at: float, cats: tuple[str, ...] = (), **kw: object) -> ConsentEvent:
    return ConsentEvent(T0 + at, action, cats, **kw)  # type: ignore[arg-type]


GRANT = grant()
GRANT_SEP = grant(separate=(PRECISE,))
IDLE = ev("phase", 0, name="idle")
UNTRUSTING = profile(device=Device(name="K2", ca_trusted=False))
NONE_HIT: tuple[tuple[int, tuple[str, ...]], ...] = ((1, ()),)  # a hit with no categories

# The TLS probe's rules, each with the case whose accepted handshake it reports.
PROBE_RULES = {"TLS_CERT_NOT_VALIDATED": "untrusted-ca", "TLS_HOSTNAME_NOT_CHECKED": "wrong-host",
               "TLS_EXPIRED_CERT_ACCEPTED": "expired", "TLS_LEGACY_ACCEPTED": "tls1.0"}


def _probe_cases(probe: str) -> dict[str, list[Case]]:
    """Hit: the device sent data over the case's handshake (the data is what it exposed), only
    completed it, or the server spoke down it (a hit about the connection). Ok: the device
    refused the case (recorded uninspected), another case, ordinary traffic."""
    other = next(c for c in PROBE_RULES.values() if c != probe)
    return {
        "hit": [case(probe=probe),
                case(probe=probe, categories=(IMEI_C, PRECISE), transport="tcp"),
                case(probe=probe, transport="tls", categories=(), decrypted=True,
                     inspected=False, expect=NONE_HIT),
                case(probe=probe, direction="down", categories=(), expect=NONE_HIT)],
        "ok": [case(probe=probe, transport="tls", inspected=False, categories=()),
               case(probe=other), case(), case(decrypted=True, transport="tls")],
    }


CASES: dict[str, dict[str, list[Case]]] = {
    "PRE_CONSENT_PI": {
        "hit": [case(), case(events=(grant(500),)), case(at=-0.5, events=(GRANT,)),
                case(events=(ev("refuse", 0, (IMEI_C,)),))],
        "ok": [case(events=(GRANT,)), case(at=0, events=(GRANT,)), case(categories=()),
               case(direction="down"), case(inspected=False, categories=())],
    },
    "PRE_CONSENT_SDK": {
        "hit": [case(recipient=UMENG, categories=(IMEI_C, PRECISE, "identity.name"),
                     expect=((1, (IMEI_C, PRECISE)),)),
                case(recipient=ADS, categories=(CELL,), events=(grant(500),))],
        "ok": [case(recipient=UMENG, events=(GRANT,)), case(recipient=FIRST),
               case(recipient=CDN), case(recipient=UMENG, categories=("identity.name",))],
    },
    "SCOPE_EXCEEDED": {
        "hit": [case(categories=("identity.birthdate",), events=(GRANT,)),
                case(categories=(IMEI_C, "identity.birthdate"), events=(GRANT,),
                     expect=((1, ("identity.birthdate",)),)),
                case(recipient=AMAP, categories=(IMEI_C, CELL),
                     events=(grant(cats=("location",), recipients=("amap.com",)),),
                     expect=((1, (IMEI_C,)),)),
                # the watch server's IP, with no profile saying whose it is
                case(recipient=WATCH_AS_SEEN, host=WATCH_IP, events=(GRANT,))],
        "ok": [case(categories=("identity.birthdate",)), case(events=(GRANT,)),
               # a disclosure naming the maker's domain covers the maker's addresses
               case(recipient=WATCH, host=WATCH_IP, events=(GRANT,), profile=MAKER_BY_IP),
               case(recipient=WATCH_AS_SEEN, host=WATCH_IP, ip=WATCH_IP, events=(GRANT,),
                    profile=MAKER_BY_IP),
               # ... and an organisation's domain covers the addresses the profile gives it
               case(recipient=CLOUD, host=CLOUD_IP, events=(GRANT,), profile=CLOUD_PROFILE,
                    disclosed=(Disclosure("acme-cloud.example", (IMEI_C,)),)),
               case(categories=("identity.birthdate",),
                    events=(GRANT, ev("refuse", 10, ("identity.birthdate",)))),
               case(categories=(PRECISE,), events=(GRANT, ev("withdraw", 10, (PRECISE,))))],
    },
    "AFTER_REFUSAL": {
        "hit": [case(events=(ev("refuse", 0, (IMEI_C,)),)),
                case(categories=(IMEI_C, PRECISE),
                     events=(GRANT, ev("refuse", 50, ("location",))),
                     expect=((1, (PRECISE,)),))],
        "ok": [case(), case(events=(ev("refuse", 0, (IMEI_C,)), grant(50))),
               case(events=(ev("refuse", 0, (IMEI_C,), recipients=("amap.com",)),)),
               case(at=-1, events=(ev("refuse", 0, (IMEI_C,)),))],
    },
    "AFTER_WITHDRAWAL": {
        "hit": [case(categories=(PRECISE,), at=161,
                     events=(GRANT_SEP, ev("withdraw", 100, (PRECISE,)))),
                case(recipient=AMAP, categories=(PRECISE, IMEI_C), at=500,
                     events=(GRANT, ev("withdraw", 100, ("location",),
                                       recipients=("AutoNavi",))),
                     expect=((1, (PRECISE,)),)),
                case(categories=(PRECISE,), at=100, grace=0.0,
                     events=(GRANT, ev("withdraw", 100, (PRECISE,))))],
        "ok": [case(categories=(PRECISE,), at=159,
                    events=(GRANT, ev("withdraw", 100, (PRECISE,)))),
               case(categories=(PRECISE,), at=100,
                    events=(GRANT, ev("withdraw", 100, (PRECISE,)))),
               case(categories=(IMEI_C,), at=500,
                    events=(GRANT, ev("withdraw", 100, (PRECISE,)))),
               case(recipient=FIRST, categories=(PRECISE,), at=500,
                    events=(GRANT, ev("withdraw", 100, ("location",),
                                      recipients=("amap.com",)))),
               case(categories=(PRECISE,), at=500,
                    events=(GRANT, ev("withdraw", 100, (PRECISE,)), grant(300)))],
    },
    "SENSITIVE_NO_SEPARATE_CONSENT": {
        "hit": [case(categories=(PRECISE, IMEI_C), events=(GRANT,),
                     expect=((1, (PRECISE,)),)),
                case(categories=(CONTACT,)),
                case(categories=(VOICE, PRECISE),
                     events=(grant(cats=(PRECISE, VOICE), separate=(PRECISE,)),),
                     expect=((1, (VOICE,)),)),
                case(categories=(PRECISE,), at=500,
                     events=(GRANT_SEP, ev("withdraw", 100, (PRECISE,)))),
                case(recipient=ADS, categories=(PRECISE,), events=(GRANT_SEP,)),
                case(categories=("identity.national_id", PHOTO))],
        "ok": [case(categories=(PRECISE,), events=(GRANT_SEP,)),
               case(categories=(IMEI_C,)),
               case(recipient=AMAP, categories=(WIFI, PRECISE),
                    events=(grant(cats=("location",), separate=("location",)),)),
               case(categories=(PRECISE,), at=150,
                    events=(GRANT_SEP, ev("withdraw", 100, (PRECISE,))))],
    },
    "MEDIA_UPLOAD": {
        "hit": [case(categories=(VOICE,)), case(categories=(PHOTO, IMEI_C), events=(GRANT,),
                                                 expect=((1, (PHOTO,)),)),
                case(categories=(VOICE,), at=500,
                     events=(grant(cats=("media",)), ev("withdraw", 100, (VOICE,)))),
                case(categories=(VOICE,), events=(ev("refuse", 0, (VOICE,)),))],
        "ok": [case(categories=(VOICE,), events=(grant(cats=(VOICE,)),)),
               case(categories=(IMEI_C,)), case(categories=(VOICE,), direction="down")],
    },
    "THIRD_PARTY_UNDISCLOSED": {
        "hit": [case(recipient=ADS),
                case(recipient=AMAP, categories=(PRECISE, IMEI_C), expect=((1, (IMEI_C,)),)),
                case(recipient=AUTONAVI, categories=(WIFI, IMEI_C),
                     disclosed=(Disclosure("AutoNavi", (WIFI,)),), expect=((1, (IMEI_C,)),)),
                case(recipient=UNKNOWN, categories=(PRECISE,)),
                case(recipient=WATCH_AS_SEEN, host=WATCH_IP)],
        "ok": [case(categories=("identity.birthdate",)),
               case(recipient=WATCH_AS_SEEN, host=WATCH_IP, profile=MAKER_BY_IP),
               case(recipient=AMAP, categories=(PRECISE,), disclosed=AMAP_PROCESSOR),
               case(recipient=AMAP, categories=(PRECISE, WIFI), host="restapi.amap.com"),
               case(recipient=AUTONAVI, categories=(WIFI,),
                    disclosed=(Disclosure("autonavi", (WIFI,)),)),
               case(recipient=ADS, categories=()),
               case(recipient=Recipient(FIRST_PARTY), categories=(MAC,))],
    },
    "PERSISTENT_ID_TO_THIRD_PARTY": {
        "hit": [case(recipient=ADS, categories=(IMEI_C, ADV), expect=((1, (IMEI_C,)),)),
                case(recipient=CDN, categories=("identity.phone", MAC, "identifier.iccid",
                                                "identifier.imsi", "identifier.serial")),
                case(recipient=WATCH_AS_SEEN, host=WATCH_IP),
                # a processor with no grant yet, or disclosed as a third party, is one
                case(recipient=UMENG, disclosed=UMENG_PROCESSOR),
                case(recipient=UMENG, events=(GRANT,),
                     disclosed=(*DISCLOSED, Disclosure("umeng.com", (IMEI_C,)))),
                case(recipient=UMENG, categories=(IMEI_C, MAC), events=(GRANT,),
                     disclosed=UMENG_PROCESSOR, expect=((1, (MAC,)),))],
        "ok": [case(), case(recipient=ADS, categories=(ADV, "identifier.android_id")),
               case(recipient=WATCH_AS_SEEN, host=WATCH_IP, profile=MAKER_BY_IP),
               case(recipient=WATCH_AS_SEEN, host="watch.example", ip=WATCH_IP,
                    profile=MAKER_BY_IP),
               case(recipient=UMENG, events=(GRANT,), disclosed=UMENG_PROCESSOR),
               case(recipient=ADS, direction="down"),
               case(recipient=UNKNOWN, profile=profile(first_party=()))],
    },
    "CROSS_SERVICE_LINKING": {
        "hit": [case(Msg(), Msg(recipient=ADS, at=200), expect=((1, (IMEI_C,)), (2, (IMEI_C,)))),
                case(Msg(recipient=ADS, categories=(), found=(
                         Found(MAC, "AA-BB-CC-00-11-22", "pattern"),)),
                     Msg(recipient=UMENG, categories=(), at=200, found=(
                         Found(MAC, "aabbcc001122", "pattern"),)),
                     expect=((1, (MAC,)), (2, (MAC,)))),
                case(Msg(recipient=ADS, categories=(), found=(
                         Found(IMEI_C, IMEI, profile_key="identifiers.imei"),)),
                     Msg(recipient=AMAP, categories=(), at=200, found=(
                         Found(IMEI_C, IMEI, "pattern"),)),
                     Msg(recipient=AMAP, categories=(ADV,), at=300),
                     expect=((1, (IMEI_C,)), (2, (IMEI_C,)))),
                # the watch server's IP is someone else while the profile does not say whose
                case(Msg(), Msg(recipient=WATCH_AS_SEEN, host=WATCH_IP, at=200),
                     expect=((1, (IMEI_C,)), (2, (IMEI_C,)))),
                # a processor not (yet) granted the identifier is another organisation
                case(Msg(), Msg(recipient=UMENG, at=200), disclosed=UMENG_PROCESSOR,
                     expect=((1, (IMEI_C,)), (2, (IMEI_C,))))],
        "ok": [case(Msg(recipient=AMAP), Msg(recipient=AUTONAVI, at=200)),
               # the maker's domain and its IP are one organisation
               case(Msg(), Msg(recipient=WATCH, host=WATCH_IP, at=200)),
               case(Msg(), Msg(recipient=WATCH_AS_SEEN, host=WATCH_IP, ip=WATCH_IP, at=200),
                    profile=MAKER_BY_IP),
               case(Msg(recipient=Recipient(WATCH_IP, MAKER_ORG, party="third"),
                        host=WATCH_IP),
                    Msg(recipient=Recipient("acme-cdn.example", MAKER_ORG, party="third"),
                        at=200)),
               # a granted processor acts for the maker
               case(Msg(), Msg(recipient=UMENG, at=200), events=(GRANT,),
                    disclosed=UMENG_PROCESSOR),
               case(Msg(), Msg(host="cdn.acme-watch.example", at=200)),
               case(Msg(recipient=ADS, categories=(), found=(
                        Found(IMEI_C, "490154203237518", "pattern"),)),
                    Msg(recipient=UMENG, categories=(), at=200, found=(
                        Found(IMEI_C, "356938035643809", "pattern"),))),
               case(Msg(categories=("identity.name",)),
                    Msg(recipient=ADS, categories=("identity.name",), at=200)),
               case(Msg(), Msg(recipient=ADS, direction="down", at=200))],
    },
    "LOCATION_TO_THIRD_PARTY": {
        "hit": [case(recipient=AMAP, categories=(PRECISE, WIFI, IMEI_C),
                     expect=((1, (PRECISE, WIFI)),)),
                case(recipient=CDN, categories=("location.coarse",)),
                case(recipient=UNKNOWN, categories=(CELL,)),
                case(recipient=WATCH_AS_SEEN, host=WATCH_IP, categories=(PRECISE,)),
                # disclosed and granted, but as a third party (the plan's default role)
                case(recipient=AMAP, categories=(PRECISE,), events=(GRANT_SEP,)),
                # a processor, but precise location was not granted separately (PIPL 29)
                case(recipient=AMAP, categories=(PRECISE, WIFI), events=(GRANT,),
                     disclosed=AMAP_PROCESSOR, expect=((1, (PRECISE,)),)),
                # a processor before any grant
                case(recipient=AMAP, categories=(PRECISE, WIFI), disclosed=AMAP_PROCESSOR),
                # a processor after the guardian withdrew location
                case(recipient=AMAP, categories=(CELL,), at=500, disclosed=AMAP_PROCESSOR,
                     events=(GRANT_SEP, ev("withdraw", 100, ("location",))))],
        "ok": [case(categories=(PRECISE,)), case(recipient=ADS),
               case(recipient=WATCH_AS_SEEN, host=WATCH_IP, categories=(PRECISE,),
                    profile=MAKER_BY_IP),
               case(recipient=AMAP, categories=(PRECISE, WIFI, CELL), events=(GRANT_SEP,),
                    disclosed=AMAP_PROCESSOR),
               case(recipient=UNKNOWN, categories=(CELL,), profile=profile(first_party=())),
               case(recipient=AMAP, categories=(PRECISE,), direction="down")],
    },
    "DIRECT_IDS_TO_THIRD_PARTY": {
        "hit": [case(recipient=ADS, categories=("identity.name", "identity.birthdate", IMEI_C),
                     expect=((1, ("identity.name", "identity.birthdate")),)),
                case(recipient=CDN, categories=("identity.phone", "identity.email",
                                                "identity.national_id", "identity.school",
                                                "identity.address")),
                case(recipient=UMENG, categories=("identity.name", "identity.birthdate"),
                     events=(GRANT,), disclosed=UMENG_PROCESSOR,
                     expect=((1, ("identity.birthdate",)),))],
        "ok": [case(categories=("identity.name",)), case(recipient=ADS),
               case(recipient=UMENG, categories=("identity.name",), events=(GRANT,),
                    disclosed=UMENG_PROCESSOR),
               case(recipient=ADS, categories=(CONTACT,))],
    },
    "AD_TRACKER_RECEIVES_CHILD_DATA": {
        "hit": [case(recipient=ADS, categories=(ADV, "identity.name"), events=(GRANT,),
                     expect=((1, (ADV,)),)),
                case(recipient=APPSFLYER, categories=(CELL, "identifier.android_id")),
                case(recipient=ADS, categories=(ADV, PRECISE), events=(GRANT,),
                     disclosed=ADS_PROCESSOR, expect=((1, (PRECISE,)),))],
        "ok": [case(recipient=UMENG), case(recipient=ADS, categories=("identity.name",)),
               case(recipient=ADS, categories=(ADV, PRECISE), events=(GRANT_SEP,),
                    disclosed=ADS_PROCESSOR),
               case(recipient=AMAP, categories=(PRECISE,))],
    },
    "CROSS_BORDER": {
        "hit": [case(recipient=ADS, categories=(ADV, PRECISE)),
                case(recipient=dataclasses.replace(CDN, country="sg")),
                # a processor's data abroad is still abroad (PIPL 38)
                case(recipient=ADS, categories=(ADV, PRECISE), events=(GRANT_SEP,),
                     disclosed=ADS_PROCESSOR)],
        "ok": [case(recipient=AMAP), case(recipient=CDN),
               case(recipient=ADS, profile=profile(jurisdiction="")),
               case(recipient=ADS, categories=()), case(recipient=ADS, direction="down")],
    },
    "NON_RESETTABLE_ID": {
        "hit": [case(categories=(IMEI_C, "identifier.iccid", PRECISE),
                     expect=((1, (IMEI_C, "identifier.iccid")),)),
                case(recipient=ADS, categories=(MAC, "identifier.imsi", "identifier.serial"))],
        "ok": [case(categories=("identifier.android_id", ADV, "identity.phone")),
               case(direction="down")],
    },
    "EXCESS_FREQUENCY": {
        "hit": [case(Msg(recipient=AMAP, categories=(WIFI,), at=100),
                     Msg(recipient=AMAP, categories=(WIFI,), at=130),
                     events=(GRANT, ev("phase", 50, name="idle")), disclosed=AMAP_PROCESSOR,
                     expect=((1, (WIFI,)), (2, (WIFI,)))),
                case(Msg(categories=(PRECISE,), at=100), Msg(categories=(PRECISE,), at=130),
                     events=(IDLE,), expect=((1, (PRECISE,)), (2, (PRECISE,)))),
                case(Msg(at=100), Msg(at=200), limits=((IMEI_C, 300.0),),
                     expect=((1, (IMEI_C,)), (2, (IMEI_C,)))),
                case(Msg(categories=(PRECISE, WIFI), at=100), Msg(categories=(WIFI,), at=130),
                     Msg(categories=(PRECISE,), at=250), Msg(categories=(PRECISE,), at=290),
                     events=(IDLE,),
                     expect=((1, (WIFI,)), (2, (WIFI,)), (3, (PRECISE,)), (4, (PRECISE,))))],
        "ok": [case(Msg(categories=(PRECISE,), at=100), Msg(categories=(PRECISE,), at=160),
                    events=(IDLE,)),
               case(Msg(categories=(PRECISE,), at=100), Msg(categories=(PRECISE,), at=130)),
               case(Msg(categories=(PRECISE,), at=100), Msg(categories=(PRECISE,), at=130),
                    events=(ev("phase", 120, name="idle"),)),
               case(Msg(categories=(PRECISE,), at=100), Msg(categories=(PRECISE,), at=130),
                    events=(IDLE, ev("phase", 110, name="sos"))),
               case(Msg(categories=(PRECISE,), at=100),
                    Msg(recipient=AMAP, categories=(PRECISE,), at=130), events=(IDLE,)),
               case(Msg(at=100), Msg(at=110), events=(IDLE,)),
               case(Msg(categories=(PRECISE,), at=100), Msg(categories=(PRECISE,), at=130),
                    events=(IDLE,), limits=((PRECISE, 20.0),))],
    },
    "BACKGROUND_COLLECTION": {
        "hit": [case(events=(IDLE,)),
                case(events=(ev("phase", 0, name="setup"), ev("phase", 50, name="Idle")))],
        "ok": [case(events=(ev("phase", 0, name="setup"),)), case(),
               case(events=(IDLE, ev("phase", 50, name="sos"))),
               case(events=(ev("phase", 150, name="idle"),)),
               case(categories=(), events=(IDLE,))],
    },
    "BULK_CONTACTS": {
        "hit": [case(categories=(), found=(
                    Found(CONTACT, "+8613900139001", profile_key="contacts[0].phone"),
                    Found(CONTACT, "Zhang Wei", profile_key="contacts[1].name"))),
                case(categories=(), found=(Found(CONTACT, "13512345678", "pattern"),
                                           Found(CONTACT, "+86 135 8765 4321", "pattern"))),
                case(categories=(), found=(
                    Found(CONTACT, "Li Mei", profile_key="contacts[0].name"),
                    Found(CONTACT, "137-0013-7002", "pattern")))],
        "ok": [case(categories=(), found=(
                   Found(CONTACT, "Li Mei", profile_key="contacts[0].name"),
                   Found(CONTACT, "+8613900139001", profile_key="contacts[0].phone"))),
               case(categories=(), found=(
                   Found(CONTACT, "+8613900139001", profile_key="contacts[0].phone"),
                   Found(CONTACT, "139 0013 9001", "pattern"))),
               case(categories=(CONTACT,)),
               case(categories=(), direction="down", found=(
                   Found(CONTACT, "Li Mei", profile_key="contacts[0].name"),
                   Found(CONTACT, "Zhang Wei", profile_key="contacts[1].name")))],
    },
    "CLEARTEXT_PI": {
        "hit": [case(transport="http", events=(GRANT,)), case(transport="tcp"),
                case(transport="dns"), case(transport="udp"),
                case(transport="websocket", url="ws://gw.acme-watch.example/ws"),
                # a granted processor still gets a cleartext finding (PIPL 51)
                case(recipient=AMAP, transport="http", categories=(WIFI,), events=(GRANT,),
                     disclosed=AMAP_PROCESSOR)],
        "ok": [case(transport="https"), case(transport="http", categories=()),
               case(transport="websocket"),
               case(transport="websocket", url="wss://gw.acme-watch.example/ws"),
               case(transport="tcp", direction="down"),
               # a watch protocol inside TLS the proxy terminated: encrypted on the wire
               case(transport="tcp", decrypted=True)],
    },
    "CREDENTIALS_EXPOSED": {
        "hit": [case(transport="http", categories=(PASSWORD,), expect=((1, (PASSWORD,)),)),
                case(categories=(), found=(Found(PASSWORD, location="query",
                                                 field="query.p"),),
                     expect=((1, (PASSWORD,)),)),
                case(categories=(), url="https://api.acme-watch.example/login?u=kid&pwd=x1",
                     expect=((1, (PASSWORD,)),)),
                case(transport="tcp", categories=(), found=(
                    Found("identity.phone", field="payload.loginPassword"),),
                    expect=((1, (PASSWORD,)),))],
        "ok": [case(categories=(PASSWORD,)),
               case(transport="http", categories=(IMEI_C,)),
               case(categories=(), url="https://api.acme-watch.example/login?u=kid&pwd="),
               case(transport="http", categories=(PASSWORD,), direction="down"),
               case(categories=(), url="https://api.acme-watch.example/passport?id=1")],
    },
    "WEAK_TLS": {
        "hit": [case(transport="tls", inspected=False, categories=(),
                     tls_versions=("TLSv1", "TLSv1.1"), expect=NONE_HIT),
                case(tls_versions=("TLSv1.2",), tls_ciphers=(
                    "TLS_AES_128_GCM_SHA256", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
                    expect=NONE_HIT),
                case(tls_ciphers=("TLS_RSA_WITH_RC4_128_SHA",), expect=NONE_HIT),
                case(tls_ciphers=("TLS_RSA_EXPORT_WITH_DES40_CBC_SHA",), expect=NONE_HIT),
                case(tls_ciphers=("TLS_RSA_WITH_NULL_SHA256",), expect=NONE_HIT),
                case(tls_ciphers=("DES-CBC3-SHA",), expect=NONE_HIT)],
        "ok": [case(tls_versions=("TLSv1", "TLSv1.1", "TLSv1.2"),
                    tls_ciphers=("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",)),
               case(tls_versions=("TLSv1.3",)), case(),
               case(direction="down", tls_versions=("TLSv1",))],
    },
    "NO_CERT_VALIDATION": {
        "hit": [case(profile=UNTRUSTING, expect=NONE_HIT),
                case(profile=UNTRUSTING, transport="tls", categories=(), decrypted=True,
                     expect=NONE_HIT),
                case(profile=UNTRUSTING, transport="websocket", url="wss://gw.example/ws",
                     expect=NONE_HIT)],
        "ok": [case(), case(decrypted=True), case(profile=UNTRUSTING, transport="http"),
               case(profile=UNTRUSTING, transport="tls", inspected=False, categories=()),
               case(profile=UNTRUSTING, transport="websocket", url="ws://gw.example/ws")],
    },
    **{rule: _probe_cases(case_name) for rule, case_name in PROBE_RULES.items()},
    "INSECURE_UPDATE": {
        "hit": [case(transport="http", method="GET", categories=(), expect=NONE_HIT,
                     url="http://fw.acme-watch.example/ota/k2-1.5.0.bin"),
                case(transport="http", method="GET", categories=(), expect=NONE_HIT,
                     url="http://dl.acme-watch.example/app/KidsWatch-2.1.apk"),
                case(transport="http", method="GET", categories=(), expect=NONE_HIT,
                     url="http://dl.acme-watch.example/firmware/latest"),
                case(transport="http", categories=(), tags=("firmware",), expect=NONE_HIT)],
        "ok": [case(method="GET", categories=(),
                    url="https://fw.acme-watch.example/ota/k2-1.5.0.bin"),
               case(transport="http", method="POST", categories=(),
                    url="http://api.acme-watch.example/location/update"),
               case(transport="http", method="GET", categories=(),
                    url="http://api.acme-watch.example/api/status"),
               case(transport="http", method="GET", categories=(),
                    url="http://api.acme-watch.example/api/checkUpdate?v=1.4.2")],
    },
    "COVERT_MONITOR": {
        "hit": [case(transport="tcp", direction="down", categories=(),
                     tags=("command:MONITOR",), expect=NONE_HIT),
                case(transport="tcp", direction="down", categories=(),
                     tags=("command:monitor", "command:CR"), expect=NONE_HIT)],
        "ok": [case(transport="tcp", direction="up", categories=(), tags=("command:MONITOR",)),
               case(transport="tcp", direction="down", categories=(), tags=("command:CR",)),
               case(transport="tcp", direction="down", categories=())],
    },
    "UNINSPECTED_TRAFFIC": {
        "hit": [case(transport="tls", inspected=False, categories=(), expect=NONE_HIT),
                case(opaque=("body: compressed size limit",), expect=NONE_HIT)],
        "ok": [case(), case(categories=()),
               case(probe="untrusted-ca", transport="tls", inspected=False, categories=())],
    },
}


def test_every_rule_has_hit_and_ok_fixtures() -> None:
    for rule in CATALOGUE:
        cases = CASES.get(rule.id, {})
        assert cases.get("hit") and cases.get("ok"), f"{rule.id} lacks hit or ok fixtures"


def test_fixtures_name_only_catalogue_rules() -> None:
    assert set(CASES) == {r.id for r in CATALOGUE}


def test_rule_ids_are_unique_and_severities_known() -> None:
    ids = [r.id for r in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert {r.severity for r in CATALOGUE} <= set(SEVERITIES)


@pytest.mark.parametrize(("rule_id", "expected"), [
    ("PRE_CONSENT_PI", ("COPPA 312.5(a)",)),
    ("AFTER_REFUSAL", ("MNR 32",)),
    ("CROSS_BORDER", ("35273 9.8", "GDPR 44–46")),
    ("INSECURE_UPDATE", ("ETSI 5.3", "18031 SUM")),
    ("AFTER_WITHDRAWAL", ()),
    ("UNINSPECTED_TRAFFIC", ()),
])
def test_unverified_clauses_are_marked(rule_id: str, expected: tuple[str, ...]) -> None:
    assert tuple(r.rstrip("*") for r in by_id(rule_id).unverified) == expected


def _params(kind: str) -> list:
    return [pytest.param(rid, c, id=f"{rid}-{kind}{i}")
            for rid, cases in CASES.items() for i, c in enumerate(cases[kind])]


@pytest.mark.parametrize(("rule_id", "case"), _params("hit"))
def test_rule_hits(rule_id: str, case: Case) -> None:
    assert by_id(rule_id).hits(case.observations(), case.context()) == case.expected()


@pytest.mark.parametrize(("rule_id", "case"), _params("ok"))
def test_rule_stays_quiet(rule_id: str, case: Case) -> None:
    assert by_id(rule_id).hits(case.observations(), case.context()) == []


# -- consent-family precedence: one transmission x category, one consent finding ---------

WITHDRAW_PRECISE = ev("withdraw", 100, (PRECISE,))
REFUSE_IMEI = ev("refuse", 0, (IMEI_C,))


@pytest.mark.parametrize(("timeline", "expected"), [
    # after a withdrawal: never also "without a separate grant" (issue 15)
    pytest.param(case(categories=(PRECISE,), at=500, events=(GRANT_SEP, WITHDRAW_PRECISE)),
                 {"AFTER_WITHDRAWAL": (PRECISE,)}, id="withdrawn-separate-grant"),
    pytest.param(case(categories=(PRECISE,), at=500, events=(GRANT, WITHDRAW_PRECISE)),
                 {"AFTER_WITHDRAWAL": (PRECISE,)}, id="withdrawn-plain-grant"),
    pytest.param(case(categories=(PRECISE,), at=500, events=(WITHDRAW_PRECISE,)),
                 {"AFTER_WITHDRAWAL": (PRECISE,)}, id="withdrawn-before-any-grant"),
    # within the grace window the grant still holds: only its missing separateness is left
    pytest.param(case(categories=(PRECISE,), at=150, events=(GRANT, WITHDRAW_PRECISE)),
                 {"SENSITIVE_NO_SEPARATE_CONSENT": (PRECISE,)}, id="withdrawn-in-grace"),
    # after a refusal: neither pre-consent nor without a separate grant
    pytest.param(case(events=(REFUSE_IMEI,)), {"AFTER_REFUSAL": (IMEI_C,)},
                 id="refused-before-any-grant"),
    pytest.param(case(categories=(CONTACT,), events=(GRANT, ev("refuse", 50, (CONTACT,)))),
                 {"AFTER_REFUSAL": (CONTACT,)}, id="refused-after-grant"),
    pytest.param(case(categories=(IMEI_C, PRECISE), events=(ev("refuse", 0, (PRECISE,)),)),
                 {"AFTER_REFUSAL": (PRECISE,), "PRE_CONSENT_PI": (IMEI_C,)},
                 id="refused-one-category-before-any-grant"),
    # before any grant: PRE_CONSENT_SDK for what an SDK host gets of it, else PRE_CONSENT_PI
    pytest.param(case(categories=(CONTACT, PRECISE)),
                 {"PRE_CONSENT_PI": (CONTACT, PRECISE)}, id="before-consent"),
    pytest.param(case(recipient=UMENG, categories=(IMEI_C, PRECISE, "identity.name")),
                 {"PRE_CONSENT_SDK": (IMEI_C, PRECISE), "PRE_CONSENT_PI": ("identity.name",)},
                 id="before-consent-to-an-sdk"),
    # after a grant that never covered it: beyond scope, not also without a separate grant
    pytest.param(case(recipient=ADS, categories=(ADV, PRECISE), events=(GRANT,)),
                 {"SCOPE_EXCEEDED": (ADV, PRECISE)}, id="beyond-scope"),
    pytest.param(case(categories=(PRECISE, "identity.birthdate"), events=(GRANT,)),
                 {"SCOPE_EXCEEDED": ("identity.birthdate",),
                  "SENSITIVE_NO_SEPARATE_CONSENT": (PRECISE,)}, id="beyond-scope-and-plain"),
    # granted, but not separately: the least specific consent finding
    pytest.param(case(categories=(PRECISE, IMEI_C), events=(GRANT,)),
                 {"SENSITIVE_NO_SEPARATE_CONSENT": (PRECISE,)}, id="without-separate-grant"),
    pytest.param(case(categories=(PRECISE, IMEI_C), events=(GRANT_SEP,)), {},
                 id="separately-granted"),
])
def test_a_transmission_category_gets_only_the_most_specific_consent_finding(
        timeline: Case, expected: dict[str, tuple[str, ...]]) -> None:
    """RULES.md "Precedence": after withdrawal, after refusal, before consent (to an SDK
    host, then at all), beyond scope, without separate grant; other families unaffected."""
    findings = evaluate(timeline.observations(), timeline.context())
    assert {f.rule: f.categories for f in findings if f.rule in PRECEDENCE} == expected


@pytest.mark.parametrize(("hits", "expected"), [
    ({"AFTER_WITHDRAWAL": frozenset({PRECISE}), "SENSITIVE_NO_SEPARATE_CONSENT":
      frozenset({PRECISE, CONTACT}), "CLEARTEXT_PI": frozenset({PRECISE})},
     {"AFTER_WITHDRAWAL": frozenset({PRECISE}), "SENSITIVE_NO_SEPARATE_CONSENT":
      frozenset({CONTACT}), "CLEARTEXT_PI": frozenset({PRECISE})}),
    ({"PRE_CONSENT_PI": frozenset({IMEI_C}), "PRE_CONSENT_SDK": frozenset({IMEI_C}),
      "UNINSPECTED_TRAFFIC": frozenset()},
     {"PRE_CONSENT_SDK": frozenset({IMEI_C}), "UNINSPECTED_TRAFFIC": frozenset()}),
    ({"MEDIA_UPLOAD": frozenset({VOICE}), "PRE_CONSENT_PI": frozenset({VOICE})},
     {"MEDIA_UPLOAD": frozenset({VOICE}), "PRE_CONSENT_PI": frozenset({VOICE})}),
    ({}, {}),
], ids=["family-narrowed-others-kept", "emptied-rule-dropped", "media-upload-apart", "none"])
def test_most_specific_narrows_only_the_consent_family(hits: dict, expected: dict) -> None:
    assert most_specific(hits) == expected


# -- the engine --------------------------------------------------------------------------

TWO = (by_id("PRE_CONSENT_PI"), by_id("CLEARTEXT_PI"))


def _obs(tx_id: int, at: float, cats: tuple[str, ...], transport: str = "https",
         recipient: Recipient = FIRST) -> Observation:
    return Msg(cats, at, transport, recipient).observation(tx_id)


def test_findings_aggregate_per_rule_and_organisation() -> None:
    ctx = Case().context()
    observations = [_obs(1, 1, (IMEI_C,)), _obs(2, 2, (IMEI_C,)),
                    _obs(3, 3, (IMEI_C, PRECISE)), _obs(4, 4, (IMEI_C,), recipient=ADS)]
    findings = evaluate(observations, ctx, TWO)
    summary = {(f.rule, f.recipient, f.categories): (f.transmissions, f.count, f.recipients)
               for f in findings}
    assert summary == {  # an organisation named in the data, else the address
        ("PRE_CONSENT_PI", FIRST_PARTY, (IMEI_C, PRECISE)): ((1, 2, 3), 3, (FIRST_PARTY,)),
        ("PRE_CONSENT_PI", "AdCo", (IMEI_C,)): ((4,), 1, ("ads.example",)),
    }
    first = findings[0]
    assert first.count == 3 and first.first_seen == T0 + 1 and first.last_seen == T0 + 3
    assert first.per_category == (CategoryFacts(IMEI_C, 3, T0 + 1, T0 + 3),
                                  CategoryFacts(PRECISE, 1, T0 + 3, T0 + 3))


def test_one_organisations_hosts_make_one_finding() -> None:
    observations = [_obs(1, 1, (IMEI_C,), recipient=AMAP),
                    _obs(2, 2, (PRECISE,), recipient=AUTONAVI)]
    (finding,) = evaluate(observations, Case().context(), TWO[:1])
    assert (finding.rule, finding.recipient, finding.recipients, finding.categories,
            finding.transmissions) == ("PRE_CONSENT_PI", "AutoNavi",
                                       ("amap.com", "autonavi.com"), (IMEI_C, PRECISE), (1, 2))
    assert finding.id == finding_id("PRE_CONSENT_PI", "AutoNavi")


def test_aggregator_reports_a_finding_only_when_it_opens() -> None:
    agg = Aggregator(Case().context(), TWO)
    assert [f.rule for f in agg.add(_obs(1, 1, (IMEI_C,), "http"))] == [
        "PRE_CONSENT_PI", "CLEARTEXT_PI"]
    assert agg.add(_obs(2, 2, (IMEI_C,), "http")) == []
    assert {f.count for f in agg.findings()} == {2}


def test_a_new_category_for_the_same_organisation_raises_no_new_alert() -> None:
    agg = Aggregator(Case().context(), TWO[:1])
    assert [(f.rule, f.recipient, f.categories) for f in agg.add(_obs(1, 1, (IMEI_C,)))] == [
        ("PRE_CONSENT_PI", FIRST_PARTY, (IMEI_C,))]
    assert agg.add(_obs(2, 2, (IMEI_C, PRECISE))) == []
    assert [(f.recipient, f.categories, f.transmissions) for f in agg.findings()] == [
        (FIRST_PARTY, (IMEI_C, PRECISE), (1, 2))]


def test_findings_are_sorted_worst_first_and_record_the_consent_state() -> None:
    ctx = Case(events=(GRANT,)).context()
    (finding,) = evaluate([_obs(1, 5, (IMEI_C,), "http")], ctx, TWO)
    assert finding.rule == "CLEARTEXT_PI" and finding.consent == ("granted",)


def test_an_alert_leaves_consent_states_to_the_findings() -> None:
    agg = Aggregator(Case(events=(GRANT,)).context(), TWO)
    (opened,) = agg.add(_obs(1, 5, (IMEI_C,), "http"))
    assert (opened.rule, opened.consent) == ("CLEARTEXT_PI", ())
    assert [(f.transmissions, f.consent) for f in agg.findings()] == [((1,), ("granted",))]


class CountingLedger(Ledger):
    """A ledger that counts how often each (transmission time, category) state is asked."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.asked: dict[tuple[float, str], int] = {}

    def state(self, category: str, recipient: Recipient, t: float, host: str = ""
              ) -> ConsentState:
        self.asked[(t, category)] = self.asked.get((t, category), 0) + 1
        return super().state(category, recipient, t, host)


# rules that never ask the ledger themselves: every question is the findings' consent
NO_LEDGER = ("CLEARTEXT_PI", "NON_RESETTABLE_ID", "PERSISTENT_ID_TO_THIRD_PARTY",
             "CROSS_SERVICE_LINKING")


def test_a_findings_consent_is_asked_once_per_message_and_category() -> None:
    ledger = CountingLedger(ConsentPlan(events=(GRANT,)))
    ctx = RuleContext(profile(), ledger)
    observations = [_obs(1, 1, (IMEI_C, MAC), "http"), _obs(2, 2, (IMEI_C,), "http", ADS),
                    _obs(3, 3, (IMEI_C,), "http", UMENG)]
    findings = evaluate(observations, ctx, [by_id(r) for r in NO_LEDGER])
    assert {f.rule for f in findings} == set(NO_LEDGER)  # several rules on every message
    assert all(f.consent for f in findings)
    assert ledger.asked == {(T0 + 1, IMEI_C): 1, (T0 + 1, MAC): 1, (T0 + 2, IMEI_C): 1,
                            (T0 + 3, IMEI_C): 1}


def test_an_alert_never_asks_the_ledger_for_consent_states() -> None:
    ledger = CountingLedger(ConsentPlan(events=(GRANT,)))
    agg = Aggregator(RuleContext(profile(), ledger), [by_id(r) for r in NO_LEDGER])
    opened = [f for i in (1, 2, 3) for f in agg.add(_obs(i, i, (IMEI_C,), "http",
                                                         (FIRST, ADS, UMENG)[i - 1]))]
    assert opened and ledger.asked == {}


def test_finding_ids_are_stable() -> None:
    # (rule, organisation) since findings are one per problem; the categories no longer count
    assert finding_id("PRE_CONSENT_PI", "acme-watch.example") == "KA-a34486b0c8"
    (finding,) = evaluate([_obs(1, 1, (IMEI_C,))], Case().context(), TWO[:1])
    assert finding.id == "KA-a34486b0c8"


def test_a_connection_rule_hit_has_no_categories() -> None:
    obs = Msg((), transport="tls", recipient=CDN, host="pinned.cdn.example",
              inspected=False).observation(7)
    (finding,) = evaluate([obs], Case().context())
    assert (finding.rule, finding.recipient, finding.categories, finding.transmissions,
            finding.consent) == ("UNINSPECTED_TRAFFIC", "cdn.example", (), (7,), ())


def test_a_session_rule_opens_its_finding_live_when_the_second_organisation_appears() -> None:
    rule = by_id("CROSS_SERVICE_LINKING")
    agg = Aggregator(Case().context(), (rule,))
    assert agg.add(_obs(1, 1, (IMEI_C,))) == []
    opened = agg.add(_obs(2, 2, (IMEI_C,), recipient=ADS))
    assert {(f.recipient, f.transmissions) for f in opened} == {
        (FIRST_PARTY, (1,)), ("AdCo", (2,))}
    assert agg.add(_obs(3, 3, (IMEI_C,))) == []
    assert [(f.recipient, f.transmissions) for f in agg.findings()] == [
        (FIRST_PARTY, (1, 3)), ("AdCo", (2,))]


def test_a_later_hit_on_the_same_message_merges_into_one_finding() -> None:
    agg = Aggregator(Case().context(), (by_id("CROSS_SERVICE_LINKING"),))
    agg.add(_obs(1, 1, (IMEI_C, MAC)))
    assert [f.categories for f in agg.add(_obs(2, 2, (IMEI_C,), recipient=ADS))] == [
        (IMEI_C,), (IMEI_C,)]
    # the maker's finding is open already: its new category is no new alert
    opened = agg.add(_obs(3, 3, (MAC,), recipient=UMENG))
    assert {(f.recipient, f.categories) for f in opened} == {("Alibaba", (MAC,))}
    findings = {f.recipient: f for f in agg.findings()}
    assert {(f.recipient, f.categories, f.transmissions) for f in findings.values()} == {
        (FIRST_PARTY, (IMEI_C, MAC), (1,)), ("AdCo", (IMEI_C,), (2,)),
        ("Alibaba", (MAC,), (3,))}
    # message 1 is listed once, each of its categories counted once
    assert findings[FIRST_PARTY].per_category == (CategoryFacts(IMEI_C, 1, T0 + 1, T0 + 1),
                                                  CategoryFacts(MAC, 1, T0 + 1, T0 + 1))


def test_a_rule_has_exactly_one_of_check_and_step() -> None:
    rule = by_id("PRE_CONSENT_PI")
    with pytest.raises(ValueError, match="exactly one"):
        dataclasses.replace(rule, step=by_id("EXCESS_FREQUENCY").step)
    assert {r.scope for r in CATALOGUE} == {"message", "session"}


# -- one scripted session through the whole catalogue ---------------------------------------

def _det(cat: str, key: str, value: str = "v", method: str = "known") -> Found:
    return Found(cat, value, method, key)


SCRIPT_PLAN = ConsentPlan(
    disclosed=DISCLOSED,
    events=(ev("phase", 0, name="setup"), ev("phase", 600, name="idle"),
            ev("withdraw", 900, (PRECISE,))),
    withdrawal_grace_s=60.0)
# The guardian taps "agree": the app's POST matched a plan signal and became this grant.
SIGNAL_GRANT = ConsentEvent(T0 + 60, "grant", ("all-disclosed",), separate=(PRECISE,),
                            source="signal")
PINNED = Recipient("pinned.example", party="third")
_IMEI = (_det(IMEI_C, "identifiers.imei", IMEI),)
SCRIPT: tuple[Msg, ...] = (
    Msg((), 10, found=_IMEI),                                                  # 1 register
    Msg((), 20, recipient=UMENG, found=_IMEI),                                 # 2 SDK init
    Msg((), 30, "tls", PINNED, inspected=False, tls_versions=("TLSv1", "TLSv1.1")),  # 3
    Msg((), 60, url="https://app.acme-watch.example/api/privacy/agree"),       # 4 agree
    Msg((PRECISE,), 100, found=(                                               # 5 contacts
        _det(CONTACT, "contacts[0].phone", "+8613900139001"),
        _det(CONTACT, "contacts[1].name", "Zhang Wei"))),
    Msg((), 200, "http", found=_IMEI),                                         # 6 cleartext
    Msg((ADV, PRECISE), 300, recipient=ADS),                                   # 7 ad SDK
    Msg((), 400, "http", method="GET",                                         # 8 firmware
        url="http://fw.acme-watch.example/ota/k2-1.5.0.bin"),
    Msg((), 500, "tcp", direction="down", tags=("command:MONITOR",)),          # 9 listen
    Msg((PRECISE,), 610), Msg((PRECISE,), 640), Msg((PRECISE,), 700),          # 10-12 idle
    Msg((PRECISE,), 930, recipient=AMAP),                                      # 13 in grace
    Msg((PRECISE,), 1000),                                                     # 14 after it
)
# findings are filed under the recipient's organisation where the data names one
FA, UM, AD = FIRST_PARTY, "Alibaba", "AdCo"
SCRIPT_FINDINGS = {
    ("PRE_CONSENT_PI", FA, (IMEI_C,), (1,)),
    ("PRE_CONSENT_SDK", UM, (IMEI_C,), (2,)),  # claims the IMEI from PRE_CONSENT_PI
    ("THIRD_PARTY_UNDISCLOSED", UM, (IMEI_C,), (2,)),
    ("PERSISTENT_ID_TO_THIRD_PARTY", UM, (IMEI_C,), (2,)),
    ("NON_RESETTABLE_ID", FA, (IMEI_C,), (1, 6)),
    ("NON_RESETTABLE_ID", UM, (IMEI_C,), (2,)),
    ("CROSS_SERVICE_LINKING", FA, (IMEI_C,), (1, 6)),
    ("CROSS_SERVICE_LINKING", UM, (IMEI_C,), (2,)),
    ("UNINSPECTED_TRAFFIC", "pinned.example", (), (3,)),
    ("WEAK_TLS", "pinned.example", (), (3,)),
    ("SENSITIVE_NO_SEPARATE_CONSENT", FA, (CONTACT,), (5,)),
    ("BULK_CONTACTS", FA, (CONTACT,), (5,)),
    ("CLEARTEXT_PI", FA, (IMEI_C,), (6,)),
    ("THIRD_PARTY_UNDISCLOSED", AD, (ADV, PRECISE), (7,)),
    ("SCOPE_EXCEEDED", AD, (ADV, PRECISE), (7,)),  # not also SENSITIVE_NO_SEPARATE_CONSENT
    ("LOCATION_TO_THIRD_PARTY", AD, (PRECISE,), (7,)),
    ("AD_TRACKER_RECEIVES_CHILD_DATA", AD, (ADV, PRECISE), (7,)),
    ("CROSS_BORDER", AD, (ADV, PRECISE), (7,)),
    ("INSECURE_UPDATE", FA, (), (8,)),
    ("COVERT_MONITOR", FA, (), (9,)),
    ("BACKGROUND_COLLECTION", FA, (PRECISE,), (10, 11, 12, 14)),
    ("EXCESS_FREQUENCY", FA, (PRECISE,), (10, 11)),
    ("BACKGROUND_COLLECTION", "AutoNavi", (PRECISE,), (13,)),
    ("LOCATION_TO_THIRD_PARTY", "AutoNavi", (PRECISE,), (13,)),
    ("AFTER_WITHDRAWAL", FA, (PRECISE,), (14,)),  # not also SENSITIVE_NO_SEPARATE_CONSENT
}


def _script() -> tuple[list[Observation], RuleContext]:
    observations = [m.observation(i) for i, m in enumerate(SCRIPT, 1)]
    return observations, RuleContext(profile(), Ledger(SCRIPT_PLAN, (SIGNAL_GRANT,)))


def test_a_scripted_session_fires_every_rule_exactly_where_it_should() -> None:
    observations, ctx = _script()
    findings = evaluate(observations, ctx)
    assert {(f.rule, f.recipient, f.categories, f.transmissions) for f in findings} == \
        SCRIPT_FINDINGS
    assert len(findings) == len(SCRIPT_FINDINGS)


def test_evaluate_is_deterministic_and_live_agrees_with_offline() -> None:
    observations, ctx = _script()
    offline = evaluate(observations, ctx)
    shuffled = observations[:]
    random.Random(7).shuffle(shuffled)
    assert evaluate(shuffled, ctx) == offline
    agg = Aggregator(ctx)
    opened = [f for obs in observations for f in agg.add(obs)]
    assert agg.findings() == offline
    assert sorted(f.id for f in opened) == sorted(f.id for f in offline)
    assert [f.severity for f in offline] == sorted(
        (f.severity for f in offline), key=SEVERITIES.index)


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_out_of_order_arrival_gives_the_findings_of_the_timeline(seed: int) -> None:
    """Messages reaching the proxy out of time order: the findings a session writes
    (``evaluate``, or ``extend`` of what arrived) are those of the ordered timeline."""
    observations, ctx = _script()
    in_order = evaluate(observations, ctx)
    late = observations[:]
    random.Random(seed).shuffle(late)
    agg = Aggregator(ctx)
    agg.extend(late)
    assert agg.findings() == in_order == evaluate(late, ctx)
    assert {(f.rule, f.recipient, f.categories, f.transmissions) for f in in_order} == \
        SCRIPT_FINDINGS


# -- hostile input: one rule failing on one message (issue 13) ---------------------------

def _fails_on_two(obs: Observation, ctx: RuleContext) -> frozenset[str] | None:
    if obs.transmission.id == 2:
        raise ValueError("Invalid IPv6 URL")
    return frozenset({IMEI_C})


def _step_fails_on_two(obs: Observation, memo: dict, ctx: RuleContext) -> list[Hit]:
    if obs.transmission.id == 2:
        raise ValueError("Invalid IPv6 URL")
    return [Hit(obs.transmission.id, frozenset({IMEI_C}))]


@pytest.mark.parametrize("failing", [
    dataclasses.replace(by_id("CLEARTEXT_PI"), id="FAILS", check=_fails_on_two),
    dataclasses.replace(by_id("CROSS_SERVICE_LINKING"), id="FAILS", step=_step_fails_on_two),
], ids=["message rule", "session rule"])
def test_a_rule_failing_on_one_message_loses_only_that_judgement(failing) -> None:
    errors: list[dict[str, object]] = []
    observations = [_obs(i, i, (IMEI_C,), "http") for i in (1, 2, 3)]
    findings = evaluate(observations, Case().context(), (failing, TWO[1]), errors=errors)
    by_rule = {f.rule: f.transmissions for f in findings}
    assert by_rule == {"FAILS": (1, 3), "CLEARTEXT_PI": (1, 2, 3)}
    assert errors == [{"transmission": 2, "stage": "rule FAILS",
                       "message": "ValueError: Invalid IPv6 URL"}]


def test_a_rule_failing_on_a_late_message_is_listed_once() -> None:
    failing = dataclasses.replace(by_id("CROSS_SERVICE_LINKING"), id="FAILS",
                                  step=_step_fails_on_two)
    agg = Aggregator(Case().context(), (failing,))
    for tx_id, at in ((1, 1), (3, 3), (2, 2)):  # 2 arrives late: stepped where it lands
        agg.add(_obs(tx_id, at, (IMEI_C,)))
    assert [e["transmission"] for e in agg.errors()] == [2]
    assert [f.transmissions for f in agg.findings()] == [(1, 3)]


@pytest.mark.parametrize("url, rules", [
    ("http://[bad/x?password=hunter2", {"CREDENTIALS_EXPOSED", "CLEARTEXT_PI"}),  # hit
    ("http://[bad/fota/image.bin", {"INSECURE_UPDATE", "CLEARTEXT_PI"}),          # hit
    ("https://[bad/x?q=1", set()),                                                  # ok
    ("http://api.acme-watch.example/x?q=1", {"CLEARTEXT_PI"}),                     # ok
])
def test_a_url_urlsplit_refuses_is_still_judged_by_its_parts(url: str, rules: set) -> None:
    """A Host header holding ``[`` makes ``urlsplit`` raise: the rules cut the URL by hand."""
    obs = Msg((IMEI_C,), transport="https", url=url, method="GET").observation(1)
    errors: list[dict[str, object]] = []
    fired = {f.rule for f in evaluate([obs], Case(events=(GRANT,)).context(), errors=errors)}
    watched = {"CREDENTIALS_EXPOSED", "CLEARTEXT_PI", "INSECURE_UPDATE"}
    assert fired & watched == rules and errors == []


# -- the issue 15 watch: the maker's server reached by bare IP ------------------------------

MAKER_RULES = frozenset({"THIRD_PARTY_UNDISCLOSED", "PERSISTENT_ID_TO_THIRD_PARTY",
                         "LOCATION_TO_THIRD_PARTY", "CROSS_SERVICE_LINKING", "SCOPE_EXCEEDED"})


@pytest.mark.parametrize(("seeded", "fired"), [
    pytest.param(profile(), MAKER_RULES, id="profile-names-the-domain-only"),
    pytest.param(profile(first_party=(FIRST_PARTY, MAKER_BLOCK)), frozenset(),
                 id="first-party-block"),
    pytest.param(profile(organisations=(Organisation(MAKER_ORG, (MAKER_BLOCK,),
                                                     (FIRST_PARTY,)),)), frozenset(),
                 id="organisation-owning-the-maker-domain"),
])
def test_the_makers_server_by_ip_is_the_maker(seeded: Profile, fired: frozenset[str]) -> None:
    """Attribution and rules together, as a session runs them: the watch reports to its
    maker's domain and to the maker's server by IP, under a plan disclosing the maker's
    domain and a grant of everything disclosed (precise location separately)."""
    pipeline = Pipeline.for_profile(seeded, load_sdks())
    body = {"imei": IMEI, "lat": LAT, "lon": LON}
    messages = [tx(id=1, ts=T0 + 10, json=body),
                tx(id=2, ts=T0 + 20, host=WATCH_IP, json=body,
                   headers=(("Host", WATCH_IP), ("Content-Type", "application/json")))]
    observations = [pipeline.observe(m) for m in messages]
    grant_all = event(categories="all-disclosed", separate=PRECISE)
    ctx = RuleContext(seeded, Ledger(plan(grant_all), profile=seeded))
    assert HOST != WATCH_IP and {IMEI_C, PRECISE} <= observations[1].categories
    assert {f.rule for f in evaluate(observations, ctx)} & MAKER_RULES == fired


# -- bounded memory (issue 16): facts, a window and a recall, not every observation ---------

class Recalled(dict):
    """The store's part as the engine sees it: an observation by id, counting each look-up
    (a ``dict`` of the session's observations; ``Store.observation`` in a session)."""

    def __init__(self, observations: list[Observation]) -> None:
        super().__init__((o.transmission.id, o) for o in observations)
        self.asked: list[int] = []

    def __call__(self, tx_id: int) -> Observation | None:
        self.asked.append(tx_id)
        return self.get(tx_id)


# Each session rule hitting a message older than a window of two: the first of two position
# reports to an ad SDK, other traffic in between; an IMEI the maker received ten times
# before an ad SDK receives it too.
_BETWEEN = tuple(Msg((MAC,), at) for at in range(2, 10))
OLD_HITS = {
    "frequency": Case((Msg((PRECISE,), 1, recipient=ADS), *_BETWEEN,
                       Msg((PRECISE,), 20, recipient=ADS)), limits=((PRECISE, 60.0),)),
    "linking": Case((*(Msg((IMEI_C,), at) for at in range(1, 11)),
                     Msg((IMEI_C,), 11, recipient=ADS), Msg((IMEI_C,), 12))),
}


@pytest.mark.parametrize("name", sorted(OLD_HITS))
def test_a_small_window_with_a_recall_finds_what_keeping_everything_finds(name: str) -> None:
    case = OLD_HITS[name]
    observations, ctx = case.observations(), case.context()
    everything = evaluate(observations, ctx)
    recall = Recalled(observations)
    agg = Aggregator(ctx, judge_consent=True, recall=recall, window=2)
    agg.extend(iter(observations), ordered=True)
    assert agg.findings() == everything and agg.errors() == []
    assert recall.asked and max(recall.asked) < len(observations) - 2  # older than the window
    streamed = evaluate(iter(observations), ctx, ordered=True, recall=Recalled(observations))
    assert streamed == everything
    live = Aggregator(ctx, recall=Recalled(observations), window=2)  # judged when asked
    live.extend(observations)
    assert live.findings() == everything


def test_a_message_neither_kept_nor_recalled_is_the_rules_error_not_the_sessions() -> None:
    case = OLD_HITS["frequency"]
    observations = case.observations()
    agg = Aggregator(case.context(), (by_id("EXCESS_FREQUENCY"),), judge_consent=True,
                     recall=lambda tx_id: None, window=2)
    agg.extend(observations)
    (row,) = agg.errors()
    assert (row["transmission"], row["stage"]) == (len(observations), "rule EXCESS_FREQUENCY")
    assert [f.transmissions for f in agg.findings()] == [(len(observations),)]


def test_linking_keeps_no_carriers_once_the_identifier_is_linked() -> None:
    rule, ctx = by_id("CROSS_SERVICE_LINKING"), Case().context()
    assert rule.step is not None
    memo: dict = {}
    hits = []
    for i in range(1, 51):  # the maker's, then an ad SDK's, then the maker's again
        recipient = ADS if i == 26 else FIRST
        hits.append(list(rule.step(_obs(i, i, (IMEI_C,), recipient=recipient), memo, ctx)))
        if i == 25:
            assert [len(c.ids) for c in memo["carriers"].values()] == [25]
    assert [t for t, _ in hits[25]] == list(range(1, 27))  # linked: every carrier so far
    assert all([t for t, _ in h] == [i] for i, h in enumerate(hits[26:], 27))
    assert memo["carriers"] == {}


class FailingLedger(Ledger):
    """A ledger that cannot judge one category at one time (a hostile mark, say)."""

    def __init__(self, fails_at: tuple[float, str], *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.fails_at = fails_at

    def state(self, category: str, recipient: Recipient, t: float, host: str = ""
              ) -> ConsentState:
        if (t, category) == self.fails_at:
            raise ValueError(f"no state for {category}")
        return super().state(category, recipient, t, host)


@pytest.mark.parametrize(("fails", "kept", "per_category"), [
    # the ledger fails on the category message 2 was filed for first: it never joins
    ((T0 + 2, PRECISE), (1, 3), ((IMEI_C, 1, 3, 3), (PRECISE, 1, 1, 1))),
    # on the category a later hit adds to message 2: what it added before leaves too
    ((T0 + 2, IMEI_C), (1, 3), ((IMEI_C, 1, 3, 3), (PRECISE, 1, 1, 1))),
    ((0.0, ""), (1, 2, 3), ((IMEI_C, 2, 2, 3), (PRECISE, 2, 1, 2))),  # fails on nothing
])
def test_a_ledger_failing_on_a_member_drops_only_that_member(fails, kept, per_category
                                                              ) -> None:
    """Message 2 is hit for the position (after message 1), then for the IMEI (before
    message 3): filed twice in one finding, each time for a new category."""
    limits = {"min_interval_s": {PRECISE: 60.0, IMEI_C: 60.0}}
    ctx = RuleContext(profile(), FailingLedger(fails, ConsentPlan(limits=limits)))
    observations = [_obs(1, 1, (PRECISE,)), _obs(2, 2, (PRECISE, IMEI_C)),
                    _obs(3, 3, (IMEI_C,))]
    errors: list[dict[str, object]] = []
    (finding,) = evaluate(observations, ctx, (by_id("EXCESS_FREQUENCY"),), errors=errors)
    assert finding.transmissions == kept and finding.first_seen == T0 + 1
    assert finding.per_category == tuple(CategoryFacts(c, n, T0 + a, T0 + b)
                                         for c, n, a, b in per_category)
    assert errors == ([] if 2 in kept else [{
        "transmission": 2, "stage": "rule EXCESS_FREQUENCY",
        "message": f"ValueError: no state for {fails[1]}"}])


def test_a_finding_holds_any_id_and_any_number_of_categories() -> None:
    """Members are kept as narrow numbers while they fit: an id past 2**32 and a finding
    with more categories than a machine word has bits widen them, and nothing is lost."""
    many = tuple(sorted(f"{IMEI_C}.{i:02}" for i in range(70)))
    rule = dataclasses.replace(by_id("CLEARTEXT_PI"), id="MANY",
                               check=lambda o, c: frozenset(many[:o.transmission.id % 100]))
    observations = [_obs(tx_id, at, (IMEI_C,), "http")
                    for tx_id, at in ((2**40 + 7, 1), (5, 2), (99, 3))]
    (finding,) = evaluate(observations, Case().context(), (rule,))
    assert finding.transmissions == (5, 99, 2**40 + 7) and finding.categories == many
    counts = {f.category: f.count for f in finding.per_category}
    assert counts == {c: 2 + (i < 5) for i, c in enumerate(many)}  # 5, then all 70 twice
