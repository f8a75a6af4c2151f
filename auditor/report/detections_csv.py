"""detections.csv: one row per detection, joined with its transmission, for spreadsheets
and pandas. Columns are documented in the README."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["transmission", "ts", "transport", "method", "host", "recipient_domain", "party",
           "country", "category", "method_detected", "location", "field", "encoding",
           "profile_key", "value", "confidence"]


def frame(doc: dict) -> pd.DataFrame:
    tx = pd.DataFrame(doc["transmissions"], columns=["id", "ts", "transport", "method", "host",
                                                     "recipient"])
    det = pd.DataFrame(doc["detections"], columns=["transmission", "category", "method",
                                                   "location", "field", "encoding",
                                                   "profile_key", "value", "confidence"])
    if not tx.empty:
        rec = pd.json_normalize(tx.pop("recipient").tolist())
        tx = pd.concat([tx, rec[["domain", "party", "country"]]], axis=1)
    else:
        tx = tx.drop(columns="recipient").assign(domain=None, party=None, country=None)
    det = det.rename(columns={"method": "method_detected"})
    det["encoding"] = det["encoding"].map(lambda chain: ">".join(chain))
    merged = det.merge(tx.rename(columns={"id": "transmission", "domain": "recipient_domain"}),
                       on="transmission", how="left")
    return merged.reindex(columns=COLUMNS)


def render(doc: dict, out: Path) -> None:
    frame(doc).to_csv(out, index=False)
