"""Two sessions side by side (``kidaudit diff OLD NEW``), e.g. two firmware versions of a watch.

Pure: takes two ``kidaudit.findings/1`` documents, returns a ``SessionDiff`` a lab can quote.
Findings are matched on ``(rule, recipient organisation)``, the unit of a problem (issue 15):
a finding whose categories shrank or grew is one *change*, not a fix plus a new finding, and
a maker reached by domain in one session and by IP in the other stays one party. What one
session's input could not hold is never called fixed or new: a HAR holds no TCP, so a TCP
finding missing from a HAR is *not comparable*, and the two sessions' differences in input,
capture modes and coverage come first, as caveats. Recipients (the data flows) stay keyed by
registrable domain (falling back to host, then IP) over device-sent messages.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from auditor.categories import SEVERITIES

FindingKey = tuple[str, str]
ALL_TRANSPORTS = None  # an input that can hold every transport the auditor reads

# What each kind of input can hold: a finding over any other transport cannot show up in it.
# A HAR is mitmproxy's (or a browser's) HTTP export; a pcap without keys shows HTTPS as TLS.
INPUT_KINDS: tuple[tuple[str, str, frozenset[str] | None], ...] = (
    # (kind, how ``session.inputs`` names it: prefix or suffix, the transports it holds)
    ("live capture", "live capture", ALL_TRANSPORTS),
    ("HAR", ".har", frozenset({"http", "https", "websocket"})),
    ("pcap", ".pcap", frozenset({"http", "tcp", "udp", "dns", "tls"})),
    ("pcap", ".pcapng", frozenset({"http", "tcp", "udp", "dns", "tls"})),
    ("mitmproxy flows", ".mitm", ALL_TRANSPORTS),
)
NOT_CAPTURES = (".yaml", ".yml")  # the profile and consent plan, listed among the inputs
LIST_JOIN = " + "  # a caveat's list of values: the commas already part old from new


@dataclass(frozen=True)
class SessionRef:
    id: str
    device: str
    firmware: str
    started: str
    ended: str


@dataclass(frozen=True)
class FindingRef:
    rule: str
    severity: str
    title: str
    recipient: str  # the recipient names it is filed under, comma-separated
    categories: tuple[str, ...]
    count: int
    organisation: str = ""
    transports: tuple[str, ...] = ()

    @property
    def key(self) -> FindingKey:
        return (self.rule, self.organisation or self.recipient)


@dataclass(frozen=True)
class FindingChange:
    """One finding in both sessions whose categories changed: what it gained and lost.
    ``comparable`` is False when the old finding used a transport the new session's input
    cannot hold, so what it lost may only be unseen."""

    old: FindingRef
    new: FindingRef
    added: tuple[str, ...]
    removed: tuple[str, ...]
    comparable: bool = True


@dataclass(frozen=True)
class Caveat:
    """A way the two sessions differ that limits what the comparison can say.
    ``kind``: ``inputs``, ``capture``, ``uninspected``, ``errors`` or ``transports``."""

    kind: str
    old: str
    new: str


@dataclass(frozen=True)
class SessionDiff:
    old: SessionRef
    new: SessionRef
    recipients_new: tuple[str, ...] = ()
    recipients_vanished: tuple[str, ...] = ()
    categories_new: dict[str, tuple[str, ...]] = field(default_factory=dict)
    categories_vanished: dict[str, tuple[str, ...]] = field(default_factory=dict)
    findings_introduced: tuple[FindingRef, ...] = ()
    findings_fixed: tuple[FindingRef, ...] = ()
    findings_persisting: tuple[tuple[FindingRef, FindingRef], ...] = ()  # (old, new)
    findings_changed: tuple[FindingChange, ...] = ()
    # Only in one session, over a transport the other session's input could not hold.
    not_comparable_old: tuple[FindingRef, ...] = ()
    not_comparable_new: tuple[FindingRef, ...] = ()
    # Recipients, and categories per recipient, seen in one session only over a transport the
    # other session's input could not hold: neither new nor vanished.
    recipients_not_comparable: tuple[str, ...] = ()
    categories_not_comparable: dict[str, tuple[str, ...]] = field(default_factory=dict)
    caveats: tuple[Caveat, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.recipients_new or self.recipients_vanished or self.categories_new
                    or self.categories_vanished or self.findings_introduced
                    or self.findings_fixed or self.findings_changed
                    or self.not_comparable_old or self.not_comparable_new
                    or self.recipients_not_comparable or self.categories_not_comparable)


class DocumentError(ValueError):
    """A findings document diff cannot read: what is wrong with it, for one line naming the
    file (exit 2)."""


# The lists diff reads; any of them may be missing (an empty session), none of another shape.
LISTS = ("findings", "transmissions", "detections")


def check(doc: object) -> dict:
    """``doc`` itself when diff can read it; DocumentError says where it is not a
    ``kidaudit.findings/1`` document (``[]``, ``{"findings": 5}``), instead of a traceback
    further in. Entries of the wrong shape inside the lists are skipped as before."""
    if not isinstance(doc, dict):
        raise DocumentError(f"is a JSON {_json_kind(doc)}, not a findings document (an object "
                            "with findings, transmissions and detections)")
    for key in LISTS:
        if doc.get(key) is not None and not isinstance(doc[key], list):
            raise DocumentError(f"{key} is a JSON {_json_kind(doc[key])}, not a list")
    return doc


def _json_kind(value: object) -> str:
    kinds = ((dict, "object"), (list, "array"), (str, "string"), (bool, "boolean"),
             (int | float, "number"))
    return next((name for cls, name in kinds if isinstance(value, cls)), "null")


def diff(old: dict, new: dict) -> SessionDiff:
    """What changed from ``old`` to ``new``: recipients, categories per recipient, findings,
    and the caveats that bound it. Both must pass ``check`` (DocumentError otherwise)."""
    old, new = check(old), check(new)
    old_holds, new_holds = _holds(old), _holds(new)
    old_flows, new_flows = _flows(old), _flows(new)
    gone, gone_unseen = _missing(old_flows, new_flows, new_holds)
    came, came_unseen = _missing(new_flows, old_flows, old_holds)
    # A recipient's organisation is a fact about it, not about one session: each session's
    # findings are read with what either document says, its own first.
    old_orgs, new_orgs = _organisations(old), _organisations(new)
    old_f = _findings(old, new_orgs | old_orgs)
    new_f = _findings(new, old_orgs | new_orgs)
    lost = [old_f[k] for k in old_f.keys() - new_f.keys()]
    found = [new_f[k] for k in new_f.keys() - old_f.keys()]
    both = sorted(old_f.keys() & new_f.keys(), key=lambda k: (_rank(new_f[k].severity), k))
    return SessionDiff(
        old=_session(old), new=_session(new),
        recipients_new=_recipients(came),
        recipients_vanished=_recipients(gone),
        categories_new=_categories(came, new_flows),
        categories_vanished=_categories(gone, new_flows),
        findings_introduced=_ordered(f for f in found if _visible(f, old_holds)),
        findings_fixed=_ordered(f for f in lost if _visible(f, new_holds)),
        findings_persisting=tuple((old_f[k], new_f[k]) for k in both
                                  if old_f[k].categories == new_f[k].categories),
        findings_changed=tuple(_change(old_f[k], new_f[k], new_holds) for k in both
                               if old_f[k].categories != new_f[k].categories),
        not_comparable_old=_ordered(f for f in lost if not _visible(f, new_holds)),
        not_comparable_new=_ordered(f for f in found if not _visible(f, old_holds)),
        recipients_not_comparable=tuple(sorted({*_recipients(gone_unseen),
                                                *_recipients(came_unseen)})),
        categories_not_comparable=_merged(_categories(gone_unseen, None),
                                          _categories(came_unseen, None)),
        caveats=_caveats(old, new),
    )


def regressions(d: SessionDiff, severity: str) -> tuple[FindingRef, ...]:
    """What ``--fail-on-new SEVERITY`` gates on: the new session's findings at or above
    ``severity`` that are new, or that gained categories. A finding only the new session's
    input could hold is not known to be new, so it is a caveat, not a regression."""
    line = _rank(severity)
    crossed = [*d.findings_introduced, *(c.new for c in d.findings_changed if c.added)]
    return _ordered(f for f in crossed if _rank(f.severity) <= line)


def format_text(d: SessionDiff) -> str:
    """The terminal view: caveats first, then one line per change, worst findings first."""
    lines = [f"old: {_describe(d.old)}", f"new: {_describe(d.new)}", ""]

    def section(title: str, rows: list[str]) -> None:
        lines.append(f"{title} ({len(rows)})")
        lines.extend(f"  {row}" for row in rows or ["none"])
        lines.append("")

    if d.caveats:
        section("caveats: the sessions differ in", [caveat_text(c) for c in d.caveats])
    section("findings introduced", [_finding_line("+", f) for f in d.findings_introduced])
    section("findings fixed", [_finding_line("-", f) for f in d.findings_fixed])
    section("findings whose categories changed", [_change_line(c) for c in d.findings_changed])
    if (d.not_comparable_old or d.not_comparable_new or d.recipients_not_comparable
            or d.categories_not_comparable):
        section("not comparable (the other session's input cannot hold their transport)",
                [_finding_line("?-", f) for f in d.not_comparable_old]
                + [_finding_line("?+", f) for f in d.not_comparable_new]
                + [f"? recipient {r}" for r in d.recipients_not_comparable]
                + [f"? {r}: {', '.join(c)}" for r, c in d.categories_not_comparable.items()])
    section("new recipients", [f"+ {r}: {', '.join(d.categories_new.get(r, ())) or '-'}"
                               for r in d.recipients_new])
    section("vanished recipients", [f"- {r}" for r in d.recipients_vanished])
    section("new categories per recipient",
            [f"+ {r}: {', '.join(c)}" for r, c in d.categories_new.items()
             if r not in d.recipients_new])
    section("categories no longer sent",
            [f"- {r}: {', '.join(c)}" for r, c in d.categories_vanished.items()])
    counted = [(o, n) for o, n in d.findings_persisting if o.count != n.count]
    section("findings in both, count changed",
            [f"= {n.rule} -> {_party(n)}: {o.count} -> {n.count}" for o, n in counted])
    lines.append("no change" if not d.changed else
                 f"{len(d.findings_introduced)} introduced, {len(d.findings_fixed)} fixed, "
                 f"{len(d.findings_changed)} changed, "
                 f"{len(d.not_comparable_old) + len(d.not_comparable_new)} not comparable, "
                 f"{len(d.recipients_new)} new recipients, "
                 f"{len(d.recipients_vanished)} vanished")
    return "\n".join(lines) + "\n"


# How the terminal names each caveat; the HTML page takes its labels from report.i18n.
CAVEAT_TEXT = {
    "inputs": "input kind: old {old}, new {new}",
    "capture": "capture modes: old {old}, new {new}",
    "uninspected": "uninspected hosts: old {old}, new {new}",
    "errors": "analysis errors: old {old}, new {new}",
    "transports": "transports present: old {old}, new {new}",
}


def caveat_text(c: Caveat) -> str:
    return CAVEAT_TEXT.get(c.kind, c.kind + ": old {old}, new {new}").format(old=c.old,
                                                                              new=c.new)


# -- helpers -------------------------------------------------------------------------------


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _key(value: object) -> object:
    """A document value usable as a dict key (an id written as a list is not one)."""
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def _strings(value: object) -> list[str]:
    """A list's entries as text; anything that is not a list holds none."""
    return [_text(v) for v in value] if isinstance(value, list) else []


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _session(doc: dict) -> SessionRef:
    s = _dict(doc.get("session"))
    device = s.get("device")
    name, firmware = ((_text(device.get("name")), _text(device.get("firmware")))
                      if isinstance(device, dict) else (_text(device), ""))
    return SessionRef(id=_text(s.get("id")), device=name, firmware=firmware,
                      started=_text(s.get("started")), ended=_text(s.get("ended")))


def _uploads(doc: dict) -> list[dict]:
    """The device-sent transmissions (a server's command to the watch is not a flow)."""
    return [tx for tx in _dicts(doc.get("transmissions")) if tx.get("direction", "up") == "up"]


CONTACT = ""  # in Flows, the recipient itself (contacted, whatever was sent)
Flows = dict[str, dict[str, set[str]]]


def _flows(doc: dict) -> Flows:
    """Recipient → category → the transports device-sent messages carried it by; under
    ``CONTACT`` the transports the recipient was reached by at all."""
    cats_by_tx: dict[object, set[str]] = defaultdict(set)
    for det in _dicts(doc.get("detections")):
        if det.get("category"):
            cats_by_tx[_key(det.get("transmission"))].add(_text(det["category"]))
    flows: Flows = {}
    for tx in _uploads(doc):
        rcp = _dict(tx.get("recipient"))
        name = _text(rcp.get("domain")) or _text(tx.get("host")) or _text(tx.get("ip"))
        if not name:
            continue
        transport = {_text(tx.get("transport"))} - {""}
        per = flows.setdefault(name, {})
        for cat in (CONTACT, *cats_by_tx.get(_key(tx.get("id")), ())):
            per.setdefault(cat, set()).update(transport)
    return flows


def _missing(a: Flows, b: Flows, b_holds: frozenset[str] | None) -> tuple[Flows, Flows]:
    """What ``a`` has and ``b`` lacks (recipients, categories per recipient): what ``b``'s
    input could have shown, and what it could not (sent only by transports it cannot hold)."""
    shown: Flows = {}
    unseen: Flows = {}
    for r, per in a.items():
        for cat, transports in per.items():
            if cat in b.get(r, {}):
                continue
            seen = b_holds is ALL_TRANSPORTS or transports <= b_holds
            (shown if seen else unseen).setdefault(r, {})[cat] = transports
    return shown, unseen


def _recipients(flows: Flows) -> tuple[str, ...]:
    return tuple(sorted(r for r, per in flows.items() if CONTACT in per))


def _categories(flows: Flows, only_in: Flows | None) -> dict[str, tuple[str, ...]]:
    """Per recipient (of ``only_in``, when given), its categories in ``flows``."""
    out = {}
    for r in sorted(flows):
        cats = tuple(sorted(set(flows[r]) - {CONTACT}))
        if cats and (only_in is None or r in only_in):
            out[r] = cats
    return out


def _merged(a: dict[str, tuple[str, ...]],
            b: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    return {r: tuple(sorted({*a.get(r, ()), *b.get(r, ())})) for r in sorted({*a, *b})}


def _organisation_of(value: object) -> str:
    """An organisation as a document writes it: a name, or an object with one."""
    if isinstance(value, dict):
        value = value.get("name")
    return value if isinstance(value, str) else ""


def _organisations(doc: dict) -> dict[str, str]:
    """Recipient name (domain, host or IP) → its organisation, from the document's own
    recipients table when it has one, else from its transmissions' recipients."""
    out: dict[str, str] = {}
    for r in _dicts(doc.get("recipients")):
        org = _organisation_of(r.get("organisation") or r.get("organization"))
        for name in (r.get("name"), r.get("domain"), r.get("recipient")):
            if org and isinstance(name, str) and name:
                out.setdefault(name, org)
    for tx in _dicts(doc.get("transmissions")):
        rcp = _dict(tx.get("recipient"))
        org = _organisation_of(rcp.get("organisation") or rcp.get("organization"))
        for name in (rcp.get("domain"), tx.get("host"), tx.get("ip")):
            if org and isinstance(name, str) and name:
                out.setdefault(name, org)
    return out


def _findings(doc: dict, orgs: dict[str, str]) -> dict[FindingKey, FindingRef]:
    """The document's findings by ``(rule, organisation)``, ``orgs`` naming the organisation
    of a finding that does not say; a document written one finding per category set (before
    issue 15) has its findings for one party added up."""
    transports = {_key(tx.get("id")): _text(tx.get("transport"))
                  for tx in _dicts(doc.get("transmissions"))}
    out: dict[FindingKey, FindingRef] = {}
    for f in _dicts(doc.get("findings")):
        txs = f.get("transmissions") if isinstance(f.get("transmissions"), list) else []
        try:
            count = int(f.get("count", len(txs)))
        except (TypeError, ValueError, OverflowError):
            count = len(txs)
        recipient = _text(f.get("recipient"))
        org = (_organisation_of(f.get("organisation") or f.get("organization"))
               or orgs.get(recipient, recipient))
        ref = FindingRef(rule=_text(f.get("rule")), severity=_text(f.get("severity")),
                         title=_text(f.get("title")), recipient=recipient,
                         categories=tuple(sorted(set(_strings(f.get("categories"))))),
                         count=count, organisation=org,
                         transports=tuple(sorted({transports[_key(t)] for t in txs
                                                  if transports.get(_key(t))})))
        if ref.key in out:
            ref = _merge(out[ref.key], ref)
        out[ref.key] = ref
    return out


def _merge(a: FindingRef, b: FindingRef) -> FindingRef:
    """Two findings of one rule for one organisation as the one problem they are."""
    recipients = sorted(set(a.recipient.split(", ")) | set(b.recipient.split(", ")) - {""})
    return FindingRef(
        rule=a.rule, severity=min(a.severity, b.severity, key=_rank), title=a.title or b.title,
        recipient=", ".join(recipients), categories=tuple(sorted({*a.categories,
                                                                  *b.categories})),
        count=a.count + b.count, organisation=a.organisation,
        transports=tuple(sorted({*a.transports, *b.transports})))


def _input_kinds(doc: dict) -> list[tuple[str, frozenset[str] | None]]:
    """The kinds of input a session was made from, each with the transports it can hold.
    An input diff does not recognise holds everything (it cannot rule anything out)."""
    kinds = []
    for name in _strings(_dict(doc.get("session")).get("inputs")):
        low = name.lower().strip()
        if not low or low.endswith(NOT_CAPTURES):
            continue
        match = next(((kind, holds) for kind, mark, holds in INPUT_KINDS
                      if low.startswith(mark) or low.endswith(mark)), (f"other ({name})", None))
        if match not in kinds:
            kinds.append(match)
    return kinds


def _holds(doc: dict) -> frozenset[str] | None:
    """Every transport the session's inputs can hold; None: any (or unknown)."""
    kinds = _input_kinds(doc)
    if not kinds or any(holds is ALL_TRANSPORTS for _, holds in kinds):
        return ALL_TRANSPORTS
    return frozenset().union(*(holds for _, holds in kinds))


def _visible(f: FindingRef, holds: frozenset[str] | None) -> bool:
    """Whether the other session could have shown ``f``: every transport it rests on is one
    the other session's input can hold."""
    return holds is ALL_TRANSPORTS or set(f.transports) <= holds


def _change(old: FindingRef, new: FindingRef,
            new_holds: frozenset[str] | None) -> FindingChange:
    return FindingChange(old=old, new=new,
                         added=tuple(sorted(set(new.categories) - set(old.categories))),
                         removed=tuple(sorted(set(old.categories) - set(new.categories))),
                         comparable=set(old.categories) <= set(new.categories)
                         or _visible(old, new_holds))


def _caveats(old: dict, new: dict) -> tuple[Caveat, ...]:
    """Where the sessions differ in what they could see: input kind, capture modes (when
    both say), uninspected hosts, analysis errors, transports present."""
    facts = [("inputs", _inputs_fact), ("capture", _capture_fact),
             ("uninspected", _uninspected_fact), ("errors", _errors_fact),
             ("transports", _transports_fact)]
    out = []
    for kind, fact in facts:
        a, b = fact(old), fact(new)
        if a is not None and b is not None and a != b:
            out.append(Caveat(kind, a, b))
    return tuple(out)


def _inputs_fact(doc: dict) -> str | None:
    kinds = _input_kinds(doc)
    return LIST_JOIN.join(sorted(kind for kind, _ in kinds)) if kinds else None


def _capture_fact(doc: dict) -> str | None:
    """``session.capture`` as one comparable line; None when the session does not say."""
    capture = _dict(doc.get("session")).get("capture")
    if capture in (None, "", [], {}):
        return None
    if isinstance(capture, dict) and "modes" in capture:
        capture = capture["modes"]
    if isinstance(capture, list) and all(isinstance(m, str) for m in capture):
        return LIST_JOIN.join(sorted(capture))
    if isinstance(capture, str):
        return capture
    return json.dumps(capture, sort_keys=True, ensure_ascii=False, default=str)


def _uninspected_fact(doc: dict) -> str | None:
    coverage = doc.get("coverage")
    if not isinstance(coverage, dict):
        return None
    hosts = {_text(u.get("host")) for u in _dicts(coverage.get("uninspected"))}
    return str(len(hosts))


def _errors_fact(doc: dict) -> str | None:
    coverage = doc.get("coverage")
    if not isinstance(coverage, dict):
        return None
    errors = coverage.get("analysis_errors")
    return str(errors) if isinstance(errors, int) else str(len(_dicts(coverage.get("errors"))))


def _transports_fact(doc: dict) -> str | None:
    if doc.get("transmissions") is None:
        return None
    present = {_text(tx.get("transport")) for tx in _uploads(doc)} - {""}
    return LIST_JOIN.join(sorted(present)) or "none"


def _ordered(refs: Iterable[FindingRef]) -> tuple[FindingRef, ...]:
    return tuple(sorted(refs, key=lambda f: (_rank(f.severity), f.key)))


def _describe(s: SessionRef) -> str:
    fw = f" firmware {s.firmware}" if s.firmware else ""
    window = f" ({s.started} - {s.ended})" if s.started or s.ended else ""
    return f"{s.device or '?'}{fw}, session {s.id or '?'}{window}"


def _party(f: FindingRef) -> str:
    """The organisation, with the recipient names it was seen under when they differ."""
    if not f.organisation or f.organisation == f.recipient:
        return f.recipient or "-"
    return f"{f.organisation} [{f.recipient or '-'}]"


def _finding_line(sign: str, f: FindingRef) -> str:
    cats = ", ".join(f.categories) or "-"
    sev = f.severity.upper() or "?"
    return f"{sign} [{sev}] {f.rule} -> {_party(f)} ({cats}) x{f.count}"


def _change_line(c: FindingChange) -> str:
    moves = [f"+{cat}" for cat in c.added] + [f"-{cat}" for cat in c.removed]
    unsure = "" if c.comparable else " (removal not comparable: the new input cannot hold " \
        f"{', '.join(c.old.transports)})"
    return (f"~ [{c.new.severity.upper() or '?'}] {c.new.rule} -> {_party(c.new)}: "
            f"{' '.join(moves)} x{c.old.count} -> x{c.new.count}{unsure}")


__all__ = ["Caveat", "DocumentError", "FindingChange", "FindingRef", "SessionDiff",
           "SessionRef", "caveat_text", "check", "diff", "format_text", "regressions"]
