"""Peak memory of ``kidaudit analyze`` on a large capture (issue #7: <= 500 MB on 1 GB,
streamed, never loaded whole).

A capture of the requested size is written with mitmproxy's own ``FlowWriter``: mostly
small JSON check-ins with identifiers, and every tenth flow a voice-clip upload of
``UPLOAD_BYTES`` (what watches send), so the file is large without being millions of
flows. ``kidaudit analyze`` then runs in a child process and its peak resident set size
is read from the kernel (``os.wait4`` rusage of that child, ``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mitmproxy import http, io
from mitmproxy.test import tflow

IMEI = "864536040123455"
PROFILE = f"""device: {{name: "bench watch"}}
identifiers: {{imei: "{IMEI}", phone: "+8613800138000"}}
location: {{lat: 39.98312, lon: 116.30791}}
first_party: [acme-watch.example]
jurisdiction: CN
"""
TARGET_MB = 500
UPLOAD_BYTES = 512 * 1024
T0 = 1_790_000_000.0


def write_capture(path: Path, size_bytes: int) -> int:
    """Flows until the file reaches ``size_bytes``; returns how many were written."""
    template = tflow.tflow(resp=True)
    clip = os.urandom(UPLOAD_BYTES)
    n = 0
    with open(path, "wb") as fh:
        writer = io.FlowWriter(fh)
        while fh.tell() < size_bytes:
            f = template.copy()
            if n % 10 == 9:
                f.request = http.Request.make(
                    "POST", f"https://media.acme-watch.example/voice/{n}?imei={IMEI}", clip,
                    {"content-type": "audio/amr"})
            else:
                body = json.dumps({"imei": IMEI, "seq": n, "lat": "39.98312",
                                   "lon": "116.30791", "battery": 80}).encode()
                host = "api.acme-watch.example" if n % 3 else "log.tracker.example"
                f.request = http.Request.make("POST", f"https://{host}/v1/report", body,
                                              {"content-type": "application/json"})
            f.request.timestamp_start = f.request.timestamp_end = T0 + n
            writer.add(f)
            n += 1
    return n


def measure(capture: Path, work: Path) -> dict:
    """Run ``kidaudit analyze`` as a child; its exit status, wall time and peak RSS."""
    profile = work / "p.yaml"
    profile.write_text(PROFILE)
    kidaudit = Path(sys.executable).with_name("kidaudit")
    argv = [str(kidaudit), "analyze", str(capture), "--profile", str(profile),
            "--out", str(work / "out")]
    t0 = time.perf_counter()
    with open(work / "analyze.log", "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit_code": proc.returncode, "wall_s": round(wall, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
            "log_tail": (work / "analyze.log").read_text()[-500:]}


def run(size_mb: int = 200) -> dict:
    with tempfile.TemporaryDirectory(prefix="kidaudit-bench-mem-") as tmp:
        work = Path(tmp)
        capture = work / "big.mitm"
        t0 = time.perf_counter()
        flows = write_capture(capture, size_mb * 1024 * 1024)
        gen_s = time.perf_counter() - t0
        actual_mb = capture.stat().st_size / (1024 * 1024)
        m = measure(capture, work)
    ok = m["exit_code"] == 0
    # A streamed analysis holds a bounded window: its peak should not grow with the capture.
    return {
        "title": "Peak memory of kidaudit analyze",
        "capture_mb": round(actual_mb, 1), "flows": flows,
        "generate_s": round(gen_s, 1), "analyze_exit_code": m["exit_code"],
        "analyze_wall_s": m["wall_s"],
        "analyze_mb_per_s": round(actual_mb / m["wall_s"], 1) if m["wall_s"] else 0,
        "peak_rss_mb": m["peak_rss_mb"],
        "peak_rss_over_capture": round(m["peak_rss_mb"] / actual_mb, 2),
        "target": f"<= {TARGET_MB} MB on a 1 GB capture",
        "target_met": (ok and m["peak_rss_mb"] <= TARGET_MB) if size_mb >= 1024 else (
            f"not measured at 1 GB (ran {size_mb} MB; use --gb); "
            f"{'within' if ok and m['peak_rss_mb'] <= TARGET_MB else 'over'} "
            f"{TARGET_MB} MB at this size"),
        "notes": [f"every 10th flow is a {UPLOAD_BYTES // 1024} KB audio upload, the rest "
                  "small JSON check-ins with an IMEI and coordinates"]
                 + ([] if ok else [f"analyze failed: {m['log_tail']}"]),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=200)
    print(json.dumps(run(parser.parse_args().size_mb), indent=2))
