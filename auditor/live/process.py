"""The analysis worker process: ``python -O -m auditor.live.process``, started by the addon.

It reads its settings from the control pipe (stdin), opens the session's ``Core``, says it
is ready, then commits what the journal gains, batch by batch, until ``Finish``, ``Close``
or the end of the pipe (the proxy is gone: it commits the journal to its end first).
Replies go back on stdout as frames (``auditor.live.worker.frame``). Why a process, and
how the two ends meet: see ``auditor.live.worker``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

from auditor.live import journal
from auditor.live.protocol import ENDING, Failed, Ready, Reply
from auditor.live.worker import GATHER_S, IDLE_S, READ_CHUNK, STARTUP_MAX_S, Frames, frame

NICE = 19  # the lowest CPU share: see _step_aside
AUTOGROUP_TRIES = 5


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
    has its own session (see ``auditor.live.worker``), so its own nice alone leaves it an
    equal share with the proxy's whole group. Its group's nice, in ``/proc/self/autogroup``,
    is what steps it aside; any user may raise it, and the proxy's throughput shows it
    (``bench/proxy_overhead.py``'s ratio).

    Not ``SCHED_IDLE``, though it sounds like the better fit: it added more to the proxy's
    p99 latency than nice 19 did. Linux counts a CPU that runs only idle-policy tasks as
    idle when it places a waking task, which likely puts the proxy and its peers onto the
    worker's CPU and caches."""
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
    """Read the journal until EOF on the control pipe (the proxy is gone) or ``Finish`` /
    ``Close``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the proxy decides when we stop
    os.umask(0o077)  # everything it writes holds personal data: the lab's user's alone
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by accident goes to stderr, not into the protocol
    _step_aside()

    from auditor.live.core import Core
    from auditor.profile import ConfigError

    def reply(items: list[Reply]) -> None:
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
        core = Core(first[0], replay=False)  # the backlog is read below, after Ready
    except (ConfigError, OSError, ValueError, sqlite3.Error) as e:
        reply([Failed(str(e))])
        return 2
    gc.collect()
    gc.freeze()  # the pipeline's tables live as long as we do: never scanned for garbage
    reply([Ready(core.patterns, core.journal_offset)])
    try:
        return _serve(core, frames, first[1:], reply)
    finally:
        core.close()


def _serve(core, frames: Frames, pending: list, reply: Callable[[list[Reply]], None]) -> int:
    """Every GATHER_S: commit what the journal gained; at ``Finish``, ``Close`` or EOF,
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
            if isinstance(msg, ENDING):
                reply(core.handle(msg))
                return 0


if __name__ == "__main__":
    sys.exit(main())
