"""The kids'-watch frame decoder and the sister tracker protocols, on synthetic messages.

Every frame here is written from the documented layouts (the watch protocol's FORMAT.md and
the tracker protocols' README in the shared corpus, paraphrasing traccar's decoders) with
made-up identifiers and coordinates: the seeded IMEI, ICCID and contacts of
``tests/factories.py``. The real samples are checked by ``test_watchproto_corpus.py``, which
runs only where ``KIDAUDIT_CORPUS`` names the corpus folder.
"""

from __future__ import annotations

import json

import pytest

from auditor.extract.watchproto import (
    FrameSplitter,
    looks_like_watch,
    parse_frame,
    payload_fields,
    tracker_fields,
    unescape,
    watch_fields,
)
from auditor.model import Field
from tests.factories import CONTACTS, ICCID, IMEI, IMSI, LAT, LON, MAC, PHONE

DEVICE = IMEI[-10:]  # most watches send ten digits of their IMEI as the device id
MAC1, MAC2 = MAC, "3c:5a:b4:01:02:04"
P1, P2 = CONTACTS[0].phone, CONTACTS[1].phone
NORTH, EAST = f"{LAT:.6f}", f"{LON:.6f}"  # 39.983120, 116.307910
SOUTH, WEST = f"-{NORTH}", f"-{EAST}"
# The same point as ddmm.mmmm / dddmm.mmmm (H02, IW, FutureWay): 39°58.9872', 116°18.4746'.
NMEA_LAT, NMEA_LON = "3958.9872", "11618.4746"
# An AMR voice payload holding every byte the protocol escapes: } [ ] , *
AMR = b"#!AMR\n" + bytes([0x3C, 0x7D, 0x5B, 0x5D, 0x2C, 0x2A, 0x00, 0xFF]) * 4
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00[],*}" + b"\x00" * 16 + b"\xff\xd9"


def frame(content: str | bytes, *, tag: str = "3G", device: str = DEVICE, index: str = "",
          length: int | None = None) -> bytes:
    """``[VV*ID*LLLL*CONTENT]`` or ``[VV*ID*IIII*LLLL*CONTENT]`` (FORMAT.md §1)."""
    body = content.encode("latin-1") if isinstance(content, str) else content
    head = f"[{tag}*{device}*" + (f"{index}*" if index else "")
    return f"{head}{len(body) if length is None else length:04X}*".encode() + body + b"]"


def escape(data: bytes) -> bytes:
    """The device's side of FORMAT.md §1: } [ ] , * inside a binary payload become 7D 0n."""
    codes = {ord(c): bytes([0x7D, n]) for n, c in enumerate("}[],*", start=1)}
    return b"".join(codes.get(b, bytes([b])) for b in data)


def utf16(text: str) -> str:
    """MESSAGE text and phonebook names travel as UTF-16BE hex (FORMAT.md §7)."""
    return text.encode("utf-16-be").hex().upper()


def position(kind: str = "UD", lat: str = NORTH, ns: str = "N", lon: str = EAST,
             ew: str = "E", *, status: str = "00000000", steps: str = "1234",
             tail: str = "0,0") -> str:
    """A position message (FORMAT.md §2): fields 1-16, then the cell + Wi-Fi block."""
    return ",".join([kind, "280625", "101500", "A", lat, ns, lon, ew, "0.00", "0", "40", "9",
                     "100", "87", steps, "0", status, tail])


def by_path(fields: list[Field]) -> dict[str, str]:
    return {f.path: f.value for f in fields}


def pairs(fields: list[Field]) -> set[tuple[str, str]]:
    return {(f.path, f.value) for f in fields}


# -- framing --------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    (frame("LK"), ("3G", DEVICE, "", 2, "LK")),
    (frame("LK,1200,0,87", tag="SG"), ("SG", DEVICE, "", 12, "LK")),
    (frame(position("UD2"), tag="CS", device=IMEI), ("CS", IMEI, "", len(position("UD2")), "UD2")),
    (frame("LK", tag="ZJ", device=IMEI, index="0A3F"), ("ZJ", IMEI, "0A3F", 2, "LK")),
    (b"[3G*" + DEVICE.encode() + b"*000e*MESSAGE,0074]", ("3G", DEVICE, "", 14, "MESSAGE")),
    # FORMAT.md §1: the length is not trusted; a frame with a wrong one still parses
    (frame("LK", length=0x30), ("3G", DEVICE, "", 0x30, "LK")),
])
def test_the_header_gives_vendor_id_index_length_and_type(raw: bytes, expected: tuple) -> None:
    parsed = parse_frame(raw)
    assert parsed is not None
    assert (parsed.vendor, parsed.device_id, parsed.index, parsed.length, parsed.type) == expected
    assert parsed.content == raw[raw.index(expected[4].encode(), 4):-1]


@pytest.mark.parametrize("raw", [
    b"", b"[3G*6040123455*0002*LK", b"3G*6040123455*0002*LK]", b"[3G*6040123455*02*LK]",
    b"[3G*6040123455*00ZZ*LK]", b"[3G**0002*LK]", b"[3GX*6040123455*0002*LK]",
    b"[not a frame]",
])
def test_what_is_not_a_frame_parses_to_none(raw: bytes) -> None:
    assert parse_frame(raw) is None


@pytest.mark.parametrize(("head", "watch"), [
    (frame("LK"), True),
    (frame("LK", tag="ZJ", device=IMEI, index="0001"), True),
    (b"[", True),  # a stream cut after its first byte could still be a watch
    (b"[3G*60401", True),
    (b"[SG*6040123455*00", True),
    (b"GET / HTTP/1.1\r\n", False),
    (b"\x16\x03\x01\x02\x00", False),
    (b'{"imei":"' + IMEI.encode() + b'"}', False),
    (b"[not a frame]", False),
])
def test_a_watch_stream_is_told_by_its_first_bytes(head: bytes, watch: bool) -> None:
    assert looks_like_watch(head) is watch


STREAM = frame("LK") + frame(position(tail=f"0,1,Home,{MAC1},-50")) + frame("TKQ") \
    + frame(b"TK," + escape(AMR)) + frame("LK,1200,0,87")


@pytest.mark.parametrize("step", [1, 2, 7, 50, 10_000])
def test_a_stream_split_anywhere_gives_the_same_frames(step: int) -> None:
    splitter = FrameSplitter()
    frames = [f for i in range(0, len(STREAM), step) for f in splitter.feed(STREAM[i:i + step])]
    assert b"".join(frames) == STREAM and splitter.dropped == 0
    assert [parse_frame(f).type for f in frames] == ["LK", "UD", "TKQ", "TK", "LK"]


def test_frames_batched_in_one_read_all_give_their_fields() -> None:
    fields = payload_fields(STREAM)
    assert [f.value for f in fields if f.path == "payload.watch.id"] == [DEVICE] * 5
    assert ("payload.watch.UD.lat", NORTH) in pairs(fields)
    assert ("payload.watch.UD.wifi[0].bssid", MAC1) in pairs(fields)
    assert ("payload.watch.TK", "audio/amr") in pairs(fields)
    assert ("payload.watch.LK.battery", "87") in pairs(fields)


def test_junk_between_frames_is_dropped_and_counted() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(b"junk" + frame("LK") + b"\r\n" + frame("TKQ")) == [frame("LK"),
                                                                           frame("TKQ")]
    assert splitter.dropped == len(b"junk\r\n")


def test_junk_and_an_overlong_frame_are_dropped_within_the_limit() -> None:
    splitter = FrameSplitter(limit=64)
    assert splitter.feed(b"noise") == [] and splitter.dropped == 5
    assert splitter.feed(b"[3G*1*0002*LK" + b"x" * 100) == []
    assert len(splitter.buffer) == 0
    assert splitter.feed(b"[3G*1*0002*LK]") == [b"[3G*1*0002*LK]"]


@pytest.mark.parametrize("ssids", [
    ("[Den]AP",), ("Kid's [5G]", "a[b]c"), ("[[Nested]]", "plain"), ("[LG_TV]e725",),
])
def test_an_ssid_with_brackets_does_not_end_the_frame(ssids: tuple[str, ...]) -> None:
    wifi = ",".join(f"{s},3c:5a:b4:01:02:{n:02x},-50" for n, s in enumerate(ssids, start=3))
    raw = frame(position(tail=f"0,{len(ssids)},{wifi}"))
    assert FrameSplitter().feed(raw) == [raw]
    splitter = FrameSplitter()
    assert [f for byte in raw for f in splitter.feed(bytes([byte]))] == [raw]
    assert tuple(f.value for f in payload_fields(raw) if f.path.endswith(".ssid")) == ssids


# -- escapes and media ----------------------------------------------------------------------

@pytest.mark.parametrize(("wire", "plain"), [
    (b"\x7d\x01", b"}"), (b"\x7d\x02", b"["), (b"\x7d\x03", b"]"), (b"\x7d\x04", b","),
    (b"\x7d\x05", b"*"), (b"a\x7d\x02b\x7d\x03c", b"a[b]c"),
    (b"\x7d\x06\x7d\x00", b"\x7d\x06\x7d\x00"),  # not an escape: left as it is
    (b"#!AMR\n\x3c\x00", b"#!AMR\n\x3c\x00"),
])
def test_unescape(wire: bytes, plain: bytes) -> None:
    assert unescape(wire) == plain


@pytest.mark.parametrize("payload", [AMR, JPEG, bytes(range(256))])
def test_escape_then_unescape_is_the_identity(payload: bytes) -> None:
    wire = escape(payload)
    assert not set(wire) & set(b"[]") and unescape(wire) == payload


@pytest.mark.parametrize(("content", "media"), [
    (b"TK," + AMR, ("payload.watch.TK", "audio/amr")),
    (b"JXTK,0,watch_7_20250628101500,1,6," + AMR, ("payload.watch.JXTK", "audio/amr")),
    (b"img,5,250628101500," + JPEG, ("payload.watch.img", "image/jpeg")),
    (b"TK,1", None),  # an acknowledgement, not a voice message
    (b"TK,0", None),
    (b"TKQ", None),
    (b"JXTKR,1", None),
])
def test_voice_and_photo_are_unescaped_and_reported_as_media(content: bytes,
                                                             media: tuple | None) -> None:
    wire = frame(escape(content))
    assert FrameSplitter().feed(wire) == [wire]
    parsed = parse_frame(wire)
    assert parsed is not None and parsed.content == content
    found = [(f.path, f.value) for f in payload_fields(wire) if f.location == "media"]
    assert found == ([media] if media else [])


# -- position messages (FORMAT.md §2, §3) ---------------------------------------------------

@pytest.mark.parametrize(("content", "expected"), [
    (position("UD"), (NORTH, EAST)),
    (position("UD2", ns="S", ew="W"), (SOUTH, WEST)),
    (position("UD3", ns="N", ew="W"), (NORTH, WEST)),
    (position("UD_LTE", ns="S", ew="E"), (SOUTH, EAST)),
    (position("UD_WCDMA"), (NORTH, EAST)),
    (position("AL", lat=f"  {NORTH}", lon=f" {EAST}"), (NORTH, EAST)),  # leading spaces
    (position("AL_LTE", lat=SOUTH, ns="", lon=WEST, ew=""), (SOUTH, WEST)),  # sign, no letter
    (position("ALCUSTOMER1", lat=SOUTH, ns="S", lon=EAST), (SOUTH, EAST)),  # no double minus
    (position("WT"), (NORTH, EAST)),
    (position("WAD"), (NORTH, EAST)),  # FORMAT.md §8: read with the UD layout (unverified)
    (position("WG", ns="S"), (SOUTH, EAST)),
    (position("UD", lat="0", lon="0"), None),  # no fix: only cells and Wi-Fi
    (position("UD", lat="00.000000", ns="", lon="000.000000", ew=""), None),
    (position("UD", lat="", lon=""), None),
    ("UD,280625,101500,V", None),  # too short to hold a position
])
def test_position_frames_give_signed_coordinates(content: str, expected: tuple | None) -> None:
    kind = content.split(",")[0]
    fields = by_path(payload_fields(frame(content)))
    assert fields["payload.watch.id"] == DEVICE
    assert fields["payload.watch.protocol"] == "protocol:watch"
    got = (fields[f"payload.watch.{kind}.lat"], fields[f"payload.watch.{kind}.lon"]) \
        if f"payload.watch.{kind}.lat" in fields else None
    assert got == expected


@pytest.mark.parametrize(("steps", "expected"), [("1234", "1234"), ("0", "0"), ("", None)])
def test_steps_come_from_field_14(steps: str, expected: str | None) -> None:
    fields = by_path(payload_fields(frame(position(steps=steps))))
    assert fields.get("payload.watch.UD.steps") == expected


@pytest.mark.parametrize(("status", "alarm"), [
    ("00000000", None),
    ("00000010", None),  # bit 4 is motion, not an alarm
    ("00000001", "low_battery"), ("00000002", "geofence_exit"), ("00000004", "geofence_enter"),
    ("00004000", "power_cut"), ("00010000", "sos"), ("00020000", "low_battery"),
    ("00040000", "geofence_exit"), ("00080000", "geofence_enter"), ("00100000", "removed"),
    ("00200000", "fall"), ("00400000", "fall"),
    ("00110000", "sos"),  # the first matching bit wins
    ("00030000", "sos"),
    ("00100001", "low_battery"),
    ("0004", "geofence_enter"),  # a four-digit status
    ("", None), ("zz", None),
])
def test_the_status_field_gives_one_alarm(status: str, alarm: str | None) -> None:
    for kind in ("UD", "AL"):
        fields = payload_fields(frame(position(kind, status=status)))
        assert [f.value for f in fields if f.path == f"payload.watch.{kind}.alarm"] == (
            [f"alarm:{alarm}"] if alarm else [])


@pytest.mark.parametrize(("tail", "cells", "wifi"), [
    ("0,0", [], []),
    ("1,255,460,0,9520,3671,60,0", ["460,0,9520,3671"], []),
    ("2,1,460,0,9520,3671,13,9520,3672,5,0", ["460,0,9520,3671", "460,0,9520,3672"], []),
    ("1,255,460,1,55C0,3B882A2,60,0", ["460,1,21952,62423714"], []),  # hex LAC and CID
    (f"0,2,home-net,{MAC1},-50,,{MAC2},-70", [], [("home-net", MAC1), (None, MAC2)]),
    (f"1,1,460,0,9520,3671,13,2,Den 2G,{MAC1},-45,Den 5G,{MAC2},-60,5",
     ["460,0,9520,3671"], [("Den 2G", MAC1), ("Den 5G", MAC2)]),
    (f"0,1,WIFI00,{MAC1},-50", [], [("WIFI00", MAC1)]),  # ZJ watches name them so
    ("0,1,Home,0,-50", [], []),  # a zero MAC is skipped
    ("0,1,,,,00", [], []),  # an old SG frame: one Wi-Fi entry, all empty
    ("1,255,460,0A,9520,3671,60,0", [], []),  # a hex fourth value is not a cell block
    ("3,255,460,0,9520,3671", ["460,0,9520,3671"], []),  # fewer cells than counted
    ("2,255,460,0,9520,3671,60,?,1,60,0", ["460,0,9520,3671"], []),  # a cell id not a number
    ("1,255,460,0,9520,3671,60", ["460,0,9520,3671"], []),  # no Wi-Fi count
    (f"0,3,Home,{MAC1}", [], [("Home", MAC1)]),  # fewer access points than counted
    ("x,y", [], []),
])
def test_cells_and_wifi_come_out_of_position_frames(tail: str, cells: list[str],
                                                    wifi: list[tuple]) -> None:
    fields = payload_fields(frame(position("UD2", tail=tail)))
    paths = by_path(fields)
    assert [paths.get(f"payload.watch.UD2.cell[{n}]") for n in range(len(cells) + 1)] == \
        [*cells, None]
    seen = [(paths.get(f"payload.watch.UD2.wifi[{n}].ssid"),
             paths.get(f"payload.watch.UD2.wifi[{n}].bssid")) for n in range(4)]
    assert [w for w in seen if w[1]] == wifi


# -- link, health, device information (FORMAT.md §4, §5, §8) --------------------------------

@pytest.mark.parametrize(("content", "expected"), [
    ("LK", {}),
    ("LK,1200,0,87", {"steps": "1200", "tumbles": "0", "battery": "87"}),
    ("LK,,,87", {"battery": "87"}),
    ("heart,78", {"heart_rate": "78"}),
    ("PULSE,80", {"heart_rate": "80"}),
    ("bphrt,118,76,80,,,,", {"systolic": "118", "diastolic": "76", "heart_rate": "80"}),
    ("bphrt,118,76,80,135,1,9,30", {"systolic": "118", "diastolic": "76", "heart_rate": "80",
                                    "height": "135", "gender": "1", "age": "9",
                                    "weight": "30"}),
    ("BLOOD,118,76", {"systolic": "118", "diastolic": "76"}),
    ("oxygen,1,98", {"flag": "1", "spo2": "98"}),
    ("TEMP,36.6", {"temperature": "36.6"}),
    ("btemp2,1,36.8", {"valid": "1", "temperature": "36.8"}),
    (f"ICCID,{ICCID},{IMEI}", {"[0]": ICCID, "[1]": IMEI}),
    (f"RYIMEI,{IMEI}", {"[0]": IMEI}),
    ("CONFIG,TY:w36,UL:60", {"[0]": "TY:w36", "[1]": "UL:60"}),
])
def test_link_health_and_device_messages(content: str, expected: dict[str, str]) -> None:
    kind = content.split(",")[0]
    prefix = f"payload.watch.{kind}"
    fields = by_path(watch_fields(parse_frame(frame(content))))
    assert fields.pop("payload.watch.id") == DEVICE
    assert fields.pop("payload.watch.protocol") == "protocol:watch"
    assert {p[len(prefix):].lstrip("."): v for p, v in fields.items()} == expected


# -- server commands (FORMAT.md §7) ---------------------------------------------------------

COMMANDS = [
    ("MONITOR," + PHONE, {("payload.watch.MONITOR.phone", PHONE)}),
    ("CALL," + P1, {("payload.watch.CALL.phone", P1)}),
    ("SOS1," + P1, {("payload.watch.SOS1.phone", P1)}),
    (f"SOS,{P1},{P2},{PHONE}", {("payload.watch.SOS.phone", p) for p in (P1, P2, PHONE)}),
    (f"PHB,{P1},{utf16(CONTACTS[0].name)},{P2},Dad",
     {("payload.watch.PHB[0].phone", P1), ("payload.watch.PHB[0].name", CONTACTS[0].name),
      ("payload.watch.PHB[1].phone", P2), ("payload.watch.PHB[1].name", "Dad")}),
    (f"PHB2,{P2},{utf16('王芳')}",
     {("payload.watch.PHB2[0].phone", P2), ("payload.watch.PHB2[0].name", "王芳")}),
    ("MESSAGE," + utf16("放学了"), {("payload.watch.MESSAGE.text", "放学了")}),
    ("MESSAGE,0074006500780074", {("payload.watch.MESSAGE.text", "text")}),
    ("MESSAGE,hello", {("payload.watch.MESSAGE.text", "hello")}),
    ("MESSAGE,DC00D800", {("payload.watch.MESSAGE.text", "DC00D800")}),  # not UTF-16: as is
    (f"PHB,,{P1},Mum,", {("payload.watch.PHB[0].phone", P1), ("payload.watch.PHB[0].name", "Mum")}),
    ("RESET", set()), ("POWEROFF", set()), ("CR", set()), ("UPLOAD,600", set()),
    ("LZ,0,+8", set()), ("SOSSMS,1", set()), ("REMOVE,1", set()),
    ("SILENCETIME,0800-1130,1400-1630", set()), ("WORK,6-9,11-13,13-15,17-19", set()),
]


@pytest.mark.parametrize(("content", "expected"), COMMANDS)
@pytest.mark.parametrize("tag", ["SG", "CS"])
def test_server_commands_are_commands_with_their_data(content: str, expected: set,
                                                      tag: str) -> None:
    fields = payload_fields(frame(content, tag=tag, device=IMEI), "down")
    assert [f.value for f in fields if f.location == "command"] == [content.split(",")[0]]
    assert expected <= pairs(fields)


@pytest.mark.parametrize(("content", "expected"), COMMANDS)
def test_the_same_content_from_the_device_is_no_command(content: str, expected: set) -> None:
    fields = payload_fields(frame(content))
    assert not [f for f in fields if f.location == "command"]
    assert expected <= pairs(fields)


def test_a_voice_message_from_the_server_is_a_command_and_media() -> None:
    fields = payload_fields(frame(b"TK," + escape(AMR), tag="SG"), "down")
    assert {(f.location, f.value) for f in fields} >= {("command", "TK"), ("media", "audio/amr")}


# -- sister tracker protocols (tracker-protocols/README.md) ---------------------------------

def gt06(kind: int, body: bytes, *, long: bool = False) -> bytes:
    """A GT06 / Topin frame: 78 78 len kind body serial crc 0D 0A (79 79 with a 2-byte len)."""
    tail = b"\x00\x01\xab\xcd"
    size = len(body) + 1 + len(tail)
    head = b"\x79\x79" + size.to_bytes(2, "big") if long else b"\x78\x78" + bytes([size])
    return head + bytes([kind]) + body + tail + b"\r\n"


def gps_block(*, north: bool = True, west: bool = False) -> bytes:
    """Date, satellites, lat and lon in 1/1,800,000 degree, speed, course + hemisphere flags."""
    flags = 0x1000 | (0x0400 if north else 0) | (0x0800 if west else 0) | 90
    return (bytes([25, 6, 28, 10, 15, 0, 0xC9]) + round(LAT * 1_800_000).to_bytes(4, "big")
            + round(LON * 1_800_000).to_bytes(4, "big") + b"\x00" + flags.to_bytes(2, "big"))


def bcd(digits: str, size: int) -> bytes:
    """Packed BCD, padded: a leading 0 for an odd count of digits, trailing F to the size."""
    text = ("0" + digits if len(digits) % 2 else digits).ljust(size * 2, "f")
    return bytes.fromhex(text)


def h02_binary(*, north: bool = True, east: bool = True) -> bytes:
    """``$`` + BCD: id, hhmmss, ddmmyy, lat ddmmmmmm, battery, lon dddmmmmmm + flags nibble."""
    flags = (4 if north else 0) | (8 if east else 0)
    digits = f"{DEVICE}101500280625{NMEA_LAT.replace('.', '')}06" \
             f"{NMEA_LON.replace('.', '')}{flags:x}000000fffffbff"
    return b"$" + bytes.fromhex(digits)


IW_POS = f"250628A{NMEA_LAT}N{NMEA_LON}E000.0101500000.0006000908000102"
LOCATED = {"lat": NORTH, "lon": EAST}

TRACKERS = [
    # IW / TRV
    ("iw-AP00", f"IWAP00{IMEI}#".encode(), {("payload.iw.imei", IMEI)}, None),
    ("iw-AP00-sim", f"IWAP00{IMEI},{ICCID}F,{IMSI}#".encode(),
     {("payload.iw.imei", IMEI), ("payload.iw.iccid", ICCID), ("payload.iw.imsi", IMSI)}, None),
    ("iw-AP01", f"IWAP01{IW_POS},460,0,9520,3671,Home|{MAC1.replace(':', '-')}|-50&"
                f"|{MAC2.replace(':', '-')}|-70#".encode(),
     {("payload.iw.AP01.wifi[0].ssid", "Home"), ("payload.iw.AP01.wifi[0].bssid", MAC1),
      ("payload.iw.AP01.wifi[1].bssid", MAC2)}, LOCATED),
    ("iw-AP10-south-west", f"IWAP10{IW_POS.replace('N', 'S').replace('E', 'W')},460,0#".encode(),
     set(), {"lat": SOUTH, "lon": WEST}),
    ("trv-YP14", f"TRVYP14{IW_POS},460,0,9520,3671#".encode(), set(), LOCATED),
    ("iw-AP02-wifi", f"IWAP02,zh_cn,0,2,460,0,9520|3671|-60,Den|{MAC1.upper()}|-45#".encode(),
     {("payload.iw.AP02.wifi[0].ssid", "Den"), ("payload.iw.AP02.wifi[0].bssid", MAC1)}, None),
    ("iw-AP12-sos-numbers", f"IWAP12,101500,{P1},{P2},{PHONE}#".encode(),
     {("payload.iw.AP12.phone[0]", P1), ("payload.iw.AP12.phone[1]", P2),
      ("payload.iw.AP12.phone[2]", PHONE)}, None),
    ("iw-AP14-phonebook",
     f"IWAP14,101500,{utf16(CONTACTS[0].name)}|{P1},{utf16('王芳')}|{P2}#".encode(),
     {("payload.iw.AP14[0].name", CONTACTS[0].name), ("payload.iw.AP14[0].phone", P1),
      ("payload.iw.AP14[1].name", "王芳"), ("payload.iw.AP14[1].phone", P2)}, None),
    # H02, text and binary
    ("h02-V1", f"*HQ,{DEVICE},V1,101500,A,{NMEA_LAT},N,{NMEA_LON},E,0.00,0,280625,"
               "FFFFFBFF#".encode(), {("payload.h02.id", DEVICE)}, LOCATED),
    ("h02-V1-no-points", f"*HQ,{DEVICE},V1,101500,A,{NMEA_LAT.replace('.', '')},S,"
                         f"{NMEA_LON.replace('.', '')},W,0.00,0,280625,FFFFFBFF#".encode(),
     {("payload.h02.id", DEVICE)}, {"lat": SOUTH, "lon": WEST}),
    ("h02-V19", f"*HQ,{DEVICE},V19,101500,A,{NMEA_LAT},N,{NMEA_LON},E,0.00,0,280625,"
                f"{PHONE},{ICCID}F,FFFFFBFF#".encode(),
     {("payload.h02.id", DEVICE), ("payload.h02.phone", PHONE), ("payload.h02.iccid", ICCID)},
     LOCATED),
    ("h02-LINK", f"*HQ,{DEVICE},LINK,101500,12,5,87,1200,0,280625,FFFFFBFF#".encode(),
     {("payload.h02.id", DEVICE)}, None),
    ("h02-binary", h02_binary(), {("payload.h02.id", DEVICE)}, LOCATED),
    ("h02-binary-south-west", h02_binary(north=False, east=False),
     {("payload.h02.id", DEVICE)}, {"lat": SOUTH, "lon": WEST}),
    ("h02-binary-north-west", h02_binary(east=False), {("payload.h02.id", DEVICE)},
     {"lat": NORTH, "lon": WEST}),
    # GT06 and Topin (binary)
    ("gt06-0x01-login", gt06(0x01, bcd(IMEI, 8) + b"\x36\x08"), {("payload.gt06.imei", IMEI)},
     None),
    ("gt06-0x22", gt06(0x22, gps_block() + b"\x01\xcc\x00\x25\x30\x00\x0e\x57"), set(), LOCATED),
    ("gt06-0xa0-south-west", gt06(0xA0, gps_block(north=False, west=True) + b"\x01\xcc\x00"),
     set(), {"lat": SOUTH, "lon": WEST}),
    ("topin-0x10", gt06(0x10, gps_block(west=True)), set(), {"lat": NORTH, "lon": WEST}),
    ("gt06-0x94-info", gt06(0x94, b"\x0a" + bcd(IMEI, 8) + bcd(IMSI, 8) + bcd(ICCID, 10),
                            long=True),
     {("payload.gt06.imei", IMEI), ("payload.gt06.imsi", IMSI), ("payload.gt06.iccid", ICCID)},
     None),
    ("gt06-0x2a-phone", gt06(0x2A, gps_block() + PHONE.encode().ljust(21, b"\x00") + b"\x00\x02"),
     {("payload.gt06.phone", PHONE)}, None),
    ("gt06-0xa7-phone", gt06(0xA7, gps_block() + PHONE.encode().ljust(21, b"\x00"), long=True),
     {("payload.gt06.phone", PHONE)}, None),
    ("gt06-ascii-iccid", gt06(0x21, b"\x00\x00\x00\x01\x01" + f"ICCID:{ICCID}".encode(),
                              long=True), {("payload.gt06.iccid", ICCID)}, None),
    ("topin-0x99-sos", gt06(0x99, b"\x01"), {("payload.gt06.alarm", "alarm:sos")}, None),
    # S168, wristband, B2316, PT60, FutureWay
    ("s168", f"S168#{IMEI}#0f12#0077#LOCA:G;CELL:1,1cc,0,2a4e,1b3a,64;GDATA:A,12,"
             f"250628101500,{NORTH},{EAST},0,0,0;ALERT:0000;STATUS:87,100$".encode(),
     {("payload.s168.imei", IMEI)}, LOCATED),
    ("s168-no-fix", f"S168#{IMEI}#0f14#0040#GDATA:V,0,250628101500,0.000000,0.000000,0,0,0"
                    "$".encode(), {("payload.s168.imei", IMEI)}, None),
    ("s168-south-west", f"S168#{IMEI}#0f13#0040#GDATA:A,9,250628101500,{SOUTH},{WEST},0,0,0"
                        "$".encode(), {("payload.s168.imei", IMEI)}, {"lat": SOUTH, "lon": WEST}),
    ("wristband-F02", b"\x00\x01\x02\x58" + f"YX{IMEI}|V1.0|W10|{{F02#{EAST},{NORTH},0,0,"
                                            "250628101500}\r\n".encode() + b"\xff\xfe\xfc",
     {("payload.wristband.imei", IMEI)}, LOCATED),  # longitude first
    ("wristband-F04", b"\x00\x01\x02\x40" + f"YX{IMEI}|V1.0|W10|{{F04#9520,0,460,3671,-60}}"
                                            "\r\n".encode() + b"\xff\xfe\xfc",
     {("payload.wristband.imei", IMEI)}, None),
    ("b2316", json.dumps({"imei": IMEI, "data": [
        {"ic": ICCID, "ci": "460,0,9520,3671,-70", "wi": "3c5ab4010203,-50", "hr": 78}]}
    ).encode(), {("payload.b2316.imei", IMEI), ("payload.b2316.data[0].iccid", ICCID)}, None),
    ("pt60-G", f"@G#@,V01,38,{IMEI},{IMSI},250628101500,{NORTH},{EAST},0,0#".encode(),
     {("payload.pt60.imei", IMEI), ("payload.pt60.imsi", IMSI)}, LOCATED),
    ("pt60-B", f"@B#@|01|003|{IMEI}|{IMSI}|0|1|250628101500|{SOUTH}|{EAST}|".encode(),
     {("payload.pt60.imei", IMEI), ("payload.pt60.imsi", IMSI)}, {"lat": SOUTH, "lon": EAST}),
    ("futureway", f"410000003F2000010000\r\nIMEI:{IMEI}\r\nGPS:A,12,{NMEA_LAT}N,{NMEA_LON}E,"
                  "0.0,0\r\n".encode(), {("payload.futureway.imei", IMEI)}, LOCATED),
]


@pytest.mark.parametrize(("data", "expected", "located"),
                         [pytest.param(*row[1:], id=row[0]) for row in TRACKERS])
def test_every_tracker_protocol_is_recognised_with_what_it_carries(
        data: bytes, expected: set, located: dict | None) -> None:
    fields = tracker_fields(data)
    assert [f.value for f in fields if f.path.endswith(".protocol")], "protocol not recognised"
    assert expected <= pairs(fields)
    lats = [f.value for f in fields if f.path.endswith(".lat")]
    lons = [f.value for f in fields if f.path.endswith(".lon")]
    assert (lats, lons) == (([located["lat"]], [located["lon"]]) if located else ([], []))
    assert payload_fields(data) == fields  # not a watch frame: the tracker reading stands


@pytest.mark.parametrize("data", [
    b"", b"hello world", b"\x78\x78", b"\x79\x79\x00", b"*HQ", b"IWXX#", b"S168#abc#",
    b'{"imei": ', b"@X#@|1|2|", b"41ZZ", b"GET / HTTP/1.1\r\n", b"[not a frame]",
    b"\x00\x01\x02\x10YX123|V1.0",
    b"$GPRMC,081836,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E*62\r\n",  # NMEA, not H02
])
def test_unknown_bytes_are_no_protocol(data: bytes) -> None:
    assert tracker_fields(data) == []
    assert payload_fields(data) == []


@pytest.mark.parametrize("data", [
    b'{"imei":"1","data":5}', b'{"imei":"1","data":{"ic":"8986"}}', b'{"imei":"1","data":null}',
])
def test_a_malformed_b2316_message_is_read_as_far_as_it_goes(data: bytes) -> None:
    assert pairs(tracker_fields(data)) == {("payload.b2316.protocol", "protocol:b2316"),
                                           ("payload.b2316.imei", "1")}
