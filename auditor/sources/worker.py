"""The analysis worker: a child process that runs the live session's ``Core``.

Why a process: mitmproxy serves every connection from one asyncio event loop, so each
millisecond of analysis on that loop is a millisecond added to the device's traffic, and a
thread would still hold the same interpreter lock. The addon appends each message to the
session's journal (``auditor.sources.journal``: a pickle and one ``os.write``) and goes on;
the worker, at a lower CPU priority than the proxy, reads the journal behind it, appends to
``flows.mitm``, analyses and commits to SQLite. Nothing on the proxy's side ever waits for
it: a worker that falls behind leaves a backlog on disk, not in the proxy's memory.

Nothing the proxy finished is lost: once ``os.write`` returns, the message is in the
kernel's page cache, which survives a kill of both processes. The worker runs in its own
session (a Ctrl-C or a signal to the proxy's process group does not reach it); when the
proxy goes, it reads the journal to its end, commits, and exits. Its ``Core`` holds
``DIR/session.lock`` while it writes, and ``auditor.sources.live.settled`` waits for it;
whatever is still uncommitted after that (both killed) is analysed by the next ``Core`` to
open the folder (``live.recover`` for ``kidaudit report``). Each commit records how far into
the journal it got, so when the worker dies the addon's stand-in takes over from there,
each message once, and quarantines the message the worker died on.

A pipe carries what is not traffic: the settings, ``finish`` and ``close`` to the worker
(its end of file means the proxy is gone), and replies back (results, log lines, commits).
Frames there are an 8-byte big-endian length and a pickle. The pipe and the journal are
private to the two processes, which are the same program run by the same user.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import select
import selectors
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from auditor.sources import journal
from auditor.sources.live import PICKLE, Message, Reply, Settings

HEADER = struct.Struct(">Q")
# mitmproxy type-checks every field of every request it rebuilds, under ``__debug__`` only:
# a tenth of the worker's time per flow, on states mitmproxy itself wrote. (kidaudit's own
# asserts only narrow types; no check of captured input is an assert.)
OPTIMISE = ("-O",)
NICE = 19  # the lowest CPU share: see _step_aside
AUTOGROUP_TRIES = 5
# Starting can take long (the first run compiles the bytecode; a profile with thousands of
# contacts builds many patterns), so a start is not timed as a whole: the worker is given
# up on only when it used no CPU for STALL_S (stopped, or stuck waiting), or after
# STARTUP_MAX_S in all. Where /proc cannot tell its CPU time, STARTUP_S is the limit.
STARTUP_S = 60.0
STALL_S = 30.0
STARTUP_MAX_S = 1800.0
PROGRESS_S = 1.0  # how often a starting worker's CPU time is read
# The worker lets messages gather this long before it reads them: each batch has a cost
# whatever its size (a wake-up on cold caches, a commit, a checkpoint, a flush). Measured
# with bench/proxy_overhead.py's method (40 rounds, 2 CPUs): 5 / 20 / 100 ms gave 1.64 /
# 1.23 / 0.98 ms of worker CPU per request. A live alert comes at most this much later;
# nothing waits on it, and what is in the journal is committed even if the proxy dies.
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
                [sys.executable, *OPTIMISE, "-m", "auditor.sources.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as e:
            raise WorkerUnavailable(f"cannot start {sys.executable}: {e}") from e
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._wfd, self._rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self._rfd, False)
        self._frames = Frames()
        self._finished: Reply | None = None
        self._ready: Reply | None = None
        self.alive = True
        self._ending = False  # finish/close sent: the worker's exit is expected, not a death
        self._journal: journal.Writer | None = None
        self._control(settings)
        self._wait_ready()
        if self._ready is None:  # exited, or stalled: a stalled one is ended here
            with contextlib.suppress(OSError):
                self.proc.kill()
            self._stop()
            raise WorkerUnavailable(f"{sys.executable} -m auditor.sources.worker did not "
                                    f"start (exit code {self.proc.returncode})")
        if self._ready[0] != "ready":
            self._stop()
            raise WorkerError(f"kidaudit analysis worker: {self._ready[1]}")
        self.patterns, self._committed = self._ready[1], self._ready[2]
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
                self._journal.append(("error", "backlog", self._dropped_text()))
                self._dropped = 0
            self._journal.append(msg)
        except OSError as e:
            raise JournalFailed(f"{self.directory / journal.JOURNAL_FILE}: {e}") from e

    def _drop(self) -> None:
        if not self._dropped:
            self._on_reply(("log", logging.ERROR, "kidaudit: the analysis worker is more than "
                            f"{journal.BACKLOG_MAX >> 30} GB behind: traffic passes, but is "
                            "not recorded until it catches up (the report counts it)"))
        self._dropped += 1

    def _dropped_text(self) -> str:
        return (f"{self._dropped} messages passed but were not recorded: the analysis worker "
                f"had fallen more than {journal.BACKLOG_MAX >> 30} GB behind")

    def finish(self, lang: str) -> Reply | None:
        """Write the reports. Waits at most ``FINISH_S``: then the worker is left to finish
        alone and the reply is ``("detached", pid, backlog bytes)``. None if it died first."""
        if not self.alive:
            return None
        self._ending = True
        self._control(("finish", lang))
        self._pump(lambda: self._finished is not None, FINISH_S)
        if self._finished is None and self.alive:
            left = self.backlog
            self._stop(wait=False)
            return ("detached", self.proc.pid, left)
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
            self._control(("close",))
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
        kind = reply[0]
        if kind in ("ready", "failed"):
            self._ready = reply
        elif kind == "finished":
            self._finished = reply
        elif kind == "committed":
            self._committed = reply[1]
        else:
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
        if not self._ending and self._ready is not None and self._ready[0] == "ready":
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


# -- the worker process ---------------------------------------------------------------

def _control(fd: int, frames: Frames, timeout: float) -> list | None:
    """Control messages that arrived within ``timeout`` ([] if none; None at EOF: the proxy
    is gone)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return []
    try:
        data = os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return []
    if not data:
        return None
    return frames.feed(data)


def _step_aside() -> None:
    """The device's traffic first: the worker takes the lowest share of the CPU (nice 19)
    whenever the proxy, the device's client or its servers want it. If the machine is
    saturated the worker falls behind, and the backlog waits in the journal, on disk:
    analysis is delayed, never dropped (up to ``journal.BACKLOG_MAX``).

    Nice 19 is set twice. Linux with autogroups (``/proc/sys/kernel/sched_autogroup_enabled``,
    on by default in Debian's and most desktop kernels) shares the CPU first between groups,
    one per session, and applies a process's nice value only inside its group. The worker
    has its own session (see the module's docstring), so its own nice alone leaves it an
    equal share with the proxy's whole group. Its group's nice, in ``/proc/self/autogroup``,
    is what steps it aside; any user may raise it. Measured on a 2-CPU machine
    (``bench/proxy_overhead.py``'s method, 40 rounds): the proxy's throughput ratio went from
    0.85 to 0.92 with the same worker CPU per request.

    Not ``SCHED_IDLE``, though it sounds like the better fit: measured on a 2-CPU machine
    (before the group's nice was set, so with the same handicap as nice 19 then), it added
    about 2 ms to the proxy's p99 latency where nice 19 added well under 1 ms.
    Linux counts a CPU that runs only idle-policy tasks as idle when it places a waking
    task, which likely puts the proxy and its peers onto the worker's CPU and caches."""
    with contextlib.suppress(OSError):
        os.nice(NICE)
    for _ in range(AUTOGROUP_TRIES):
        try:
            Path("/proc/self/autogroup").write_text(str(NICE))
            return
        except BlockingIOError:  # Linux allows a user one such change per 100 ms, system-wide
            time.sleep(0.11)
        except OSError:  # no autogroups (or no /proc): the process's own nice holds
            return


def main() -> int:
    """Read the journal until EOF on the control pipe (the proxy is gone) or ``finish`` /
    ``close``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the proxy decides when we stop
    os.umask(0o077)  # everything it writes holds personal data: the lab's user's alone
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by accident goes to stderr, not into the protocol
    _step_aside()

    from auditor.profile import ConfigError
    from auditor.sources.live import Core

    def reply(items: list) -> None:
        nonlocal proxy_gone
        if proxy_gone or not items:
            return
        try:
            replies.write(b"".join(frame(item) for item in items))
            replies.flush()
        except BrokenPipeError:
            proxy_gone = True  # keep committing what the proxy sent before it went

    proxy_gone = False
    frames = Frames()
    first = _control(0, frames, STARTUP_MAX_S)
    if not first:
        return 2
    try:
        core = Core(first[0], replay=False)  # the backlog is read below, after "ready"
    except (ConfigError, OSError, ValueError, sqlite3.Error) as e:
        reply([("failed", str(e))])
        return 2
    gc.collect()
    gc.freeze()  # the pipeline's tables live as long as we do: never scanned for garbage
    reply([("ready", core.patterns, core.journal_offset)])
    try:
        return _serve(core, frames, first[1:], reply)
    finally:
        core.close()


def _serve(core, frames: Frames, pending: list, reply: Callable[[list], None]) -> int:
    """Every GATHER_S: commit what the journal gained; at ``finish``, ``close`` or EOF,
    commit it to its end first (the proxy wrote every record before it said so). Runs for
    as long as the proxy does; each step is bounded by the journal's length when it began.
    While nothing comes, it looks less often (up to IDLE_S): an idle worker costs nothing."""
    wait = GATHER_S
    while True:
        control = pending or _control(0, frames, wait)
        pending = []
        wait = min(wait * 2, IDLE_S)
        for records in journal.records(core.journal_path, core.journal_offset):
            reply(core.handle_records(records))
            wait = GATHER_S
        if control is None:
            return 0
        for msg in control:
            if msg[0] in ("finish", "close"):
                reply(core.handle(msg))
                return 0


if __name__ == "__main__":
    sys.exit(main())
