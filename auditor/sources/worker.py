"""The analysis worker: a child process that runs the live session's ``Core``.

Why a process: mitmproxy serves every connection from one asyncio event loop, so each
millisecond of analysis on that loop is a millisecond added to the device's traffic, and a
thread would still hold the same interpreter lock. The addon hands each message over a pipe
(a pickle, microseconds) and goes on; the worker, at a lower CPU priority than the proxy,
appends to ``flows.mitm``, analyses and commits to SQLite. Nothing on the proxy's side
waits for it, unless it falls more than ``HIGH_WATER`` bytes behind.

Nothing is lost when the proxy dies: what it wrote into the pipe stays there. The worker runs
in its own session (a Ctrl-C or a signal to the proxy's process group does not reach it),
reads to the end of the pipe, commits everything the proxy sent, and exits. Its ``Core``
holds ``DIR/session.lock`` while it writes, and ``auditor.sources.live.settled`` waits for
it, so a report after a crash sees every committed message. When the worker dies, the addon
carries on in-process: each batch the worker commits records how many messages it has
committed (and how long ``flows.mitm`` then was), in the same transaction, so the stand-in
takes over from the last commit and the proxy sends it what came after, each message once.

Frames both ways are an 8-byte big-endian length and a pickle. The pipe is private to the
two processes, which are the same program run by the same user.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
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

from auditor.sources.live import PICKLE, Message, Reply, Settings

HEADER = struct.Struct(">Q")
# mitmproxy type-checks every field of every request it rebuilds, under ``__debug__`` only:
# a tenth of the worker's time per flow, on states mitmproxy itself wrote. (kidaudit's own
# asserts only narrow types; no check of captured input is an assert.)
OPTIMISE = ("-O",)
NICE = 19  # the lowest CPU share: see _step_aside
AUTOGROUP_TRIES = 5
STARTUP_S = 60.0  # the worker imports the pipeline and opens the store
# The worker lets messages gather this long before it reads them: each batch has a cost
# whatever its size (a wake-up on cold caches, a commit, a checkpoint, a flush). Measured
# with bench/proxy_overhead.py's method (40 rounds, 2 CPUs): 5 / 20 / 100 ms gave 1.64 /
# 1.23 / 0.98 ms of worker CPU per request. A live alert comes at most this much later;
# nothing waits on it, and what is in the pipe is committed even if the proxy dies.
GATHER_S = 0.1
HIGH_WATER = 32 * 1024 * 1024  # bytes queued for a worker that has fallen behind: wait
READ_CHUNK = 1 << 20
PIPE_SIZE = 1 << 20  # what an unprivileged process may ask of Linux by default

logger = logging.getLogger("kidaudit")


class WorkerError(Exception):
    """The worker could not start the session (one line, from the worker)."""


class WorkerUnavailable(WorkerError):
    """No worker process could be started at all (for instance a frozen mitmproxy binary,
    whose ``sys.executable`` is not a Python): the addon analyses in-process instead."""


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
    """The proxy's side of the worker: non-blocking sends, replies read by the event loop.

    ``on_reply`` gets every reply (results, log lines); ``on_death`` is called once, with
    the exit code, if the worker goes away before ``finish``/``close``."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop,
                 on_reply: Callable[[Reply], None], on_death: Callable[[int], None]
                 ) -> None:
        self._loop, self._on_reply, self._on_death = loop, on_reply, on_death
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
        os.set_blocking(self._wfd, False)
        os.set_blocking(self._rfd, False)
        with contextlib.suppress(OSError, AttributeError):  # Linux: room for a gathering
            fcntl.fcntl(self._wfd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self._out = bytearray()
        self._frames = Frames()
        self._finished: Reply | None = None
        self._ready: Reply | None = None
        self.alive = True
        self._ending = False  # finish/close sent: the worker's exit is expected, not a death
        # Sent but not yet reported committed: what a stand-in sends again if the worker dies.
        # Kept as the frames written (one bytes object each, which the proxy's garbage
        # collector never walks), not as the messages' dict trees.
        self._sent: collections.deque[bytes] = collections.deque()
        self._acked = 0  # messages the worker reported committed
        self._send_frame(frame(settings))
        self._pump(lambda: self._ready is not None, STARTUP_S)
        if self._ready is None:
            self._stop()
            raise WorkerUnavailable(f"{sys.executable} -m auditor.sources.worker did not "
                                    f"start (exit code {self.proc.returncode})")
        if self._ready[0] != "ready":
            self._stop()
            raise WorkerError(f"kidaudit analysis worker: {self._ready[1]}")
        self.patterns = self._ready[1]
        loop.add_reader(self._rfd, self._readable)

    # -- from the addon ----------------------------------------------------------------
    def send(self, msg: Message) -> None:
        if not self.alive:
            raise WorkerError("the analysis worker is gone")
        data = frame(msg)
        if msg[0] not in ("finish", "close"):
            self._sent.append(data)  # before the write: a write that fails is sent again
        self._send_frame(data)
        if len(self._out) > HIGH_WATER:  # the worker is far behind: let it catch up
            self._pump(lambda: len(self._out) <= HIGH_WATER // 2, None)

    def finish(self, lang: str) -> Reply | None:
        """Write the reports; blocks until the worker is done. None if it died first."""
        if not self.alive:
            return None
        self._ending = True
        self.send(("finish", lang))
        self._pump(lambda: self._finished is not None, None)
        self._stop()
        return self._finished

    @property
    def exit_code(self) -> int:
        """How the worker process ended (negative: the signal that ended it); -1 while it
        has not been reaped."""
        return -1 if self.proc.returncode is None else self.proc.returncode

    def uncommitted(self) -> tuple[int, list[Message]]:
        """How many messages the worker reported committed, and those sent after them (the
        first of which it may have committed without having said so)."""
        return self._acked, [pickle.loads(memoryview(data)[HEADER.size:])
                             for data in self._sent]

    def close(self) -> None:
        if self.alive:
            self._ending = True
            self.send(("close",))
            self._pump(lambda: False, 30.0)  # until the worker closes its end
            self._stop()

    # -- pipe plumbing ------------------------------------------------------------------
    def _send_frame(self, data: bytes) -> None:
        if self._out:
            self._out += data
            return
        try:
            n = os.write(self._wfd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            self._died()
            return
        if n < len(data):
            self._out += data[n:]
            self._loop.add_writer(self._wfd, self._writable)

    def _writable(self) -> None:
        try:
            n = os.write(self._wfd, self._out)
        except BlockingIOError:
            return
        except OSError:
            self._died()
            return
        del self._out[:n]
        if not self._out:
            self._loop.remove_writer(self._wfd)

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
        if kind == "result":
            self._on_reply(reply)
        elif kind in ("ready", "failed"):
            self._ready = reply
        elif kind == "finished":
            self._finished = reply
        elif kind == "committed":
            while self._acked < reply[1] and self._sent:
                self._sent.popleft()
                self._acked += 1
        else:
            self._on_reply(reply)

    def _pump(self, until: Callable[[], bool], timeout: float | None) -> None:
        """Blocking exchange (startup, a full queue, shutdown): write what is queued and
        read replies at once, so neither side can stall on a full pipe."""
        if not self.alive:  # gone already (say, at the first write): its pipes are closed
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self._rfd, selectors.EVENT_READ)
            while self.alive and not until():
                if self._out and self._wfd not in sel.get_map():
                    sel.register(self._wfd, selectors.EVENT_WRITE)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                for key, _ in sel.select(left):
                    if key.fd == self._rfd:
                        self._readable()
                    else:
                        self._writable()
                        if not self._out:
                            sel.unregister(self._wfd)

    def _died(self) -> None:
        if not self.alive:
            return
        self._stop()
        if not self._ending and self._ready is not None and self._ready[0] == "ready":
            self._on_death(self.exit_code)

    def _stop(self) -> None:
        """Detach from the loop, close our ends (EOF tells the worker to finish) and reap."""
        self.alive = False
        for remove, fd in ((self._loop.remove_reader, self._rfd),
                           (self._loop.remove_writer, self._wfd)):
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                remove(fd)  # raises when the loop is closed already (shutdown)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # a pipe whose reader is gone: nothing left to flush
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the worker process ---------------------------------------------------------------

def _read_batch(fd: int, frames: Frames, gather_s: float) -> list | None:
    """Wait for the next message, give the proxy ``gather_s`` to send more, and return all
    that arrived (None at EOF: the proxy is gone and everything it sent has been read)."""
    messages: list = []
    waited = False
    while True:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            if messages and waited:
                return messages
            if messages:  # a batch has begun: let it fill, then take what came
                time.sleep(gather_s)
                waited = True
                continue
            select.select([fd], [], [])
            continue
        if not data:
            return messages or None
        messages += frames.feed(data)


def _step_aside() -> None:
    """The device's traffic first: the worker takes the lowest share of the CPU (nice 19)
    whenever the proxy, the device's client or its servers want it. If the machine is
    saturated the worker falls behind, and past ``HIGH_WATER`` the proxy waits for it:
    analysis is delayed, never dropped.

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
    """Read messages until EOF (the proxy is gone) or ``finish``/``close``."""
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
    os.set_blocking(0, False)
    first = _read_batch(0, frames, 0.0)
    if not first:
        return 2
    try:
        core = Core(first[0], checkpoints=True)
    except (ConfigError, OSError, ValueError, sqlite3.Error) as e:
        reply([("failed", str(e))])
        return 2
    gc.collect()
    gc.freeze()  # the pipeline's tables live as long as we do: never scanned for garbage
    reply([("ready", core.patterns)])
    pending = first[1:]
    try:
        while True:
            if pending:
                reply(core.handle_batch(pending))
                if pending[-1][0] in ("finish", "close"):
                    return 0
            batch = _read_batch(0, frames, GATHER_S)
            if batch is None:
                return 0
            pending = batch
    finally:
        core.close()


if __name__ == "__main__":
    sys.exit(main())
