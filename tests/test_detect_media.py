"""auditor/detect/media.py: voice and photo uploads reported by the extractors."""

from __future__ import annotations

import pytest

from auditor.detect.media import find_media
from auditor.model import Field


@pytest.mark.parametrize(("field", "expected"), [
    (Field("media", "body.multipart.voice", "audio/amr"), ["media.voice"]),
    (Field("media", "payload.tk", "audio/AMR"), ["media.voice"]),
    (Field("media", "body", "image/jpeg"), ["media.photo"]),
    (Field("media", "body", "video/mp4"), []),
    (Field("body", "body.json.type", "audio/amr"), []),
])
def test_media(field: Field, expected: list[str]) -> None:
    found = list(find_media(2, [field]))
    assert [d.category for d in found] == expected
    assert all((d.method, d.transmission, d.field) == ("pattern", 2, field.path) for d in found)
