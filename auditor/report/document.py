"""The findings document (schema ``kidaudit.findings/1``, DESIGN.md): frozen objects every
output format renders from, and the one serialiser that writes them as JSON. Pure: the
caller passes in what the store and the session know.

Typed so that the renderers never parse back what was just written: times stay datetimes
(UTC, cut to the millisecond the JSON shows, so every output says the same instant), ids
stay ints. ``load`` is the way back from a ``findings.json`` written earlier; it is
tolerant, as a reader of a file from another tool or version has to be.

Additive keys beyond DESIGN.md (readers of ``/1`` ignore unknown keys): ``session`` carries
the tool and ruleset versions and evidence hashes; ``events`` the consent timeline; each
finding ``last_seen`` and ``consent`` (the states it was judged under); ``coverage`` carries
``analysis_errors`` and ``errors``; ``verdict`` the session's result, each rule's status
and the plan's steps the session did not cover; ``conformance`` each chosen standard's test
items judged (``standards.conformance``) and ``steps`` the session steps performed or missed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from auditor.mask import Masker, mask
from auditor.memo import memoised
from auditor.model import ConsentEvent, Detection, Finding, Ids, Observation
from auditor.standards.conformance import Conformance, ItemResult
from auditor.standards.model import UNVERIFIED, VERIFIED, Text
from auditor.standards.steps import StepResult

SCHEMA = "kidaudit.findings/1"
# A session is judged only on what was read: when more than this share of its connections
# could not be read, silence proves nothing and the verdict is inconclusive.
UNINSPECTED_LIMIT = 0.5
# Every finding but a note (``info``: UNINSPECTED_TRAFFIC says what was not read) is a
# violation of a clause, so any of them fails the session, not only the high ones.
FAILING_SEVERITIES = ("critical", "high", "medium", "low")
FAIL, PASS, INCONCLUSIVE = "fail", "pass", "inconclusive"
# The coverage stage of what writing the outputs left out; a renderer adds its file's name.
STAGE = "report"
# Where a detected value also names a recipient: the session-wide texts (a finding's
# recipients, an uninspected host, a plan step) are masked with the values found here, a
# set that grows with the session's hosts, not with its messages.
HOST_LOCATIONS = frozenset({"host", "sni", "dns"})
HOST_FIELDS = frozenset({"url.host"})

T = TypeVar("T")


class Replay(Generic[T]):
    """A list of a document that is read again from its source each time it is iterated
    (a new store cursor, the rows masked one at a time), never held whole: the renderers
    each walk it once, so a document's size follows its findings, not its messages."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[], Iterable[T]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[T]:
        return iter(self._make())

    def __repr__(self) -> str:
        return "Replay(...)"


# -- times ---------------------------------------------------------------------------------


def at(ts: float | None) -> datetime | None:
    """Seconds since the epoch as the UTC instant the document holds: to the millisecond,
    the precision its JSON writes, so the page and the file never disagree."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def iso_text(moment: datetime | None) -> str:
    """How the document writes an instant: ISO 8601, milliseconds, ``Z``; '' for none."""
    if moment is None:
        return ""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso(ts: float | None) -> str:
    return iso_text(at(ts))


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 text back as a UTC datetime; None for anything that is not one (or that
    falls outside the dates UTC can hold: year 1 at +01:00 is before year 1 in UTC)."""
    try:
        if isinstance(value, datetime):
            ts = value
        elif isinstance(value, str) and value:
            ts = datetime.fromisoformat(value)
        else:
            return None
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# -- the objects ---------------------------------------------------------------------------
# Field order is key order in findings.json; ``json()`` gives each object's JSON mapping.

C = TypeVar("C", bound=type)


def _quick_init(cls: C) -> C:
    """A speed trick for the rows made once or twice a message (a transmission's, its
    recipient's, each detection's: a hundred thousand a session): the same ``__init__``,
    signature and defaults as the dataclass wrote, that sets each field through its slot's
    own descriptor instead of ``object.__setattr__`` by name (what a frozen dataclass does,
    a lookup of the name a field): about half the cost. The object is the one the
    dataclass's own ``__init__`` makes (a test compares them); it stays frozen, since only
    assignment after it is made goes through ``__setattr__``. Written as the dataclass
    writes its own, as source."""
    names: dict[str, Any] = {"_MISSING": MISSING}
    params, lines = [], []
    for f in fields(cls):
        put = names[f"_put_{f.name}"] = cls.__dict__[f.name].__set__
        assert callable(put)
        if f.default is not MISSING:
            names[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
            lines.append(f"    _put_{f.name}(self, {f.name})")
        elif f.default_factory is not MISSING:
            names[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            lines.append(f"    _put_{f.name}(self, _factory_{f.name}() if {f.name} is _MISSING"
                         f" else {f.name})")
        else:
            params.append(f.name)
            lines.append(f"    _put_{f.name}(self, {f.name})")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines),  # noqa: S102
         names)
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]
    return cls


@dataclass(frozen=True, slots=True)
class Device:
    name: str = ""
    kind: str = ""
    firmware: str = ""

    def json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "firmware": self.firmware}


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Who and what the session was. ``clock_note`` is written only when a producer sets
    it; ``masked``, ``started`` and ``ended`` are settled by ``build``."""

    id: str = ""
    device: Device = field(default_factory=Device)
    inputs: tuple[str, ...] = ()
    resumed: tuple[datetime, ...] = ()
    tool_version: str = ""
    ruleset: str = ""
    profile_sha256: str = ""
    consent_sha256: str = ""
    flows_sha256: str = ""
    rules_applied: tuple[str, ...] = ()
    country_source: str = ""
    clock_note: str | None = None
    masked: bool | None = None
    started: datetime | None = None
    ended: datetime | None = None
    # the sign-off facts (issue 15): how the traffic was taken, by whom, on what clock
    capture_modes: tuple[str, ...] = ()
    operator: str = ""
    clock_sync: str = "unknown"
    versions: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "id": self.id, "device": self.device, "inputs": list(self.inputs),
            "resumed": [iso_text(r) for r in self.resumed], "tool_version": self.tool_version,
            "ruleset": self.ruleset, "profile_sha256": self.profile_sha256,
            "consent_sha256": self.consent_sha256, "flows_sha256": self.flows_sha256,
            "rules_applied": list(self.rules_applied), "country_source": self.country_source}
        if self.clock_note is not None:
            out["clock_note"] = self.clock_note
        out.update({"masked": self.masked, "started": iso_text(self.started),
                    "ended": iso_text(self.ended),
                    "capture": {"modes": list(self.capture_modes), "operator": self.operator,
                                "clock_sync": self.clock_sync},
                    "versions": dict(self.versions)})
        return out


@_quick_init
@dataclass(frozen=True, slots=True)
class RecipientEntry:
    """Who received a transmission; an unknown organization, country or SDK is None."""

    domain: str = ""
    organization: str | None = None
    party: str = "unknown"
    country: str | None = None
    sdk: str | None = None
    sdk_type: str | None = None

    def json(self) -> dict[str, object]:
        return {"domain": self.domain, "organization": self.organization, "party": self.party,
                "country": self.country, "sdk": self.sdk, "sdk_type": self.sdk_type}


@_quick_init
@dataclass(frozen=True, slots=True)
class TransmissionEntry:
    """One message as the report shows it; ``consent``: category → the state it was judged
    under."""

    id: int
    ts: datetime | None = None
    transport: str = ""
    direction: str = "up"
    host: str = ""
    ip: str = ""
    port: int | None = None
    method: str = ""
    url: str = ""
    inspected: bool = True
    bytes: int = 0
    probe: str = ""  # the TLS probe's case it was sent under (issue 17); "" for ordinary
    recipient: RecipientEntry = field(default_factory=RecipientEntry)
    consent: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, object]:
        out = {"id": self.id, "ts": iso_text(self.ts), "transport": self.transport,
               "direction": self.direction, "host": self.host, "ip": self.ip,
               "port": self.port, "method": self.method, "url": self.url,
               "inspected": self.inspected, "bytes": self.bytes, "recipient": self.recipient,
               "consent": dict(self.consent)}
        if self.probe:  # only then: a session without the probe reads as before
            out["probe"] = self.probe
        return out


@_quick_init
@dataclass(frozen=True, slots=True)
class DetectionEntry:
    transmission: int
    category: str = ""
    method: str = ""
    location: str = ""
    field: str = ""
    encoding: tuple[str, ...] = ()
    profile_key: str = ""
    value: str = ""
    confidence: float | None = None

    def json(self) -> dict[str, object]:
        return {"transmission": self.transmission, "category": self.category,
                "method": self.method, "location": self.location, "field": self.field,
                "encoding": list(self.encoding), "profile_key": self.profile_key,
                "value": self.value, "confidence": self.confidence}


@dataclass(frozen=True, slots=True)
class CategoryEntry:
    """One category of a finding: how many of its transmissions carried it, and when."""

    category: str = ""
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def json(self) -> dict[str, object]:
        return {"count": self.count, "first_seen": iso_text(self.first_seen),
                "last_seen": iso_text(self.last_seen)}


@dataclass(frozen=True, slots=True)
class FindingEntry:
    id: str = ""
    rule: str = ""
    severity: str = ""
    title: str = ""
    categories: tuple[str, ...] = ()
    recipient: str = ""
    transmissions: tuple[int, ...] = ()
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    count: int = 0
    references: tuple[str, ...] = ()
    consent: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()  # the domains, hosts or IPs the organisation used
    per_category: tuple[CategoryEntry, ...] = ()

    def json(self) -> dict[str, object]:
        # new keys go at the end: readers of earlier versions see the same prefix
        return {"id": self.id, "rule": self.rule, "severity": self.severity,
                "title": self.title, "categories": list(self.categories),
                "recipient": self.recipient, "transmissions": _listed_ids(self.transmissions),
                "first_seen": iso_text(self.first_seen),
                "last_seen": iso_text(self.last_seen), "count": self.count,
                "references": list(self.references), "consent": list(self.consent),
                "recipients": list(self.recipients),
                "per_category": {c.category: c.json() for c in self.per_category}}


@dataclass(frozen=True, slots=True)
class EventEntry:
    """A consent event or a phase of the session's timeline."""

    ts: datetime | None = None
    action: str = ""
    categories: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    separate: tuple[str, ...] = ()
    name: str = ""
    source: str = ""

    def json(self) -> dict[str, object]:
        return {"ts": iso_text(self.ts), "action": self.action,
                "categories": list(self.categories), "recipients": list(self.recipients),
                "separate": list(self.separate), "name": self.name, "source": self.source}


@dataclass(frozen=True, slots=True)
class CoverageError:
    """A part of the analysis or of an output that could not be done, by stage."""

    transmission: int | None = None
    stage: str = ""
    message: str = ""

    def json(self) -> dict[str, object]:
        return {"transmission": self.transmission, "stage": self.stage,
                "message": self.message}


@dataclass(frozen=True, slots=True)
class Uninspected:
    host: str = ""
    reason: str = ""

    def json(self) -> dict[str, object]:
        return {"host": self.host, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Opaque:
    """Fields of one transmission that a limit or an unknown encoding kept unread."""

    transmission: int | None = None
    fields: tuple[str, ...] = ()

    def json(self) -> dict[str, object]:
        return {"transmission": self.transmission, "fields": list(self.fields)}


@dataclass(frozen=True, slots=True)
class Coverage:
    """What was and was not read. ``analysis_errors`` may count more than ``errors``
    lists (a document from another producer); ``build`` makes them agree."""

    connections: int | None = None
    inspected: int | None = None
    uninspected: tuple[Uninspected, ...] = ()
    opaque_payloads: int | None = None
    opaque: tuple[Opaque, ...] | Replay[Opaque] = ()
    analysis_errors: int | None = None
    errors: tuple[CoverageError, ...] = ()

    def json(self) -> dict[str, object]:
        return {"connections": self.connections, "inspected": self.inspected,
                "uninspected": list(self.uninspected), "opaque_payloads": self.opaque_payloads,
                "opaque": _listed(self.opaque), "analysis_errors": self.analysis_errors,
                "errors": list(self.errors)}


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule's status in the session: ``fail``, ``pass`` or ``not exercised``."""

    id: str = ""
    status: str = ""
    reason: str = ""

    def json(self) -> dict[str, object]:
        return {"id": self.id, "status": self.status, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class StepEntry:
    """One session step (``standards.steps``): performed or not, when, for how long, and
    what was missing (in both languages, the page's and the file's English)."""

    id: str = ""
    performed: bool = False
    at: datetime | None = None
    duration_s: float | None = None
    missing: Text | None = None

    def json(self) -> dict[str, object]:
        return {"id": self.id, "performed": self.performed, "at": iso_text(self.at) or None,
                "duration_s": (None if self.duration_s is None
                               else round(float(self.duration_s), 3)),
                "missing": self.missing.en if self.missing is not None else ""}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a lab signs: ``result`` with its ``reason``, and ``basis`` (``findings``,
    ``empty``, ``nothing_inspected``, ``mostly_uninspected`` or ``clean``) so a page in
    another language can say the same; ``not_covered``: the plan's steps the session did
    not reach; ``rules``: each rule's status."""

    result: str = INCONCLUSIVE
    reason: str = ""
    basis: str = ""
    not_covered: tuple[str, ...] = ()
    rules: tuple[RuleResult, ...] = ()

    def json(self) -> dict[str, object]:
        return {"result": self.result, "reason": self.reason, "basis": self.basis,
                "not_covered": list(self.not_covered), "rules": list(self.rules)}


def _listed(rows: Iterable[Any]) -> list[Any] | Replay[Any]:
    """A list of the document as ``json()`` gives it: a stream stays a stream (the writer
    walks it a row at a time; ``json_value`` lists it for a small document)."""
    return rows if isinstance(rows, Replay) else list(rows)


def judge(findings: Iterable[FindingEntry], coverage: Coverage,
          rules: Iterable[RuleResult] = (), not_covered: Iterable[str] = ()) -> Verdict:
    """The verdict: ``fail`` on any finding of a FAILING_SEVERITIES rule (what was read
    already shows a violation); else ``inconclusive`` when nothing, or more than
    UNINSPECTED_LIMIT of the connections, was read; else ``pass``. A pass names the rules
    the session never exercised, so it is never read as more than it is."""
    rules, not_covered = tuple(rules), tuple(not_covered)
    failing = [f for f in findings if f.severity in FAILING_SEVERITIES]
    connections = coverage.connections or 0
    inspected = min(coverage.inspected or 0, connections)
    unexercised = [r.id for r in rules if r.status == "not exercised"]
    if failing:
        kinds = len({f.rule for f in failing})
        result, basis, reason = FAIL, "findings", (
            f"{len(failing)} finding(s) of {kinds} rule(s) at severity low or above")
    elif connections == 0:
        result, basis, reason = INCONCLUSIVE, "empty", "the capture holds no traffic"
    elif inspected == 0:
        result, basis, reason = INCONCLUSIVE, "nothing_inspected", (
            f"none of the {connections} connection(s) could be read")
    elif connections - inspected > UNINSPECTED_LIMIT * connections:
        result, basis, reason = INCONCLUSIVE, "mostly_uninspected", (
            f"{connections - inspected} of {connections} connections could not be read")
    else:
        result, basis, reason = PASS, "clean", (
            f"no violation in {inspected} connection(s) read")
        if unexercised:
            reason += "; not exercised: " + ", ".join(unexercised)
    return Verdict(result, reason, basis, not_covered, rules)


@dataclass(frozen=True, slots=True)
class Document:
    session: SessionInfo = field(default_factory=SessionInfo)
    transmissions: tuple[TransmissionEntry, ...] | Replay[TransmissionEntry] = ()
    detections: tuple[DetectionEntry, ...] | Replay[DetectionEntry] = ()
    findings: tuple[FindingEntry, ...] = ()
    events: tuple[EventEntry, ...] = ()
    coverage: Coverage = field(default_factory=Coverage)
    schema: str = SCHEMA
    verdict: Verdict | None = None  # None: a findings.json from before the verdict
    # None: a findings.json from before the conformance tables (keys left out)
    conformance: tuple[Conformance, ...] | None = None
    steps: tuple[StepEntry, ...] | None = None
    # Not written: each transmission with its own detections, in order (``joined``), and
    # the first and last message's times, for a document built streamed from a session.
    pairs: Replay[tuple[TransmissionEntry, list[DetectionEntry]]] | None = None
    span: tuple[datetime | None, datetime | None] | None = None

    def json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "schema": self.schema, "session": self.session,
            "transmissions": _listed(self.transmissions),
            "detections": _listed(self.detections),
            "findings": list(self.findings), "events": list(self.events),
            "coverage": self.coverage}
        if self.verdict is not None:
            out["verdict"] = self.verdict
        if self.conformance is not None:
            out["conformance"] = list(self.conformance)
        if self.steps is not None:
            out["steps"] = list(self.steps)
        return out

    def judged(self) -> Verdict:
        """The document's verdict; one worked out from its findings and coverage when a
        file from before the verdict holds none (without rule statuses: it never says
        which rules passed)."""
        return self.verdict or judge(self.findings, self.coverage)

    def with_errors(self, errors: Iterable[CoverageError]) -> Document:
        """This document with coverage errors found while rendering added to its list and
        its count (what a renderer left out is recorded in what is written after it)."""
        listed = (*self.coverage.errors, *errors)
        if len(listed) == len(self.coverage.errors):
            return self
        return replace(self, coverage=replace(self.coverage, errors=listed,
                                              analysis_errors=len(listed)))

    def joined(self) -> Iterator[tuple[TransmissionEntry | None, list[DetectionEntry]]]:
        """Each transmission with its detections, in the document's order; then, for a
        document read back, detections of transmissions it does not list (``None``). A
        streamed document walks its source once; one in memory is grouped by id (an id
        listed twice, in a file written by hand, counts once: its last row)."""
        if self.pairs is not None:
            yield from self.pairs
            return
        grouped: dict[Any, list[DetectionEntry]] = {}
        for det in self.detections:
            grouped.setdefault(det.transmission, []).append(det)
        for tx in {tx.id: tx for tx in self.transmissions}.values():
            yield tx, grouped.pop(tx.id, [])
        for dets in grouped.values():
            yield None, dets

    def window(self) -> tuple[datetime | None, datetime | None]:
        """The first and last message's times (None when none has one)."""
        if self.span is not None:
            return self.span
        times = [tx.ts for tx in self.transmissions if tx.ts is not None]
        return min(times, default=None), max(times, default=None)

    def materialised(self) -> Document:
        """This document with every list held (for a small one, and the tests)."""
        return replace(self, transmissions=tuple(self.transmissions),
                       detections=tuple(self.detections), pairs=None, span=None,
                       coverage=replace(self.coverage, opaque=tuple(self.coverage.opaque)))


# -- the serialiser ------------------------------------------------------------------------


def json_value(value: object) -> object:
    """``json.dump``'s ``default``: an object of the document as its JSON mapping, one at
    a time as the encoder reaches it, so the whole text is never held at once."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Replay):
        return list(value)
    to_json = getattr(value, "json", None)
    if to_json is None:
        raise TypeError(f"{type(value).__name__} is not part of a findings document")
    return to_json()


def to_dict(doc: Document) -> dict[str, Any]:
    """The document as plain JSON values (what ``findings.json`` holds, read back)."""
    return json.loads(json.dumps(doc, default=json_value, ensure_ascii=False))


# -- build ---------------------------------------------------------------------------------


def build(session: SessionInfo, observations: Iterable[Observation],
          findings: Iterable[Finding], events: Iterable[ConsentEvent],
          coverage: Mapping[str, Iterable[Mapping[str, Any]]], *,
          consent: Mapping[int, Mapping[str, str]] | Callable[[Observation], Mapping[str, str]]
          | None = None,
          reveal: bool = False, seeded: Iterable[tuple[str, str]] = (),
          rules: Iterable[RuleResult] = (), not_covered: Iterable[str] = (),
          conformance: Iterable[Conformance] | None = None,
          steps: Iterable[StepResult] | None = None,
          survey: Survey | None = None,
          built: Iterable[tuple[TransmissionEntry, list[DetectionEntry], list[str]]]
          | None = None,
          recall: Callable[[int], Observation | None] | None = None) -> Document:
    """The document. Masked (unless ``reveal``): each transmission's URL, host, recipient,
    field paths and opaque notes with its own detections' values hidden in every form
    (``auditor.mask.Masker``). A transmission whose rows cannot be built is left out and
    listed under coverage errors, and the rest is written: one odd message must not cost
    the lab its report.

    ``observations``: the session's messages in timeline order, walked by each renderer
    again, one at a time (a list, or a ``Replay`` reading the store): the document's
    transmissions, detections and opaque notes are ``Replay`` streams of masked rows,
    never held whole. ``consent``: each transmission's states (category → state it was
    judged under), a mapping by id or a function of the observation, asked as each row is
    made; one it fails on is shown without states and listed under coverage errors.

    The session-wide texts (a finding's recipients, uninspected hosts, coverage messages,
    the plan's steps not covered) are masked with ``seeded`` (category, value) pairs (the
    profile's latitude and longitude: one coordinate alone pairs with nothing), and every
    value detected where a recipient is named (``HOST_LOCATIONS``, ``HOST_FIELDS``): a set
    that grows with the session's hosts, not with its messages. A coverage message naming
    a transmission is masked with that transmission's own detections too. ``coverage``:
    the store's ``uninspected`` and ``errors`` rows. ``rules`` and ``not_covered`` go into
    the verdict (``judge``) with the findings and coverage built here; ``conformance`` and
    ``steps`` (when given) beside it.

    ``survey``: a ``Survey`` of the same messages, consent and masking, already fed
    (``write_outputs`` feeds it on the rules' walk, saving one); without it the messages
    are surveyed here. ``built``: the rows that survey made and kept (``Survey(keep=)``),
    read again instead of masking every message once more for each output; ``recall``:
    one message by id, for a coverage message naming one the survey did not keep."""
    states = _consent_of(consent)
    extra = [e for e in coverage.get("errors", [])]
    if survey is None:
        survey = Survey(consent, seeded, reveal,
                        named={e.get("transmission") for e in extra} - {None})
        for o in observations:
            survey.add(o)
    show, always = survey.show, survey.always
    everywhere = _masker([*always, *survey.wide.values()], reveal)
    session = replace(session, masked=not reveal,
                      started=session.started or at(survey.first),
                      ended=session.ended or at(survey.last))
    failed = survey.failed

    def rows() -> Iterator[tuple[TransmissionEntry, list[DetectionEntry], list[str]]]:
        if built is not None:
            yield from built
            return
        for i, o in enumerate(observations):
            if i not in failed:
                yield _rows(o, show, _masker([*always, *o.detections], reveal),
                            _states(states, o))

    def transmissions() -> Iterator[TransmissionEntry]:
        if built is not None:
            yield from (row[0] for row in built)
            return
        for i, o in enumerate(observations):
            if i not in failed:
                yield _transmission(o, _masker([*always, *o.detections], reveal),
                                    _states(states, o))

    def detections() -> Iterator[DetectionEntry]:
        if built is not None:
            yield from (det for row in built for det in row[1])
            return
        for i, o in enumerate(observations):
            if i not in failed and o.detections:
                yield from _detections(o, show, _masker([*always, *o.detections], reveal))

    def opaque() -> Iterator[Opaque]:
        if not survey.opaque:  # no message had a note: no walk of the session to find none
            return
        if built is not None:
            yield from (Opaque(row[0].id, tuple(row[2])) for row in built if row[2])
            return
        for i, o in enumerate(observations):
            if o.opaque and i not in failed:
                hide = _masker([*always, *o.detections], reveal)
                yield Opaque(o.transmission.id, tuple(hide(note) for note in o.opaque))

    def own(tx_id: Any) -> tuple[Detection, ...]:
        if tx_id in survey.named:
            return survey.named[tx_id]
        recalled = recall(tx_id) if recall is not None and isinstance(tx_id, int) else None
        return recalled.detections if recalled is not None else ()

    def hide_error(e: Mapping[str, Any]) -> str:
        mine = own(e.get("transmission")) if e.get("transmission") is not None else ()
        hide = everywhere if not mine else _masker(
            [*always, *survey.wide.values(), *mine], reveal)
        return hide(str(e.get("message", "")))

    entries = tuple(
        FindingEntry(f.id, f.rule, f.severity, f.title, tuple(f.categories),
                     everywhere(f.recipient), _ids(f.transmissions), at(f.first_seen),
                     at(f.last_seen), f.count, tuple(f.references), tuple(f.consent),
                     tuple(everywhere(r) for r in f.recipients),
                     tuple(CategoryEntry(c.category, c.count, at(c.first_seen),
                                         at(c.last_seen)) for c in f.per_category))
        for f in findings)
    errors = [CoverageError(e.get("transmission"), e.get("stage", ""), hide_error(e))
              for e in (*extra, *survey.consent_errors)] + list(failed.values())
    covered = Coverage(
        connections=survey.connections - survey.refused_probes, inspected=survey.inspected,
        uninspected=tuple(Uninspected(everywhere(str(u.get("host", ""))), u.get("reason", ""))
                          for u in coverage.get("uninspected", [])),
        opaque_payloads=survey.opaque, opaque=Replay(opaque),
        analysis_errors=len(errors), errors=tuple(errors))
    return Document(
        session=session,
        transmissions=Replay(transmissions),
        detections=Replay(detections),
        findings=entries,
        events=tuple(EventEntry(at(e.ts), e.action, tuple(e.categories), tuple(e.recipients),
                                tuple(e.separate), e.name, e.source) for e in events),
        coverage=covered,
        verdict=judge(entries, covered, rules, (everywhere(n) for n in not_covered)),
        conformance=None if conformance is None else tuple(conformance),
        steps=None if steps is None else tuple(
            StepEntry(s.step, s.performed, at(s.at), s.duration_s, s.missing) for s in steps),
        pairs=Replay(lambda: ((row[0], row[1]) for row in rows())),
        span=(at(survey.first_built), at(survey.last_built)),
    )


class Survey:
    """One walk over a session's messages before its document is written (``add`` each,
    in the order ``build``'s walks will give them): the counts coverage states, the time
    window, the values the session-wide texts must hide, and which rows cannot be built
    (the renderers' walks skip them). Holds what grows with hosts and failures only.
    ``consent``, ``seeded`` and ``reveal`` as ``build`` takes them; ``named``: the
    transmissions coverage messages name, whose detections are kept to mask them;
    ``keep``: given each row built (transmission, detections, opaque notes), for
    ``build(built=)``."""

    def __init__(self, consent: Mapping[int, Mapping[str, str]]
                 | Callable[[Observation], Mapping[str, str]] | None = None,
                 seeded: Iterable[tuple[str, str]] = (), reveal: bool = False, *,
                 named: set[Any] = frozenset(),  # type: ignore[assignment]
                 keep: Callable[[tuple[TransmissionEntry, list[DetectionEntry], list[str]]],
                                None] | None = None) -> None:
        self.keep = keep
        self.show: Callable[..., str] = _same if reveal else mask
        self.always = [Detection(0, category, "known", "", "", (), "", value, 1.0)
                       for category, value in seeded]
        self.states, self.reveal = _consent_of(consent), reveal
        self.connections = self.inspected = self.opaque = 0
        # TLS probe cases the device refused: no data went over them, so nothing went
        # unread; not connections the verdict weighs (a validating device is not
        # "mostly uninspected" for refusing the probe's four cases on every host)
        self.refused_probes = 0
        self.first: float | None = None
        self.last: float | None = None
        self.first_built: float | None = None
        self.last_built: float | None = None
        self.wide: dict[tuple, Detection] = {}
        self.wanted = named
        self.named: dict[Any, tuple[Detection, ...]] = {}
        self.consent_errors: list[dict[str, object]] = []
        self.failed: dict[int, CoverageError] = {}  # by place in the walk

    def add(self, o: Observation) -> None:
        i, tx = self.connections, o.transmission
        self.connections += 1
        self.inspected += bool(tx.inspected)
        self.refused_probes += bool(tx.probe) and not tx.inspected
        self.opaque += bool(o.opaque)
        self.first, self.last = _earlier(self.first, tx.ts), _later(self.last, tx.ts)
        for d in o.detections:
            if d.location in HOST_LOCATIONS or d.field in HOST_FIELDS:
                self.wide.setdefault((d.category, d.value, d.encoding), d)
        if tx.id in self.wanted:
            self.named[tx.id] = o.detections
        try:
            judged = self.states(o)
        except Exception as e:  # noqa: BLE001 - one transmission, never the reports
            self.consent_errors.append({"transmission": tx.id, "stage": "consent",
                                        "message": f"{type(e).__name__}: {e}"})
            self.named[tx.id] = o.detections  # its message is masked with them
            judged = {}
        try:
            row = _rows(o, self.show, _masker([*self.always, *o.detections], self.reveal),
                        judged)
        except Exception as exc:  # noqa: BLE001 - any fault of one row, recorded below
            # The kind of error only: its text may quote a captured value in any form.
            self.failed[i] = CoverageError(tx.id, STAGE,
                                           f"transmission left out ({type(exc).__name__})")
            return
        self.first_built = _earlier(self.first_built, tx.ts)
        self.last_built = _later(self.last_built, tx.ts)
        if self.keep is not None:
            self.keep(row)


def _earlier(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _later(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _consent_of(consent: Mapping[int, Mapping[str, str]]
                | Callable[[Observation], Mapping[str, str]] | None
                ) -> Callable[[Observation], Mapping[str, str]]:
    if consent is None:
        return lambda o: {}
    if callable(consent):
        return consent
    return lambda o: consent.get(o.transmission.id, {})


def _states(states: Callable[[Observation], Mapping[str, str]], o: Observation
            ) -> Mapping[str, str]:
    """The states a row shows: none when the ledger fails on it (the survey listed it)."""
    try:
        return states(o)
    except Exception:  # noqa: BLE001 - recorded once, by the survey
        return {}


def _ids(ids: Sequence[int]) -> Sequence[int]:
    """A finding's ids as the engine gave them (``Ids``: 8 bytes an id), else a tuple."""
    return ids if isinstance(ids, Ids) else tuple(ids)


def _listed_ids(ids: Sequence[Any]) -> Sequence[Any]:
    """What findings.json lists: ``Ids`` as they are (its writer walks them, ``json.dump``
    asks their ``json()``), anything else as a list."""
    return ids if isinstance(ids, Ids) else list(ids)


def _same(value: str, category: str = "") -> str:
    return value


def _masker(detections: list[Detection], reveal: bool) -> Callable[[str], str]:
    """What hides these detections' values in a text; nothing to hide when revealing.

    Messages repeat their values (the IMEI in every heartbeat): the maskers of the last
    values seen are kept (a bounded number). What a masker made of a text is not: a text
    holding nothing to hide (most) is answered about as fast as a lookup, and what a text
    peels to is remembered by the masking itself (``auditor.mask``)."""
    if reveal or not detections:
        return lambda text: text
    try:
        return _shared_masker(tuple((d.category, d.value, d.encoding) for d in detections))
    except TypeError:  # a value of the wrong shape (a damaged row): not kept
        return Masker(detections)


@memoised(64)
def _shared_masker(values: tuple[tuple[str, str, tuple[str, ...]], ...]
                   ) -> Callable[[str], str]:
    return Masker.of(values, hashable_texts=True).__call__


def _rows(o: Observation, show: Callable[..., str], hide: Callable[[str], str],
          consent: Mapping[str, str]
          ) -> tuple[TransmissionEntry, list[DetectionEntry], list[str]]:
    """One transmission's row, its detections' rows and its opaque notes, masked."""
    return (_transmission(o, hide, consent), _detections(o, show, hide),
            [hide(note) for note in o.opaque])


def _detections(o: Observation, show: Callable[..., str], hide: Callable[[str], str]
                ) -> list[DetectionEntry]:
    return [DetectionEntry(d.transmission, d.category, d.method, d.location, hide(d.field),
                           tuple(d.encoding), d.profile_key, show(d.value, d.category),
                           d.confidence)
            for d in o.detections]


def _transmission(o: Observation, hide: Callable[[str], str],
                  consent: Mapping[str, str]) -> TransmissionEntry:
    tx, r = o.transmission, o.recipient
    return TransmissionEntry(
        tx.id, at(tx.ts), tx.transport, tx.direction, hide(tx.host), tx.ip, tx.port,
        tx.method, hide(tx.url), tx.inspected, tx.size, tx.probe,
        RecipientEntry(hide(r.domain), r.organization or None, r.party, r.country or None,
                       r.sdk or None, r.sdk_type or None),
        consent)


# -- load: a findings.json read back -------------------------------------------------------


def load(data: Any) -> Document:
    """A ``findings.json`` mapping as a document. A reader of ``/1`` meets files written by
    other versions and by hand: a missing key takes its default, a value of another shape
    is read as text or left out, so the page it renders still opens. A document of another
    schema is refused (its keys may mean something else)."""
    data = _dict(data)
    schema = data.get("schema")
    if schema not in (None, SCHEMA):
        raise ValueError(f"findings document has schema {schema!r}; this reader reads {SCHEMA}")
    s = _dict(data.get("session"))
    device = s.get("device")
    masked = s.get("masked")
    capture = _dict(s.get("capture"))
    session = SessionInfo(
        id=_text(s.get("id")),
        device=(Device(_text(device.get("name")), _text(device.get("kind")),
                       _text(device.get("firmware"))) if isinstance(device, dict)
                else Device(_text(device))),
        inputs=_texts(s.get("inputs")),
        resumed=tuple(t for t in map(parse_time, _list(s.get("resumed"))) if t),
        tool_version=_text(s.get("tool_version")), ruleset=_text(s.get("ruleset")),
        profile_sha256=_text(s.get("profile_sha256")),
        consent_sha256=_text(s.get("consent_sha256")),
        flows_sha256=_text(s.get("flows_sha256")),
        rules_applied=_texts(s.get("rules_applied")),
        country_source=_text(s.get("country_source")),
        clock_note=_text(s["clock_note"]) if "clock_note" in s else None,
        masked=masked if isinstance(masked, bool) else None,
        started=parse_time(s.get("started")), ended=parse_time(s.get("ended")),
        capture_modes=_texts(capture.get("modes")), operator=_text(capture.get("operator")),
        clock_sync=_text(capture.get("clock_sync")) or "unknown",
        versions={_text(k): _text(v) for k, v in _dict(s.get("versions")).items()})
    cov = _dict(data.get("coverage"))
    verdict = _dict(data.get("verdict")) if "verdict" in data else None
    return Document(
        schema=SCHEMA, session=session,
        transmissions=tuple(_load_transmission(t) for t in _records(data.get("transmissions"))),
        detections=tuple(_load_detection(d) for d in _records(data.get("detections"))),
        findings=tuple(_load_finding(f) for f in _records(data.get("findings"))),
        events=tuple(EventEntry(parse_time(e.get("ts")), _text(e.get("action")),
                                _texts(e.get("categories")), _texts(e.get("recipients")),
                                _texts(e.get("separate")), _text(e.get("name")),
                                _text(e.get("source")))
                     for e in _records(data.get("events"))),
        coverage=Coverage(
            connections=_count(cov.get("connections")), inspected=_count(cov.get("inspected")),
            uninspected=tuple(Uninspected(_text(u.get("host")), _text(u.get("reason")))
                              if isinstance(u, dict) else Uninspected(_text(u))
                              for u in _list(cov.get("uninspected"))),
            opaque_payloads=_count(cov.get("opaque_payloads")),
            opaque=tuple(Opaque(_id(o.get("transmission")), _texts(o.get("fields")))
                         if isinstance(o, dict) else Opaque(None, _texts(o))
                         for o in _list(cov.get("opaque"))),
            analysis_errors=_count(cov.get("analysis_errors")),
            errors=tuple(CoverageError(_id(e.get("transmission")), _text(e.get("stage")),
                                       _text(e.get("message")))
                         if isinstance(e, dict) else CoverageError(None, "", _text(e))
                         for e in _list(cov.get("errors")))),
        verdict=None if verdict is None else Verdict(
            _text(verdict.get("result")) or INCONCLUSIVE, _text(verdict.get("reason")),
            _text(verdict.get("basis")), _texts(verdict.get("not_covered")),
            tuple(RuleResult(_text(r.get("id")), _text(r.get("status")),
                             _text(r.get("reason")))
                  for r in _records(verdict.get("rules")))),
        conformance=tuple(_load_conformance(c) for c in _records(data["conformance"]))
        if "conformance" in data else None,
        steps=tuple(StepEntry(_text(st.get("id")), st.get("performed") is True,
                              parse_time(st.get("at")), _number(st.get("duration_s")),
                              _same_text(st.get("missing")))
                    for st in _records(data["steps"])) if "steps" in data else None)


def _same_text(value: Any) -> Text | None:
    """A text read back: the file holds the English; the page shows it in either language."""
    text = _text(value)
    return Text(text, text) if text else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _load_conformance(c: dict) -> Conformance:
    title = _text(c.get("title"))
    return Conformance(_text(c.get("id")), _text(c.get("number")), Text(title, title),
                       _text(c.get("status")), tuple(ItemResult(
                           clause=_text(i.get("clause")),
                           title=Text(_text(i.get("title")), _text(i.get("title"))),
                           status=_text(i.get("status")),
                           clause_status=UNVERIFIED if i.get("clause_verified") is False
                           else VERIFIED,
                           findings=_texts(i.get("findings")), rules=_texts(i.get("rules")),
                           missing_steps=_texts(i.get("missing_steps")),
                           reason=_same_text(i.get("reason")))
                       for i in _records(c.get("items"))))


def _load_transmission(t: dict) -> TransmissionEntry:
    r = _dict(t.get("recipient"))
    return TransmissionEntry(
        _id(t.get("id")), parse_time(t.get("ts")), _text(t.get("transport")),
        _text(t.get("direction")) or "up", _text(t.get("host")), _text(t.get("ip")),
        _count(t.get("port")), _text(t.get("method")), _text(t.get("url")),
        t.get("inspected") is not False, _count(t.get("bytes")) or 0, _text(t.get("probe")),
        RecipientEntry(_text(r.get("domain")), _text(r.get("organization")) or None,
                       _text(r.get("party")) or "unknown", _text(r.get("country")) or None,
                       _text(r.get("sdk")) or None, _text(r.get("sdk_type")) or None),
        {_text(k): _text(v) for k, v in _dict(t.get("consent")).items()})


def _load_detection(d: dict) -> DetectionEntry:
    confidence = d.get("confidence")
    return DetectionEntry(
        _id(d.get("transmission")), _text(d.get("category")), _text(d.get("method")),
        _text(d.get("location")), _text(d.get("field")), _texts(d.get("encoding")),
        _text(d.get("profile_key")), _text(d.get("value")),
        float(confidence) if isinstance(confidence, int | float) else None)


def _load_finding(f: dict) -> FindingEntry:
    txs = tuple(_id(t) for t in _list(f.get("transmissions")))
    count = _count(f.get("count"))
    return FindingEntry(
        _text(f.get("id")), _text(f.get("rule")), _text(f.get("severity")),
        _text(f.get("title")), _texts(f.get("categories")), _text(f.get("recipient")), txs,
        parse_time(f.get("first_seen")), parse_time(f.get("last_seen")),
        len(txs) if count is None else count, _texts(f.get("references")),
        _texts(f.get("consent")), _texts(f.get("recipients")),
        tuple(_load_category(_text(c), _dict(v))
              for c, v in sorted(_dict(f.get("per_category")).items())))


def _load_category(category: str, c: dict) -> CategoryEntry:
    return CategoryEntry(category, _count(c.get("count")) or 0,
                         parse_time(c.get("first_seen")), parse_time(c.get("last_seen")))


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _records(value: Any) -> list[dict]:
    return [r for r in _list(value) if isinstance(r, dict)]


def _text(value: Any) -> str:
    """A JSON value as text; None and missing become ''."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(_text(v) for v in _list(value))


def _count(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _id(value: Any) -> Any:
    """A transmission id as written: an int, or its text when it is something else (an
    id written as a list still names one row, and stays usable as a key)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else (
        None if value is None else _text(value))
