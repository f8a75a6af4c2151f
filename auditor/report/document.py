"""The findings document (schema ``kidaudit.findings/1``, DESIGN.md): one dict every output
format renders from. Pure: the caller passes in what the store and the session know.

Additive keys beyond DESIGN.md (readers of ``/1`` ignore unknown keys): ``session`` carries
the tool and ruleset versions and evidence hashes; ``events`` the consent timeline; each
finding ``last_seen`` and ``consent`` (the states it was judged under); ``coverage`` carries
``analysis_errors`` and ``errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

from auditor.mask import mask
from auditor.model import ConsentEvent, Finding, Observation

SCHEMA = "kidaudit.findings/1"


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def build(session: dict[str, object], observations: list[Observation],
          findings: Iterable[Finding], events: Iterable[ConsentEvent],
          coverage: dict[str, object], *, consent: dict[int, dict[str, str]] | None = None,
          reveal: bool = False) -> dict[str, object]:
    show: Callable[..., str] = (lambda v, category="": v) if reveal else mask
    times = [o.transmission.ts for o in observations]
    session = {**session, "masked": not reveal,
               "started": session.get("started") or iso(min(times, default=None)),
               "ended": session.get("ended") or iso(max(times, default=None))}
    return {
        "schema": SCHEMA,
        "session": session,
        "transmissions": [{**_transmission(o, show),
                           "consent": (consent or {}).get(o.transmission.id, {})}
                          for o in observations],
        "detections": [
            {"transmission": d.transmission, "category": d.category, "method": d.method,
             "location": d.location, "field": d.field, "encoding": list(d.encoding),
             "profile_key": d.profile_key, "value": show(d.value, d.category),
             "confidence": d.confidence}
            for o in observations for d in o.detections],
        "findings": [
            {"id": f.id, "rule": f.rule, "severity": f.severity, "title": f.title,
             "categories": list(f.categories), "recipient": f.recipient,
             "transmissions": list(f.transmissions), "first_seen": iso(f.first_seen),
             "last_seen": iso(f.last_seen), "count": f.count,
             "references": list(f.references), "consent": list(f.consent)}
            for f in findings],
        "events": [
            {"ts": iso(e.ts), "action": e.action, "categories": list(e.categories),
             "recipients": list(e.recipients), "separate": list(e.separate), "name": e.name,
             "source": e.source}
            for e in events],
        "coverage": _coverage(observations, coverage),
    }


def _transmission(o: Observation, show: Callable[..., str]) -> dict[str, object]:
    tx, r = o.transmission, o.recipient
    return {"id": tx.id, "ts": iso(tx.ts), "transport": tx.transport,
            "direction": tx.direction, "host": tx.host, "ip": tx.ip, "port": tx.port,
            "method": tx.method, "url": mask_in(tx.url, o, show), "inspected": tx.inspected,
            "bytes": tx.size,
            "recipient": {"domain": r.domain, "organization": r.organization or None,
                          "party": r.party, "country": r.country or None,
                          "sdk": r.sdk or None, "sdk_type": r.sdk_type or None}}


def mask_in(text: str, o: Observation, show: Callable[..., str]) -> str:
    """A URL carries the values found in it: mask them there too."""
    for d in sorted(o.detections, key=lambda d: -len(d.value)):
        for form in {d.value, quote(d.value, safe=""), quote_plus(d.value)}:
            if form and form in text:
                text = text.replace(form, show(form, d.category))
    return text


def _coverage(observations: list[Observation], extra: dict[str, object]) -> dict[str, object]:
    errors = list(extra.get("errors", []))  # type: ignore[call-overload]
    return {
        "connections": len(observations),
        "inspected": sum(o.transmission.inspected for o in observations),
        "uninspected": list(extra.get("uninspected", [])),  # type: ignore[call-overload]
        "opaque_payloads": sum(bool(o.opaque) for o in observations),
        "opaque": [{"transmission": o.transmission.id, "fields": list(o.opaque)}
                   for o in observations if o.opaque],
        "analysis_errors": len(errors),
        "errors": errors,
    }
