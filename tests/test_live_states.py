"""Connection states serialised once per change: ``flow_state`` is ``get_state`` for every
kind of flow, and reuses a connection's state only while none of its fields changed."""

from __future__ import annotations

import pytest
from mitmproxy.test import tflow

from auditor.live.states import ConnectionStates, flow_state
from tests.factories import http_flow


@pytest.mark.parametrize("make", [tflow.ttcpflow, tflow.tudpflow, tflow.twebsocketflow,
                                  lambda: tflow.tdnsflow(resp=True)],
                         ids=["tcp", "udp", "websocket", "dns"])
def test_flow_state_is_get_state_for_every_kind_of_flow(make) -> None:
    flow = make()
    assert flow_state(flow, ConnectionStates()) == flow.get_state()


@pytest.mark.parametrize("change", [
    pytest.param(lambda c: setattr(c, "timestamp_end", 946681299.0), id="closed"),
    pytest.param(lambda c: setattr(c, "sni", "other.example"), id="sni"),
    pytest.param(lambda c: setattr(c, "alpn_offers", [b"h2"]), id="list-field"),
    pytest.param(lambda c: c.alpn_offers.append(b"h3"), id="list-mutated-in-place"),
])
def test_flow_state_reuses_connection_states_until_a_field_changes(change) -> None:
    conns = ConnectionStates()
    f = http_flow("http://acme-watch.example/a", 1.0)
    f.client_conn.alpn_offers = [b"http/1.1"]
    assert flow_state(f, conns) == f.get_state()
    second = http_flow("http://acme-watch.example/b", 2.0)
    second.client_conn, second.server_conn = f.client_conn, f.server_conn  # keep-alive
    assert flow_state(second, conns)["client_conn"] is flow_state(f, conns)["client_conn"]
    change(f.client_conn)
    assert flow_state(f, conns) == f.get_state()  # the change shows at once
    assert f.client_conn.get_state() == flow_state(f, conns)["client_conn"]
    assert isinstance(f.client_conn, type(second.client_conn))  # the real one is back
