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

from auditor.mask import Masker, mask
from auditor.model import ConsentEvent, Detection, Finding, Observation

SCHEMA = "kidaudit.findings/1"


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def build(session: dict[str, object], observations: list[Observation],
          findings: Iterable[Finding], events: Iterable[ConsentEvent],
          coverage: dict[str, object], *, consent: dict[int, dict[str, str]] | None = None,
          reveal: bool = False, seeded: Iterable[tuple[str, str]] = ()) -> dict[str, object]:
    """The document. Masked (unless ``reveal``): each transmission's URL, host, recipient,
    field paths and coverage notes with its own detections' values hidden in every form
    (``auditor.mask.Masker``), the session-wide texts with all of them. A transmission
    whose rows cannot be built is left out and listed under coverage errors, and the rest
    is written: one odd message must not cost the lab its report. ``seeded``: (category,
    value) pairs masked in every text even where nothing detected them (the profile's
    latitude and longitude: one coordinate alone pairs with nothing)."""
    show: Callable[..., str] = _same if reveal else mask
    always = [Detection(0, category, "known", "", "", (), "", value, 1.0)
              for category, value in seeded]
    everywhere = _masker([*always, *(d for o in observations for d in o.detections)], reveal)
    times = [o.transmission.ts for o in observations]
    session = {**session, "masked": not reveal,
               "started": session.get("started") or iso(min(times, default=None)),
               "ended": session.get("ended") or iso(max(times, default=None))}
    transmissions: list[dict[str, object]] = []
    detections: list[dict[str, object]] = []
    opaque: list[dict[str, object]] = []
    failed: list[dict[str, object]] = []
    for o in observations:
        try:
            row, rows, hidden = _rows(o, show, _masker([*always, *o.detections], reveal),
                                      (consent or {}).get(o.transmission.id, {}))
        except Exception as exc:  # noqa: BLE001 - any fault of one row, recorded below
            # The kind of error only: its text may quote a captured value in any form.
            failed.append({"transmission": o.transmission.id, "stage": "report",
                           "message": f"transmission left out ({type(exc).__name__})"})
            continue
        transmissions.append(row)
        detections += rows
        if hidden:
            opaque.append({"transmission": o.transmission.id, "fields": hidden})
    return {
        "schema": SCHEMA,
        "session": session,
        "transmissions": transmissions,
        "detections": detections,
        "findings": [
            {"id": f.id, "rule": f.rule, "severity": f.severity, "title": f.title,
             "categories": list(f.categories), "recipient": everywhere(f.recipient),
             "transmissions": list(f.transmissions), "first_seen": iso(f.first_seen),
             "last_seen": iso(f.last_seen), "count": f.count,
             "references": list(f.references), "consent": list(f.consent)}
            for f in findings],
        "events": [
            {"ts": iso(e.ts), "action": e.action, "categories": list(e.categories),
             "recipients": list(e.recipients), "separate": list(e.separate), "name": e.name,
             "source": e.source}
            for e in events],
        "coverage": _coverage(observations, coverage, opaque, failed, everywhere),
    }


def _same(value: str, category: str = "") -> str:
    return value


def _masker(detections: list[Detection], reveal: bool) -> Callable[[str], str]:
    """What hides these detections' values in a text; nothing to hide when revealing."""
    if reveal or not detections:
        return lambda text: text
    return Masker(detections)


def _rows(o: Observation, show: Callable[..., str], hide: Callable[[str], str],
          consent: dict[str, str]) -> tuple[dict[str, object], list[dict[str, object]], list[str]]:
    """One transmission's row, its detections' rows and its opaque notes, masked."""
    rows = [{"transmission": d.transmission, "category": d.category, "method": d.method,
             "location": d.location, "field": hide(d.field), "encoding": list(d.encoding),
             "profile_key": d.profile_key, "value": show(d.value, d.category),
             "confidence": d.confidence}
            for d in o.detections]
    return ({**_transmission(o, hide), "consent": consent}, rows,
            [hide(note) for note in o.opaque])


def _transmission(o: Observation, hide: Callable[[str], str]) -> dict[str, object]:
    tx, r = o.transmission, o.recipient
    return {"id": tx.id, "ts": iso(tx.ts), "transport": tx.transport,
            "direction": tx.direction, "host": hide(tx.host), "ip": tx.ip, "port": tx.port,
            "method": tx.method, "url": hide(tx.url), "inspected": tx.inspected,
            "bytes": tx.size,
            "recipient": {"domain": hide(r.domain), "organization": r.organization or None,
                          "party": r.party, "country": r.country or None,
                          "sdk": r.sdk or None, "sdk_type": r.sdk_type or None}}


def _coverage(observations: list[Observation], extra: dict[str, object],
              opaque: list[dict[str, object]], failed: list[dict[str, object]],
              hide: Callable[[str], str]) -> dict[str, object]:
    errors = [{**e, "message": hide(str(e.get("message", "")))} if isinstance(e, dict) else e
              for e in extra.get("errors", [])] + failed  # type: ignore[attr-defined]
    uninspected = [{**u, "host": hide(str(u.get("host", "")))} if isinstance(u, dict) else u
                   for u in extra.get("uninspected", [])]  # type: ignore[attr-defined]
    return {
        "connections": len(observations),
        "inspected": sum(o.transmission.inspected for o in observations),
        "uninspected": uninspected,
        "opaque_payloads": sum(bool(o.opaque) for o in observations),
        "opaque": opaque,
        "analysis_errors": len(errors),
        "errors": errors,
    }
