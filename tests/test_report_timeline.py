"""The report's timeline drawing, through ``timeline.draw``: lanes, marks, consent bands,
phases and markers, binning and the lane cap, and the axis labels."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from auditor.report import timeline
from auditor.report.display import severity_key, severity_order
from auditor.report.document import DetectionEntry, FindingEntry, TransmissionEntry, at
from auditor.report.i18n import LABELS
from auditor.report.timeline import Citations, id_order
from tests.factories import HOST, T0

START = at(T0)
assert START is not None
T = LABELS["en"]


def _tx(tid: int, seconds: float, *, direction: str = "up",
        consent: dict[str, str] | None = None) -> TransmissionEntry:
    return TransmissionEntry(tid, START + timedelta(seconds=seconds), "https", direction, HOST,
                             consent=consent or {})


def _det(tid: int, category: str) -> DetectionEntry:
    return DetectionEntry(tid, category)


def _finding(severity: str, tids: tuple[int, ...], *categories: str) -> FindingEntry:
    return FindingEntry(f"f-{severity}", "R", severity, "t", categories, "", tids)


def _event(seconds: float, action: str, name: str = "", *categories: str) -> dict:
    return {"ts": START + timedelta(seconds=seconds), "action_key": action, "action": action,
            "name": name, "categories": list(categories)}


def _draw(txs: list[TransmissionEntry], dets: list[DetectionEntry] = (),
          findings: list[FindingEntry] = (), events: list[dict] = (),
          start: datetime | None = None, end: datetime | None = None) -> dict:
    by_tx: dict[int, list[DetectionEntry]] = {}
    for d in dets:
        by_tx.setdefault(d.transmission, []).append(d)
    drawn = timeline.draw(start, end, list(events), txs, by_tx, findings, T)
    assert drawn is not None
    return drawn


def _lane(drawn: dict, category: str) -> dict:
    (lane,) = [lane for lane in drawn["lanes"] if lane["category"] == category]
    return lane


def test_nothing_with_a_time_draws_nothing() -> None:
    assert timeline.draw(None, None, [], [TransmissionEntry(1)], {}, [], T) is None


@pytest.mark.parametrize(("findings", "imei", "everything"), [
    pytest.param([], ["plain"], ["plain", "plain"], id="no-findings-plain"),
    pytest.param([_finding("medium", (1,), "identifier.imei")], ["medium"],
                 ["medium", "plain"], id="the-finding's-category"),
    pytest.param([_finding("medium", (1,), "identifier.imei"),
                  _finding("critical", (1,), "identifier.imei")], ["critical"],
                 ["critical", "plain"], id="the-worst-finding"),
    pytest.param([_finding("info", (1, 2))], ["info"], ["info", "info"],
                 id="without-categories-the-whole-message"),
])
def test_marks_are_coloured_by_the_worst_finding_citing_them(findings, imei, everything
                                                             ) -> None:
    drawn = _draw([_tx(1, 0), _tx(2, 60)], [_det(1, "identifier.imei")], findings)
    assert [m["severity"] for m in _lane(drawn, "identifier.imei")["marks"]] == imei
    assert [m["severity"] for m in _lane(drawn, "")["marks"]] == everything
    assert _lane(drawn, "")["label"] == T["messages"]


@pytest.mark.parametrize(("direction", "lanes"), [
    ("up", ["", "identifier.imei"]),
    ("down", [""]),  # what the server sent is a message, but carries no device data
])
def test_only_device_sent_messages_have_category_lanes(direction: str, lanes: list[str]
                                                        ) -> None:
    drawn = _draw([_tx(1, 0, direction=direction)], [_det(1, "identifier.imei")])
    assert [lane["category"] for lane in drawn["lanes"]] == lanes


@pytest.mark.parametrize(("states", "bands"), [
    (["none", "none"], [("none", "none")]),
    (["none", "granted (separate)"], [("none", "none"), ("separate", "granted (separate)")]),
    (["refused", "something new"], [("refused", "refused"), ("other", "something new")]),
])
def test_consent_bands_follow_the_state_each_message_was_judged_under(states, bands) -> None:
    txs = [_tx(i, i * 600, consent={"location.precise": s}) for i, s in enumerate(states)]
    drawn = _draw(txs)
    lane = _lane(drawn, "location.precise")
    assert [(b["state"], b["label"]) for b in lane["bands"]] == bands
    assert lane["bands"][-1]["x"] + lane["bands"][-1]["w"] == pytest.approx(timeline.RIGHT,
                                                                          abs=0.2)


@pytest.mark.parametrize(("n", "marks"), [(1, 1), (timeline.BINS, timeline.BINS),
                                          (3 * timeline.BINS, timeline.BINS)])
def test_marks_are_binned(n: int, marks: int) -> None:
    drawn = _draw([_tx(i, i) for i in range(n)])
    lane = _lane(drawn, "")
    assert len(lane["marks"]) == marks
    assert sum(m["n"] for m in lane["marks"]) == lane["count"] == n


@pytest.mark.parametrize(("categories", "drawn_lanes", "hidden"), [
    (timeline.LANE_CAP, timeline.LANE_CAP, ""),
    (timeline.LANE_CAP + 3, timeline.LANE_CAP, T["lanes_capped"].format(n=3)),
])
def test_lanes_are_capped_the_busiest_kept(categories: int, drawn_lanes: int, hidden: str
                                           ) -> None:
    txs, dets = [], []
    for c in range(categories):
        for k in range(c + 1):  # category c is carried by c + 1 messages
            tid = 1000 * c + k
            txs.append(_tx(tid, tid))
            dets.append(_det(tid, f"cat.{c:02d}"))
    drawn = _draw(txs, dets)
    kept = [lane["category"] for lane in drawn["lanes"][1:]]
    assert len(kept) == drawn_lanes and drawn["hidden"] == hidden
    assert kept == [f"cat.{c:02d}" for c in range(categories - drawn_lanes, categories)]


def test_phases_and_markers() -> None:
    events = [_event(0, "phase", "setup"), _event(1, "phase", "x" * 40),
              _event(900, "phase", "use"), _event(950, "grant", "", "location.precise")]
    drawn = _draw([_tx(1, 100)], events=events, end=START + timedelta(seconds=1000))
    phases = drawn["phases"]
    assert [p["name"] for p in phases] == ["setup", "x" * 40, "use"]
    assert [p["shade"] for p in phases] == [0, 1, 0]
    assert phases[0]["label"] == ""  # one second wide: no room for its name
    assert phases[1]["label"] == "x" * 40
    (marker,) = drawn["markers"]
    assert (marker["kind"], marker["label"]) == ("grant", "grant location.precise")
    assert marker["anchor"] == "end"  # near the right edge: the label runs leftwards


@pytest.mark.parametrize(("window", "start", "end"), [
    ((None, None), "2026-11-28 10:15:00", "2026-11-28 10:16:40"),  # the messages' own span
    ((-60, 200), "2026-11-28 10:14:00", "2026-11-28 10:18:20"),    # the session's window
    ((10, 20), "2026-11-28 10:15:00", "2026-11-28 10:16:40"),      # widened to every message
])
def test_the_window_covers_the_session_and_every_message(window, start, end) -> None:
    bounds = [None if s is None else START + timedelta(seconds=s) for s in window]
    drawn = _draw([_tx(1, 0), _tx(2, 100)], start=bounds[0], end=bounds[1])
    assert (drawn["start"], drawn["end"]) == (start, end)


@pytest.mark.parametrize(("span", "label"), [
    (30, "10:15:00.250"),
    (3600, "10:15:00"),
    (2 * 86400, "11-28 10:15"),
])
def test_axis_labels_are_as_precise_as_the_span_needs(span: float, label: str) -> None:
    assert timeline.axis_label(START + timedelta(milliseconds=250), span) == label


_IDS = st.lists(st.integers(-3, 6) | st.sampled_from(["4", "x", None, True, 2.0]), max_size=8)


@settings(max_examples=400, deadline=None)
@example(cited=[["x", 1], [1, 1]], asked=[1, "x"])  # findings of both kinds citing one id
@example(cited=[[1, 1, 3, 5], [2, 5, 6], ["x", 5], [], [6, 0]],  # rising ids, with gaps,
         asked=[0, 1, 2, 4, 5, 3, 6, 5, 7, -1, 6])                   # then some lower again
@example(cited=[[5], [3, 5]], asked=[5])  # a later finding's place moved up first
@given(cited=st.lists(_IDS, max_size=5),
       asked=st.lists(st.integers(-4, 7) | st.sampled_from(["4", "x", None, True, 2.0]),
                      max_size=12))
def test_a_message_is_cited_by_each_finding_listing_it_as_often_as_listed(cited, asked
                                                                         ) -> None:
    """``Citations.citing``: each finding listing the id, in the findings' order, with how
    many times it lists it (an id of another kind, a text "4" or True, is another id)."""
    findings = [FindingEntry(id=str(n), severity=("high", "low", "odd")[n % 3],
                             categories=(("a",), (), ("a", "b"))[n % 3],
                             transmissions=tuple(ids)) for n, ids in enumerate(cited)]
    citations = Citations(findings)
    for tid in asked:
        key = id_order(tid)
        expected = [(i, f, n) for i, f in enumerate(findings)
                    if (n := sum(id_order(t) == key for t in f.transmissions))]
        assert list(citations.citing(tid)) == expected
        assert list(citations.citing(tid)) == expected  # the last answer, kept
        worst: dict[str, str] = {}  # as worked out for each message alone
        for _i, f, _n in expected:
            for cat in f.categories or (timeline.WHOLE,):
                if cat not in worst or (severity_order(severity_key(f.severity))
                                        < severity_order(worst[cat])):
                    worst[cat] = severity_key(f.severity)
        assert citations.worst(tid) == worst  # kept for the same findings citing
