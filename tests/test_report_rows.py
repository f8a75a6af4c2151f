"""auditor.report.rows: a session's report rows kept and written a batch at a time. The text
of a batch is the same bytes whether this process or a worker made it, and the same as the
row-at-a-time writers (``findings_json.Rows.add``, ``detections_csv.Table.add``) give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.report import detections_csv, findings_json
from auditor.report.document import DetectionEntry, RecipientEntry, TransmissionEntry, at
from auditor.report.rows import Spool, Texts, Writer, encode, encode_batch, pack, unpack


def _row(i: int, dets: int = 2, *, odd: bool = False) -> tuple:
    """A transmission's row as the survey makes it; ``odd``: hostile texts (quotes, a
    formula's start, non-ASCII, a line break)."""
    text = '="x"\r\n设备 ' if odd else "ok"
    tx = TransmissionEntry(i, at(1_790_000_000.0 + i), "https", "up", f"h{i}.example",
                           "127.0.0.1", 443, "POST", f"/u?{text}", True, 10 * i,
                           "" if i % 3 else "bad-cert",
                           RecipientEntry(f"d{i % 4}.example", None, "third", "CN", None, None),
                           {"identifier.imei": "none"} if i % 2 else {})
    return (tx, [DetectionEntry(i, "identifier.imei", "known", "body", f"imei{n}{text}",
                                ("base64",) * n, "imei", f"86****{n}", 1.0 if n else None)
                 for n in range(dets)], [f"note {text}"] if odd else [])


ROWS = [_row(i, dets=i % 4, odd=i % 7 == 0) for i in range(1, 600)]


def _damaged(i: int) -> tuple:
    """A row whose last detection the csv cannot write (its encoding is a text, not a
    list; findings.json writes it as the letters)."""
    tx, dets, notes = _row(i)
    return tx, [*dets, DetectionEntry(i, "contact.phone", encoding="b64")], notes  # type: ignore[arg-type]


def test_a_packed_row_is_the_row_again() -> None:
    assert [unpack(pack(row)) for row in ROWS] == ROWS


def _one_at_a_time(directory: Path, rows: list) -> tuple[bytes, str, list]:
    with detections_csv.Table(directory / "d.csv") as table, \
            findings_json.Rows(directory) as texts:
        for row in rows:
            table.add(row)
            texts.add(row)
        table.close()
        lists = {name: "".join(texts.text(name)) for name in texts.NAMES}
    return (directory / "d.csv").read_bytes(), json.dumps(lists), table.errors


def _batched(directory: Path, rows: list, encoder: object = None) -> tuple[bytes, str, list]:
    with Spool(directory) as spool, detections_csv.Table(directory / "d.csv") as table, \
            findings_json.Rows(directory) as texts:
        writer = Writer(spool, table, texts, encoder)  # type: ignore[arg-type]
        for row in rows:
            writer.add(row)
        writer.close()
        table.close()
        lists = {name: "".join(texts.text(name)) for name in texts.NAMES}
        assert list(spool) == rows  # the spool holds every row, in order
    return (directory / "d.csv").read_bytes(), json.dumps(lists), table.errors


@pytest.mark.parametrize("rows", [
    [], ROWS[:1], ROWS[:255], ROWS[:256], ROWS[:257], ROWS,
    [*ROWS[:300], _damaged(900), *ROWS[300:], _damaged(901)],
], ids=["none", "one", "a batch less one", "a batch", "a batch and one", "many",
        "damaged rows"])
def test_written_in_batches_the_files_are_those_written_a_row_at_a_time(
        tmp_path: Path, rows: list) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _batched(tmp_path / "a", rows) == _one_at_a_time(tmp_path / "b", rows)


class _Elsewhere:
    """Makes every batch's text by ``encode_batch`` from the bytes the spool wrote, as a
    worker is given them, and answers later than asked (a batch is done only when the
    writer has handed over the next one): the texts must still be written in order."""

    def __init__(self) -> None:
        self.given = 0
        self.waiting: list[_Later] = []

    def behind(self) -> bool:
        return True

    def encode(self, data: bytes, start: int) -> _Later:
        self.given += 1
        for later in self.waiting:
            later.ready = True
        later = _Later(encode_batch(data, start))
        self.waiting.append(later)
        return later


class _Later:
    def __init__(self, texts: Texts) -> None:
        self.texts, self.ready = texts, False

    def done(self) -> bool:
        return self.ready

    def result(self) -> Texts:
        return self.texts


def test_the_text_made_elsewhere_is_the_text_made_here(tmp_path: Path) -> None:
    rows = [*ROWS[:300], _damaged(900), *ROWS[300:]]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    elsewhere = _Elsewhere()
    assert _batched(tmp_path / "a", rows, elsewhere) == _batched(tmp_path / "b", rows)
    assert elsewhere.given == 3  # 600 rows: three batches


@pytest.mark.e2e  # worker processes
def test_a_pools_workers_make_the_same_text(tmp_path: Path, watch_profile: Path) -> None:
    from auditor.jobs import Pool
    from auditor.profile import load_profile

    pool = Pool(2, load_profile(str(watch_profile)), None, False)
    try:
        assert pool.behind()  # no chunk out: the workers are free
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        assert _batched(tmp_path / "a", ROWS, pool) == _batched(tmp_path / "b", ROWS)
    finally:
        pool.close()


def test_a_batchs_csv_errors_name_the_detections_place_in_the_file() -> None:
    texts = encode([_row(1, dets=3), _damaged(2)], start=40)
    assert texts.count == 6
    assert [e.message for e in texts.errors] == ["detection 45 left out (TypeError)"]


def test_the_spool_gives_its_rows_back_to_each_walk_even_interleaved(tmp_path: Path):
    rows = [(TransmissionEntry(i, url=f"/u?{i}", consent={"identifier.imei": "none"}),
             [DetectionEntry(i, "identifier.imei", value="86****55")], [])
            for i in range(1, 1_000)]
    with Spool(tmp_path) as spool:
        for start in range(0, len(rows), 256):
            spool.add_batch([pack(row) for row in rows[start:start + 256]])
        assert list(spool) == rows
        assert [(a[0].id, b[0].id) for a, b in zip(spool, spool, strict=True)] == [
            (i, i) for i in range(1, 1_000)]
    assert list(tmp_path.iterdir()) == []  # the file has no name: nothing is left
