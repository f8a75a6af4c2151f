"""The campaign's Parquet dataset: every run's transmissions, detections and findings, as
three tables a lab queries across its whole test matrix with pandas, Dask or DuckDB.

``DIR/dataset/<table>/device=<d>/firmware=<f>/<run id>.parquet``: hive partitions, their
values percent-encoded (``urllib.parse.quote(v, safe="")``), which pyarrow's hive reader (and
so pandas and Dask) decodes, and DuckDB from 1.1 (duckdb/duckdb#12974). One file per run, so
that a run analysed again replaces its own parts and nothing else. The rows are the run's
findings.json (masked, complete), flattened: the recipient mapping becomes ``recipient_*``
columns, lists stay lists; every row carries the run's id, app version and scenario. Each
table has one fixed schema, so a run with no detections writes an empty part the others
still merge with (an all-null column would be typed null and break the merge).

A reader infers a partition's type from its values: when every firmware (or device) of a
table looks like an integer (``2``, ``007``) it reads back as a number (``7``). ``read``
below, or ``PARTITIONING`` passed as ``partitioning=`` to pandas or pyarrow, keeps them text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from auditor.campaign.model import RunSpec

DATASET = "dataset"
TABLES = ("transmissions", "detections", "findings")
_STR, _INT, _LIST = pa.string(), pa.int64(), pa.list_(pa.string())
_TS = pa.timestamp("ms", tz="UTC")
RUN_COLUMNS = [("run_id", _STR), ("app_version", _STR), ("scenario", _STR)]
RECIPIENT_KEYS = ("domain", "organization", "party", "country", "sdk", "sdk_type")

SCHEMAS: dict[str, pa.Schema] = {
    "transmissions": pa.schema(RUN_COLUMNS + [
        ("id", _INT), ("ts", _TS), ("transport", _STR), ("direction", _STR), ("host", _STR),
        ("ip", _STR), ("port", _INT), ("method", _STR), ("url", _STR),
        ("inspected", pa.bool_()), ("bytes", _INT),
        *((f"recipient_{k}", _STR) for k in RECIPIENT_KEYS),
        ("consent", _LIST)]),  # "category=state" per category it carried
    "detections": pa.schema(RUN_COLUMNS + [
        ("transmission", _INT), ("category", _STR), ("method", _STR), ("location", _STR),
        ("field", _STR), ("encoding", _LIST), ("profile_key", _STR), ("value", _STR),
        ("confidence", pa.float64())]),
    "findings": pa.schema(RUN_COLUMNS + [
        ("id", _STR), ("rule", _STR), ("severity", _STR), ("title", _STR),
        ("recipient", _STR), ("recipients", _LIST), ("categories", _LIST),
        ("transmissions", pa.list_(_INT)), ("count", _INT), ("first_seen", _TS),
        ("last_seen", _TS), ("consent", _LIST), ("references", _LIST)]),
}


PARTITIONING = ds.partitioning(pa.schema([("device", _STR), ("firmware", _STR)]),
                               flavor="hive")


def read(out: Path, table: str) -> pd.DataFrame:
    """One table of the campaign in ``out``, device and firmware as the lab wrote them."""
    return pd.read_parquet(out / DATASET / table, partitioning=PARTITIONING)


def part(out: Path, table: str, spec: RunSpec) -> Path:
    return (out / DATASET / table / f"device={quote(spec.device, safe='')}"
            / f"firmware={quote(spec.firmware, safe='')}" / f"{spec.id}.parquet")


def parts(out: Path, spec: RunSpec) -> list[Path]:
    return [part(out, table, spec) for table in TABLES]


def write_run(doc: dict, spec: RunSpec, out: Path) -> None:
    """The run's three parts, each written whole beside its place and renamed into it: a
    reader (or a worker lost half-way) never meets half a file."""
    run = {"run_id": spec.id, "app_version": spec.app_version, "scenario": spec.scenario}
    for table in TABLES:
        rows = [{**run, **flat} for flat in map(FLATTEN[table], _dicts(doc.get(table)))]
        arrow = pa.Table.from_pylist(rows, schema=SCHEMAS[table])
        target = part(out, table, spec)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        pq.write_table(arrow, tmp)
        os.replace(tmp, target)


def remove_run(out: Path, run_id: str) -> None:
    """Every part of run ``run_id``, whatever device and firmware it was filed under (a run
    whose firmware was corrected in the manifest leaves no stale part behind)."""
    for table in TABLES:
        for path in (out / DATASET / table).glob(f"*/*/{run_id}.parquet"):
            path.unlink()


def _dicts(value: object) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _texts(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _transmission(tx: dict) -> dict:
    recipient = tx.get("recipient") if isinstance(tx.get("recipient"), dict) else {}
    consent = tx.get("consent") if isinstance(tx.get("consent"), dict) else {}
    return {
        "id": tx.get("id"), "ts": _time(tx.get("ts")),
        **{k: _text(tx.get(k)) for k in ("transport", "direction", "host", "ip", "method",
                                         "url")},
        "port": tx.get("port"), "inspected": tx.get("inspected"), "bytes": tx.get("bytes"),
        **{f"recipient_{k}": _text(recipient.get(k)) for k in RECIPIENT_KEYS},
        "consent": [f"{c}={s}" for c, s in consent.items()],
    }


def _detection(d: dict) -> dict:
    return {
        "transmission": d.get("transmission"),
        **{k: _text(d.get(k)) for k in ("category", "method", "location", "field",
                                        "profile_key", "value")},
        "encoding": _texts(d.get("encoding")), "confidence": d.get("confidence"),
    }


def _finding(f: dict) -> dict:
    return {
        **{k: _text(f.get(k)) for k in ("id", "rule", "severity", "title", "recipient")},
        **{k: _texts(f.get(k)) for k in ("recipients", "categories", "consent", "references")},
        "transmissions": [t for t in f.get("transmissions") or [] if isinstance(t, int)],
        "count": f.get("count"), "first_seen": _time(f.get("first_seen")),
        "last_seen": _time(f.get("last_seen")),
    }


FLATTEN: dict[str, Callable[[dict], dict]] = {
    "transmissions": _transmission, "detections": _detection, "findings": _finding}


def written(out: Path, specs: Iterable[RunSpec]) -> bool:
    """Every part of every run in ``specs`` is in place."""
    return all(p.is_file() for spec in specs for p in parts(out, spec))
