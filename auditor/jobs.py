"""Worker processes for ``analyze --jobs N``: chunks of a flow file analysed in parallel,
their results handed back in the order the chunks were given.

Processes come from ``auditor.spawner``'s server (a forkserver with the analysis modules
imported, started early by the CLI). The workers also make the text of the reports' rows
when the parent falls behind (``encode``, ``report.rows.Writer``). At most ``inflight``
chunks are out at a time, so memory stays bounded whatever the size of the capture. A
worker that dies (killed, out of memory) loses its chunk: the run fails (``WorkerLost``,
exit 3) rather than leave a hole in the evidence.
"""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from auditor import spawner
from auditor.chunk import Analysed, Context, Skipped, analyse_chunk
from auditor.collector import for_batch
from auditor.data import load_sdks
from auditor.model import ConsentPlan, Profile
from auditor.pipeline import Pipeline
from auditor.report.rows import Texts, encode_batch
from auditor.sources.mitm import Signals
from auditor.sources.split import Chunk

T = TypeVar("T")
LOST = ("an analysis worker process ended before finishing its part of the capture "
        "(killed, or out of memory?); run analyze again, with fewer --jobs if memory is short")


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
        mp = spawner.context()
        self.jobs = jobs
        # the chunks submitted and not yet taken, in order (``ordered``'s)
        self._pending: deque[tuple[Any, Future | None]] = deque()
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp, initializer=_start,
                                         initargs=(profile, plan, evidence))

    def analysed(self, chunks: Iterable[T], inflight: int | None = None,
                 here: Callable[[T], list[Analysed | Skipped]] | None = None
                 ) -> Iterator[tuple[T, list[Analysed | Skipped]]]:
        """Each chunk (or ``Cut``, passed through) with its results, in the given order.
        ``here``: the first chunk analysed by this call, in this process (see ``ordered``)."""
        self._pending = deque()
        return ordered(self._submit, chunks, inflight or 2 * self.jobs, here, self._pending)

    def encode(self, data: bytes, start: int) -> Encoding:
        """A batch of the reports' rows (as the spool wrote it) made into text by a worker
        (``report.rows.Writer``): the run's own process is its longest path, and this
        takes a part of its work off it."""
        return Encoding(self._pool.submit(encode_batch, data, start))

    def behind(self) -> bool:
        """Whether this process, not the workers, is the slower part of the run just now:
        the next chunk's results wait for it to take them, or the workers have no chunk
        left (the end of a run: what is left to do is this process's)."""
        pending = self._pending
        return not pending or pending[0][1] is None or pending[0][1].done()

    def _submit(self, chunk: T) -> Future | None:
        if not isinstance(chunk, Chunk):
            return None
        return self._pool.submit(_analyse, chunk)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class Encoding:
    """A batch's text a worker is making (``report.rows.Pending``): a worker that dies is
    ``WorkerLost``, as it is for a chunk."""

    def __init__(self, future: Future) -> None:
        self._future = future

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> Texts:
        try:
            return self._future.result()
        except BrokenProcessPool:
            raise WorkerLost(LOST) from None


def ordered(submit: Callable[[T], Future | None], items: Iterable[T], inflight: int,
            here: Callable[[T], list] | None = None,
            pending: deque[tuple[T, Future | None]] | None = None
            ) -> Iterator[tuple[T, list]]:
    """``(item, result)`` in the items' order, with at most ``inflight`` submitted ahead.

    ``here``: the first item's result is ``here(item)``, made in this process once the next
    ones are submitted. Worker processes take a second to start, and the caller had nothing
    to do until the first result came back: it makes that one itself meanwhile."""
    pending = deque() if pending is None else pending  # the caller's, to look at
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
            raise WorkerLost(LOST) from None
        nxt = next(source, _END)
        if nxt is not _END:
            pending.append((nxt, submit(nxt)))  # type: ignore[arg-type]
        yield item, result


_END = object()

__all__ = ["Encoding", "Pool", "WorkerLost", "context", "ordered"]
