"""Shared test factories: one seeded watch, one outgoing message, one consent plan.

Every unit test builds its inputs here and overrides only what the case is about, so the
seeded values (the lab's ground truth) are written once (STYLE.md 10).
"""

from __future__ import annotations

import dataclasses
import json as jsonlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from mitmproxy import http, io
from mitmproxy.test import tflow

from auditor.model import (
    ConsentEvent,
    ConsentPlan,
    Contact,
    Device,
    Disclosure,
    Location,
    Profile,
    Transmission,
)

# The seeded values (DESIGN.md "Device profile").
IMEI = "864536040123455"
ICCID = "8986002209123456789"
MAC = "3c:5a:b4:01:02:03"
PHONE = "+8613800138000"
CHILD_NAME = "Wang Xiaoming"
BIRTHDATE = "2017-03-09"
LAT, LON = 39.98312, 116.30791
CONTACTS = (Contact("Li Mei", "+8613900139001"), Contact("Zhang Wei", "+8613700137002"))
FIRST_PARTY = "acme-watch.example"
HOST = "api.acme-watch.example"

T0 = datetime(2026, 11, 28, 10, 15, tzinfo=UTC).timestamp()
"""The session's first grant in the DESIGN.md consent plan example."""

# What the privacy notice disclosed, per recipient (the DESIGN.md consent plan example).
DISCLOSED: dict[str, tuple[str, ...]] = {
    FIRST_PARTY: ("location.precise", "identifier.imei", "contacts.entry"),
    "amap.com": ("location.precise", "location.wifi", "location.cell"),
}


def profile(**overrides: object) -> Profile:
    """The seeded kids' watch; any field of ``Profile`` may be overridden."""
    base = Profile(
        device=Device(name="Acme Kids Watch K2", kind="smartwatch", firmware="1.4.2"),
        identifiers={"imei": (IMEI,), "iccid": (ICCID,), "mac": (MAC,), "phone": (PHONE,)},
        child={"name": (CHILD_NAME,), "birthdate": (BIRTHDATE,)},
        location=Location(lat=LAT, lon=LON),
        contacts=CONTACTS,
        first_party=(FIRST_PARTY,),
        jurisdiction="CN",
        source="factories.profile",
    )
    return dataclasses.replace(base, **overrides)


def tx(*, json: object = None, **overrides: object) -> Transmission:
    """An HTTPS POST to the maker's API with a JSON body. ``json=`` replaces the body with that
    document; ``path=`` without ``url=`` keeps the URL in step."""
    fields: dict[str, object] = {
        "id": 1,
        "ts": T0,
        "transport": "https",
        "host": HOST,
        "port": 443,
        "ip": "203.0.113.10",
        "method": "POST",
        "path": "/api/v1/report",
        "headers": (("Host", HOST), ("Content-Type", "application/json")),
        "body": jsonlib.dumps({"imei": IMEI, "battery": 87}).encode(),
        "content_type": "application/json",
    }
    if json is not None:
        fields["body"] = jsonlib.dumps(json, ensure_ascii=False).encode()
    fields.update(overrides)
    if "url" not in overrides:
        fields["url"] = f"https://{fields['host']}{fields['path']}"
    return Transmission(**fields)  # type: ignore[arg-type]


def event(action: str = "grant", ts: float = T0, categories: str | Iterable[str] = (),
          **overrides: object) -> ConsentEvent:
    """A consent event; ``categories`` may be one spec (``"all-disclosed"``) or several."""
    cats = (categories,) if isinstance(categories, str) else tuple(categories)
    for key in ("recipients", "separate"):
        value = overrides.get(key)
        if isinstance(value, str):
            overrides[key] = (value,)
        elif value is not None:
            overrides[key] = tuple(value)  # type: ignore[arg-type]
    return ConsentEvent(ts=ts, action=action, categories=cats, **overrides)  # type: ignore[arg-type]


def plan(*events: ConsentEvent, disclosed: Mapping[str, Iterable[str]] | None = None,
         **overrides: object) -> ConsentPlan:
    """A consent plan with the DESIGN.md disclosures (unless ``disclosed=`` replaces them)."""
    table = DISCLOSED if disclosed is None else disclosed
    return ConsentPlan(
        disclosed=tuple(Disclosure(r, tuple(cats)) for r, cats in table.items()),
        events=tuple(sorted(events, key=lambda e: e.ts)),
        source="factories.plan",
        **overrides,  # type: ignore[arg-type]
    )


# -- real .mitm files, written with mitmproxy's own FlowWriter from tflow flows -----------

def http_flow(url: str, ts: float, body: object | None = None, method: str = "POST"
              ) -> http.HTTPFlow:
    f = tflow.tflow(resp=True)
    f.request = http.Request.make(method, url, jsonlib.dumps(body).encode() if body else b"",
                                  {"content-type": "application/json"})
    f.request.timestamp_start = f.request.timestamp_end = ts
    return f


def write_flows(path: Path, flows: list) -> Path:
    with open(path, "wb") as fh:
        writer = io.FlowWriter(fh)
        for f in flows:
            writer.add(f)
    return path


# -- a session's store and the command line, as the tests read them -------------------------
def committed(session: Path) -> int:
    """How many transmissions the session's store holds (read through the public Store)."""
    from auditor.store import Store

    store = Store.open_existing(session)
    try:
        return len(store.observations())
    finally:
        store.close()


def wait_committed(session: Path, n: int, tries: int = 3000) -> None:
    """Until the worker has committed ``n`` messages: bounded in count (and so in time)."""
    import time

    for _ in range(tries):
        if committed(session) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} committed")


def run_main(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """``kidaudit ARGS`` in this process, through main()'s exit-code mapping: the exit code
    and what it printed to stderr. main() sets umask 077 for the process; it is put back."""
    import os
    import sys

    import pytest

    from auditor.cli import main

    monkeypatch.setattr(sys, "argv", ["kidaudit", *args])
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        with pytest.raises(SystemExit) as ended:
            main()
    finally:
        os.umask(umask)
    return ended.value.code, capsys.readouterr().err


# -- files the tests write (tests/conftest.py's fixtures put them in tmp_path) ---------------
IMEI_PROFILE_YAML = f'identifiers: {{imei: "{IMEI}"}}\n'
"""The least profile that makes a finding: the seeded IMEI alone."""

WATCH_PROFILE_YAML = IMEI_PROFILE_YAML + f"first_party: [{FIRST_PARTY}]\n"
"""The seeded IMEI and the maker as first party, so its own API is no third party."""

PLAN_YAML = (f"disclosed:\n  - {{recipient: {FIRST_PARTY}, categories: [identifier]}}\n"
             "signals:\n  - {filter: '~u /privacy/agree', action: grant,"
             " categories: all-disclosed}\n")
"""A consent plan: identifiers disclosed to the maker, granted when the app's agree page loads."""

OTHER_IMEI = "358916049988772"
"""A Luhn-valid IMEI (reporting body 35) that no profile seeds: found by its pattern alone."""

OTHER_ICCID = "8986019876543210987"
"""An ICCID that no profile seeds: found by its pattern alone."""

EPOCH = 1_790_000_000.0
"""A round time (2026-09-21 UTC) for captures whose date is beside the point."""

PHONE_DIGITS = PHONE.lstrip("+")
"""The seeded phone as many watches send it: country code, no plus sign."""

IMSI = "460001234567890"
"""A China Mobile IMSI (MCC 460, MNC 00), as watch and tracker frames carry it."""

# The maker's own addresses (documentation blocks, RFC 5737 / RFC 3849) and its name, for a
# profile's first_party CIDR entries and organisations: tx()'s ip lies in MAKER_BLOCK.
MAKER_BLOCK = "203.0.113.0/24"
MAKER_BLOCK6 = "2001:db8::/32"
MAKER_ORG = "Acme Watch Co."
