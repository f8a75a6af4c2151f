"""The analysis worker as a real child process, driven from a real asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sqlite3
import struct
import subprocess
import time
from pathlib import Path

import pytest
from mitmproxy import io

from auditor.live import journal
from auditor.live import worker as worker_module
from auditor.live.core import Core, Inline
from auditor.live.lock import settled
from auditor.live.protocol import (
    Close,
    Detached,
    Finished,
    HttpFlow,
    Log,
    Result,
    Settings,
)
from auditor.live.worker import HEADER, Frames, Worker, WorkerError, WorkerUnavailable, frame
from auditor.store import Store
from tests.factories import IMEI, http_flow


@pytest.fixture
def settings(watch_profile: Path, session_dir: Path) -> Settings:
    """A session judged by the lab's watch profile (``tests/conftest.py``)."""
    return Settings(str(session_dir), str(watch_profile), marks=True)


def _http(i: int) -> HttpFlow:
    f = http_flow(f"http://api.acme-watch.example/r/{i}", 1000.0 + i, {"imei": IMEI})
    return HttpFlow(i, f.get_state())


def _results(replies: list) -> list[Result]:
    return [r for r in replies if isinstance(r, Result)]


@pytest.mark.parametrize("cut", [0, 1, 7, 8, 9, 20])
def test_frames_come_out_whole_however_the_pipe_cuts_them(cut: int) -> None:
    messages = [Log(1, "a"), Result(None, 1), Log(logging.INFO, "x" * 300)]
    data = b"".join(frame(m) for m in messages)
    frames = Frames()
    got = frames.feed(data[:cut]) + frames.feed(data[cut:])
    assert got == messages


def test_a_frame_is_its_length_then_a_pickle() -> None:
    data = frame(Close())
    (n,) = struct.unpack(">Q", data[:HEADER.size])
    assert n == len(data) - HEADER.size


def _run(coro_fn):
    return asyncio.run(asyncio.wait_for(coro_fn(), timeout=60))


@pytest.mark.e2e
def test_the_worker_analyses_marks_and_writes_the_reports(settings) -> None:
    async def main():
        replies, deaths = [], []
        loop = asyncio.get_running_loop()
        worker = Worker(settings, loop, replies.append, deaths.append)
        assert worker.patterns > 0
        for i in range(1, 6):
            worker.send(_http(i))
        for _ in range(500):  # results come back through the event loop
            if len(_results(replies)) == 5:
                break
            await asyncio.sleep(0.01)
        finished = worker.finish("en")
        return replies, deaths, finished, worker.proc.returncode

    replies, deaths, finished, code = _run(main)
    results = _results(replies)
    assert [r.token for r in results] == [1, 2, 3, 4, 5]
    assert all(r.categories == ("identifier.imei",) for r in results)
    assert isinstance(finished, Finished) and finished.findings > 0
    assert code == 0 and deaths == []
    assert (Path(settings.directory) / "report.html").is_file()


def _autogroup(pid: int) -> str | None:
    """``nice N`` of a process's autogroup; None where the kernel keeps no autogroups.

    A process left in the default group (one whose session never began after boot, like
    PID 1's and its children's in a container) reads an empty file, so that is "" here.
    """
    try:
        text = Path(f"/proc/{pid}/autogroup").read_text()
    except OSError:
        return None
    found = re.search(r"nice -?\d+", text)
    return found[0] if found else ""


@pytest.mark.e2e
def test_the_worker_steps_aside_at_nice_19_and_runs_optimised(settings) -> None:
    async def main():
        worker = Worker(settings, asyncio.get_running_loop(), lambda r: None, print)
        try:  # it steps aside before it says it is ready
            argv = Path(f"/proc/{worker.proc.pid}/cmdline").read_bytes().split(b"\0")
            return (os.getpriority(os.PRIO_PROCESS, worker.proc.pid),
                    os.sched_getscheduler(worker.proc.pid), argv[1],
                    _autogroup(worker.proc.pid))
        finally:
            worker.close()

    ours = os.getpriority(os.PRIO_PROCESS, 0)
    # Its own session is its own autogroup, where its own nice would not count against the
    # proxy's: the group is niced too, wherever the kernel has autogroups. A new session always
    # gets a group of its own there, even when the proxy sits in the default one.
    group = "nice 19" if Path("/proc/self/autogroup").exists() else None
    assert _run(main) == (min(19, ours + 19), os.SCHED_OTHER, b"-O", group)


@pytest.mark.e2e
def test_a_session_the_worker_cannot_open_is_one_clear_error(tmp_path, watch_profile
                                                              ) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    async def main():
        Worker(Settings(str(blocker / "s"), str(watch_profile)),
               asyncio.get_running_loop(), print, print)

    with pytest.raises(WorkerError, match="kidaudit analysis worker: .*file"):
        _run(main)


@pytest.mark.e2e
def test_when_the_proxy_vanishes_the_worker_commits_everything_it_was_sent(settings) -> None:
    async def main():
        worker = Worker(settings, asyncio.get_running_loop(), lambda r: None, print)
        for i in range(1, 41):
            worker.send(_http(i))
        # The proxy dies: its end of the pipe closes without a word (no finish, no close).
        worker.detach()
        return worker.proc

    proc = _run(main)
    assert settled(Path(settings.directory), 30)
    proc.wait(timeout=30)
    store = Store.open_existing(Path(settings.directory))
    ids = [o.transmission.id for o in store.observations()]
    store.close()
    assert ids == list(range(1, 41))


@pytest.mark.e2e
def test_a_dead_worker_is_reported_once_with_its_exit_code(settings) -> None:
    async def main():
        deaths = []
        worker = Worker(settings, asyncio.get_running_loop(), lambda r: None, deaths.append)
        worker.proc.send_signal(signal.SIGKILL)
        for _ in range(500):
            if deaths:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(WorkerError):
            worker.send(_http(1))
        return deaths

    assert _run(main) == [-signal.SIGKILL]


# A program that is not Python: missing, or exiting at once - before the settings are
# written to it (the pipe is broken at the first write) or after (EOF on the reply pipe).
NOT_PYTHON = [("missing", False), ("exits", False), ("exits", True)]


@pytest.mark.e2e
@pytest.mark.parametrize(("behaviour", "gone_before_write"), NOT_PYTHON,
                         ids=["missing", "exits", "exits-before-the-first-write"])
def test_no_python_to_start_the_worker_with_is_told_apart(settings, monkeypatch, tmp_path,
                                                          behaviour, gone_before_write
                                                          ) -> None:
    python = tmp_path / "python"
    if behaviour == "exits":
        python.write_text("#!/bin/sh\nexit 1\n")
        python.chmod(0o755)
    monkeypatch.setattr("sys.executable", str(python))  # e.g. a frozen mitmproxy binary
    if gone_before_write:  # the race CI once lost, made certain
        popen = subprocess.Popen

        def exited_popen(*args, **kwargs):
            proc = popen(*args, **kwargs)
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            return proc

        monkeypatch.setattr(worker_module.subprocess, "Popen", exited_popen)

    async def main():
        Worker(settings, asyncio.get_running_loop(), print, print)

    with pytest.raises(WorkerUnavailable):
        _run(main)


@pytest.mark.e2e
def test_closing_the_worker_is_not_mistaken_for_its_death(settings) -> None:
    async def main():
        deaths = []
        worker = Worker(settings, asyncio.get_running_loop(), lambda r: None, deaths.append)
        worker.send(_http(1))
        worker.close()
        return deaths, worker.proc.returncode

    assert _run(main) == ([], 0)
    assert settled(Path(settings.directory), 1)  # the lock is free for the next capture


def _committed(directory: Path) -> int:
    db = sqlite3.connect(directory / "session.sqlite")
    try:
        return db.execute("SELECT COUNT(*) FROM transmissions").fetchone()[0]
    finally:
        db.close()


def _wait_for(predicate, what: str) -> None:
    for _ in range(3000):
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.e2e
def test_what_a_dead_worker_had_not_committed_is_taken_over_once_from_the_journal(settings
                                                                                  ) -> None:
    """The worker commits 10 messages, then stops (SIGSTOP) with 5 more in the journal and
    is killed: the stand-in analyses those 5 from the journal, each once."""
    directory = Path(settings.directory)

    async def main():
        stand_in = []

        def take_over(code: int) -> None:
            inline = Inline(settings, lambda r: None, take_over=True)
            inline.close()
            stand_in.append((code, inline.core.recovered, inline.core.quarantined))

        worker = Worker(settings, asyncio.get_running_loop(), lambda r: None, take_over)
        for i in range(1, 11):
            worker.send(_http(i))
        _wait_for(lambda: _committed(directory) == 10, "10 commits")
        await asyncio.sleep(0.3)  # the worker's last reply read, the worker idle again
        os.kill(worker.proc.pid, signal.SIGSTOP)
        for i in range(11, 16):
            worker.send(_http(i))
        os.kill(worker.proc.pid, signal.SIGKILL)
        for _ in range(1000):
            if stand_in:
                break
            await asyncio.sleep(0.01)
        return stand_in

    assert _run(main) == [(-signal.SIGKILL, 5, 0)]
    store = Store.open_existing(directory)
    ids = [o.transmission.id for o in store.observations()]
    store.close()
    assert ids == list(range(1, 16))
    with open(directory / "flows.mitm", "rb") as fh:
        paths = [f.request.path for f in io.FlowReader(fh).stream()]
    assert paths == [f"/r/{i}" for i in range(1, 16)]


@pytest.mark.e2e
def test_a_stopped_worker_never_stops_the_proxy_and_the_backlog_is_bounded(settings,
                                                                           monkeypatch
                                                                           ) -> None:
    """The worker stopped (a CPU-starved nice 19 one is nearly that): every ``send``
    returns; past the bound, messages are counted instead of kept, and the report says
    how many."""
    directory = Path(settings.directory)
    monkeypatch.setattr(journal, "BACKLOG_MAX", 3 * len(journal.encode(_http(1))))

    async def main():
        replies = []
        worker = Worker(settings, asyncio.get_running_loop(), replies.append, print)
        os.kill(worker.proc.pid, signal.SIGSTOP)
        try:
            for i in range(1, 11):
                worker.send(_http(i))
            stalled = worker.backlog
        finally:
            os.kill(worker.proc.pid, signal.SIGCONT)
        for _ in range(3000):  # until the worker says it caught up
            if worker.backlog == 0:
                break
            await asyncio.sleep(0.01)
        worker.send(_http(11))  # under the bound again: the count goes in first
        finished = worker.finish("en")
        return replies, stalled, finished

    replies, stalled, finished = _run(main)
    assert isinstance(finished, Finished) and stalled > 0
    logged = [r.text for r in replies if isinstance(r, Log)]
    assert len(logged) == 1 and "behind" in logged[0]
    store = Store.open_existing(directory)
    kept = len(store.observations())
    errors = [e["message"] for e in store.errors() if e["stage"] == "backlog"]
    store.close()
    assert len(errors) == 1
    dropped = int(errors[0].split()[0])
    assert dropped > 0 and kept - 1 + dropped == 10


@pytest.mark.e2e
def test_done_waits_with_a_bound_and_leaves_the_rest_to_the_worker(settings, monkeypatch
                                                                   ) -> None:
    directory = Path(settings.directory)
    monkeypatch.setattr(worker_module, "FINISH_S", 0.3)

    async def main():
        worker = Worker(settings, asyncio.get_running_loop(), print, print)
        os.kill(worker.proc.pid, signal.SIGSTOP)
        for i in range(1, 21):
            worker.send(_http(i))
        finished = worker.finish("en")
        os.kill(worker.proc.pid, signal.SIGCONT)  # it goes on alone
        return finished, worker.proc

    finished, proc = _run(main)
    assert finished == Detached(proc.pid, finished.left) and finished.left > 0
    proc.wait(timeout=60)
    assert settled(directory, 30)
    assert _committed(directory) == 20
    assert (directory / "report.html").is_file()


SLOW_START = """#!{python}
import os, sys, time
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    {work}
os.execv({python!r}, [{python!r}, *sys.argv[1:]])
"""


@pytest.mark.e2e
@pytest.mark.parametrize(("work", "starts"), [
    ("pass", True),  # busy for longer than the stall limit: slow but alive
    ("time.sleep(0.05)", False),  # no CPU used: stuck, given up on
])
def test_a_slow_start_is_waited_for_while_it_makes_progress(settings, monkeypatch, tmp_path,
                                                            work, starts) -> None:
    import sys

    monkeypatch.setattr(worker_module, "STALL_S", 1.0)
    monkeypatch.setattr(worker_module, "PROGRESS_S", 0.1)
    python = tmp_path / "slow-python"
    python.write_text(SLOW_START.format(python=sys.executable, seconds=3, work=work))
    python.chmod(0o755)
    monkeypatch.setattr("sys.executable", str(python))

    async def main():
        worker = Worker(settings, asyncio.get_running_loop(), print, print)
        worker.close()
        return worker.patterns

    if starts:
        assert _run(main) > 0
    else:
        with pytest.raises(WorkerUnavailable, match="did not start"):
            _run(main)


@pytest.mark.e2e
def test_a_new_worker_commits_an_earlier_proxys_backlog_without_its_handles(settings
                                                                          ) -> None:
    """Both processes were killed with 5 messages in the journal (``capture --resume``
    follows): the new worker commits them first, and its results carry no handle, since the
    earlier proxy's handles would name this proxy's flows."""
    directory = Path(settings.directory)
    Core(settings).close()
    writer = journal.Writer(directory)
    for i in range(1, 6):
        writer.append(_http(i))
    writer.close()

    async def main():
        replies = []
        worker = Worker(settings, asyncio.get_running_loop(), replies.append, print)
        worker.send(_http(6))
        finished = worker.finish("en")
        return [r.token for r in _results(replies)], finished

    tokens, finished = _run(main)
    assert isinstance(finished, Finished)
    assert tokens == [None] * 5 + [6]
    assert _committed(directory) == 6
