"""Two sessions side by side (``kidaudit diff OLD NEW``), e.g. two firmware versions of a watch.

Pure: takes two ``kidaudit.findings/1`` documents, returns a ``SessionDiff``. Recipients are
keyed by registrable domain (falling back to host, then IP) over device-sent messages;
findings by ``(rule, recipient, categories)``, the aggregation key of RULES.md, so a finding
that only changed its count is neither fixed nor introduced.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from auditor.categories import SEVERITIES

FindingKey = tuple[str, str, tuple[str, ...]]


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
    recipient: str
    categories: tuple[str, ...]
    count: int

    @property
    def key(self) -> FindingKey:
        return (self.rule, self.recipient, self.categories)


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

    @property
    def changed(self) -> bool:
        return bool(self.recipients_new or self.recipients_vanished or self.categories_new
                    or self.categories_vanished or self.findings_introduced
                    or self.findings_fixed)


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
    """What changed from ``old`` to ``new``: recipients, categories per recipient, findings.
    Both must pass ``check`` (DocumentError otherwise)."""
    old, new = check(old), check(new)
    old_flows, new_flows = _flows(old), _flows(new)
    shared = old_flows.keys() & new_flows.keys()
    old_f, new_f = _findings(old), _findings(new)
    return SessionDiff(
        old=_session(old), new=_session(new),
        recipients_new=tuple(sorted(new_flows.keys() - old_flows.keys())),
        recipients_vanished=tuple(sorted(old_flows.keys() - new_flows.keys())),
        categories_new=_per_recipient(new_flows, old_flows, shared | new_flows.keys()),
        categories_vanished=_per_recipient(old_flows, new_flows, shared),
        findings_introduced=_ordered(new_f[k] for k in new_f.keys() - old_f.keys()),
        findings_fixed=_ordered(old_f[k] for k in old_f.keys() - new_f.keys()),
        findings_persisting=tuple((old_f[k], new_f[k]) for k in sorted(
            old_f.keys() & new_f.keys(), key=lambda k: (_rank(new_f[k].severity), k))),
    )


def format_text(d: SessionDiff) -> str:
    """The terminal view: one line per change, worst findings first."""
    lines = [f"old: {_describe(d.old)}", f"new: {_describe(d.new)}", ""]

    def section(title: str, rows: list[str]) -> None:
        lines.append(f"{title} ({len(rows)})")
        lines.extend(f"  {row}" for row in rows or ["none"])
        lines.append("")

    section("findings introduced", [_finding_line("+", f) for f in d.findings_introduced])
    section("findings fixed", [_finding_line("-", f) for f in d.findings_fixed])
    section("new recipients", [f"+ {r}: {', '.join(d.categories_new.get(r, ())) or '-'}"
                               for r in d.recipients_new])
    section("vanished recipients", [f"- {r}" for r in d.recipients_vanished])
    section("new categories per recipient",
            [f"+ {r}: {', '.join(c)}" for r, c in d.categories_new.items()
             if r not in d.recipients_new])
    section("categories no longer sent",
            [f"- {r}: {', '.join(c)}" for r, c in d.categories_vanished.items()])
    changed = [(o, n) for o, n in d.findings_persisting if o.count != n.count]
    section("findings in both, count changed",
            [f"= {n.rule} -> {n.recipient}: {o.count} -> {n.count}" for o, n in changed])
    lines.append("no change" if not d.changed else
                 f"{len(d.findings_introduced)} introduced, {len(d.findings_fixed)} fixed, "
                 f"{len(d.recipients_new)} new recipients, "
                 f"{len(d.recipients_vanished)} vanished")
    return "\n".join(lines) + "\n"


# -- helpers -------------------------------------------------------------------------------


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _key(value: object) -> object:
    """A document value usable as a dict key (an id written as a list is not one)."""
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def _strings(value: object) -> list[str]:
    """A list's entries as text; anything that is not a list holds none."""
    return [_text(v) for v in value] if isinstance(value, list) else []


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _session(doc: dict) -> SessionRef:
    s = doc.get("session") if isinstance(doc.get("session"), dict) else {}
    device = s.get("device")
    name, firmware = ((_text(device.get("name")), _text(device.get("firmware")))
                      if isinstance(device, dict) else (_text(device), ""))
    return SessionRef(id=_text(s.get("id")), device=name, firmware=firmware,
                      started=_text(s.get("started")), ended=_text(s.get("ended")))


def _flows(doc: dict) -> dict[str, set[str]]:
    """Recipient → the categories device-sent messages carried to it (empty: contacted only)."""
    cats_by_tx: dict[object, set[str]] = defaultdict(set)
    for det in doc.get("detections") or []:
        if isinstance(det, dict) and det.get("category"):
            cats_by_tx[_key(det.get("transmission"))].add(_text(det["category"]))
    flows: dict[str, set[str]] = {}
    for tx in doc.get("transmissions") or []:
        if not isinstance(tx, dict) or tx.get("direction", "up") != "up":
            continue
        rcp = tx.get("recipient") if isinstance(tx.get("recipient"), dict) else {}
        name = _text(rcp.get("domain")) or _text(tx.get("host")) or _text(tx.get("ip"))
        if name:
            flows.setdefault(name, set()).update(cats_by_tx.get(_key(tx.get("id")), ()))
    return flows


def _per_recipient(a: dict[str, set[str]], b: dict[str, set[str]],
                   recipients: set[str]) -> dict[str, tuple[str, ...]]:
    """Per recipient, the categories in ``a`` and not in ``b``."""
    out = {}
    for r in sorted(recipients):
        extra = a.get(r, set()) - b.get(r, set())
        if extra:
            out[r] = tuple(sorted(extra))
    return out


def _findings(doc: dict) -> dict[FindingKey, FindingRef]:
    out: dict[FindingKey, FindingRef] = {}
    for f in doc.get("findings") or []:
        if not isinstance(f, dict):
            continue
        txs = f.get("transmissions") if isinstance(f.get("transmissions"), list) else []
        try:
            count = int(f.get("count", len(txs)))
        except (TypeError, ValueError, OverflowError):
            count = len(txs)
        ref = FindingRef(rule=_text(f.get("rule")), severity=_text(f.get("severity")),
                         title=_text(f.get("title")), recipient=_text(f.get("recipient")),
                         categories=tuple(sorted(_strings(f.get("categories")))),
                         count=count)
        if ref.key in out:  # one per key by RULES.md; add up if a producer split one
            prev = out[ref.key]
            ref = FindingRef(prev.rule, prev.severity, prev.title, prev.recipient,
                             prev.categories, prev.count + ref.count)
        out[ref.key] = ref
    return out


def _ordered(refs) -> tuple[FindingRef, ...]:
    return tuple(sorted(refs, key=lambda f: (_rank(f.severity), f.key)))


def _describe(s: SessionRef) -> str:
    fw = f" firmware {s.firmware}" if s.firmware else ""
    window = f" ({s.started} - {s.ended})" if s.started or s.ended else ""
    return f"{s.device or '?'}{fw}, session {s.id or '?'}{window}"


def _finding_line(sign: str, f: FindingRef) -> str:
    cats = ", ".join(f.categories) or "-"
    sev = f.severity.upper() or "?"
    return f"{sign} [{sev}] {f.rule} -> {f.recipient or '-'} ({cats}) x{f.count}"


__all__ = ["DocumentError", "FindingRef", "SessionDiff", "SessionRef", "check", "diff",
           "format_text"]
