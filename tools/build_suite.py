"""How ``auditor/validate/suite.json`` was made: ``python -m tools.build_suite`` (or
``python tools/build_suite.py``) rewrites it.

The suite is data (the file a lab cites, shipped in the package for ``kidaudit validate``);
this generator is not: it only saves writing digests, base64 and percent-encodings by hand,
so it lives outside the package. ``build()`` returns the suite; nothing is kept between
calls, so the test that compares it with the shipped file sees what a fresh run writes.

Every value is synthetic: identifiers are made up (IMEIs and ICCIDs Luhn-valid, the
resident ID with a valid check character, phone numbers valid CN mobiles), so no real
person's data ships. Message *formats* come from the public
samples named in each case's ``source`` (see PROVENANCE below).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import cbor2
import msgpack

from auditor.detect.location import BD09, GCJ02, datums
from auditor.model import Location
from auditor.validate.runner import SCHEMA, SUITE

PROVENANCE: dict[str, str] = {
    "own": "written for kidaudit; synthetic values",
    "traccar-watch": "message format of the 3G/SG/ZJ watch text protocol as in "
                     "traccar/traccar src/test/java/org/traccar/protocol/"
                     "WatchProtocolDecoderTest.java @ 263f63e1 (Apache-2.0); every "
                     "identifier, position, cell and BSSID replaced by synthetic values",
    "traccar-h02": "message format of the H02 tracker protocol as in traccar/traccar "
                   "H02ProtocolDecoderTest.java @ c42824ac (Apache-2.0); values synthetic",
    "sensorsdata": "shape of the Sensors Data Android SDK 6.7.2 upload (key names, "
                   "crc/gzip/data_list envelope) from awslabs/clickstream-analytics-on-aws "
                   "sensors-data test fixtures @ 8bf12e48 (Apache-2.0); values synthetic",
    "ga4-gtm": "shape of GA4 hits as received by server-side GTM, from "
               "awslabs/clickstream-analytics-on-aws gtm-server fixtures @ 5a96cec4 "
               "(Apache-2.0); values synthetic",
    "segment-spec": "key names of the Segment spec common fields (segmentio/segment-docs "
                    "src/partners/spec.md @ 530f3003, CC BY 4.0, attribution: Segment); "
                    "values synthetic, no text copied",
    "mixpanel-keys": "property key names the Mixpanel Android SDK attaches "
                     "(mixpanel/mixpanel-android AnalyticsMessages.java @ dfea8cba, "
                     "Apache-2.0); values synthetic",
    "google-geolocation": "request shape of the Google Geolocation API (key names "
                          "only, paraphrased in shared corpus sdk-payloads/README.md)",
    "amap-position": "query shape of Amap apilocate.amap.com/position (key names only, "
                     "paraphrased; unverified parts marked in shared corpus README)",
    "baidu-locapi": "body shape of Baidu locapi/v2 (key names only, paraphrased)",
}

HOST = "https://api.kidwatch.example"
SDK = "https://sdk.tracker.example"

# --------------------------------------------------------------------------- the profile
IMEI = "868026045123458"
IMSI = "460001234567890"
ICCID = "8986001234567890120"
MAC = "3c:5a:b4:6e:21:9d"
ANDROID_ID = "5f1c2a9e7b3d4c10"
ADID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
SERIAL = "K2X7A0012345"
PHONE = "+8613812345678"
NAME = "Chen Xiaoyu"
NAME_ZH = "陈小雨"
SCHOOL_ZH = "海淀实验小学"
ADDRESS_ZH = "北京市海淀区中关村大街12号"
CONTACT_ZH = {"name": "赵丽华", "phone": "+8613612345674"}  # a contact known only in Chinese
BIRTH = "2016-08-21"
SCHOOL = "Haidian Experimental Primary School"
EMAIL = "xiaoyu.chen@example.com"
NATIONAL_ID = "110108201608210026"
ADDRESS = "12 Zhongguancun Street"
LAT, LON = "22.54286", "114.05956"
CELLS = ({"mcc": "460", "mnc": "0", "lac": "10140", "cid": "23561"},
         {"mcc": "460", "mnc": "1", "lac": "4291", "cid": "188543"})
BSSIDS = ("5c:63:bf:12:34:56", "d4:ee:07:ab:cd:ef")
CONTACTS = ({"name": "Chen Jun", "phone": "+8613912345670"},
            {"name": "Liu Fang", "phone": "+8613712345671"}, CONTACT_ZH)
PASSWORD = "Panda#2016"

PROFILE: dict[str, Any] = {
    "device": {"name": "Validation Watch V1", "kind": "smartwatch", "firmware": "2.0.1"},
    "identifiers": {"imei": IMEI, "imsi": IMSI, "iccid": ICCID, "mac": MAC,
                    "android_id": ANDROID_ID, "advertising_id": ADID, "serial": SERIAL,
                    "phone": PHONE},
    "child": {"name": [NAME, NAME_ZH], "birthdate": BIRTH, "school": [SCHOOL, SCHOOL_ZH],
              "email": EMAIL, "national_id": NATIONAL_ID, "address": [ADDRESS, ADDRESS_ZH]},
    "location": {"lat": LAT, "lon": LON, "cell": list(CELLS), "wifi": list(BSSIDS)},
    "contacts": list(CONTACTS),
    "credentials": [{"username": "xiaoyu", "password": PASSWORD}],
    "first_party": ["kidwatch.example"],
    "jurisdiction": "CN",
}

# Unseeded values: found by validated patterns (or key names) only.
U_IMEI = ("358916049988772", "861234050678906")
U_ICCID = "8986019876543210987"
U_IMSI_HOME = "460021234509876"
U_IMSI_AWAY = "310260123456789"
U_MAC = "8c:85:90:1a:2b:3c"
U_EMAIL = "parent.li@example.org"
U_PHONES = ("+8615012345672", "+8618612345673", "+8613611112222")
U_RESIDENT = "440305201503140031"
U_LAT, U_LON = "31.23041", "121.47370"
U_BSSIDS = ("70:3a:0e:11:22:33", "a4:56:02:aa:bb:cc", "b0:95:75:10:20:30")
U_ANDROID_ID = "a81f3c9e0d2b7765"
U_ADID = "6d9a1f0e-2b3c-4d5e-8f70-1a2b3c4d5e6f"
GA_CLIENT_ID = "Qm9ndXNDbGllbnRJZEZvclRlc3Rz0A==.1732790000"  # synthetic, GA4 client_id shape

Case = dict[str, Any]
SUITE_PATH = Path(__file__).resolve().parent.parent / "auditor" / "validate" / SUITE


def digest(name: str, value: str) -> str:
    return hashlib.new(name, value.encode()).hexdigest()


def b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def gzipped(data: bytes) -> bytes:
    """A gzip member that is byte for byte the same on every interpreter and zlib build, so
    suite.json is too: gzip.compress's header changed in Python 3.13 (OS byte 255, not 3) and
    zlib-ng finds other back-references than zlib. Header: no time, no name, OS 255
    ("unknown"). Body: one fixed-Huffman deflate block of literals only (RFC 1951 3.2.6),
    which every inflater reads and which, unlike stored blocks, does not show the text."""
    acc, n = 0b011, 3  # BFINAL=1, BTYPE=01; fields are packed from the low bit up
    for sym in (*data, 256):  # 256: end of block
        code, width = ((0x30 + sym, 8) if sym < 144 else (0x190 + sym - 144, 9)
                       if sym < 256 else (0, 7))
        acc |= int(f"{code:0{width}b}"[::-1], 2) << n  # Huffman codes go high bit first
        n += width
    deflate = acc.to_bytes((n + 7) // 8, "little")
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + deflate
            + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))


def exp(category: str, field: str, encoding: str = "plain") -> dict[str, str]:
    return {"category": category, "field": field, "encoding": encoding}


def case(cid: str, source: str, expect: list[dict[str, str]], *, url: str = HOST + "/api",
         body: str | None = None, content_type: str = "", headers: list[list[str]] | None = None,
         method: str = "", note: str = "", body_b64: str | None = None, transport: str = ""
         ) -> Case:
    c: Case = {"id": cid, "source": source, "url": url}
    if transport:
        c["transport"] = transport
    if method:
        c["method"] = method
    if headers:
        c["headers"] = headers
    if content_type:
        c["content_type"] = content_type
    if body is not None:
        c["body"] = body
    if body_b64 is not None:
        c["body_b64"] = body_b64
    if note:
        c["note"] = note
    c["expect"] = expect
    return c


def json_case(cid: str, source: str, doc: Any, expect: list[dict[str, str]], **kw: Any) -> Case:
    return case(cid, source, expect, body=json.dumps(doc, ensure_ascii=False),
         content_type="application/json", method="POST", **kw)


def form_case(cid: str, source: str, pairs: dict[str, str], expect: list[dict[str, str]],
              **kw: Any) -> Case:
    return case(cid, source, expect, body=urlencode(pairs),
         content_type="application/x-www-form-urlencoded", method="POST", **kw)


def query_case(cid: str, source: str, pairs: dict[str, str], expect: list[dict[str, str]],
               path: str = "/api", base: str = HOST) -> Case:
    return case(cid, source, expect, url=f"{base}{path}?{urlencode(pairs)}", method="GET")


# --------------------------------------------------------------------------- known values

SEEDS: dict[str, tuple[str, str]] = {
    # profile key -> (category, value)
    "imei": ("identifier.imei", IMEI), "imsi": ("identifier.imsi", IMSI),
    "iccid": ("identifier.iccid", ICCID), "mac": ("identifier.mac", MAC),
    "android_id": ("identifier.android_id", ANDROID_ID),
    "advertising_id": ("identifier.advertising", ADID), "serial": ("identifier.serial", SERIAL),
    "phone": ("identity.phone", PHONE), "name": ("identity.name", NAME),
    "birthdate": ("identity.birthdate", BIRTH), "school": ("identity.school", SCHOOL),
    "email": ("identity.email", EMAIL), "national_id": ("identity.national_id", NATIONAL_ID),
    "address": ("identity.address", ADDRESS), "password": ("credentials.password", PASSWORD),
    "contact_name": ("contacts.entry", CONTACTS[0]["name"]),
    "contact_phone": ("contacts.entry", CONTACTS[1]["phone"]),
    "bssid": ("location.wifi", BSSIDS[0]),
}

# Neutral key names, so a known-value case does not also lean on the key lexicon.
NEUTRAL = "v1"


def known_cases() -> Iterator[Case]:
    for key, (category, value) in SEEDS.items():
        yield query_case(f"known-{key}-query", "own", {NEUTRAL: value, "t": "1732790000"},
                         [exp(category, f"query.{NEUTRAL}")])
        yield case(f"known-{key}-header", "own", [exp(category, "header.x-kw-v1")],
                   headers=[["X-Kw-V1", value]])
        cookie_label = "url" if quote(value) != value else "plain"
        yield case(f"known-{key}-cookie", "own", [exp(category, "cookie.kw*", cookie_label)],
                   headers=[["Cookie", f"session=9f2c41aa; kw={quote(value)}"]],
                   note="cookie value percent-encoded as browsers and SDKs write it")
        yield form_case(f"known-{key}-form", "own", {"a": "1", NEUTRAL: value},
                        [exp(category, f"body.form.{NEUTRAL}")])
        yield json_case(f"known-{key}-json", "own", {"data": {"p": {NEUTRAL: value}}, "v": 3},
                        [exp(category, f"body.json.data.p.{NEUTRAL}")])
        yield query_case(f"known-{key}-base64", "own", {"d": b64(value)},
                         [exp(category, "query.d*", "base64")])
        yield json_case(f"known-{key}-base64-json", "own",
                        {"payload": b64(json.dumps({"k": value}))},
                        [exp(category, "body.json.payload*", "base64+json")])
        yield json_case(f"known-{key}-json-in-string", "own",
                        {"payload": json.dumps({"k": value, "n": 1})},
                        [exp(category, "body.json.payload*", "json")])
        for name in ("md5", "sha1", "sha256", "sha512"):
            yield form_case(f"known-{key}-{name}", "own", {"sign": digest(name, value)},
                            [exp(category, "body.form.sign", name)])
        yield query_case(f"known-{key}-md5-upper", "own", {"h": digest("md5", value).upper()},
                         [exp(category, "query.h", "md5")])
        yield case(f"known-{key}-sha256-base64", "own", [exp(category, "header.x-sig",
                                                             "base64+sha256")],
                   headers=[["X-Sig", b64(hashlib.sha256(value.encode()).digest())]])
        yield json_case(f"known-{key}-hex", "own", {"blob": value.encode().hex()},
                        [exp(category, "body.json.blob*", "hex")])
    yield json_case("known-imei-14-digits", "own", {"deviceNo": IMEI[:14]},
                    [exp("identifier.imei", "body.json.deviceNo", "no-check-digit")],
                    note="IMEI without its check digit, as some SDKs send it")
    yield query_case("known-name-zh-query", "own", {"nick": NAME_ZH},
                     [exp("identity.name", "query.nick")])
    # a percent-encoded layer inside a JSON string (decoded by the url layer)
    yield json_case("known-imei-url-layer", "own", {"q": f"imei%3D{IMEI}%26fw%3D2.0.1"},
                    [exp("identifier.imei", "body.json.q*", "url")])


def format_cases() -> Iterator[Case]:
    """Every form the issue names for MACs, phones and dates."""
    for i, mac in enumerate(("3c:5a:b4:6e:21:9d", "3C-5A-B4-6E-21-9D", "3c5ab46e219d",
                             "3c5a.b46e.219d", "3C5AB46E219D")):
        yield json_case(f"mac-form-{i}", "own", {"hw": mac}, [exp("identifier.mac",
                                                                  "body.json.hw")])
    for i, phone in enumerate(("+8613812345678", "8613812345678", "008613812345678",
                               "13812345678", "138 1234 5678", "138-1234-5678",
                               "+86 138 1234 5678", "+86-138-1234-5678")):
        yield json_case(f"phone-form-{i}", "own", {"n": phone}, [exp("identity.phone",
                                                                     "body.json.n")])
    for i, day in enumerate(("2016-08-21", "20160821", "2016/08/21", "21/08/2016",
                             "2016年8月21日", "21.08.2016")):
        yield json_case(f"birthdate-form-{i}", "own", {"d": day},
                        [exp("identity.birthdate", "body.json.d")])
    for i, name in enumerate(("Chen Xiaoyu", "chenxiaoyu", "CHEN XIAOYU", "Chen_Xiaoyu",
                              NAME_ZH, f"宝贝{NAME_ZH}")):
        yield json_case(f"name-form-{i}", "own", {"nick": name}, [exp("identity.name",
                                                                      "body.json.nick")])


def location_cases() -> Iterator[Case]:
    p = "location.precise"
    yield json_case("loc-decimal-siblings", "own", {"gps": {"lat": LAT, "lng": LON}},
                    [exp(p, "body.json.gps.lat+body.json.gps.lng")])
    yield json_case("loc-lon-lat-string", "own", {"p": f"{LON},{LAT}"}, [exp(p, "body.json.p")])
    yield json_case("loc-coarse", "own", {"la": "22.54", "lo": "114.06"},
                    [exp("location.coarse", "body.json.la+body.json.lo")])
    for scale in (5, 6, 7):
        lat = str(round(float(LAT) * 10 ** scale))
        lon = str(round(float(LON) * 10 ** scale))
        yield json_case(f"loc-scaled-1e{scale}", "own", {"y": lat, "x": lon},
                        [exp(p, "body.json.y+body.json.x")])
    yield query_case("loc-query-amap-location", "amap-position",
                     {"location": f"{LON},{LAT}", "key": "0a1b2c3d4e5f60718293a4b5c6d7e8f9"},
                     [exp(p, "query.location")], path="/v3/geocode/regeo")
    yield case("loc-nmea-h02", "traccar-h02", [exp(p, "body.text")],
               body=f"*HQ,{IMEI[:10]},V1,104000,A,2232.5716,N,11403.5736,E,000.27,235,130721,"
                    "FFFFFBFF#", content_type="text/plain",
               note="H02 V1 frame: NMEA ddmm.mmmm,N (the 10-digit device id is not an IMEI)")
    c0 = CELLS[0]
    yield case("h02-v6-iccid", "traccar-h02",
               [exp(p, "body.text"), exp("location.cell", "body.text"),
                exp("identifier.iccid", "body.text")],
               body=f"*HQ,{IMEI[:10]},V6,002926,A,2232.5716,N,11403.5736,E,0.00,0.00,151222,"
                    f"FFF7FBFF,460,0,{c0['lac']},{c0['cid']},{ICCID}F,#",
               content_type="text/plain", method="POST", note="H02 V6: position, tower, ICCID + F")
    yield case("h02-v1-hex-cell", "traccar-h02",
               [exp(p, "body.text"), exp("location.cell", "body.text"),
                exp("identifier.imei", "body.text")],
               body=f"*HQ,{IMEI},V1,104000,A,2232.5716,N,11403.5736,E,000.27,235,130721,FFFFFBFF,"
                    f"460,0,{int(c0['lac']):x},{int(c0['cid']):x},6#",
               content_type="text/plain", method="POST", note="H02 V1 with LAC/CID in hex")
    yield case("h02-heartbeat-unseeded", "traccar-h02", [exp("identifier.imei", "body.text")],
               body=f"*HQ,{U_IMEI[0]},HTBT,100#", content_type="text/plain", method="POST")
    yield json_case("loc-base64-json", "own", {"d": b64(json.dumps({"lat": LAT, "lon": LON}))},
                    [exp(p, "body.json.d.*lat+body.json.d.*lon", "base64+json")])
    # unseeded positions, next to location keys
    yield json_case("loc-unseeded-siblings", "own", {"pos": {"latitude": U_LAT,
                                                             "longitude": U_LON}},
                    [exp(p, "body.json.pos.latitude+body.json.pos.longitude")])
    yield json_case("loc-unseeded-pinyin", "own", {"wd": U_LAT, "jd": U_LON},
                    [exp(p, "body.json.wd+body.json.jd")])
    yield json_case("loc-unseeded-coarse", "own", {"lat": "31.2", "lng": "121.5"},
                    [exp("location.coarse", "body.json.lat+body.json.lng")])
    yield form_case("loc-unseeded-location-key", "own", {"location": f"{U_LAT},{U_LON}"},
                    [exp(p, "body.form.location")])
    yield json_case("loc-segment-context", "segment-spec",
                    {"context": {"location": {"city": "Shenzhen", "latitude": LAT, "longitude": LON,
                                              "speed": 0},
                                 "device": {"advertisingId": ADID, "manufacturer": "Acme"}},
                     "type": "track", "event": "Watch Opened"},
                    [exp(p,
                         "body.json.context.location.latitude+body.json.context.location.longitude"),
                     exp("identifier.advertising", "body.json.context.device.advertisingId")])


def cell_wifi_cases() -> Iterator[Case]:
    c0, c1 = CELLS
    yield json_case("cell-google-geolocation", "google-geolocation",
                    {"homeMobileCountryCode": 460, "homeMobileNetworkCode": 0, "radioType": "lte",
                     "considerIp": False,
                     "cellTowers": [{"cellId": int(c0["cid"]), "locationAreaCode": int(c0["lac"]),
                                     "mobileCountryCode": 460, "mobileNetworkCode": 0,
                                     "signalStrength": -65}],
                     "wifiAccessPoints": [{"macAddress": BSSIDS[0], "signalStrength": -43},
                                          {"macAddress": U_BSSIDS[0], "signalStrength": -71}]},
                    [exp("location.cell", "body.json.cellTowers.0.*"),
                     exp("location.wifi", "body.json.wifiAccessPoints.0.macAddress"),
                     exp("location.wifi", "body.json.wifiAccessPoints.1.macAddress")],
                    url="https://www.googleapis.example/geolocation/v1/geolocate")
    yield json_case("cell-google-unseeded", "google-geolocation",
                    {"cellTowers": [{"cellId": 42211, "locationAreaCode": 9350,
                                     "mobileCountryCode": 460, "mobileNetworkCode": 1}]},
                    [exp("location.cell", "body.json.cellTowers.0.*")],
                    url="https://www.googleapis.example/geolocation/v1/geolocate")
    yield query_case("cell-amap-position", "amap-position",
                     {"accesstype": "0", "imei": IMEI, "smac": MAC,
                      "bts": f"460,0,{c0['lac']},{c0['cid']},-65",
                      "nearbts": f"460,1,{c1['lac']},{c1['cid']},-80|460,0,9350,42211,-90",
                      "macs": f"{BSSIDS[0]},-50,home|{U_BSSIDS[1]},-70,cafe", "output": "json",
                      "key": "0a1b2c3d4e5f60718293a4b5c6d7e8f9"},
                     [exp("identifier.imei", "query.imei"), exp("identifier.mac", "query.smac"),
                      exp("location.cell", "query.bts"), exp("location.cell", "query.nearbts"),
                      exp("location.wifi", "query.macs")],
                     path="/position", base="https://apilocate.amap.example")
    yield query_case("cell-amap-unseeded", "amap-position",
                     {"accesstype": "0", "imei": U_IMEI[0], "bts": "460,0,9350,42211,-90",
                      "output": "json"},
                     [exp("identifier.imei", "query.imei"), exp("location.cell", "query.bts")],
                     path="/position", base="https://apilocate.amap.example")
    yield json_case("cell-baidu-locapi", "baidu-locapi",
                    {"key": "b1d2", "src": "kidwatch", "prod": "v1", "ver": "1.0", "trace": False,
                     "body": [{"accesstype": 0, "imei": IMEI, "smac": MAC, "imsi": IMSI,
                               "network": "GSM", "tel": PHONE,
                               "bts": f"460,1,{c1['lac']},{c1['cid']},-70",
                               "gps": f"{LON}|{LAT}|30"}]},
                    [exp("identifier.imei", "body.json.body.0.imei"),
                     exp("identifier.mac", "body.json.body.0.smac"),
                     exp("identifier.imsi", "body.json.body.0.imsi"),
                     exp("identity.phone", "body.json.body.0.tel"),
                     exp("location.cell", "body.json.body.0.bts"),
                     exp("location.precise", "body.json.body.0.gps")],
                    url="https://api.map.baidu.example/locapi/v2")
    yield json_case("cell-hex-lac-cid", "own",
                    {"cell": {"mcc": "460", "mnc": "01", "lac": format(int(c1["lac"]), "X"),
                              "ci": format(int(c1["cid"]), "X")}},
                    [exp("location.cell", "body.json.cell.*")])
    yield json_case("wifi-list-unseeded", "own",
                    {"wifiList": [{"bssid": U_BSSIDS[0], "rssi": -60, "ssid": "home"},
                                  {"bssid": U_BSSIDS[1], "rssi": -72, "ssid": "cafe"}]},
                    [exp("location.wifi", "body.json.wifiList.0.bssid"),
                     exp("location.wifi", "body.json.wifiList.1.bssid")])


def watch_frames() -> Iterator[Case]:
    """Watch text-protocol frames, carried as plain text (the TCP extractor is separate)."""
    c0, c1 = CELLS
    frames = [
        ("watch-ud-lte", "traccar-watch",
         f"[3G*{IMEI}*00C2*UD_LTE,260723,185105,A,{LAT},N,{LON},E,0.00,0.0,0.0,8,100,67,0,0,"
         f"00000000,2,0,460,0,{c0['lac']},{c0['cid']},14,{c1['lac']},{c1['cid']},4,3,,"
         f"{BSSIDS[0]},-82,,{U_BSSIDS[0]},-96,,{U_BSSIDS[1]},-104,0.0]",
         ["identifier.imei", "location.precise", "location.cell", "location.wifi"]),
        ("watch-al-zj", "traccar-watch",
         f"[ZJ*{IMEI}*0003*0113*AL,221121,085515,V,00.000000,N,000.000000,E,0,0,0,0,0,44,0,0,"
         f"00100000,1,255,460,1,{c1['lac']},{c1['cid']},0,3,WIFI00,{BSSIDS[1]},-59,"
         f"WIFI01,{U_BSSIDS[2]},-75,WIFI02,{U_BSSIDS[0]},-75]",
         ["identifier.imei", "location.cell", "location.wifi"]),
        ("watch-ud2-sg", "traccar-watch",
         f"[SG*{IMEI}*006b*UD2,240123,162011,A,{LAT},N,{LON},E,0.00,0,0,8,19,88,0,0,"
         f"00000000,1,1,460,0,{c0['lac']},{c0['cid']},132,,00]",
         ["identifier.imei", "location.precise", "location.cell"]),
        ("watch-wt", "traccar-watch",
         f"[3G*{IMEI}*011F*WT,170517,133811,A,{LAT},N,{LON},E,0.00,0.0,0.0,0,92,82,4262,0,"
         f"00000010,1,1,460,0,{c0['lac']},{c0['cid']},141,2,Home2,{BSSIDS[0]},-60,"
         f"Guest,{BSSIDS[1]},-70,13.8]",
         ["identifier.imei", "location.precise", "location.cell", "location.wifi"]),
        ("watch-lk-imei", "traccar-watch", f"[3G*{IMEI}*000D*LK,0,10,100]",
         ["identifier.imei"]),
        ("watch-iccid", "own", f"[3G*{IMEI}*0021*ICCID,{ICCID}]",
         ["identifier.imei", "identifier.iccid"]),
        ("watch-unseeded-imei", "traccar-watch", f"[ZJ*{U_IMEI[1]}*0007*000c*BLOOD,109,68]",
         ["identifier.imei"]),
        ("watch-unseeded-bssids", "traccar-watch",
         f"[3G*{U_IMEI[0]}*00DD*UD,010120,025946,V,0.0,N,0.0,E,22.0,0,-1,0,100,98,0,0,00000000,"
         f"0,3,eduroam,{U_BSSIDS[0]},-53,Lions,{U_BSSIDS[1]},-82,tubs,{U_BSSIDS[2]},-53,0.0]",
         ["identifier.imei", "location.wifi"]),
    ]
    for cid, source, text, cats in frames:
        yield case(cid, source, [exp(c, "body.text") for c in cats], body=text,
                   content_type="text/plain", method="POST",
                   note="watch text frame as a plain-text field")


def tcp_cases() -> Iterator[Case]:
    """Raw TCP messages through the watch/tracker extractor: unseeded values only, so the
    patterns (not the profile) have to find them. Paths are globs (the extractor's naming)."""
    tcp = {"transport": "tcp", "url": "tcp://gw.kidwatch.example:7700"}
    frame = (f"[3G*8026045123*00C2*UD,260723,185105,A,{U_LAT},N,{U_LON},E,0.00,0.0,0.0,8,"
             f"100,67,0,0,00000000,1,0,460,0,9350,42211,14,3,home,{U_BSSIDS[0]},-82,"
             f"cafe,{U_BSSIDS[1]},-90,x,{U_BSSIDS[2]},-96,0.0]")
    yield case("tcp-watch-ud-unseeded", "traccar-watch",
               [exp("location.precise", "payload*"), exp("location.cell", "payload*"),
                exp("location.wifi", "payload*")],
               body=frame, note="10-digit device id: not an IMEI", **tcp)
    yield case("tcp-iw-login-unseeded", "traccar-h02",
               [exp("identifier.imei", "payload*"), exp("identifier.iccid", "payload*"),
                exp("identifier.imsi", "payload*")],
               body=f"IWAP00{U_IMEI[0]},{U_ICCID},{U_IMSI_AWAY}#", **tcp,
               note="IW/TRV login (format from traccar TrvProtocolDecoderTest, Apache-2.0)")
    yield case("tcp-h02-unseeded", "traccar-h02", [exp("location.precise", "payload*")],
               body="*HQ,8026045123,V1,104000,A,3113.8246,N,12128.4222,E,000.27,235,130721,"
                    "FFFFFBFF#", **tcp)
    yield case("tcp-watch-seeded", "traccar-watch",
               [exp("identifier.imei", "payload*"), exp("location.precise", "payload*"),
                exp("location.cell", "payload*")],
               body=f"[SG*{IMEI}*006b*UD2,240123,162011,A,{LAT},N,{LON},E,0.00,0,0,8,19,88,0,0,"
                    f"00000000,1,1,460,0,{CELLS[0]['lac']},{CELLS[0]['cid']},132,0,0.0]", **tcp)
    yield case("trv-ap10-text", "traccar-h02",
               [exp("location.precise", "body.text"), exp("location.cell", "body.text"),
                exp("location.wifi", "body.text")],
               body=f"IWAP10261128A2232.5716N11403.5736E000.0101500000.0006000908000502,460,0,"
                    f"{CELLS[0]['lac']},{CELLS[0]['cid']},01,zhcn,00,HOME|{BSSIDS[0]}|97&"
                    f"HOME1|{BSSIDS[1]}|90", content_type="text/plain", method="POST",
               note="IW AP10 alarm position as a plain-text field: packed NMEA, tower, Wi-Fi scan")
    yield case("trv-login-glued-imei-text", "traccar-h02",
               [exp("identifier.imei", "body.text"), exp("identifier.iccid", "body.text")],
               body=f"IWAP00{IMEI},{ICCID}#", content_type="text/plain", method="POST",
               note="KNOWN GAP as plain text: the IMEI follows the digits of the command without a "
                    "separator, so no whole-token match; the TCP extractor splits it (see "
                    "tcp-iw-login-unseeded)")


def pattern_cases() -> Iterator[Case]:
    for i, imei in enumerate(U_IMEI):
        yield json_case(f"pattern-imei-{i}", "own", {"did": imei, "fw": "2.0.1"},
                        [exp("identifier.imei", "body.json.did")])
        yield query_case(f"pattern-imei-nokey-{i}", "own", {"q": imei},
                         [exp("identifier.imei", "query.q")])
    yield json_case("pattern-iccid", "own", {"sim": {"iccid": U_ICCID}},
                    [exp("identifier.iccid", "body.json.sim.iccid")])
    yield json_case("pattern-iccid-f", "traccar-h02", {"v": U_ICCID + "F"},
                    [exp("identifier.iccid", "body.json.v")])
    yield json_case("pattern-imsi-home", "own", {"sub": U_IMSI_HOME},
                    [exp("identifier.imsi", "body.json.sub")])
    yield json_case("pattern-imsi-key", "own", {"imsi": U_IMSI_AWAY},
                    [exp("identifier.imsi", "body.json.imsi")])
    yield json_case("pattern-mac-sep", "own", {"hw": U_MAC}, [exp("identifier.mac",
                                                                  "body.json.hw")])
    yield json_case("pattern-mac-bare-key", "own", {"wifiMac": U_MAC.replace(":", "")},
                    [exp("identifier.mac", "body.json.wifiMac")])
    yield json_case("pattern-email", "ga4-gtm",
                    {"event_name": "login", "x-ga-mp2-user_properties": {"email": U_EMAIL,
                                                                         "age": 9},
                     "client_id": GA_CLIENT_ID,
                     "ga_session_id": "1732790417", "engagement_time_msec": 8129},
                    [exp("identity.email", "body.json.x-ga-mp2-user_properties.email")])
    yield json_case("pattern-resident-id", "own", {"sfz": U_RESIDENT},
                    [exp("identity.national_id", "body.json.sfz")])
    yield json_case("pattern-resident-id-nokey", "own", {"v": U_RESIDENT},
                    [exp("identity.national_id", "body.json.v")])
    yield json_case("pattern-own-phone", "own", {"shouji": U_PHONES[0]},
                    [exp("identity.phone", "body.json.shouji")])
    yield json_case("pattern-contacts-list", "own",
                    {"contacts": [{"name": "A", "phone": U_PHONES[0]},
                                  {"name": "B", "phone": U_PHONES[1]},
                                  {"name": "C", "tel": U_PHONES[2]}]},
                    [exp("contacts.entry", "body.json.contacts.0.phone"),
                     exp("contacts.entry", "body.json.contacts.1.phone"),
                     exp("contacts.entry", "body.json.contacts.2.tel")])
    yield json_case("pattern-sos-numbers", "own", {"sos": f"{U_PHONES[0][3:]},{U_PHONES[1][3:]}"},
                    [exp("contacts.entry", "body.json.sos")])
    yield json_case("mixed-seeded-and-unseeded-contacts", "own",
                    {"phonebook": [{"n": CONTACTS[0]["name"], "number": CONTACTS[0]["phone"]},
                                   {"n": "D", "number": U_PHONES[2]}]},
                    [exp("contacts.entry", "body.json.phonebook.0.n"),
                     exp("contacts.entry", "body.json.phonebook.0.number"),
                     exp("contacts.entry", "body.json.phonebook.1.number")])
    yield json_case("key-android-id", "sensorsdata",
                    {"distinct_id": "login_77812",
                     "identities": {"$identity_android_id": U_ANDROID_ID},
                     "properties": {"$device_id": U_ANDROID_ID, "$model": "K2", "$wifi": True,
                                    "$carrier": "China Mobile", "$app_version": "3.0.3",
                                    "$screen_width": 1080, "$screen_height": 2400}},
                    [exp("identifier.android_id", "body.json.identities.$identity_android_id"),
                     exp("identifier.android_id", "body.json.properties.$device_id")])
    yield json_case("key-advertising-id", "own", {"oaid": U_ADID, "request_id": str(U_ADID[::-1])},
                    [exp("identifier.advertising", "body.json.oaid")])
    yield json_case("key-serial", "own", {"sn": "W9Q2B7700413"},
                    [exp("identifier.serial", "body.json.sn")])
    yield json_case("key-birthday", "own", {"birthday": "2015-03-14"},
                    [exp("identity.birthdate", "body.json.birthday")])
    yield json_case("media-voice-field", "traccar-watch", {"voice": "x"}, [],
                    note="a JSON key named voice is not a recording: nothing to detect")


def sdk_cases() -> Iterator[Case]:
    events = [{"_track_id": 1182880063, "time": 1689819429062, "type": "track",
               "distinct_id": ANDROID_ID, "anonymous_id": ANDROID_ID,
               "identities": {"$identity_android_id": ANDROID_ID}, "event": "$AppViewScreen",
               "lib": {"$lib": "Android", "$lib_version": "6.7.2", "$app_version": "3.0.3"},
               "properties": {"$os": "Android", "$os_version": "12", "$model": "K2",
                              "$manufacturer": "ACME", "$carrier": "China Mobile",
                              "$wifi": True, "$network_type": "WIFI",
                              "$device_id": ANDROID_ID, "$screen_width": 1080},
               "_flush_time": 1689819493590}]
    sensors_fields = ["distinct_id", "anonymous_id", "identities.$identity_android_id",
                      "properties.$device_id"]
    plain = b64(json.dumps(events))
    yield form_case("sdk-sensorsdata-base64", "sensorsdata",
                    {"crc": "1221385162", "gzip": "0", "data_list": plain},
                    [exp("identifier.android_id", f"body.form.data_list.*0.{f}", "base64+json")
                     for f in sensors_fields])
    packed = b64(gzipped(json.dumps(events).encode()))
    yield form_case("sdk-sensorsdata-gzip", "sensorsdata",
                    {"crc": "1221385162", "gzip": "1", "data_list": packed},
                    [exp("identifier.android_id", f"body.form.data_list.*0.{f}", "base64+gzip+json")
                     for f in sensors_fields],
                    note="needs the gzip layer in decode.expand")
    yield json_case("sdk-mixpanel-props", "mixpanel-keys",
                    {"event": "Open", "properties": {"token": "f1e2d3c4b5a69788",
                                                     "mp_lib": "android",
                                                     "$carrier": "China Mobile", "$model": "K2",
                                                     "$has_telephone": True, "$wifi": True,
                                                     "$bluetooth_enabled": False,
                                                     "distinct_id": ADID, "$os_version": "12"}},
                    [exp("identifier.advertising", "body.json.properties.distinct_id")])
    yield json_case("sdk-ga4-login", "ga4-gtm",
                    {"event_name": "login",
                     "x-ga-system_properties": {"ee": True, "fid": "Zq7Lm2Xc9TbWv4Kp1RdNsA"},
                     "username": "xiaoyu", "email": EMAIL, "user_id": ADID,
                     "x-ga-page_id": 1122334455, "ga_session_id": "1732790417",
                     "screen_resolution": "1080x2400"},
                    [exp("identity.email", "body.json.email"),
                     exp("identifier.advertising", "body.json.user_id")])
    # a JWT whose payload carries the IMEI; needs the jwt layer for the claim, the raw token
    # itself is matched nowhere (base64url inside a dotted token is not aligned)
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    claims = base64.urlsafe_b64encode(json.dumps({"sub": IMEI, "iat": 1732790000}).encode()
                                      ).decode().rstrip("=")
    yield case("sdk-jwt-claims", "own", [exp("identifier.imei", "header.authorization*",
                                             "jwt+json")],
               headers=[["Authorization",
                         f"Bearer {header}.{claims}.c2lnbmF0dXJlX25vdF9jaGVja2Vk"]],
               note="needs the jwt layer in decode.expand")
    hexed = json.dumps({"imei": IMEI, "lat": LAT}).encode().hex()
    yield json_case("sdk-hex-json", "own", {"blob": hexed},
                    [exp("identifier.imei", "body.json.blob*", "hex+json")],
                    note="the IMEI is found today as a hex variant of the seeded value; a hex "
                         "layer in decode.expand will reach the position too")
    yield case("media-voice-multipart", "own", [exp("media.voice", "*")], method="POST",
               content_type="multipart/form-data; boundary=kwb",
               body="--kwb\r\nContent-Disposition: form-data; name=\"voice\"; "
                    "filename=\"m.amr\"\r\nContent-Type: audio/amr\r\n\r\n"
                    "#!AMR\n\x3c\x48\r\n--kwb--\r\n",
               note="needs a multipart extractor that reports media fields")
    yield case("media-photo-jpeg", "own", [exp("media.photo", "*")], method="POST",
               content_type="image/jpeg", body_b64=b64(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
               note="needs the body extractor to report an image body as a media field")


def negative_cases() -> Iterator[Case]:
    n = "negative"
    yield json_case("neg-timestamps", "own",
                    {"ts": "1732790000", "time": 1732790000123, "t": "20261128101500",
                     "date": "2026-11-28T10:15:00Z"}, [], note=n)
    yield json_case("neg-order-numbers", "own",
                    {"order_id": "868026045123451", "trade_no": "358916049988773",
                     "out_trade_no": "202611281015007", "ref": "8986001234567890121"}, [],
                    note="15- and 19-digit numbers that fail Luhn")
    yield json_case("neg-nonces", "own",
                    {"nonce": "9f86d081884c", "nonce2": "7d793037a0760186574b0282f2f435e7",
                     "sign": "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
                     "salt": "1f0e2d3c4b5a6978"},
                    [], note="random hex nonces (12, 32, 40, 16 hex digits) under neutral keys")
    yield case("neg-uuid-request-ids", "own", [], headers=[
              ["X-Request-Id", "0f8fad5b-d9cb-469f-a165-70867728950e"],
              ["X-Trace-Id", "7c9e6679-7425-40de-944b-e07fc1f90ae7"]],
              note="UUID request ids")
    yield json_case("neg-uuid-body", "segment-spec",
                    {"messageId": "5b1e7c2a-90d4-11ef-9a3c-0242ac120002", "request_id": U_ADID,
                     "type": "track"}, [])
    yield json_case("neg-versions", "own",
                    {"fw": "2.0.1", "app_version": "3.0.1.545", "build": "10.2.0.1001",
                     "$lib_version": "6.7.2", "os": "12", "model": "iPhone7,2"}, [])
    yield json_case("neg-placeholders-ids", "own",
                    {"mac": "02:00:00:00:00:00", "imei": "000000000000000", "android_id":
                     "9774d56d682e549c", "oaid": "00000000-0000-0000-0000-000000000000",
                     "imsi": "unknown", "iccid": "null", "phone": "", "serial": "unknown"}, [])
    yield json_case("neg-placeholder-position", "own", {"lat": "0.0", "lng": "0.0",
                                                        "location": "0.0,0.0"}, [])
    yield case("neg-watch-no-fix", "traccar-watch", [], body=(
              "[3G*0000000000*003e*AL_LTE,170525,214118,V,0,N,0,E,0,0,0,0,0,22,0,0,00010000,0,0,0]"),
              content_type="text/plain", method="POST", note="all-zero device id, no position")
    yield case("neg-watch-health", "traccar-watch", [], body="[3G*0000000000*000B*oxygen,0,98]",
               content_type="text/plain", method="POST")
    yield json_case("neg-health-values", "own", {"heart": "71", "btemp": "36.5", "steps": "11089",
                                                 "spo2": "98", "battery": "87"}, [])
    yield json_case("neg-lone-latitude-like", "own", {"temp": "22.5", "speed": "22.54",
                                                      "alt": "40.2"},
                    [], note="numbers near the seeded latitude with no longitude-like partner")
    yield json_case("neg-screen-and-sdk", "mixpanel-keys",
                    {"$screen_dpi": 420, "$screen_height": 2400, "$screen_width": 1080,
                     "mp_lib": "android", "$lib_version": "7.3.1", "token": "f1e2d3c4b5a69788",
                     "$bluetooth_version": "ble", "$has_nfc": False}, [])
    yield json_case("neg-ga4-ids", "ga4-gtm",
                    {"client_id": GA_CLIENT_ID,
                     "ga_session_id": "1732790417", "ga_session_number": 11,
                     "x-ga-measurement_id": "G-KW0000001", "x-ga-page_id": 1122334455,
                     "ip_override": "203.0.113.67"}, [])
    yield json_case("neg-cell-mcc-alone", "own", {"mcc": "460", "mnc": "00", "radio": "lte"}, [])
    yield json_case("neg-prices-and-counts", "own",
                    {"price": "13800.00", "qty": "2", "total": "27600.00",
                     "coupon": "K2SUMMER"}, [])
    yield query_case("neg-query-paging", "own", {"page": "2", "size": "20", "sort": "time",
                                                "v": "2.0.1", "t": "1732790000123"}, [])
    yield case("neg-headers", "own", [], headers=[
              ["User-Agent", "Dalvik/2.1.0 (Linux; U; Android 12; K2 Build/SP1A.210812.016)"],
              ["X-App-Version", "3.0.3"], ["X-Timestamp", "1732790000"],
              ["Authorization", "Bearer 5f4dcc3b5aa765d61d8327deb882cf99"]])
    yield json_case("neg-phone-like-no-key", "own", {"code": "13800000000", "id": "15012345672"},
                    [],
                    note="phone-shaped numbers under keys that do not say phone")
    yield json_case("neg-iso-dates", "own", {"created": "2026-11-28", "expires": "2027-01-01"}, [],
                    note="dates that are not the child's birthdate, under neutral keys")
    yield json_case("neg-base64-text", "own", {"msg": b64("hello from the watch, battery 87%")}, [])
    yield json_case("neg-md5-of-other", "own", {"sign": digest("md5", "appkey=abc&t=1732790000")},
                    [])
    yield json_case("neg-empty-contacts", "own", {"contacts": [], "sos": "", "family": "unknown"},
                    [])
    yield json_case("neg-multicast-mac", "own", {"dst": "01:00:5e:00:00:fb",
                                                 "bc": "ff:ff:ff:ff:ff:ff"},
                    [])
    yield json_case("neg-decimal-grid", "own", {"x": "0.5", "y": "0.25", "w": "1080", "h": "2400"},
                    [])
    yield json_case("neg-ip-and-ports", "own", {"ip": "192.168.50.23", "port": "8443",
                                                "dns": "114.114.114.114"}, [])
    yield json_case("neg-hashes-of-nothing", "own",
                    {"etag": "d41d8cd98f00b204e9800998ecf8427e",
                     "sha": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}, [])
    yield json_case("neg-unknown-ssid", "own", {"ssid": "<unknown ssid>",
                                                "bssid": "02:00:00:00:00:00"},
                    [])


# Values that are never personal data, each under a neutral key and a key that tempts.
NEGATIVE_VALUES: dict[str, tuple[str, str]] = {
    # name -> (value, tempting key)
    "ts-seconds": ("1732790000", "time"),
    "ts-millis": ("1732790000123", "ts"),
    "ts-compact": ("20261128101500", "date"),
    "order-luhn-fail": ("868026045123451", "order_id"),
    "order-luhn-fail-2": ("351234567890121", "trade_no"),
    "iccid-luhn-fail": ("8986019876543210980", "ref"),
    "resident-id-bad-check": ("440305201503140032", "no"),
    "nonce-12hex": ("9f86d081884c", "nonce"),
    "nonce-16hex": ("c4ca4238a0b92382", "salt"),
    "nonce-32hex": ("7d793037a0760186574b0282f2f435e7", "sign"),
    "nonce-64hex": ("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "sig"),
    "uuid-request": ("0f8fad5b-d9cb-469f-a165-70867728950e", "request_id"),
    "uuid-trace": ("7c9e6679-7425-40de-944b-e07fc1f90ae7", "trace_id"),
    "version": ("3.0.1.545", "version"),
    "version-short": ("2.0.1", "fw"),
    "placeholder-mac": ("02:00:00:00:00:00", "mac"),
    "placeholder-imei": ("000000000000000", "imei"),
    "placeholder-unknown": ("unknown", "imsi"),
    "placeholder-null": ("null", "oaid"),
    "placeholder-zero-uuid": ("00000000-0000-0000-0000-000000000000", "idfa"),
    "placeholder-position": ("0.0,0.0", "location"),
    "emulator-android-id": ("9774d56d682e549c", "android_id"),
    "build-id": ("SP1A.210812.016", "build"),
    "price": ("13800.00", "amount"),
    "short-number": ("12345", "count"),
}


def negative_matrix() -> Iterator[Case]:
    """Each never-personal value through the carriers the positives use."""
    for name, (value, key) in NEGATIVE_VALUES.items():
        yield query_case(f"neg-{name}-query", "own", {NEUTRAL: value, "p": "1"}, [])
        yield case(f"neg-{name}-header", "own", [], headers=[["X-Kw-V1", value]])
        yield form_case(f"neg-{name}-form-key", "own", {key: value}, [])
        yield json_case(f"neg-{name}-json-key", "own", {"data": {key: value}}, [])
        yield query_case(f"neg-{name}-base64", "own", {"d": b64(json.dumps({key: value}))}, [])


def carrier_cases() -> Iterator[Case]:
    """The same seeded IMEI in the body formats and layer stacks the decoder peels. Field
    paths are globs: the case is about reaching the value, not about path naming."""
    imei = exp("identifier.imei", "body*")
    doc = {"dev": {"imei": IMEI, "bat": 87}}
    yield case("carrier-gzip-body", "own", [{**imei, "encoding": "gzip"}], method="POST",
               content_type="application/octet-stream",
               body_b64=b64(gzipped(json.dumps(doc).encode())),
               note="a gzip body the server did not announce with Content-Encoding")
    yield case("carrier-msgpack", "own", [{**imei, "encoding": "msgpack"}], method="POST",
               content_type="application/x-msgpack", body_b64=b64(msgpack.packb(doc)))
    yield case("carrier-cbor", "own", [{**imei, "encoding": "cbor"}], method="POST",
               content_type="application/cbor", body_b64=b64(cbor2.dumps(doc)))
    # protobuf, schema-less: field 1 (length-delimited) = the IMEI, field 2 (varint) = 87
    proto = b"\x0a" + bytes([len(IMEI)]) + IMEI.encode() + b"\x10\x57"
    yield case("carrier-protobuf", "own", [{**imei, "encoding": "protobuf"}], method="POST",
               content_type="application/x-protobuf", body_b64=b64(proto))
    yield case("carrier-xml", "own", [{**imei, "encoding": "xml"}], method="POST",
               content_type="application/xml",
               body=f"<?xml version=\"1.0\"?><report><dev imei=\"x\"><imei>{IMEI}</imei></dev>"
                    "</report>")
    yield case("carrier-multipart-text", "own", [{**imei, "encoding": "multipart"}], method="POST",
               content_type="multipart/form-data; boundary=kwb",
               body=f"--kwb\r\nContent-Disposition: form-data; name=\"imei\"\r\n\r\n{IMEI}\r\n"
                    "--kwb--\r\n")
    yield form_case("carrier-form-urlencoded-json", "own", {"data": json.dumps(doc)},
                    [{**imei, "encoding": "json"}])
    yield query_case("carrier-base64url-unpadded", "own",
                     {"p": base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")},
                     [exp("identifier.imei", "query.p*", "base64+json")])
    yield query_case("carrier-double-base64", "own", {"p": b64(b64(json.dumps(doc)))},
                     [exp("identifier.imei", "query.p*", "base64+base64+json")])
    yield case("carrier-cookie-base64-json", "own",
               [exp("identifier.imei", "cookie.ctx*", "base64+json")],
               headers=[["Cookie", f"lang=zh; ctx={b64(json.dumps(doc))}"]])
    yield case("carrier-text-gb18030", "own", [exp("identity.name", "body*")], method="POST",
               content_type="text/plain; charset=gb18030",
               body_b64=b64(f"姓名:{NAME_ZH},学校:未知".encode("gb18030")),
               note="Chinese devices often send GB18030 text")


def utf16(text: str) -> str:
    """UTF-16BE hex, upper case: how 3G-family watch frames carry text (MESSAGE, PHB)."""
    return text.encode("utf-16-be").hex().upper()


def chinese_device_cases() -> Iterator[Case]:
    """The forms a Chinese watch and its app use (issue 15 item 2), each with look-alike
    negatives: the watch id, Chinese text in its byte writings, pinyin, GCJ-02 / BD-09
    positions and degrees-minutes with the hemisphere beside them."""
    imei = "identifier.imei"
    text = {"content_type": "text/plain", "method": "POST"}
    tcp = {"transport": "tcp", "url": "tcp://47.100.12.34:7700"}
    # (a) the watch id: the IMEI's last ten digits, the IMEISV
    yield case("cn-watch-id-3g-text", "traccar-watch",
               [exp(imei, "body.text", "last-10-digits")],
               body=f"[3G*{IMEI[-10:]}*000D*LK,0,10,100]", **text,
               note="the 3G protocol names the watch by the IMEI's last ten digits")
    yield case("cn-watch-id-3g-tcp", "traccar-watch", [exp(imei, "payload*", "last-10-digits")],
               body=f"[3G*{IMEI[-10:]}*000D*LK,0,10,100]", **tcp)
    yield json_case("cn-watch-id-api", "own", {"watchId": IMEI[-10:], "cmd": "bind"},
                    [exp(imei, "body.json.watchId", "last-10-digits")])
    yield json_case("cn-imeisv", "own", {"sv": IMEI[:14] + "03"},
                    [exp(imei, "body.json.sv", "imeisv")],
                    note="IMEISV: the IMEI's 14 digits and a 2-digit software version")
    yield json_case("cn-neg-ten-digit-numbers", "own",
                    {"order": IMEI[-10:-1] + "7", "uid": "9112345679", "mid": IMEI[-11:-1],
                     "code": IMEI[-10:] + "1"}, [],
                    note="ten-digit numbers that are not the seeded suffix, and the suffix "
                         "inside a longer number")
    yield case("cn-neg-watch-other-id", "traccar-watch", [], body="[3G*9112345679*0009*LK]",
               **text, note="another watch's id")
    # (b) Chinese text in the writings devices use
    zh = (("name", "identity.name", NAME_ZH), ("school", "identity.school", SCHOOL_ZH),
          ("address", "identity.address", ADDRESS_ZH),
          ("contact", "contacts.entry", CONTACT_ZH["name"]))
    for key, category, value in zh:
        yield json_case(f"cn-{key}-percent-utf8", "own", {"q": f"n={quote(value)}&t=1"},
                        [exp(category, "body.json.q*", "url")])
        yield json_case(f"cn-{key}-percent-gbk", "own",
                        {"q": f"n={quote(value.encode('gbk'))}&t=1"},
                        [exp(category, "body.json.q*", "url+gbk")],
                        note="percent-encoded GBK, which a UTF-8 reading turns into U+FFFD")
        yield case(f"cn-{key}-utf16-hex", "traccar-watch",
                   [exp(imei, "body.text"), exp(category, "body.text", "hex+utf-16be")],
                   body=f"[3G*{IMEI}*0040*TXT,{utf16('你好' + value)}]", **text,
                   note="UTF-16BE hex inside a watch frame read as plain text")
        yield case(f"cn-{key}-json-escape", "own", [exp(category, "body*", "json-escape")],
                   body="n=" + json.dumps(value), **text,
                   note="a JSON string's escapes in a text body")
    yield case("cn-name-percent-gbk-query", "own", [exp("identity.name", "query.nick")],
               url=f"{HOST}/api?nick={quote(NAME_ZH.encode('gbk'))}&t=1", method="GET",
               note="a GBK query string, read as GB18030 where it is not UTF-8")
    for key, category, value in zh[::3]:
        yield case(f"cn-{key}-raw-gbk-tcp", "traccar-watch",
                   [exp(imei, "payload*"), exp(category, "payload*", "gbk")],
                   body_b64=b64(f"[3G*{IMEI}*0020*PHB,".encode() + value.encode("gbk") + b"]"),
                   **tcp, note="raw GBK bytes in a watch frame's phonebook")
    yield case("cn-neg-other-chinese", "own", [], body=(
        f"n={quote('陈小云')}&s={quote('海淀外国语学校'.encode('gbk'))}&a="
        f"{utf16('上海市浦东新区')}&c=" + json.dumps("赵丽娟")), **text,
        note="other Chinese names, schools and addresses in the same writings")
    yield json_case("cn-neg-other-chinese-json", "own",
                    {"nick": "王小红", "school": "海淀实验中学", "city": "北京市朝阳区"}, [])
    # (c) pinyin derived from the Chinese names
    for i, (value, category) in enumerate((("Xiaoyu Chen", "identity.name"),
                                           ("chen xiao yu", "identity.name"),
                                           ("Zhao Lihua", "contacts.entry"),
                                           ("lihua zhao", "contacts.entry"),
                                           ("ZHAO Lihua", "contacts.entry"))):
        yield json_case(f"cn-pinyin-{i}", "own", {"nick": value},
                        [exp(category, "body.json.nick", "pinyin")])
    yield json_case("cn-neg-other-pinyin", "own",
                    {"a": "Xiaoyun Chen", "b": "Zhao Lijuan", "c": "lihuazhaoyang"}, [])
    # (d) the lab's position in the Chinese datums
    for name, (lat, lon) in (("gcj-02", GCJ_POS), ("bd-09", BD_POS)):
        yield json_case(f"cn-loc-{name}", "amap-position" if name == "gcj-02" else "baidu-locapi",
                        {"loc": {"lat": lat, "lng": lon}},
                        [exp("location.precise", "body.json.loc.lat+body.json.loc.lng", name)],
                        note=f"the seeded position converted to {name.upper()}")
    yield json_case("cn-neg-other-city", "own", {"a": "31.230416", "b": "121.473701"}, [],
                    note="another city's coordinates under neutral keys")
    # (e) degrees-minutes with the hemisphere in a sibling field
    yield json_case("cn-loc-degrees-minutes", "own",
                    {"gps": {"lat": "2232.5716", "ns": "N", "lon": "11403.5736", "ew": "E"}},
                    [exp("location.precise", "body.json.gps.lat+body.json.gps.lon")])
    yield json_case("cn-neg-degrees-minutes-no-hemisphere", "own",
                    {"gps": {"a": "2232.5716", "b": "11403.5736"}}, [],
                    note="ddmm.mmmm-shaped numbers without a hemisphere beside them")


def _shifted() -> tuple[tuple[str, str], tuple[str, str]]:
    """The seeded position in GCJ-02 and BD-09, six decimals as map SDKs send them."""
    here = Location(float(LAT), float(LON))
    points = datums(here)
    return tuple((f"{points[d][0]:.6f}", f"{points[d][1]:.6f}")  # type: ignore[return-value]
                 for d in (GCJ02, BD09))


GCJ_POS, BD_POS = _shifted()


# The groups in the order their cases appear in suite.json.
GROUPS = (known_cases, format_cases, location_cases, cell_wifi_cases, watch_frames,
          pattern_cases, sdk_cases, negative_cases, negative_matrix, carrier_cases, tcp_cases,
          chinese_device_cases)


def build() -> dict[str, Any]:
    """The suite as suite.json holds it: every group's cases, ids unique."""
    cases = [c for group in GROUPS for c in group()]
    ids = [c["id"] for c in cases]
    if len(ids) != len(set(ids)):
        raise ValueError("case ids must be unique")
    return {"schema": SCHEMA, "name": "kidaudit validation suite 1", "provenance": PROVENANCE,
            "profile": PROFILE, "cases": cases}


def render(suite: dict[str, Any]) -> str:
    """suite.json's text: one byte sequence for one suite, whatever the interpreter."""
    return json.dumps(suite, ensure_ascii=False, indent=1) + "\n"


def main() -> None:
    suite = build()
    SUITE_PATH.write_text(render(suite), encoding="utf-8")
    print(f"{SUITE_PATH}: {len(suite['cases'])} cases")


if __name__ == "__main__":
    main()
