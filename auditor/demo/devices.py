"""The simulated kids' watch and parent app: real HTTP clients talking through the proxy.

The watch registers with its IMEI before the guardian consents, the guardian's consent is
marked, then the watch reports precise location, syncs contacts, calls a third-party
analytics host with a hashed device id, and makes one cleartext HTTP call with a phone
number; finally the session goes idle and the watch keeps reporting.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path

from auditor.marks import MARK_HOST

API = "api.acme-watch.example"
APP = "app.acme-watch.example"
SMS = "sms.acme-watch.example"
ANALYTICS = "collect.tinytrack-analytics.example"
HOSTS = (API, APP, SMS, ANALYTICS)
TIMEOUT = 10


@dataclass
class Proxy:
    port: int
    ca: Path  # mitmproxy's CA certificate, which the simulated devices trust

    def https(self, host: str, method: str, path: str, body: object | None = None) -> int:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx,
                                           timeout=TIMEOUT)
        conn.set_tunnel(host, 443)
        return _send(conn, method, path, body)

    def http(self, host: str, method: str, path: str, body: object | None = None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        return _send(conn, method, f"http://{host}{path}", body)


def _send(conn: http.client.HTTPConnection, method: str, target: str, body: object | None
          ) -> int:
    headers = {"user-agent": "AcmeWatch/1.4.2 (K2; Android 8.1)"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    try:
        conn.request(method, target, body=data, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def run_session(proxy: Proxy, profile: dict) -> list[int]:
    """The scripted lab session; returns the HTTP status of every request."""
    ids, child = profile["identifiers"], profile["child"]
    here, contacts = profile["location"], profile["contacts"]
    hashed = hashlib.sha256(ids["imei"].encode()).hexdigest()
    statuses = [
        # 1. Setup: the watch registers before anyone consented.
        proxy.https(API, "POST", "/v1/device/register",
                    {"dev": {"imei": ids["imei"], "iccid": ids["iccid"], "mac": ids["mac"]},
                     "fw": "1.4.2"}),
        # 2. The guardian agrees in the parent app; the tester marks it.
        proxy.https(APP, "POST", "/api/privacy/agree", {"agree": True, "version": "2026-09"}),
        proxy.http(MARK_HOST, "GET", "/grant?categories=all-disclosed&separate=location.precise"),
        # 3. Normal use.
        proxy.https(API, "POST", "/v1/location/report",
                    {"imei": ids["imei"], "lat": here["lat"], "lng": here["lon"], "acc": 12}),
        proxy.https(APP, "POST", "/api/child/profile",
                    {"name": child["name"], "birthday": child["birthdate"]}),
        proxy.https(API, "POST", "/v1/contacts/sync",
                    {"contacts": [{"n": c["name"], "tel": c["phone"]} for c in contacts]}),
        proxy.https(ANALYTICS, "POST", "/v2/collect",
                    {"event": "app_start", "did": hashed, "os": "android"}),
        proxy.http(SMS, "GET", f"/v1/sos/bind?phone={ids['phone']}&lang=zh"),
        # 4. Idle: the watch sits on the desk and keeps reporting.
        proxy.http(MARK_HOST, "GET", "/phase?name=idle"),
        proxy.https(API, "POST", "/v1/location/report",
                    {"imei": ids["imei"], "lat": round(here["lat"], 2),
                     "lng": round(here["lon"], 2), "acc": 1500}),
    ]
    return statuses
