"""findings.json is the same text ``json.dumps`` gives, written without holding it whole."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.report import document, findings_json
from auditor.report.document import (
    Device,
    Document,
    RecipientEntry,
    SessionInfo,
    TransmissionEntry,
)


def _doc(n: int) -> Document:
    return Document(session=SessionInfo(device=Device(name="手表 \u2028")),
                    transmissions=tuple(
                        TransmissionEntry(i, host="api.acme-watch.example", url=f"/r?i={i}",
                                          recipient=RecipientEntry(party="first"),
                                          consent={"identifier.imei": "granted"})
                        for i in range(n)))


@pytest.mark.parametrize("n", [0, 1, 50])
def test_same_text_as_json_dumps(tmp_path: Path, n: int) -> None:
    doc = _doc(n)
    findings_json.render(doc, tmp_path / "findings.json")
    text = (tmp_path / "findings.json").read_text(encoding="utf-8")
    whole = json.dumps(doc, default=document.json_value, indent=2, ensure_ascii=False)
    assert text == whole + "\n"
    assert json.loads(text) == document.to_dict(doc)


def test_written_without_holding_the_whole_text(tmp_path: Path) -> None:
    doc = _doc(20_000)
    out = tmp_path / "findings.json"
    tracemalloc.start()
    try:
        findings_json.render(doc, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = out.stat().st_size
    assert size > 4_000_000
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte file"


def streamed_doc(folder: Path, n: int = 1_200) -> Document:
    """A document built as ``write_outputs`` builds it: its rows streamed from a store of
    ``n`` small messages (several read batches), masked one at a time."""
    from auditor.model import Finding
    from auditor.store import Store
    from tests.test_store import _small

    store = Store(folder)
    with store.batch():
        for i in range(1, n + 1):
            store.add_observation(_small(i, 1_790_000_000.0 + i))
    finding = Finding("f1", "NON_RESETTABLE_ID", "medium", "t", ("identifier.imei",),
                      "acme-watch.example", tuple(range(1, n + 1, 7)), 1_790_000_001.0,
                      1_790_000_000.0 + n, ("IDM 4.1",), ("none",), ("acme-watch.example",))
    return document.build(SessionInfo(id="s"), document.Replay(store.iter_observations),
                          [finding], [], {"errors": [{"transmission": 5, "stage": "x",
                                                      "message": "bad 39.00005"}]},
                          consent=lambda o: {c: "none" for c in sorted(o.categories)})


def _documents() -> dict[str, object]:
    from tests.test_report_html import every_rule_doc, hostile_doc, long_session, watch_doc

    return {"watch": lambda _: document.load(watch_doc()),
            "hostile": lambda _: document.load(hostile_doc()),
            "every rule": lambda _: document.load(every_rule_doc()),
            "long": lambda _: document.load(long_session(2_000)),
            "empty": lambda _: Document(),
            "streamed from a store": streamed_doc}


@pytest.mark.parametrize("name", list(_documents()))
def test_written_a_row_at_a_time_with_json_dumps_bytes(tmp_path: Path, name: str) -> None:
    doc = _documents()[name](tmp_path / "s")
    findings_json.render(doc, tmp_path / "findings.json")
    whole = json.dumps(doc.materialised(), default=document.json_value, indent=2,
                       ensure_ascii=False)
    assert (tmp_path / "findings.json").read_text(encoding="utf-8") == whole + "\n"


def test_a_streamed_document_is_complete(tmp_path: Path) -> None:
    doc = streamed_doc(tmp_path / "s")
    findings_json.render(doc, tmp_path / "findings.json")
    back = json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))
    assert [t["id"] for t in back["transmissions"]] == list(range(1, 1_201))
    assert len(back["detections"]) == 2 * sum(1 for i in range(1, 1_201) if i % 7)
    assert [o["transmission"] for o in back["coverage"]["opaque"]] == list(range(100, 1_201, 100))
    assert back["coverage"]["connections"] == 1_200
    # the error naming transmission 5 is masked with its own detections
    assert "39.00005" not in back["coverage"]["errors"][0]["message"]


def test_a_streamed_document_is_written_in_memory_that_does_not_follow_its_length(
        tmp_path: Path) -> None:
    peaks, sizes = [], []
    for n in (5_000, 10_000):
        doc = streamed_doc(tmp_path / f"s{n}", n)
        out = tmp_path / f"findings-{n}.json"
        tracemalloc.start()
        try:
            findings_json.render(doc, out)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        peaks.append(peak)
        sizes.append(out.stat().st_size)
    assert sizes[1] > 1.9 * sizes[0]
    # what it holds: a read batch and the maskers' bounded caches, not the rows
    assert peaks[1] < 1.25 * peaks[0], (peaks, sizes)


_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
            | st.text(alphabet=st.characters(exclude_categories=()), max_size=12))
_KEYS = st.text(max_size=6) | st.integers() | st.floats() | st.booleans() | st.none()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(value=_VALUES, depth=st.integers(0, 3))
def test_a_row_is_encoded_as_json_dumps_writes_it(value: object, depth: int) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    assert findings_json.encode(value, depth) == text.replace("\n", "\n" + "  " * depth)


@pytest.mark.parametrize("value", [
    TransmissionEntry(7, url="/a?b=\u2028\ud800", recipient=RecipientEntry(country=None),
                      consent={"location.precise": "granted"}),
    {"nan": float("nan"), "inf": [float("inf"), float("-inf")], 1.5: -0.0, None: True},
    [[], {}, (), [{}]],
])
def test_a_document_object_is_encoded_as_json_dumps_writes_it(value: object) -> None:
    assert findings_json.encode(value, 1) == json.dumps(
        value, indent=2, ensure_ascii=False, default=document.json_value).replace("\n", "\n  ")


_DETECTION_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                              st.text(alphabet=st.characters(exclude_categories=()),
                                      max_size=8),
                              st.lists(st.text(max_size=4) | st.integers(), max_size=3),
                              st.tuples(st.text(max_size=4)))


@settings(max_examples=300, deadline=None)
@given(fields=st.fixed_dictionaries({
    "transmission": st.integers() | _DETECTION_VALUES,
    "category": st.text(max_size=8) | _DETECTION_VALUES,
    "field": st.text(max_size=8) | _DETECTION_VALUES,
    "encoding": st.tuples() | st.tuples(st.text(max_size=6), st.text(max_size=6))
    | _DETECTION_VALUES,
    "value": st.text(alphabet=st.characters(exclude_categories=()), max_size=12)
    | _DETECTION_VALUES,
    "confidence": st.none() | st.floats() | _DETECTION_VALUES,
}), depth=st.integers(0, 3))
def test_a_detection_row_is_encoded_as_json_dumps_writes_it(fields: dict, depth: int
                                                            ) -> None:
    """A detection's row from its template when its values are a session's types, by the
    generic encoder otherwise: json.dumps's text either way."""
    row = document.DetectionEntry(**fields)
    try:
        text = json.dumps(row, indent=2, ensure_ascii=False, default=document.json_value)
    except TypeError:  # a list of a value json cannot write: so neither can the row
        return
    assert findings_json.encode(row, depth) == text.replace("\n", "\n" + "  " * depth)


def _assert_rows_copy_the_walk(tmp_path: Path, doc: document.Document,
                               groups: list[tuple[Any, list[Any]]]) -> None:
    """The document rendered by its own walk, and again with its rows fed to ``Rows`` a
    message at a time and copied in: the same bytes."""
    findings_json.render(doc, tmp_path / "walked.json")
    with findings_json.Rows(tmp_path) as rows:
        for tx, dets in groups:
            rows.add((tx, dets, []))
        findings_json.render(doc, tmp_path / "copied.json", written=rows)
    assert (tmp_path / "copied.json").read_bytes() == (tmp_path / "walked.json").read_bytes()


@pytest.mark.parametrize("name", list(_documents()))
def test_rows_written_on_the_walk_give_the_same_file(tmp_path: Path, name: str) -> None:
    """``Rows`` fed a transmission and its detections at a time (``write_outputs`` on its
    walk) and copied in: the bytes of the document's own walk."""
    import dataclasses

    doc = _documents()[name](tmp_path / "s")
    groups = [(tx, [d for d in doc.detections if d.transmission == tx.id])
              for tx in doc.transmissions]
    doc = dataclasses.replace(doc, transmissions=tuple(tx for tx, _ in groups),
                              detections=tuple(d for _, dets in groups for d in dets))
    _assert_rows_copy_the_walk(tmp_path, doc, groups)
    assert list(tmp_path.glob("tmp*")) == []  # its files have no name


@pytest.mark.parametrize("messages", [1, findings_json.BATCH - 1, findings_json.BATCH,
                                      3 * findings_json.BATCH + 7])
def test_rows_written_in_batches_give_the_same_file(tmp_path: Path, messages: int) -> None:
    """``Rows`` holds a batch of messages' text before it writes it: a session of more
    messages than a batch (some without detections, one detection no session makes) gives
    the bytes of the document's own walk."""
    groups = [(TransmissionEntry(i, url=f"/r?n={i}", consent={"a": "granted"} if i % 3 else {}),
               [document.DetectionEntry(i, "identifier.imei", field=f"f{k}", value="86***55",
                                        confidence=0.99 if k else None,
                                        encoding=("gzip",) if i % 5 else ["x"])
                for k in range(i % 4)])
              for i in range(messages)]
    doc = document.Document(transmissions=tuple(tx for tx, _ in groups),
                            detections=tuple(d for _, dets in groups for d in dets))
    _assert_rows_copy_the_walk(tmp_path, doc, groups)


_TEXTS = st.text(alphabet=st.characters(exclude_categories=()), max_size=8)


@settings(max_examples=300, deadline=None)
@given(fields=st.fixed_dictionaries({
    "id": st.integers() | _DETECTION_VALUES,
    "ts": st.none() | st.datetimes(timezones=st.just(UTC)),
    "host": _TEXTS | _DETECTION_VALUES,
    "port": st.none() | st.integers() | _DETECTION_VALUES,
    "url": _TEXTS | _DETECTION_VALUES,
    "inspected": st.booleans() | _DETECTION_VALUES,
    "bytes": st.integers() | _DETECTION_VALUES,
    "probe": st.just("") | _TEXTS | _DETECTION_VALUES,
    "consent": st.dictionaries(_TEXTS, _TEXTS, max_size=3)
    | st.dictionaries(st.integers() | st.none(), _DETECTION_VALUES, max_size=2),
}), recipient=st.fixed_dictionaries({
    "domain": _TEXTS | _DETECTION_VALUES,
    "organization": st.none() | _TEXTS | _DETECTION_VALUES,
    "country": st.none() | _TEXTS,
    "sdk_type": st.none() | _TEXTS | _DETECTION_VALUES,
}), depth=st.integers(0, 3))
def test_a_transmission_row_is_encoded_as_json_dumps_writes_it(fields: dict, recipient: dict,
                                                               depth: int) -> None:
    """A transmission's row from its templates when its values are a session's types, by
    the generic encoder otherwise: json.dumps's text either way."""
    row = TransmissionEntry(**fields, recipient=RecipientEntry(**recipient))
    try:
        text = json.dumps(row, indent=2, ensure_ascii=False, default=document.json_value)
    except (TypeError, ValueError):  # a value json cannot write: so neither can the row
        return
    assert findings_json.encode(row, depth) == text.replace("\n", "\n" + "  " * depth)


@pytest.mark.parametrize("n", [0, 1, 2, findings_json.BATCH, 2 * findings_json.BATCH + 3])
def test_a_findings_ids_are_written_as_json_dumps_writes_them(n: int) -> None:
    """A finding's ``Ids`` (8 bytes an id), written a batch at a time: json.dumps's text."""
    from auditor.model import Ids

    finding = document.FindingEntry("f1", transmissions=Ids(range(-1, 3 * n, 3)[:n]))
    text = json.dumps(finding, indent=2, ensure_ascii=False, default=document.json_value)
    assert "".join(findings_json._value(finding, 1)) == text.replace("\n", "\n  ")
