"""The campaign's Parquet dataset: one part per run and table under hive partitions, read back
as is by pandas (and so by pyarrow's dataset reader, which Dask uses too)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from auditor.campaign import dataset
from auditor.campaign.model import RunSpec
from auditor.offline import analyze
from auditor.profile import load_consent_plan, load_profile
from tests.factories import EPOCH, IMEI, PLAN_YAML, WATCH_PROFILE_YAML, http_flow, write_flows

SPEC = RunSpec(id="k2-1", device="Acme K2/ü", firmware="1.4.2", app_version="3.2.0",
               scenario="idle")


@pytest.fixture
def doc(tmp_path: Path) -> dict:
    """A real findings.json: three requests, the IMEI to the maker and to a tracker."""
    (tmp_path / "p.yaml").write_text(WATCH_PROFILE_YAML)
    (tmp_path / "c.yaml").write_text(PLAN_YAML)
    capture = write_flows(tmp_path / "c.mitm", [
        http_flow("https://api.acme-watch.example/reg", EPOCH, {"imei": IMEI}),
        http_flow("https://tracker.example.com/x", EPOCH + 1, {"imei": IMEI}),
        http_flow("http://api.acme-watch.example/ping", EPOCH + 2, {"imei": IMEI})])
    analyze([capture], load_profile(str(tmp_path / "p.yaml")),
            load_consent_plan(str(tmp_path / "c.yaml")), tmp_path / "s")
    return json.loads((tmp_path / "s" / "findings.json").read_text())


def test_the_parts_sit_under_percent_encoded_hive_partitions(tmp_path: Path, doc: dict
                                                             ) -> None:
    dataset.write_run(doc, SPEC, tmp_path)
    assert dataset.parts(tmp_path, SPEC) == [
        tmp_path / "dataset" / table / "device=Acme%20K2%2F%C3%BC" / "firmware=1.4.2"
        / "k2-1.parquet" for table in dataset.TABLES]
    assert dataset.written(tmp_path, [SPEC])
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("table", dataset.TABLES)
def test_every_row_of_findings_json_is_read_back_with_the_runs_columns(
        tmp_path: Path, doc: dict, table: str) -> None:
    dataset.write_run(doc, SPEC, tmp_path)
    frame = pd.read_parquet(tmp_path / "dataset" / table)
    assert len(frame) == len(doc[table]) > 0
    assert set(frame["device"].astype(str)) == {"Acme K2/ü"}  # decoded from the path
    assert set(frame["firmware"].astype(str)) == {"1.4.2"}
    assert set(frame["run_id"]) == {"k2-1"} and set(frame["scenario"]) == {"idle"}
    assert set(frame["app_version"]) == {"3.2.0"}


def test_recipients_are_columns_and_lists_stay_lists(tmp_path: Path, doc: dict) -> None:
    dataset.write_run(doc, SPEC, tmp_path)
    tx = pd.read_parquet(tmp_path / "dataset" / "transmissions").sort_values("id")
    assert list(tx["recipient_domain"]) == [t["recipient"]["domain"]
                                            for t in doc["transmissions"]]
    assert list(tx["recipient_party"]) == ["first", "third", "first"]
    assert str(tx["ts"].dtype) == "datetime64[ms, UTC]"
    found = pd.read_parquet(tmp_path / "dataset" / "findings")
    rows = {(r.rule, r.recipient): (list(r.categories), list(r.transmissions))
            for r in found.itertuples()}
    assert rows == {(f["rule"], f["recipient"]): (f["categories"], f["transmissions"])
                    for f in doc["findings"]}
    det = pd.read_parquet(tmp_path / "dataset" / "detections")
    assert set(det["value"]) == {"864*********455"}  # masked, as findings.json is


def test_an_empty_run_merges_with_the_others(tmp_path: Path, doc: dict) -> None:
    """A run that sent nothing writes parts of the same schema, so the tables still read."""
    dataset.write_run(doc, SPEC, tmp_path)
    empty = RunSpec(id="k2-2", device="Acme K2/ü", firmware="1.5.0")
    dataset.write_run({"transmissions": [], "detections": [], "findings": []}, empty, tmp_path)
    for table in dataset.TABLES:
        frame = pd.read_parquet(tmp_path / "dataset" / table)
        assert set(frame["run_id"]) == {"k2-1"}
        assert sorted(frame["firmware"].cat.categories) == ["1.4.2", "1.5.0"]


def test_remove_run_takes_its_parts_wherever_they_were_filed(tmp_path: Path, doc: dict
                                                            ) -> None:
    dataset.write_run(doc, SPEC, tmp_path)
    other = RunSpec(id="k2-9", device="B", firmware="2.0")
    dataset.write_run(doc, other, tmp_path)
    dataset.remove_run(tmp_path, "k2-1")
    assert not dataset.written(tmp_path, [SPEC]) and dataset.written(tmp_path, [other])
    assert not list((tmp_path / "dataset").rglob("k2-1.parquet"))


def test_dask_reads_the_dataset_as_is(tmp_path: Path, doc: dict) -> None:
    import dask.dataframe as dd

    dataset.write_run(doc, SPEC, tmp_path)
    frame = dd.read_parquet(tmp_path / "dataset" / "findings").compute(scheduler="sync")
    assert sorted(frame["rule"]) == sorted(f["rule"] for f in doc["findings"])
    assert set(frame["device"].astype(str)) == {"Acme K2/ü"}


@pytest.mark.parametrize(("device", "firmwares"), [("007", ("2", "10")), ("K2 ü", ("1.0", "2"))])
def test_read_keeps_partition_values_as_the_lab_wrote_them(
        tmp_path: Path, doc: dict, device: str, firmwares: tuple[str, ...]) -> None:
    for n, firmware in enumerate(firmwares):
        dataset.write_run(doc, RunSpec(id=f"r{n}", device=device, firmware=firmware), tmp_path)
    frame = dataset.read(tmp_path, "findings")
    assert set(zip(frame["device"], frame["firmware"], strict=True)) == {
        (device, f) for f in firmwares}
