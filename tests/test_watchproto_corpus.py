"""The kids'-watch decoder and the sister tracker protocols against every real sample of the
shared corpus (traccar's test messages: real people's data, Apache-2.0, kept out of this
repository). Every expected value below is derived from the sample itself.

Runs only where ``KIDAUDIT_CORPUS`` names the corpus folder (``.ci/run`` sets it to
``../shared/corpus``); ``tests/conftest.py`` leaves this module out otherwise, so a plain
clone runs the synthetic ``test_watchproto.py`` alone. With the variable set, a missing
folder or file fails these tests: it never turns them into skips.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from auditor.extract.watchproto import (
    FrameSplitter,
    parse_frame,
    payload_fields,
    tracker_fields,
    unescape,
    watch_fields,
)
from auditor.model import Field

ENV = "KIDAUDIT_CORPUS"
# Named on the command line without the variable: collect nothing (neither fail nor skip).
__test__ = ENV in os.environ

CORPUS = Path(os.environ.get(ENV, ""))
WATCH = CORPUS / "watch-protocol"
TRACKERS = CORPUS / "tracker-protocols" / "traccar_tracker_samples.jsonl"
TEXT_FILES = ("traccar_watch_samples.txt", "traccar_watch_frame_samples.txt",
              "traccar_watch_integration_sample.txt", "traccar_watch_samples_historical.txt")
OTHER_FILES = ("traccar_watch_tcp_stream_sample.txt", "traccar_watch_binary_samples.hex.txt",
               "traccar_watch_server_commands.txt")
MISSING = object()  # stands for the samples of a file that is not there


def _where(path: Path) -> str:
    return f"{ENV}={os.environ.get(ENV, '')!r}: {path} not found or empty"


def _lines(name: str) -> list[bytes]:
    try:
        data = (WATCH / name).read_bytes()
    except OSError:
        return []
    return [line for line in data.splitlines() if line and not line.startswith(b"#")]


def _need(items: list, path: Path) -> list:
    """The samples, or one parameter that fails: an empty list would make pytest skip."""
    return items or [pytest.param(MISSING, id=f"missing-{path.name}")]


def _present(value: object, path: Path) -> None:
    assert value is not MISSING, _where(path)


def _by_path(fields: list[Field]) -> dict[str, str]:
    return {f.path: f.value for f in fields}


TEXT_SAMPLES = [line for name in TEXT_FILES for line in _lines(name)]


@pytest.mark.parametrize("path", [CORPUS, *(WATCH / n for n in (*TEXT_FILES, *OTHER_FILES)),
                                  TRACKERS], ids=lambda p: p.name or "corpus")
def test_the_corpus_is_there(path: Path) -> None:
    assert os.environ[ENV].strip(), f"{ENV} is set but empty"
    assert path.exists() and (path.is_dir() or path.stat().st_size), _where(path)


@pytest.mark.parametrize("raw", _need(TEXT_SAMPLES, WATCH),
                         ids=lambda b: b[:24].decode("latin-1") if isinstance(b, bytes) else "")
def test_every_text_sample_parses_with_its_id_and_position(raw: bytes) -> None:
    _present(raw, WATCH)
    frame = parse_frame(raw)
    assert frame is not None
    header = raw[1:].split(b"*")
    assert frame.vendor == header[0].decode() and frame.device_id == header[1].decode()
    fields = _by_path(watch_fields(frame))
    assert fields["payload.watch.id"] == frame.device_id
    values = frame.values
    if frame.type.startswith(("UD", "AL", "WT")) and float(values[3] or 0) and float(
            values[5] or 0):
        lat = float(fields[f"payload.watch.{frame.type}.lat"])
        lon = float(fields[f"payload.watch.{frame.type}.lon"])
        assert abs(lat) == abs(float(values[3])) and abs(lon) == abs(float(values[5]))
        assert (lat < 0) == (values[4] == "S" or values[3].strip().startswith("-"))
        assert (lon < 0) == (values[6] == "W" or values[5].strip().startswith("-"))


def test_cells_wifi_and_alarms_come_out_of_position_frames() -> None:
    assert TEXT_SAMPLES, _where(WATCH)
    fields = [f for raw in TEXT_SAMPLES for f in payload_fields(raw)]
    bssids = [f.value for f in fields if f.path.endswith(".bssid")]
    assert bssids and all(re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", b) for b in bssids)
    cells = [f.value for f in fields if re.search(r"\.cell\[\d+\]$", f.path)]
    assert cells and all(len(c.split(",")) == 4 for c in cells)
    alarms = {f.value for f in fields if f.path.endswith(".alarm")}
    assert "alarm:sos" in alarms and "alarm:removed" in alarms
    health = {f.path.rsplit(".", 1)[1] for f in fields if re.search(
        r"\.(heart|PULSE|bphrt|BLOOD|oxygen|TEMP|btemp2)\.", f.path)}
    assert {"heart_rate", "systolic", "spo2", "temperature"} <= health


def test_an_ssid_with_brackets_does_not_end_the_frame() -> None:
    path = WATCH / "traccar_watch_frame_samples.txt"
    raw = next((line for line in _lines(path.name) if b"]e" in line), None)
    assert raw is not None, _where(path)
    (frame,) = FrameSplitter().feed(raw)
    assert frame == raw
    ssids = [f.value for f in payload_fields(raw) if f.path.endswith(".ssid")]
    assert any(s.startswith("[") for s in ssids)


def test_wrong_length_fields_are_tolerated() -> None:
    assert TEXT_SAMPLES, _where(WATCH)
    wrong = 0
    for raw in TEXT_SAMPLES:
        frame = parse_frame(raw)
        assert frame is not None
        wrong += frame.length != len(frame.content)
    assert wrong > 0  # FORMAT.md: some real frames carry a wrong length; they still parse


@pytest.mark.parametrize("step", [1, 2, 7, 50, 10_000])
def test_a_stream_split_anywhere_gives_the_same_frames(step: int) -> None:
    path = WATCH / "traccar_watch_tcp_stream_sample.txt"
    lines = _lines(path.name)
    assert len(lines) == 1, _where(path)
    (stream,) = lines
    splitter = FrameSplitter()
    frames = [f for i in range(0, len(stream), step) for f in splitter.feed(stream[i:i + step])]
    assert len(frames) == 4 and b"".join(frames) == stream
    assert [parse_frame(f).type for f in frames] == ["LK", "UD", "TKQ", "LK"]


def test_escaped_voice_is_undone_and_reported_as_audio() -> None:
    path = WATCH / "traccar_watch_binary_samples.hex.txt"
    rows = dict(line.split(b"\t") for line in _lines(path.name))
    assert rows, _where(path)
    plain = bytes.fromhex(next(v for k, v in rows.items() if k.startswith(b"MIXED_TK_AMR_VOICE(")
                               ).decode())
    wire = bytes.fromhex(next(v for k, v in rows.items() if b"ON_WIRE" in k).decode())
    assert unescape(wire) == plain
    frame = parse_frame(wire)
    assert frame is not None and frame.content == plain[plain.index(b"TK,"):-1]
    media = [f for f in payload_fields(wire) if f.location == "media"]
    assert [(m.path, m.value) for m in media] == [("payload.watch.TK", "audio/amr")]
    chunks = bytes.fromhex(next(v for k, v in rows.items() if k.startswith(b"BINARY_JXTK")
                                ).decode())
    assert ("media", "audio/amr") in {(f.location, f.value) for f in payload_fields(chunks)} or \
        parse_frame(chunks + b"]") is not None  # a chunk stream may be cut mid-frame


def test_server_commands_are_commands_with_their_data() -> None:
    path = WATCH / "traccar_watch_server_commands.txt"
    lines = _lines(path.name)
    assert lines, _where(path)
    frames = [bytes.fromhex(line[4:].decode()) if line.startswith(b"HEX:") else line
              for line in lines]
    fields = [f for raw in frames for f in payload_fields(raw, "down")]
    commands = {f.value for f in fields if f.location == "command"}
    assert {"RESET", "SOS1", "MESSAGE", "TK", "WORK", "LZ"} <= commands
    sos = next(raw for raw in frames if b"SOS1," in raw)
    phone = sos.rstrip(b"]").split(b",")[1].decode()
    assert ("payload.watch.SOS1.phone", phone) in {(f.path, f.value) for f in fields}
    assert ("payload.watch.MESSAGE.text", "text") in {(f.path, f.value) for f in fields}


# -- sister protocols -----------------------------------------------------------------------

def _tracker_rows() -> list[dict]:
    try:
        text = TRACKERS.read_text()
    except OSError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _payload(row: dict) -> bytes:
    return bytes.fromhex(row["payload"]) if row["encoding"] == "hex" else \
        row["payload"].encode("latin-1")


def _expected_ids(row: dict, data: bytes) -> set[str]:
    """The identifier each sample carries, located by the protocol's own layout."""
    text, proto, kind = data.decode("latin-1"), row["protocol"], row["message_type"]
    if proto == "trv_iw" and kind == "AP00":
        return {re.split(r"AP00", text)[1].split(",")[0]}
    if proto == "h02" and row["encoding"] == "text":
        return {text.split(",")[1]}
    if proto == "h02":
        return {data[1:6].hex()}
    if proto == "s168":
        return {text.split("#")[1]}
    if proto == "pt60":
        return {re.split(r"[|,]", text)[3]}
    if proto == "b2316":
        return {json.loads(text)["imei"]}
    if proto == "wristband":
        return {re.search(r"YX(\d{15})", text).group(1)}
    if proto == "futureway" and "IMEI:" in text:
        return {re.search(r"IMEI:(\d{15})", text).group(1)}
    if proto in ("gt06", "topin") and kind == "0x01":
        return {data[4:12].hex().lstrip("0")}
    return set()


POSITIONS = {("h02", "V1"), ("h02", "V19"), ("h02", "V4"), ("h02", "BINARY"),
             ("trv_iw", "AP01"), ("trv_iw", "AP10"), ("trv_iw", "YP03"), ("trv_iw", "YP14"),
             ("gt06", "0x16"), ("gt06", "0x22"), ("gt06", "0xa0"), ("topin", "0x10"),
             ("wristband", "F02")}


@pytest.mark.parametrize("row", _need(_tracker_rows(), TRACKERS),
                         ids=lambda r: f"{r['protocol']}-{r['message_type']}"
                         if isinstance(r, dict) else "")
def test_every_tracker_sample_is_recognised_with_what_it_carries(row: dict) -> None:
    _present(row, TRACKERS)
    data = _payload(row)
    fields = tracker_fields(data)
    assert any(f.path.endswith(".protocol") for f in fields), "protocol not recognised"
    values = {f.value for f in fields}
    assert _expected_ids(row, data) <= values
    lats = [float(f.value) for f in fields if f.path.endswith(".lat")]
    lons = [float(f.value) for f in fields if f.path.endswith(".lon")]
    if (row["protocol"], row["message_type"]) in POSITIONS:
        assert lats and lons
    assert all(-90 <= v <= 90 for v in lats) and all(-180 <= v <= 180 for v in lons)
    in_text = re.search(r"89\d{17}", data.decode("latin-1"))
    in_bcd = row["protocol"] == "gt06" and "iccid" in row["pii_note"].lower()
    if in_text or in_bcd:
        assert any(f.path.endswith("iccid") and f.value.startswith("89") for f in fields)


def test_phone_numbers_and_contacts_in_tracker_acks() -> None:
    rows = {(r["protocol"], r["message_type"]): _payload(r) for r in _tracker_rows()}
    assert rows, _where(TRACKERS)
    ap12 = tracker_fields(rows[("trv_iw", "AP12")])
    expected = set(rows[("trv_iw", "AP12")].decode().split(",")[2:])
    assert {f.value for f in ap12 if ".phone" in f.path} == expected
    ap14 = tracker_fields(rows[("trv_iw", "AP14")])
    names = [f.value for f in ap14 if f.path.endswith(".name")]
    assert names and all(n.isprintable() and not re.fullmatch(r"[0-9a-f]+", n) for n in names)
    for kind in ("0x2a", "0xa7"):
        assert any(".phone" in f.path for f in tracker_fields(rows[("gt06", kind)]))
