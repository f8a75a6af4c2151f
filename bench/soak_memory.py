"""Peak memory of ``kidaudit analyze`` on a soak: many small messages (issue 16 item 1: the
same bound, <= 250 MB, at 20,000 and at 500,000 messages).

``analyze_memory`` makes a file large with few flows; a 72-hour idle soak is the other
shape: hundreds of thousands of small check-ins, the coordinates changing in every one,
so every message holds values no other message holds. The capture is written with
mitmproxy's own ``FlowWriter``: check-ins with the IMEI and a jittering position to the
maker, a few to a tracker and a log host, and every 1,000th a small voice upload.
``kidaudit analyze`` then runs in a child process and its peak resident set size is read
from the kernel (``os.wait4`` rusage of that child, ``ru_maxrss``), as in
``analyze_memory``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from mitmproxy import http, io
from mitmproxy.test import tflow

from bench.analyze_memory import IMEI, T0, measure

TARGET_MB = 250
VOICE_EVERY, VOICE_BYTES = 1000, 8 * 1024
HOSTS = ("api.acme-watch.example", "api.acme-watch.example", "log.acme-watch.example",
         "alog.umeng.com")


def write_capture(path: Path, messages: int) -> None:
    """``messages`` flows, one a second from T0: values change in every one."""
    template = tflow.tflow(resp=True)
    clip = b"#!AMR\n" + bytes(range(256)) * (VOICE_BYTES // 256)
    with open(path, "wb") as fh:
        writer = io.FlowWriter(fh)
        for n in range(messages):
            f = template.copy()
            if n % VOICE_EVERY == VOICE_EVERY - 1:
                f.request = http.Request.make(
                    "POST", f"https://api.acme-watch.example/voice/{n}?imei={IMEI}", clip,
                    {"content-type": "audio/amr"})
            else:
                body = json.dumps({"imei": IMEI, "seq": n, "lat": f"{39.9 + n % 9973 / 1e5:.5f}",
                                   "lon": f"{116.3 + n % 9967 / 1e5:.5f}", "battery": n % 100}
                                  ).encode()
                f.request = http.Request.make("POST", f"https://{HOSTS[n % len(HOSTS)]}/v1/up",
                                              body, {"content-type": "application/json"})
            f.request.timestamp_start = f.request.timestamp_end = T0 + n
            writer.add(f)


def run(messages: int = 20_000) -> dict:
    with tempfile.TemporaryDirectory(prefix="kidaudit-bench-soak-") as tmp:
        work = Path(tmp)
        capture = work / "soak.mitm"
        t0 = time.perf_counter()
        write_capture(capture, messages)
        gen_s = time.perf_counter() - t0
        m = measure(capture, work)
    ok = m["exit_code"] == 0
    return {
        "title": "Peak memory of kidaudit analyze on many small messages",
        "messages": messages, "generate_s": round(gen_s, 1),
        "analyze_exit_code": m["exit_code"], "analyze_wall_s": m["wall_s"],
        "messages_per_s": round(messages / m["wall_s"]) if m["wall_s"] else 0,
        "peak_rss_mb": m["peak_rss_mb"],
        "target": f"<= {TARGET_MB} MB, the same at 20,000 and 500,000 messages",
        "target_met": ok and m["peak_rss_mb"] <= TARGET_MB,
        "notes": [f"check-ins with the IMEI and a position changing every message to "
                  f"{len(set(HOSTS))} hosts (one a tracker), every {VOICE_EVERY}th a "
                  f"{VOICE_BYTES // 1024} KB voice upload"]
                 + ([] if ok else [f"analyze failed: {m['log_tail']}"]),
    }


def compare(small: int = 20_000, large: int = 500_000) -> dict:
    """Both soaks, one after the other: the bound is met when both peaks are within it
    (memory that follows the number of messages would not be)."""
    runs = [run(small), run(large)]
    peaks = [r["peak_rss_mb"] for r in runs]
    return {
        "title": "Peak memory of kidaudit analyze, a short and a long soak",
        "messages": [small, large], "peak_rss_mb": peaks,
        "analyze_wall_s": [r["analyze_wall_s"] for r in runs],
        "messages_per_s": [r["messages_per_s"] for r in runs],
        "large_over_small": round(peaks[1] / peaks[0], 2) if peaks[0] else 0,
        "target": runs[0]["target"],
        "target_met": all(r["target_met"] for r in runs),
        "notes": runs[0]["notes"] + [n for r in runs for n in r["notes"][1:]],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--compare", type=int, metavar="LARGE", default=0,
                        help="run --messages and then LARGE messages, and compare")
    args = parser.parse_args()
    print(json.dumps(compare(args.messages, args.compare) if args.compare
                     else run(args.messages), indent=2))
