"""auditor/extract/multipart.py: each part read as a format of its own, declared or sniffed."""

from __future__ import annotations

import gzip

import pytest

from auditor.extract.bodies import fields_from_bytes
from tests.factories import CHILD_NAME, IMEI
from tests.wire import AMR, JPEG, JSON_BODY, body_chain, body_fields, form_part, multipart

BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
UPLOAD = multipart(
    BOUNDARY,
    (form_part("imei"), IMEI.encode()),
    (form_part("meta", ctype="application/json"), JSON_BODY),
    (form_part("voice", f"{IMEI}_0001.amr", "application/octet-stream"), AMR),
    (form_part("photo", "avatar.jpg", "image/jpeg"), JPEG),
    (form_part("log", "log.txt.gz", "application/gzip"), gzip.compress(b"child: " +
                                                                       CHILD_NAME.encode())),
)


@pytest.mark.parametrize("content_type", [
    pytest.param(f"multipart/form-data; boundary={BOUNDARY}", id="declared"),
    pytest.param(f'multipart/form-data; boundary="{BOUNDARY}"', id="quoted-boundary"),
    pytest.param("application/octet-stream", id="sniffed"),
])
def test_multipart_each_part(content_type: str) -> None:
    assert body_chain(UPLOAD, content_type) == [
        ("body.multipart.imei", IMEI, ()),
        ("body.multipart.meta.json.imei", IMEI, ()),
        ("body.multipart.meta.json.name", CHILD_NAME, ()),
        ("body.multipart.voice.filename", f"{IMEI}_0001.amr", ()),
        ("body.multipart.voice", "audio/amr", ()),
        ("body.multipart.photo.filename", "avatar.jpg", ()),
        ("body.multipart.photo", "image/jpeg", ()),
        ("body.multipart.log.filename", "log.txt.gz", ()),
        ("body.multipart.log", f"child: {CHILD_NAME}", ("gzip",)),
    ]
    media = [f for f in fields_from_bytes(UPLOAD, "body", "body", content_type=content_type)
             if f.location == "media"]
    assert [f.path for f in media] == ["body.multipart.voice", "body.multipart.photo"]


def test_a_bomb_in_one_part_leaves_the_other_parts_read() -> None:
    body = multipart("b1", (form_part("a", "a.gz"), gzip.compress(bytes(8 * 1024 * 1024))),
                     (form_part("imei"), IMEI.encode()))
    assert body_fields(body, "multipart/form-data; boundary=b1") == [
        ("body", "body.multipart.a.filename", "a.gz"),
        ("opaque", "body.multipart.a", "gzip ratio over 100:1 (decompression bomb)"),
        ("body", "body.multipart.imei", IMEI),
    ]


def test_multipart_rfc5987_filename_and_unnamed_part() -> None:
    body = multipart("b1", ({"Content-Disposition":
                             "form-data; name=\"f\"; filename*=UTF-8''%E5%B0%8F%E6%98%8E.jpg"},
                            JPEG), ({}, b"hello"))
    assert body_fields(body, "multipart/form-data; boundary=b1") == [
        ("body", "body.multipart.f.filename", "小明.jpg"),
        ("media", "body.multipart.f", "image/jpeg"),
        ("body", "body.multipart.part1", "hello"),
    ]
