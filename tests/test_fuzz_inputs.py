"""Fuzzing the user's inputs through the whole command (issue 13): valid profiles, consent
plans, HAR, ``.mitm`` and pcap files, mutated at random (bytes flipped, cut, spliced,
repeated, and hostile values such as ``5``, ``[1]``, ``1e300``, year 1, deep nesting or a
5,000-digit number put in), fed to ``kidaudit analyze``. Whatever the input, the command
answers by the exit-code contract: 0 (done) or 2 (the input is wrong, one line), never 3
(the run failed) and never a traceback.

Seeded, so a failure is the same on every run and names its seed; the number of cases is
bounded, so the file runs in well under a minute. Runs in this process, through
``auditor.cli.main`` and its exit-code mapping: a subprocess per case would cost an
interpreter start each.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from mitmproxy.test import tflow

from tests.factories import (
    BIRTHDATE,
    CHILD_NAME,
    CONTACTS,
    EPOCH,
    FIRST_PARTY,
    IMEI,
    LAT,
    LON,
    MAC,
    PHONE,
    http_flow,
    run_main,
    write_flows,
)
from tests.test_sources_pcap import _watch_capture

CASES = 150  # per kind of input; each is one whole analyze

PROFILE = f"""\
device: {{name: "Acme Kids Watch K2", kind: smartwatch, firmware: "1.4.2", ca_trusted: false,
         ip: ["192.168.50.23"]}}
identifiers: {{imei: "{IMEI}", mac: "{MAC}", phone: "{PHONE}"}}
child: {{name: "{CHILD_NAME}", birthdate: "{BIRTHDATE}"}}
location: {{lat: {LAT}, lon: {LON},
           cell: [{{mcc: 460, mnc: 0, lac: 4286, cid: 28711}}], wifi: ["3c:5a:b4:01:02:04"]}}
contacts: [{{name: "{CONTACTS[0].name}", phone: "{CONTACTS[0].phone}"}}]
credentials: [{{username: "kid", password: "hunter22"}}]
first_party: [{FIRST_PARTY}]
jurisdiction: CN
irregular: [identifiers.imei]
"""

PLAN = """\
disclosed:
  - recipient: acme-watch.example
    categories: [location.precise, identifier.imei, contacts.entry]
    purpose: "family locator service"
events:
  - {at: "2026-09-21T10:15:00Z", action: grant, categories: all-disclosed,
     separate: [location.precise]}
  - {at: "2026-09-21T10:20:00+08:00", action: phase, name: idle}
  - {at: 2026-09-21 10:40:00 Z, action: withdraw, categories: [location.precise]}
signals:
  - {filter: "~u /api/privacy/agree & ~m POST", action: grant, categories: all-disclosed}
limits:
  min_interval_s: {location.precise: 60}
withdrawal_grace_s: 60
"""

# Values a hostile or broken producer writes where another belongs.
HOSTILE = (b"5", b"[1]", b"1e300", b"-1", b"null", b"true", b'""', b"{}",
           b'"0001-01-01T00:30:00+01:00"', b'"9999-12-31T23:30:00-01:00"', b"NaN",
           b"9" * 5000, b"[" * 3000, b"{a: " * 500, b"\xff\xfe", b"\x00", b'"\\ud800"',
           b"999999999999:", b"5:hello,", b"0:~", b"[bad", b"http://[bad/", b"*a", b"&a ",
           b"\r\n", b"\t=1", b"'", b'"')


def _har() -> bytes:
    def entry(url: str, at: str, body: str = "") -> dict:
        request = {"method": "POST" if body else "GET", "url": url, "httpVersion": "HTTP/1.1",
                   "headers": [{"name": "Host", "value": url.split("/")[2]},
                               {"name": "User-Agent", "value": "kid-app/1.0"}],
                   "queryString": [], "headersSize": -1, "bodySize": len(body)}
        if body:
            request["postData"] = {"mimeType": "application/json", "text": body}
        return {"startedDateTime": at, "serverIPAddress": "203.0.113.9", "request": request,
                "response": {"status": 200}, "timings": {"send": 1, "wait": 20}}

    entries = [
        entry(f"http://api.acme-watch.example/bind?imei={IMEI}", "2026-09-21T10:00:00Z"),
        entry("https://api.acme-watch.example/loc", "2026-09-21T10:00:05.5+08:00",
              json.dumps({"lat": 39.98312, "lon": 116.30791})),
        {**entry("wss://push.acme-watch.example/ws", "2026-09-21T10:00:09Z"),
         "_webSocketMessages": [{"type": "send", "time": 1790000011.5, "opcode": 1,
                                 "data": f"imei={IMEI}"}]},
    ]
    return json.dumps({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"},
                               "entries": entries}}, indent=1).encode()


def _mitm(folder: Path) -> bytes:
    tcp = tflow.ttcpflow()
    tcp.messages[0].content = b"[3G*8645360401*0009*LK,0,0,53]"
    flows = [
        http_flow("https://api.acme-watch.example/reg", EPOCH, {"imei": IMEI}),
        http_flow("http://app.acme-watch.example/api/privacy/agree", EPOCH + 1, {"ok": 1}),
        http_flow(f"http://sdk.tracklytics.example/e?imei={IMEI}", EPOCH + 2, None, "GET"),
        tcp,
    ]
    return write_flows(folder / "seed.mitm", flows).read_bytes()


def _pcap(folder: Path) -> bytes:
    return _watch_capture().write(folder / "seed.pcap").read_bytes()


# A value in JSON or YAML text (after ``key: ``, ``[`` or ``, ``): replaced whole, so the
# file still parses and the hostile value reaches the readers behind the parser.
VALUE = re.compile(rb"(?:(?<=: )|(?<=\[)|(?<=, ))[^,\n{}\[\]]+")


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random edits: a flipped byte, a cut, a splice of the input into itself,
    a repeated or deleted span, or a hostile value put in place of a span or of a value."""
    for _ in range(rng.randint(1, 3)):
        if not data:
            return rng.choice(HOSTILE)
        i = rng.randrange(len(data))
        j = min(len(data), i + rng.randint(1, 16))
        values = list(VALUE.finditer(data))
        edit = rng.choice(("flip", "cut", "splice", "repeat", "delete", "hostile", "value",
                           "value", "value"))
        if edit == "value" and values:
            value = rng.choice(values)
            data = data[:value.start()] + rng.choice(HOSTILE) + data[value.end():]
        elif edit == "flip":
            data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
        elif edit == "cut":
            data = data[:i]
        elif edit == "splice":
            k = rng.randrange(len(data))
            data = data[:i] + data[k:k + rng.randint(1, 64)] + data[i:]
        elif edit == "repeat":
            data = data[:j] + data[i:j] * rng.randint(2, 50) + data[j:]
        elif edit == "delete":
            data = data[:i] + data[j:]
        else:
            data = data[:i] + rng.choice(HOSTILE) + data[j:]
    return data


# kind -> (the file mutated, its seed bytes, where it goes in the command)
Seed = Callable[[Path], bytes]
KINDS: dict[str, tuple[str, Seed]] = {
    "profile": ("profile.yaml", lambda folder: PROFILE.encode()),
    "consent plan": ("consent.yaml", lambda folder: PLAN.encode()),
    "har": ("input.har", lambda folder: _har()),
    "mitm": ("input.mitm", _mitm),
    "pcap": ("input.pcap", _pcap),
}


def _command(kind: str, folder: Path, out: Path) -> list[str]:
    """analyze with the good files, the mutated one in its place."""
    capture = {"har": "input.har", "pcap": "input.pcap"}.get(kind, "input.mitm")
    return ["analyze", str(folder / capture), "--profile", str(folder / "profile.yaml"),
            "--consent", str(folder / "consent.yaml"), "--out", str(out)]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    return {name: make(folder) for name, make in KINDS.values()}


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_seed_inputs_are_analysed(tmp_path, monkeypatch, capsys, seeds, kind) -> None:
    """The unmutated inputs: exit 0, so the mutations start from something that works."""
    for name, data in seeds.items():
        (tmp_path / name).write_bytes(data)
    code, err = run_main(_command(kind, tmp_path, tmp_path / "out"), monkeypatch, capsys)
    notes = [line for line in err.splitlines() if not line.startswith("kidaudit: note: ")]
    assert (code, notes) == (0, []) and (tmp_path / "out" / "findings.json").is_file()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", list(KINDS))
def test_mutated_inputs_get_exit_0_or_2_and_never_a_traceback(tmp_path, monkeypatch, capsys,
                                                              seeds, kind) -> None:
    name, _ = KINDS[kind]
    for other, data in seeds.items():
        (tmp_path / other).write_bytes(data)
    outcomes = []
    for seed in range(CASES):
        rng = random.Random(f"{kind}-{seed}")
        mutated = mutate(seeds[name], rng)
        (tmp_path / name).write_bytes(mutated)
        code, err = run_main(_command(kind, tmp_path, tmp_path / f"out{seed}"),
                             monkeypatch, capsys)
        where = f"{kind} seed {seed}: {mutated[:200]!r}"
        assert code in (0, 2), f"{where}\n{err}"
        assert "Traceback" not in err, f"{where}\n{err}"
        if code == 2:  # the user's input: one line, naming the file
            assert err.count("\n") == 1 and err.startswith("kidaudit: "), f"{where}\n{err}"
        outcomes.append(code)
    assert len(outcomes) == CASES and 0 in outcomes  # some got past the parsers, analysed
