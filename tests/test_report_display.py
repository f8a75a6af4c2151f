"""How the pages write values: times in UTC, severities as CSS keys and in order, dashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from auditor.categories import SEVERITIES
from auditor.report.display import DASH, fmt_ts, or_dash, severity_key, severity_order


@pytest.mark.parametrize(("value", "shown"), [
    (datetime(2026, 11, 28, 10, 2, 11, tzinfo=UTC), "2026-11-28 10:02:11"),
    (datetime(2026, 11, 28, 10, 2, 40, 250_000, tzinfo=UTC), "2026-11-28 10:02:40.250"),
    (datetime(2026, 11, 28, 18, 0, tzinfo=timezone(timedelta(hours=8))),
     "2026-11-28 10:00:00"),                                        # another zone, in UTC
    ("2026-11-28T10:02:40.250Z", "2026-11-28 10:02:40.250"),         # as findings.json has it
    ("2026-11-28T10:00:00", "2026-11-28 10:00:00"),                  # no zone: UTC
    ("0001-01-01T00:30:00+01:00", "0001-01-01T00:30:00+01:00"),      # no UTC date: as written
    ("not a time", "not a time"),
    ("", DASH),
    (None, DASH),
])
def test_times(value, shown: str) -> None:
    assert fmt_ts(value) == shown


@pytest.mark.parametrize(("value", "key", "order"), [
    *[(s, s, i) for i, s in enumerate(SEVERITIES)],
    ("bogus", "unknown", len(SEVERITIES)),
    ("", "unknown", len(SEVERITIES)),
    (None, "unknown", len(SEVERITIES)),
])
def test_severities(value, key: str, order: int) -> None:
    assert (severity_key(value), severity_order(value)) == (key, order)


@pytest.mark.parametrize(("value", "shown"), [(None, DASH), ("", DASH), (0, "0"), ("x", "x")])
def test_missing_values_are_a_dash(value, shown: str) -> None:
    assert or_dash(value) == shown
