"""Hostile input through the real proxy (issue #7): bombs, huge and broken bodies, endless
nesting. Every flow must reach its server and its client unchanged, the addon must keep
analysing, and each problem must show up under coverage (an analysis error or an opaque
payload) instead of a traceback.

One in-process mitmproxy (DumpMaster) with the addon sits in front of an echo server that
hashes every body it receives; the corpus is generated here, sent once per module, and
each case is checked by its own parametrized test. After every hostile request a normal
one (a "canary" carrying the IMEI) proves the addon is still analysing.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
import hashlib
import http.client
import json
import logging
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import brotli
import pytest
import zstandard
from mitmproxy.options import Options
from mitmproxy.tools.dump import DumpMaster

from auditor.demo.run import listening_port
from auditor.live.addon import KidAudit
from tests.factories import IMEI

pytestmark = [pytest.mark.timeout(300), pytest.mark.e2e]

PROFILE = f'device: {{name: "hostile"}}\nidentifiers: {{imei: "{IMEI}"}}\n'
MB = 1 << 20
BOMB_SIZE = 128 * MB  # decompressed size of each bomb; compressed it is at most ~130 KB
BIG_BODY = 100 * MB
CHUNK = MB


# -- the corpus ------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One hostile request. ``expect``: ``problem`` = coverage must show an analysis error
    or an opaque payload for it; ``detect`` = the IMEI inside must still be found;
    ``any`` = only that nothing broke."""

    name: str
    content_type: str
    body: Callable[[], Iterable[bytes]]  # produced lazily: the 100 MB body is never whole
    expect: str
    headers: tuple[tuple[str, str], ...] = ()
    chunked: bool = False


def _compress_stream(compressor_factory: Callable[[], object], size: int) -> bytes:
    c = compressor_factory()
    zeros = bytes(CHUNK)
    parts = [c.compress(zeros) for _ in range(size // CHUNK)]  # type: ignore[attr-defined]
    parts.append(c.flush())  # type: ignore[attr-defined]
    return b"".join(parts)


@functools.cache
def gzip_bomb() -> bytes:
    return _compress_stream(lambda: zlib.compressobj(9, zlib.DEFLATED, 31), BOMB_SIZE)


@functools.cache
def brotli_bomb() -> bytes:
    c = brotli.Compressor(quality=5)
    zeros = bytes(CHUNK)
    return b"".join([c.process(zeros) for _ in range(BOMB_SIZE // CHUNK)] + [c.finish()])


@functools.cache
def zstd_bomb() -> bytes:
    return _compress_stream(lambda: zstandard.ZstdCompressor(level=3).compressobj(), BOMB_SIZE)


def _imei_json() -> bytes:
    return json.dumps({"imei": IMEI, "note": os.urandom(20_000).hex()}).encode()


def _cut_in_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _sized(total: int, pattern: bytes) -> Iterator[bytes]:
    block = (pattern * (CHUNK // len(pattern) + 1))[:CHUNK]
    sent = 0
    while sent < total:
        piece = block[: min(CHUNK, total - sent)]
        sent += len(piece)
        yield piece


def _base64_forever(levels: int = 30) -> bytes:
    value = f"imei={IMEI}".encode()
    for _ in range(levels):
        value = base64.b64encode(value)
    return json.dumps({"d": value.decode()}).encode()


def _protobuf_huge_length() -> bytes:
    # field 1, wire type 2 (length-delimited), length varint 2**63 - 1, then 16 bytes
    huge = bytes([0xFF] * 8 + [0x7F])
    return b"\x0a" + huge + b"\x12\x0f" + IMEI.encode() + b"\x1a" + bytes([0xFF] * 9 + [0x01])


def _watch_frame_without_end() -> Iterator[bytes]:
    yield f"[3G*{IMEI}*FFFF*UD,".encode()
    yield from _sized(8 * MB, b"281126,101500,A,39.98312,N,116.30791,E,0.00,0,0,9,100,")


def _cbor_shared_bomb(levels: int = 40) -> bytes:
    """260 bytes that cbor2 decodes into a DAG of 2**40 null leaves: each level a shared
    (tag 28) array of the next level and a reference (tag 29) to it (RFC 8949, IANA tags)."""
    item = b"\xd8\x1c\xf6"
    for i in reversed(range(levels)):
        index = bytes([i + 1]) if i + 1 < 24 else bytes([0x18, i + 1])
        item = b"\xd8\x1c\x82" + item + b"\xd8\x1d" + index
    return item


def _json_long_key(leaves: int = 1500) -> bytes:
    """A 1 MB key over ``leaves`` leaves, one of them the IMEI: every leaf's path repeats
    the key."""
    return json.dumps({"k" * MB: [IMEI] + [str(i) for i in range(leaves - 1)]}).encode()


def _multipart_malformed() -> bytes:
    return (b"--XYZ\r\nContent-Disposition: form-data; name=\"imei\"\r\n\r\n" + IMEI.encode()
            + b"\r\n--XYZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\r\n"
            + os.urandom(4096) + b"\r\n--XY")  # no closing boundary, a broken header


CASES = [
    Case("gzip_bomb", "application/json", lambda: [gzip_bomb()], "problem",
         (("content-encoding", "gzip"),)),
    Case("brotli_bomb", "application/json", lambda: [brotli_bomb()], "problem",
         (("content-encoding", "br"),)),
    Case("zstd_bomb", "application/json", lambda: [zstd_bomb()], "problem",
         (("content-encoding", "zstd"),)),
    Case("body_100mb", "application/octet-stream", lambda: _sized(BIG_BODY, b"\x00\x01kid"),
         "problem"),
    Case("gzip_truncated", "application/json",
         lambda: [_cut_in_half(gzip.compress(_imei_json()))], "problem",
         (("content-encoding", "gzip"),)),
    Case("gzip_corrupt", "application/json",
         lambda: [gzip.compress(_imei_json())[:10] + os.urandom(2000)], "problem",
         (("content-encoding", "gzip"),)),
    Case("invalid_utf8", "application/json",
         lambda: [b'{"imei": "' + IMEI.encode() + b'", "n": "\xff\xfe\xc3\x28\xed\xa0\x80"}'],
         "detect"),
    Case("json_10000_deep", "application/json",
         lambda: [b"[" * 10_000 + b'"' + IMEI.encode() + b'"' + b"]" * 10_000], "problem"),
    Case("form_million_keys", "application/x-www-form-urlencoded",
         lambda: [b"&".join(b"k%d=v" % i for i in range(1_000_000))], "problem"),
    Case("binary_as_json", "application/json", lambda: [os.urandom(256 * 1024)], "problem"),
    Case("huge_headers", "application/json", lambda: [b'{"a": 1}'], "detect",
         tuple((f"x-pad-{i}", "p" * 16_000) for i in range(60)) + (("x-device-id", IMEI),)),
    Case("multipart_malformed", "multipart/form-data; boundary=XYZ",
         lambda: [_multipart_malformed()], "any"),
    Case("protobuf_huge_length", "application/x-protobuf", lambda: [_protobuf_huge_length()],
         "problem"),
    Case("base64_forever", "application/json", lambda: [_base64_forever()], "problem"),
    Case("watch_frame_without_end", "text/plain", _watch_frame_without_end, "problem",
         chunked=True),
    Case("cbor_shared_bomb", "application/cbor", lambda: [_cbor_shared_bomb()], "problem"),
    Case("json_1mb_key", "application/json", lambda: [_json_long_key()], "detect"),
    Case("json_fan_out", "application/json", lambda: [b"[" + b"[]," * 1_300_000 + b"[]]"],
         "problem"),
]


# -- the echo server -------------------------------------------------------------------
class _Echo(BaseHTTPRequestHandler):
    """Hashes the body exactly as it arrived; answers with a body derived from that hash."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    received: dict[str, tuple[str, int]] = {}

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        h, n = hashlib.sha256(), 0
        for piece in self._body():
            h.update(piece)
            n += len(piece)
        digest = h.hexdigest()
        self.received[self.path] = (digest, n)
        body = response_body(digest)
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        left = int(self.headers.get("content-length") or 0)
        while left:
            piece = self.rfile.read(min(CHUNK, left))
            if not piece:
                return
            left -= len(piece)
            yield piece

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


def response_body(digest: str) -> bytes:
    """What the server answers: binary, 64 KB, a function of the request body's hash."""
    seed = bytes.fromhex(digest)
    return b"".join(hashlib.sha256(seed + bytes([i, j])).digest()
                    for i in range(8) for j in range(256))


# -- the client ------------------------------------------------------------------------
@dataclass
class Sent:
    sha256: str = ""
    length: int = 0
    status: int = 0
    response_ok: bool = False
    error: str = ""


def _send(port: int, target: tuple[str, int], path: str, case: Case) -> Sent:
    h, n = hashlib.sha256(), 0

    def counted() -> Iterator[bytes]:
        nonlocal n
        for piece in case.body():
            h.update(piece)
            n += len(piece)
            yield piece

    sent = Sent()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {"content-type": case.content_type, **dict(case.headers)}
        url = f"http://{target[0]}:{target[1]}{path}"
        if case.chunked:
            conn.request("POST", url, counted(), headers, encode_chunked=True)
        else:
            body = b"".join(case.body()) if case.name != "body_100mb" else None
            if body is not None:
                h.update(body)
                n = len(body)
                conn.request("POST", url, body, headers)
            else:
                headers["content-length"] = str(BIG_BODY)
                conn.request("POST", url, counted(), headers)
        resp = conn.getresponse()
        got = resp.read()
        sent.status = resp.status
        sent.sha256, sent.length = h.hexdigest(), n
        sent.response_ok = got == response_body(sent.sha256)
    except (OSError, http.client.HTTPException) as e:
        sent.error = f"{type(e).__name__}: {e}"
    finally:
        conn.close()
    return sent


def _canary(port: int, target: tuple[str, int], name: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", f"http://{target[0]}:{target[1]}/canary/{name}",
                     json.dumps({"imei": IMEI}).encode(), {"content-type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


# -- one proxy session for the whole corpus --------------------------------------------
class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Run:
    sent: dict[str, Sent] = field(default_factory=dict)
    canary: dict[str, int] = field(default_factory=dict)
    received: dict[str, tuple[str, int]] = field(default_factory=dict)
    doc: dict = field(default_factory=dict)
    logs: list[logging.LogRecord] = field(default_factory=list)
    peak_mb: dict[str, float | None] = field(default_factory=dict)  # None: not measurable


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> int | None:
    """Reset this process's peak RSS (Linux >= 4.0: ``clear_refs`` 5) and return the peak in
    KB just after; None where the kernel does not offer it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _status_kb("VmHWM")


def _grown_mb(before: int | None) -> float | None:
    """MB the peak RSS rose since ``before``. The kernel records the peak lazily (when memory
    is unmapped), so a case that frees memory can read a page *under* the baseline (CI once
    saw -4 KB); that is no growth, not a failed measurement."""
    if before is None:
        return None
    return max(0, _status_kb("VmHWM") - before) / 1024


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("hostile")
    (tmp / "p.yaml").write_text(PROFILE)
    session = tmp / "session"
    result = Run()
    _Echo.received = result.received
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    records = _Records()
    logging.getLogger().addHandler(records)

    def drive(port: int) -> None:
        target = server.server_address[:2]
        for case in CASES:
            before = _reset_peak()
            result.sent[case.name] = _send(port, target, f"/hostile/{case.name}", case)
            result.peak_mb[case.name] = _grown_mb(before)
            result.canary[case.name] = _canary(port, target, case.name)

    async def main() -> None:
        opts = Options(listen_host="127.0.0.1", listen_port=0, confdir=str(tmp / "conf"))
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        master.addons.add(KidAudit())
        master.options.update(kidaudit_profile=str(tmp / "p.yaml"),
                              kidaudit_session=str(session))
        task = asyncio.create_task(master.run())
        try:
            port = await asyncio.wait_for(listening_port(master), timeout=15)
            await asyncio.wait_for(asyncio.to_thread(drive, port), timeout=240)
        finally:
            master.shutdown()
            await asyncio.wait_for(task, timeout=60)

    try:
        asyncio.run(main())
    finally:
        logging.getLogger().removeHandler(records)
        server.shutdown()
        server.server_close()
    result.logs = records.records
    result.doc = json.loads((session / "findings.json").read_text())
    return result


def _tx_ids(doc: dict) -> dict[str, int]:
    return {t["url"].split("127.0.0.1", 1)[-1].split("/", 1)[-1]: t["id"]
            for t in doc["transmissions"]}


def _problems(doc: dict) -> set[int]:
    cov = doc["coverage"]
    return ({e["transmission"] for e in cov.get("errors", [])}
            | {o["transmission"] for o in cov.get("opaque", [])})


NAMES = [c.name for c in CASES]
BY_NAME = {c.name: c for c in CASES}


@pytest.mark.parametrize("name", NAMES)
def test_flow_reaches_server_and_client_unchanged(run: Run, name: str) -> None:
    sent = run.sent[name]
    assert not sent.error and sent.status == 200, sent
    assert run.received[f"/hostile/{name}"] == (sent.sha256, sent.length)  # server side
    assert sent.response_ok  # client side: the server's answer, byte for byte


@pytest.mark.parametrize("name", NAMES)
def test_addon_keeps_analysing_after_it(run: Run, name: str) -> None:
    assert run.canary[name] == 200
    canary = _tx_ids(run.doc)[f"canary/{name}"]
    found = {(d["transmission"], d["category"]) for d in run.doc["detections"]}
    assert (canary, "identifier.imei") in found


@pytest.mark.parametrize("name", NAMES)
def test_problem_shows_under_coverage(run: Run, name: str) -> None:
    case = BY_NAME[name]
    hostile = _tx_ids(run.doc)[f"canary/{name}"] - 1  # sent just before its canary
    if case.expect == "problem":
        assert hostile in _problems(run.doc), (name, run.doc["coverage"])
    elif case.expect == "detect":
        found = {(d["transmission"], d["category"]) for d in run.doc["detections"]}
        assert (hostile, "identifier.imei") in found


BOMB_BUDGET_MB = 64  # a bomb may cost its bounded read window, never its decompressed size


@pytest.mark.parametrize("name", ["gzip_bomb", "brotli_bomb", "zstd_bomb"])
def test_bomb_is_never_decompressed_whole(run: Run, name: str) -> None:
    grown = run.peak_mb[name]
    assert grown is not None, "no /proc/self/clear_refs here to measure peak memory"
    assert grown < BOMB_BUDGET_MB, (
        f"{name}: proxy process peak grew by {grown:.0f} MB for a "
        f"{BOMB_SIZE // MB} MB bomb")


def test_no_traceback_anywhere(run: Run) -> None:
    for r in run.logs:
        text = r.getMessage()
        assert r.exc_info is None and "Traceback" not in text, text
        assert "Addon error" not in text, text
    for e in run.doc["coverage"].get("errors", []):
        assert "Traceback" not in e["message"]


# -- one message through the pipeline, in a process of its own -------------------------
ROOT = Path(__file__).resolve().parent.parent
PEAK_MB = 400  # one message's analysis may grow a process by at most this much
OBSERVE = """
from pathlib import Path
Path("/proc/self/clear_refs").write_text("5")  # peak RSS from here on: this process's own
from auditor.data import load_sdks
from auditor.pipeline import Pipeline
from tests.factories import profile, tx
from tests.test_hostile import {builder}
obs = Pipeline.for_profile(profile(), load_sdks()).observe(tx(
    body={builder}(), content_type="{ctype}",
    headers=(("Content-Type", "{ctype}"), ("X-Device-Id", "{imei}"))))
print(sorted({{(d.category, d.field[:40]) for d in obs.detections}}))
print(obs.opaque)
print([line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
       if line.startswith("VmHWM:")][0])
"""


def _observe_in_child(builder: str, ctype: str) -> tuple[list[str], float]:
    """``Pipeline.observe`` of one message in a fresh interpreter: the lines it printed,
    and its peak resident set in MB. The child reads its own peak (VmHWM, reset as it
    starts): a child's rusage would include this process's peak, which Linux hands
    over at exec, so a big test process would fail the bound for nothing."""
    proc = subprocess.run([sys.executable, "-c",
                           OBSERVE.format(builder=builder, ctype=ctype, imei=IMEI)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    return lines[-3:-1], int(lines[-1]) / 1024


@pytest.mark.parametrize(("builder", "ctype", "found", "reason"), [
    pytest.param("_json_long_key", "application/json", "('identifier.imei', 'body.json.kkkk",
                 None, id="1mb-key-over-1500-leaves"),
    pytest.param("_cbor_shared_bomb", "application/cbor",
                 "('identifier.imei', 'header.x-device-id')",
                 "CBOR document expands to more than", id="cbor-shared-2**40"),
])
def test_one_hostile_message_stays_within_its_memory_and_work(
        builder: str, ctype: str, found: str, reason: str | None) -> None:
    """Through the public pipeline: the message ends (bounded by its work budget), its
    peak memory stays under PEAK_MB (the 1 MB key once took 3 GB), the IMEI beside or
    inside the bomb is still found, and what was not read is listed with its reason."""
    (detections, opaque), peak_mb = _observe_in_child(builder, ctype)
    assert found in detections
    assert (reason in opaque) if reason else opaque == "()"
    assert peak_mb < PEAK_MB, f"{builder}: peak {peak_mb:.0f} MB"


# -- a request no rule or report may be stopped by (issue 13) ------------------------------
ODD_REQUESTS = (
    # (what it is, the raw request head; the proxy connects to the URL's address)
    ("bracket host", b"POST http://{server}/bracket?imei=" + IMEI.encode()
     + b" HTTP/1.1\r\nHost: [bad\r\nContent-Length: 0\r\n\r\n"),
    ("host not utf-8", b"POST http://{server}/h?imei=" + IMEI.encode()
     + b" HTTP/1.1\r\nHost: ho\xffst.example\r\nContent-Length: 0\r\n\r\n"),
    ("canary", b"POST http://{server}/canary?imei=" + IMEI.encode()
     + b" HTTP/1.1\r\nHost: {server}\r\nContent-Length: 0\r\n\r\n"),
)


def _raw_request(port: int, server: str, head: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(head.replace(b"{server}", server.encode()))
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = conn.recv(65536)
            if not piece:
                break
            answer += piece
    return answer.split(b"\r\n", 1)[0]


@pytest.fixture(scope="module")
def odd_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """A live capture (addon, worker) of the ODD_REQUESTS, ended as Ctrl-C ends one."""
    tmp = tmp_path_factory.mktemp("odd")
    (tmp / "p.yaml").write_text(PROFILE)
    _Echo.received = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    where = f"{host}:{port}"
    statuses: list[bytes] = []

    async def main() -> None:
        opts = Options(listen_host="127.0.0.1", listen_port=0, confdir=str(tmp / "conf"))
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        master.addons.add(KidAudit())
        master.options.update(kidaudit_profile=str(tmp / "p.yaml"),
                              kidaudit_session=str(tmp / "session"))
        task = asyncio.create_task(master.run())
        try:
            port = await asyncio.wait_for(listening_port(master), timeout=15)
            for _, head in ODD_REQUESTS:
                statuses.append(await asyncio.to_thread(_raw_request, port, where, head))
        finally:
            master.shutdown()
            await asyncio.wait_for(task, timeout=60)

    try:
        asyncio.run(main())
    finally:
        server.shutdown()
        server.server_close()
    return tmp / "session", statuses


def test_odd_requests_reach_their_server_and_every_report_is_written(odd_session) -> None:
    session, statuses = odd_session
    assert statuses == [b"HTTP/1.1 200 OK"] * len(ODD_REQUESTS)
    for name in ("findings.json", "report.html", "detections.csv"):
        assert (session / name).is_file(), name


def test_the_imei_of_each_odd_request_reaches_findings_json(odd_session) -> None:
    session, _ = odd_session
    doc = json.loads((session / "findings.json").read_text(encoding="utf-8"))
    hosts = {t["id"]: t["host"] for t in doc["transmissions"]}
    found = {hosts[d["transmission"]] for d in doc["detections"]
             if d["category"] == "identifier.imei"}
    assert {"[bad", "ho\\xffst.example"} <= found and len(found) == len(ODD_REQUESTS)
    assert [e for e in doc["coverage"]["errors"] if e["stage"].startswith("rule")] == []
