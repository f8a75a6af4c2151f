"""A session folder holds one session: the checks made before anything is written to one.

Evidence must never mix. A capture appended to a finished session stretches its window
across both runs and judges the new traffic under the old run's phases and withdrawals; an
analysis written over a live session leaves its old ``flows.mitm`` beside new findings. So
``capture`` and ``analyze`` take only a folder that does not exist yet or is empty, and
``capture --resume`` continues an interrupted capture only with the profile and plan it was
started with (compared by their SHA-256). Every check here only reads: a refused folder is
left exactly as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from auditor.live.lock import LOCK_FILE, settled
from auditor.session import CONSENT_FILE, LIVE_INPUT, PROFILE_FILE, sha256_file
from auditor.store import Store

STORE_FILE = Store.FILE


class FolderError(ValueError):
    """The folder given cannot take this command: one line, the user's to fix (exit 2)."""


def check_new(path: Path, *, option: str, resume_hint: bool = False) -> None:
    """``path`` does not exist yet or is an empty folder."""
    if path.is_symlink():  # never followed: its target's mode is not ours to change
        raise FolderError(f"{path}: is a symbolic link; give {option} the folder it points "
                          "to (or a new one)")
    if path.exists() and not path.is_dir():
        raise FolderError(f"{path}: is a file; {option} needs a new or empty folder")
    holder = _session_above(path)
    if holder is not None:  # e.g. an unmasked copy inside the folder that is sent out
        raise FolderError(f"{path}: is inside the session folder {holder} (a session folder "
                          f"holds one session); give {option} a folder outside it")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if is_running(path):
        raise FolderError(f"{path}: a capture is running on this folder; {option} needs a "
                          "new or empty folder")
    held = "a kidaudit session" if (path / STORE_FILE).is_file() else "other files"
    hint = ("; to continue an interrupted capture there, add --resume" if resume_hint
            and (path / STORE_FILE).is_file() else "")
    raise FolderError(f"{path}: already holds {held} (a session folder holds one session); "
                      f"give {option} a new or empty folder{hint}")


def check_resumable(path: Path, profile: Path, consent: Path | None) -> None:
    """``path`` holds a capture that is not running, started with this profile and plan."""
    if not (path / STORE_FILE).is_file():
        raise FolderError(f"{path}: holds no kidaudit session to resume (no {STORE_FILE})")
    if is_running(path):
        raise FolderError(f"{path}: a capture is still running on this folder; stop it "
                          "before resuming")
    inputs = _meta(path).get("inputs", "")
    if not inputs.startswith(LIVE_INPUT):
        raise FolderError(f"{path}: holds a session made by analyze from {inputs or '?'}; "
                          "--resume only continues a capture")
    for given, name, what in ((profile, PROFILE_FILE, "profile"),
                              (consent, CONSENT_FILE, "consent plan")):
        kept = path / name
        if given is None and not kept.is_file():
            continue
        if given is None:
            raise FolderError(f"{path}: was captured with a consent plan ({name}); resume "
                              f"needs the same one (--consent {kept})")
        if not kept.is_file():
            raise FolderError(f"{given}: {path} was captured without a {what}; resume needs "
                              "the same inputs")
        if sha256_file(given) != sha256_file(kept):
            raise FolderError(f"{given}: differs from the {what} {path} was captured with "
                              f"(sha256 {sha256_file(kept)[:12]}...); resume needs the same "
                              f"{what} ({kept})")


def _session_above(path: Path) -> Path | None:
    """The session folder ``path`` would sit inside, if any."""
    for folder in path.resolve().parents:
        if (folder / STORE_FILE).is_file():
            return folder
    return None


def is_running(path: Path) -> bool:
    """A capture holds ``session.lock`` for as long as it may write to the folder."""
    return (path / LOCK_FILE).exists() and not settled(path, 0.0)


def is_session_of(path: Path, device: str) -> bool:
    """``path`` holds a session of this device (``kidaudit demo`` regenerates only its own)."""
    return (path / STORE_FILE).is_file() and _meta(path).get("device") == device


def _meta(path: Path) -> dict[str, str]:
    """The session's ``meta`` table, read only (a read-only connection creates nothing)."""
    uri = (path / STORE_FILE).resolve().as_uri() + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=10)
        try:
            return dict(db.execute("SELECT key, value FROM meta"))
        finally:
            db.close()
    except sqlite3.Error as e:
        raise FolderError(f"{path / STORE_FILE}: not a readable kidaudit session ({e})"
                          ) from None
