"""Worker processes for ``analyze --jobs N``: chunks of a flow file analysed in parallel,
their results handed back in the order the chunks were given.

Processes come from the ``forkserver`` context (``spawn`` where there is none): never a
``fork`` of the parent, which holds the session store's SQLite connection. The server
imports the analysis modules once, so each worker starts by forking it, not by importing
mitmproxy again. At most ``inflight`` chunks are out at a time, so memory stays bounded
whatever the size of the capture. A worker that dies (killed, out of memory) loses its
chunk: the run fails (``WorkerLost``, exit 3) rather than leave a hole in the evidence.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from auditor.chunk import Analysed, Context, Skipped, analyse_chunk
from auditor.collector import for_batch
from auditor.data import load_sdks
from auditor.model import ConsentPlan, Profile
from auditor.pipeline import Pipeline
from auditor.sources.mitm import Signals
from auditor.sources.split import Chunk

T = TypeVar("T")
PRELOAD = ["auditor.jobs"]


class WorkerLost(Exception):
    """A worker process ended before returning its chunk: the run failed."""


_context: Context | None = None  # the worker's own, built once by ``_start``


def context(profile: Profile, plan: ConsentPlan | None, evidence: bool) -> Context:
    return Context(Pipeline.for_profile(profile, load_sdks()), Signals(plan), evidence)


def _start(profile: Profile, plan: ConsentPlan | None, evidence: bool) -> None:
    """A worker's start. Ctrl-C reaches the whole process group: the parent alone answers
    it (``kidaudit: interrupted``) and stops the workers, which print nothing. Its context
    (the automaton, the SDK table) is built, then frozen out of collections (``for_batch``)."""
    global _context
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _context = context(profile, plan, evidence)
    for_batch()


def _analyse(chunk: Chunk) -> list[Analysed | Skipped]:
    assert _context is not None, "the worker was not started with _start"
    return analyse_chunk(_context, chunk)


class Pool:
    """``jobs`` worker processes analysing chunks with the session's profile and plan."""

    def __init__(self, jobs: int, profile: Profile, plan: ConsentPlan | None,
                 evidence: bool) -> None:
        try:
            mp = multiprocessing.get_context("forkserver")
            mp.set_forkserver_preload(PRELOAD)
        except ValueError:
            mp = multiprocessing.get_context("spawn")
        self.jobs = jobs
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp, initializer=_start,
                                         initargs=(profile, plan, evidence))

    def analysed(self, chunks: Iterable[T], inflight: int | None = None,
                 here: Callable[[T], list[Analysed | Skipped]] | None = None
                 ) -> Iterator[tuple[T, list[Analysed | Skipped]]]:
        """Each chunk (or ``Cut``, passed through) with its results, in the given order.
        ``here``: the first chunk analysed by this call, in this process (see ``ordered``)."""
        return ordered(self._submit, chunks, inflight or 2 * self.jobs, here)

    def _submit(self, chunk: T) -> Future | None:
        if not isinstance(chunk, Chunk):
            return None
        return self._pool.submit(_analyse, chunk)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def ordered(submit: Callable[[T], Future | None], items: Iterable[T], inflight: int,
            here: Callable[[T], list] | None = None) -> Iterator[tuple[T, list]]:
    """``(item, result)`` in the items' order, with at most ``inflight`` submitted ahead.

    ``here``: the first item's result is ``here(item)``, made in this process once the next
    ones are submitted. Worker processes take a second to start, and the caller had nothing
    to do until the first result came back: it makes that one itself meanwhile."""
    pending: deque[tuple[T, Future | None]] = deque()
    source = iter(items)
    first = next(source, _END) if here is not None else _END
    for item in source:
        pending.append((item, submit(item)))
        if len(pending) >= inflight:
            break
    if first is not _END:
        assert here is not None
        yield first, here(first)  # type: ignore[arg-type]
    while pending:
        item, future = pending.popleft()
        try:
            result = future.result() if future is not None else []
        except BrokenProcessPool:
            raise WorkerLost("an analysis worker process ended before finishing its part "
                             "of the capture (killed, or out of memory?); run analyze again, "
                             "with fewer --jobs if memory is short") from None
        nxt = next(source, _END)
        if nxt is not _END:
            pending.append((nxt, submit(nxt)))  # type: ignore[arg-type]
        yield item, result


_END = object()

__all__ = ["Pool", "WorkerLost", "context", "ordered"]
