"""`kidaudit demo`: the whole simulated lab session through real mitmproxy on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.demo.cloud import MAKER_IP
from auditor.demo.run import run_demo

pytestmark = pytest.mark.e2e
# The rules that judge who received the data; a granted, disclosed processor raises none.
RECIPIENT_RULES = {"THIRD_PARTY_UNDISCLOSED", "PERSISTENT_ID_TO_THIRD_PARTY",
                   "LOCATION_TO_THIRD_PARTY", "DIRECT_IDS_TO_THIRD_PARTY",
                   "AD_TRACKER_RECEIVES_CHILD_DATA"}
MAP_SDK = "pinmap-sdk.example"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, int]:
    """One demo run for every test here: it is a real proxy session, run once."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    result = run_demo(out)
    return out, json.loads((out / "findings.json").read_text()), len(result.findings)


def test_demo_session_produces_the_expected_findings(demo: tuple[Path, dict, int]) -> None:
    out, doc, returned = demo
    for name in ("findings.json", "report.html", "detections.csv", "flows.mitm"):
        assert (out / name).is_file(), name
    # one finding per rule and organisation: the maker's domain and its IP are one party
    found = {(f["rule"], f["recipient"]): f for f in doc["findings"]}
    assert len(found) == len(doc["findings"])
    pre = found[("PRE_CONSENT_PI", "Acme Watch Co.")]
    assert pre["categories"] == ["identifier.iccid", "identifier.imei", "identifier.mac"]
    assert pre["consent"] == ["none"]
    assert pre["recipients"] == ["acme-watch.example"]
    cleartext = found[("CLEARTEXT_PI", "Acme Watch Co.")]
    assert cleartext["categories"] == ["identifier.imei", "identity.phone", "location.precise"]
    assert cleartext["recipients"] == [MAKER_IP, "acme-watch.example"]
    per = cleartext["per_category"]
    assert list(per) == cleartext["categories"]
    assert all(1 <= c["count"] <= cleartext["count"] for c in per.values())
    phone = [t for t in cleartext["transmissions"] if any(
        d["transmission"] == t and d["category"] == "identity.phone" for d in doc["detections"])]
    assert per["identity.phone"]["count"] == len(phone) >= 1
    assert returned == len(doc["findings"])
    categories = {d["category"] for d in doc["detections"]}
    assert {"location.precise", "location.coarse", "contacts.entry",
            "identity.name", "identity.birthdate"} <= categories
    hashed = [d for d in doc["detections"] if d["encoding"] == ["sha256"]]
    assert hashed and hashed[0]["category"] == "identifier.imei"
    third = {t["recipient"]["domain"]: t["recipient"]["party"] for t in doc["transmissions"]}
    assert third["tinytrack-analytics.example"] == "third"
    assert [(e["action"], e["source"]) for e in doc["events"]] == [("grant", "mark"),
                                                                   ("phase", "mark")]


def test_the_watch_talks_to_its_maker_by_ip_as_first_party(
        demo: tuple[Path, dict, int]) -> None:
    _, doc, _ = demo
    tcp = [t for t in doc["transmissions"] if t["transport"] == "tcp"]
    assert tcp and {t["ip"] for t in tcp} == {MAKER_IP}
    assert {(t["recipient"]["party"], t["recipient"]["organization"]) for t in tcp} == {
        ("first", "Acme Watch Co.")}
    # Findings are told apart by their evidence, whatever name they are filed under.
    ids = {t["id"] for t in tcp}
    on_maker_ip = [f for f in doc["findings"] if ids & set(f["transmissions"])]
    assert not {f["rule"] for f in on_maker_ip} & (RECIPIENT_RULES | {"SCOPE_EXCEEDED"})
    # What the watch protocol carried is still found: its id (the IMEI's last ten digits)
    # and its position, sent in the clear.
    on_tcp = {(d["category"], tuple(d["encoding"])) for d in doc["detections"]
              if d["transmission"] in ids}
    assert {("identifier.imei", ("last-10-digits",)), ("location.precise", ())} <= on_tcp
    cleartext = [f for f in on_maker_ip if f["rule"] == "CLEARTEXT_PI"]
    assert cleartext and "location.precise" in set().union(*(f["categories"]
                                                            for f in cleartext))


def test_the_disclosed_granted_processor_raises_no_recipient_finding(
        demo: tuple[Path, dict, int]) -> None:
    _, doc, _ = demo
    sent = {t["id"] for t in doc["transmissions"] if t["recipient"]["domain"] == MAP_SDK}
    assert sent
    assert any(d["category"] == "location.precise" for d in doc["detections"]
               if d["transmission"] in sent)
    assert not [f for f in doc["findings"] if sent & set(f["transmissions"])
                and f["rule"] in RECIPIENT_RULES]
    assert not [f for f in doc["findings"] if f["rule"] == "LOCATION_TO_THIRD_PARTY"]
