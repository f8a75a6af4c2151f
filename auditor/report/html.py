"""The HTML report: one self-contained page a lab hands to a manufacturer or a regulator.

``build_view`` turns the findings document into plain dicts and lists; the template only
prints them (STYLE.md point 8), so a missing optional key is handled here, once, and the
template runs under ``StrictUndefined``. Every value from the document reaches the page
through Jinja's autoescaping: captured URLs, hosts and field values are attacker-controlled.
The page reads no clock, so the same document always renders the same bytes (invariant 5).

A session may hold tens of thousands of transmissions: every list the page prints is capped
(the rest counted, never silently dropped) and the timeline draws binned marks, so the page
stays a few megabytes at most and renders in seconds.

A part of the document the page cannot show (a finding, a transmission, an event, a
coverage row, the timeline drawing) is left out alone and listed under coverage errors
instead, with stage ``report report.html``; the rest of the page is written. ``render``
returns those errors so the session records them in ``findings.json`` too.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import jinja2

from auditor import RULESET_VERSION, __version__
from auditor.report.i18n import LABELS, RULE_TEXT, TERMS, rule_text
from auditor.store import printable, private_dir

T = TypeVar("T")
STAGE = "report report.html"

SCHEMA = "kidaudit.findings/1"
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
EVIDENCE_CAP = 20  # transmissions listed per finding; the rest are counted, not shown
LIST_CAP = 100     # rows of the coverage lists and the per-recipient flow table
DASH = "—"
ARROW = " → "

# Timeline drawing (SVG user units): event labels on top, one lane per category, then the axis.
_SVG_W, _SVG_LEFT, _SVG_RIGHT = 1000, 190, 985
_SVG_TOP, _SVG_LABEL_ROWS, _SVG_LABEL_H = 16, 4, 14
_LANE_H, _LANE_CAP, _BINS = 22, 14, 400
# Consent states (transmissions[].consent) → CSS class of the lane's band.
_STATE_CLASS = {"none": "none", "granted": "granted", "granted (separate)": "separate",
                "refused": "refused", "withdrawn": "withdrawn"}

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("auditor.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render(doc: dict, out: Path, *, lang: str = "en") -> list[dict[str, object]]:
    """Write the report for ``doc`` (a ``kidaudit.findings/1`` document) to ``out``; return
    the parts left out of it, as coverage errors."""
    errors: list[dict[str, object]] = []
    page = render_string(doc, lang=lang, errors=errors)
    out = Path(out)
    if not out.parent.exists():  # made private; a folder that exists is left as it is
        private_dir(out.parent)
    out.write_text(printable(page), encoding="utf-8")
    return errors


def render_string(doc: dict, *, lang: str = "en",
                  errors: list[dict[str, object]] | None = None) -> str:
    view = build_view(doc, lang=lang, errors=errors)
    return _ENV.get_template("report.html.j2").render(**view)


def environment() -> jinja2.Environment:
    """The one Jinja environment (autoescape, StrictUndefined), shared with the diff page."""
    return _ENV


def check_lang(lang: str) -> None:
    if lang not in LABELS:
        raise ValueError(f"unknown report language {lang!r}; choose one of {sorted(LABELS)}")


def build_view(doc: dict, *, lang: str = "en",
               errors: list[dict[str, object]] | None = None) -> dict[str, Any]:
    """The template's whole input: plain strings, numbers, lists and dicts. What could not
    be shown is appended to ``errors`` and to the page's own coverage errors."""
    check_lang(lang)
    failed: list[dict[str, object]] = []
    schema = doc.get("schema")
    if schema not in (None, SCHEMA):
        raise ValueError(f"findings document has schema {schema!r}; this renderer reads {SCHEMA}")
    t, terms = LABELS[lang], TERMS[lang]
    session = _dict(doc.get("session"))
    transmissions = {_key(tx.get("id")): tx for tx in _records(doc.get("transmissions"))}
    detections: dict[Any, list[dict]] = defaultdict(list)
    for det in _records(doc.get("detections")):
        detections[_key(det.get("transmission"))].append(det)
    findings = sorted(_records(doc.get("findings")), key=_finding_order)
    titles = RuleTitles(lang)
    shown = _each(enumerate(findings, 1), lambda pair: _finding(
        pair[0], pair[1], transmissions, detections, t, terms, titles), failed,
        lambda pair: f"finding {_text(pair[1].get('id')) or pair[0]}")
    view = {
        "t": t,
        "summary": _summary(doc, session, t),
        "verdict": _verdict(findings, session, t, terms, titles),
        "findings": shown,
        "flows": _flows(transmissions.values(), detections, t, terms, failed),
        "timeline": _timeline(doc, session, transmissions.values(), detections, findings,
                              t, terms, failed),
        "rules": _rules(findings, terms, titles),
        "footer": t["footer"].format(version=_text(session.get("tool_version")) or __version__,
                                     ruleset=_text(session.get("ruleset")) or RULESET_VERSION),
    }
    # coverage last: it lists what the sections above could not show
    view["coverage"] = _coverage(_dict(doc.get("coverage")), transmissions, t, failed)
    if errors is not None:
        errors.extend(failed)
    return view


# -- helpers -------------------------------------------------------------------------------


class RuleTitles:
    """Rule titles and explanations in the page's language. English keeps the finding's own
    title (the catalogue's wording); other languages use RULE_TEXT, falling back to it."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def title(self, f: dict) -> str:
        own, rule = _text(f.get("title")), _text(f.get("rule"))
        if self.lang == "en" and own:
            return own
        return rule_text(rule, self.lang, own)[0] or _or_dash(rule)

    def explanation(self, rule: str) -> str:
        return rule_text(rule, self.lang, "")[1]


def _each(items: Iterable[T], build: Callable[[T], Any], failed: list[dict[str, object]],
          name: Callable[[T], str]) -> list[Any]:
    """``build`` of each item; an item it fails on is left out and recorded in ``failed``."""
    out = []
    for item in items:
        try:
            out.append(build(item))
        except Exception as e:  # noqa: BLE001 - one row of the page, never the page
            _failed(failed, name(item), e, item)
    return out


def _failed(failed: list[dict[str, object]], what: str, e: Exception, item: Any = None) -> None:
    """A coverage error row for a part of the page left out. It names the part and the
    kind of error only: an exception's text may quote a captured value, and these rows
    are added after the document's values were masked."""
    tx_id = item.get("id") if isinstance(item, dict) else None
    failed.append({"transmission": tx_id if isinstance(tx_id, int) else None, "stage": STAGE,
                   "message": f"{what} left out ({type(e).__name__})"})


def _key(value: Any) -> Any:
    """A document value usable as a dict key (an id written as a list is not one)."""
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _records(value: Any) -> list[dict]:
    return [r for r in _list(value) if isinstance(r, dict)]


def _text(value: Any) -> str:
    """A document value as display text; None and missing become ''."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _or_dash(value: Any) -> str:
    return _text(value) or DASH


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


def _list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 at +01:00 is before year 1 in UTC
        return None


def fmt_ts(value: Any) -> str:
    """ISO 8601 → ``2026-11-28 10:02:11`` (UTC, milliseconds only when present)."""
    ts = _parse_ts(value)
    if ts is None:
        return _or_dash(value)
    text = ts.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{ts.microsecond // 1000:03d}" if ts.microsecond else text


def _severity(value: Any) -> str:
    """A CSS-safe severity key: one of SEVERITIES or 'unknown'."""
    return value if value in SEVERITIES else "unknown"


def _sev_rank(value: Any) -> int:
    return SEVERITIES.index(value) if value in SEVERITIES else len(SEVERITIES)


def _finding_order(f: dict) -> tuple:
    """Worst severity first, then the most frequent, then stable by rule and recipient."""
    count = _int(f.get("count"), len(_list(f.get("transmissions"))))
    return (_sev_rank(f.get("severity")), -count, _text(f.get("rule")), _text(f.get("recipient")))


def _term(terms: dict[str, dict[str, str]], kind: str, value: Any) -> str:
    return terms[kind].get(_text(value), _or_dash(value))


def _anchor(prefix: str, value: Any) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "_", _text(value))


def _more(t: dict[str, str], n: int) -> str:
    return t["more_rows"].format(n=n) if n > 0 else ""


def _encoding(chain: Any, t: dict[str, str]) -> str:
    return ARROW.join(_text(e) for e in _list(chain)) or t["as_sent"]


def _references(refs: Any) -> list[dict[str, Any]]:
    """RULES.md marks unconfirmed clause numbers with ``*``: shown as unverified, not hidden."""
    out = []
    for ref in _list(refs):
        text = _text(ref).strip()
        if text:
            out.append({"text": text.rstrip("*").rstrip(), "unverified": text.endswith("*")})
    return out


def _device(session: dict) -> dict[str, str]:
    device = session.get("device")
    if isinstance(device, dict):
        return {"name": _or_dash(device.get("name")), "firmware": _or_dash(device.get("firmware")),
                "kind": _or_dash(device.get("kind"))}
    return {"name": _or_dash(device), "firmware": DASH, "kind": DASH}


def _tx_categories(tx: dict, dets: list[dict]) -> set[str]:
    cats = {_text(d.get("category")) for d in dets}
    cats |= {_text(c) for c in _dict(tx.get("consent"))}
    cats.discard("")
    return cats


# -- sections ------------------------------------------------------------------------------


def _summary(doc: dict, session: dict, t: dict[str, str]) -> dict[str, Any]:
    return {
        "device": _device(session),
        "session_id": _or_dash(session.get("id")),
        "started": fmt_ts(session.get("started")),
        "ended": fmt_ts(session.get("ended")),
        "tool_version": _or_dash(session.get("tool_version")),
        "ruleset": _or_dash(session.get("ruleset")),
        "schema": _or_dash(doc.get("schema")),
        "inputs": [_text(i) for i in _list(session.get("inputs")) if _text(i)],
        "resumed": [fmt_ts(r) for r in _list(session.get("resumed")) if _text(r)],
        "clock": _text(session.get("clock_note")) or t["clock_default"],
        "country_source": _text(session.get("country_source")) or t["country_unknown_source"],
        "revealed": session.get("masked") is False,
        "masking": {True: t["masked_note"], False: t["revealed_note"]}.get(
            session.get("masked"), t["masking_note"]),
        "hashes": [
            {"label": t["hash_flows"], "value": _or_dash(session.get("flows_sha256"))},
            {"label": t["hash_profile"], "value": _or_dash(session.get("profile_sha256"))},
            {"label": t["hash_consent"], "value": _or_dash(session.get("consent_sha256"))},
        ],
    }


def _verdict(findings: list[dict], session: dict, t: dict[str, str], terms: dict,
             titles: RuleTitles) -> dict[str, Any]:
    by_sev = Counter(_severity(f.get("severity")) for f in findings)
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:  # already worst-first, so a rule's first finding sets its severity
        rule = _or_dash(f.get("rule"))
        row = rules.setdefault(rule, {
            "rule": rule, "anchor": _anchor("rule-", rule), "title": titles.title(f),
            "severity": _severity(f.get("severity")),
            "severity_label": _term(terms, "severity", f.get("severity")),
            "findings": 0, "messages": 0,
        })
        row["findings"] += 1
        row["messages"] += _int(f.get("count"), len(_list(f.get("transmissions"))))
    for row in rules.values():
        row["result_key"] = "note" if row["severity"] == "info" else "fail"
        row["result"] = terms["result"][row["result_key"]]
    failing = [r for r in rules.values() if r["result_key"] == "fail"]
    if failing:
        status, sentence = "fail", t["verdict_fail"].format(
            findings=sum(r["findings"] for r in failing), rules=len(failing))
    elif findings:
        status, sentence = "note", t["verdict_info"].format(findings=len(findings))
    else:
        status, sentence = "clear", t["verdict_clear"]
    ordered = sorted(rules.values(), key=lambda r: (_sev_rank(r["severity"]), -r["findings"],
                                                    -r["messages"], r["rule"]))
    # A producer that records which rules ran (session.rules_applied) gets explicit passes;
    # without it the page lists only what fired and never claims a pass.
    applied = [_text(r) for r in _list(session.get("rules_applied")) if _text(r)]
    passed = [{"rule": r, "anchor": "", "title": titles.title({"rule": r}),
               "severity": "none", "severity_label": DASH, "findings": 0, "messages": 0,
               "result_key": "pass", "result": terms["result"]["pass"]}
              for r in sorted(set(applied) - set(rules))]
    return {
        "status": status,
        "status_label": terms["result"][status],
        "sentence": sentence,
        "counts": [{"severity": s, "label": terms["severity"][s], "n": by_sev.get(s, 0)}
                   for s in SEVERITIES],
        "rules": ordered + passed,
        "has_passes": bool(passed),
    }


def _request_text(tx: dict) -> str:
    method, url = _text(tx.get("method")), _text(tx.get("url"))
    if url:
        return f"{method} {url}".strip()
    transport = _text(tx.get("transport")).upper()
    host, port = _text(tx.get("host")), _text(tx.get("port"))
    where = f"{host}:{port}" if host and port else host or _text(tx.get("ip"))
    return " ".join(p for p in (transport, method, where) if p) or DASH


def _finding(index: int, f: dict, transmissions: dict, detections: dict, t: dict[str, str],
             terms: dict, titles: RuleTitles) -> dict[str, Any]:
    tx_ids = [_key(tid) for tid in _list(f.get("transmissions"))]
    count = _int(f.get("count"), len(tx_ids))
    categories = [_text(c) for c in _list(f.get("categories"))]
    wanted = set(categories)
    shown = sorted(tx_ids, key=lambda tid: (_text(_dict(transmissions.get(tid)).get("ts")),
                                            _text(tid)))[:EVIDENCE_CAP]
    rows = []
    for tid in shown:
        tx = _dict(transmissions.get(tid))
        consent = _dict(tx.get("consent"))
        dets = [d for d in detections.get(tid, [])
                if not wanted or _text(d.get("category")) in wanted]
        rows.append({
            "id": _or_dash(tid),
            "time": fmt_ts(tx.get("ts")),
            "request": _request_text(tx) if tx else DASH,
            "down": tx.get("direction") == "down",
            "details": [{
                "field": _or_dash(d.get("field")),
                "category": _or_dash(d.get("category")),
                "encoding": _encoding(d.get("encoding"), t),
                "value": _or_dash(d.get("value")),
                "consent": (_term(terms, "consent", consent[_text(d.get("category"))])
                            if _text(d.get("category")) in consent else DASH),
                "method": _term(terms, "method", d.get("method")),
                "confidence": (f"{d['confidence']:.2f}"
                               if isinstance(d.get("confidence"), (int, float)) else ""),
            } for d in dets],
        })
    more = max(count, len(tx_ids)) - len(shown)
    rule = _text(f.get("rule"))
    return {
        "anchor": f"finding-{index}",
        "id": _or_dash(f.get("id")),
        "rule": _or_dash(rule),
        "rule_anchor": _anchor("rule-", rule),
        "severity": _severity(f.get("severity")),
        "severity_label": _term(terms, "severity", f.get("severity")),
        "title": titles.title(f),
        "explanation": titles.explanation(rule),
        "categories": categories,
        "recipient": _or_dash(f.get("recipient")),
        "count": count,
        "first_seen": fmt_ts(f.get("first_seen")),
        "last_seen": fmt_ts(f.get("last_seen")),
        "consent": [_term(terms, "consent", c) for c in _list(f.get("consent"))],
        "references": _references(f.get("references")),
        "evidence": rows,
        "more": t["and_more"].format(n=more) if more > 0 else "",
    }


def _flows(transmissions, detections: dict, t: dict[str, str], terms: dict,
           failed: list[dict[str, object]] | None = None) -> dict[str, Any]:
    """Recipient × category: how many device-sent messages carried the category, and for each
    pair when it was first seen, over which transports, to which countries, in which
    encodings. The recipient's party and SDK identity sit beside it."""
    rows: dict[str, dict[str, Any]] = {}
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for tx in transmissions:
        if tx.get("direction", "up") != "up":
            continue
        try:
            _flow(tx, detections, t, rows, pairs)
        except Exception as e:  # noqa: BLE001 - one transmission, never the table
            if failed is not None:
                _failed(failed, f"transmission {_text(tx.get('id'))} in the flow table", e, tx)
    return _flow_table(rows, pairs, t, terms)


def _flow(tx: dict, detections: dict, t: dict[str, str], rows: dict[str, dict[str, Any]],
          pairs: dict[tuple[str, str], dict[str, Any]]) -> None:
    """One device-sent transmission counted into the recipient rows and category pairs."""
    rcp = _dict(tx.get("recipient"))
    domain = _text(rcp.get("domain")) or _text(tx.get("host")) or _text(tx.get("ip")) or DASH
    row = rows.setdefault(domain, {
        "domain": domain, "organization": _text(rcp.get("organization")),
        "party_key": _text(rcp.get("party")) or "unknown",
        "sdk": _text(rcp.get("sdk")), "sdk_type": _text(rcp.get("sdk_type")),
        "countries": set(), "messages": 0, "cells": Counter(),
    })
    for key in ("organization", "sdk", "sdk_type"):
        row[key] = row[key] or _text(rcp.get(key))
    country = _text(rcp.get("country"))
    if country:
        row["countries"].add(country)
    row["messages"] += 1
    dets = detections.get(_key(tx.get("id")), [])
    cats = {_text(d.get("category")) for d in dets}
    cats.discard("")
    row["cells"].update(cats)
    ts, transport = _text(tx.get("ts")), _text(tx.get("transport"))
    for cat in cats:
        pair = pairs.setdefault((domain, cat), {"count": 0, "first": "", "transports": set(),
                                                "countries": set(), "encodings": set()})
        pair["count"] += 1
        if ts and (not pair["first"] or ts < pair["first"]):
            pair["first"] = ts
        if transport:
            pair["transports"].add(transport)
        if country:
            pair["countries"].add(country)
    for d in dets:
        cat = _text(d.get("category"))
        if cat:
            pairs[(domain, cat)]["encodings"].add(_encoding(d.get("encoding"), t))


def _flow_table(rows: dict[str, dict[str, Any]], pairs: dict[tuple[str, str], dict[str, Any]],
                t: dict[str, str], terms: dict) -> dict[str, Any]:
    columns = sorted({cat for _, cat in pairs})
    party_order = {"third": 0, "unknown": 1, "first": 2}
    ordered = sorted(rows.values(), key=lambda r: (party_order.get(r["party_key"], 1),
                                                   -sum(r["cells"].values()), r["domain"]))
    out_rows = []
    for r in ordered:
        sdk = " · ".join(p for p in (r["sdk"], r["sdk_type"]) if p)
        out_rows.append({
            "domain": r["domain"], "organization": _or_dash(r["organization"]),
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
            "encodings": encodings[:8], "encodings_more": max(len(encodings) - 8, 0),
        })
    return {"columns": columns, "rows": out_rows[:LIST_CAP],
            "rows_more": _more(t, len(out_rows) - LIST_CAP),
            "details": details[:LIST_CAP], "details_more": _more(t, len(details) - LIST_CAP)}


def _timeline(doc: dict, session: dict, transmissions, detections: dict, findings: list[dict],
              t: dict[str, str], terms: dict,
              failed: list[dict[str, object]] | None = None) -> dict[str, Any]:
    failed = [] if failed is None else failed
    events = _each(_records(doc.get("events")), lambda ev: _event(ev, terms), failed,
                   lambda ev: f"consent event at {_text(ev.get('ts')) or '?'}")
    far = datetime.max.replace(tzinfo=UTC)
    events.sort(key=lambda e: (e["ts"] or far, e["time"]))
    try:
        svg = _timeline_svg(session, events, transmissions, detections, findings, t)
    except Exception as e:  # noqa: BLE001 - the drawing, never the page
        _failed(failed, "the timeline drawing", e)
        svg = None
    if svg is not None:
        svg["states"] = [{"key": css, "label": _term(terms, "consent", state)}
                         for state, css in _STATE_CLASS.items()]
        for lane in svg["lanes"]:
            for band in lane["bands"]:
                band["label"] = _term(terms, "consent", band["label"])
    return {"events": [{k: v for k, v in e.items() if k != "ts"} for e in events], "svg": svg}


def _event(ev: dict, terms: dict) -> dict[str, Any]:
    """One consent event of the timeline table (``ts`` kept for ordering and drawing)."""
    action = _text(ev.get("action"))
    return {
        "ts": _parse_ts(ev.get("ts")),
        "time": fmt_ts(ev.get("ts")),
        "action_key": action if action in TERMS["en"]["action"] else "other",
        "action": _term(terms, "action", action),
        "name": _text(ev.get("name")),
        "categories": [_text(c) for c in _list(ev.get("categories"))],
        "recipients": [_text(r) for r in _list(ev.get("recipients"))],
        "separate": [_text(s) for s in _list(ev.get("separate"))],
        "source": _term(terms, "source", ev.get("source")) if ev.get("source") else DASH,
    }


def _severity_per_tx_category(findings: list[dict]) -> dict[tuple[Any, str], str]:
    """(transmission, category) → the worst severity of a finding citing it. A finding
    without categories (uninspected traffic) marks the transmission as a whole ('*')."""
    worst: dict[tuple[Any, str], str] = {}
    for f in findings:
        sev = _severity(f.get("severity"))
        cats = [_text(c) for c in _list(f.get("categories"))] or ["*"]
        for tid in map(_key, _list(f.get("transmissions"))):
            for cat in cats:
                key = (tid, cat)
                if key not in worst or _sev_rank(sev) < _sev_rank(worst[key]):
                    worst[key] = sev
    return worst


def _timeline_svg(session: dict, events: list[dict], transmissions, detections: dict,
                  findings: list[dict], t: dict[str, str]) -> dict[str, Any] | None:
    """Phases as background bands, consent events as markers, then one lane per category:
    a band coloured by the consent state each message was judged under, and a mark per
    message (binned: at most _BINS per lane), coloured by the worst finding that cites it."""
    timed = []
    for tx in transmissions:
        ts = _parse_ts(tx.get("ts"))
        if ts is not None:
            timed.append((ts, tx))
    timed.sort(key=lambda p: p[0])
    times = [e["ts"] for e in events if e["ts"]] + [ts for ts, _ in timed]
    start = _parse_ts(session.get("started")) or (min(times) if times else None)
    end = _parse_ts(session.get("ended")) or (max(times) if times else None)
    if start is None or end is None:
        return None
    start, end = min([start, *times]), max([end, *times])
    span = (end - start).total_seconds() or 1.0
    width = _SVG_RIGHT - _SVG_LEFT

    def frac(ts: datetime) -> float:
        return (ts - start).total_seconds() / span

    def x(ts: datetime) -> float:
        return round(_SVG_LEFT + frac(ts) * width, 1)

    def bin_of(ts: datetime) -> int:
        return min(int(frac(ts) * _BINS), _BINS - 1)

    severity = _severity_per_tx_category(findings)
    # lane → bin → [count, worst severity rank, last consent state]
    lanes: dict[str, dict[int, list]] = defaultdict(dict)
    lane_total: Counter[str] = Counter()
    for ts, tx in timed:
        tid, b = _key(tx.get("id")), bin_of(ts)
        consent = _dict(tx.get("consent"))
        whole = severity.get((tid, "*"))
        cats = _tx_categories(tx, detections.get(tid, [])) if tx.get(
            "direction", "up") == "up" else set()
        per_cat = {c: severity.get((tid, c)) or whole for c in cats}
        overall = min((s for s in (whole, *per_cat.values()) if s), key=_sev_rank, default=None)
        for lane in ("", *cats):
            sev = per_cat[lane] if lane else overall
            cell = lanes[lane].setdefault(b, [0, len(SEVERITIES) + 1, None])
            cell[0] += 1
            if sev:
                cell[1] = min(cell[1], _sev_rank(sev))
            if lane and lane in consent:
                cell[2] = _text(consent[lane])
            lane_total[lane] += 1
    categories = sorted(c for c in lanes if c)
    kept = set(sorted(categories, key=lambda c: (-lane_total[c], c))[:_LANE_CAP])
    lane_ids = [""] + [c for c in categories if c in kept]
    n_markers = sum(1 for e in events if e["ts"] and e["action_key"] != "phase")
    top = _SVG_TOP + min(max(n_markers, 1), _SVG_LABEL_ROWS) * _SVG_LABEL_H + 6
    bin_w = width / _BINS
    out_lanes = []
    for i, lane in enumerate(lane_ids):
        y = top + i * _LANE_H
        marks = []
        for b, (n, rank, _state) in sorted(lanes[lane].items()):
            sev = SEVERITIES[rank] if rank < len(SEVERITIES) else "plain"
            marks.append({"x": round(_SVG_LEFT + b * bin_w, 1), "n": n, "severity": sev})
        bands = []  # a state holds from the message judged under it until the state changes
        run_state, run_start = None, 0
        for b, (_n, _rank, state) in sorted(lanes[lane].items()):
            if state is not None and state != run_state:
                if run_state is not None:
                    bands.append((run_state, run_start, b))
                run_state, run_start = state, b
        if run_state is not None:
            bands.append((run_state, run_start, _BINS))
        out_lanes.append({
            "category": lane, "label": lane or t["messages"], "y": y, "h": _LANE_H - 4,
            "count": lane_total[lane],
            "marks": marks,
            "bands": [{"x": round(_SVG_LEFT + b0 * bin_w, 1),
                       "w": round(max((b1 - b0) * bin_w, bin_w), 1),
                       "state": _STATE_CLASS.get(state, "other"), "label": state}
                      for state, b0, b1 in bands],
        })
    axis_y = top + len(lane_ids) * _LANE_H + 16
    phases, markers = [], []
    timed_events = [e for e in events if e["ts"]]
    phase_events = [e for e in timed_events if e["action_key"] == "phase"]
    for i, e in enumerate(phase_events):
        until = phase_events[i + 1]["ts"] if i + 1 < len(phase_events) else end
        w, name = max(round(x(until) - x(e["ts"]), 1), 1.0), e["name"] or e["action"]
        phases.append({"x": x(e["ts"]), "w": w, "name": name, "shade": i % 2,
                       "label": name if w >= 7 * len(name) + 8 else ""})  # no overlaps
    for i, e in enumerate(e for e in timed_events if e["action_key"] != "phase"):
        label = " ".join(p for p in (e["action"], ", ".join(e["categories"])) if p)
        markers.append({"x": x(e["ts"]), "kind": e["action_key"],
                        "label": label if len(label) <= 48 else label[:47] + "…",
                        "y": _SVG_TOP + (i % _SVG_LABEL_ROWS) * _SVG_LABEL_H,
                        "anchor": "end" if x(e["ts"]) > _SVG_W * 0.7 else "start"})
    grid = [{"x": x(at), "label": _axis_label(at, span)}
            for at in (start + (end - start) * k / 4 for k in (1, 2, 3))]
    hidden = len(categories) - len(kept)
    return {
        "width": _SVG_W, "height": axis_y + 38, "axis_y": axis_y, "top": top,
        "left": _SVG_LEFT, "right": _SVG_RIGHT, "mark_w": round(max(bin_w - 0.6, 1.2), 1),
        "start": fmt_ts(start.isoformat()), "end": fmt_ts(end.isoformat()),
        "phases": phases, "markers": markers, "lanes": out_lanes, "grid": grid,
        "hidden": t["lanes_capped"].format(n=hidden) if hidden > 0 else "",
    }


def _axis_label(at: datetime, span: float) -> str:
    if span < 60:
        return at.strftime("%H:%M:%S.") + f"{at.microsecond // 1000:03d}"
    return at.strftime("%H:%M:%S" if span < 86400 else "%m-%d %H:%M")


def _coverage(cov: dict, transmissions: dict, t: dict[str, str],
              failed: list[dict[str, object]] | None = None) -> dict[str, Any]:
    """Coverage as the document has it, plus what this page itself had to leave out."""
    errors = []
    for err in [*_list(cov.get("errors")), *(failed or [])]:
        err = err if isinstance(err, dict) else {"message": err}
        errors.append({"transmission": _or_dash(err.get("transmission")),
                       "stage": _or_dash(err.get("stage")),
                       "message": _or_dash(err.get("message"))})
    uninspected = []
    for u in _list(cov.get("uninspected")):
        u = u if isinstance(u, dict) else {"host": u}
        uninspected.append({"host": _or_dash(u.get("host")), "reason": _or_dash(u.get("reason"))})
    opaque = []
    for o in _list(cov.get("opaque")):
        o = o if isinstance(o, dict) else {"fields": [o]}
        tx = _dict(transmissions.get(_key(o.get("transmission"))))
        fields = [_text(f) for f in _list(o.get("fields")) if _text(f)]
        opaque.append({"transmission": _or_dash(o.get("transmission")),
                       "request": _request_text(tx) if tx else DASH,
                       "fields": fields[:10], "fields_more": _more(t, len(fields) - 10)})
    opaque_n = cov.get("opaque_payloads")
    return {
        "connections": _or_dash(cov.get("connections")),
        "inspected": _or_dash(cov.get("inspected")),
        "uninspected_n": len(uninspected),
        "uninspected": uninspected[:LIST_CAP],
        "uninspected_more": _more(t, len(uninspected) - LIST_CAP),
        "opaque_n": _or_dash(opaque_n if opaque_n is not None else (len(opaque) or None)),
        "opaque": opaque[:LIST_CAP],
        "opaque_more": _more(t, len(opaque) - LIST_CAP),
        "analysis_errors": _or_dash(_error_count(cov, len(errors), len(failed or []))),
        "errors": errors[:LIST_CAP],
        "errors_more": _more(t, len(errors) - LIST_CAP),
    }


def _error_count(cov: dict, listed: int, left_out: int) -> int | None:
    """The document's own count (it may count more than it lists), plus the page's."""
    if "analysis_errors" not in cov:
        return listed or None
    return _int(cov.get("analysis_errors"), listed - left_out) + left_out


def _rules(findings: list[dict], terms: dict, titles: RuleTitles) -> list[dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:
        rule = _or_dash(f.get("rule"))
        row = rules.setdefault(rule, {
            "rule": rule, "anchor": _anchor("rule-", rule), "title": titles.title(f),
            "explanation": titles.explanation(rule),
            "severity": _severity(f.get("severity")),
            "severity_label": _term(terms, "severity", f.get("severity")),
            "references": [],
        })
        for ref in _references(f.get("references")):
            if ref not in row["references"]:
                row["references"].append(ref)
    return sorted(rules.values(), key=lambda r: (_sev_rank(r["severity"]), r["rule"]))


__all__ = ["EVIDENCE_CAP", "LABELS", "LIST_CAP", "RULE_TEXT", "TERMS", "RuleTitles",
           "build_view", "environment", "fmt_ts", "render", "render_string"]
