"""`kidaudit demo`: the whole simulated lab session through real mitmproxy on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.demo.run import run_demo

pytestmark = pytest.mark.e2e


def test_demo_session_produces_the_expected_findings(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run_demo(out)
    for name in ("findings.json", "report.html", "detections.csv", "flows.mitm"):
        assert (out / name).is_file(), name
    doc = json.loads((out / "findings.json").read_text())
    found = {(f["rule"], f["recipient"]): f for f in doc["findings"]}
    pre = found[("PRE_CONSENT_PI", "acme-watch.example")]
    assert pre["categories"] == ["identifier.iccid", "identifier.imei", "identifier.mac"]
    assert pre["consent"] == ["none"]
    assert found[("CLEARTEXT_PI", "acme-watch.example")]["categories"] == ["identity.phone"]
    assert len(result.findings) == len(doc["findings"])
    categories = {d["category"] for d in doc["detections"]}
    assert {"location.precise", "location.coarse", "contacts.entry",
            "identity.name", "identity.birthdate"} <= categories
    hashed = [d for d in doc["detections"] if d["encoding"] == ["sha256"]]
    assert hashed and hashed[0]["category"] == "identifier.imei"
    third = {t["recipient"]["domain"]: t["recipient"]["party"] for t in doc["transmissions"]}
    assert third["tinytrack-analytics.example"] == "third"
    assert [(e["action"], e["source"]) for e in doc["events"]] == [("grant", "mark"),
                                                                   ("phase", "mark")]
