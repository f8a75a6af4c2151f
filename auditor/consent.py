"""The consent ledger: the guardian's grants, refusals and withdrawals over time.

RULES.md "The consent ledger": for a transmission at time t carrying category c to
recipient r, the state is the latest event before t that covers (c, r). A withdrawal takes
effect only after the grace window, because a device may have a message in flight.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from auditor.categories import ALL_DISCLOSED, expand
from auditor.model import PROCESSOR, ConsentEvent, ConsentPlan, Profile, Recipient
from auditor.recipients import Parties, address_of, matches_domain, parties

NONE, GRANTED, REFUSED, WITHDRAWN = "none", "granted", "refused", "withdrawn"
_STATE_OF = {"grant": GRANTED, "refuse": REFUSED, "withdraw": WITHDRAWN}
NOBODY_KNOWN = Parties()  # no profile: names match only as written


@dataclass(frozen=True)
class ConsentState:
    status: str  # none | granted | refused | withdrawn
    separate: bool = False  # the grant named this category separately (PIPL 29)
    event: ConsentEvent | None = None


# The state no event covers: one object for every such answer (frozen, so shared safely).
# Building it was most of what ``state`` cost a session without consent events, asked of
# every message and category by several rules, the engine and the report.
NO_EVENT = ConsentState(NONE)


def recipient_matches(name: str, recipient: Recipient, host: str = "",
                      who: Parties = NOBODY_KNOWN) -> bool:
    """A plan names a recipient by domain (subdomains match) or by organisation name.

    With the profile's parties (``who``), a name also covers the addresses that are its
    owner's: the maker's domain names the maker's first-party IPs, and an organisation's
    domain names every recipient attributed to that organisation."""
    name = name.strip().lower()
    if recipient.organization and name == recipient.organization.lower():
        return True
    if any(matches_domain(h, name) for h in (host, recipient.domain) if h):
        return True
    # cheapest test first: the ledger asks this for every disclosure and message
    if (who.names_maker(name) and address_of(host or recipient.domain) is not None
            and (recipient.party == "first" or who.is_first(host, recipient.domain))):
        return True
    return bool(recipient.organization and who.organisations) and any(
        matches_domain(name, d) for d in who.domains_of(recipient.organization))


class Ledger:
    def __init__(self, plan: ConsentPlan | None = None,
                 events: tuple[ConsentEvent, ...] = (), profile: Profile | None = None) -> None:
        """``profile``: whose addresses are whose, so that a disclosure or event naming the
        maker's domain (or an organisation) covers the addresses the profile gives it."""
        self.plan = plan or ConsentPlan()
        self.who = parties(profile.first_party, profile.organisations) if profile else NOBODY_KNOWN
        self.grace = self.plan.withdrawal_grace_s
        self._events: list[ConsentEvent] = []
        self._times: list[float] = []
        for ev in (*self.plan.events, *events):
            self.add(ev)

    @property
    def events(self) -> tuple[ConsentEvent, ...]:
        return tuple(self._events)

    def add(self, event: ConsentEvent) -> None:
        i = bisect.bisect_right(self._times, event.ts)
        self._times.insert(i, event.ts)
        self._events.insert(i, event)

    def disclosed_for(self, recipient: Recipient, host: str = "") -> frozenset[str]:
        """Categories the privacy notice disclosed for this recipient."""
        out: set[str] = set()
        for d in self.plan.disclosed:
            if recipient_matches(d.recipient, recipient, host, self.who):
                out |= set(d.categories)
        return frozenset(out)

    def processed_for(self, recipient: Recipient, host: str = "") -> frozenset[str]:
        """Categories the notice discloses this recipient handling as the maker's processor
        (``role: processor``, PIPL 21) rather than receiving as a third party (PIPL 23)."""
        out: set[str] = set()
        for d in self.plan.disclosed:
            if d.role == PROCESSOR and recipient_matches(d.recipient, recipient, host, self.who):
                out |= set(d.categories)
        return frozenset(out)

    def any_grant_before(self, t: float) -> bool:
        upto = bisect.bisect_right(self._times, t)
        return any(ev.action == "grant" for ev in self._events[:upto])

    def phase_at(self, t: float) -> str:
        for ev in reversed(self._events[: bisect.bisect_right(self._times, t)]):
            if ev.action == "phase":
                return ev.name
        return ""

    def state(self, category: str, recipient: Recipient, t: float, host: str = ""
              ) -> ConsentState:
        """The latest event before ``t`` that covers (category, recipient).

        "Latest" is by the time the guardian acted, among the events already in effect at
        ``t``: a re-grant inside a withdrawal's grace window outlives that withdrawal."""
        if not self._events and not self.plan.disclosed:
            return NO_EVENT  # what the walk below finds: no notice to read, no event to judge
        latest: ConsentState | None = None
        disclosed = self.disclosed_for(recipient, host)
        for ev in self._events:  # sorted by ts: the last one kept is the latest
            effective = ev.ts + (self.grace if ev.action == "withdraw" else 0.0)
            if ev.action == "phase" or effective > t:
                continue
            if not self._covers(ev, category, recipient, host, disclosed, self.who):
                continue
            separate = category in expand(ev.separate, disclosed) if ev.separate else False
            latest = ConsentState(_STATE_OF[ev.action], separate, ev)
        return latest or NO_EVENT

    @staticmethod
    def _covers(ev: ConsentEvent, category: str, recipient: Recipient, host: str,
                disclosed: frozenset[str], who: Parties) -> bool:
        if ev.recipients and not any(recipient_matches(r, recipient, host, who)
                                     for r in ev.recipients):
            return False
        if ALL_DISCLOSED in ev.categories and category in disclosed:
            return True
        named = [c for c in ev.categories if c != ALL_DISCLOSED]
        return bool(named) and category in expand(named)
