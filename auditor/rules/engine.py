"""Turn observations into findings: one finding per (rule, recipient organisation).

A finding is one problem: a rule that hits the same organisation for several categories, over
several of its hosts, is still one finding, listing every category with its own count and
first/last times (a lab signs problems, not category sets: one finding per category set made
one problem several findings). Every rule runs once per observation, where it lands: message
rules judge it, session rules step through it with a memo per session; a session rule hitting
a message again adds the new categories to that message in the same finding. ``evaluate``
feeds a session in timeline order, so its findings are the same whatever order the
observations came in. Live alerts feed them as they arrive: a message that lands slightly out
of time order (concurrent connections do that) is stepped where it lands, as an alert must be
raised now; the findings a session writes come from ``evaluate`` over the stored timeline.

Memory follows the findings, not the session's length (a soak runs for days). A finding
while it is gathered keeps facts, not messages: its members' transmission ids with the
categories each was hit for (a few bytes each), each category's count and first/last time,
the addresses and consent states it covers. Observations themselves are kept only in a
window of the most recent ones; a session rule's hit on an older message (the carriers of an
identifier, found when a second organisation receives it) is looked up through ``recall``,
which the session gives (one row of its store). Without ``recall`` every observation is kept,
as small callers and tests need nothing more.

The consent states a finding was judged under are asked of the ledger once per message and
category: several rules hit one message for the same categories. ``evaluate`` (the reports:
the ledger is complete) asks when a message's categories are filed, so nothing of the
message need be kept to ask later. The alerts raised while traffic flows never show them: an
``Aggregator`` left with ``judge_consent=False`` asks only when ``findings`` is called,
looking its members up again, under the ledger as it then stands.

The consent family's rules overlap, so a message's hits from them are narrowed before they
are filed: each category goes to the most specific rule that hit it
(``consent_rules.PRECEDENCE``, applied by ``most_specific`` here and nowhere else). Every
finding stays one per (rule, organisation); only the categories a more specific
consent rule claimed leave the others.

A rule that raises on one transmission loses that one judgement, never the session's: the
engine catches it per rule and transmission and keeps it in ``errors`` (the report lists it
under coverage). One hostile message must not stop every report of a session (issue 13). A
message the ledger fails on leaves the finding it was filed in (all of its categories) and
is listed as that rule's error, as if the rule had failed on it.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from auditor.categories import severity_rank
from auditor.memo import Memo
from auditor.model import CategoryFacts, Finding, Ids, Observation
from auditor.rules.base import Rule, RuleContext, StepMemo, timeline
from auditor.rules.catalogue import CATALOGUE
from auditor.rules.consent_rules import most_specific

Key = tuple[str, str]  # rule id, recipient organisation
Failures = dict[tuple[int, str], str]  # (transmission, rule id) -> what was raised
# A transmission id -> its observation (a store row), None if there is none.
Recall = Callable[[int], "Observation | None"]
RULE_STAGE = "rule"  # the coverage ``stage`` of a rule's error: ``rule RULE_ID``
STATES = 1 << 16  # (message, category) consent states remembered while findings are judged
# Observations kept in memory when a ``recall`` can fetch older ones: a session rule's hits
# are nearly always on the last few messages (the previous one to the same recipient), so
# the store is asked rarely (the carriers of an identifier, when it is linked).
WINDOW = 2048
# A member costs a few bytes: its id as 4 (8 past 2**32) and its categories as bits, in the
# narrowest item that holds as many bits as the finding has categories: a typecode of
# ``array`` by the count of categories that outgrows the one before ("": a plain list).
IDS, WIDE_IDS, MAX_ID = "I", "q", 0xFFFFFFFF
MASKS = "B"
WIDER_MASKS = {8: "H", 16: "Q", 64: ""}
_MISSING = object()  # not in a memo


def finding_id(rule_id: str, organisation: str) -> str:
    """Stable across runs and tool versions: reports and labs' tooling refer to it. The
    categories are not part of it: a finding whose categories change stays the same finding."""
    key = f"{rule_id}|{organisation}"
    return "KA-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def recipient_of(obs: Observation) -> str:
    """The address a message went to: the registrable domain, else the host or IP."""
    return obs.recipient.domain or obs.transmission.host or obs.transmission.ip


def organisation_of(obs: Observation) -> str:
    """The name a finding is filed under: the recipient's organisation (from the profile,
    the SDK table or the maker) when known, else its address as ``recipient_of`` gives it.
    The organisation is the unit a lab holds responsible, whatever hosts or IPs it uses."""
    return obs.recipient.organization or recipient_of(obs)


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class _Open:
    """A finding while its messages are gathered, as facts: the members' transmission ids
    (sorted, each once however often a session rule hits it) with the categories each was
    filed for as bits, and what the finding reports of them, kept up to date as they come
    (per category: count, first, last; the addresses; the consent states seen). A later hit
    adding a category to a member counts that category only."""

    __slots__ = ("rule", "organisation", "ids", "masks", "bits", "names", "failed", "first",
                 "last", "facts", "recipients", "consent")

    def __init__(self, rule: Rule, organisation: str) -> None:
        self.rule, self.organisation = rule, organisation
        self.ids = array(IDS)  # member transmission ids, ascending
        self.masks: array | list[int] = array(MASKS)  # the member's categories, as bits
        self.bits: dict[str, int] = {}  # category -> its bit (a mask of one)
        self.names: list[str] = []  # bit -> category
        self.failed: set[int] = set()  # messages the ledger failed on: never members
        self.first, self.last = math.inf, -math.inf
        self.facts: dict[str, list] = {}  # category -> [count, first, last]
        self.recipients: set[str] = set()
        self.consent: set[str] = set()

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, tx_id: object) -> bool:
        return isinstance(tx_id, int) and self._index(tx_id)[1]

    def _bit(self, category: str) -> int:
        bit = self.bits.get(category)
        if bit is None:
            n = len(self.names)
            wider = WIDER_MASKS.get(n)
            if wider is not None:  # the masks need a wider item to hold another bit
                self.masks = array(wider, self.masks) if wider else list(self.masks)
            bit = self.bits[category] = 1 << n
            self.names.append(category)
        return bit

    def categories(self, mask: int) -> list[str]:
        return sorted(name for i, name in enumerate(self.names) if mask >> i & 1)

    def _index(self, tx_id: int) -> tuple[int, bool]:
        """Where ``tx_id`` is, or would go, among the members; whether it is one."""
        ids = self.ids
        if not ids or tx_id > ids[-1]:  # the usual case: messages come in order
            return len(ids), False
        i = bisect_left(ids, tx_id)
        return i, i < len(ids) and ids[i] == tx_id

    def new_categories(self, tx_id: int, cats: Iterable[str],
                       at: tuple[int, bool] | None = None) -> list[str]:
        """The categories of a hit the member was not yet filed for (all, for a new one).
        ``at``: ``_index(tx_id)`` when the caller has it already."""
        i, member = self._index(tx_id) if at is None else at
        if not member:
            return sorted(cats)
        had = self.masks[i]
        return sorted(c for c in cats if not had & self.bits.get(c, 0))

    def members(self) -> Iterator[tuple[int, list[str]]]:
        """Each member's id with its categories, in id order."""
        for tx_id, mask in zip(self.ids, self.masks, strict=True):
            yield tx_id, self.categories(mask)

    def file(self, tx_id: int, ts: float, label: str, cats: Iterable[str],
             at: tuple[int, bool] | None = None) -> None:
        """A hit: the message once, the categories it adds counted once each (each of
        ``cats`` in turn, skipping what the member had or this hit named before: the order
        counted in changes nothing, as ``facts`` is read sorted). ``at``: ``_index(tx_id)``
        when the caller has it already, the members unchanged since."""
        i, member = self._index(tx_id) if at is None else at
        had = self.masks[i] if member else 0
        added = 0
        new: list[str] = []
        for category in cats:
            bit = self.bits.get(category) or self._bit(category)
            if not (had | added) & bit:
                added |= bit
                new.append(category)
        if member:
            self.masks[i] = had | added
        else:
            if not 0 <= tx_id <= MAX_ID and self.ids.typecode == IDS:
                self.ids = array(WIDE_IDS, self.ids)
            self.ids.insert(i, tx_id)
            self.masks.insert(i, added)
            if ts < self.first:
                self.first = ts
            if ts > self.last:
                self.last = ts
            self.recipients.add(label)
        facts_of = self.facts
        for category in new:
            facts = facts_of.get(category)
            if facts is None:
                facts_of[category] = [1, ts, ts]
            else:
                facts[0] += 1
                if ts < facts[1]:
                    facts[1] = ts
                if ts > facts[2]:
                    facts[2] = ts

    def finding(self) -> Finding:
        return Finding(
            id=finding_id(self.rule.id, self.organisation),
            rule=self.rule.id, severity=self.rule.severity, title=self.rule.title,
            categories=tuple(sorted(self.facts)), recipient=self.organisation,
            transmissions=Ids(self.ids), first_seen=self.first, last_seen=self.last,
            references=self.rule.references, consent=tuple(sorted(self.consent)),
            recipients=tuple(sorted(self.recipients)),
            per_category=tuple(CategoryFacts(c, n, first, last)
                               for c, (n, first, last) in sorted(self.facts.items())))


class Aggregator:
    """Feeds observations through every rule, each where it lands; live alerts and
    ``evaluate`` alike.

    ``judge_consent``: ask the ledger for a message's consent states as its categories are
    filed (the ledger must be complete: ``evaluate``); otherwise when ``findings`` is called.
    ``recall``: an observation by transmission id, for session-rule hits on messages older
    than the last ``window``; without it every observation is kept."""

    def __init__(self, ctx: RuleContext, rules: Iterable[Rule] = CATALOGUE, *,
                 judge_consent: bool = False, recall: Recall | None = None,
                 window: int = WINDOW) -> None:
        if window < 1:
            raise ValueError(f"the window holds at least one observation, not {window}")
        self.ctx = ctx
        self.rules = tuple(rules)
        self.judge_consent = judge_consent
        self._message = tuple(r for r in self.rules if r.scope == "message")
        self._session = tuple(r for r in self.rules if r.scope == "session")
        self._open: dict[Key, _Open] = {}
        self._recall = recall
        self._window = window
        self._recent: OrderedDict[int, Observation] = OrderedDict()
        self._memo: dict[str, StepMemo] = {r.id: {} for r in self._session}
        self._errors: Failures = {}  # a rule that raised on a transmission
        self._ledger_failed: Failures = {}  # the ledger raised on a filed message
        self._states: Memo[tuple[int, str], str] = Memo(STATES)
        # the findings with their consent states and the ledger's failures, until an ``add``
        # (the ledger may have moved by then: a mark arrives while traffic flows)
        self._judged: tuple[list[Finding], Failures] | None = None

    def add(self, obs: Observation) -> list[Finding]:
        """Apply every rule to one observation; return the findings it opened, as alerts
        show them (without the consent states ``findings`` judges)."""
        self._judged = None
        self._remember(obs)
        hits = self._judge(obs)
        opened = [found for rule in self._message
                  if (cats := hits.get(rule.id)) is not None
                  and (found := self._record(rule, obs, cats))]
        return opened + self._step(obs) if self._session else opened

    def extend(self, observations: Iterable[Observation], *, ordered: bool = False
               ) -> list[Finding]:
        """Many observations at once, in timeline order; returns the findings opened.
        ``ordered``: they come in timeline order already (a store read by time and id), so
        they are fed as they come, never held all at once."""
        stream = observations if ordered else timeline(observations)
        return [f for obs in stream for f in self.add(obs)]

    def findings(self) -> list[Finding]:
        """All findings with the consent states they were judged under, worst first, then
        the most frequent; ties in a fixed order."""
        return list(self._judgement()[0])

    def errors(self) -> list[dict[str, object]]:
        """Each rule that failed on a transmission (its own judgement, or the ledger's on a
        message it hit), as coverage lists errors (``Store.errors`` rows): in transmission
        order, then by rule."""
        failures = {**self._errors, **self._judgement()[1]}
        return [{"transmission": tx_id, "stage": f"{RULE_STAGE} {rule_id}", "message": message}
                for (tx_id, rule_id), message in sorted(failures.items())]

    def footprint(self) -> dict[str, int]:
        """What this holds, counted: the observations in memory, the open findings, their
        members, and the entries of the session rules' memos (a test of the bounds; the
        bench's worker figures are the measure)."""
        return {"observations": len(self._recent), "findings": len(self._open),
                "members": sum(len(agg) for agg in self._open.values()),
                "memo": sum(len(v) for memo in self._memo.values() for v in memo.values()
                            if isinstance(v, dict))}

    # -- internals ---------------------------------------------------------------------------
    def _remember(self, obs: Observation) -> None:
        """The observation in the window (or for good, without a ``recall``)."""
        recent = self._recent
        recent[obs.transmission.id] = obs
        if self._recall is not None and len(recent) > self._window:
            recent.popitem(last=False)

    def _observation(self, tx_id: int) -> Observation:
        """A message by id: from the window, else recalled (KeyError: neither has it)."""
        obs = self._recent.get(tx_id)
        if obs is not None:
            return obs
        recalled = self._recall(tx_id) if self._recall is not None else None
        if recalled is None:
            raise KeyError(f"transmission {tx_id} is neither in memory nor recalled")
        return recalled

    def _failed(self, rule: Rule, tx_id: int, exc: Exception) -> None:
        self._errors[(tx_id, rule.id)] = _failure(exc)

    def _judge(self, obs: Observation) -> dict[str, frozenset[str]]:
        """Every message rule's hit on one message (rule id -> categories), each consent
        category left to its most specific rule. A consent rule that raised claims nothing:
        the next rule in the order that hit the category keeps it."""
        hits: dict[str, frozenset[str]] = {}
        for rule in self._message:
            assert rule.check is not None
            try:
                cats = rule.check(obs, self.ctx)
            except Exception as e:  # noqa: BLE001 - one rule on one message, not the session
                self._failed(rule, obs.transmission.id, e)
                continue
            if cats is not None:
                hits[rule.id] = cats
        return most_specific(hits)

    def _record(self, rule: Rule, obs: Observation, cats: frozenset[str]) -> Finding | None:
        """File one hit under its finding; the finding when this opened it (a live alert is
        raised once per finding, not per category or message), as alerts show it."""
        key = (rule.id, organisation_of(obs))
        tx = obs.transmission
        agg = self._open.get(key)
        opened = None
        if agg is None:
            agg = self._open[key] = _Open(rule, key[1])
            alert = _Open(rule, key[1])
            alert.file(tx.id, tx.ts, recipient_of(obs), cats)
            opened = alert.finding()
        if tx.id in agg.failed:
            return opened
        # Where the message is among the members, looked up once for both calls (85,000
        # hits for the 20k bench capture): nothing changes the members in between.
        at = agg._index(tx.id)
        new = agg.new_categories(tx.id, cats, at)
        if self.judge_consent and new:
            try:  # all or none of them: a failing category leaves the finding's unchanged
                agg.consent.update([self._known_status(obs, c) for c in new])
            except Exception as e:  # noqa: BLE001 - one message, not the session
                self._ledger_failed[(tx.id, rule.id)] = _failure(e)
                self._drop(key, agg, tx.id)
                return opened
        agg.file(tx.id, tx.ts, recipient_of(obs), new, at)
        return opened

    def _drop(self, key: Key, agg: _Open, tx_id: int) -> None:
        """A message the ledger failed on leaves its finding; if it had been filed there
        already (for other categories), the finding's facts are gathered again without it."""
        agg.failed.add(tx_id)
        if tx_id in agg:  # a member: what it added must go
            again, failed = self._rejudged(agg, self._states)
            again.failed = agg.failed | set(failed)
            self._ledger_failed.update(((t, agg.rule.id), m) for t, m in failed.items())
            self._open[key] = again

    def _rejudged(self, agg: _Open, states: Memo[tuple[int, str], str]
                  ) -> tuple[_Open, dict[int, str]]:
        """The finding gathered again from its members, each looked up and judged under the
        ledger (once per message and category, through ``states``); the members that fail
        (the ledger, or the look-up) are left out and returned with what was raised."""
        again = _Open(agg.rule, agg.organisation)
        failed: dict[int, str] = {}
        for tx_id, cats in agg.members():
            if tx_id in agg.failed:
                continue
            try:
                obs = self._observation(tx_id)
                consent = {self._status(obs, c, states) for c in cats}
            except Exception as e:  # noqa: BLE001 - one message, not the session
                failed[tx_id] = _failure(e)
                continue
            again.consent |= consent
            again.file(tx_id, obs.transmission.ts, recipient_of(obs), cats)
        return again, failed

    def _step(self, obs: Observation) -> list[Finding]:
        opened: list[Finding] = []
        for rule in self._session:
            assert rule.step is not None
            try:  # the hits as a list first: a step failing halfway places none of them
                hits = list(rule.step(obs, self._memo[rule.id], self.ctx))
            except Exception as e:  # noqa: BLE001 - one rule on one message, not the session
                self._failed(rule, obs.transmission.id, e)
                continue
            for tx_id, cats in hits:
                try:
                    hit = self._observation(tx_id)
                except Exception as e:  # noqa: BLE001 - as below, on the stepping message
                    self._failed(rule, obs.transmission.id, e)
                    continue
                try:
                    found = self._record(rule, hit, cats)
                except Exception as e:  # noqa: BLE001 - as above, for the hit's message
                    self._failed(rule, tx_id, e)
                    continue
                if found is not None:
                    opened.append(found)
        return opened

    def _judgement(self) -> tuple[list[Finding], Failures]:
        """Every finding with the consent states its messages' categories were sent under:
        judged as they were filed (``judge_consent``), else now, under the ledger as it
        stands, each member looked up again."""
        if self._judged is None:
            failed: Failures = {}
            if self.judge_consent:
                judged = [agg for agg in self._open.values() if agg]
                failed.update(self._ledger_failed)
            else:
                states: Memo[tuple[int, str], str] = Memo(STATES)
                judged = []
                for agg in self._open.values():
                    again, dropped = self._rejudged(agg, states)
                    failed.update(((t, agg.rule.id), m) for t, m in dropped.items())
                    if again:
                        judged.append(again)
            out = [agg.finding() for agg in judged]
            out.sort(key=lambda f: (severity_rank(f.severity), -f.count, f.rule, f.recipient,
                                    f.categories))
            self._judged = out, failed
        return self._judged

    def _known_status(self, obs: Observation, category: str) -> str:
        """``_status`` through the engine's memo, asked first without building the closure
        that makes a missing one (several rules hit a message for the same categories)."""
        status = self._states.get((obs.transmission.id, category), _MISSING)
        return (self._status(obs, category, self._states) if status is _MISSING
                else status)  # type: ignore[return-value]

    def _status(self, obs: Observation, category: str, states: Memo[tuple[int, str], str]
                ) -> str:
        """The consent status a category was sent under, at the message's time."""
        tx = obs.transmission
        return states.get_or_make((tx.id, category), lambda: self.ctx.ledger.state(
            category, obs.recipient, tx.ts, tx.host).status)


def evaluate(observations: Iterable[Observation], ctx: RuleContext,
             rules: Iterable[Rule] = CATALOGUE, *,
             errors: list[dict[str, object]] | None = None, ordered: bool = False,
             recall: Recall | None = None) -> list[Finding]:
    """Every finding of a session, the same for the same input whatever its order. A rule
    that failed on a transmission is appended to ``errors`` (coverage rows), when given.
    ``ordered``: the observations come in timeline order already (by time, then id) and are
    streamed, not held; ``recall`` then looks up the older ones a session rule hits (see
    ``Aggregator``)."""
    agg = Aggregator(ctx, rules, judge_consent=True, recall=recall)
    agg.extend(observations, ordered=ordered)
    if errors is not None:
        errors.extend(agg.errors())
    return agg.findings()
