"""findings.json is the same text ``json.dumps`` gives, written without holding it whole."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from auditor.model import Detection, Observation, Recipient
from auditor.report import document, findings_json
from tests.factories import FIRST_PARTY, HOST, IMEI, LAT, tx


def _doc(n: int) -> dict:
    return {"schema": "kidaudit.findings/1", "session": {"device": {"name": "手表 \u2028"}},
            "transmissions": [{"id": i, "host": "api.acme-watch.example", "url": f"/r?i={i}",
                               "recipient": {"party": "first", "country": None},
                               "consent": {"identifier.imei": "granted"}} for i in range(n)],
            "detections": [], "findings": [], "events": [], "coverage": {"errors": []}}


@pytest.mark.parametrize("n", [0, 1, 50])
def test_same_text_as_json_dumps(tmp_path: Path, n: int) -> None:
    doc = _doc(n)
    findings_json.render(doc, tmp_path / "findings.json")
    text = (tmp_path / "findings.json").read_text(encoding="utf-8")
    assert text == json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    assert json.loads(text) == doc


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


# -- the document: masked in every form, built transmission by transmission --------------
def _obs(tx_id: int, url: str, *detections: Detection, host: str = HOST) -> Observation:
    return Observation(tx(id=tx_id, host=host, url=url), Recipient(FIRST_PARTY, party="first"),
                       detections)


def _imei(tx_id: int, field: str = "query.d", value: str = IMEI,
          encoding: tuple[str, ...] = ()) -> Detection:
    return Detection(tx_id, "identifier.imei", "known", "query", field, encoding,
                     "identifiers.imei", value, 0.99)


BROKEN = Detection(2, "identifier.imei", "known", "query", "query.d", (), "identifiers.imei",
                   None, 0.99)  # type: ignore[arg-type]  # a row that cannot be built


@pytest.mark.parametrize(("observations", "written", "failed"), [
    pytest.param([_obs(1, f"https://{HOST}/a?d={IMEI}", _imei(1))], [1], [], id="one-row"),
    pytest.param([_obs(1, f"https://{HOST}/a?d={IMEI}", _imei(1)),
                  _obs(2, f"https://{HOST}/b?d={IMEI}", BROKEN),
                  _obs(3, f"https://{HOST}/c?d={IMEI}", _imei(3))], [1, 3], [2],
                 id="the-broken-row-is-an-error-the-rest-written"),
    pytest.param([_obs(2, f"https://{HOST}/b", BROKEN)], [], [2], id="only-a-broken-row"),
])
def test_each_transmission_is_built_on_its_own(observations: list[Observation],
                                               written: list[int], failed: list[int]) -> None:
    doc = document.build({}, observations, [], [], {"errors": [{"transmission": 9,
                                                                "stage": "detect",
                                                                "message": "earlier"}]})
    assert [t["id"] for t in doc["transmissions"]] == written
    assert sorted({d["transmission"] for d in doc["detections"]}) == written
    errors = doc["coverage"]["errors"]
    assert [e["transmission"] for e in errors] == [9, *failed]
    assert doc["coverage"]["analysis_errors"] == 1 + len(failed)
    assert [(e["stage"], e["message"]) for e in errors[1:]] == [
        ("report", "transmission left out (TypeError)")] * len(failed)


PCT = "".join(f"%{b:02x}" for b in IMEI.encode())


@pytest.mark.parametrize(("obs", "reveal", "raw"), [
    pytest.param(_obs(1, f"https://{IMEI}.t.example/a", _imei(1, "url.host"),
                      host=f"{IMEI}.t.example"), False, IMEI, id="host-label"),
    pytest.param(_obs(1, f"https://{HOST}/a?d={PCT}", _imei(1)), False, PCT,
                 id="percent-per-digit"),
    pytest.param(_obs(1, f"https://{HOST}/a?{IMEI}=1", _imei(1, f"query.{IMEI}")), False,
                 IMEI, id="query-key-and-field-path"),
    pytest.param(_obs(1, f"https://{HOST}/a?d={PCT}", _imei(1)), True, PCT,
                 id="revealed-stays-as-sent"),
])
def test_document_masks_every_form(obs: Observation, reveal: bool, raw: str) -> None:
    doc = document.build({}, [obs], [], [], {}, reveal=reveal)
    text = json.dumps(doc)
    assert (raw in text) is reveal
    assert doc["session"]["masked"] is not reveal
    assert doc["transmissions"][0]["url"].startswith("https://")


@pytest.mark.parametrize(("url", "seeded", "raw"), [
    pytest.param(f"https://{HOST}/a?lat={LAT}", [("location.precise", str(LAT))], str(LAT),
                 id="a-lone-seeded-latitude-is-masked"),
    pytest.param(f"https://{HOST}/a?lat=12.34567", [("location.precise", str(LAT))], "",
                 id="other-numbers-stay"),
])
def test_seeded_values_are_masked_without_a_detection(url: str, seeded: list, raw: str
                                                      ) -> None:
    doc = document.build({}, [_obs(1, url)], [], [], {}, seeded=seeded)
    written = doc["transmissions"][0]["url"]
    assert (written == url) is (not raw)
    assert not raw or raw not in written
