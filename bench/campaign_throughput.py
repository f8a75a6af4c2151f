"""Campaign throughput (issue 16 item 4): ``kidaudit campaign``'s runs per minute on a
LocalCluster of 1 worker and of 2 workers, and the ratio.

A campaign of ``runs`` runs (four firmwares x two scenarios of one watch), each a capture of
``flows`` small messages written with mitmproxy's own ``FlowWriter``: check-ins to the maker
with the IMEI and a position that changes every flow, and every third flow an SDK batch to
a tracker. Each configuration analyses the whole campaign into a fresh folder; the time is
the command's whole work (cluster start and stop, every run, the dataset, campaign.json and
the reports), as a lab waits for it. On a machine of N cores the ideal ratio is N: a run is
one process, and the runs are independent.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from mitmproxy import http, io
from mitmproxy.test import tflow

IMEI = "864536040123455"
PROFILE = f"""device: {{name: "bench watch"}}
identifiers: {{imei: "{IMEI}"}}
location: {{lat: 39.98312, lon: 116.30791}}
first_party: [acme-watch.example]
jurisdiction: CN
"""
T0 = 1_790_000_000.0
FIRMWARES = ("1.0", "1.1", "1.2", "1.3")
SCENARIOS = ("idle", "use")


def write_capture(path: Path, flows: int, seed: int) -> None:
    template = tflow.tflow(resp=True)
    with open(path, "wb") as fh:
        writer = io.FlowWriter(fh)
        for n in range(flows):
            f = template.copy()
            if n % 3 == 2:
                host, body = "sdk.tracker.example", {"events": [
                    {"did": IMEI, "t": n, "k": f"screen_{(n + seed) % 7}"}] * 3}
            else:
                host, body = "api.acme-watch.example", {
                    "imei": IMEI, "seq": n, "battery": 100 - n % 100,
                    "lat": f"{39.98312 + (n % 50) * 1e-5:.5f}",
                    "lon": f"{116.30791 + (n % 40) * 1e-5:.5f}"}
            f.request = http.Request.make("POST", f"https://{host}/v1/report",
                                          json.dumps(body).encode(),
                                          {"content-type": "application/json"})
            f.request.timestamp_start = f.request.timestamp_end = T0 + n
            writer.add(f)


def write_lab(root: Path, runs: int, flows: int) -> Path:
    (root / "profile.yaml").write_text(PROFILE)
    lines = ["title: bench", "defaults: {profile: profile.yaml}", "runs:"]
    for i in range(runs):
        firmware, scenario = FIRMWARES[i // 2 % 4], SCENARIOS[i % 2]
        name = f"run{i}.mitm"
        write_capture(root / name, flows, i)
        lines.append(f"  - {{device: watch, firmware: '{firmware}', scenario: {scenario}, "
                     f"inputs: [{name}], id: run{i}}}")
    manifest = root / "m.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def measure(manifest: Path, out: Path, workers: int) -> dict:
    from auditor.campaign.manifest import load_manifest
    from auditor.campaign.runner import run_campaign

    plan = load_manifest(manifest)
    t0 = time.perf_counter()
    campaign = run_campaign(plan, out, workers=workers)
    wall = time.perf_counter() - t0
    done = sum(r.status == "done" for r in campaign.runs)
    return {"wall_s": round(wall, 1), "runs_done": done,
            "runs_per_minute": round(60 * done / wall, 1)}


def run(runs: int = 8, flows: int = 2000) -> dict:
    with tempfile.TemporaryDirectory(prefix="kidaudit-bench-campaign-") as tmp:
        root = Path(tmp)
        manifest = write_lab(root, runs, flows)
        one = measure(manifest, root / "out1", 1)
        two = measure(manifest, root / "out2", 2)
    ratio = round(two["runs_per_minute"] / one["runs_per_minute"], 2) if one[
        "runs_per_minute"] else 0.0
    return {"title": "Campaign throughput on a LocalCluster (issue 16 item 4)",
            "runs": runs, "flows_per_run": flows, "cores": os.cpu_count(),
            "1_worker": one, "2_workers": two, "ratio_2_to_1": ratio,
            "notes": ["a run is one worker process with one thread; the time includes "
                      "starting and closing the cluster and writing the dataset and reports"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--flows", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(run(args.runs, args.flows), indent=1))
