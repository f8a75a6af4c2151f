"""mitmproxy flows -> Transmissions, marks as flows, signals, and reading .mitm files."""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy import io
from mitmproxy.test import tflow

from auditor.model import ConsentEvent
from auditor.profile import ConfigError, ConsentPlan, Signal
from auditor.sources.mitm import (
    InputError,
    Signals,
    is_mark,
    mark_event,
    mark_flow,
    read_flows,
    transmission,
)
from tests.flowfiles import http_flow, write_flows


def test_transmission_carries_the_request_as_sent() -> None:
    f = http_flow("https://api.acme-watch.example:8443/v1/x?a=1", 1000.0, {"k": "v"})
    f.server_conn.peername = ("203.0.113.7", 8443)
    tx = transmission(f, 7)
    assert (tx.id, tx.ts, tx.transport, tx.host, tx.port, tx.ip) == (
        7, 1000.0, "https", "api.acme-watch.example", 8443, "203.0.113.7")
    assert (tx.method, tx.path, tx.body) == ("POST", "/v1/x?a=1", b'{"k": "v"}')
    assert tx.url == "https://api.acme-watch.example:8443/v1/x?a=1"
    assert tx.content_type == "application/json" and tx.size > len(tx.body)


def test_a_mark_written_as_a_flow_reads_back_as_the_same_event(tmp_path: Path) -> None:
    ev = ConsentEvent(1234.5, "withdraw", ("location.precise",), ("amap.com",), (), "", "cli")
    path = write_flows(tmp_path / "m.mitm", [mark_flow(ev)])
    with open(path, "rb") as fh:
        (flow,) = list(io.FlowReader(fh).stream())
    assert is_mark(flow)
    assert mark_event(flow, source="cli") == ev


@pytest.mark.parametrize(("expr", "url", "fires"), [
    ("~u /privacy/agree & ~m POST", "https://app.example/privacy/agree", True),
    ("~u /privacy/agree & ~m GET", "https://app.example/privacy/agree", False),
    ("~d amap.com", "https://restapi.amap.com/v3/ip", True),
])
def test_signals_use_mitmproxy_filter_expressions(expr: str, url: str, fires: bool) -> None:
    plan = ConsentPlan(signals=(Signal(expr, "grant", ("all-disclosed",)),), source="p.yaml")
    events = Signals(plan).events(http_flow(url, 50.0, {"a": 1}))
    assert [(e.action, e.ts, e.source) for e in events] == (
        [("grant", 50.0, "signal")] if fires else [])


def test_a_bad_filter_expression_is_a_config_error() -> None:
    plan = ConsentPlan(signals=(Signal("~u (", "grant", ("all-disclosed",)),), source="p.yaml")
    with pytest.raises(ConfigError, match=r"p.yaml: signals\[0\].filter"):
        Signals(plan)


def test_read_flows_stops_at_a_cut_with_a_note(tmp_path: Path) -> None:
    path = write_flows(tmp_path / "c.mitm", [tflow.tflow(resp=True) for _ in range(3)])
    path.write_bytes(path.read_bytes()[:-25])
    notes: list[str] = []
    assert len(list(read_flows(path, notes))) == 2
    assert len(notes) == 1 and "stopped after 2 flows" in notes[0]


def test_read_flows_rejects_a_file_that_is_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "x.mitm"
    path.write_text("hello")
    with pytest.raises(InputError, match="not a mitmproxy flow file"):
        list(read_flows(path, []))
