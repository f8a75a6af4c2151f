"""auditor/limits.py: the per-message work budget, its shares, and the bounds on paths."""

from __future__ import annotations

import zlib

import pytest

from auditor.limits import (
    _MESSAGE,
    MAX_PATH,
    MAX_SEGMENT,
    MAX_WORK,
    Budget,
    Limit,
    bounded,
    current_budget,
    message_budget,
    segment,
)
from auditor.model import Field


@pytest.mark.parametrize("key", ["imei", "", "k" * MAX_SEGMENT], ids=["short", "empty", "at-limit"])
def test_a_key_within_the_limit_is_its_own_segment(key: str) -> None:
    assert segment(key) == key


@pytest.mark.parametrize("length", [MAX_SEGMENT + 1, 1 << 20])
def test_a_longer_key_keeps_its_start_its_length_and_its_crc(length: int) -> None:
    key = "k" * length
    assert segment(key) == (f"{key[:MAX_SEGMENT // 2]}…[{length} characters, crc32 "
                            f"{zlib.crc32(key.encode()):08x}]")


def test_a_path_within_the_limit_is_kept_as_it_is() -> None:
    f = Field("body", "body.json." + "a" * (MAX_PATH - 10), "v", ("gzip",))
    assert bounded(f) is f


def test_a_longer_path_keeps_its_start_its_end_and_the_rest_of_the_field() -> None:
    path = "body.json." + "a" * (2 * MAX_PATH) + ".imei"
    f = bounded(Field("body", path, "v", ("gzip",)))
    assert (f.location, f.value, f.encoding) == ("body", "v", ("gzip",))
    assert len(f.path) < MAX_PATH
    assert f.path.startswith(path[:MAX_PATH // 4]) and f.path.endswith(path[-MAX_PATH // 8:])
    assert f"[{len(path)} characters, crc32 {zlib.crc32(path.encode()):08x}]" in f.path


@pytest.mark.parametrize(("work", "charges", "left"), [
    pytest.param(100, [40, 60], 0, id="spent-exactly"),
    pytest.param(100, [10], 90, id="some-left"),
])
def test_spending_within_the_budget_is_counted(work: int, charges: list[int], left: int) -> None:
    budget = Budget(work)
    for n in charges:
        budget.spend(n, "p")
    assert budget.work == left and not budget.used_up


def test_spending_past_the_budget_is_a_limit_at_the_path() -> None:
    budget = Budget(10)
    with pytest.raises(Limit, match="work budget used up") as raised:
        budget.spend(11, "body.json.a")
    assert raised.value.path == "body.json.a" and budget.used_up


@pytest.mark.parametrize(("work", "spent_in_part", "left"), [
    pytest.param(100, 30, 70, id="what-the-part-spent"),
    pytest.param(100, 50, 50, id="the-whole-share"),
    pytest.param(100, 80, 50, id="past-the-share-refused"),
    pytest.param(-5, 0, -5, id="nothing-left-nothing-shared"),
])
def test_a_share_is_half_of_what_is_left_and_charges_the_message(work: int, spent_in_part: int,
                                                                  left: int) -> None:
    budget = Budget(work)
    with budget.share() as part:
        assert part.work == max(work, 0) // 2
        part.work -= spent_in_part
    assert budget.work == left


def test_one_message_budget_is_what_every_reader_inside_it_draws_on() -> None:
    with message_budget() as budget:
        assert current_budget() is budget and budget.work == MAX_WORK
    outside = current_budget()
    assert outside is not budget and outside.work == MAX_WORK
    assert current_budget() is not outside  # a fresh budget per call outside a message


def test_a_share_left_by_an_exception_still_charges_the_message() -> None:
    """``Budget.share`` is a class, not a generator: a part stopped by a ``Limit`` (or by
    its reader being closed) is charged all the same, and the exception goes on."""
    budget = Budget(100)
    with pytest.raises(Limit), budget.share() as part:
        part.spend(60, "body")
    assert budget.work == 50

    def reader():
        with budget.share() as inner:
            inner.work -= 10
            yield 1
            inner.work -= 10  # never reached: the reader is closed first
            yield 2

    started = reader()
    next(started)
    started.close()
    assert budget.work == 40


def test_message_budgets_nest_and_restore_the_one_before() -> None:
    with message_budget() as outer:
        with pytest.raises(ValueError), message_budget() as inner:
            assert current_budget() is inner and inner is not outer
            raise ValueError
        assert current_budget() is outer
    assert _MESSAGE.get() is None
