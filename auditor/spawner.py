"""Where the worker processes of ``analyze --jobs`` (``auditor.jobs``) come from, apart
from them because this module is light: the CLI starts the server here before it imports
the analysis modules itself, so the server's own imports (half a second: mitmproxy, the
detectors) run beside the CLI's on the other core instead of after them, and the workers
are ready when the first chunks are (measured in ``bench/analyze_speed.py``).

Processes come from the ``forkserver`` context (``spawn`` where there is none): never a
``fork`` of the parent, which holds the session store's SQLite connection. The server
imports the analysis modules once (``PRELOAD``), so each worker starts by forking it, not
by importing mitmproxy again.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from multiprocessing.context import BaseContext
from pathlib import Path

from auditor.sources.split import CHUNK_BYTES

PRELOAD = ["auditor.jobs"]
MITM_SUFFIXES = (".mitm", ".flows", ".dump")
# Worker processes take a second or two to start: they are started for flow files of more
# than this many chunks, and a smaller capture is analysed in one process (the same outputs).
POOL_CHUNKS = 4


def pooled(mitm_bytes: int, jobs: int, chunk_bytes: int = CHUNK_BYTES) -> bool:
    """Whether ``analyze`` with ``jobs`` processes starts workers for flow files of this
    many bytes."""
    return jobs > 1 and mitm_bytes > POOL_CHUNKS * chunk_bytes


def context() -> BaseContext:
    """The multiprocessing context the workers come from, its server's preload set."""
    try:
        mp = multiprocessing.get_context("forkserver")
        mp.set_forkserver_preload(PRELOAD)
    except ValueError:
        return multiprocessing.get_context("spawn")
    return mp


def start_early(inputs: Iterable[Path], jobs: int) -> bool:
    """The server started now if ``analyze`` of these inputs with ``jobs`` processes will
    start workers (a missing file counts for nothing: ``analyze`` refuses it later).
    Whether it was."""
    size = 0
    for path in inputs:
        if path.suffix.lower() in MITM_SUFFIXES:
            try:
                size += path.stat().st_size
            except OSError:
                continue
    mp = context()
    if not pooled(size, jobs) or mp.get_start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return True
