"""auditor/extract/http.py: every part of a request becomes (location, path, value) fields."""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import brotli
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import limits
from auditor.extract import bodies as bodies_module
from auditor.extract import http as http_module
from auditor.extract.http import extract_http
from auditor.extract.reading import ReadContext
from auditor.limits import MAX_FIELDS, OPAQUE
from auditor.model import Field
from tests.factories import CHILD_NAME, ICCID, IMEI, tx

B64_NAME = base64.b64encode(CHILD_NAME.encode()).decode()
IMEI_FORM = f"imei={IMEI}".encode()
BASIC = base64.b64encode(f"{IMEI}:s3cret:pw".encode()).decode()


def _http(t) -> list:
    """The fields of ``t`` but its host name (``test_host_name_is_a_field`` is about that)."""
    return [f for f in extract_http(t) if f.path != "url.host"]


def _fields(t) -> list[tuple[str, str, str]]:
    return [(f.location, f.path, f.value) for f in _http(t)]


NO_BODY = {"body": b"", "headers": ()}


@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"path": f"/api/v1/dev/{IMEI}/loc", **NO_BODY}, [
        ("url", "url.path.0", "api"), ("url", "url.path.1", "v1"), ("url", "url.path.2", "dev"),
        ("url", "url.path.3", IMEI), ("url", "url.path.4", "loc"),
    ], id="path-segments"),
    pytest.param({"path": "/a%2Fb/%E5%B0%8F%E6%98%8E", **NO_BODY}, [
        ("url", "url.path.0", "a/b"), ("url", "url.path.1", "小明"),
    ], id="path-segments-percent-decoded"),
    pytest.param({"path": f"/r?did={IMEI}&lat=39.98312&empty=&n=Wang+Xiaoming", **NO_BODY}, [
        ("url", "url.path.0", "r"), ("query", "query.did", IMEI),
        ("query", "query.lat", "39.98312"), ("query", "query.n", "Wang Xiaoming"),
    ], id="query-blank-dropped"),
    pytest.param({"path": "", "url": f"https://h.example/x?imei={IMEI}", **NO_BODY}, [
        ("url", "url.path.0", "x"), ("query", "query.imei", IMEI),
    ], id="url-when-no-path"),
])
def test_url_fields(overrides: dict, expected: list) -> None:
    assert _fields(tx(**overrides)) == expected


@pytest.mark.parametrize(("headers", "expected"), [
    pytest.param((("X-Device-Id", IMEI), ("User-Agent", "K2/1.4.2")), [
        ("header", "header.x-device-id", IMEI), ("header", "header.user-agent", "K2/1.4.2"),
        ("header", "header.user-agent.k2", "1.4.2"),
    ], id="names-lowercased"),
    pytest.param((("User-Agent", f"Mozilla/5.0 (Linux; Android 9; K2 Build/PPR1; imei:{IMEI})"
                   f" AcmeWatch/1.4.2 sn={ICCID} {B64_NAME}"),), [
        ("header", "header.user-agent", f"Mozilla/5.0 (Linux; Android 9; K2 Build/PPR1; "
         f"imei:{IMEI}) AcmeWatch/1.4.2 sn={ICCID} {B64_NAME}"),
        ("header", "header.user-agent.mozilla", "5.0"),
        ("header", "header.user-agent.token", "Linux"),
        ("header", "header.user-agent.token", "Android"),
        ("header", "header.user-agent.build", "PPR1"),
        ("header", "header.user-agent.imei", IMEI),
        ("header", "header.user-agent.acmewatch", "1.4.2"),
        ("header", "header.user-agent.sn", ICCID),
        ("header", "header.user-agent.token", B64_NAME),
    ], id="user-agent-tokens"),
    pytest.param((("Authorization", f"Basic {BASIC}"),), [
        ("header", "header.authorization", f"Basic {BASIC}"),
        ("header", "header.authorization.basic", BASIC),
        ("header", "header.authorization.basic.username", IMEI),
        ("header", "header.authorization.basic.password", "s3cret:pw"),
    ], id="authorization-basic"),
    pytest.param((("Authorization", "Bearer eyJhbGciOi.eyJzdWIi.sig"),), [
        ("header", "header.authorization", "Bearer eyJhbGciOi.eyJzdWIi.sig"),
        ("header", "header.authorization.bearer", "eyJhbGciOi.eyJzdWIi.sig"),
    ], id="authorization-bearer"),
    pytest.param((("Authorization", f'Digest username="{IMEI}", realm="acme", nonce=abc'),), [
        ("header", "header.authorization",
         f'Digest username="{IMEI}", realm="acme", nonce=abc'),
        ("header", "header.authorization.username", IMEI),
        ("header", "header.authorization.realm", "acme"),
        ("header", "header.authorization.nonce", "abc"),
    ], id="authorization-params"),
    pytest.param((("Authorization", "Token ab+c/d=="),), [
        ("header", "header.authorization", "Token ab+c/d=="),
        ("header", "header.authorization.token", "ab+c/d=="),
    ], id="authorization-token68-padded"),
    pytest.param((("Authorization", "tok123"),), [
        ("header", "header.authorization", "tok123"),
    ], id="authorization-bare-token"),
    pytest.param((("Host", "api.example"), ("Content-Length", "12"), ("Accept", "*/*"),
                  ("Accept-Encoding", "gzip"), ("Connection", "keep-alive"),
                  ("Content-Type", "application/json"), ("X-Imei", IMEI)), [
        ("header", "header.x-imei", IMEI),
    ], id="transport-headers-skipped"),
])
def test_header_fields(headers: tuple, expected: list) -> None:
    assert _fields(tx(path="/", headers=headers, body=b"")) == expected


@pytest.mark.parametrize(("cookie", "expected"), [
    pytest.param(f"sid=abc; did={IMEI}", [("cookie.sid", "abc"), ("cookie.did", IMEI)],
                 id="plain"),
    pytest.param('sid="quoted"; a=b', [("cookie.sid", "quoted"), ("cookie.a", "b")],
                 id="quoted-value"),
    pytest.param(f'sid=abc; bad"cookie="x; did={IMEI}',
                 [("cookie.sid", "abc"), ('cookie.bad"cookie', '"x'), ("cookie.did", IMEI)],
                 id="malformed-pair-does-not-hide-the-rest"),
    pytest.param(f"version=1.4.2; path=/x; imei={IMEI}",
                 [("cookie.version", "1.4.2"), ("cookie.path", "/x"), ("cookie.imei", IMEI)],
                 id="attribute-like-names-are-cookies"),
    pytest.param("a=1;;=x; junk", [("cookie.a", "1"), ("cookie.junk", "")],
                 id="empty-and-nameless-pairs"),
])
def test_cookie_fields(cookie: str, expected: list) -> None:
    fields = _http(tx(path="/", headers=(("Cookie", cookie),), body=b""))
    assert all(f.location == "cookie" for f in fields)
    assert [(f.path, f.value) for f in fields] == expected


@pytest.mark.parametrize(("content_type", "body", "expected"), [
    pytest.param("application/x-www-form-urlencoded; charset=utf-8",
                 f"imei={IMEI}&name=Wang+Xiaoming&blank=&lat=39.98312".encode(), [
                     ("body", "body.form.imei", IMEI),
                     ("body", "body.form.name", "Wang Xiaoming"),
                     ("body", "body.form.lat", "39.98312"),
                 ], id="form"),
    pytest.param("application/json",
                 f'{{"dev": {{"imei": "{IMEI}", "loc": [39.98312, 116.30791]}},'
                 f' "seq": 7, "acc": 1.50, "on": true, "gone": null}}'.encode(), [
                     ("body", "body.json.dev.imei", IMEI),
                     ("body", "body.json.dev.loc.0", "39.98312"),
                     ("body", "body.json.dev.loc.1", "116.30791"),
                     ("body", "body.json.seq", "7"),
                     ("body", "body.json.acc", "1.50"),
                 ], id="nested-json-numbers-as-sent"),
    pytest.param("", b' [{"a": "x"}, 2]', [
        ("body", "body.json.0.a", "x"), ("body", "body.json.1", "2"),
    ], id="json-sniffed-without-content-type"),
    pytest.param("text/plain", f"IMEI:{IMEI} battery 87%".encode(), [
        ("body", "body.text", f"IMEI:{IMEI} battery 87%"),
    ], id="plain-text"),
    pytest.param("application/x-ndjson", f'{{"imei": "{IMEI}"}}\n{{"n": 2}}\n'.encode(), [
        ("body", "body.json.0.imei", IMEI), ("body", "body.json.1.n", "2"),
    ], id="ndjson"),
    pytest.param("application/json", f'{{"a": 1}}{{"imei": "{IMEI}"}}{{"b": "x'.encode(), [
        ("body", "body.json.0.a", "1"), ("body", "body.json.1.imei", IMEI),
        ("opaque", "body.json", "JSON cut short after 43 characters"),
    ], id="back-to-back-json-cut-short"),
    pytest.param("application/json", b'{"a": 1} trailing words', [
        ("body", "body.text", '{"a": 1} trailing words'),
    ], id="json-then-text-is-text"),
    pytest.param("application/json", b"{not json", [("body", "body.text", "{not json")],
                 id="broken-json-kept-as-text"),
    pytest.param("application/json", f'{{"imei": "{IMEI}", "n'.encode(), [
        ("opaque", "body.json", "JSON cut short after 30 characters; read as text"),
        ("body", "body.text", f'{{"imei": "{IMEI}", "n'),
    ], id="json-cut-short-noted"),
    pytest.param("application/json", b"", [], id="empty-body"),
])
def test_body_fields(content_type: str, body: bytes, expected: list) -> None:
    t = tx(path="/", headers=(), content_type=content_type, body=body)
    assert _fields(t) == expected


def test_default_transmission_is_json_post() -> None:
    assert _fields(tx()) == [
        ("url", "url.path.0", "api"), ("url", "url.path.1", "v1"),
        ("url", "url.path.2", "report"),
        ("body", "body.json.imei", IMEI), ("body", "body.json.battery", "87"),
    ]


def test_huge_form_is_cut_at_max_fields() -> None:
    body = "&".join(f"k{i}=v{i}" for i in range(MAX_FIELDS * 3)).encode()
    fields = extract_http(tx(path="/", headers=(), body=body,
                             content_type="application/x-www-form-urlencoded"))
    values = [f for f in fields if f.location != OPAQUE]
    assert len(values) == MAX_FIELDS  # the host name is one of them
    assert values[-1].path == f"body.form.k{MAX_FIELDS - 2}"
    assert [f.location for f in fields[MAX_FIELDS:]] == [OPAQUE]


@pytest.mark.parametrize(("headers", "body", "content_type", "expected"), [
    pytest.param((), gzip.compress(json.dumps({"imei": IMEI}).encode()), "application/json",
                 [("body.json.imei", IMEI, ("gzip",))], id="undeclared-gzip-json"),
    pytest.param((("Content-Encoding", "gzip"),),
                 gzip.compress(f"imei={IMEI}".encode()), "application/x-www-form-urlencoded",
                 [("body.form.imei", IMEI, ("gzip",))], id="gzip-form-left-encoded"),
    pytest.param((), b"--b\r\nContent-Disposition: form-data; name=\"v\"; filename=\"a.amr\""
                 b"\r\n\r\n#!AMR\n\x00\x01\r\n--b--\r\n", "multipart/form-data; boundary=b",
                 [("body.multipart.v.filename", "a.amr", ()),
                  ("body.multipart.v", "audio/amr", ())], id="multipart-voice"),
    pytest.param((), b"\x0a\x0f" + IMEI.encode(), "application/x-protobuf",
                 [("body.pb.1", IMEI, ())], id="protobuf"),
])
def test_body_formats(headers: tuple, body: bytes, content_type: str, expected: list) -> None:
    fields = _http(tx(path="/", headers=headers, body=body, content_type=content_type))
    assert [(f.path, f.value, f.encoding) for f in fields if f.location != "header"] == expected


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=1024), content_type=st.sampled_from([
    "", "application/json", "application/x-www-form-urlencoded", "multipart/form-data; b=",
    "multipart/form-data; boundary=--", "application/x-protobuf", "text/xml"]),
    auth=st.text(max_size=64), agent=st.text(max_size=64))
def test_any_body_and_headers_never_raise(body: bytes, content_type: str, auth: str,
                                          agent: str) -> None:
    fields = extract_http(tx(path="/", body=body, content_type=content_type,
                             headers=(("Authorization", auth), ("User-Agent", agent))))
    assert len(fields) <= MAX_FIELDS + 1
    assert all(isinstance(f.value, str) for f in fields)


@pytest.mark.parametrize(("depth", "reason"), [
    pytest.param(100, "nested more than 64 deep, the rest not read", id="past-walk-limit"),
    pytest.param(100_000, "JSON nested too deep to parse", id="past-parser-limit"),
])
def test_deeply_nested_json_is_noted_opaque_not_raised(depth: int, reason: str) -> None:
    body = b'{"a":' * depth + f'"{IMEI}"'.encode() + b"}" * depth
    fields = _http(tx(path="/", headers=(), body=body))
    assert [(f.location, f.value) for f in fields if f.location == OPAQUE] == [(OPAQUE, reason)]
    assert all(f.location in ("body", OPAQUE) for f in fields)


@pytest.mark.parametrize(("coding", "packed", "chain"), [
    pytest.param("br", brotli.compress(IMEI_FORM), ("brotli",), id="br"),
    pytest.param("deflate", zlib.compress(IMEI_FORM), ("zlib",), id="deflate-zlib"),
    pytest.param("deflate", zlib.compress(IMEI_FORM)[2:-4], ("deflate",), id="deflate-raw"),
    pytest.param("gzip, br", brotli.compress(gzip.compress(IMEI_FORM)), ("brotli", "gzip"),
                 id="two-codings-last-first"),
    pytest.param("gzip", IMEI_FORM, (), id="already-decoded-by-mitmproxy"),
])
def test_declared_content_encoding_is_undone_within_limits(coding: str, packed: bytes,
                                                           chain: tuple) -> None:
    fields = _http(tx(path="/", headers=(("Content-Encoding", coding),), body=packed,
                             content_type="application/x-www-form-urlencoded"))
    assert [(f.path, f.value, f.encoding) for f in fields if f.location == "body"] == [
        ("body.form.imei", IMEI, chain)]


def test_declared_brotli_bomb_is_opaque() -> None:
    bomb = brotli.compress(bytes(64 * 1024 * 1024), quality=1)
    fields = _http(tx(path="/", headers=(("Content-Encoding", "br"),), body=bomb))
    assert [(f.location, f.path) for f in fields if f.location != "header"] == [
        (OPAQUE, "body")]


def test_json_within_depth_limit_is_walked() -> None:
    body = b'{"a":' * 60 + f'"{IMEI}"'.encode() + b"}" * 60
    (field,) = _http(tx(path="/", headers=(), body=body))
    assert field.path == "body.json" + ".a" * 60
    assert field.value == IMEI


@pytest.mark.parametrize(("host", "expected"), [
    pytest.param(f"{IMEI}.t.example", [("url", "url.host", f"{IMEI}.t.example")],
                 id="imei-label"),
    pytest.param("API.acme-watch.example.", [("url", "url.host", "API.acme-watch.example")],
                 id="trailing-dot-dropped"),
    pytest.param("203.0.113.10", [], id="ipv4-literal-names-no-one"),
    pytest.param("[2001:db8::1]", [], id="ipv6-literal-names-no-one"),
    pytest.param("", [], id="no-host"),
])
def test_host_name_is_a_field(host: str, expected: list) -> None:
    """A device may put a value in a label of the host it calls (a per-device subdomain)."""
    fields = extract_http(tx(host=host, path="/", body=b"", headers=()))
    assert [(f.location, f.path, f.value) for f in fields if f.path == "url.host"] == expected


@pytest.mark.parametrize("host", [
    "203.0.113.10", "203.0.113.10.", "[2001:db8::1]", "2001:db8::1", "fe80::1%eth0",
    "::ffff:1.2.3.4", "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", "1..2.3", "", ".",
    "\u0661.\u0662.\u0663.\u0664", "\uff11.2.3.4", "1.2.3.4a", "a.example", "x:y",
    " 10.0.0.1 ", "[10.0.0.1]", "1e2.3.4.5", "0x1.2.3.4",
])
def test_host_name_leaves_out_what_ip_address_takes(host: str) -> None:
    """An IP literal names no one, whatever its shape: the same as asking ``ip_address``."""
    import ipaddress

    from auditor.extract.http import _host_name

    bare = host.strip().rstrip(".").strip("[]")
    try:
        ipaddress.ip_address(bare)
        expected = ""
    except ValueError:
        expected = bare
    assert _host_name(tx(host=host, path="/", body=b"", headers=())) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.:abcdefx%[] \u0661\uff11", max_size=24))
def test_any_host_is_left_out_exactly_when_ip_address_takes_it(host: str) -> None:
    test_host_name_leaves_out_what_ip_address_takes(host)


def _body_one_at_a_time(data: bytes, content_type: str, coding: str) -> list:
    """``fields_from_bytes`` as it was, taking the sniffer's fields one by one."""
    limit, out, encoding = bodies_module.MAX_FIELDS, [], ()
    with limits.current_budget().share() as part:
        ctx = ReadContext("body", part, bodies_module.read)
        try:
            data, encoding = bodies_module._undo_codings(data, coding, ctx, "body", (), out)
            for f in bodies_module.read(data, "body", ctx, encoding, content_type, 0):
                if len(out) >= limit:
                    out.append(Field(OPAQUE, "body", f"more than {limit} fields, the rest not "
                                     "read", encoding))
                    break
                out.append(f)
        except limits.Limit as e:
            out.append(Field(OPAQUE, e.path, e.reason, encoding))
    return out


def _taken_one_at_a_time(t) -> tuple[list, int]:
    """``extract_http`` as it was: the fields taken lazily one by one, stopping at the one
    past the limit; and the work the message's budget had left."""
    def every():
        yield from http_module._head_fields(t)
        if t.body:
            coding = ", ".join(v for k, v in t.headers if k.lower() == "content-encoding")
            yield from _body_one_at_a_time(t.body, t.content_type, coding)

    fields: list = []
    with limits.message_budget() as budget:
        for f in every():
            if len(fields) >= http_module.MAX_FIELDS:
                fields.append(Field(OPAQUE, "request", f"more than {http_module.MAX_FIELDS} "
                                    "fields, the rest not read"))
                break
            fields.append(f)
    return fields, budget.work


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 6, 7, 8, 12])
@pytest.mark.parametrize("headers", [0, 1, 3, 5, 6, 9])
@pytest.mark.parametrize("body", [
    b"", b'{"a": "1", "b": "2", "c": "3"}', b"a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8", b"[]",
    b"\x00\x01", b'{"a": [' + b", ".join(b'{"k": "%d", "v": "x"}' % i for i in range(8)) + b"]}",
])
@pytest.mark.parametrize("path", ["/", "/api/v1/report"])
def test_the_field_limit_stops_where_taking_fields_one_at_a_time_stopped(
        monkeypatch, limit, headers, body, path):
    """``extract_http`` and ``fields_from_bytes`` add their fields a list at a time: the same
    fields, the same note past the limit, the body read (and charged) exactly when it was,
    on every side of every boundary (the limit made small)."""
    monkeypatch.setattr(http_module, "MAX_FIELDS", limit)
    monkeypatch.setattr(bodies_module, "MAX_FIELDS", limit)
    t = tx(headers=(("Host", "h.example"), *((f"X-H{i}", f"v{i}") for i in range(headers))),
           body=body, content_type="application/json" if body[:1] in (b"{", b"[") else "",
           path=path, url=f"https://h.example{path}")
    with limits.message_budget() as budget:
        got = extract_http(t)
    assert (got, budget.work) == _taken_one_at_a_time(t)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8, 9, 16, 17, 18])
@pytest.mark.parametrize("body", [
    b'{"a": [' + b", ".join(b'{"k": "%d", "v": "x"}' % i for i in range(8)) + b"]}",
    b"a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8", gzip.compress(b'{"a": "1", "b": "2"}'), b"",
])
@pytest.mark.parametrize("coding", ["", "gzip"])
def test_a_payload_stops_at_its_field_limit_where_it_did(monkeypatch, limit, body, coding):
    monkeypatch.setattr(bodies_module, "MAX_FIELDS", limit)
    ctype = "application/json" if body[:1] == b"{" else ""
    with limits.message_budget() as budget:
        got = bodies_module.fields_from_bytes(body, "body", "body", content_type=ctype,
                                              content_encoding=coding)
    with limits.message_budget() as reference:
        expected = _body_one_at_a_time(body, ctype, coding)
    assert (got, budget.work) == (expected, reference.work)
