"""``analyze`` judges the store's timeline as it commits it (``offline._timeline``), and
walks the store after all when that cannot give the walk's rows, order and ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.marks import MARK_HOST
from auditor.model import ConsentEvent
from auditor.offline import RELEASE, _timeline, _Unordered, analyze
from auditor.profile import load_consent_plan, load_profile
from auditor.session import OUTPUTS, Session, reopen, write_outputs
from auditor.sources.mitm import mark_flow
from tests.factories import EPOCH, IMEI, LAT, LON, event, http_flow, profile, tx, write_flows


def _committing(session: Session, times: list[float], event_after: int | None
                ) -> Iterator[float]:
    """A transmission committed at each time (numbered in turn), its time yielded, as
    ``analyze``'s merge does; a consent event recorded after the item ``event_after``."""
    for i, ts in enumerate(times):
        session.observe(tx(id=session.next_id(), ts=EPOCH + ts))
        if i == event_after:
            session.record_event(event("grant", EPOCH + ts, "identifier"))
        yield EPOCH + ts


@pytest.mark.parametrize(("times", "every", "event_after", "walked"), [
    ([1, 2, 3, 4, 5, 6, 7], 3, None, True),  # in order
    ([1, 1, 2, 2, 3, 3], 2, None, True),  # equal times: by id, as the walk
    ([1, 2, 3, 2.5, 4, 5], 3, None, True),  # late, but after what was read
    ([1, 2, 3, 4, 0.5, 5], 2, None, False),  # behind what was read
    ([1, 2, 3, 4, 5], 3, 0, True),  # an event before reading began
    ([1, 2, 3, 4, 5], 2, 3, False),  # an event after it began
    ([1, 2, 3], 5, 2, True),  # fewer items than a stretch: read at the end only
])
def test_the_timeline_is_the_walk_or_unordered(tmp_path: Path, times: list[float],
                                                every: int, event_after: int | None,
                                                walked: bool) -> None:
    session = Session(tmp_path / "s", profile(source=""), None, alerts=False)
    try:
        read = _timeline(session, _committing(session, times, event_after), every)
        if walked:
            got = list(read)
            assert got == session.store.observations() and len(got) == len(times)
        else:
            with pytest.raises(_Unordered):
                list(read)
    finally:
        session.close()


def _capture(path: Path, *, mark_at: int | None) -> Path:
    """More check-ins than a stretch holds, an SDK batch now and then, and perhaps a
    withdrawal mark among them (recorded once reading has begun)."""
    flows: list = []
    for i in range(RELEASE * 2 + 40):
        url = ("https://log.tracker.example/batch" if i % 9 == 0
               else f"https://api.acme-watch.example/checkin?seq={i}")
        flows.append(http_flow(url, EPOCH + i, {"imei": IMEI, "lat": LAT, "lon": LON}))
        if i == mark_at:
            flows.append(mark_flow(ConsentEvent(EPOCH + i + 0.5, "withdraw", ("identifier",))))
    flows[10], flows[11] = flows[11], flows[10]  # written in response order
    return write_flows(path, flows)


@pytest.mark.parametrize("mark_at", [None, RELEASE + 30])
def test_analyze_writes_what_the_walk_writes(tmp_path: Path, watch_profile: Path,
                                             consent_plan: Path, mark_at: int | None) -> None:
    capture = _capture(tmp_path / "c.mitm", mark_at=mark_at)
    out = tmp_path / "out"
    analyze([capture], load_profile(str(watch_profile)), load_consent_plan(str(consent_plan)),
            out)
    store, prof, ledger = reopen(out)
    try:
        write_outputs(out, store, prof, ledger, out=tmp_path / "walked")
    finally:
        store.close()
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (tmp_path / "walked" / name).read_bytes(), name
    assert (MARK_HOST.encode() in capture.read_bytes()) == (mark_at is not None)
    actions = [e["action"] for e in json.loads((out / "findings.json").read_text())["events"]]
    assert ("withdraw" in actions) == (mark_at is not None)
