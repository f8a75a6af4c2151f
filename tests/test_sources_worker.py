"""The analysis worker as a real child process, driven from a real asyncio loop."""

from __future__ import annotations

import asyncio
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

from auditor.sources.live import Settings, settled
from auditor.sources.worker import HEADER, Frames, Worker, WorkerError, frame
from auditor.store import Store
from tests.factories import http_flow

IMEI = "864536040123455"
PROFILE = f'identifiers: {{imei: "{IMEI}"}}\nfirst_party: [acme-watch.example]\n'


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "p.yaml").write_text(PROFILE)
    return Settings(str(tmp_path / "s"), str(tmp_path / "p.yaml"), marks=True)


def _http(i: int) -> tuple:
    f = http_flow(f"http://api.acme-watch.example/r/{i}", 1000.0 + i, {"imei": IMEI})
    return ("http", i, f.get_state(), None)


@pytest.mark.parametrize("cut", [0, 1, 7, 8, 9, 20])
def test_frames_come_out_whole_however_the_pipe_cuts_them(cut: int) -> None:
    messages = [("log", 1, "a"), ("result", None), ("x" * 300,)]
    data = b"".join(frame(m) for m in messages)
    frames = Frames()
    got = frames.feed(data[:cut]) + frames.feed(data[cut:])
    assert got == messages


def test_a_frame_is_its_length_then_a_pickle() -> None:
    data = frame(("close",))
    (n,) = struct.unpack(">Q", data[:HEADER.size])
    assert n == len(data) - HEADER.size


def _run(coro_fn):
    return asyncio.run(asyncio.wait_for(coro_fn(), timeout=60))


def test_the_worker_analyses_marks_and_writes_the_reports(settings) -> None:
    async def main():
        replies, deaths = [], []
        loop = asyncio.get_running_loop()
        worker = Worker(settings, loop, replies.append, deaths.append)
        assert worker.patterns > 0
        for i in range(1, 6):
            worker.send(_http(i))
        for _ in range(500):  # results come back through the event loop
            if len([r for r in replies if r[0] == "result"]) == 5:
                break
            await asyncio.sleep(0.01)
        finished = worker.finish("en")
        return replies, deaths, finished, worker.proc.returncode

    replies, deaths, finished, code = _run(main)
    results = [r[1] for r in replies if r[0] == "result"]
    assert [r.token for r in results] == [1, 2, 3, 4, 5]
    assert all(r.categories == ("identifier.imei",) for r in results)
    assert finished[0] == "finished" and finished[1] > 0 and code == 0 and deaths == []
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


def test_a_session_the_worker_cannot_open_is_one_clear_error(tmp_path) -> None:
    (tmp_path / "p.yaml").write_text(PROFILE)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    async def main():
        Worker(Settings(str(blocker / "s"), str(tmp_path / "p.yaml")),
               asyncio.get_running_loop(), print, print)

    with pytest.raises(WorkerError, match="kidaudit analysis worker: .*file"):
        _run(main)


def test_when_the_proxy_vanishes_the_worker_commits_everything_it_was_sent(settings) -> None:
    async def main():
        worker = Worker(settings, asyncio.get_running_loop(), lambda r: None, print)
        for i in range(1, 41):
            worker.send(_http(i))
        # The proxy dies: its end of the pipe closes without a word (no finish, no close).
        # Closed through its file object: a bare os.close would leave that object to
        # close the same fd number again when collected, under some later test's pipe.
        worker._loop.remove_reader(worker._rfd)
        worker.proc.stdin.close()
        return worker.proc

    proc = _run(main)
    assert settled(Path(settings.directory), 30)
    proc.wait(timeout=30)
    proc.stdout.close()
    store = Store.open_existing(Path(settings.directory))
    ids = [o.transmission.id for o in store.observations()]
    store.close()
    assert ids == list(range(1, 41))


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


@pytest.mark.parametrize(("behaviour", "gone_before_write"), NOT_PYTHON,
                         ids=["missing", "exits", "exits-before-the-first-write"])
def test_no_python_to_start_the_worker_with_is_told_apart(settings, monkeypatch, tmp_path,
                                                          behaviour, gone_before_write
                                                          ) -> None:
    from auditor.sources import worker
    from auditor.sources.worker import WorkerUnavailable

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

        monkeypatch.setattr(worker.subprocess, "Popen", exited_popen)

    async def main():
        Worker(settings, asyncio.get_running_loop(), print, print)

    with pytest.raises(WorkerUnavailable):
        _run(main)


def test_closing_the_worker_is_not_mistaken_for_its_death(settings) -> None:
    async def main():
        deaths = []
        worker = Worker(settings, asyncio.get_running_loop(), lambda r: None, deaths.append)
        worker.send(_http(1))
        worker.close()
        return deaths, worker.proc.returncode

    assert _run(main) == ([], 0)
    assert settled(Path(settings.directory), 1)  # the lock is free for the next capture


@pytest.mark.parametrize("acks_lost", [False, True])
def test_what_a_dead_worker_had_not_committed_is_sent_again_exactly_once(settings, acks_lost
                                                                         ) -> None:
    """The worker commits 10 messages, then stops (SIGSTOP) with 5 more in its pipe and is
    killed. With ``acks_lost`` it died before saying the 10 were committed (its replies
    are swallowed here): the stand-in's checkpoint tells them apart from the 5."""
    from auditor.sources.live import Inline

    directory = Path(settings.directory)

    def committed() -> int:
        db = sqlite3.connect(directory / "session.sqlite")
        try:
            return db.execute("SELECT COUNT(*) FROM transmissions").fetchone()[0]
        finally:
            db.close()

    async def main():
        stand_in = []

        def take_over(code: int) -> None:
            acked, sent = worker.uncommitted()
            inline = Inline(settings, lambda r: None, resume=True)
            for msg in sent[max(0, inline.core.resumed - acked):]:
                inline.send(msg)
            inline.close()
            stand_in.append((acked, len(sent), inline.core.resumed))

        worker = Worker(settings, asyncio.get_running_loop(), lambda r: None, take_over)
        for i in range(1, 11):
            worker.send(_http(i))
        for _ in range(1000):  # no await: the acks stay in the pipe
            if committed() == 10:
                break
            time.sleep(0.01)
        if acks_lost:  # swallow the replies up to the one saying all 10 are committed
            swallowed, frames = [], Frames()
            for _ in range(1000):
                if ("committed", 10) in swallowed:
                    break
                try:
                    swallowed += frames.feed(os.read(worker._rfd, 1 << 20))
                except BlockingIOError:
                    time.sleep(0.01)
        os.kill(worker.proc.pid, signal.SIGSTOP)
        for i in range(11, 16):
            worker.send(_http(i))
        os.kill(worker.proc.pid, signal.SIGKILL)
        for _ in range(1000):
            if stand_in:
                break
            await asyncio.sleep(0.01)
        return stand_in

    assert _run(main) == [(0, 15, 10) if acks_lost else (10, 5, 10)]
    store = Store.open_existing(directory)
    ids = [o.transmission.id for o in store.observations()]
    store.close()
    assert ids == list(range(1, 16))
    with open(directory / "flows.mitm", "rb") as fh:
        paths = [f.request.path for f in io.FlowReader(fh).stream()]
    assert paths == [f"/r/{i}" for i in range(1, 16)]
