"""The HTML report: one self-contained page a lab hands to a manufacturer or a regulator.

``build_view`` turns the findings document (``document.Document``) into plain dicts and
lists; the template only prints them (STYLE.md point 8), and runs under
``StrictUndefined``. Every value from the document reaches the page through Jinja's
autoescaping: captured URLs, hosts and field values are attacker-controlled. The page reads
no clock, so the same document always renders the same bytes (invariant 5).

A session may hold tens of thousands of transmissions: every list the page prints is capped
(the rest counted, never silently dropped) and the timeline (``timeline``) draws binned
marks, so the page's size follows what it shows, not the length of the session.

A part of the document the page cannot show (a finding, a transmission, an event, a
coverage row, the timeline drawing) is left out alone and listed under coverage errors
instead, with stage ``report report.html``; the rest of the page is written. ``render``
returns those errors so the session records them in ``findings.json`` too.
"""

from __future__ import annotations

import re
from bisect import insort
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import jinja2

from auditor import RULESET_VERSION, __version__
from auditor.categories import SEVERITIES
from auditor.report import timeline
from auditor.report.display import ARROW, DASH, fmt_ts, or_dash, severity_key, severity_order
from auditor.report.document import (
    FAILING_SEVERITIES,
    SCHEMA,
    Coverage,
    CoverageError,
    DetectionEntry,
    Document,
    EventEntry,
    FindingEntry,
    SessionInfo,
    TransmissionEntry,
    iso_text,
)
from auditor.report.document import STAGE as REPORT_STAGE
from auditor.report.i18n import (
    CLAUSE_TITLES,
    LABELS,
    NOT_COVERED_TEXT,
    NOT_EXERCISED_TEXT,
    RULE_TEXT,
    TERMS,
    clause_abbreviation,
    in_language,
    rule_text,
)
from auditor.standards.model import NUMBER_NOT_CONFIRMED
from auditor.standards.steps import BY_ID
from auditor.store import printable, private_dir

T = TypeVar("T")
STAGE = f"{REPORT_STAGE} report.html"
EVIDENCE_CAP = 20  # transmissions listed per finding; the rest are counted, not shown
LIST_CAP = 100     # rows of the coverage lists and the per-recipient flow table
FIELDS_CAP = 10    # opaque fields listed per transmission under coverage
ENCODINGS_CAP = 8  # encoding chains listed per recipient and category

Terms = Mapping[str, Mapping[str, str]]
Labels = Mapping[str, str]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("auditor.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render(doc: Document, out: Path, *, lang: str = "en") -> list[CoverageError]:
    """Write the report for ``doc`` to ``out``; return the parts left out of it, as
    coverage errors."""
    errors: list[CoverageError] = []
    page = render_string(doc, lang=lang, errors=errors)
    out = Path(out)
    if not out.parent.exists():  # made private; a folder that exists is left as it is
        private_dir(out.parent)
    out.write_text(printable(page), encoding="utf-8")
    return errors


def render_string(doc: Document, *, lang: str = "en",
                  errors: list[CoverageError] | None = None) -> str:
    view = build_view(doc, lang=lang, errors=errors)
    return _ENV.get_template("report.html.j2").render(**view)


def environment() -> jinja2.Environment:
    """The one Jinja environment (autoescape, StrictUndefined), shared with the diff page."""
    return _ENV


def check_lang(lang: str) -> None:
    if lang not in LABELS:
        raise ValueError(f"unknown report language {lang!r}; choose one of {sorted(LABELS)}")


def build_view(doc: Document, *, lang: str = "en",
               errors: list[CoverageError] | None = None) -> dict[str, Any]:
    """The template's whole input: plain strings, numbers, lists and dicts. What could not
    be shown is appended to ``errors`` and to the page's own coverage errors."""
    check_lang(lang)
    if doc.schema != SCHEMA:
        raise ValueError(f"findings document has schema {doc.schema!r}; "
                         f"this renderer reads {SCHEMA}")
    failed: list[CoverageError] = []
    t, terms = LABELS[lang], TERMS[lang]
    session = doc.session
    findings = sorted(doc.findings, key=_finding_order)
    titles = RuleTitles(lang)
    events = _each(doc.events, lambda ev: _event(ev, terms), failed,
                   lambda ev: f"consent event at {iso_text(ev.ts) or '?'}")
    far = datetime.max.replace(tzinfo=UTC)
    events.sort(key=lambda e: (e["ts"] or far, e["time"]))
    walk = _Walk(doc, findings, events, t)
    shown = _each(enumerate(findings, 1), lambda pair: _finding(
        pair[0], pair[1], walk.evidence[pair[0] - 1], t, terms, titles), failed,
        lambda pair: f"finding {pair[1].id or pair[0]}")
    failed += walk.flow_failed
    view = {
        "t": t,
        "summary": _summary(doc, session, t) | _sign_off(session, terms),
        "verdict": _verdict(doc, findings, t, terms, titles),
        "conformance": _conformance(doc, findings, t),
        "findings": shown,
        "flows": _flow_table(walk.rows, walk.pairs, t, terms),
        "timeline": _timeline(walk, events, terms, failed),
        "rules": _rules(findings, terms, titles),
        "legend": _legend(findings, lang),
        "footer": t["footer"].format(version=session.tool_version or __version__,
                                     ruleset=session.ruleset or RULESET_VERSION),
    }
    # coverage last: it lists what the sections above could not show
    view["coverage"] = _coverage(doc.coverage, walk, t, failed)
    if errors is not None:
        errors.extend(failed)
    return view


class _Walk:
    """What the page takes from one walk over the document's transmissions: the flow
    table's counts, the timeline's bins, each finding's first ``EVIDENCE_CAP`` messages by
    time and the requests of the opaque rows shown. It grows with recipients, categories
    and findings, not with messages: a soak's page is built without the soak held."""

    def __init__(self, doc: Document, findings: list[FindingEntry],
                 events: list[dict[str, Any]], t: Labels) -> None:
        self.t = t
        self.rows: dict[str, dict[str, Any]] = {}
        self.pairs: dict[tuple[str, str], dict[str, Any]] = {}
        self.flow_failed: list[CoverageError] = []
        self.citations = timeline.Citations(findings)
        self.evidence: list[list[tuple]] = [[] for _ in findings]
        self.found = [0] * len(findings)
        self.opaque: list[Any] = []
        self.opaque_n = 0
        for o in doc.coverage.opaque:
            if len(self.opaque) < LIST_CAP:
                self.opaque.append(o)
            self.opaque_n += 1
        wanted = {o.transmission for o in self.opaque if _hashable(o.transmission)}
        self.requests: dict[Any, TransmissionEntry] = {}
        first, last = doc.window()
        self.drawing: timeline.Drawing | None = timeline.Drawing(
            doc.session.started, doc.session.ended, first, last, events, self.citations)
        self.drawing_failed: Exception | None = None
        for tx, dets in doc.joined():
            if tx is None:
                self._cite(dets[0].transmission if dets else None, None, dets)
                continue
            self._cite(tx.id, tx, dets)
            if tx.id in wanted:
                self.requests[tx.id] = tx
            if tx.direction == "up":
                try:
                    _flow(tx, dets, t, self.rows, self.pairs)
                except Exception as e:  # noqa: BLE001 - one transmission, never the table
                    _failed(self.flow_failed, f"transmission {tx.id} in the flow table", e, tx)
            if self.drawing is not None:
                try:
                    self.drawing.add(tx, dets)
                except Exception as e:  # noqa: BLE001 - the drawing, never the page
                    self.drawing, self.drawing_failed = None, e
        self._uncited(doc, findings)

    def _cite(self, tid: Any, tx: TransmissionEntry | None,
              dets: list[DetectionEntry]) -> None:
        """This message among the first ``EVIDENCE_CAP`` (by time, then id) of each finding
        citing it."""
        if not _hashable(tid):
            return
        key = (iso_text(tx.ts) if tx is not None else "", str(tid))
        for i, _f, n in self.citations.citing(tid):
            self.found[i] += n
            kept = self.evidence[i]
            for _ in range(n):
                if len(kept) < EVIDENCE_CAP or key < kept[-1][0]:
                    insort(kept, (key, len(kept), tid, tx, dets), key=lambda row: row[0])
                    del kept[EVIDENCE_CAP:]

    def _uncited(self, doc: Document, findings: list[FindingEntry]) -> None:
        """A finding citing a message the document does not hold (a file written by hand,
        a row left out) lists it first, without details, as the page always has."""
        short = [i for i, f in enumerate(findings) if self.found[i] < len(f.transmissions)]
        if not short:
            return
        held = {tx.id for tx, _ in doc.joined() if tx is not None and _hashable(tx.id)}
        held |= {dets[0].transmission for tx, dets in doc.joined() if tx is None and dets}
        for i in short:
            for tid in findings[i].transmissions:
                if not _hashable(tid) or tid not in held:
                    kept = self.evidence[i]
                    insort(kept, (("", str(tid)), -1, tid, None, []), key=lambda row: row[0])
                    del kept[EVIDENCE_CAP:]


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


# -- helpers -------------------------------------------------------------------------------


class RuleTitles:
    """Rule titles and explanations in the page's language. English keeps the finding's own
    title (the catalogue's wording); other languages use RULE_TEXT, falling back to it."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def title(self, rule: str, own: str = "") -> str:
        if self.lang == "en" and own:
            return own
        return rule_text(rule, self.lang, own)[0] or or_dash(rule)

    def explanation(self, rule: str) -> str:
        return rule_text(rule, self.lang, "")[1]


def _each(items: Iterable[T], build: Callable[[T], Any], failed: list[CoverageError],
          name: Callable[[T], str]) -> list[Any]:
    """``build`` of each item; an item it fails on is left out and recorded in ``failed``."""
    out = []
    for item in items:
        try:
            out.append(build(item))
        except Exception as e:  # noqa: BLE001 - one row of the page, never the page
            _failed(failed, name(item), e, item)
    return out


def _failed(failed: list[CoverageError], what: str, e: Exception, item: object = None
            ) -> None:
    """A coverage error row for a part of the page left out. It names the part and the
    kind of error only: an exception's text may quote a captured value, and these rows
    are added after the document's values were masked."""
    tx_id = item.id if isinstance(item, TransmissionEntry) else None
    failed.append(CoverageError(tx_id if isinstance(tx_id, int) else None, STAGE,
                                f"{what} left out ({type(e).__name__})"))


def _finding_order(f: FindingEntry) -> tuple:
    """Worst severity first, then the most frequent, then stable by rule and recipient."""
    return (severity_order(f.severity), -f.count, f.rule, f.recipient)


def _term(terms: Terms, kind: str, value: str) -> str:
    return terms[kind].get(value, or_dash(value))


def _anchor(prefix: str, value: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "_", value)


def _more(t: Labels, n: int, label: str = "more_rows") -> str:
    return t[label].format(n=n) if n > 0 else ""


def _encoding(chain: Iterable[str], t: Labels) -> str:
    return ARROW.join(chain) or t["as_sent"]


def _references(refs: Iterable[str]) -> list[dict[str, Any]]:
    """RULES.md marks unconfirmed clause numbers with ``*``: shown as unverified, not hidden."""
    out = []
    for ref in refs:
        text = ref.strip()
        if text:
            out.append({"text": text.rstrip("*").rstrip(), "unverified": text.endswith("*")})
    return out


# -- sections ------------------------------------------------------------------------------


def _summary(doc: Document, session: SessionInfo, t: Labels) -> dict[str, Any]:
    device = session.device
    return {
        "device": {"name": or_dash(device.name), "firmware": or_dash(device.firmware),
                   "kind": or_dash(device.kind)},
        "session_id": or_dash(session.id),
        "started": fmt_ts(session.started),
        "ended": fmt_ts(session.ended),
        "tool_version": or_dash(session.tool_version),
        "ruleset": or_dash(session.ruleset),
        "schema": or_dash(doc.schema),
        "inputs": [in_language(i, t["html_lang"][:2]) for i in session.inputs if i],
        "resumed": [fmt_ts(r) for r in session.resumed],
        "clock": session.clock_note or t["clock_default"],
        "country_source": in_language(session.country_source, t["html_lang"][:2])
        or t["country_unknown_source"],
        "revealed": session.masked is False,
        "masking": {True: t["masked_note"], False: t["revealed_note"]}.get(
            session.masked, t["masking_note"]),
        "hashes": [
            {"label": t["hash_flows"], "value": or_dash(session.flows_sha256)},
            {"label": t["hash_profile"], "value": or_dash(session.profile_sha256)},
            {"label": t["hash_consent"], "value": or_dash(session.consent_sha256)},
        ],
    }


def _sign_off(session: SessionInfo, terms: Terms) -> dict[str, Any]:
    """What the lab's sign-off checklist asks of a report (lab-setup.md): how the traffic
    was taken, by whom, on what clock, and which versions judged it."""
    return {
        "capture_modes": [m for m in session.capture_modes if m],
        "operator": or_dash(session.operator),
        "clock_sync": _term(terms, "clock", session.clock_sync or "unknown"),
        "versions": [{"name": k, "version": or_dash(v)} for k, v in session.versions.items()],
    }


def _verdict(doc: Document, findings: list[FindingEntry], t: Labels, terms: Terms,
             titles: RuleTitles) -> dict[str, Any]:
    """The document's verdict (``Document.judged``) first, then every rule: those that
    fired with their counts, then those that passed, then those never exercised with why.
    A document without rule statuses (written before them) lists only what fired and never
    claims a pass."""
    verdict = doc.judged()
    by_sev = Counter(severity_key(f.severity) for f in findings)
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:  # already worst-first, so a rule's first finding sets its severity
        rule = or_dash(f.rule)
        row = rules.setdefault(rule, {
            "rule": rule, "anchor": _anchor("rule-", rule), "title": titles.title(f.rule, f.title),
            "severity": severity_key(f.severity),
            "severity_label": _term(terms, "severity", f.severity),
            "findings": 0, "messages": 0, "why": "",
        })
        row["findings"] += 1
        row["messages"] += f.count
    for row in rules.values():
        row["result_key"] = "note" if row["severity"] == "info" else "fail"
        row["result"] = terms["result"][row["result_key"]]
    ordered = sorted(rules.values(), key=lambda r: (severity_order(r["severity"]),
                                                    -r["findings"], -r["messages"], r["rule"]))
    why = NOT_EXERCISED_TEXT.get(t["html_lang"][:2], {})
    quiet = [{"rule": r.id, "anchor": "", "title": titles.title(r.id),
              "severity": "none", "severity_label": DASH, "findings": 0, "messages": 0,
              "result_key": r.status.replace(" ", "_"),
              "result": _term(terms, "result", r.status),
              "why": "" if r.status == "pass" else why.get(r.reason, r.reason)}
             for r in verdict.rules if r.id and r.id not in rules and r.status != "fail"]
    quiet.sort(key=lambda r: (r["result_key"] != "pass", r["rule"]))
    status = verdict.result if verdict.result in terms["result"] else "inconclusive"
    return {
        "status": status,
        "status_label": terms["result"][status],
        "sentence": _verdict_sentence(doc, verdict.basis, verdict.reason, findings, t),
        "counts": [{"severity": s, "label": terms["severity"][s], "n": by_sev.get(s, 0)}
                   for s in SEVERITIES],
        "rules": ordered + quiet,
        "has_passes": any(r["result_key"] == "pass" for r in quiet),
        "not_exercised": [r["rule"] for r in quiet if r["result_key"] != "pass"],
        "not_covered": [_not_covered(line, t["html_lang"][:2], terms)
                        for line in verdict.not_covered],
    }


# A conformance status -> its CSS class and label key (``conf_<key>``).
_CONF_KEYS = {"fail": "fail", "pass": "pass", "not exercised": "not_exercised",
              "not testable by traffic": "not_testable"}


def _conformance(doc: Document, findings: list[FindingEntry], t: Labels) -> dict[str, Any]:
    """Each chosen standard's items (``standards.conformance``) in the page's language, a
    failed item linking to its findings' cards, a missing step named with why; and the
    session steps, performed or missed. A document from before the tables has neither."""
    lang = t["html_lang"][:2]
    anchors = {f.id: f"finding-{i}" for i, f in enumerate(findings, 1) if f.id}
    tables = []
    for c in doc.conformance or ():
        items = []
        for i in c.items:
            key = _CONF_KEYS.get(i.status, "not_exercised")
            items.append({
                "clause": i.clause, "title": i.title.get(lang), "status_key": key,
                "status": t[f"conf_{key}"], "unverified": not i.clause_verified,
                "findings": [{"id": fid, "anchor": anchors.get(fid, "")}
                             for fid in i.findings[:EVIDENCE_CAP]],
                "more": _more(t, len(i.findings) - EVIDENCE_CAP),
                "rules": list(i.rules),
                "missing": [BY_ID[s].title.get(lang) if s in BY_ID else s
                            for s in i.missing_steps],
                "reason": i.reason.get(lang) if i.reason is not None else "",
            })
        tables.append({
            "id": c.id, "anchor": _anchor("standard-", c.id), "number": c.number,
            "title": c.title.get(lang), "not_confirmed": c.status == NUMBER_NOT_CONFIRMED,
            "counts": t["conf_counts"].format(
                fail=c.count("fail"), passed=c.count("pass"),
                not_exercised=c.count("not exercised"),
                not_testable=c.count("not testable by traffic")),
            "rows": items, "unverified": any(i["unverified"] for i in items)})
    steps = [{
        "title": BY_ID[s.id].title.get(lang) if s.id in BY_ID else s.id, "id": s.id,
        "performed": s.performed,
        "result": t["step_performed"] if s.performed else t["step_missed"],
        "at": fmt_ts(s.at) if s.at is not None else DASH,
        "lasted": (t["step_minutes"].format(m=f"{s.duration_s / 60:.0f}")
                   if s.duration_s is not None else DASH),
        "why": s.missing.get(lang) if s.missing is not None and not s.performed else "",
    } for s in doc.steps or ()]
    return {"present": doc.conformance is not None or doc.steps is not None,
            "tables": tables, "steps": steps}


def _not_covered(line: str, lang: str, terms: Terms) -> str:
    """A plan step the session did not cover, in the page's language: its action word from
    TERMS, a step's name as written."""
    for pattern, text in NOT_COVERED_TEXT.get(lang, ()):
        if (match := re.fullmatch(pattern, line)) is not None:
            action, _, name = match.group(1).partition(" ")
            step = " ".join(filter(None, (_term(terms, "action", action), name)))
            return text.format(step=step)
    return line


def _verdict_sentence(doc: Document, basis: str, reason: str,
                      findings: list[FindingEntry], t: Labels) -> str:
    """The verdict's reason in the page's language, from its basis and the counts the
    document holds; a basis this page does not know is shown as the document wrote it."""
    cov = doc.coverage
    connections = cov.connections or 0
    inspected = min(cov.inspected or 0, connections)
    if basis == "findings":
        failing = [f for f in findings if f.severity in FAILING_SEVERITIES]
        return t["verdict_fail"].format(findings=len(failing),
                                        rules=len({f.rule for f in failing}))
    key = f"verdict_{basis}"
    if basis and key in t:
        return t[key].format(connections=connections, inspected=inspected,
                             uninspected=connections - inspected)
    return reason or t["verdict_clear"]


def _request_text(tx: TransmissionEntry) -> str:
    if tx.url:
        return f"{tx.method} {tx.url}".strip()
    port = "" if tx.port is None else str(tx.port)
    where = f"{tx.host}:{port}" if tx.host and port else tx.host or tx.ip
    return " ".join(p for p in (tx.transport.upper(), tx.method, where) if p) or DASH


def _finding(index: int, f: FindingEntry, evidence: list[tuple], t: Labels, terms: Terms,
             titles: RuleTitles) -> dict[str, Any]:
    """One finding's card; ``evidence``: its first messages by time, (key, order, id,
    transmission or None, its detections) as the walk kept them."""
    tx_ids = f.transmissions
    wanted = set(f.categories)
    shown = evidence[:EVIDENCE_CAP]
    rows = []
    for _key, _order, tid, tx, all_dets in shown:
        consent = tx.consent if tx is not None else {}
        dets = [d for d in all_dets if not wanted or d.category in wanted]
        rows.append({
            "id": or_dash(tid),
            "time": fmt_ts(tx.ts if tx is not None else None),
            "request": _request_text(tx) if tx is not None else DASH,
            "down": tx is not None and tx.direction == "down",
            "details": [{
                "field": or_dash(d.field),
                "category": or_dash(d.category),
                "encoding": _encoding(d.encoding, t),
                "value": or_dash(d.value),
                "consent": (_term(terms, "consent", consent[d.category])
                            if d.category in consent else DASH),
                "method": _term(terms, "method", d.method),
                "confidence": (f"{d.confidence:.2f}"
                               if isinstance(d.confidence, int | float) else ""),
            } for d in dets],
        })
    more = max(f.count, len(tx_ids)) - len(shown)
    return {
        "anchor": f"finding-{index}",
        "id": or_dash(f.id),
        "rule": or_dash(f.rule),
        "rule_anchor": _anchor("rule-", f.rule),
        "severity": severity_key(f.severity),
        "severity_label": _term(terms, "severity", f.severity),
        "title": titles.title(f.rule, f.title),
        "explanation": titles.explanation(f.rule),
        "categories": list(f.categories),
        "per_category": [{
            "category": c.category, "count": c.count,
            "extent": t["category_extent"].format(n=c.count, first=fmt_ts(c.first_seen),
                                                  last=fmt_ts(c.last_seen)),
        } for c in f.per_category],
        "recipient": or_dash(f.recipient),
        "addresses": [r for r in f.recipients if r != f.recipient],
        "count": f.count,
        "first_seen": fmt_ts(f.first_seen),
        "last_seen": fmt_ts(f.last_seen),
        "consent": [_term(terms, "consent", c) for c in f.consent],
        "references": _references(f.references),
        "evidence": rows,
        "more": t["and_more"].format(n=more) if more > 0 else "",
    }


def _flow(tx: TransmissionEntry, dets: Sequence[DetectionEntry], t: Labels,
          rows: dict[str, dict[str, Any]], pairs: dict[tuple[str, str], dict[str, Any]]
          ) -> None:
    """One device-sent transmission counted into the recipient rows and category pairs:
    recipient × category, how many device-sent messages carried the category, and for each
    pair when it was first seen, over which transports, to which countries, in which
    encodings. The recipient's party and SDK identity sit beside it."""
    rcp = tx.recipient
    domain = rcp.domain or tx.host or tx.ip or DASH
    row = rows.get(domain)  # made for a recipient's first message only
    if row is None:
        row = rows[domain] = {
            "domain": domain, "organization": rcp.organization or "",
            "party_key": rcp.party or "unknown",
            "sdk": rcp.sdk or "", "sdk_type": rcp.sdk_type or "",
            "countries": set(), "messages": 0, "cells": Counter(),
        }
    for key in ("organization", "sdk", "sdk_type"):
        row[key] = row[key] or getattr(rcp, key) or ""
    country = rcp.country or ""
    if country:
        row["countries"].add(country)
    row["messages"] += 1
    cats = {d.category for d in dets}
    cats.discard("")
    row["cells"].update(cats)
    for cat in cats:
        pair = pairs.get((domain, cat))
        if pair is None:
            pair = pairs[domain, cat] = {"count": 0, "first": None, "transports": set(),
                                         "countries": set(), "encodings": set()}
        pair["count"] += 1
        if tx.ts and (pair["first"] is None or tx.ts < pair["first"]):
            pair["first"] = tx.ts
        if tx.transport:
            pair["transports"].add(tx.transport)
        if country:
            pair["countries"].add(country)
    for d in dets:
        if d.category:
            pairs[(domain, d.category)]["encodings"].add(_encoding(d.encoding, t))


def _flow_table(rows: dict[str, dict[str, Any]], pairs: dict[tuple[str, str], dict[str, Any]],
                t: Labels, terms: Terms) -> dict[str, Any]:
    columns = sorted({cat for _, cat in pairs})
    party_order = {"third": 0, "unknown": 1, "first": 2}
    ordered = sorted(rows.values(), key=lambda r: (party_order.get(r["party_key"], 1),
                                                   -sum(r["cells"].values()), r["domain"]))
    out_rows = []
    for r in ordered:
        sdk = " · ".join(p for p in (r["sdk"], r["sdk_type"]) if p)
        out_rows.append({
            "domain": r["domain"], "organization": or_dash(r["organization"]),
            "party_class": r["party_key"] if r["party_key"] in party_order else "unknown",
            "party": _term(terms, "party", r["party_key"]), "sdk": sdk or DASH,
            "country": ", ".join(sorted(r["countries"])) or DASH, "messages": r["messages"],
            "cells": [r["cells"].get(c, 0) for c in columns],
        })
    rank = {r["domain"]: i for i, r in enumerate(ordered)}
    details = []
    for (domain, cat), p in sorted(pairs.items(), key=lambda kv: (rank[kv[0][0]], kv[0][1])):
        encodings = sorted(p["encodings"])
        details.append({
            "domain": domain, "category": cat, "count": p["count"],
            "first_seen": fmt_ts(p["first"]),
            "transports": ", ".join(sorted(p["transports"])) or DASH,
            "country": ", ".join(sorted(p["countries"])) or DASH,
            "encodings": encodings[:ENCODINGS_CAP],
            "encodings_more": max(len(encodings) - ENCODINGS_CAP, 0),
        })
    return {"columns": columns, "rows": out_rows[:LIST_CAP],
            "rows_more": _more(t, len(out_rows) - LIST_CAP),
            "details": details[:LIST_CAP], "details_more": _more(t, len(details) - LIST_CAP)}


def _timeline(walk: _Walk, events: list[dict[str, Any]], terms: Terms,
              failed: list[CoverageError]) -> dict[str, Any]:
    svg = None
    if walk.drawing_failed is not None:
        _failed(failed, "the timeline drawing", walk.drawing_failed)
    elif walk.drawing is not None:
        try:
            svg = walk.drawing.view(walk.t)
        except Exception as e:  # noqa: BLE001 - the drawing, never the page
            _failed(failed, "the timeline drawing", e)
    if svg is not None:
        svg["states"] = [{"key": css, "label": _term(terms, "consent", state)}
                         for state, css in timeline.STATE_CLASS.items()]
        for lane in svg["lanes"]:
            for band in lane["bands"]:
                band["label"] = _term(terms, "consent", band["label"])
    return {"events": [{k: v for k, v in e.items() if k != "ts"} for e in events], "svg": svg}


def _event(ev: EventEntry, terms: Terms) -> dict[str, Any]:
    """One consent event of the timeline table (``ts`` kept for ordering and drawing)."""
    return {
        "ts": ev.ts,
        "time": fmt_ts(ev.ts),
        "action_key": ev.action if ev.action in TERMS["en"]["action"] else "other",
        "action": _term(terms, "action", ev.action),
        "name": ev.name,
        "categories": list(ev.categories),
        "recipients": list(ev.recipients),
        "separate": list(ev.separate),
        "source": _term(terms, "source", ev.source) if ev.source else DASH,
    }


def _coverage(cov: Coverage, walk: _Walk, t: Labels,
              failed: list[CoverageError]) -> dict[str, Any]:
    """Coverage as the document has it, plus what this page itself had to leave out."""
    errors = [{"transmission": or_dash(err.transmission), "stage": or_dash(err.stage),
               "message": or_dash(err.message)} for err in (*cov.errors, *failed)]
    uninspected = [{"host": or_dash(u.host),
                    "reason": or_dash(in_language(u.reason, t["html_lang"][:2]))}
                   for u in cov.uninspected]
    opaque = []
    for o in walk.opaque:
        tx = walk.requests.get(o.transmission) if _hashable(o.transmission) else None
        fields = [f for f in o.fields if f]
        opaque.append({"transmission": or_dash(o.transmission),
                       "request": _request_text(tx) if tx is not None else DASH,
                       "fields": fields[:FIELDS_CAP],
                       "fields_more": _more(t, len(fields) - FIELDS_CAP)})
    opaque_n = cov.opaque_payloads
    return {
        "connections": or_dash(cov.connections),
        "inspected": or_dash(cov.inspected),
        "uninspected_n": len(uninspected),
        "uninspected": uninspected[:LIST_CAP],
        "uninspected_more": _more(t, len(uninspected) - LIST_CAP, "more_listed"),
        "opaque_n": or_dash(opaque_n if opaque_n is not None else (walk.opaque_n or None)),
        "opaque": opaque[:LIST_CAP],
        "opaque_more": _more(t, walk.opaque_n - LIST_CAP, "more_listed"),
        "analysis_errors": or_dash(_error_count(cov, len(errors), len(failed))),
        "errors": errors[:LIST_CAP],
        "errors_more": _more(t, len(errors) - LIST_CAP, "more_listed"),
    }


def _error_count(cov: Coverage, listed: int, left_out: int) -> int | None:
    """The document's own count (it may count more than it lists), plus the page's."""
    if cov.analysis_errors is None:
        return listed or None
    return cov.analysis_errors + left_out


def _rules(findings: list[FindingEntry], terms: Terms,
           titles: RuleTitles) -> list[dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:
        rule = or_dash(f.rule)
        row = rules.setdefault(rule, {
            "rule": rule, "anchor": _anchor("rule-", rule), "title": titles.title(f.rule, f.title),
            "explanation": titles.explanation(rule),
            "severity": severity_key(f.severity),
            "severity_label": _term(terms, "severity", f.severity),
            "references": [],
        })
        for ref in _references(f.references):
            if ref not in row["references"]:
                row["references"].append(ref)
    return sorted(rules.values(), key=lambda r: (severity_order(r["severity"]), r["rule"]))


def _legend(findings: Iterable[FindingEntry], lang: str) -> list[dict[str, str]]:
    """Each abbreviation the page's references use, with its full title in the page's
    language (the legend a reader signs against); one the table does not know is left out
    rather than guessed."""
    used = {clause_abbreviation(ref) for f in findings for ref in f.references}
    return [{"abbr": abbr, "title": titles[lang]}
            for abbr, titles in CLAUSE_TITLES.items() if abbr in used]


__all__ = ["EVIDENCE_CAP", "LABELS", "LIST_CAP", "RULE_TEXT", "TERMS", "RuleTitles",
           "build_view", "check_lang", "environment", "fmt_ts", "render", "render_string"]
