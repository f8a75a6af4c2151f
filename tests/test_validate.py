"""auditor/validate: the shipped method-validation suite meets its targets, and the runner
scores the way the table says."""

from __future__ import annotations

import gzip
import json

import pytest

from auditor.model import Detection
from auditor.validate import ValidationReport, format_report, load_suite, run_suite
from auditor.validate.runner import TARGET_PRECISION, TARGET_RECALL, score_case
from tools import build_suite

PRECISION, RECALL = 0.98, 0.95  # issue #3; the runner's constants must not drift below


@pytest.fixture(scope="module")
def report() -> ValidationReport:
    return run_suite()


def test_targets_are_met(report: ValidationReport) -> None:
    assert (TARGET_PRECISION, TARGET_RECALL) == (PRECISION, RECALL)
    assert report.total.precision >= PRECISION, report.misses
    assert report.total.recall >= RECALL, report.misses
    assert report.targets_met
    assert "targets (precision >= 0.98, recall >= 0.95" in format_report(report, "x")


def test_no_detection_at_all_on_negative_cases(report: ValidationReport) -> None:
    assert report.negatives_hit == []


def test_suite_has_many_negatives_and_every_category(report: ValidationReport) -> None:
    suite = load_suite()
    expected = {e["category"] for c in suite["cases"] for e in c["expect"]}
    assert report.negatives >= 100
    assert expected == set(report.by_category)


def test_table_lists_every_category_and_encoding_and_the_version(report: ValidationReport
                                                                  ) -> None:
    table = format_report(report, "9.9.9")
    assert "kidaudit 9.9.9" in table
    lines = {line.split()[0] for line in table.splitlines() if line.strip()}
    assert "precision" in table and "recall" in table
    assert set(report.by_category) <= lines
    assert set(report.by_encoding) <= lines


def test_every_case_names_a_recorded_source() -> None:
    suite = load_suite()
    assert {c["source"] for c in suite["cases"]} <= set(suite["provenance"])


def test_shipped_suite_is_what_the_builder_writes() -> None:
    """suite.json is regenerated with ``python -m tools.build_suite``, never edited: the
    shipped file is byte for byte what the generator writes, and what the runner loads."""
    suite = build_suite.build()
    assert build_suite.SUITE_PATH.read_text(encoding="utf-8") == build_suite.render(suite)
    assert load_suite() == json.loads(build_suite.render(suite))


def test_every_build_is_the_same_suite() -> None:
    """The generator keeps nothing between runs: building twice gives the same cases once."""
    first, second = build_suite.build(), build_suite.build()
    assert first == second
    assert len({c["id"] for c in first["cases"]}) == len(first["cases"])


def test_gzip_bodies_are_the_same_bytes_on_every_interpreter() -> None:
    """The builder's gzip is its own: gzip.compress's header differs by Python version (OS
    byte 3 up to 3.12, 255 from 3.13) and its deflate by zlib build."""
    text = b'{"imei": "868026045123458"}' * 3
    packed = build_suite.gzipped(text)
    assert gzip.decompress(packed) == text
    assert packed.hex() == (
        "1f8b08000000000000ffab56cacc4dcd54b25250b230b33030323330313534323631b550aaad56ca"
        "cc4dcd54b25250b230b33030323330313534323631b550aaad56cacc4dcd54b25250b230b3303032"
        "3330313534323631b550aa0500a59ddb8151000000")
    assert build_suite.gzipped(b"") == bytes.fromhex("1f8b08000000000000ff03000000000000000000")


def _d(category: str, field: str, encoding: tuple[str, ...] = ()) -> Detection:
    return Detection(1, category, "known", "body", field, encoding, "", "v", 0.99)


@pytest.mark.parametrize(("expect", "found", "counts"), [
    pytest.param([("identifier.imei", "query.a")], [_d("identifier.imei", "query.a")],
                 (1, 0, 0), id="hit"),
    pytest.param([("identifier.imei", "query.a")], [], (0, 0, 1), id="miss"),
    pytest.param([], [_d("identifier.imei", "query.a")], (0, 1, 0), id="false-positive"),
    pytest.param([("identifier.imei", "query.d*")], [_d("identifier.imei", "query.d.base64",
                                                        ("base64",))], (1, 0, 0), id="glob"),
    pytest.param([("identifier.imei", "query.a")], [_d("identifier.imsi", "query.a")],
                 (0, 1, 1), id="wrong-category"),
])
def test_score_case(expect: list, found: list[Detection], counts: tuple[int, int, int]) -> None:
    report = ValidationReport(suite="t")
    case = {"id": "c", "expect": [{"category": c, "field": f} for c, f in expect]}
    score_case(case, found, report)
    assert (report.total.tp, report.total.fp, report.total.fn) == counts
    assert report.negatives == (0 if expect else 1)
