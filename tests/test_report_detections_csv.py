"""detections.csv: cells a spreadsheet would run are neutralised, and a row that cannot be
written is left out alone, as a coverage error."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.report import detections_csv
from auditor.report.document import DetectionEntry, RecipientEntry, TransmissionEntry, load
from tests.test_report_html import IMEI_MASKED, watch_doc


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),  # hit
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),                     # hit
    ("-2+3", "'-2+3"),                                                       # hit
    ("@SUM(A1)", "'@SUM(A1)"),                                               # hit
    ("\t=1", "'\t=1"),                                                       # hit
    ("\r=1", "'\r=1"),                                                       # hit
    ("ho\udcffst", "ho\\xffst"),                                             # escaped
    ("a=b", "a=b"),                                                          # ok
    (IMEI_MASKED, IMEI_MASKED),                                              # ok
])
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(tmp_path, value, cell):
    doc = watch_doc()
    doc["detections"][0]["value"] = value
    doc["detections"][0]["field"] = value
    doc["transmissions"][0]["host"] = value
    assert detections_csv.render(load(doc), tmp_path / "d.csv") == []
    first = _csv_rows(tmp_path / "d.csv")[0]
    assert (first["value"], first["field"], first["host"]) == (cell, cell, cell)
    assert first["confidence"] == "0.99"  # a number stays a number


@pytest.mark.parametrize("bad", [
    {"encoding": 5}, {"value": ["a", "list"]}, {"transmission": 1, "category": {"a": 1}},
])
def test_a_csv_row_that_cannot_be_written_is_left_out_alone(tmp_path, bad):
    doc = load(watch_doc())
    # values no document builder makes: the objects are not checked, the row is
    broken = dataclasses.replace(doc.detections[0], **bad)
    doc = dataclasses.replace(doc, detections=(broken, *doc.detections[1:]))
    errors = detections_csv.render(doc, tmp_path / "d.csv")
    assert len(_csv_rows(tmp_path / "d.csv")) == len(doc.detections) - 1
    assert [(e.transmission, e.stage, e.message) for e in errors] == [
        (broken.transmission, "report detections.csv", "detection 0 left out (TypeError)")]


def _pandas_csv(doc, path: Path) -> None:
    """The file as one pandas frame of every row writes it: the bytes the chunked writer
    must keep."""
    import pandas as pd

    pd.DataFrame(detections_csv.rows(doc), columns=detections_csv.COLUMNS).to_csv(
        path, index=False, quoting=csv.QUOTE_NONNUMERIC)


@pytest.mark.parametrize("name", ["watch", "hostile", "every rule", "long", "empty",
                                  "streamed from a store"])
def test_written_a_row_at_a_time_with_the_bytes_of_one_pandas_frame(tmp_path, name):
    from tests.test_report_findings_json import _documents

    doc = _documents()[name](tmp_path / "s")
    assert detections_csv.render(doc, tmp_path / "d.csv") == []
    _pandas_csv(doc, tmp_path / "p.csv")
    assert (tmp_path / "d.csv").read_bytes() == (tmp_path / "p.csv").read_bytes()


@pytest.mark.parametrize("confidence, cell", [(0.9, "0.9"), (1.0, "1.0"), (None, ""),
                                              (float("nan"), ""), (1e-07, "1e-07")])
def test_numbers_are_written_as_pandas_writes_them(tmp_path, confidence, cell):
    doc = load(watch_doc())
    first = dataclasses.replace(doc.detections[0], confidence=confidence)
    doc = dataclasses.replace(doc, detections=(first,))
    detections_csv.render(doc, tmp_path / "d.csv")
    _pandas_csv(doc, tmp_path / "p.csv")
    assert (tmp_path / "d.csv").read_bytes() == (tmp_path / "p.csv").read_bytes()
    assert _csv_rows(tmp_path / "d.csv")[0]["confidence"] == cell


@pytest.mark.parametrize("bad_detection, bad_transmission", [
    ({}, {}),
    ({"encoding": 5}, {}),
    ({"value": ["a", "list"]}, {}),
    ({}, {"host": ["a", "list"]}),  # each of its detections left out, as alone
    ({"category": {"a": 1}}, {"ts": "not a time"}),
])
def test_the_table_written_on_the_walk_is_what_render_writes(tmp_path, bad_detection,
                                                             bad_transmission):
    """``Table.add`` a transmission's detections at a time (``write_outputs`` on its walk)
    writes the bytes and the errors ``render`` writes of the whole document."""
    doc = load(watch_doc())
    tx = dataclasses.replace(doc.transmissions[0], **bad_transmission)
    det = dataclasses.replace(doc.detections[0], **bad_detection)
    doc = dataclasses.replace(doc, transmissions=(tx, *doc.transmissions[1:]),
                              detections=(det, *doc.detections[1:]))
    expected = detections_csv.render(doc, tmp_path / "render.csv")
    with detections_csv.Table(tmp_path / "table.csv") as table:
        for t in doc.transmissions:
            table.add((t, [d for d in doc.detections if d.transmission == t.id], []))
    assert (tmp_path / "table.csv").read_bytes() == (tmp_path / "render.csv").read_bytes()
    assert table.errors == expected
    assert len(expected) == (0 if not (bad_detection or bad_transmission) else
                             sum(d.transmission == tx.id for d in doc.detections)
                             if bad_transmission else 1)


def test_a_table_that_fails_midway_leaves_no_file(tmp_path):
    """Written on the walk, detections.csv appears whole or not at all."""
    doc = load(watch_doc())
    with pytest.raises(RuntimeError), detections_csv.Table(tmp_path / "d.csv") as table:
        table.add((doc.transmissions[0], list(doc.detections), []))
        raise RuntimeError("the run failed")
    assert list(tmp_path.iterdir()) == []
    with detections_csv.Table(tmp_path / "d.csv") as table:
        table.add((doc.transmissions[0], list(doc.detections), []))
        assert list(tmp_path.iterdir()) == [tmp_path / ".d.csv.part"]
    assert [p.name for p in tmp_path.iterdir()] == ["d.csv"]


_TEXT = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=6) | st.sampled_from(
    ["=1", "-2", "+3", "@4", "\t5", "\r6", 'a"b', "", "ho\udcffst", "北京", "a\x00b"])


@settings(max_examples=300, deadline=None)
@given(det=st.builds(
    DetectionEntry, transmission=st.integers() | st.booleans() | st.none(),
    category=_TEXT, method=_TEXT, location=_TEXT, field=_TEXT,
    encoding=st.tuples() | st.tuples(_TEXT) | st.tuples(_TEXT, _TEXT) | st.lists(_TEXT),
    profile_key=_TEXT, value=_TEXT | st.integers() | st.none(),
    confidence=st.none() | st.floats() | st.integers()),
    host=_TEXT)
def test_a_row_is_written_as_the_csv_writer_writes_its_cells(tmp_path_factory, det, host):
    """A row written without the writer (ASCII text, the types a session gives it) has
    the bytes the writer gives of its cells, as any other row does."""
    import io

    tx = TransmissionEntry(1, host=host, recipient=RecipientEntry(domain=host))
    path = tmp_path_factory.mktemp("t") / "d.csv"
    with detections_csv.Table(path) as table:
        table.add((tx, [det, det], []))
    expected = io.StringIO()
    writer = csv.writer(expected, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(detections_csv.COLUMNS)
    cells = detections_csv._row(det, tx)
    writer.writerows([[cells[c] for c in detections_csv.COLUMNS]] * 2)
    assert path.read_bytes().decode("utf-8") == expected.getvalue()


@pytest.mark.parametrize("confidences", [(0.0, -0.0), (None, 0.5), (float("nan"), 1.0)])
def test_a_remembered_rows_texts_are_written_as_the_writer_writes_them(tmp_path, confidences):
    """The quoted texts of a row seen before are remembered (``_CELLS``), its id and
    confidence are not: each row still has the bytes the writer gives of its cells."""
    import io

    tx = TransmissionEntry(1, host="h.example", recipient=RecipientEntry(domain="h.example"))
    dets = [DetectionEntry(n, "identifier.imei", "known", "body", "=body.json.imei", ("gzip",),
                           "identifiers.imei", f"-864*****455{len(confidences)}", c)
            for n, c in enumerate(confidences * 2)]
    detections_csv._CELLS.clear()
    with detections_csv.Table(tmp_path / "d.csv") as table:
        table.add((tx, dets, []))
    assert len(detections_csv._CELLS) == 1
    expected = io.StringIO()
    writer = csv.writer(expected, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(detections_csv.COLUMNS)
    for det in dets:
        cells = detections_csv._row(det, tx)
        writer.writerow([cells[c] for c in detections_csv.COLUMNS])
    assert (tmp_path / "d.csv").read_text(encoding="utf-8") == expected.getvalue()
