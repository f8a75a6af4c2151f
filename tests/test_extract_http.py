"""auditor/extract/http.py: every part of a request becomes (location, path, value) fields."""

from __future__ import annotations

import pytest

from auditor.extract.http import MAX_FIELDS, extract_http
from tests.factories import IMEI, tx


def _fields(t) -> list[tuple[str, str, str]]:
    return [(f.location, f.path, f.value) for f in extract_http(t)]


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
    ], id="names-lowercased"),
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
    fields = extract_http(tx(path="/", headers=(("Cookie", cookie),), body=b""))
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
    pytest.param("application/json", b"{not json", [("body", "body.text", "{not json")],
                 id="broken-json-kept-as-text"),
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
    assert len(fields) == MAX_FIELDS
    assert fields[-1].path == f"body.form.k{MAX_FIELDS - 1}"


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_json_does_not_raise(depth: int) -> None:
    body = b'{"a":' * depth + f'"{IMEI}"'.encode() + b"}" * depth
    fields = extract_http(tx(path="/", headers=(), body=body))
    assert all(f.location == "body" for f in fields)
    assert len(fields) <= 1


def test_json_within_depth_limit_is_walked() -> None:
    body = b'{"a":' * 60 + f'"{IMEI}"'.encode() + b"}" * 60
    (field,) = extract_http(tx(path="/", headers=(), body=body))
    assert field.path == "body.json" + ".a" * 60
    assert field.value == IMEI
