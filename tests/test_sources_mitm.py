"""mitmproxy flows -> Transmissions, marks as flows, signals, and reading .mitm files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mitmproxy import http, io
from mitmproxy.io import tnetstring
from mitmproxy.test import tflow

from auditor.model import ConsentEvent, ConsentPlan, Signal
from auditor.profile import ConfigError
from auditor.sources.mitm import (
    InputError,
    Signals,
    StreamAssembler,
    flow_transmissions,
    http_flow_of,
    is_mark,
    mark_event,
    mark_flow,
    read_flows,
    saved_mark_event,
    transmission,
)
from tests.factories import IMEI, http_flow, write_flows


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


@pytest.mark.parametrize("source", ["cli", "command"])
def test_a_written_mark_reads_back_with_its_source(tmp_path: Path, source: str) -> None:
    """``analyze flows.mitm`` says who marked, as the live timeline did."""
    ev = ConsentEvent(1234.5, "phase", (), (), (), "idle", source)
    (flow,) = read_flows(write_flows(tmp_path / "m.mitm", [mark_flow(ev)]), [])
    assert saved_mark_event(flow) == ev


@pytest.mark.parametrize("comment", ["", "kidaudit: consent mark",
                                     "kidaudit: consent mark (plan)"])
def test_a_magic_host_request_reads_back_as_a_mark(comment: str) -> None:
    flow = http_flow("http://kidaudit.mark/phase?name=idle", 1234.5, method="GET")
    flow.comment = comment
    assert saved_mark_event(flow).source == "mark"


@pytest.mark.parametrize(("host", "header", "http2", "mark"), [
    ("kidaudit.mark", None, False, True),  # regular mode: the name is the request's host
    ("10.0.0.1", "kidaudit.mark", False, True),  # transparent mode: the Host header
    ("10.0.0.1", "kidaudit.mark:80", False, True),
    ("10.0.0.1", "kidaudit.mark", True, True),  # HTTP/2: the :authority
    ("kidaudit.mark", "api.example", False, False),  # the header wins, as in pretty_host
    ("10.0.0.1", "kidaudit.mark.evil.example", False, False),
    ("10.0.0.1", "api.example", False, False),
    ("api.example", None, False, False),
])
def test_a_mark_is_told_by_the_host_the_request_names(host, header, http2, mark) -> None:
    flow = tflow.tflow()
    flow.request.host = host
    flow.request.headers.pop("host", None)
    if http2:
        flow.request.http_version = "HTTP/2.0"
        flow.request.authority = header or ""
    elif header is not None:
        flow.request.headers["Host"] = header
    assert is_mark(flow) is mark
    assert (flow.request.pretty_host == "kidaudit.mark") is mark


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


LK = b"[3G*8645360401*0009*LK,0,0,53]"


def test_stream_assembler_cuts_watch_frames_and_keeps_other_reads() -> None:
    watch = StreamAssembler()
    assert watch.feed(True, LK[:10]) == []
    assert watch.feed(True, LK[10:] + LK) == [LK, LK]
    assert watch.feed(False, b"[SG*1*0002*CR]") == [b"[SG*1*0002*CR]"]
    other = StreamAssembler()
    assert other.feed(True, b"hello") == [b"hello"] and other.feed(False, b"server") == []


def test_raw_flows_from_a_file_give_what_the_addon_gives_live() -> None:
    from itertools import count

    from mitmproxy import tcp

    ids = count(1)
    flow = tflow.ttcpflow(messages=[tcp.TCPMessage(True, LK[:5], 10.0),
                                    tcp.TCPMessage(True, LK[5:], 11.0),
                                    tcp.TCPMessage(False, b"[SG*1*0007*MONITOR]", 12.0)])
    flow.server_conn.sni = None  # a raw TCP connection: no TLS, so no SNI
    names = {flow.server_conn.address[0]: "gps.watch.example"}
    txs = flow_transmissions(flow, ids, names)
    assert [(t.id, t.transport, t.direction, t.payload, t.ts) for t in txs] == [
        (1, "tcp", "up", LK, 11.0), (2, "tcp", "down", b"[SG*1*0007*MONITOR]", 12.0)]
    assert txs[0].host == "gps.watch.example" and txs[0].flow_id == flow.id
    udp_txs = flow_transmissions(tflow.tudpflow(), ids)
    assert [(t.transport, t.payload) for t in udp_txs] == [("udp", b"hello")]
    dns_txs = flow_transmissions(tflow.tdnsflow(resp=True), ids, names)
    assert [t.transport for t in dns_txs] == ["dns"] and dns_txs[0].payload
    ws = tflow.twebsocketflow()
    ws_txs = flow_transmissions(ws, ids)
    assert len(ws_txs) == sum(m.from_client for m in ws.websocket.messages)
    assert all(t.transport == "websocket" for t in ws_txs)
    assert flow_transmissions(tflow.tflow(), ids) == []


def test_a_captured_http_transmission_runs_through_signal_filters() -> None:
    f = http_flow("https://app.example/privacy/agree", 50.0, {"a": 1})
    flow = http_flow_of(transmission(f, 1))
    plan = ConsentPlan(signals=(Signal("~u /privacy/agree & ~m POST", "grant",
                                       ("all-disclosed",)),), source="p.yaml")
    assert [e.action for e in Signals(plan).events(flow)] == ["grant"]


# -- what the addon hands to the worker ------------------------------------------------------

def test_state_transmission_equals_transmission_and_leaves_the_state_whole() -> None:
    from mitmproxy.io import tnetstring

    from auditor.sources.mitm import state_transmission

    f = http_flow("https://api.acme-watch.example/v1/x?imei=1", 1000.0, {"k": "v"})
    f.server_conn.peername = ("203.0.113.7", 443)
    state = f.get_state()
    before = tnetstring.dumps(state)
    assert state_transmission(state, 3) == transmission(f, 3)
    assert tnetstring.dumps(state) == before  # still fit for the flow file


def _request(method: str, target: str, headers: list[tuple[bytes, bytes]],
             version: str = "HTTP/1.1", authority: str = "") -> http.Request:
    req = http.Request.make(method, target, b"{}")
    req.headers = http.Headers(headers)  # as sent: ``make`` would set its own Host
    req.http_version = version
    if authority:
        req.authority = authority
    return req


@pytest.mark.parametrize("req", [
    _request("POST", "http://api.acme-watch.example/v1/r?imei=1",
             [(b"Host", b"api.acme-watch.example"), (b"Content-Type", b"application/json")]),
    _request("GET", "http://10.0.0.2:8080/x", [(b"host", b"watch.example:8443")]),
    _request("GET", "https://10.0.0.2/x", [(b"HOST", b"watch.example"),
                                            (b"host", b"second.example")]),
    _request("GET", "https://10.0.0.2:443/x", []),
    _request("GET", "http://10.0.0.2:80/x", [(b"Host", b"")]),
    _request("GET", "http://[2001:db8::1]:8080/x", [(b"Host", b"[2001:db8::1]:8080")]),
    _request("OPTIONS", "http://10.0.0.2/*", [(b"Host", b"watch.example")]),
    _request("GET", "https://10.0.0.2/h2", [(b"content-type", b"a"), (b"Content-Type", b"b")],
             "HTTP/2.0", "h2.example:8443"),
    _request("GET", "https://10.0.0.2/h2", [(b"Host", b"fallback.example")], "HTTP/2.0"),
    _request("CONNECT", "http://tunnel.example:443/", [(b"Host", b"tunnel.example:443")]),
    _request("GET", "http://10.0.0.2/x", [(b"Host", b"bad host:99999")]),
], ids=["h1", "port", "first-host", "no-host", "empty-host", "ipv6", "asterisk", "h2",
        "h2-host-header", "connect", "malformed"])
def test_request_transmission_reads_host_and_url_as_mitmproxy_does(req: http.Request) -> None:
    from auditor.sources.mitm import request_transmission

    if req.method == "CONNECT":
        req.authority = "tunnel.example:443"
    req.timestamp_start = 1000.0
    tx = request_transmission(req, 1, "f", None, False, "")
    assert (tx.host, tx.url, tx.path) == (req.pretty_host, req.pretty_url, req.path)
    assert tx.content_type == req.headers.get("content-type", "")
    assert tx.size == sum(len(k) + len(v) + 4 for k, v in req.headers.items(multi=True)) + 2


# -- hostile input (issue 13) -------------------------------------------------------------

def _state_without(key: str) -> bytes:
    state = tflow.tflow(resp=True).get_state()
    del state[key]
    return tnetstring.dumps(state)


def _deep(levels: int) -> bytes:
    inner = b"0:]"
    for _ in range(levels):
        inner = b"%d:%s]" % (len(inner), inner)
    return inner


def _timed(ts: float) -> bytes:
    f = tflow.tflow(resp=True)
    f.request.timestamp_start = ts
    return tnetstring.dumps(f.get_state())


@pytest.mark.parametrize(("data", "problem"), [
    (b"5:hello,", "ValueError: a bytes value, not a flow"),
    (b"999999999999:x", "a record of 999999999999 bytes, and only 0 are left"),
    (b"9999999999999:x", "not a tnetstring: missing or invalid length prefix"),
    (_deep(5000), "nested too deeply"),
    (_state_without("request"), "KeyError: 'request'"),
    (_timed(1e300), "its time 1e+300 is not between the years 1 and 9999"),
    (_timed(float("nan")), "its time nan is not between the years 1 and 9999"),
    (b'{"log": {"entries": 5}}',
     "FlowReadException: Unable to read HAR file. Please provide a valid HAR file"),
])
def test_a_first_record_that_is_not_a_flow_is_not_a_capture(tmp_path: Path, data: bytes,
                                                             problem: str) -> None:
    path = tmp_path / "x.mitm"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        list(read_flows(path, []))
    assert str(err.value) == f"{path}: not a mitmproxy flow file ({problem})"


@pytest.mark.parametrize(("bad", "kept", "note"), [
    (_state_without("request"), 2, "was skipped (KeyError: 'request')"),   # hit: skipped
    (_timed(1e300), 2, "was skipped (its time 1e+300 is not between"),      # hit: skipped
    (b"", 2, ""),                                                            # ok: no record
])
def test_a_later_record_that_is_not_a_flow_is_skipped_with_a_note(
        tmp_path: Path, bad: bytes, kept: int, note: str) -> None:
    good = write_flows(tmp_path / "g.mitm", [tflow.tflow(resp=True)]).read_bytes()
    path = tmp_path / "x.mitm"
    path.write_bytes(good + bad + good)
    notes: list[str] = []
    assert len(list(read_flows(path, notes))) == kept
    assert [note in n for n in notes] == ([True] if note else [])


def test_a_host_and_path_that_are_not_utf8_are_analysed_and_reported(tmp_path: Path) -> None:
    """The IMEI in the query of a request whose Host and path hold bytes that are not UTF-8
    reaches findings.json, with those bytes as ``\\xNN``; a Host holding ``[`` stops
    nothing either."""
    from auditor.offline import analyze
    from tests.factories import profile

    odd = http_flow(f"http://api.acme-watch.example/p?imei={IMEI}", 1000.0)
    odd.request.headers["host"] = "ho\udcffst.example"
    odd.request.path = f"/p\udcfe?imei={IMEI}"
    bracket = http_flow(f"http://api.acme-watch.example/q?imei={IMEI}", 1001.0)
    bracket.request.headers["host"] = "[bad"
    path = write_flows(tmp_path / "x.mitm", [odd, bracket])
    out = tmp_path / "out"
    analyze([path], profile(source=""), None, out)
    doc = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert [(t["host"], t["url"].split("?")[0]) for t in doc["transmissions"]] == [
        ("ho\\xffst.example", "http://ho\\xffst.example/p\\xfe"), ("[bad", "http://[bad/q")]
    assert [(d["transmission"], d["category"]) for d in doc["detections"]] == [
        (1, "identifier.imei"), (2, "identifier.imei")]
    assert doc["coverage"]["errors"] == []
    assert {f["rule"] for f in doc["findings"] if f["transmissions"] == [2]} >= {"CLEARTEXT_PI"}


@pytest.mark.parametrize(("url", "method", "path"), [
    ("http:///no-host", "GET", "/no-host"),          # hit: "No hostname given"
    ("http://bad host/x?a=1", "GET", "/x?a=1"),      # hit: "Invalid Host"
    ("http://a.example/x", "GÉT", "/x"),             # hit: a method that is not ASCII
    ("http://a.example/y", "POST", "/y"),            # ok
])
def test_a_request_mitmproxy_cannot_parse_still_becomes_a_flow_for_signals(
        url: str, method: str, path: str) -> None:
    from tests.factories import T0
    from tests.factories import tx as message

    flow = http_flow_of(message(url=url, method=method, path=path, host="a.example"))
    assert (flow.request.path, flow.request.timestamp_start) == (path, T0)
    assert flow.request.method == method


@pytest.mark.parametrize(("text", "shown"), [
    ("~u /a[[[[" + "[" * 100, "'~u /a[[[[" + "[" * 51 + "...'"),   # hit: long, warns in re
    ("~u /a\n~q(", "'~u /a\\n~q('"),                               # hit: a line break
    ("~u /agree & ~m POST", ""),                                    # ok: compiles
])
def test_a_bad_signal_filter_is_one_line_and_nothing_else(tmp_path: Path, recwarn, text: str,
                                                          shown: str) -> None:
    plan = ConsentPlan(signals=(Signal(filter=text, action="grant",
                                       categories=("all-disclosed",)),), source="p.yaml")
    if not shown:
        assert Signals(plan) is not None and len(recwarn) == 0
        return
    with pytest.raises(ConfigError) as err:
        Signals(plan)
    assert str(err.value).startswith(f"p.yaml: signals[0].filter {shown} is not a mitmproxy")
    assert "\n" not in str(err.value) and len(recwarn) == 0


def test_a_mark_in_a_flow_file_is_an_event_and_a_malformed_one_a_coverage_error(
        tmp_path: Path) -> None:
    """The magic-host requests a live session saved (the addon answered them) are consent
    events again, never transmissions; one the addon answered 400 is a coverage error."""
    from auditor.offline import analyze
    from tests.factories import profile

    flows = [http_flow("http://kidaudit.mark/grant?categories=all-disclosed", 1000.0,
                       method="GET"),
             http_flow(f"http://api.acme-watch.example/p?imei={IMEI}", 1001.0),
             http_flow("http://kidaudit.mark/phase", 1002.0, method="GET")]
    out = tmp_path / "out"
    analyze([write_flows(tmp_path / "x.mitm", flows)], profile(source=""), None, out)
    doc = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert [(e["action"], e["source"]) for e in doc["events"]] == [("grant", "mark")]
    assert [(t["id"], t["host"]) for t in doc["transmissions"]] == [
        (1, "api.acme-watch.example")]
    assert [(e["stage"], e["message"]) for e in doc["coverage"]["errors"]] == [
        ("mark", "ValueError: a phase mark needs name=..., e.g. /phase?name=idle")]


# -- ordinary HTTP records read without rebuilding the flow (issue 16 item 2) -------------

def _record(change=None, resp: bool = True, **flow_kw: object) -> bytes:
    f = tflow.tflow(resp=resp, **flow_kw)
    f.server_conn.peername = ("203.0.113.7", 443)
    state = f.get_state()
    if change is not None:
        change(state)
    return tnetstring.dumps(state)


def _set(path: str, value: object):
    def change(state: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            state = state[p]
        if value is KeyError:
            del state[last]
        else:
            state[last] = value
    return change


@pytest.mark.parametrize(("record", "plain"), [
    (_record(), True),
    (_record(resp=False), True),
    (_record(_set("server_conn.peername", None)), True),
    (_record(_set("client_conn.timestamp_tls_setup", None)), True),
    (_record(_set("backup", KeyError)), True),
    (_record(ws=True), False),
    (_record(err=True), False),
    (_record(_set("metadata", {"k": 1})), False),
    (_record(_set("version", 20)), False),
    (_record(_set("client_conn.alpn", 5)), False),
    (_record(_set("client_conn.id", 5)), False),
    (_record(_set("server_conn.extra", 1)), False),
    (_record(_set("server_conn.tls_version", "SSLv1")), False),
    (_record(_set("response.status_code", "200")), False),
    (_record(_set("request.host", None)), False),
    (_record(_set("request", KeyError)), False),
    (_record(_set("extra", 1)), False),
    (_record(_set("timestamp_created", 1e300)), False),
    (_record(_set("request.timestamp_start", float("nan"))), False),
    (b"5:hello,", False),
    # a message mitmproxy converts or refuses takes mitmproxy's path, which decides
    (_record(_set("request.method", "GET")), False),
    (_record(_set("request.port", True)), False),
    (_record(_set("request.headers", [[b"a", b"b", b"c"]])), False),
    (_record(_set("request.headers", [[b"a", "b"]])), False),
    (_record(_set("request.headers", [b"ab"])), False),
    (_record(_set("request.trailers", [[b"a"]])), False),
    (_record(_set("request.content", "text")), False),
    (_record(_set("request.extra", 1)), False),
    (_record(_set("request.path", KeyError)), False),
    (_record(_set("response.headers", [[b"a", 5]])), False),
    (_record(_set("response.reason", None)), False),
    (_record(_set("response.timestamp_end", "1")), False),
    (_record(_set("response.extra", 1)), False),
    # and one it takes as it is is read here
    (_record(_set("request.trailers", [[b"x-sum", b"1"]])), True),
    (_record(_set("request.content", None)), True),
    (_record(_set("request.timestamp_end", None)), True),
    (_record(_set("request.timestamp_start", 1000)), True),
    (_record(_set("request.headers", [])), True),
    (_record(_set("response.trailers", [[b"x-sum", b"1"]])), True),
    # a state remembered as a client's is no server's, nor the other way round
    (_record(lambda state: state.update(server_conn=dict(state["client_conn"]))), False),
    (_record(lambda state: state.update(client_conn=dict(state["server_conn"]))), False),
])
def test_a_plain_http_record_reads_as_the_flow_would(record: bytes, plain: bool) -> None:
    """Read without rebuilding the flow, a record gives the same transmission, or the same
    flow, or the same ``NotAFlow`` words, as ``flow_of_record``."""
    from auditor.sources.mitm import NotAFlow, PlainHttp, flow_of_record, plain_http_of_record

    try:
        expected: object = flow_of_record(record)
    except NotAFlow as e:
        expected = str(e)
    try:
        got: object = plain_http_of_record(record)
    except NotAFlow as e:
        got = str(e)
    assert isinstance(got, PlainHttp) == plain
    if isinstance(got, PlainHttp):
        assert got.transmission(3) == transmission(expected, 3)  # type: ignore[arg-type]
        assert got.record == record
    elif isinstance(got, str):
        assert got == expected
    else:
        assert got.get_state() == expected.get_state()  # type: ignore[union-attr]


REQUEST_STATES = {
    "tflow": tflow.treq().get_state(),
    "trailers": {**tflow.treq().get_state(), "trailers": [[b"x-sum", b"1"]]},
    "no content, no end": {**tflow.treq().get_state(), "content": None, "timestamp_end": None},
    "int times": {**tflow.treq().get_state(), "timestamp_start": 5, "timestamp_end": 6},
    "http2": http.Request.make("POST", "https://h.example:8443/p?q=1", b"x",
                               {"a": "b"}).get_state() | {"http_version": b"HTTP/2.0"},
}


@pytest.mark.parametrize("state", REQUEST_STATES.values(), ids=list(REQUEST_STATES))
def test_a_request_built_from_a_plain_state_is_the_one_from_state_builds(state: dict) -> None:
    """Built without the dataclass's type check, the request is mitmproxy's, member for
    member and in the same order."""
    from auditor.sources.mitm import _REQUEST_TYPES, _plain_message, _request

    state = tnetstring.loads(tnetstring.dumps(state))  # as a record holds it: lists
    assert _plain_message(state, _REQUEST_TYPES)
    got, expected = _request(dict(state)), http.Request.from_state(dict(state))
    assert type(got) is type(expected) and type(got.data) is type(expected.data)
    assert list(vars(got.data).items()) == list(vars(expected.data).items())
    for name in ("headers", "trailers"):
        made, reference = getattr(got.data, name), getattr(expected.data, name)
        assert type(made) is type(reference)
        assert (made is None and reference is None) or vars(made) == vars(reference)
    assert vars(got) == vars(expected)
    assert got.get_state() == expected.get_state()


def test_requests_are_built_here_with_the_mitmproxy_the_tests_run_on() -> None:
    """The comparison above is of the fast path: it is taken with this mitmproxy."""
    from auditor.sources.mitm import _BUILT_HERE, _HEADERS_BUILT_HERE

    assert _BUILT_HERE and _HEADERS_BUILT_HERE


@pytest.mark.parametrize("pairs", [
    [], [[b"host", b"h.example"]], [[b"a", b"1"], [b"A", b"2"], [b"a", b""]],
    [[b"user-agent", b"\xff\xfe"], [b"x_y", b"v"], [b"", b""]],
])
def test_headers_built_here_are_the_ones_headers_builds(pairs: list) -> None:
    """``_headers``: the same class, the same ``fields`` (tuples of bytes), equal, and the
    same in every use (a request's headers and its trailers)."""
    from auditor.sources.mitm import _headers

    got, expected = _headers(pairs), http.Headers(pairs)
    assert type(got) is type(expected) and vars(got) == vars(expected)
    assert type(got.fields) is tuple and all(type(pair) is tuple for pair in got.fields)
    assert got == expected and list(got.items(multi=True)) == list(expected.items(multi=True))
    assert bytes(got) == bytes(expected)
    state = http.Request.make("GET", "http://h.example/").get_state() | {
        "headers": pairs, "trailers": pairs}
    test_a_request_built_from_a_plain_state_is_the_one_from_state_builds(state)


ODD_MESSAGES = [
    ("host", b"h.example"), ("host", None), ("port", "80"), ("port", True), ("port", 1.5),
    ("method", "GET"), ("method", None), ("path", "/"), ("scheme", 1), ("authority", None),
    ("http_version", "HTTP/1.1"), ("content", "x"), ("content", 5), ("timestamp_start", None),
    ("timestamp_start", "1"), ("timestamp_start", True), ("timestamp_end", b"1"),
    ("headers", None), ("headers", {}), ("headers", [[b"a"]]), ("headers", [[b"a", None]]),
    ("headers", [[b"a", b"b", b"c"]]), ("headers", [b"ab"]), ("headers", [[b"a", 5]]),
    ("trailers", []), ("trailers", [["a", "b"]]), ("status_code", "200"),
    ("status_code", None), ("reason", "OK"), ("reason", None),
]


@pytest.mark.parametrize(("name", "value"), ODD_MESSAGES, ids=repr)
@pytest.mark.parametrize("kind", [http.Request, http.Response])
def test_a_message_state_taken_as_plain_is_one_mitmproxy_takes_as_it_is(
        kind: type, name: str, value: object) -> None:
    """What ``_plain_message`` takes, ``from_state`` takes without converting a member; a
    member of any other type (or one too many, or too few) is left to mitmproxy."""
    from auditor.sources.mitm import _REQUEST_TYPES, _RESPONSE_TYPES, _plain_message

    base = (tflow.treq() if kind is http.Request else tflow.tresp()).get_state()
    types = _REQUEST_TYPES if kind is http.Request else _RESPONSE_TYPES
    for state in ({**base, name: value}, {k: v for k, v in base.items() if k != name},
                  {**base, "extra": value}):
        state = tnetstring.loads(tnetstring.dumps(state))
        if _plain_message(state, types):
            built = kind.from_state(dict(state)).get_state()
            trailers = state["trailers"]
            assert built == {**state, "headers": tuple(map(tuple, state["headers"])),
                             "trailers": None if trailers is None else tuple(
                                 map(tuple, trailers))}


def test_a_connection_state_checked_once_is_still_checked_for_its_id() -> None:
    """The connection states taken are remembered without their id: a bad id is still bad."""
    from auditor.sources.mitm import NotAFlow, PlainHttp, plain_http_of_record

    assert isinstance(plain_http_of_record(_record()), PlainHttp)
    with pytest.raises(NotAFlow):
        plain_http_of_record(_record(_set("server_conn.id", b"x")))


# -- the TLS probe's case, kept by the flow file (issue 17) --------------------------------

@pytest.mark.parametrize("case", ["", "untrusted-ca", "wrong-host", "expired", "tls1.0"])
def test_a_flow_sent_under_a_tls_probe_case_reads_back_with_it(tmp_path: Path,
                                                               case: str) -> None:
    """The addon tags a flow whose connection accepted a probe certificate; the HTTP, the
    worker's state and the raw TCP readers, live and from ``flows.mitm``, all give it back."""
    from mitmproxy import tcp

    from auditor.sources.mitm import PROBE_META, state_transmission

    f = http_flow("https://api.acme-watch.example/v1/x?imei=1", 1000.0, {"k": "v"})
    raw = tflow.ttcpflow(messages=[tcp.TCPMessage(True, LK, 10.0)])
    for flow in (f, raw):
        if case:
            flow.metadata[PROBE_META] = case
    (f_back, raw_back) = read_flows(write_flows(tmp_path / "p.mitm", [f, raw]), [])
    assert transmission(f, 1).probe == state_transmission(f.get_state(), 1).probe == case
    assert transmission(f_back, 1).probe == case
    assert [t.probe for t in flow_transmissions(raw_back, iter(range(1, 9)))] == [case]


@pytest.mark.parametrize("case", ["", "expired"])
def test_a_refused_tls_probe_case_reads_back_from_its_record_flow(tmp_path: Path,
                                                                  case: str) -> None:
    from mitmproxy import connection

    from auditor.model import Transmission
    from auditor.sources.mitm import tls_record_flow

    tx = Transmission(id=-1, ts=5.0, transport="tls", host="api.example", port=443,
                      inspected=False, sni="api.example", probe=case)
    record = tls_record_flow(tx, "refused", connection.Client(
        peername=("127.0.0.1", 1), sockname=("127.0.0.1", 2)),
        connection.Server(address=("api.example", 443)))
    (back,) = read_flows(write_flows(tmp_path / "r.mitm", [record]), [])
    (rebuilt,) = flow_transmissions(back, iter([7]))
    assert (rebuilt.probe, rebuilt.inspected, rebuilt.host) == (case, False, "api.example")
