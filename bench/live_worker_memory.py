"""Peak memory of the live analysis worker over a long session (issue 16 item 1: the same
bound, <= 250 MB, at 20,000 and at 500,000 small messages).

The real worker process is started as the addon starts it (``python -O -m
auditor.live.process``, settings on its control pipe) and fed through the real journal, as
the proxy feeds it: small HTTP check-ins carrying the seeded IMEI and a position that moves
every message, to the maker, a tracker SDK and a map service, a few seconds apart, with a
consent plan that limits how often the position may be sent (so EXCESS_FREQUENCY and
CROSS_SERVICE_LINKING keep hitting, as in a soak). Every few thousand messages the
worker's resident set is read from ``/proc/PID/status``; its peak (``VmHWM``) is read after
the last message is committed, and then, after ``Finish`` (the worker writes the reports, as
at the end of a capture, and exits), its peak over its whole life from the kernel's rusage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mitmproxy import http
from mitmproxy.test import tflow

from auditor.live import journal
from auditor.live.protocol import Committed, Finish, HttpFlow, Ready, Settings
from auditor.live.worker import OPTIMISE, PROCESS, Frames, frame
from bench.analyze_memory import IMEI, PROFILE

PLAN = """limits:
  min_interval_s: {location.precise: 30}
"""
HOSTS = ("api.acme-watch.example", "api.acme-watch.example", "log.tracker.example",
         "restapi.amap.com")
TARGET_MB = 250
T0 = 1_790_000_000.0
STEP_S = 5.0  # seconds between messages on the device's clock
BACKLOG = 32 << 20  # journal bytes fed ahead of the worker's commits, at most
SAMPLES = 10  # resident-set readings over the run
WAIT_S = 3600.0  # the longest a run waits for the worker (a bound, not an expectation)


def _states(messages: int):
    """One flow state per message: a fresh id, host, body and time each."""
    template = tflow.tflow(resp=True)
    for n in range(messages):
        f = template.copy()
        f.id = str(uuid.uuid4())
        host = HOSTS[n % len(HOSTS)]
        body = json.dumps({"imei": IMEI, "seq": n, "lat": f"{39.9 + (n % 997) * 1e-4:.5f}",
                           "lon": f"{116.3 + (n % 991) * 1e-4:.5f}", "battery": n % 100}
                          ).encode()
        f.request = http.Request.make("POST", f"http://{host}/v1/report?n={n}", body,
                                      {"content-type": "application/json"})
        f.request.timestamp_start = f.request.timestamp_end = T0 + n * STEP_S
        yield f.get_state()


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class _Replies:
    """The worker's replies, read without blocking; the last committed offset."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.fd = proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.frames = Frames()
        self.committed = -1
        self.ready: object = None

    def pump(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                return
            if not data:
                raise RuntimeError("the worker exited")
            for reply in self.frames.feed(data):
                if isinstance(reply, Committed):
                    self.committed = reply.offset
                elif self.ready is None:
                    self.ready = reply


def _wait(replies: _Replies, until, deadline: float) -> None:
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not keep up within the bench's time bound")
        replies.pump()
        time.sleep(0.02)


def _reap(proc: subprocess.Popen, deadline: float) -> int:
    """Wait for the worker to exit (it writes the reports on Finish) and return its peak RSS
    over its whole life in KB, from the kernel's rusage of the child."""
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_maxrss  # Linux: kilobytes
        time.sleep(0.05)
    raise TimeoutError("the worker did not write its reports within the bench's time bound")


def compare(small: int = 20_000, large: int = 500_000) -> dict:
    """A short and a long run of the real worker: the bound is met when both peaks, the end
    reports included, are within it (memory that follows the messages would not be)."""
    runs = [run(small), run(large)]
    return {
        "title": "Peak memory of the live analysis worker, a short and a long soak",
        "messages": [small, large],
        "peak_rss_mb": [r["peak_rss_mb"] for r in runs],
        "peak_rss_with_reports_mb": [r["peak_rss_with_reports_mb"] for r in runs],
        "messages_per_s": [r["messages_per_s"] for r in runs],
        "growth_kb_per_message": [r["growth_kb_per_message"] for r in runs],
        "target": runs[0]["target"],
        "target_met": all(r["target_met"] for r in runs),
        "notes": runs[0]["notes"],
    }


def run(messages: int = 20_000) -> dict:
    """Feed ``messages`` messages to a real worker; its peak RSS and how its RSS moved."""
    with tempfile.TemporaryDirectory(prefix="kidaudit-bench-live-") as tmp:
        work = Path(tmp)
        (work / "p.yaml").write_text(PROFILE)
        (work / "plan.yaml").write_text(PLAN)
        session = work / "s"
        session.mkdir(mode=0o700)
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
        proc = subprocess.Popen([sys.executable, *OPTIMISE, "-m", PROCESS],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        replies = _Replies(proc)
        deadline = time.monotonic() + WAIT_S
        try:
            proc.stdin.write(frame(Settings(str(session), str(work / "p.yaml"),
                                            str(work / "plan.yaml"), marks=False)))
            proc.stdin.flush()
            _wait(replies, lambda: replies.ready is not None, deadline)
            if not isinstance(replies.ready, Ready):
                raise RuntimeError(f"the worker did not start: {replies.ready}")
            start = _status(proc.pid)
            writer = journal.Writer(session)
            samples: list[tuple[int, int]] = []
            every = max(1, messages // SAMPLES)
            t0 = time.perf_counter()
            for n, state in enumerate(_states(messages), 1):
                end = writer.append(HttpFlow(n, state))
                if end - max(replies.committed, 0) > BACKLOG:
                    _wait(replies, lambda e=end: e - replies.committed <= BACKLOG // 2,
                          deadline)
                if n % every == 0:
                    replies.pump()
                    samples.append((n, _status(proc.pid)["VmRSS"]))
            _wait(replies, lambda: replies.committed >= writer.end, deadline)
            wall = time.perf_counter() - t0
            writer.close()
            final = _status(proc.pid)
            proc.stdin.write(frame(Finish("en")))  # as at the end of a capture
            proc.stdin.close()
            closing = time.perf_counter()
            with_reports = _reap(proc, deadline) / 1024  # the reports are written at Finish
            reports_s = time.perf_counter() - closing
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    peak = final["VmHWM"] / 1024
    return {
        "title": "Peak memory of the live analysis worker",
        "messages": messages, "worker_wall_s": round(wall, 1),
        "messages_per_s": round(messages / wall) if wall else 0,
        "rss_after_start_mb": round(start["VmRSS"] / 1024, 1),
        "rss_mb_by_messages": {str(n): round(kb / 1024, 1) for n, kb in samples},
        "rss_end_mb": round(final["VmRSS"] / 1024, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_rss_with_reports_mb": round(with_reports, 1),
        "reports_s": round(reports_s, 1),
        "growth_kb_per_message": round((final["VmRSS"] - start["VmRSS"]) / messages, 3),
        "target": f"<= {TARGET_MB} MB, the same at 20,000 and at 500,000 messages",
        "target_met": max(peak, with_reports) <= TARGET_MB,
        "notes": ["small JSON check-ins (seeded IMEI, a position moving every message) to "
                  "the maker, a tracker and a map service, 5 s apart, with a plan limiting "
                  "the position to once in 30 s; fed through the journal as the proxy does"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--compare", type=int, metavar="LARGE", default=0,
                        help="run --messages and then LARGE messages, and compare")
    args = parser.parse_args()
    print(json.dumps(compare(args.messages, args.compare) if args.compare
                     else run(args.messages), indent=2))
