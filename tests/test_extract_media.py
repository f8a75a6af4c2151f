"""auditor/extract/media.py: audio and images told by their file signatures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.extract.media import MEDIA_SIGNATURES, sniff_media, sniff_with
from tests.wire import AMR, JPEG, JSON_BODY, body_fields

MEDIA = {
    "amr": (AMR, "audio/amr"),
    "amr-wb": (b"#!AMR-WB\n" + bytes(20), "audio/amr-wb"),
    "aac-adts": (b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(20), "audio/aac"),
    "mp3-id3": (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(20), "audio/mpeg"),
    "mp3-frame": (b"\xff\xfb\x90\x64" + bytes(20), "audio/mpeg"),
    "ogg-opus": (b"OggS\x00\x02" + bytes(22) + b"\x13OpusHead\x01\x01", "audio/opus"),
    "ogg-vorbis": (b"OggS\x00\x02" + bytes(22) + b"\x01vorbis", "audio/ogg"),
    "wav": (b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(20), "audio/wav"),
    "silk": (b"\x02#!SILK_V3" + bytes(20), "audio/silk"),
    "jpeg": (JPEG, "image/jpeg"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20), "image/png"),
    "webp": (b"RIFF\x24\x08\x00\x00WEBPVP8 " + bytes(20), "image/webp"),
    "heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(20), "image/heic"),
}



@pytest.mark.parametrize(("data", "mime"), [pytest.param(*v, id=k) for k, v in MEDIA.items()])
def test_whole_body_media_is_sniffed(data: bytes, mime: str) -> None:
    assert sniff_media(data) == mime
    assert body_fields(data, "application/octet-stream") == [("media", "body", mime)]


@pytest.mark.parametrize("data", [
    pytest.param(b"RIFF\x24\x08\x00\x00AVI LIST", id="riff-avi"),
    pytest.param(b"\xff\xd8", id="jpeg-too-short"),
    pytest.param(b"\x00\x00\x00\x18ftypisom", id="mp4-video"),
    pytest.param(JSON_BODY, id="json"),
])
def test_not_media(data: bytes) -> None:
    assert sniff_media(data) is None


def _crafted() -> list[bytes]:
    """Every signature at its offset, after each other signature's, cut short, and behind
    each possible first byte: where narrowing by the first byte could go wrong."""
    out = [b"", b"{", JSON_BODY, *(v[0] for v in MEDIA.values())]
    for offset, magic, _ in MEDIA_SIGNATURES:
        placed = bytes(offset) + magic + bytes(8)
        out += [placed, placed[:offset + len(magic) - 1], b"RIFF" + placed[4:],
                b"#" + placed[1:], b"\xff" + placed[1:]]
        for other_offset, other, _ in MEDIA_SIGNATURES:
            out.append(other + placed[len(other):] if other_offset == 0 else placed)
    out += [bytes([first]) + b"#!SILK_V3" + bytes(8) for first in range(256)]
    out += [bytes([0xFF, second, third, 0]) for second in range(256) for third in (0, 0xF0)]
    return out


@pytest.mark.parametrize("data", _crafted())
def test_narrowed_sniffing_finds_what_the_whole_table_found(data: bytes) -> None:
    assert sniff_media(data) == sniff_with(data, MEDIA_SIGNATURES)


@given(st.binary(max_size=40))
@settings(max_examples=500, deadline=None)
def test_narrowed_sniffing_of_any_bytes_finds_what_the_whole_table_found(data: bytes) -> None:
    assert sniff_media(data) == sniff_with(data, MEDIA_SIGNATURES)
