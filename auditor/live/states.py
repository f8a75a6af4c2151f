"""Each connection's state, serialised once per change instead of once per flow.

The proxy hands an HTTP, TCP, UDP or DNS flow to the analysis as ``flow.get_state()``. A
keep-alive connection carries many flows, and ``get_state`` spends most of its time
serialising the same two connections again, on mitmproxy's event loop, per flow:
``flow_state`` gives the same dict with the connections' states from ``ConnectionStates``.
"""

from __future__ import annotations

import dataclasses

from mitmproxy import connection
from mitmproxy.flow import Flow

from auditor.memo import Memo, memoised


class ConnectionStates:
    """``get_state()`` of each connection, computed again only when one of its fields changed.

    A connection's fields change at connect, TLS setup and close; the cached state is reused
    while every field holds the same value."""

    MAX = 4096  # connections remembered (see ``Memo``)

    def __init__(self) -> None:
        self._cache: Memo[str, tuple[tuple, dict]] = Memo(self.MAX)

    def get(self, conn: connection.Connection) -> dict:
        values = tuple(tuple(v) if isinstance(v := getattr(conn, n), list) else v
                       for n in _field_names(type(conn)))
        hit = self._cache.get(conn.id)
        if hit is not None and hit[0] == values:
            return hit[1]
        return self._cache.put(conn.id, (values, conn.get_state()))[1]

    def forget(self, conn: connection.Connection) -> None:
        self._cache.pop(conn.id, None)


@memoised(16)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


class _Stated:
    """Stands in for a connection inside ``Flow.get_state``: its state is known already."""

    __slots__ = ("_state",)

    def __init__(self, state: dict) -> None:
        self._state = state

    def get_state(self) -> dict:
        return self._state


def flow_state(flow: Flow, conns: ConnectionStates) -> dict:
    """``flow.get_state()``, with the connections' states from ``conns``. The result shares
    those dicts with the cache: its readers never change them (the analysis side sets only
    the flow's own mark and comment)."""
    client, server = flow.client_conn, flow.server_conn
    flow.client_conn, flow.server_conn = (_Stated(conns.get(client)),  # type: ignore[assignment]
                                          _Stated(conns.get(server)))
    try:
        return flow.get_state()
    finally:
        flow.client_conn, flow.server_conn = client, server
