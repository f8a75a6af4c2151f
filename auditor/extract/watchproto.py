"""Kids'-watch and child-tracker protocols: frames out of a TCP stream, fields out of frames.

The SeTracker "3G" family (``[VV*ID*LLLL*CONTENT]``, tags 3G, SG, CS, ZJ, ...) is read
after ``shared/corpus/watch-protocol/FORMAT.md`` (a paraphrase of traccar's
WatchFrameDecoder / WatchProtocolDecoder / WatchProtocolEncoder): bracket depth ends a
frame, so an SSID such as ``[LG_Wall-Mount A/C]e725`` does not; the length field is not
trusted (FORMAT.md §1: 14 of 55 real frames carry a wrong one); 0x7D escapes are undone.

The sister protocols of ``tracker-protocols/README.md`` (IW/TRV, H02, GT06/Topin, S168,
wristband, B2316, PT60, FutureWay) are read far enough to pull the identifiers, phone
numbers and positions they carry: one recogniser per protocol in ``TRACKERS``.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from auditor.limits import MAX_BUFFER
from auditor.model import Field

# FORMAT.md §1: escapes inside a frame's binary payload.
ESCAPES: dict[bytes, bytes] = {b"\x7d\x01": b"}", b"\x7d\x02": b"[", b"\x7d\x03": b"]",
                               b"\x7d\x04": b",", b"\x7d\x05": b"*"}
_ESCAPED = re.compile(rb"\x7d[\x01-\x05]")
_BRACKET = re.compile(rb"[\[\]]")
_HEADER = re.compile(rb"^\[([A-Za-z0-9]{2})\*([^*\[\]]{1,32})\*(?:([0-9A-Fa-f]{4})\*)?"
                     rb"([0-9A-Fa-f]{4})\*", re.S)


def unescape(data: bytes) -> bytes:
    return _ESCAPED.sub(lambda m: ESCAPES[m.group(0)], data)


_HEADER_START = re.compile(rb"^\[[A-Za-z0-9]{0,2}(?:\*[^*\[\]]{0,32}(?:\*[0-9A-Fa-f]{0,4}){0,2})?$")


def looks_like_watch(data: bytes) -> bool:
    """The first bytes of a stream open a ``[VV*ID*...`` frame (or, cut short, could)."""
    head = data[:64]
    return _HEADER.match(head) is not None or _HEADER_START.match(head) is not None


class FrameSplitter:
    """Whole ``[...]`` frames out of a byte stream fed in arbitrary pieces (one per direction
    of one connection). Bounded: at most ``limit`` bytes are held while a frame is open.
    Only the new bytes are scanned on each feed, bracket to bracket."""

    def __init__(self, limit: int = MAX_BUFFER) -> None:
        self.buffer = bytearray()
        self.limit = limit
        self.dropped = 0  # bytes thrown away: junk between frames or an overlong frame
        self._depth = 0
        self._begin = 0
        self._scanned = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.buffer
        buf += data
        frames: list[bytes] = []
        depth, begin, framed = self._depth, self._begin, 0
        for m in _BRACKET.finditer(buf, self._scanned):
            i = m.start()
            if buf[i] == 0x5B:  # [
                if depth == 0:
                    begin = i
                depth += 1
            elif depth:  # ]
                depth -= 1
                if depth == 0:
                    frames.append(bytes(buf[begin:i + 1]))
                    framed += i + 1 - begin
        consumed = begin if depth else len(buf)
        self.dropped += consumed - framed
        del buf[:consumed]
        if len(buf) > self.limit:
            self.dropped += len(buf)
            buf.clear()
            depth = 0
        self._depth, self._begin, self._scanned = depth, 0, len(buf)
        return frames


@dataclass(frozen=True)
class WatchFrame:
    vendor: str
    device_id: str
    index: str
    length: int
    type: str
    content: bytes  # unescaped, after the header, without the closing bracket

    @property
    def values(self) -> list[str]:
        """The comma-separated text values after TYPE (binary payloads decoded leniently)."""
        text = self.content.decode("latin-1")
        return text.split(",")[1:]


def parse_frame(frame: bytes) -> WatchFrame | None:
    m = _HEADER.match(frame)
    if m is None or not frame.endswith(b"]"):
        return None
    content = unescape(frame[m.end():-1])
    kind = content.split(b",", 1)[0].decode("latin-1")
    return WatchFrame(m.group(1).decode(), m.group(2).decode("latin-1"),
                      (m.group(3) or b"").decode(), int(m.group(4), 16), kind, content)


# -- watch fields -------------------------------------------------------------------------

# FORMAT.md §3: status bits, first match wins.
ALARM_BITS: tuple[tuple[int, str], ...] = (
    (0, "low_battery"), (1, "geofence_exit"), (2, "geofence_enter"), (14, "power_cut"),
    (16, "sos"), (17, "low_battery"), (18, "geofence_exit"), (19, "geofence_enter"),
    (20, "removed"), (21, "fall"), (22, "fall"))
POSITION_TYPES = ("UD", "AL", "WT", "WAD", "WG")
# FORMAT.md §5: health messages and the names of their values.
HEALTH: dict[str, tuple[str, ...]] = {
    "heart": ("heart_rate",), "PULSE": ("heart_rate",),
    "bphrt": ("systolic", "diastolic", "heart_rate", "height", "gender", "age", "weight"),
    "BLOOD": ("systolic", "diastolic"), "oxygen": ("flag", "spo2"), "TEMP": ("temperature",),
    "btemp2": ("valid", "temperature"),
}
MEDIA: dict[str, str] = {"TK": "audio/amr", "JXTK": "audio/amr", "img": "image/jpeg"}
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_PHONE = re.compile(r"^\+?\d{5,20}$")


def watch_fields(frame: WatchFrame, direction: str = "up") -> list[Field]:
    base = "payload.watch"
    out = [Field("payload", f"{base}.id", frame.device_id),
           Field("tag", f"{base}.protocol", "protocol:watch")]
    kind, values = frame.type, frame.values
    if direction == "down":
        out.append(Field("command", f"{base}.cmd", kind))
    media = MEDIA.get(kind)
    if media is not None and _binary_media(frame):
        out.append(Field("media", f"{base}.{kind}", media))
        return out
    if kind.startswith(POSITION_TYPES):
        out += _position(f"{base}.{kind}", values)
    elif kind.startswith("LK") and values:
        out += [Field("payload", f"{base}.LK.{name}", v)
                for name, v in zip(("steps", "tumbles", "battery"), values, strict=False) if v]
    elif kind in HEALTH:
        out += [Field("payload", f"{base}.{kind}.{name}", v)
                for name, v in zip(HEALTH[kind], values, strict=False) if v.strip()]
    elif re.fullmatch(r"SOS\d*", kind):
        out += [Field("payload", f"{base}.{kind}.phone", v) for v in values if v.strip()]
    elif kind == "PHB" or kind.startswith("PHB"):
        out += _phonebook(f"{base}.{kind}", values)
    elif kind == "MESSAGE" and values:
        out.append(Field("payload", f"{base}.MESSAGE.text", _utf16(values[0])))
    elif kind in ("MONITOR", "CALL") and values:
        out.append(Field("payload", f"{base}.{kind}.phone", values[0]))
    elif kind in ("ICCID", "RYIMEI", "CONFIG"):
        out += [Field("payload", f"{base}.{kind}[{i}]", v) for i, v in enumerate(values) if v]
    return out


def _binary_media(frame: WatchFrame) -> bool:
    """``TK,1`` / ``TK,0`` are acknowledgements; a voice or photo payload is longer."""
    rest = frame.content.split(b",", 1)[1] if b"," in frame.content else b""
    return len(rest) > 2 or b"#!AMR" in rest


def _coord(text: str, hemi: str, negative: str) -> str:
    text = text.strip()
    if hemi == negative and not text.startswith("-"):
        text = "-" + text
    return text


def _position(base: str, v: list[str]) -> list[Field]:
    """FORMAT.md §2: date, time, A/V, lat, N/S, lon, E/W, ..., status (16), cells, Wi-Fi."""
    out: list[Field] = []
    if len(v) < 7:
        return out
    lat, lon = _coord(v[3], v[4], "S"), _coord(v[5], v[6], "W")
    try:
        if float(lat) or float(lon):
            out += [Field("payload", f"{base}.lat", lat), Field("payload", f"{base}.lon", lon)]
    except ValueError:
        pass
    if len(v) > 15 and _HEX.match(v[15].strip() or "x"):
        status = int(v[15], 16)
        for bit, name in ALARM_BITS:
            if status >> bit & 1:
                out.append(Field("tag", f"{base}.alarm", f"alarm:{name}"))
                break
    if len(v) > 13 and v[13].strip().isdigit():
        out.append(Field("payload", f"{base}.steps", v[13].strip()))
    out += _cells_and_wifi(base, v[16:])
    return out


def _int(text: str) -> int:
    text = text.strip()
    return int(text, 16) if re.search(r"[A-Fa-f]", text) else int(text)


def _cells_and_wifi(base: str, v: list[str]) -> list[Field]:
    out: list[Field] = []
    try:
        count = int(v[0])
    except (ValueError, IndexError):
        return out
    i = 1
    if count:
        if len(v) < 4 or _HEX.match(v[3].strip() or "x") and re.search(r"[A-Fa-f]", v[3]):
            return out
        mcc, mnc = v[2].strip(), v[3].strip()
        i = 4
        for n in range(count):
            if i + 1 >= len(v):
                return out
            try:
                lac, cid = _int(v[i]), _int(v[i + 1])
            except ValueError:
                return out
            out.append(Field("payload", f"{base}.cell[{n}]", f"{mcc},{mnc},{lac},{cid}"))
            i += 3
    try:
        wifi = int(v[i])
    except (ValueError, IndexError):
        return out
    i += 1
    for n in range(wifi):
        if i + 1 >= len(v):
            break
        ssid, mac = v[i], v[i + 1].strip()
        if mac and mac != "0":  # traccar skips an empty or zero MAC (FORMAT.md §2)
            if ssid:
                out.append(Field("payload", f"{base}.wifi[{n}].ssid", ssid))
            out.append(Field("payload", f"{base}.wifi[{n}].bssid", mac))
        i += 3
    return out


def _utf16(text: str) -> str:
    """MESSAGE and phonebook names are UTF-16BE hex (FORMAT.md §7); anything else as is."""
    text = text.strip()
    if text and len(text) % 4 == 0 and _HEX.match(text):
        try:
            return bytes.fromhex(text).decode("utf-16-be")
        except UnicodeDecodeError:
            return text
    return text


def _phonebook(base: str, values: list[str]) -> list[Field]:
    out: list[Field] = []
    n = 0
    for v in values:
        v = v.strip()
        if not v:
            continue
        if _PHONE.match(v):
            out.append(Field("payload", f"{base}[{n}].phone", v))
        else:
            out.append(Field("payload", f"{base}[{n}].name", _utf16(v)))
            n += 1
    return out


# -- sister tracker protocols -------------------------------------------------------------

def _ddmm(text: str, hemi: str, degree_digits: int) -> str:
    """``ddmm.mmmm`` (or the same without the point) to signed decimal degrees."""
    text = text.strip()
    if "." not in text:
        text = text[:degree_digits + 2] + "." + text[degree_digits + 2:]
    value = float(text)
    deg = int(value // 100) + (value % 100) / 60
    return f"{-deg if hemi in ('S', 'W') else deg:.6f}"


def _pos(base: str, lat: str, lon: str) -> list[Field]:
    if float(lat) == 0 and float(lon) == 0:
        return []
    return [Field("payload", f"{base}.lat", lat), Field("payload", f"{base}.lon", lon)]


_IW = re.compile(r"^(IW|TRV)([A-Z]{2}[0-9A-Z]{2})")
_IW_POS = re.compile(r"(\d{6})([AV])(\d{4}\.\d+)([NS])(\d{5}\.\d+)([EW])")
_WIFI_ITEM = re.compile(r"([^|&,]*)\|([0-9A-Fa-f]{2}(?:[-:][0-9A-Fa-f]{2}){5})\|")
_PHONES = re.compile(r"\+?\d{6,20}")


def _iw(text: str) -> list[Field]:
    m = _IW.match(text)
    if m is None:
        return []
    kind, base = m.group(2), "payload.iw"
    body = text[m.end():].rstrip("#")
    out = [Field("tag", f"{base}.protocol", "protocol:iw")]
    if kind == "AP00":
        parts = body.split(",")
        for name, v in zip(("imei", "iccid", "imsi"), parts, strict=False):
            if v:
                out.append(Field("payload", f"{base}.{name}", v.rstrip("fF")
                                 if name == "iccid" else v))
    pos = _IW_POS.search(body)
    if pos is not None:
        out += _pos(f"{base}.{kind}", _ddmm(pos.group(3), pos.group(4), 2),
                    _ddmm(pos.group(5), pos.group(6), 3))
    for n, w in enumerate(_WIFI_ITEM.finditer(body)):
        if w.group(1).strip():
            out.append(Field("payload", f"{base}.{kind}.wifi[{n}].ssid", w.group(1).strip()))
        out.append(Field("payload", f"{base}.{kind}.wifi[{n}].bssid",
                         w.group(2).replace("-", ":").lower()))
    if kind == "AP12":
        out += [Field("payload", f"{base}.AP12.phone[{n}]", p)
                for n, p in enumerate(body.split(",")[2:]) if _PHONE.match(p)]
    if kind == "AP14":
        for n, pair in enumerate(p for p in body.split(",")[2:] if "|" in p):
            name, phone = pair.split("|", 1)
            out += [Field("payload", f"{base}.AP14[{n}].name", _utf16(name)),
                    Field("payload", f"{base}.AP14[{n}].phone", phone)]
    return out


_H02 = re.compile(r"^\*[A-Za-z]{2},(\w+),(\w+),")
_H02_POS = re.compile(r",([AVB]),(\d{4}\.\d+|\d{8}),([NS]),(\d{5}\.\d+|\d{9}),([EW]),")


def _h02(text: str) -> list[Field]:
    m = _H02.match(text)
    if m is None:
        return []
    base, kind = "payload.h02", m.group(2)
    out = [Field("tag", f"{base}.protocol", "protocol:h02"),
           Field("payload", f"{base}.id", m.group(1))]
    pos = _H02_POS.search(text)
    if pos is not None:
        out += _pos(f"{base}.{kind}", _ddmm(pos.group(2), pos.group(3), 2),
                    _ddmm(pos.group(4), pos.group(5), 3))
    for v in text.rstrip("#").split(",")[3:]:
        v = v.strip()
        if re.fullmatch(r"89\d{17,18}[Ff]?", v):
            out.append(Field("payload", f"{base}.iccid", v.rstrip("fF")))
        elif re.fullmatch(r"\+?\d{8,15}", v) and kind in ("V6", "V19"):
            out.append(Field("payload", f"{base}.phone", v))
    return out


def _h02_binary(data: bytes) -> list[Field]:
    """``$`` + BCD: device id (5 bytes), hhmmss, ddmmyy, lat ddmm.mmmm, battery, lon
    dddmm.mmmm + flags nibble (bit 2 north, bit 3 east)."""
    if len(data) < 22 or data[0] != 0x24:
        return []
    h = data[1:22].hex()
    ident, lat, lon, flags = h[0:10], h[22:30], h[32:41], int(h[41], 16)
    if not (h[0:30] + lon).isdigit():  # BCD or not H02: an NMEA "$GPRMC,..." is text
        return []
    try:
        la = _ddmm(lat, "N" if flags & 4 else "S", 2)
        lo = _ddmm(lon, "E" if flags & 8 else "W", 3)
    except ValueError:
        return [Field("payload", "payload.h02.id", ident)]
    return [Field("tag", "payload.h02.protocol", "protocol:h02"),
            Field("payload", "payload.h02.id", ident), *_pos("payload.h02.binary", la, lo)]


def _bcd(data: bytes) -> str:
    return data.hex().rstrip("f").lstrip("0") or "0"


def _gt06(data: bytes) -> list[Field]:
    """GT06 / Topin (0x7878 short, 0x7979 long frames): login IMEI, GPS block, 0x94 INFO
    (IMEI + IMSI + ICCID), phone numbers and ICCIDs written as ASCII."""
    if data[:2] == b"\x78\x78" and len(data) >= 5:
        kind, body = data[3], data[4:]
    elif data[:2] == b"\x79\x79" and len(data) >= 6:
        kind, body = data[4], data[5:]
    else:
        return []
    base = "payload.gt06"
    out = [Field("tag", f"{base}.protocol", "protocol:gt06")]
    if kind == 0x01 and len(body) >= 8:
        out.append(Field("payload", f"{base}.imei", _bcd(body[:8])))
    elif kind in (0x10, 0x11, 0x12, 0x16, 0x22, 0x1A, 0xA0) and len(body) >= 18:
        lat, lon = struct.unpack(">II", body[7:15])
        flags = struct.unpack(">H", body[16:18])[0]
        la = lat / 1_800_000 * (1 if flags & 0x0400 else -1)
        lo = lon / 1_800_000 * (-1 if flags & 0x0800 else 1)
        out += _pos(f"{base}.{kind:02x}", f"{la:.6f}", f"{lo:.6f}")
    elif kind == 0x94 and len(body) >= 27 and body[0] == 0x0A:
        out += [Field("payload", f"{base}.imei", _bcd(body[1:9])),
                Field("payload", f"{base}.imsi", _bcd(body[9:17])),
                Field("payload", f"{base}.iccid", _bcd(body[17:27]))]
    elif kind == 0x99:
        out.append(Field("tag", f"{base}.alarm", "alarm:sos"))
    ascii_runs = re.findall(rb"[\x20-\x7e]{8,}", body)
    for run in ascii_runs:
        text = run.decode()
        for iccid in re.findall(r"89\d{17,18}", text):
            out.append(Field("payload", f"{base}.iccid", iccid))
        if kind in (0x2A, 0xA7):
            out += [Field("payload", f"{base}.phone", p) for p in _PHONES.findall(text)]
    return out


_S168 = re.compile(r"^S168#(\d+)#")
_GDATA = re.compile(r"GDATA:[AV],\d+,\d+,(-?\d+\.\d+),(-?\d+\.\d+)")


def _s168(text: str) -> list[Field]:
    m = _S168.match(text)
    if m is None:
        return []
    out = [Field("tag", "payload.s168.protocol", "protocol:s168"),
           Field("payload", "payload.s168.imei", m.group(1))]
    g = _GDATA.search(text)
    if g is not None:
        out += _pos("payload.s168.GDATA", g.group(1), g.group(2))
    return out


_YX = re.compile(r"YX(\d{15})\|")
_F02 = re.compile(r"\{F02#(-?\d+\.\d+),(-?\d+\.\d+),")


def _wristband(text: str) -> list[Field]:
    m = _YX.search(text)
    if m is None:
        return []
    out = [Field("tag", "payload.wristband.protocol", "protocol:wristband"),
           Field("payload", "payload.wristband.imei", m.group(1))]
    g = _F02.search(text)
    if g is not None:  # longitude first (README)
        out += _pos("payload.wristband.F02", g.group(2), g.group(1))
    return out


def _b2316(text: str) -> list[Field]:
    if not text.startswith('{"imei"'):
        return []
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    out = [Field("tag", "payload.b2316.protocol", "protocol:b2316"),
           Field("payload", "payload.b2316.imei", str(doc.get("imei", "")))]
    data = doc.get("data")
    for n, entry in enumerate(data if isinstance(data, list) else []):
        if isinstance(entry, dict) and entry.get("ic"):
            out.append(Field("payload", f"payload.b2316.data[{n}].iccid", str(entry["ic"])))
    return out


_PT60 = re.compile(r"^@[BG]#@[|,]")
_DEC_PAIR = re.compile(r"(-?\d{1,2}\.\d{4,})[|;,](-?\d{1,3}\.\d{4,})")


def _pt60(text: str) -> list[Field]:
    if _PT60.match(text) is None:
        return []
    parts = re.split(r"[|,]", text)
    out = [Field("tag", "payload.pt60.protocol", "protocol:pt60")]
    if len(parts) > 4:
        out += [Field("payload", "payload.pt60.imei", parts[3]),
                Field("payload", "payload.pt60.imsi", parts[4])]
    g = _DEC_PAIR.search(text)
    if g is not None:
        out += _pos("payload.pt60", g.group(1), g.group(2))
    return out


_FW_IMEI = re.compile(r"IMEI:(\d{15})")
_FW_GPS = re.compile(r"GPS:[AV],\d+,(\d+\.\d+)([NS]),(\d+\.\d+)([EW])")


def _futureway(text: str) -> list[Field]:
    if not re.match(r"^41[0-9A-F]{14}", text):
        return []
    out = [Field("tag", "payload.futureway.protocol", "protocol:futureway")]
    m = _FW_IMEI.search(text)
    if m is not None:
        out.append(Field("payload", "payload.futureway.imei", m.group(1)))
    g = _FW_GPS.search(text)
    if g is not None:
        out += _pos("payload.futureway.GPS", _ddmm(g.group(1), g.group(2), 2),
                    _ddmm(g.group(3), g.group(4), 3))
    return out


# One recogniser per protocol: text ones get the payload as latin-1 text.
TEXT_TRACKERS: tuple[Callable[[str], list[Field]], ...] = (
    _iw, _h02, _s168, _b2316, _pt60, _futureway, _wristband)
BINARY_TRACKERS: tuple[Callable[[bytes], list[Field]], ...] = (_gt06, _h02_binary)


def tracker_fields(data: bytes) -> list[Field]:
    """Fields from one message of a sister tracker protocol; empty when none recognises it."""
    for read in BINARY_TRACKERS:
        try:
            out = read(data)
        except (ValueError, IndexError, struct.error):
            out = []
        if out:
            return out
    text = data.decode("latin-1")
    for reader in TEXT_TRACKERS:
        try:
            out = reader(text)
        except (ValueError, IndexError):
            out = []
        if out:
            return out
    return []


def payload_fields(data: bytes, direction: str = "up") -> list[Field]:
    """Every watch frame in one message, or a sister protocol's fields; empty if neither."""
    if data[:1] == b"[":
        out: list[Field] = []
        splitter = FrameSplitter()
        for raw in splitter.feed(data):
            frame = parse_frame(raw)
            if frame is not None:
                out += watch_fields(frame, direction)
        if out:
            return out
    return tracker_fields(data)
