"""The report's timeline drawing: the session as an SVG picture the template prints.

Phases are background bands, consent events markers with labels on top, then one lane per
category: a band coloured by the consent state each message was judged under and a mark
per message, coloured by the worst finding that cites it. A session may hold tens of
thousands of messages, so marks are binned (at most ``BINS`` per lane) and lanes capped
(``LANE_CAP``, the busiest kept, the rest counted): the page stays small and quick to open
however long the capture ran. Pure: the same inputs always draw the same picture.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from auditor.categories import SEVERITIES
from auditor.report.display import fmt_ts, severity_key, severity_order
from auditor.report.document import DetectionEntry, FindingEntry, TransmissionEntry

# Drawing (SVG user units): event labels on top, one lane per category, then the axis.
WIDTH, LEFT, RIGHT = 1000, 190, 985
TOP, LABEL_ROWS, LABEL_H = 16, 4, 14
LANE_H, LANE_CAP, BINS = 22, 14, 400
# Consent states (a transmission's ``consent``) → CSS class of the lane's band.
STATE_CLASS = {"none": "none", "granted": "granted", "granted (separate)": "separate",
               "refused": "refused", "withdrawn": "withdrawn"}
WHOLE = "*"  # a finding without categories (uninspected traffic) marks a whole message


def draw(start: datetime | None, end: datetime | None, events: Sequence[Mapping[str, Any]],
         transmissions: Iterable[TransmissionEntry],
         detections: Mapping[Any, Sequence[DetectionEntry]],
         findings: Iterable[FindingEntry], t: Mapping[str, str]) -> dict[str, Any] | None:
    """The drawing's view, or None when nothing in the session has a time. ``start`` and
    ``end``: the session's window, widened to every event and message; ``events``: the
    page's event rows in time order (``ts``, ``action_key``, ``action``, ``name``,
    ``categories``); ``t``: the page's labels (``messages``, ``lanes_capped``)."""
    timed = sorted(((tx.ts, tx) for tx in transmissions if tx.ts is not None),
                   key=lambda p: p[0])
    times = [e["ts"] for e in events if e["ts"]] + [ts for ts, _ in timed]
    start = start or (min(times) if times else None)
    end = end or (max(times) if times else None)
    if start is None or end is None:
        return None
    start, end = min([start, *times]), max([end, *times])
    span = (end - start).total_seconds() or 1.0
    width = RIGHT - LEFT

    def frac(ts: datetime) -> float:
        return (ts - start).total_seconds() / span

    def x(ts: datetime) -> float:
        return round(LEFT + frac(ts) * width, 1)

    def bin_of(ts: datetime) -> int:
        return min(int(frac(ts) * BINS), BINS - 1)

    severity = _worst_per_message_category(findings)
    # lane → bin → [count, worst severity rank, last consent state]
    lanes: dict[str, dict[int, list]] = defaultdict(dict)
    lane_total: Counter[str] = Counter()
    for ts, tx in timed:
        b = bin_of(ts)
        whole = severity.get((tx.id, WHOLE))
        cats = _categories(tx, detections.get(tx.id, ())) if tx.direction == "up" else set()
        per_cat = {c: severity.get((tx.id, c)) or whole for c in cats}
        overall = min((s for s in (whole, *per_cat.values()) if s), key=severity_order,
                      default=None)
        for lane in ("", *cats):
            sev = per_cat[lane] if lane else overall
            cell = lanes[lane].setdefault(b, [0, len(SEVERITIES) + 1, None])
            cell[0] += 1
            if sev:
                cell[1] = min(cell[1], severity_order(sev))
            if lane and lane in tx.consent:
                cell[2] = tx.consent[lane]
            lane_total[lane] += 1
    categories = sorted(c for c in lanes if c)
    kept = set(sorted(categories, key=lambda c: (-lane_total[c], c))[:LANE_CAP])
    lane_ids = [""] + [c for c in categories if c in kept]
    n_markers = sum(1 for e in events if e["ts"] and e["action_key"] != "phase")
    top = TOP + min(max(n_markers, 1), LABEL_ROWS) * LABEL_H + 6
    bin_w = width / BINS
    out_lanes = [_lane(lane, lanes[lane], lane_total[lane], top + i * LANE_H, bin_w, t)
                 for i, lane in enumerate(lane_ids)]
    axis_y = top + len(lane_ids) * LANE_H + 16
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
                        "y": TOP + (i % LABEL_ROWS) * LABEL_H,
                        "anchor": "end" if x(e["ts"]) > WIDTH * 0.7 else "start"})
    grid = [{"x": x(moment), "label": axis_label(moment, span)}
            for moment in (start + (end - start) * k / 4 for k in (1, 2, 3))]
    hidden = len(categories) - len(kept)
    return {
        "width": WIDTH, "height": axis_y + 38, "axis_y": axis_y, "top": top,
        "left": LEFT, "right": RIGHT, "mark_w": round(max(bin_w - 0.6, 1.2), 1),
        "start": fmt_ts(start), "end": fmt_ts(end),
        "phases": phases, "markers": markers, "lanes": out_lanes, "grid": grid,
        "hidden": t["lanes_capped"].format(n=hidden) if hidden > 0 else "",
    }


def axis_label(moment: datetime, span: float) -> str:
    """A grid line's time, as precise as the session's length (``span`` seconds) needs."""
    if span < 60:
        return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return moment.strftime("%H:%M:%S" if span < 86400 else "%m-%d %H:%M")


def _lane(lane: str, bins: dict[int, list], total: int, y: int, bin_w: float,
          t: Mapping[str, str]) -> dict[str, Any]:
    marks = []
    for b, (n, rank, _state) in sorted(bins.items()):
        sev = SEVERITIES[rank] if rank < len(SEVERITIES) else "plain"
        marks.append({"x": round(LEFT + b * bin_w, 1), "n": n, "severity": sev})
    bands = []  # a state holds from the message judged under it until the state changes
    run_state, run_start = None, 0
    for b, (_n, _rank, state) in sorted(bins.items()):
        if state is not None and state != run_state:
            if run_state is not None:
                bands.append((run_state, run_start, b))
            run_state, run_start = state, b
    if run_state is not None:
        bands.append((run_state, run_start, BINS))
    return {
        "category": lane, "label": lane or t["messages"], "y": y, "h": LANE_H - 4,
        "count": total,
        "marks": marks,
        "bands": [{"x": round(LEFT + b0 * bin_w, 1),
                   "w": round(max((b1 - b0) * bin_w, bin_w), 1),
                   "state": STATE_CLASS.get(state, "other"), "label": state}
                  for state, b0, b1 in bands],
    }


def _categories(tx: TransmissionEntry, dets: Iterable[DetectionEntry]) -> set[str]:
    cats = {d.category for d in dets} | set(tx.consent)
    cats.discard("")
    return cats


def _worst_per_message_category(findings: Iterable[FindingEntry]
                                ) -> dict[tuple[Any, str], str]:
    """(transmission, category) → the worst severity of a finding citing it; a finding
    without categories marks the transmission as a whole (``WHOLE``)."""
    worst: dict[tuple[Any, str], str] = {}
    for f in findings:
        sev = severity_key(f.severity)
        for tid in f.transmissions:
            for cat in f.categories or (WHOLE,):
                key = (tid, cat)
                if key not in worst or severity_order(sev) < severity_order(worst[key]):
                    worst[key] = sev
    return worst
