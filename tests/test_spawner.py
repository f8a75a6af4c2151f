"""auditor.spawner: where analyze's workers come from, and when the CLI starts their
server early (only for inputs that will get workers)."""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from auditor.sources.split import CHUNK_BYTES
from auditor.spawner import POOL_CHUNKS, context, pooled, start_early

ENOUGH = POOL_CHUNKS * CHUNK_BYTES + 1


@pytest.mark.parametrize(("size", "jobs", "expected"), [
    (ENOUGH, 2, True), (ENOUGH, 1, False), (ENOUGH - 1, 2, False), (0, 8, False),
    (10 * ENOUGH, 16, True),
])
def test_workers_are_started_for_flow_files_of_more_than_a_few_chunks(
        size: int, jobs: int, expected: bool) -> None:
    assert pooled(size, jobs) is expected


def _preloaded() -> bool:
    """Run in a worker: whether the analysis modules were there before its first task
    (importing this test module does not import them)."""
    return "auditor.jobs" in sys.modules


@pytest.mark.e2e  # worker processes
def test_the_workers_start_with_the_analysis_modules_imported() -> None:
    """A worker of ``context()`` is forked from a server that imported them once (where
    there is no forkserver, it is spawned and starts without them); a spawned process (the
    same probe) starts without them."""
    mp = context()
    with ProcessPoolExecutor(max_workers=1, mp_context=mp) as pool:
        preloaded = pool.submit(_preloaded).result(timeout=60)
    assert preloaded is (mp.get_start_method() == "forkserver")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        assert pool.submit(_preloaded).result(timeout=60) is False


@pytest.mark.parametrize(("files", "jobs", "started"), [
    ({"a.mitm": ENOUGH}, 1, False),
    ({"a.mitm": 1000}, 2, False),
    ({"a.pcap": ENOUGH}, 2, False),  # a pcap is read in this process
    ({"missing.mitm": None}, 2, False),
    pytest.param({"a.flows": ENOUGH // 2, "b.mitm": ENOUGH // 2 + 1}, 2, True,
                 marks=pytest.mark.e2e),  # the server is a process
])
def test_the_server_is_started_early_only_for_inputs_that_get_workers(
        tmp_path: Path, files: dict[str, int | None], jobs: int, started: bool) -> None:
    inputs = []
    for name, size in files.items():
        path = tmp_path / name
        if size is not None:
            with open(path, "wb") as fh:
                fh.truncate(size)  # sparse: the size is what counts
        inputs.append(path)
    assert start_early(inputs, jobs) is started
