"""auditor.jobs: results in the order the chunks were given, a bounded number in flight, and a
worker process that dies is the run failing (WorkerLost), never a hole in the results."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from auditor import spawner
from auditor.jobs import WorkerLost, ordered


def _slow_square(n: int) -> int:
    time.sleep(0.002 * (5 - n % 5))  # later items often finish first
    return n * n


@pytest.mark.parametrize(("items", "inflight"), [(0, 2), (1, 2), (17, 1), (17, 3), (40, 8)])
def test_results_come_in_order_with_a_bounded_number_in_flight(items: int, inflight: int
                                                               ) -> None:
    out_now = high = 0
    lock = threading.Lock()

    def work(n: int) -> list[int]:
        nonlocal out_now, high
        with lock:
            out_now += 1
            high = max(high, out_now)
        try:
            return [_slow_square(n)]
        finally:
            with lock:
                out_now -= 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(ordered(lambda n: pool.submit(work, n), range(items), inflight))
    assert got == [(n, [n * n]) for n in range(items)]
    assert high <= inflight


def test_an_item_without_work_passes_through_in_its_place() -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        got = list(ordered(lambda n: None if n == 2 else pool.submit(lambda: [n]), range(4), 2))
    assert got == [(0, [0]), (1, [1]), (2, []), (3, [3])]


@pytest.mark.e2e  # a worker process
def test_a_worker_that_dies_is_worker_lost() -> None:
    """Workers of ``analyze``'s own context (never a ``fork`` of this threaded process)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=spawner.context()) as pool:
        def submit(n: int) -> Future:
            return pool.submit(os._exit, 9) if n == 1 else pool.submit(abs, -n)

        results = ordered(submit, range(3), 1)
        assert next(results) == (0, 0)
        with pytest.raises(WorkerLost, match="ended before finishing"):
            next(results)


@pytest.mark.parametrize("items", [0, 1, 2, 9])
def test_the_first_item_made_here_after_the_next_ones_are_submitted(items: int) -> None:
    """``here``: the caller makes the first result itself while the workers start on the
    next ones (submitted before it begins); the results still come in the items' order."""
    submitted: list[int] = []

    def submit(n: int) -> Future:
        submitted.append(n)
        done: Future = Future()
        done.set_result([n * n])
        return done

    def here(n: int) -> list[int]:
        assert submitted == list(range(1, min(items, 4)))  # the next ones, up to inflight
        return [n * n]

    got = list(ordered(submit, range(items), 3, here))
    assert got == [(n, [n * n]) for n in range(items)]
    assert submitted == list(range(1, items))
