"""mitmproxy flows (live or from ``.mitm`` files) -> Transmissions and consent events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from mitmproxy import connection, flowfilter, http, io
from mitmproxy.exceptions import FlowReadException

from auditor.marks import MARK_HOST, mark_path, parse_mark
from auditor.model import ConsentEvent, Transmission
from auditor.profile import ConfigError, ConsentPlan


class InputError(Exception):
    """A capture we cannot read: one line naming the file and the problem."""


def is_mark(flow: http.HTTPFlow) -> bool:
    return flow.request.pretty_host == MARK_HOST


def mark_event(flow: http.HTTPFlow, source: str = "mark") -> ConsentEvent:
    return parse_mark(flow.request.path, flow.request.timestamp_start, source)


def mark_flow(ev: ConsentEvent) -> http.HTTPFlow:
    """A consent mark as a flow, so ``flows.mitm`` carries the whole timeline."""
    client = connection.Client(peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0),
                               timestamp_start=ev.ts)
    flow = http.HTTPFlow(client, connection.Server(address=(MARK_HOST, 80)))
    flow.request = http.Request.make("GET", f"http://{MARK_HOST}{mark_path(ev)}")
    flow.request.timestamp_start = flow.request.timestamp_end = ev.ts
    flow.response = http.Response.make(200, b"recorded\n", {"content-type": "text/plain"})
    flow.response.timestamp_start = flow.response.timestamp_end = ev.ts
    flow.comment = f"kidaudit: consent mark ({ev.source})"
    return flow


def transmission(flow: http.HTTPFlow, tx_id: int) -> Transmission:
    req = flow.request
    peer = flow.server_conn.peername if flow.server_conn else None
    body = req.get_content(strict=False) or b""
    head = sum(len(k) + len(v) + 4 for k, v in req.headers.items(multi=True))
    return Transmission(
        id=tx_id, ts=req.timestamp_start, transport=req.scheme, host=req.pretty_host,
        port=req.port, ip=peer[0] if peer else "", method=req.method, url=req.pretty_url,
        path=req.path, headers=tuple(req.headers.items(multi=True)), body=body,
        content_type=req.headers.get("content-type", ""), size=head + len(req.raw_content or b""),
        flow_id=flow.id)


class Signals:
    """The plan's traffic signals, compiled with mitmproxy's own filter language."""

    def __init__(self, plan: ConsentPlan | None) -> None:
        self._compiled = []
        for i, sig in enumerate(plan.signals if plan else ()):
            try:
                matcher = flowfilter.parse(sig.filter)
            except ValueError as e:
                raise ConfigError(f"{plan.source}: signals[{i}].filter {sig.filter!r} "
                                  f"is not a mitmproxy filter expression ({e})") from e
            self._compiled.append((sig, matcher))

    def events(self, flow: http.HTTPFlow) -> list[ConsentEvent]:
        return [ConsentEvent(ts=flow.request.timestamp_start, action=sig.action,
                             categories=sig.categories, recipients=sig.recipients,
                             separate=sig.separate, name=sig.name, source="signal")
                for sig, matcher in self._compiled if matcher(flow)]


def read_flows(path: Path, notes: list[str]) -> Iterator[object]:
    """Every flow in a ``.mitm`` file. A file cut mid-record is read up to the cut, and
    ``notes`` gets one line saying where it stopped."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, the generator may stop early
    except OSError as e:
        raise InputError(f"{path}: cannot open ({e.strerror})") from e
    count = 0
    with fh:
        reader = io.FlowReader(fh)
        try:
            for flow in reader.stream():
                count += 1
                yield flow
        except FlowReadException as e:
            if count == 0:
                raise InputError(f"{path}: not a mitmproxy flow file ({e})") from e
            notes.append(f"{path}: stopped after {count} flows at byte {fh.tell()}: {e}")


def now() -> float:
    return time.time()


def addon_path() -> Path:
    """``addons/kidaudit.py`` of this checkout: what ``mitmdump -s`` loads."""
    return Path(__file__).resolve().parents[2] / "addons" / "kidaudit.py"


def load_addon_class() -> type:
    """The KidAudit addon class, imported from its script file for in-process masters."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("kidaudit_addon", addon_path())
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {addon_path()}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.KidAudit
