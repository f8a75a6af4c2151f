"""One capture per session folder: the lock the analysis side holds while it writes.

Held by the ``Core`` (``auditor.live.core``) for as long as it may write to the folder, so
a second capture is refused, and readers (``kidaudit report``, ``analyze DIR/flows.mitm``)
can wait for a crashed proxy's worker to finish before they read. Kept apart from the core
so those readers check it without importing the pipeline.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO

from auditor.store import private_dir

LOCK_FILE = "session.lock"


class SessionBusy(OSError):
    """The session folder is being written by another capture."""


def hold_lock(directory: Path) -> IO[str]:
    """The folder's lock, held until the returned file is closed; ``SessionBusy`` if
    another process holds it."""
    private_dir(directory)
    fh = open(directory / LOCK_FILE, "a")  # noqa: SIM115 - released by the caller's close
    os.chmod(directory / LOCK_FILE, 0o600)
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise SessionBusy(f"{directory}: another capture is writing to this session "
                          "folder") from None
    return fh


def settled(directory: Path, timeout: float) -> bool:
    """Wait (at most ``timeout`` s) until no worker is writing to the session folder; False
    if one still is (a capture is running)."""
    path = Path(directory) / LOCK_FILE
    if not path.exists():
        return True
    deadline = time.monotonic() + timeout
    with open(path) as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.02)
