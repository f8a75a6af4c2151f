"""``kidaudit seal`` and ``verify`` on real folders: intact, a byte changed, a file added or
removed, links recorded not followed, a malformed or missing seal."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor import seal as sealing
from auditor.cli import app
from auditor.seal import SEAL_FILE, SealError

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A small session-like folder: files at the top, a nested one, an empty one."""
    d = tmp_path / "session"
    (d / "reports" / "zh").mkdir(parents=True)
    (d / "findings.json").write_text('{"findings": []}\n')
    (d / "flows.mitm").write_bytes(bytes(range(256)) * 9000)  # past one read chunk
    (d / "reports" / "zh" / "report.html").write_text("<p>报告</p>", encoding="utf-8")
    (d / "empty").write_bytes(b"")
    return d


def test_seal_lists_every_file_sorted_with_its_digest(folder):
    path, count, sha = sealing.seal(folder)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["schema"] == "kidaudit.seal/1" and doc["version"] and doc["sealed_at"][-1] == "Z"
    assert [f["path"] for f in doc["files"]] == [
        "empty", "findings.json", "flows.mitm", "reports/zh/report.html"]
    flows = next(f for f in doc["files"] if f["path"] == "flows.mitm")
    data = (folder / "flows.mitm").read_bytes()
    assert flows == {"path": "flows.mitm", "sha256": hashlib.sha256(data).hexdigest(),
                     "size": len(data)}
    assert count == 4 and sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sealing.verify(folder)[1] == []


@pytest.mark.parametrize("change, expected", [
    (lambda d: (d / "flows.mitm").write_bytes(
        (d / "flows.mitm").read_bytes()[:-1] + b"\x00"), [("changed", "flows.mitm")]),
    (lambda d: (d / "reports" / "extra.csv").write_text("a"), [("added", "reports/extra.csv")]),
    (lambda d: (d / "findings.json").unlink(), [("missing", "findings.json")]),
    (lambda d: (d / "empty").rename(d / "empty2"), [("missing", "empty"), ("added", "empty2")]),
    (lambda d: (d / "reports" / "zh" / "report.html").chmod(0o600), []),  # content only
])
def test_verify_names_each_difference(folder, change, expected):
    sealing.seal(folder)
    change(folder)
    _, differences = sealing.verify(folder)
    assert [(d.change, d.path) for d in differences] == expected


def test_links_are_recorded_not_followed(folder, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    os.symlink(outside, folder / "link")
    os.symlink(tmp_path, folder / "dirlink")
    os.mkfifo(folder / "fifo")  # opening it would wait for a writer forever
    sealing.seal(folder)
    doc = json.loads((folder / SEAL_FILE).read_text())
    by_path = {f["path"]: f for f in doc["files"]}
    assert by_path["link"] == {"path": "link", "symlink": str(outside)}
    assert by_path["dirlink"] == {"path": "dirlink", "symlink": str(tmp_path)}
    assert by_path["fifo"] == {"path": "fifo", "other": True}
    assert not any(p.startswith("dirlink/") for p in by_path)
    outside.write_text("changed outside")  # not the folder's content
    assert sealing.verify(folder)[1] == []
    (folder / "link").unlink()
    os.symlink(folder / "empty", folder / "link")
    assert [d.change for d in sealing.verify(folder)[1]] == ["changed"]


@pytest.mark.parametrize("seal_text, words", [
    (None, "no seal here"),
    ("{", "is not JSON"),
    ('{"schema": "other/1", "files": []}', "is not a kidaudit.seal/1 document"),
    ('{"schema": "kidaudit.seal/1", "files": {}}', "files is not a list"),
    ('{"schema": "kidaudit.seal/1", "files": [{"path": "a", "sha256": "xyz", "size": 1}]}',
     "files[0] (a): sha256 is not 64 lower-case hex digits"),
    ('{"schema": "kidaudit.seal/1", "files": [{"path": "a", "sha256": "' + "0" * 64
     + '", "size": -1}]}', "size is not a byte count"),
    ('{"schema": "kidaudit.seal/1", "files": [{"size": 1}]}', "an entry needs a path"),
    ('[' * 100_000, "nested too deeply"),
])
def test_a_missing_or_malformed_seal_is_refused(folder, seal_text, words):
    if seal_text is not None:
        (folder / SEAL_FILE).write_text(seal_text)
    with pytest.raises(SealError) as e:
        sealing.verify(folder)
    assert words in str(e.value) and str(folder / SEAL_FILE) in str(e.value)


# -- the commands ---------------------------------------------------------------------------

def test_cli_seal_then_verify_intact_then_changed(folder):
    sealed = runner.invoke(app, ["seal", str(folder)])
    assert sealed.exit_code == 0 and "sealed 4 files" in sealed.output
    intact = runner.invoke(app, ["verify", str(folder)])
    assert intact.exit_code == 0 and intact.stdout.startswith("intact: ")
    (folder / "findings.json").write_text('{"findings": [1]}\n')
    (folder / "new.txt").write_text("x")
    changed = runner.invoke(app, ["verify", str(folder)])
    assert changed.exit_code == 1
    before, after = (hashlib.sha256(b).hexdigest()[:12]
                     for b in (b'{"findings": []}\n', b'{"findings": [1]}\n'))
    assert changed.stdout.splitlines() == [
        f"changed: findings.json (sealed 17 bytes, sha256 {before}, now 18 bytes, "
        f"sha256 {after})",
        f"added: new.txt (1 bytes, sha256 {hashlib.sha256(b'x').hexdigest()[:12]})"]
    assert "2 differences" in changed.stderr


def test_cli_refuses_to_seal_a_running_capture(folder):
    from auditor.live.lock import hold_lock

    lock = hold_lock(folder)  # what a running capture holds
    try:
        result = runner.invoke(app, ["seal", str(folder)])
    finally:
        lock.close()
    assert result.exit_code == 2 and "a capture is still writing" in result.output
    assert not (folder / SEAL_FILE).exists()


@pytest.mark.parametrize("command, target, words", [
    ("seal", "missing", "not a folder"),
    ("seal", "file", "not a folder"),
    ("seal", "sealed", "already sealed"),
    ("verify", "folder", "no seal here"),
    ("verify", "missing", "not a folder"),
])
def test_cli_refusals_exit_2(folder, tmp_path, command, target, words):
    (tmp_path / "file").write_text("x")
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    (sealed / SEAL_FILE).write_text("{}")
    path = {"missing": tmp_path / "nope", "file": tmp_path / "file", "sealed": sealed,
            "folder": folder}[target]
    result = runner.invoke(app, [command, str(path)])
    assert result.exit_code == 2 and words in result.output
    assert (sealed / SEAL_FILE).read_text() == "{}"
