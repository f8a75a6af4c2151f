"""The batch setting of the garbage collector: collecting less often, never not at all."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from auditor.collector import BATCH_THRESHOLD, for_batch


@pytest.fixture
def batch() -> Iterator[None]:
    """``for_batch`` for one test, the interpreter's own setting restored after it."""
    before = gc.get_threshold()
    for_batch()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_batch_sets_the_threshold_and_freezes_what_is_alive(batch: None) -> None:
    assert gc.get_threshold() == BATCH_THRESHOLD
    assert gc.get_freeze_count() > 0  # the modules loaded so far sit out of collections


@pytest.mark.parametrize("made", [BATCH_THRESHOLD[0] * 3, BATCH_THRESHOLD[0] * 10])
def test_cyclic_garbage_is_still_collected_without_asking(batch: None, made: int) -> None:
    """A run that makes cyclic garbage past the threshold has it collected by the
    collector's own schedule: memory waits for at most a threshold's worth of it."""
    first = _Node()
    gone = weakref.ref(first)
    del first
    alive = sum(1 for _ in range(made) if _Node() is not None)  # each one garbage at once
    assert alive == made
    assert gone() is None
