"""The evidence package: ``SEAL.json``, a manifest of every file in a folder, and the check
that the folder still matches it (issue 17, item 5).

A lab signs off a report and the evidence under it (``flows.mitm``, ``session.sqlite``, the
profile and plan, the reports). ``seal`` records, for every file under the folder, its
SHA-256 and size, with the tool's version and the UTC time; ``verify`` recomputes them and
names every file changed, missing or added since. Files are read in chunks (a capture's flow
file can be gigabytes); symbolic links are never followed, only recorded as links with their
target, so a link cannot pull a file from outside the folder into the seal. Anything that
is neither a file, a folder nor a link (a FIFO, a socket) is recorded by its kind and never
opened: opening a FIFO would wait for a writer forever.

Whoever can change the files can also rewrite ``SEAL.json``: ``seal`` prints the seal's own
SHA-256, for the lab's sign-off record kept elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from auditor import __version__

SEAL_FILE = "SEAL.json"
SCHEMA = "kidaudit.seal/1"
CHUNK = 1 << 20  # bytes read at a time
MAX_DEPTH = 64  # folders deeper than this are refused, not walked
FILE, LINK, OTHER = "file", "symlink", "other"


class SealError(ValueError):
    """No seal, or one that is not a kidaudit seal: one line naming the file and the problem."""


@dataclass(frozen=True)
class Entry:
    """One path under the folder: a file (its digest and size), a link (its target, never
    followed) or another kind of node (only its kind)."""

    path: str  # relative, POSIX separators
    kind: str = FILE
    sha256: str = ""
    size: int = 0
    target: str = ""

    def as_json(self) -> dict[str, object]:
        if self.kind == FILE:
            return {"path": self.path, "sha256": self.sha256, "size": self.size}
        if self.kind == LINK:
            return {"path": self.path, "symlink": self.target}
        return {"path": self.path, "other": True}

    def describe(self) -> str:
        if self.kind == FILE:
            return f"{self.size} bytes, sha256 {self.sha256[:12]}"
        return f"symlink to {self.target}" if self.kind == LINK else "not a regular file"


@dataclass(frozen=True)
class Difference:
    change: str  # changed, missing, added
    path: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.change}: {self.path}" + (f" ({self.detail})" if self.detail else "")


def digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def entries(folder: Path) -> list[Entry]:
    """Every file, link and other node under ``folder`` (not ``SEAL.json`` at its top),
    sorted by relative path."""
    out: list[Entry] = []
    stack: list[tuple[Path, tuple[str, ...]]] = [(folder, ())]
    while stack:
        here, parts = stack.pop()
        if len(parts) > MAX_DEPTH:
            raise SealError(f"{here}: folders nested deeper than {MAX_DEPTH} levels")
        with os.scandir(here) as it:
            found = sorted(it, key=lambda e: e.name)
        for e in found:
            rel = (*parts, e.name)
            name = "/".join(rel)
            if not parts and e.name == SEAL_FILE:
                continue
            mode = e.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                out.append(Entry(name, LINK, target=os.readlink(e.path)))
            elif stat.S_ISDIR(mode):
                stack.append((Path(e.path), rel))
            elif stat.S_ISREG(mode):
                sha, size = digest(Path(e.path))
                out.append(Entry(name, FILE, sha, size))
            else:
                out.append(Entry(name, OTHER))
    return sorted(out, key=lambda x: x.path)


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def seal(folder: Path) -> tuple[Path, int, str]:
    """Write ``folder/SEAL.json``; return its path, how many entries it lists, its SHA-256.
    A folder already sealed is refused: sealing it again would hide what changed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SealError(f"{folder}: not a folder")
    target = folder / SEAL_FILE
    if target.exists() or target.is_symlink():
        raise SealError(f"{target}: this folder is already sealed (kidaudit verify {folder} "
                        f"checks it; remove {SEAL_FILE} to seal it again)")
    listed = entries(folder)
    doc = {"schema": SCHEMA, "tool": "kidaudit", "version": __version__,
           "sealed_at": utc_now(), "files": [e.as_json() for e in listed]}
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    tmp = folder / f".{SEAL_FILE}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target, len(listed), hashlib.sha256(text.encode("utf-8")).hexdigest()


def _entry(raw: object, where: str) -> Entry:
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str) or not raw["path"]:
        raise SealError(f"{where}: an entry needs a path")
    path = raw["path"]
    if "symlink" in raw:
        if not isinstance(raw["symlink"], str):
            raise SealError(f"{where} ({path}): symlink is the link's target text")
        return Entry(path, LINK, target=raw["symlink"])
    if raw.get("other") is True:
        return Entry(path, OTHER)
    sha, size = raw.get("sha256"), raw.get("size")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef"
                                                         for c in sha):
        raise SealError(f"{where} ({path}): sha256 is not 64 lower-case hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise SealError(f"{where} ({path}): size is not a byte count")
    return Entry(path, FILE, sha, size)


def load(folder: Path) -> tuple[dict[str, object], list[Entry]]:
    """The seal of ``folder``: its document and entries; ``SealError`` when there is none or
    it is not one."""
    path = Path(folder) / SEAL_FILE
    if not Path(folder).is_dir():
        raise SealError(f"{folder}: not a folder")
    if not path.is_file() or path.is_symlink():
        raise SealError(f"{path}: no seal here (kidaudit seal {folder} writes one)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SealError(f"{path}: is not JSON ({e})") from None
    except RecursionError:
        raise SealError(f"{path}: is not a seal (nested too deeply)") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise SealError(f"{path}: is not a {SCHEMA} document (schema "
                        f"{doc.get('schema') if isinstance(doc, dict) else None!r})")
    files = doc.get("files")
    if not isinstance(files, list):
        raise SealError(f"{path}: files is not a list")
    listed = [_entry(raw, f"{path}: files[{i}]") for i, raw in enumerate(files)]
    seen: set[str] = set()
    for e in listed:
        if e.path in seen:
            raise SealError(f"{path}: {e.path} listed twice")
        seen.add(e.path)
    return doc, listed


def compare(sealed: list[Entry], now: list[Entry]) -> list[Difference]:
    """What differs, sorted by path: each changed, missing or added entry."""
    before = {e.path: e for e in sealed}
    after = {e.path: e for e in now}
    out = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if new is None:
            out.append(Difference("missing", path))
        elif old is None:
            out.append(Difference("added", path, new.describe()))
        elif old != new:
            out.append(Difference("changed", path, f"sealed {old.describe()}, now "
                                                   f"{new.describe()}"))
    return out


def verify(folder: Path) -> tuple[dict[str, object], list[Difference]]:
    """The seal's document and every difference between it and the folder now."""
    doc, sealed = load(folder)
    return doc, compare(sealed, entries(Path(folder)))
