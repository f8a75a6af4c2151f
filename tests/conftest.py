"""Shared pytest configuration for the whole suite: which tests are collected, and the files
many tests write before they start.

Markers (registered in pyproject.toml, which runs with ``--strict-markers``):

- ``e2e``: the test starts real processes or sockets: mitmdump or mitmweb, the analysis
  worker subprocess, ``kidaudit`` as a command, or traffic through a real proxy on loopback.
- ``browser``: the test opens a page in headless chromium.

They are written on the tests, not derived here: the processes are started by helpers
(``tests/proxyrun.py``, ``tests/browser.py``, the worker inside the addon), which no fixture
name shows. A module whose every test is end to end says ``pytestmark = pytest.mark.e2e``; a
mixed one marks each such test. The inner loop is ``pytest -m "not e2e and not browser"``;
``make test`` runs everything. So that the inner loop stays in process, an unmarked test that
starts one of those programs fails at once and says which marker it lacks.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import IMEI_PROFILE_YAML, PLAN_YAML, WATCH_PROFILE_YAML

# The real-sample tests read the shared corpus that lives outside the repository (real
# people's data): collected only when KIDAUDIT_CORPUS names it, so a plain clone shows no
# skips. Set but pointing nowhere, they fail.
collect_ignore = [] if "KIDAUDIT_CORPUS" in os.environ else ["test_watchproto_corpus.py"]

# What an unmarked test may not start, by the program's file name; and ``python -m auditor.*``
# (the analysis worker, the package's own commands).
MARKED_PROGRAMS = {"mitmdump": "e2e", "mitmweb": "e2e", "kidaudit": "e2e", "chromium": "browser"}


def _needs_marker(args: object) -> str | None:
    argv = [str(a) for a in args] if isinstance(args, list | tuple) else str(args).split()
    if not argv:
        return None
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1].startswith("auditor."):
        return "e2e"
    return MARKED_PROGRAMS.get(Path(argv[0]).name)


@pytest.fixture(autouse=True)
def _unmarked_tests_stay_in_process(request: pytest.FixtureRequest,
                                    monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if any(request.node.get_closest_marker(m) for m in ("e2e", "browser")):
        yield
        return
    start = subprocess.Popen.__init__

    def checked(self: subprocess.Popen, args: object, *rest: object, **kw: object) -> None:
        marker = _needs_marker(args)
        if marker is not None:
            pytest.fail(f"{request.node.nodeid} starts {args!r}: mark it "
                        f"@pytest.mark.{marker} (tests/conftest.py)", pytrace=False)
        start(self, args, *rest, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess.Popen, "__init__", checked)
    yield


@pytest.fixture
def imei_profile(tmp_path: Path) -> Path:
    """``tmp_path/p.yaml`` seeding the IMEI alone: the least profile that makes a finding."""
    path = tmp_path / "p.yaml"
    path.write_text(IMEI_PROFILE_YAML)
    return path


@pytest.fixture
def watch_profile(tmp_path: Path) -> Path:
    """``tmp_path/profile.yaml``: the IMEI and the maker as first party (a lab's profile)."""
    path = tmp_path / "profile.yaml"
    path.write_text(WATCH_PROFILE_YAML)
    return path


@pytest.fixture
def consent_plan(tmp_path: Path) -> Path:
    """``tmp_path/plan.yaml``: identifiers disclosed to the maker, granted by its agree page."""
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN_YAML)
    return path


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    """Where a session goes, not made yet: the store makes it, private, as a capture does."""
    return tmp_path / "s"
