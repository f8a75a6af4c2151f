"""One capture per session folder: the lock the analysis side holds, and waiting for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.live.lock import SessionBusy, hold_lock, settled


def test_one_writer_per_session_folder_and_readers_wait_for_it(tmp_path: Path) -> None:
    lock = hold_lock(tmp_path)
    with pytest.raises(SessionBusy, match="another capture is writing"):
        hold_lock(tmp_path)
    assert settled(tmp_path, 0.05) is False
    lock.close()
    assert settled(tmp_path, 0.05) is True
    assert settled(tmp_path / "never-captured", 0.05) is True
