"""The report's timeline drawing: the session as an SVG picture the template prints.

Phases are background bands, consent events markers with labels on top, then one lane per
category: a band coloured by the consent state each message was judged under and a mark
per message, coloured by the worst finding that cites it. A session may hold tens of
thousands of messages, so marks are binned (at most ``BINS`` per lane) and lanes capped
(``LANE_CAP``, the busiest kept, the rest counted): the page stays small and quick to open
however long the capture ran. Pure: the same inputs always draw the same picture.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from heapq import heapify, heappop, heappush
from typing import Any

from auditor.categories import SEVERITIES
from auditor.memo import Memo
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
    ``categories``); ``t``: the page's labels (``messages``, ``lanes_capped``). The
    messages held in a list: the page draws a session's stream with ``Drawing``."""
    transmissions = list(transmissions)
    times = [tx.ts for tx in transmissions if tx.ts is not None]
    drawing = Drawing(start, end, min(times, default=None), max(times, default=None), events,
                      Citations(findings))
    for tx in transmissions:
        drawing.add(tx, detections.get(tx.id, ()))
    return drawing.view(t)


class Drawing:
    """The timeline drawn from a stream of messages, one at a time (``add``), in any order:
    what it keeps is binned (``BINS`` per lane), so it holds as much for a week's soak as
    for ten minutes. The window must be known before the first message: the session's
    (``start``, ``end``) widened to its first and last message and its events."""

    def __init__(self, start: datetime | None, end: datetime | None,
                 first: datetime | None, last: datetime | None,
                 events: Sequence[Mapping[str, Any]], citations: Citations) -> None:
        self.events = events
        self.citations = citations
        times = [e["ts"] for e in events if e["ts"]] + [ts for ts in (first, last) if ts]
        start = start or (min(times) if times else None)
        end = end or (max(times) if times else None)
        self.start = self.end = None
        if start is not None and end is not None:
            self.start, self.end = min([start, *times]), max([end, *times])
        # lane → bin → [count, worst severity rank, latest consent state, its time]
        self.lanes: dict[str, dict[int, list]] = defaultdict(dict)
        self.lane_total: Counter[str] = Counter()
        self._last: datetime | None = None

    def _bin(self, ts: datetime) -> int:
        assert self.start is not None and self.end is not None
        span = (self.end - self.start).total_seconds() or 1.0
        return min(int((ts - self.start).total_seconds() / span * BINS), BINS - 1)

    def add(self, tx: TransmissionEntry, dets: Iterable[DetectionEntry]) -> None:
        """One message: counted into its bin of the whole-message lane and of each category
        it carried, with the worst severity of a finding citing it there. A bin shows the
        consent state of its latest message (of those with one time, the last to come)."""
        if tx.ts is None or self.start is None:
            return
        b = self._bin(tx.ts)
        severity = self.citations.worst(tx.id)
        whole = severity.get(WHOLE)
        cats = _categories(tx, dets) if tx.direction == "up" else set()
        per_cat = {c: severity.get(c) or whole for c in cats}
        overall = min((s for s in (whole, *per_cat.values()) if s), key=_rank, default=None)
        for lane in ("", *cats):
            sev = per_cat[lane] if lane else overall
            bins = self.lanes[lane]
            cell = bins.get(b)  # made for a bin's first message only
            if cell is None:
                cell = bins[b] = [0, len(SEVERITIES) + 1, None, None]
            cell[0] += 1
            if sev:
                cell[1] = min(cell[1], _rank(sev))
            if lane and lane in tx.consent and (cell[3] is None or tx.ts >= cell[3]):
                cell[2], cell[3] = tx.consent[lane], tx.ts
            self.lane_total[lane] += 1

    def view(self, t: Mapping[str, str]) -> dict[str, Any] | None:
        start, end, events = self.start, self.end, self.events
        if start is None or end is None:
            return None
        span = (end - start).total_seconds() or 1.0
        width = RIGHT - LEFT

        def x(ts: datetime) -> float:
            return round(LEFT + (ts - start).total_seconds() / span * width, 1)

        lanes, lane_total = self.lanes, self.lane_total
        categories = sorted(c for c in lanes if c)
        kept = set(sorted(categories, key=lambda c: (-lane_total[c], c))[:LANE_CAP])
        lane_ids = [""] + [c for c in categories if c in kept]
        n_markers = sum(1 for e in events if e["ts"] and e["action_key"] != "phase")
        top = TOP + min(max(n_markers, 1), LABEL_ROWS) * LABEL_H + 6
        bin_w = width / BINS
        out_lanes = [_lane(lane, lanes.get(lane, {}), lane_total[lane], top + i * LANE_H,
                           bin_w, t)
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
    for b, (n, rank, _state, _ts) in sorted(bins.items()):
        sev = SEVERITIES[rank] if rank < len(SEVERITIES) else "plain"
        marks.append({"x": round(LEFT + b * bin_w, 1), "n": n, "severity": sev})
    bands = []  # a state holds from the message judged under it until the state changes
    run_state, run_start = None, 0
    for b, (_n, _rank, state, _ts) in sorted(bins.items()):
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


def id_order(tid: Any) -> tuple:
    """A transmission id's place among ids of any kind a file may hold (ints from a
    session; text or None from a file written elsewhere): ids of one kind in their order."""
    if isinstance(tid, int) and not isinstance(tid, bool):
        return (0, tid, "")
    return (1, 0, str(tid)) if isinstance(tid, str) else (2, 0, repr(tid))


# ``severity_order`` of the texts ``Citations.worst`` gives (``severity_key``'s), by a lookup
_RANKS = {s: i for i, s in enumerate(SEVERITIES)}


def _rank(severity: str) -> int:
    return _RANKS.get(severity, len(SEVERITIES))


def _first(row: tuple) -> Any:
    return row[0]


class Citations:
    """Which findings cite a transmission, without a table of every (transmission,
    finding) pair (a finding may cite every message of a week's soak): each finding's ids
    sorted once, 8 bytes an id, and looked up by bisection."""

    def __init__(self, findings: Iterable[FindingEntry]) -> None:
        self.findings: list[tuple[FindingEntry, Sequence]] = []
        # (index, finding, sorted ids): the findings citing ints only, and the others
        self._numbered: list[tuple[int, FindingEntry, array]] = []
        self._other: list[tuple[int, FindingEntry, list[tuple]]] = []
        for i, f in enumerate(findings):
            ids = f.transmissions
            if all(isinstance(x, int) and not isinstance(x, bool) for x in ids):
                self.findings.append((f, array("q", sorted(ids))))
                self._numbered.append((i, f, self.findings[-1][1]))  # type: ignore[arg-type]
            else:
                self.findings.append((f, sorted(map(id_order, ids))))
                self._other.append((i, f, self.findings[-1][1]))  # type: ignore[arg-type]
        # The page asks twice about each message in a row (its flow row, its timeline bin):
        # the last answer is kept.
        self._last: tuple[Any, list[tuple[int, FindingEntry, int]]] | None = None
        self._worst: Memo[tuple[int, ...], dict[str, str]] = Memo(256)
        # The page walks messages in time order, their ids mostly rising: for the highest
        # id asked so far (``_high``), each numbered finding's place in its ids, and a heap
        # of (the id at that place, finding's index): a higher id is answered by the
        # findings whose next id it reaches, not a bisection in each finding. A lower id
        # (out of order) is answered by bisection, the places left as they are.
        self._high: int | None = None
        self._at = [0] * len(self.findings)
        self._next: list[tuple[int, int]] = [(ids[0], i) for i, _f, ids in self._numbered
                                             if len(ids)]
        heapify(self._next)
        self._by_index = {i: (f, ids) for i, f, ids in self._numbered}

    def citing(self, tid: Any) -> Iterator[tuple[int, FindingEntry, int]]:
        """(index, finding, how many times it lists ``tid``) for each finding citing it."""
        last = self._last
        if last is not None and type(last[0]) is type(tid) and last[0] == tid:
            return iter(last[1])
        key = id_order(tid)
        out = []
        # Where ``tid`` would stand in each finding's ids; counted further (a second
        # bisection) only where it stands there: most findings cite most messages not.
        if key[0] == 0 and (self._high is None or key[1] > self._high):
            out = self._rising(key[1])
        elif key[0] == 0:
            probe = key[1]
            for i, f, ids in self._numbered:
                at = bisect_left(ids, probe)
                if at < len(ids) and ids[at] == probe:
                    out.append((i, f, bisect_right(ids, probe, at) - at))
        for i, f, keys in self._other:
            at = bisect_left(keys, key)
            if at < len(keys) and keys[at] == key:
                out.append((i, f, bisect_right(keys, key, at) - at))
        if self._numbered and self._other:
            out.sort(key=_first)  # in the findings' order, as they were given
        self._last = (tid, out)
        return iter(out)

    def _rising(self, probe: int) -> list[tuple[int, FindingEntry, int]]:
        """``citing``'s numbered findings for an id above every one asked before: the
        findings whose next id is below it move their place up to it (a bisection from
        their place), and those whose next id is it count it and move past it."""
        self._high = probe
        heap, at, out = self._next, self._at, []
        while heap and heap[0][0] <= probe:
            first, i = heappop(heap)
            f, ids = self._by_index[i]
            place = at[i] if first == probe else bisect_left(ids, probe, at[i])
            if place < len(ids) and ids[place] == probe:
                past = bisect_right(ids, probe, place)
                out.append((i, f, past - place))
                place = past
            at[i] = place
            if place < len(ids):
                heappush(heap, (ids[place], i))
        out.sort(key=_first)  # in the findings' order: popped by id, then index
        return out

    def worst(self, tid: Any) -> dict[str, str]:
        """Category → the worst severity of a finding citing ``tid`` under it; a finding
        without categories (uninspected traffic) marks the message as a whole (``WHOLE``).
        It depends on which findings cite it alone, and messages are cited by the same few
        sets of findings again and again: the answer for a set is kept (a bounded number)
        and shared, not to be changed."""
        citing = list(self.citing(tid))
        which = tuple([i for i, _f, _n in citing])
        known = self._worst.get(which)
        if known is not None:
            return known
        worst: dict[str, str] = {}
        for _, f, _n in citing:
            sev = severity_key(f.severity)
            for cat in f.categories or (WHOLE,):
                if cat not in worst or severity_order(sev) < severity_order(worst[cat]):
                    worst[cat] = sev
        return self._worst.put(which, worst)
