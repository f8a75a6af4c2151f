"""Offline speed of ``kidaudit analyze`` against mitmproxy's own reader (issue 16 item 2).

A mixed capture is written with mitmproxy's ``FlowWriter``: HTTPS watch check-ins as JSON,
gzip-compressed JSON batches to a tracker SDK, form posts, GETs with identifiers in the
query, a few voice uploads (small AMR bodies) and two raw-TCP watch connections of
``[3G*...]`` frames; the IMEI, the coordinates, the sequence number and the times change in
every flow, so no cache sees the same message twice. Then, in one run, side by side:

- mitmproxy's ``FlowReader`` streaming the file (``io.FlowReader(fh).stream()``), in this
  process: the floor any reader of the file pays;
- ``kidaudit analyze --jobs 1`` and ``--jobs 2`` as child processes (wall time, process start
  and the reports included).

Targets: ``--jobs 1`` takes at most 2.0x the FlowReader time; ``--jobs 2`` is at least 1.6x
faster than ``--jobs 1`` (on a 2-core machine). Both runs' outputs are compared, too.

    python -m bench.analyze_speed [--flows N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mitmproxy import http, io, tcp
from mitmproxy.test import tflow

IMEI = "864536040123455"
PHONE = "+8613800138000"
LAT, LON = 39.98312, 116.30791
PROFILE = f"""device: {{name: "bench watch", kind: smartwatch}}
identifiers: {{imei: "{IMEI}", phone: "{PHONE}"}}
child: {{name: "Li Xiaoming"}}
location: {{lat: {LAT}, lon: {LON}}}
first_party: [acme-watch.example, 127.0.0.2]
jurisdiction: CN
"""
T0 = 1_790_000_000.0
RATIO_TARGET, SPEEDUP_TARGET = 2.0, 1.6
OUTPUTS = ("findings.json", "detections.csv", "report.html")


def _luhn(digits: str) -> str:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (1 if i % 2 else 2)
        total += d - 9 if d > 9 else d
    return digits + str((10 - total % 10) % 10)


def _imei(n: int) -> str:
    """The profile's IMEI most of the time, another valid one now and then: values change."""
    return IMEI if n % 7 else _luhn(f"86453604{n % 10_000_000:07d}")


def _http(template: http.HTTPFlow, n: int, ts: float, rng: random.Random) -> http.HTTPFlow:
    f = template.copy()
    imei, seq = _imei(n), n
    lat, lon = LAT + rng.uniform(-0.002, 0.002), LON + rng.uniform(-0.002, 0.002)
    kind = n % 20
    if kind < 8:  # the watch's check-in
        body = json.dumps({"imei": imei, "seq": seq, "ts": int(ts * 1000),
                           "lat": f"{lat:.5f}", "lon": f"{lon:.5f}", "battery": 80 - n % 50,
                           "steps": n * 3, "wifi": [{"bssid": "3c:5a:b4:01:02:03",
                                                     "rssi": -40 - n % 30}]}).encode()
        f.request = http.Request.make("POST", "https://api.acme-watch.example/v2/checkin",
                                      body, {"content-type": "application/json"})
    elif kind < 12:  # the SDK's gzip batch
        events = [{"device_id": imei, "event": "screen_view", "seq": seq * 10 + i,
                   "ts": int(ts * 1000) + i, "geo": {"lat": round(lat, 4),
                                                     "lon": round(lon, 4)}}
                  for i in range(5)]
        body = gzip.compress(json.dumps({"batch": events, "sdk": "3.2.1"}).encode(), 6)
        f.request = http.Request.make(
            "POST", "https://log.tracker.example/v1/batch", body,
            {"content-type": "application/json", "content-encoding": "gzip"})
    elif kind < 15:  # a form post from the parent app
        body = (f"phone={PHONE.replace('+', '%2B')}&name=Li+Xiaoming&imei={imei}"
                f"&seq={seq}&t={int(ts)}").encode()
        f.request = http.Request.make(
            "POST", "https://app.acme-watch.example/user/update", body,
            {"content-type": "application/x-www-form-urlencoded"})
    elif kind < 19 or n % 200 != 19:  # a GET with identifiers in the query
        f.request = http.Request.make(
            "GET", f"https://maps.pinmap.example/geo?imei={imei}&lat={lat:.6f}"
                   f"&lng={lon:.6f}&seq={seq}&t={int(ts)}", b"")
    else:  # a voice clip now and then
        clip = b"#!AMR\n" + rng.randbytes(6000)
        f.request = http.Request.make(
            "POST", f"https://media.acme-watch.example/voice/{seq}?imei={imei}", clip,
            {"content-type": "audio/amr"})
    f.request.timestamp_start = ts
    f.request.timestamp_end = ts + 0.01
    f.response.timestamp_start = ts + 0.05
    f.response.timestamp_end = ts + 0.06
    return f


def _watch_frame(watch_id: str, content: str) -> bytes:
    body = content.encode()
    return b"[3G*%s*%04X*%s]" % (watch_id.encode(), len(body), body)


def _tcp(n: int, ts: float, rng: random.Random, messages: int) -> tcp.TCPFlow:
    """A cellular watch's connection to its maker's server by IP: position reports."""
    f = tflow.ttcpflow()
    f.messages = []
    f.server_conn.address = f.server_conn.peername = ("127.0.0.2", 8001)
    f.server_conn.sni = None
    f.client_conn.timestamp_tls_setup = None
    f.timestamp_created = ts
    watch_id = IMEI[-10:]
    for i in range(messages):
        lat, lon = LAT + rng.uniform(-0.002, 0.002), LON + rng.uniform(-0.002, 0.002)
        frame = _watch_frame(watch_id, f"UD,281126,{i % 240000:06d},A,{lat:.6f},N,{lon:.6f},"
                                       f"E,0.00,0.0,52.0,7,100,{86 - i % 50},{n + i},0,"
                                       "00000000,0")
        f.messages.append(tcp.TCPMessage(True, frame, ts + i * 0.5))
        f.messages.append(tcp.TCPMessage(False, b"[3G*%s*0002*LK]" % watch_id.encode(),
                                         ts + i * 0.5 + 0.1))
    return f


def write_capture(path: Path, flows: int, seed: int = 16) -> dict[str, int]:
    """``flows`` flows, in the order a proxy writes them (response order: now and then a
    slow response puts a flow after the next one)."""
    rng = random.Random(seed)
    template = tflow.tflow(resp=True)
    counts = {"http": 0, "tcp": 0, "tcp_messages": 0}
    tcp_at = {flows // 3, 2 * flows // 3}
    pending: http.HTTPFlow | None = None
    with open(path, "wb") as fh:
        writer = io.FlowWriter(fh)
        for n in range(flows):
            ts = T0 + n * 0.2
            if n in tcp_at:
                f = _tcp(n, ts, rng, 100)
                counts["tcp"] += 1
                counts["tcp_messages"] += len(f.messages)
                writer.add(f)
                continue
            f = _http(template, n, ts, rng)
            counts["http"] += 1
            if n % 50 == 0:  # a slow response: written after the next flow
                pending = f
                continue
            writer.add(f)
            if pending is not None:
                writer.add(pending)
                pending = None
        if pending is not None:
            writer.add(pending)
    return counts


def time_flowreader(path: Path) -> tuple[float, int, float]:
    """Wall time, flows, and CPU time (this process's: the reading alone)."""
    t0, c0 = time.perf_counter(), time.process_time()
    with open(path, "rb") as fh:
        count = sum(1 for _ in io.FlowReader(fh).stream())
    return time.perf_counter() - t0, count, time.process_time() - c0


def _children_cpu() -> float:
    """CPU time (user + system) of the child processes waited for so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def time_analyze(capture: Path, profile: Path, out: Path, jobs: int) -> dict:
    kidaudit = Path(sys.executable).with_name("kidaudit")
    argv = [str(kidaudit), "analyze", str(capture), "--profile", str(profile),
            "--out", str(out), "--jobs", str(jobs)]
    t0, c0 = time.perf_counter(), _children_cpu()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    wall = time.perf_counter() - t0
    # The analyze process's own CPU time (its --jobs workers are the forkserver's children,
    # not counted): on a busy machine, a ratio of CPU times still means something.
    return {"exit_code": proc.returncode, "wall_s": wall, "cpu_s": _children_cpu() - c0,
            "log_tail": (proc.stdout + proc.stderr)[-400:]}


def time_report(session: Path, out: Path) -> float:
    """``kidaudit report SESSION --out OUT``: the reports alone, written from the store, the
    part of an ``analyze`` run that is neither reading nor analysing."""
    kidaudit = Path(sys.executable).with_name("kidaudit")
    t0 = time.perf_counter()
    subprocess.run([str(kidaudit), "report", str(session), "--out", str(out)],
                   capture_output=True, check=False, timeout=3600)
    return time.perf_counter() - t0


def _same_outputs(a: Path, b: Path) -> bool:
    """The same bytes, each session's random id aside."""
    def read(folder: Path, name: str) -> bytes:
        sid = json.loads((folder / "findings.json").read_text())["session"]["id"]
        return (folder / name).read_bytes().replace(sid.encode(), b"ID")

    return all(read(a, name) == read(b, name) for name in OUTPUTS)


def run(flows: int = 20000) -> dict:
    with tempfile.TemporaryDirectory(prefix="kidaudit-bench-speed-") as tmp:
        work = Path(tmp)
        capture, profile = work / "mixed.mitm", work / "profile.yaml"
        profile.write_text(PROFILE)
        t0 = time.perf_counter()
        counts = write_capture(capture, flows)
        gen_s = time.perf_counter() - t0
        reader_s, read, reader_cpu = time_flowreader(capture)
        one = time_analyze(capture, profile, work / "jobs1", 1)
        two = time_analyze(capture, profile, work / "jobs2", 2)
        ok = one["exit_code"] == 0 and two["exit_code"] == 0
        same = ok and _same_outputs(work / "jobs1", work / "jobs2")
        report_s = time_report(work / "jobs1", work / "report") if ok else 0.0
        size_mb = capture.stat().st_size / (1024 * 1024)
    ratio = one["wall_s"] / reader_s if reader_s else 0.0
    speedup = one["wall_s"] / two["wall_s"] if two["wall_s"] else 0.0
    notes = [f"capture: {counts['http']} HTTP flows (40 % JSON check-ins, 20 % gzip SDK "
             "batches, 15 % form posts, the rest GETs with identifiers and 1 in 200 a 6 KB "
             f"AMR upload) and {counts['tcp']} raw-TCP watch connections of "
             f"{counts['tcp_messages']} messages; IMEI, coordinates, sequence and times "
             "change every flow; every 50th flow is written after its successor",
             "FlowReader runs in this process; analyze runs as `kidaudit analyze` child "
             "processes, so its times include the interpreter's start and writing the "
             "reports", "report_only_s: `kidaudit report` of the jobs-1 session into another "
             "folder, the reports alone (serial in both runs)",
             f"cores: {os.cpu_count()}; load average at the end (1 min): {os.getloadavg()[0]:.2f}"]
    for name, res in (("jobs 1", one), ("jobs 2", two)):
        if res["exit_code"] != 0:
            notes.append(f"analyze {name} failed: {res['log_tail']}")
    return {
        "title": "Offline speed of kidaudit analyze",
        "flows": read, "capture_mb": round(size_mb, 1), "generate_s": round(gen_s, 1),
        "flowreader_s": round(reader_s, 2),
        "flowreader_cpu_s": round(reader_cpu, 2),
        "analyze_jobs1_s": round(one["wall_s"], 2),
        "analyze_jobs1_cpu_s": round(one["cpu_s"], 2),
        "jobs1_cpu_over_flowreader_cpu": round(one["cpu_s"] / reader_cpu, 2)
        if reader_cpu else 0.0,
        "analyze_jobs2_s": round(two["wall_s"], 2),
        "report_only_s": round(report_s, 2),
        "jobs1_flows_per_s": round(read / one["wall_s"]) if one["wall_s"] else 0,
        "jobs1_over_flowreader": round(ratio, 2),
        "jobs1_over_flowreader_target": f"<= {RATIO_TARGET}",
        "jobs1_over_flowreader_met": ok and ratio <= RATIO_TARGET,
        "jobs2_speedup": round(speedup, 2),
        "jobs2_speedup_target": f">= {SPEEDUP_TARGET}",
        "jobs2_speedup_met": ok and speedup >= SPEEDUP_TARGET,
        "jobs2_output_identical": same,
        "notes": notes,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.analyze_speed")
    parser.add_argument("--flows", type=int, default=20000)
    print(json.dumps(run(parser.parse_args().flows), indent=2))
