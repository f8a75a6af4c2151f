"""The plain values every stage passes along: frozen, hashable, free of mitmproxy types.

What the lab seeds (``Profile`` and its parts) and what it plans (``ConsentPlan``) are
types here too, apart from the loader that reads them from YAML (``auditor.profile``), so
that the core can take a profile without importing a module that opens files.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property

# Transports whose payload anyone on the path can read (RULES.md CLEARTEXT_PI).
CLEARTEXT_TRANSPORTS = frozenset({"http", "tcp", "udp", "dns", "mqtt"})


@dataclass(frozen=True)
class Transmission:
    """One outgoing message from the device (or, direction ``down``, a server's command to it)."""

    id: int
    ts: float  # seconds since the epoch, UTC
    transport: str  # http | https | websocket | tcp | udp | dns | tls
    host: str
    port: int
    ip: str = ""
    direction: str = "up"
    method: str = ""
    url: str = ""
    path: str = ""  # path with query, as sent
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str = ""
    inspected: bool = True
    size: int = 0  # bytes on the wire for this message (request head + body)
    flow_id: str = ""
    payload: bytes = b""  # a raw TCP/UDP/WebSocket message, or a DNS query, as sent
    sni: str = ""
    decrypted: bool = False  # TLS that the proxy intercepted and read (NO_CERT_VALIDATION)
    tls_versions: tuple[str, ...] = ()  # offered in the device's ClientHello (WEAK_TLS)
    tls_ciphers: tuple[str, ...] = ()  # cipher suite names offered in the ClientHello
    # The TLS probe's bad case this was sent under ("untrusted-ca", "wrong-host", "expired",
    # "tls1.0"); "" for ordinary traffic. What the device sent under it is what an attacker
    # with that certificate would read (TLS_CERT_NOT_VALIDATED and its siblings).
    probe: str = ""

    @property
    def cleartext(self) -> bool:
        # A raw TCP stream inside TLS the proxy terminated (a watch protocol over TLS) is
        # ``tcp`` once read, but it crossed the network encrypted.
        return self.transport in CLEARTEXT_TRANSPORTS and not self.decrypted


@dataclass(frozen=True)
class Field:
    """One value found in a message, with where it sat and the layers peeled to reach it."""

    location: str  # url | query | header | cookie | body | payload | sni | dns
    path: str  # stable, readable: query.did, header.x-device-id, body.json.dev.imei
    value: str
    encoding: tuple[str, ...] = ()  # outermost first


def _stored_directly(cls: type) -> type:
    """``cls`` (a frozen dataclass) with an ``__init__`` that stores its fields in the
    instance's ``__dict__`` rather than through ``object.__setattr__`` one call each, as
    the dataclass's own does to get past its frozen ``__setattr__``: half the time of making
    one, for the two types made hundreds of thousands of times a run. The same parameters,
    defaults and ``__dict__`` (members in the same order: equal, hashed and pickled the
    same); made for plain defaults only (a ``default_factory`` would be refused here)."""
    names = [f.name for f in fields(cls)]
    defaults = {f"_d_{f.name}": f.default for f in fields(cls) if f.default is not MISSING}
    if any(f.default_factory is not MISSING or not f.init for f in fields(cls)):
        raise TypeError(f"{cls.__name__}: only fields with plain defaults")
    params = ", ".join(name if f"_d_{name}" not in defaults else f"{name}=_d_{name}"
                       for name in names)
    body = "\n".join(f"    d['{name}'] = {name}" for name in names)
    source = f"def __init__(self, {params}):\n    d = self.__dict__\n{body}\n"
    namespace: dict[str, object] = {}
    exec(source, dict(defaults), namespace)  # noqa: S102 - built from the class's own fields
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    cls.__init__ = init  # type: ignore[misc]
    return cls


_stored_directly(Transmission)
_stored_directly(Field)


@dataclass(frozen=True)
class Detection:
    transmission: int
    category: str
    method: str  # known | pattern | key
    location: str
    field: str
    encoding: tuple[str, ...]
    profile_key: str
    value: str  # unmasked; masked only when written out
    confidence: float


@dataclass(frozen=True)
class Recipient:
    domain: str
    organization: str = ""
    party: str = "unknown"  # first | third | unknown
    country: str = ""
    sdk: str = ""  # tracker / SDK name when the host is a known SDK endpoint
    sdk_type: str = ""  # analytics | advertising | attribution | push | crash | location | ...


@dataclass(frozen=True)
class ConsentEvent:
    """A grant / refuse / withdraw / phase event on the session timeline."""

    ts: float
    action: str  # grant | refuse | withdraw | phase
    categories: tuple[str, ...] = ()  # as written: ids, families or "all-disclosed"
    recipients: tuple[str, ...] = ()  # empty: every recipient
    separate: tuple[str, ...] = ()
    name: str = ""  # phase name
    source: str = "plan"  # plan | mark | signal | command


@dataclass(frozen=True)
class Observation:
    """A transmission with what the pipeline learned about it: the unit rules look at."""

    transmission: Transmission
    recipient: Recipient
    detections: tuple[Detection, ...] = ()
    opaque: tuple[str, ...] = ()  # "field: reason" for payloads a limit stopped us reading
    # Facts about the message that are not personal data but that rules look at, written
    # "kind:value": "command:MONITOR" (a server asks a watch to call back and listen),
    # "firmware" (an update image is being fetched).
    tags: tuple[str, ...] = ()

    @cached_property
    def categories(self) -> frozenset[str]:
        """Asked by most rules for every message: worked out once (the instance is frozen)."""
        return frozenset(d.category for d in self.detections)


@dataclass(frozen=True)
class CategoryFacts:
    """How one category of a finding was sent: a finding covers every category its rule hit
    for one organisation, and a reader still wants each one's own extent."""

    category: str
    count: int  # transmissions of the finding that carried it
    first_seen: float
    last_seen: float


class Ids(Sequence[int]):
    """A finding's transmission ids, sorted, 8 bytes each: a week's soak has findings that
    cite every message, and a tuple of Python ints costs 36 bytes an id (issue 16: memory
    that follows the findings, not the messages). Equal to a tuple or list of the same ids,
    so it reads like the tuple it replaces."""

    __slots__ = ("_ids",)

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self._ids = array("q", ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return Ids(self._ids[index])
        return self._ids[index]

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Ids):
            return self._ids == other._ids
        if isinstance(other, tuple | list):
            return len(other) == len(self._ids) and all(
                a == b for a, b in zip(self._ids, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._ids))

    def __repr__(self) -> str:
        return repr(tuple(self._ids))

    def __reduce__(self):
        return Ids, (self._ids,)

    def json(self) -> list[int]:
        return list(self._ids)


@dataclass(frozen=True)
class Finding:
    """One rule x one recipient organisation: one problem, however many categories and
    hosts it spans (``recipients``), each category's extent in ``per_category``."""

    id: str
    rule: str
    severity: str
    title: str
    categories: tuple[str, ...]
    recipient: str
    transmissions: Sequence[int]  # Ids when the engine made it; a tuple in tests
    first_seen: float
    last_seen: float
    references: tuple[str, ...]
    consent: tuple[str, ...] = field(default=())  # consent state(s) it was judged under
    recipients: tuple[str, ...] = field(default=())  # the domains, hosts or IPs it covers
    per_category: tuple[CategoryFacts, ...] = field(default=())  # by category, sorted

    @property
    def count(self) -> int:
        return len(self.transmissions)


# The region a phone number written without ``+`` is read in when the profile names no
# jurisdiction: the profile's checks and the detectors read such numbers the same way.
DEFAULT_REGION = "CN"


@dataclass(frozen=True)
class Cell:
    mcc: int
    mnc: int
    lac: int
    cid: int


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    cell: tuple[Cell, ...] = ()
    wifi: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contact:
    name: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Credential:
    username: str = ""
    password: str = ""


@dataclass(frozen=True)
class Device:
    name: str = ""
    kind: str = ""
    firmware: str = ""
    ca_trusted: bool = True
    ip: tuple[str, ...] = ()


@dataclass(frozen=True)
class Organisation:
    """Who operates addresses and domains that no public data attributes (a maker's own IP
    range above all): the profile names them so attribution, disclosures and the linking
    rules treat them as the one party they are."""

    name: str
    addresses: tuple[str, ...] = ()  # IP addresses and CIDR blocks, canonical text
    domains: tuple[str, ...] = ()  # subdomains match


@dataclass(frozen=True)
class Profile:
    device: Device = field(default_factory=Device)
    # key -> seeded values (a profile may list several values for one key)
    identifiers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    child: dict[str, tuple[str, ...]] = field(default_factory=dict)
    location: Location | None = None
    contacts: tuple[Contact, ...] = ()
    credentials: tuple[Credential, ...] = ()
    # the maker's own: domains and hostnames (subdomains match), IP addresses, CIDR blocks
    first_party: tuple[str, ...] = ()
    organisations: tuple[Organisation, ...] = ()
    jurisdiction: str = ""
    # dotted keys (identifiers.imei, contacts.phone) the lab vouched for: their values passed
    # the format checks but not the checksum / MCC / numbering-plan ones
    irregular: frozenset[str] = frozenset()
    source: str = ""  # the file it came from

    def __hash__(self) -> int:
        return hash(self.source)

    @property
    def region(self) -> str:
        """Where a phone number without ``+`` is read: the jurisdiction, or DEFAULT_REGION."""
        return self.jurisdiction or DEFAULT_REGION


@dataclass(frozen=True)
class Disclosure:
    recipient: str
    categories: tuple[str, ...]  # expanded to category ids
    purpose: str = ""
    # PROCESSOR handles the data on the maker's behalf (PIPL 21); THIRD_PARTY receives it
    # for its own purposes (PIPL 23), the reading when the plan says nothing
    role: str = "third_party"


PROCESSOR, THIRD_PARTY = "processor", "third_party"
ROLES = (PROCESSOR, THIRD_PARTY)


@dataclass(frozen=True)
class Signal:
    """Traffic that is itself a consent event: a mitmproxy filter expression plus an event."""

    filter: str
    action: str
    categories: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    separate: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class ConsentPlan:
    disclosed: tuple[Disclosure, ...] = ()
    events: tuple[ConsentEvent, ...] = ()
    signals: tuple[Signal, ...] = ()
    limits: dict[str, dict[str, float]] = field(default_factory=dict)
    withdrawal_grace_s: float = 60.0
    source: str = ""

    def __hash__(self) -> int:
        return hash(self.source)
