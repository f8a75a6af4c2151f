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
from tests.factories import EPOCH, IMEI, LAT, LON, http_flow, profile, tx, write_flows
from tests.factories import event as grant


def _committing(session: Session, times: list[float], event: tuple[int, float] | None
                ) -> Iterator[float]:
    """A transmission committed at each time (numbered in turn), its time yielded, as
    ``analyze``'s merge does; ``event``: a consent event recorded after the item of that
    index, dated at that time."""
    for i, ts in enumerate(times):
        session.observe(tx(id=session.next_id(), ts=EPOCH + ts))
        if event is not None and i == event[0]:
            session.record_event(grant("grant", EPOCH + event[1], "identifier"))
        yield EPOCH + ts


@pytest.mark.parametrize(("times", "every", "event", "walked"), [
    ([1, 2, 3, 4, 5, 6, 7], 3, None, True),  # in order
    ([1, 1, 2, 2, 3, 3], 2, None, True),  # equal times: by id, as the walk
    ([1, 2, 3, 2.5, 4, 5], 3, None, True),  # late, but after what was read
    ([1, 2, 3, 4, 0.5, 5], 2, None, False),  # behind what was read
    ([1, 2, 3, 4, 5], 3, (0, 1), True),  # an event before reading began
    ([1, 2, 3, 4, 5], 2, (3, 4), True),  # after it began, dated after what was read
    ([1, 2, 3, 4, 5], 2, (3, 1), False),  # ... dated at the last row read (ts 1)
    ([1, 2, 3, 4, 5], 2, (3, 3), True),  # ... dated after it, before rows read later
    ([1, 2, 3, 4, 5], 2, (3, 0.5), False),  # ... dated before the rows read
    ([1, 2, 3], 5, (2, 0.5), True),  # fewer items than a stretch: read at the end only
])
def test_the_timeline_is_the_walk_or_unordered(tmp_path: Path, times: list[float],
                                                every: int, event: tuple[int, float] | None,
                                                walked: bool) -> None:
    session = Session(tmp_path / "s", profile(source=""), None, alerts=False)
    try:
        read = _timeline(session, _committing(session, times, event), every)
        if walked:
            got = list(read)
            assert got == session.store.observations() and len(got) == len(times)
        else:
            with pytest.raises(_Unordered):
                list(read)
    finally:
        session.close()


def _capture(path: Path, *, mark_at: int | None, late: bool = False) -> Path:
    """More check-ins than a stretch holds, an SDK batch now and then, and perhaps a
    withdrawal mark among them (recorded once reading has begun); ``late``: the mark is
    dated near the start but written at the end, beyond the reorder window (merged after
    rows dated after it were read)."""
    flows: list = []
    for i in range(RELEASE * 3):
        url = ("https://log.tracker.example/batch" if i % 9 == 0
               else f"https://api.acme-watch.example/checkin?seq={i}")
        flows.append(http_flow(url, EPOCH + i, {"imei": IMEI, "lat": LAT, "lon": LON}))
        if i == mark_at:
            at = EPOCH + (5.5 if late else i + 0.5)
            flows.append(mark_flow(ConsentEvent(at, "withdraw", ("identifier",))))
    flows[10], flows[11] = flows[11], flows[10]  # written in response order
    return write_flows(path, flows)


@pytest.mark.parametrize(("mark_at", "late"), [(None, False), (RELEASE + 30, False),
                                               (RELEASE * 3 - 1, True)])
def test_analyze_writes_what_the_walk_writes(tmp_path: Path, watch_profile: Path,
                                             consent_plan: Path, mark_at: int | None,
                                             late: bool) -> None:
    capture = _capture(tmp_path / "c.mitm", mark_at=mark_at, late=late)
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
