"""The proxy's end of the analysis worker: messages into the journal, replies off a pipe.

Why a process: mitmproxy serves every connection from one asyncio event loop, so each
millisecond of analysis on that loop is a millisecond added to the device's traffic, and a
thread would still hold the same interpreter lock. The addon appends each message to the
session's journal (``auditor.live.journal``: a pickle and one ``os.write``) and goes on;
the worker (``auditor.live.process``), at a lower CPU priority than the proxy, reads the
journal behind it, appends to ``flows.mitm``, analyses and commits to SQLite. Nothing on
the proxy's side ever waits for it: a worker that falls behind leaves a backlog on disk,
not in the proxy's memory.

Nothing the proxy finished is lost: once ``os.write`` returns, the message is in the
kernel's page cache, which survives a kill of both processes. The worker runs in its own
session (a Ctrl-C or a signal to the proxy's process group does not reach it); when the
proxy goes, it reads the journal to its end, commits, and exits. Its ``Core`` holds
``DIR/session.lock`` while it writes, and ``auditor.live.lock.settled`` waits for it;
whatever is still uncommitted after that (both killed) is analysed by the next ``Core`` to
open the folder (``auditor.live.core.recover`` for ``kidaudit report``).

A pipe carries what is not traffic: the settings, ``Finish`` and ``Close`` to the worker
(its end of file means the proxy is gone), and replies back (results, log lines, commits).
Frames there are an 8-byte big-endian length and a pickle. The pipe and the journal are
private to the two processes, which are the same program run by the same user.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import selectors
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from auditor.live import journal
from auditor.live.protocol import (
    AnalysisError,
    Close,
    Committed,
    Detached,
    Failed,
    Finish,
    Finished,
    Log,
    Message,
    Ready,
    Reply,
    Settings,
)

HEADER = struct.Struct(">Q")
PICKLE = pickle.HIGHEST_PROTOCOL
PROCESS = "auditor.live.process"  # the worker's module, run with ``python -O -m``
# mitmproxy type-checks every field of every request it rebuilds, under ``__debug__`` only,
# on states mitmproxy itself wrote: a cost per flow that buys nothing here (the worker's CPU
# per request, which bench/proxy_overhead.py reports). kidaudit's own asserts only narrow
# types; no check of captured input is an assert.
OPTIMISE = ("-O",)
# Starting can take long (the first run compiles the bytecode; a profile with thousands of
# contacts builds many patterns), so a start is not timed as a whole: the worker is given
# up on only when it used no CPU for STALL_S (stopped, or stuck waiting), or after
# STARTUP_MAX_S in all. Where /proc cannot tell its CPU time, STARTUP_S is the limit.
STARTUP_S = 60.0
STALL_S = 30.0
STARTUP_MAX_S = 1800.0
PROGRESS_S = 1.0  # how often a starting worker's CPU time is read
# The worker lets messages gather this long before it reads them: each batch has a cost
# whatever its size (a wake-up on cold caches, a commit, a checkpoint, a flush), so fewer,
# larger batches cost less worker CPU per request (bench/proxy_overhead.py measures it). A
# live alert comes at most this much later; nothing waits on it, and what is in the journal
# is committed even if the proxy dies.
GATHER_S = 0.1
IDLE_S = 0.8  # the longest look-again interval of an idle worker (a first alert's delay)
# ``done`` waits this long for the worker to commit the backlog and write the reports;
# after that the proxy exits and the worker finishes alone (``kidaudit report`` waits for
# it), so a Ctrl-C never leaves mitmproxy hanging on a worker that is far behind.
FINISH_S = 20.0
CLOSE_S = 30.0
READ_CHUNK = 1 << 20

logger = logging.getLogger("kidaudit")


class WorkerError(Exception):
    """The worker could not start the session (one line, from the worker)."""


class WorkerUnavailable(WorkerError):
    """No worker process could be started at all (for instance a frozen mitmproxy binary,
    whose ``sys.executable`` is not a Python): the addon analyses in-process instead."""


class JournalFailed(WorkerError):
    """The journal cannot be written (a full disk): analysis cannot go on."""


def frame(msg: object) -> bytes:
    data = pickle.dumps(msg, protocol=PICKLE)
    return HEADER.pack(len(data)) + data


class Frames:
    """Bytes from a pipe -> complete messages."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[object]:
        self._buf += data
        out = []
        while len(self._buf) >= HEADER.size:
            (n,) = HEADER.unpack_from(self._buf)
            if len(self._buf) < HEADER.size + n:
                break
            out.append(pickle.loads(self._buf[HEADER.size:HEADER.size + n]))
            del self._buf[:HEADER.size + n]
        return out


class Worker:
    """The proxy's side of the worker: messages go to the journal, replies are read by the
    event loop.

    ``on_reply`` gets every reply (results, log lines); ``on_death`` is called once, with
    the exit code, if the worker goes away before ``finish``/``close``."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop,
                 on_reply: Callable[[Reply], None], on_death: Callable[[int], None]
                 ) -> None:
        self._loop, self._on_reply, self._on_death = loop, on_reply, on_death
        self.directory = Path(settings.directory)
        root = str(Path(__file__).resolve().parents[2])  # the checkout or site-packages
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, *OPTIMISE, "-m", PROCESS],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as e:
            raise WorkerUnavailable(f"cannot start {sys.executable}: {e}") from e
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._wfd, self._rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self._rfd, False)
        self._frames = Frames()
        self._finished: Finished | None = None
        self._ready: Ready | Failed | None = None
        self.alive = True
        self._ending = False  # finish/close sent: the worker's exit is expected, not a death
        self._journal: journal.Writer | None = None
        self._control(settings)
        self._wait_ready()
        if self._ready is None:  # exited, or stalled: a stalled one is ended here
            with contextlib.suppress(OSError):
                self.proc.kill()
            self._stop()
            raise WorkerUnavailable(f"{sys.executable} -m {PROCESS} did not "
                                    f"start (exit code {self.proc.returncode})")
        if isinstance(self._ready, Failed):
            self._stop()
            raise WorkerError(f"kidaudit analysis worker: {self._ready.text}")
        self.patterns, self._committed = self._ready.patterns, self._ready.offset
        self._dropped = 0  # messages not journaled while the backlog was over its bound
        # Opened once the worker's Core has cut any torn tail off the journal.
        self._journal = journal.Writer(self.directory)
        loop.add_reader(self._rfd, self._readable)

    # -- from the addon ----------------------------------------------------------------
    def send(self, msg: Message) -> None:
        """One record appended to the journal: a pickle and one ``os.write``, never a wait.
        Past ``BACKLOG_MAX`` bytes behind, messages are counted, not kept (the device's
        traffic still passes; the report says how many)."""
        if not self.alive or self._journal is None:
            raise WorkerError("the analysis worker is gone")
        try:
            if self._journal.end - self._committed > journal.BACKLOG_MAX:
                self._drop()
                return
            if self._dropped:
                self._journal.append(AnalysisError("backlog", self._dropped_text()))
                self._dropped = 0
            self._journal.append(msg)
        except OSError as e:
            raise JournalFailed(f"{self.directory / journal.JOURNAL_FILE}: {e}") from e

    def _drop(self) -> None:
        if not self._dropped:
            self._on_reply(Log(logging.ERROR, "kidaudit: the analysis worker is more than "
                               f"{journal.BACKLOG_MAX >> 30} GB behind: traffic passes, but "
                               "is not recorded until it catches up (the report counts it)"))
        self._dropped += 1

    def _dropped_text(self) -> str:
        return (f"{self._dropped} messages passed but were not recorded: the analysis worker "
                f"had fallen more than {journal.BACKLOG_MAX >> 30} GB behind")

    def finish(self, lang: str) -> Finished | Detached | None:
        """Write the reports. Waits at most ``FINISH_S``: then the worker is left to finish
        alone (``Detached``). None if it died first."""
        if not self.alive:
            return None
        self._ending = True
        self._control(Finish(lang))
        self._pump(lambda: self._finished is not None, FINISH_S)
        if self._finished is None and self.alive:
            left = self.backlog
            self._stop(wait=False)
            return Detached(self.proc.pid, left)
        self._stop()
        return self._finished

    @property
    def backlog(self) -> int:
        """Journal bytes the worker has not reported committed."""
        return 0 if self._journal is None else max(0, self._journal.end - self._committed)

    @property
    def exit_code(self) -> int:
        """How the worker process ended (negative: the signal that ended it); -1 while it
        has not been reaped."""
        return -1 if self.proc.returncode is None else self.proc.returncode

    def detach(self) -> None:
        """Let go without waiting: the worker sees the end of its pipe, commits what the
        journal holds, and exits by itself."""
        if self.alive:
            self._ending = True
            self._stop(wait=False)

    def close(self) -> None:
        if self.alive:
            self._ending = True
            self._control(Close())
            self._pump(lambda: False, CLOSE_S)  # until the worker closes its end
            self._stop()

    # -- pipe plumbing ------------------------------------------------------------------
    def _control(self, msg: object) -> None:
        """A control message (a few hundred bytes at most): written whole, blocking."""
        try:
            self.proc.stdin.write(frame(msg))
            self.proc.stdin.flush()
        except OSError:
            self._died()

    def _readable(self) -> None:
        try:
            data = os.read(self._rfd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._died()
            return
        for reply in self._frames.feed(data):
            self._dispatch(reply)

    def _dispatch(self, reply: Reply) -> None:
        match reply:
            case Ready() | Failed():
                self._ready = reply
            case Finished():
                self._finished = reply
            case Committed(offset):
                self._committed = offset
            case _:
                self._on_reply(reply)

    def _wait_ready(self) -> None:
        """Until the worker says it is ready (or failed), or stops making progress: its CPU
        time, read every PROGRESS_S, has not moved for STALL_S."""
        began = last_move = time.monotonic()
        last_cpu = _cpu_ticks(self.proc.pid)
        for _ in range(int(STARTUP_MAX_S / PROGRESS_S) + 1):
            self._pump(lambda: self._ready is not None, PROGRESS_S)
            if self._ready is not None or not self.alive:
                return
            now_s, cpu = time.monotonic(), _cpu_ticks(self.proc.pid)
            if cpu is None:  # no /proc: a fixed limit
                if now_s - began > STARTUP_S:
                    return
            elif cpu != last_cpu:
                last_cpu, last_move = cpu, now_s
            elif now_s - last_move > STALL_S:
                return
            if now_s - began > STARTUP_MAX_S:
                return

    def _pump(self, until: Callable[[], bool], timeout: float) -> None:
        """Blocking wait for replies (startup, shutdown), at most ``timeout`` s."""
        if not self.alive:  # gone already (say, at the first write): its pipes are closed
            return
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self._rfd, selectors.EVENT_READ)
            while self.alive and not until():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if sel.select(left):
                    self._readable()

    def _died(self) -> None:
        if not self.alive:
            return
        self._stop()
        if not self._ending and isinstance(self._ready, Ready):
            self._on_death(self.exit_code)

    def _stop(self, *, wait: bool = True) -> None:
        """Detach from the loop, close our ends (EOF tells the worker to finish) and, with
        ``wait``, reap it; without, it goes on alone (its own session: nothing of ours ends
        it)."""
        self.alive = False
        with contextlib.suppress(ValueError, OSError, RuntimeError):
            self._loop.remove_reader(self._rfd)  # raises when the loop is closed (shutdown)
        if self._journal is not None:
            self._journal.close()
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # a pipe whose reader is gone: nothing left to flush
        if not wait:
            return
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _cpu_ticks(pid: int) -> int | None:
    """The CPU time a process has used (user + system, in clock ticks); None without
    /proc. A process that gets no CPU at all (stopped, or waiting forever) stays put."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
