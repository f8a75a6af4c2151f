"""Real ``.mitm`` files for tests, written with mitmproxy's own FlowWriter from tflow flows."""

from __future__ import annotations

import json
from pathlib import Path

from mitmproxy import http, io
from mitmproxy.test import tflow


def http_flow(url: str, ts: float, body: object | None = None, method: str = "POST"
              ) -> http.HTTPFlow:
    f = tflow.tflow(resp=True)
    f.request = http.Request.make(method, url, json.dumps(body).encode() if body else b"",
                                  {"content-type": "application/json"})
    f.request.timestamp_start = f.request.timestamp_end = ts
    return f


def write_flows(path: Path, flows: list) -> Path:
    with open(path, "wb") as fh:
        writer = io.FlowWriter(fh)
        for f in flows:
            writer.add(f)
    return path
