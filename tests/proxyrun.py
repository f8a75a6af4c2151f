"""Real mitmproxy for tests: an in-process DumpMaster with the kidaudit addon on 127.0.0.1,
routed to the demo's local cloud; and a line reader for mitmproxy subprocesses. Bounded in
time; loopback only."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from auditor.demo.devices import Proxy
from auditor.demo.run import run_through_proxy


def run_proxy_session(tmp: Path, profile: Path, session: Path,
                      drive: Callable[[Proxy], object], consent: Path | None = None) -> object:
    """Start cloud + proxy, run ``drive(proxy)`` in a thread, shut down; return its result."""
    settings = {"kidaudit_profile": str(profile), "kidaudit_session": str(session)}
    if consent is not None:
        settings["kidaudit_consent"] = str(consent)
    return run_through_proxy(tmp / "mitmproxy-conf", settings, drive, timeout=60)


def wait_for_line(proc: subprocess.Popen, pattern: str, seconds: float = 20) -> re.Match:
    """The first line of ``proc``'s output matching ``pattern``, within ``seconds``."""
    deadline = time.monotonic() + seconds
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.search(pattern, line)
        if m:
            return m
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no line matching {pattern!r} within {seconds} s")


def listening_port(proc: subprocess.Popen) -> int:
    """The port a mitmproxy subprocess started with ``--listen-port 0`` reports."""
    return int(wait_for_line(proc, r"proxy listening at .*:(\d+)").group(1))
