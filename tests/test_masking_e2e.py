"""Masking covers every form the detector saw (issue 13, item 3): each seeded value is sent
through the real proxy in one encoding per request, and no output of the session
(findings.json, report.html, detections.csv, the flow comments mitmweb shows) holds it
raw or in the form it was sent in. Each case also checks that its value was detected, so a
case that leaks nothing because nothing was found fails too."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from mitmproxy import io

from auditor.demo.devices import API, Proxy
from tests import factories
from tests.factories import BIRTHDATE, IMEI, PHONE
from tests.proxyrun import run_proxy_session

pytestmark = [pytest.mark.timeout(180), pytest.mark.e2e]

LAT, LON = str(factories.LAT), str(factories.LON)  # as the firmware writes them: text
CONTACT, CONTACT_PHONE = "Wang Fang", factories.CONTACTS[0].phone
CHILD = "Li Xiaoming"
PROFILE = f"""device: {{name: "masking watch"}}
identifiers: {{imei: "{IMEI}", phone: "{PHONE}"}}
child: {{name: "{CHILD}", birthdate: "{BIRTHDATE}"}}
location: {{lat: {LAT}, lon: {LON}}}
contacts: [{{name: "{CONTACT}", phone: "{CONTACT_PHONE}"}}]
first_party: [acme-watch.example]
jurisdiction: CN
"""
OUTPUTS = ("findings.json", "report.html", "detections.csv")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def pct(text: str, case: str = "%02X") -> str:
    """Every character percent-encoded, as some firmware writes query values."""
    return "".join("%" + case % b for b in text.encode())


MD5 = hashlib.md5(IMEI.encode()).hexdigest()
SHA256 = hashlib.sha256(IMEI.encode()).digest()
WRAPPED = b64(json.dumps({"dev": {"imei": IMEI}}))
LABEL_HOST = f"{IMEI}.t.example"
DIGEST_HOST = f"{MD5}.t.example"

# (id, category, host, path and query, JSON body, forms that must not be written out)
CASES = [
    ("imei-plain", "identifier.imei", API, f"?imei={IMEI}", None, [IMEI]),
    ("imei-base64", "identifier.imei", API, f"?d={b64(IMEI)}", None, [b64(IMEI), IMEI]),
    ("imei-base64-unpadded", "identifier.imei", API, f"?d={b64(IMEI[:14]).rstrip('=')}",
     None, [b64(IMEI[:14]).rstrip("=")]),
    ("imei-hex", "identifier.imei", API, f"?d={IMEI.encode().hex()}", None,
     [IMEI.encode().hex()]),
    ("imei-hex-upper", "identifier.imei", API, f"?d={IMEI.encode().hex().upper()}", None,
     [IMEI.encode().hex().upper()]),
    ("imei-percent-per-digit", "identifier.imei", API, f"?d={pct(IMEI)}", None,
     [pct(IMEI), IMEI]),
    ("imei-percent-per-digit-lower", "identifier.imei", API, f"?d={pct(IMEI, '%02x')}", None,
     [pct(IMEI, "%02x")]),
    ("imei-md5", "identifier.imei", API, f"?sign={MD5}", None, [MD5]),
    ("imei-md5-upper", "identifier.imei", API, f"?sign={MD5.upper()}", None, [MD5.upper()]),
    ("imei-sha256-base64url", "identifier.imei", API, f"?t={b64url(SHA256)}", None,
     [b64url(SHA256)]),
    ("imei-inside-base64-json", "identifier.imei", API, f"?p={WRAPPED}", None, [WRAPPED]),
    ("imei-host-label", "identifier.imei", LABEL_HOST, "?x=1", None, [IMEI]),
    ("imei-md5-host-label", "identifier.imei", DIGEST_HOST, "?x=1", None, [MD5]),
    ("imei-query-key", "identifier.imei", API, f"?{IMEI}=1", None, [IMEI]),
    ("imei-json-key", "identifier.imei", API, "", {IMEI: 1}, [IMEI]),
    ("phone-percent-lower", "identity.phone", API, "?tel=%2b8613800138000", None,
     ["%2b8613800138000", "%2B8613800138000", PHONE, PHONE[1:]]),
    ("phone-percent-upper", "identity.phone", API, "?tel=%2B8613800138000", None,
     ["%2B8613800138000", PHONE[1:]]),
    ("phone-spaced", "identity.phone", API, "?tel=138%200013%208000", None,
     ["138%200013%208000", "138 0013 8000"]),
    ("phone-base64", "identity.phone", API, f"?t={b64(PHONE)}", None, [b64(PHONE)]),
    ("birthdate-percent", "identity.birthdate", API, "?b=2017%2D03%2D09", None,
     ["2017%2D03%2D09", BIRTHDATE]),
    ("birthdate-compact", "identity.birthdate", API, "?b=20170309", None, ["20170309"]),
    ("birthdate-slashes-percent", "identity.birthdate", API, "?b=2017%2F03%2F09", None,
     ["2017%2F03%2F09", "2017/03/09"]),
    ("location-query", "location.precise", API, f"?lat={LAT}&lon={LON}", None, [LAT, LON]),
    ("location-json", "location.precise", API, "", {"lat": LAT, "lng": LON}, [LAT, LON]),
    ("location-percent", "location.precise", API, f"?pos={LAT}%2C{LON}", None, [LAT, LON]),
    ("contact-name-plus", "contacts.entry", API, "?n=Wang+Fang", None,
     ["Wang+Fang", CONTACT]),
    ("contact-name-percent", "contacts.entry", API, "?n=Wang%20Fang", None,
     ["Wang%20Fang", CONTACT]),
    ("contact-phone-base64", "contacts.entry", API, f"?c={b64(CONTACT_PHONE)}", None,
     [b64(CONTACT_PHONE)]),
    ("child-name-path", "identity.name", API, "/Li%20Xiaoming", None,
     ["Li%20Xiaoming", CHILD]),
]
ROUTED = (LABEL_HOST, DIGEST_HOST)


def _drive(proxy: Proxy) -> list[int]:
    statuses = []
    for i, (_, _, host, target, body, _) in enumerate(CASES):
        sep = "" if target.startswith(("?", "/")) or not target else "/"
        statuses.append(proxy.https(host, "POST" if body else "GET", f"/c/{i}{sep}{target}",
                                    body))
    return statuses


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One live session through the real proxy; the demo cloud also answers ROUTED."""
    from auditor.demo import run

    tmp = tmp_path_factory.mktemp("masking")
    (tmp / "p.yaml").write_text(PROFILE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run, "HOSTS", (*run.HOSTS, *ROUTED))
        statuses = run_proxy_session(tmp, tmp / "p.yaml", tmp / "session", _drive)
    assert statuses == [200] * len(CASES)
    return tmp / "session"


@pytest.fixture(scope="module")
def written(session: Path) -> dict[str, str]:
    """Every output's text, and the flows' comments (what mitmweb lists)."""
    out = {name: (session / name).read_text(encoding="utf-8") for name in OUTPUTS}
    with open(session / "flows.mitm", "rb") as fh:
        out["comments"] = "\n".join(f.comment for f in io.FlowReader(fh).stream())
    return out


@pytest.mark.parametrize(("case", "category", "secrets"), [
    pytest.param(i, category, secrets, id=name)
    for i, (name, category, _, _, _, secrets) in enumerate(CASES)])
def test_every_form_is_masked_everywhere(session: Path, written: dict[str, str], case: int,
                                         category: str, secrets: list[str]) -> None:
    doc = json.loads(written["findings.json"])
    assert doc["session"]["masked"] is True
    (tx,) = [t for t in doc["transmissions"] if f"/c/{case}" in t["url"].split("?")[0]
             and not t["url"].split("/c/")[1][len(str(case)):][:1].isdigit()]
    found = {d["category"] for d in doc["detections"] if d["transmission"] == tx["id"]}
    assert category in found, (tx, found)  # the value was detected: the case means something
    leaks = [(secret, name) for secret in secrets for name, text in written.items()
             if secret in text]
    assert leaks == []


def test_comments_name_categories_only(written: dict[str, str]) -> None:
    assert "identifier.imei" in written["comments"]
    assert "location.precise" in written["comments"]
