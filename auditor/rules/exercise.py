"""When a rule was put to the test: each rule's precondition, as data beside the catalogue.

A rule without findings has only *passed* if the session gave it something to judge: no
withdrawal happened, so AFTER_WITHDRAWAL could not fire, and a report that called it a pass
would assure the reader of something nobody tested (issue 15, "An honest verdict"). Each
rule names what must have happened for its silence to mean something; ``statuses`` reads
one session's timeline once and gives every rule ``fail``, ``pass`` or ``not exercised``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from auditor.model import ConsentEvent, Observation
from auditor.rules.common import AD_SDK_TYPES, IDLE, MEDIA, NEEDS_SEPARATE_GRANT
from auditor.rules.transport_rules import (
    EXPIRED,
    TLS10,
    UNTRUSTED_CA,
    WRONG_HOST,
    cleartext,
    is_update_fetch,
)

FAIL, PASS, NOT_EXERCISED = "fail", "pass", "not exercised"


@dataclass
class Seen:
    """What one session showed, gathered in one pass: the facts the preconditions ask."""

    personal_data: bool = False
    categories: set[str] = field(default_factory=set)
    third_party: bool = False
    sdk: bool = False
    ad_sdk: bool = False
    organisations: set[str] = field(default_factory=set)
    country_known: bool = False
    cleartext: bool = False
    tls_hello: bool = False
    read_tls: bool = False
    update_fetch: bool = False
    commands: bool = False
    any_traffic: bool = False
    probes: set[str] = field(default_factory=set)  # the TLS probe's cases run, on any host
    actions: set[str] = field(default_factory=set)
    phases: set[str] = field(default_factory=set)

    last: float | None = None  # the last message's time: events after it exercise nothing
    first: float | None = None  # the first message's time (the session steps ask it)
    probed_hosts: set[str] = field(default_factory=set)  # hosts the TLS probe tried

    @classmethod
    def of(cls, observations: Iterable[Observation], events: Iterable[ConsentEvent]) -> Seen:
        """A whole session at once: every message, then the events."""
        seen = cls()
        for o in observations:
            seen.add(o)
        return seen.close(events)

    def add(self, o: Observation) -> None:
        """One message, as a stream of them reaches it: nothing of it is kept but the facts,
        so a session of any length is read in one pass in constant memory."""
        tx, r = o.transmission, o.recipient
        self.any_traffic = True
        self.last = tx.ts if self.last is None else max(self.last, tx.ts)
        self.first = tx.ts if self.first is None else min(self.first, tx.ts)
        if tx.probe:
            self.probed_hosts.add(tx.host)
        self.tls_hello |= bool(tx.tls_versions or tx.tls_ciphers)
        self.read_tls |= tx.decrypted or (tx.inspected and tx.transport == "https")
        self.commands |= tx.direction == "down"
        if tx.probe:
            self.probes.add(tx.probe)
        if not o.categories:
            self.update_fetch |= is_update_fetch(o)
            return
        self.personal_data = True
        self.categories |= o.categories
        self.third_party |= r.party != "first"
        self.sdk |= bool(r.sdk)
        self.ad_sdk |= r.sdk_type in AD_SDK_TYPES
        self.organisations.add(r.organization or r.domain)
        self.country_known |= bool(r.country)
        self.cleartext |= cleartext(tx)
        self.update_fetch |= is_update_fetch(o)

    def close(self, events: Iterable[ConsentEvent]) -> Seen:
        """The session's events, once its messages are all in. An event after the last
        message exercises nothing: no message was judged under it (a withdrawal planned
        after the capture ended)."""
        for ev in events:
            if self.last is None or ev.ts > self.last:
                continue
            self.actions.add(ev.action)
            if ev.action == "phase":
                self.phases.add(ev.name)
        return self


@dataclass(frozen=True)
class Precondition:
    """``happened`` over a session's ``Seen``; ``missing``: what to say when it did not."""

    happened: Callable[[Seen], bool]
    missing: str


_PERSONAL_DATA = Precondition(lambda s: s.personal_data, "no personal data was seen")
_THIRD_PARTY = Precondition(lambda s: s.third_party,
                            "no personal data went to a third party")

def _probed(case: str) -> Precondition:
    """The TLS probe ran ``case`` on some host (accepted or refused, it was put to the test)."""
    return Precondition(lambda s: case in s.probes,
                        f"the TLS probe did not run (its {case} case on any host)")


# Rule id -> what must have happened for the rule to be exercised. Every rule of the
# catalogue has an entry (a test walks the catalogue).
PRECONDITIONS: dict[str, Precondition] = {
    "PRE_CONSENT_PI": _PERSONAL_DATA,
    "PRE_CONSENT_SDK": Precondition(lambda s: s.sdk, "no known SDK received personal data"),
    "SCOPE_EXCEEDED": Precondition(lambda s: "grant" in s.actions, "no grant happened"),
    "AFTER_REFUSAL": Precondition(lambda s: "refuse" in s.actions, "no refusal happened"),
    "AFTER_WITHDRAWAL": Precondition(lambda s: "withdraw" in s.actions,
                                     "no withdrawal happened"),
    "SENSITIVE_NO_SEPARATE_CONSENT": Precondition(
        lambda s: bool(s.categories & NEEDS_SEPARATE_GRANT), "no sensitive category was seen"),
    "MEDIA_UPLOAD": Precondition(lambda s: bool(s.categories & MEDIA),
                                 "no voice or photo was seen"),
    "THIRD_PARTY_UNDISCLOSED": _THIRD_PARTY,
    "PERSISTENT_ID_TO_THIRD_PARTY": _THIRD_PARTY,
    "CROSS_SERVICE_LINKING": Precondition(lambda s: len(s.organisations) > 1,
                                          "personal data reached one organisation only"),
    "LOCATION_TO_THIRD_PARTY": _THIRD_PARTY,
    "DIRECT_IDS_TO_THIRD_PARTY": _THIRD_PARTY,
    "AD_TRACKER_RECEIVES_CHILD_DATA": Precondition(
        lambda s: s.ad_sdk, "no advertising or attribution host received personal data"),
    "CROSS_BORDER": Precondition(lambda s: s.country_known,
                                 "no recipient's country was known"),
    "NON_RESETTABLE_ID": _PERSONAL_DATA,
    "EXCESS_FREQUENCY": _PERSONAL_DATA,
    "BACKGROUND_COLLECTION": Precondition(lambda s: IDLE in s.phases,
                                          "no idle phase happened"),
    "BULK_CONTACTS": _PERSONAL_DATA,
    "CLEARTEXT_PI": Precondition(lambda s: s.cleartext,
                                 "no personal data went over a cleartext transport"),
    "CREDENTIALS_EXPOSED": _PERSONAL_DATA,
    "WEAK_TLS": Precondition(lambda s: s.tls_hello, "no TLS handshake was seen"),
    "NO_CERT_VALIDATION": Precondition(lambda s: s.read_tls, "no TLS connection was read"),
    "TLS_CERT_NOT_VALIDATED": _probed(UNTRUSTED_CA),
    "TLS_HOSTNAME_NOT_CHECKED": _probed(WRONG_HOST),
    "TLS_EXPIRED_CERT_ACCEPTED": _probed(EXPIRED),
    "TLS_LEGACY_ACCEPTED": _probed(TLS10),
    "INSECURE_UPDATE": Precondition(lambda s: s.update_fetch, "no update was fetched"),
    "COVERT_MONITOR": Precondition(lambda s: s.commands,
                                   "no server command to the device was seen"),
    "UNINSPECTED_TRAFFIC": Precondition(lambda s: s.any_traffic, "no traffic was seen"),
}


@dataclass(frozen=True)
class RuleStatus:
    """One rule's outcome in one session; ``reason`` says why, in a line."""

    id: str
    status: str
    reason: str = ""


def statuses(rule_ids: Iterable[str], fired: Iterable[str],
             observations: Iterable[Observation] | Seen, events: Iterable[ConsentEvent] = ()
             ) -> list[RuleStatus]:
    """Each rule's status: ``fail`` when it has findings, else ``pass`` when its
    precondition happened, else ``not exercised`` with what did not happen. A rule with no
    precondition listed counts as exercised by any traffic. ``observations``: the
    session's messages with its ``events``, or a ``Seen`` already closed over both (a
    stream read once, for the rules and these facts together)."""
    seen = observations if isinstance(observations, Seen) else Seen.of(observations, events)
    fired = set(fired)
    out = []
    for rule in rule_ids:
        pre = PRECONDITIONS.get(rule, PRECONDITIONS["UNINSPECTED_TRAFFIC"])
        if rule in fired:
            out.append(RuleStatus(rule, FAIL, "has findings"))
        elif pre.happened(seen):
            out.append(RuleStatus(rule, PASS, "exercised, nothing found"))
        else:
            out.append(RuleStatus(rule, NOT_EXERCISED, pre.missing))
    return out


def not_covered(planned: Iterable[ConsentEvent], signals: Iterable[tuple[str, str]],
                happened: Iterable[ConsentEvent], ended: float | None) -> list[str]:
    """The plan's steps this session did not cover, one line each: a planned event after
    the last message (the capture ended before the withdrawal: no message was judged under
    it), and a signal (``action``, ``name``) that no traffic ever triggered. An event before
    the first message is covered (a setup grant is in effect for all that follows); an
    empty session covers nothing the plan holds."""
    happened = list(happened)
    out = []
    for ev in planned:
        if ended is None or ev.ts > ended:
            out.append(f"planned {_step(ev.action, ev.name)} came after the last message")
    for action, name in signals:
        if not any(ev.source == "signal" and ev.action == action and ev.name == name
                   for ev in happened):
            out.append(f"signalled {_step(action, name)} never happened")
    return out


def _step(action: str, name: str) -> str:
    return f"{action} {name!r}" if name else action
