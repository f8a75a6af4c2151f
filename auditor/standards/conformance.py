"""The conformance table: each test item of a standard judged on one session.

A lab signs test items, not rules. An item *fails* when one of its rules has a finding; it
*passes* only when the session gave it a chance: every step it needs was performed and at
least one of its rules was exercised, with nothing found. Otherwise it is *not exercised*,
naming what was missing, so a short session's silence is never read as a pass. An item only
documents or the maker's statement can evidence is *not testable by traffic*.

A finding is evidence whatever else the session lacked: ``fail`` beats ``not exercised``.
Pure: the caller hands in the rules' statuses (``rules.exercise``), the findings and the
steps (``standards.steps.performed``); ``facts`` turns the walk's ``Seen`` into the
``SessionFacts`` the steps read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from auditor.model import ConsentEvent
from auditor.report.i18n import NOT_EXERCISED_TEXT
from auditor.rules.exercise import FAIL, NOT_EXERCISED, PASS, Seen
from auditor.standards.model import DOCUMENT, UNVERIFIED, Standard, Text
from auditor.standards.steps import BY_ID, SessionFacts, StepResult

NOT_TESTABLE = "not testable by traffic"
STATUSES = (FAIL, PASS, NOT_EXERCISED, NOT_TESTABLE)


class _RuleStatus(Protocol):
    """``rules.exercise.RuleStatus`` or the document's ``RuleResult``: the same three."""

    id: str
    status: str
    reason: str


class _Finding(Protocol):
    id: str
    rule: str


@dataclass(frozen=True)
class ItemResult:
    """One item's line of the table. ``findings``/``rules``: for ``fail`` the findings and
    the rules that failed it, for ``pass`` the rules that were exercised. ``missing_steps``:
    the steps the session lacked (for ``fail`` too: what its other parts still need);
    ``reason`` says why it is not exercised (or, for an item
    not testable by traffic, the catalogue's note, else its summary)."""

    clause: str
    title: Text
    status: str
    clause_status: str
    findings: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    missing_steps: tuple[str, ...] = ()
    reason: Text | None = None

    @property
    def clause_verified(self) -> bool:
        return self.clause_status != UNVERIFIED

    def json(self) -> dict[str, object]:
        return {"clause": self.clause, "title": self.title.en, "status": self.status,
                "clause_verified": self.clause_verified, "findings": list(self.findings),
                "rules": list(self.rules), "missing_steps": list(self.missing_steps),
                "reason": self.reason.en if self.reason is not None else ""}


@dataclass(frozen=True)
class Conformance:
    """One standard's table; a standard whose number is not confirmed has no items."""

    id: str
    number: str
    title: Text
    status: str
    items: tuple[ItemResult, ...] = ()

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    def json(self) -> dict[str, object]:
        return {"id": self.id, "number": self.number, "title": self.title.en,
                "status": self.status, "items": list(self.items)}


def judge(standard: Standard, rule_statuses: Iterable[_RuleStatus],
          findings: Iterable[_Finding], steps: Iterable[StepResult]) -> Conformance:
    """``standard``'s items judged on one session (see the module's docstring)."""
    statuses = {r.id: r for r in rule_statuses}
    by_rule: dict[str, list[str]] = {}
    for f in findings:
        by_rule.setdefault(f.rule, []).append(f.id)
    done = {s.step: s for s in steps}
    items = tuple(_item(item, statuses, by_rule, done) for item in standard.items)
    return Conformance(standard.id, standard.number, standard.title, standard.status, items)


def _item(item, statuses: dict[str, _RuleStatus], by_rule: dict[str, list[str]],
          done: dict[str, StepResult]) -> ItemResult:
    base = {"clause": item.clause, "title": item.title, "clause_status": item.clause_status}
    if item.evidence == DOCUMENT:
        return ItemResult(status=NOT_TESTABLE, reason=item.note or item.summary, **base)
    failed = [r for r in item.rules
              if by_rule.get(r) or (r in statuses and statuses[r].status == FAIL)]
    missing = [s for s in item.steps if not (s in done and done[s].performed)]
    if failed:
        # The steps it still lacks are kept: the item fails, yet what those steps test
        # (a withdrawal, a long idle) was never tried, and a lab re-testing a fix needs them.
        ids = tuple(i for r in failed for i in by_rule.get(r, ()))
        return ItemResult(status=FAIL, findings=ids, rules=tuple(failed),
                          missing_steps=tuple(missing), **base)
    if missing:
        return ItemResult(status=NOT_EXERCISED, missing_steps=tuple(missing),
                          reason=_joined(_step_reason(s, done.get(s)) for s in missing),
                          **base)
    exercised = tuple(r for r in item.rules if r in statuses and statuses[r].status == PASS)
    if not exercised:
        return ItemResult(status=NOT_EXERCISED, rules=item.rules,
                          reason=_joined(_rule_reason(r, statuses.get(r)) for r in item.rules),
                          **base)
    return ItemResult(status=PASS, rules=exercised, **base)


def _step_reason(step: str, result: StepResult | None) -> Text:
    title = BY_ID[step].title if step in BY_ID else Text(step, step)
    why = result.missing if result is not None and result.missing is not None else Text(
        "not recorded", "未记录")
    return Text(f"{title.en}: {why.en}", f"{title.zh}：{why.zh}")


def _rule_reason(rule: str, status: _RuleStatus | None) -> Text:
    en = status.reason if status is not None and status.reason else "not judged"
    zh = NOT_EXERCISED_TEXT["zh"].get(en, "未评估" if status is None else en)
    return Text(f"{rule}: {en}", f"{rule}：{zh}")


def _joined(parts: Iterable[Text]) -> Text:
    parts = list(parts)
    return Text("; ".join(p.en for p in parts), "；".join(p.zh for p in parts))


def facts(seen: Seen, events: Iterable[ConsentEvent]) -> SessionFacts:
    """The steps' facts from the walk that fed the rules (``seen``) and the session's
    events: traffic before the first grant is a first message earlier than any grant (or
    any message at all when nothing was granted)."""
    grants = [e.ts for e in events if e.action == "grant"]
    first_grant = min(grants, default=None)
    before = seen.first is not None and (first_grant is None or seen.first < first_grant)
    return SessionFacts(first=seen.first, last=seen.last, traffic_before_grant=before,
                        probed_hosts=len(seen.probed_hosts), update_fetch=seen.update_fetch)
