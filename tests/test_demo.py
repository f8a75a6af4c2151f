"""`kidaudit demo`: the whole simulated lab session through real mitmproxy on loopback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.demo.campaign import TITLE, run_campaign_demo
from auditor.demo.cloud import MAKER_IP
from auditor.demo.devices import ANALYTICS as ANALYTICS_HOST
from auditor.demo.devices import API as API_HOST
from auditor.demo.run import run_demo
from auditor.folder import FolderError

pytestmark = pytest.mark.e2e
# The rules that judge who received the data; a granted, disclosed processor raises none.
RECIPIENT_RULES = {"THIRD_PARTY_UNDISCLOSED", "PERSISTENT_ID_TO_THIRD_PARTY",
                   "LOCATION_TO_THIRD_PARTY", "DIRECT_IDS_TO_THIRD_PARTY",
                   "AD_TRACKER_RECEIVES_CHILD_DATA"}
MAP_SDK = "pinmap-sdk.example"
ANALYTICS = ANALYTICS_HOST.split(".", 1)[1]  # the recipient: its registrable domain
KIDAUDIT = Path(sys.executable).with_name("kidaudit")


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


def test_the_tls_probe_finds_the_one_host_whose_name_the_watch_never_checks(
        demo: tuple[Path, dict, int]) -> None:
    """The demo probes only the maker's API host: the watch refuses the untrusted CA, the
    expired certificate and TLS 1.0, accepts a certificate for another name, and sends its
    registration over it (the data exposed); after the probe its traffic goes on."""
    _, doc, _ = demo
    probe = [f for f in doc["findings"] if f["rule"].startswith("TLS_")]
    assert [(f["rule"], f["recipient"], f["recipients"], f["categories"]) for f in probe] == [
        ("TLS_HOSTNAME_NOT_CHECKED", "Acme Watch Co.", ["acme-watch.example"],
         ["identifier.iccid", "identifier.imei", "identifier.mac"])]
    (cited,) = probe[0]["transmissions"]
    sent = next(t for t in doc["transmissions"] if t["id"] == cited)
    assert (sent["host"], sent["url"].rsplit("/", 2)[-2:]) == (API_HOST, ["device", "register"])
    assert sent["probe"] == "wrong-host" and sent["inspected"]
    assert sorted(t["probe"] for t in doc["transmissions"] if "probe" in t) == [
        "expired", "tls1.0", "untrusted-ca", "wrong-host"]
    refused = doc["coverage"]["uninspected"]
    assert sorted(r["reason"].split(":")[0] for r in refused) == [
        "TLS probe expired", "TLS probe tls1.0", "TLS probe untrusted-ca"]
    assert {r["host"] for r in refused} == {API_HOST}


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


# -- kidaudit demo --campaign ---------------------------------------------------------------


@pytest.fixture(scope="module")
def campaign_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """``kidaudit demo --campaign`` as a newcomer types it: two live sessions, then a
    campaign over them on a local Dask cluster (worker processes), run once."""
    out = tmp_path_factory.mktemp("demo-campaign") / "campaign"
    done = subprocess.run([str(KIDAUDIT), "demo", "--campaign", "--out", str(out)],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done.stdout, json.loads((out / "campaign.json").read_text(encoding="utf-8"))


def test_demo_campaign_says_where_its_report_is(campaign_demo: tuple[Path, str, dict]) -> None:
    out, stdout, _ = campaign_demo
    lines = stdout.splitlines()
    assert "k2-1.4.2: done: fail, 13 findings" in lines
    assert lines[-1] == f"campaign report: {(out / 'campaign.html').resolve()}"
    for name in ("campaign.html", "campaign.zh.html", "manifest.yaml", "captures/1.4.2",
                 "runs/k2-1.5.0/findings.json", "dataset/findings"):
        assert (out / name).exists(), name


def test_the_second_firmware_fixes_one_leak_and_adds_another(
        campaign_demo: tuple[Path, str, dict]) -> None:
    out, _, doc = campaign_demo
    (change,) = doc["changes"]
    assert (change["before"], change["after"]) == ("1.4.2", "1.5.0")
    introduced = {(f["rule"], f["recipient"]): f["categories"] for f in change["introduced"]}
    fixed = {(f["rule"], f["recipient"]) for f in change["fixed"]}
    # the child's name, newly sent to the map SDK
    assert introduced[("SCOPE_EXCEEDED", MAP_SDK)] == ["identity.name"]
    assert {recipient for _, recipient in introduced} == {MAP_SDK}
    # the hashed IMEI, no longer sent to the analytics SDK
    assert ("THIRD_PARTY_UNDISCLOSED", ANALYTICS) in fixed
    assert ("PERSISTENT_ID_TO_THIRD_PARTY", ANALYTICS) in fixed
    for lang, words in (("en", ("Introduced", "Fixed")), ("zh", ("新增", "已修复"))):
        page = (out / ("campaign.html" if lang == "en" else "campaign.zh.html")).read_text(
            encoding="utf-8")
        changes = page.split('<section id="changes">')[1].split("</section>")[0]
        assert f"{words[0]} ({len(introduced)})" in changes
        assert f"{words[1]} ({len(fixed)})" in changes
        added, removed = changes.split(words[1])
        assert MAP_SDK in added and "identity.name" in added and ANALYTICS not in added
        assert ANALYTICS in removed and "THIRD_PARTY_UNDISCLOSED" in removed


def test_each_run_of_the_campaign_page_links_to_its_report(
        campaign_demo: tuple[Path, str, dict]) -> None:
    out, _, _ = campaign_demo
    links = set(re.findall(r'href="(runs/[^"]+)"', (out / "campaign.html").read_text()))
    assert links == {"runs/k2-1.4.2/report.html", "runs/k2-1.5.0/report.html"}
    assert all((out / link).is_file() for link in links)


def test_the_first_firmware_is_the_default_demo(demo: tuple[Path, dict, int],
                                                 campaign_demo: tuple[Path, str, dict]) -> None:
    """The firmware switch leaves the default demo (1.4.2) as it was."""
    _, doc, _ = demo
    first = json.loads((campaign_demo[0] / "runs" / "k2-1.4.2" / "findings.json").read_text())
    assert sorted((f["rule"], f["recipient"], tuple(f["categories"]), f["count"])
                  for f in first["findings"]) == sorted(
        (f["rule"], f["recipient"], tuple(f["categories"]), f["count"]) for f in doc["findings"])


def test_demo_campaign_refuses_a_folder_that_is_not_its_own(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "manifest.yaml").write_text(f"title: '{TITLE}'\n")
    with pytest.raises(FolderError, match="already holds other files"):
        run_campaign_demo(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_the_demo_shows_a_gbt41391_item_the_short_session_did_not_exercise(
        demo: tuple[Path, dict, int]) -> None:
    """The profile's jurisdiction (CN) picks GB/T 41391-2022. The demo idles for seconds, not
    the 30 minutes the idle step needs, and sends nothing personal meanwhile: 6.1 (minimum
    necessary) is not exercised, and the table names the steps that were missing."""
    out, doc, _ = demo
    (standard,) = doc["conformance"]
    assert standard["id"] == "gbt41391-2022"
    status = {i["clause"]: i for i in standard["items"]}
    assert status["6.1"]["status"] == "not exercised"
    assert status["6.1"]["missing_steps"] == ["use", "idle"]
    assert status["6.4"]["status"] == "fail" and status["6.2"]["status"] == (
        "not testable by traffic")
    # 6.4 fails, and still names what it also tests that the session never did
    assert {"refuse", "withdraw"} <= set(status["6.4"]["missing_steps"])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Steps not yet performed:" in page
    steps = {s["id"]: s for s in doc["steps"]}
    assert steps["grant"]["performed"] and steps["tls-probe"]["performed"]
    assert not steps["idle"]["performed"] and "30 min" in steps["idle"]["missing"]
    assert "BACKGROUND_COLLECTION" not in {f["rule"] for f in doc["findings"]}
