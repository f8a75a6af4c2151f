"""The simulated kids' watch and parent app: real HTTP clients talking through the proxy.

The watch registers with its IMEI before the guardian consents, the guardian's consent is
marked, then the watch reports precise location (over HTTPS, and as a cellular watch does,
in raw-TCP ``[3G*...]`` frames to its maker's server reached by bare IP), asks the map SDK
the maker uses as its processor for a position, syncs contacts, calls a third-party
analytics host with a hashed device id, and makes one cleartext HTTP call with a phone
number; finally the session goes idle and the watch sends a heartbeat.

The watch has two firmwares (``FIRMWARES``), for ``kidaudit demo --campaign``: 1.4.2, the
default demo's, and 1.5.0, which stops sending the hashed IMEI to the analytics SDK (a leak
fixed) and starts sending the child's name to the map SDK with each fix (a leak added).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
from dataclasses import dataclass, replace
from pathlib import Path

from auditor.marks import MARK_HOST

API = "api.acme-watch.example"
APP = "app.acme-watch.example"
SMS = "sms.acme-watch.example"
ANALYTICS = "collect.tinytrack-analytics.example"
MAP = "lbs.pinmap-sdk.example"  # the map SDK: a processor in the demo's consent plan
HOSTS = (API, APP, SMS, ANALYTICS, MAP)
TIMEOUT = 10
# The watch's flaw the demo's TLS probe shows (TLS_HOSTNAME_NOT_CHECKED): its API client
# checks the certificate's CA and dates but not the name it was issued for. The demo probes
# this host only (``kidaudit_tls_probe_hosts``), so the rest of the session is as before.
HOSTNAME_UNCHECKED = API
# Connections the watch tries for one request: a refused one (the probe's bad certificates)
# is retried at once, as a real watch reconnects; the probe's four cases need at most four.
RECONNECTS = 6


@dataclass(frozen=True)
class Firmware:
    """What one firmware of the simulated watch does differently: a table, not branches."""

    version: str
    analytics_device_id: bool  # the analytics event carries the hashed IMEI
    name_to_map_sdk: bool  # the map SDK request carries the child's name

    @property
    def user_agent(self) -> str:
        return f"AcmeWatch/{self.version} (K2; Android 8.1)"


FIRMWARES = {f.version: f for f in (
    Firmware("1.4.2", analytics_device_id=True, name_to_map_sdk=False),
    Firmware("1.5.0", analytics_device_id=False, name_to_map_sdk=True),
)}
DEFAULT_FIRMWARE = "1.4.2"  # the default demo's (profile.yaml's device.firmware)


@dataclass
class Proxy:
    port: int
    ca: Path  # mitmproxy's CA certificate, which the simulated devices trust
    # mitmproxy's reverse:tcp listener standing in for the maker's server, as the SMS
    # re-pointing of lab-setup.md section 7 makes it; 0 when the proxy has none
    watch_port: int = 0
    user_agent: str = FIRMWARES[DEFAULT_FIRMWARE].user_agent

    def watch(self, frames: list[bytes]) -> bytes:
        """One raw-TCP session of the watch: every frame, then the server's answers up to
        the last frame's (the last frame is a heartbeat, which the server answers)."""
        with socket.create_connection(("127.0.0.1", self.watch_port), timeout=TIMEOUT) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(b"".join(frames))
            got = b""
            while got.count(b"]") < sum(f.endswith(b"LK]") for f in frames):
                if not (chunk := s.recv(4096)):
                    break
                got += chunk
        return got

    def https(self, host: str, method: str, path: str, body: object | None = None) -> int:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.check_hostname = host != HOSTNAME_UNCHECKED
        for attempt in range(RECONNECTS):
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx,
                                               timeout=TIMEOUT)
            conn.set_tunnel(host, 443)
            try:
                return _send(conn, method, path, body, self.user_agent)
            except (ssl.SSLError, ConnectionResetError):
                if attempt == RECONNECTS - 1:
                    raise
        raise AssertionError("unreachable")  # the loop returns or raises

    def http(self, host: str, method: str, path: str, body: object | None = None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        return _send(conn, method, f"http://{host}{path}", body, self.user_agent)


def _send(conn: http.client.HTTPConnection, method: str, target: str, body: object | None,
          user_agent: str) -> int:
    headers = {"user-agent": user_agent}
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


def watch_frame(watch_id: str, content: str) -> bytes:
    """A 3G-protocol frame: ``[3G*ID*LEN*CONTENT]``, LEN the content's length in hex."""
    body = content.encode()
    return b"[3G*%s*%04X*%s]" % (watch_id.encode(), len(body), body)


def position_frame(watch_id: str, lat: float, lon: float) -> bytes:
    """A ``UD`` position report: date, time, fix, latitude, N, longitude, E, then speed,
    course, altitude, satellites, signal, battery, steps and status as 3G watches send."""
    return watch_frame(watch_id, f"UD,281126,101500,A,{lat:.6f},N,{lon:.6f},E,0.00,0.0,"
                                 "52.0,7,100,86,0,0,00000000,0")


def run_session(proxy: Proxy, profile: dict, firmware: str = DEFAULT_FIRMWARE) -> list[int]:
    """The scripted lab session of the watch on ``firmware`` (a key of FIRMWARES); returns
    the HTTP status of every request."""
    fw = FIRMWARES[firmware]
    proxy = replace(proxy, user_agent=fw.user_agent)
    ids, child = profile["identifiers"], profile["child"]
    here, contacts = profile["location"], profile["contacts"]
    hashed = hashlib.sha256(ids["imei"].encode()).hexdigest()
    watch_id = ids["imei"][-10:]  # 3G watches name themselves by the IMEI's last ten digits
    statuses = [
        # 1. Setup: the watch registers before anyone consented.
        proxy.https(API, "POST", "/v1/device/register",
                    {"dev": {"imei": ids["imei"], "iccid": ids["iccid"], "mac": ids["mac"]},
                     "fw": fw.version}),
        # 2. The guardian agrees in the parent app; the tester marks it.
        proxy.https(APP, "POST", "/api/privacy/agree", {"agree": True, "version": "2026-09"}),
        proxy.http(MARK_HOST, "GET", "/grant?categories=all-disclosed&separate=location.precise"),
        # 3. Normal use.
        proxy.https(API, "POST", "/v1/location/report",
                    {"imei": ids["imei"], "lat": here["lat"], "lng": here["lon"], "acc": 12}),
        # The watch's own protocol, to the maker's server by IP: a heartbeat, a position.
        *_tcp(proxy, [watch_frame(watch_id, "LK,0,0,86"),
                      position_frame(watch_id, here["lat"], here["lon"]),
                      watch_frame(watch_id, "LK,0,0,86")]),
        # The map SDK, the maker's processor, turns the fix into a position.
        proxy.https(MAP, "POST", "/v3/geocode/locate",
                    {"lat": here["lat"], "lng": here["lon"], "coord": "wgs84"}
                    | ({"nick": child["name"]} if fw.name_to_map_sdk else {})),
        proxy.https(APP, "POST", "/api/child/profile",
                    {"name": child["name"], "birthday": child["birthdate"]}),
        proxy.https(API, "POST", "/v1/contacts/sync",
                    {"contacts": [{"n": c["name"], "tel": c["phone"]} for c in contacts]}),
        proxy.https(ANALYTICS, "POST", "/v2/collect",
                    {"event": "app_start"} | ({"did": hashed} if fw.analytics_device_id else {})
                    | {"os": "android"}),
        proxy.http(SMS, "GET", f"/v1/sos/bind?phone={ids['phone']}&lang=zh"),
        # Indoors, no GPS fix: the watch reports a coarse position (about 1.5 km).
        proxy.https(API, "POST", "/v1/location/report",
                    {"imei": ids["imei"], "lat": round(here["lat"], 2),
                     "lng": round(here["lon"], 2), "acc": 1500}),
        # 4. Idle: the watch sits on the desk and sends a heartbeat with no personal data.
        # A few seconds of idle prove nothing about background collection: the report's
        # GB/T 41391-2022 table shows 6.1 as not exercised, naming the 30-minute idle step.
        proxy.http(MARK_HOST, "GET", "/phase?name=idle"),
        proxy.https(API, "POST", "/v1/device/heartbeat", {"battery": 86, "steps": 0}),
    ]
    return statuses


def _tcp(proxy: Proxy, frames: list[bytes]) -> list[int]:
    """The raw-TCP session in the statuses list: 200 if the server answered every
    heartbeat, 0 when it did not; nothing when the proxy has no watch listener."""
    if not proxy.watch_port:
        return []
    answers = proxy.watch(frames)
    return [200 if answers.count(b"]") == sum(f.endswith(b"LK]") for f in frames) else 0]
