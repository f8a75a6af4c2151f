"""Audio and images, told by their file signatures: a voice note or a photo is recorded
as its MIME type (location ``MEDIA``), never read as text."""

from __future__ import annotations

MEDIA = "media"  # the location of a field whose value is a sniffed MIME type

# (offset, magic, MIME type), first match wins: file signatures as data (STYLE.md 5).
# AMR: RFC 4867 section 5; Ogg: RFC 3533; RIFF/WAVE and WebP share "RIFF"; HEIC/AVIF and
# M4A are ISO-BMFF "ftyp" boxes told apart by their major brand.
MEDIA_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"#!AMR-WB\n", "audio/amr-wb"),
    (0, b"#!AMR\n", "audio/amr"),
    (0, b"#!SILK_V3", "audio/silk"),
    (1, b"#!SILK_V3", "audio/silk"),  # WeChat-style voice notes prefix one byte
    (0, b"OggS", "audio/ogg"),
    (8, b"WAVE", "audio/wav"),
    (8, b"WEBP", "image/webp"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (4, b"ftypheic", "image/heic"),
    (4, b"ftypheix", "image/heic"),
    (4, b"ftyphevc", "image/heic"),
    (4, b"ftypheim", "image/heic"),
    (4, b"ftypheis", "image/heic"),
    (4, b"ftypmif1", "image/heic"),
    (4, b"ftypmsf1", "image/heic"),
    (4, b"ftypavif", "image/avif"),
    (4, b"ftypM4A ", "audio/mp4"),
)


# The signatures ``data`` may match, by its first byte, in the table's order: one at
# offset 0 only when it starts with that byte, every other one. Each body is sniffed, and
# most start with ``{`` or a letter: half the table is then never compared.
_BY_FIRST_BYTE: tuple[tuple[tuple[int, bytes, str], ...], ...] = tuple(
    tuple(sig for sig in MEDIA_SIGNATURES if sig[0] != 0 or sig[1][0] == first)
    for first in range(256))


def sniff_media(data: bytes) -> str | None:
    """The audio or image MIME type ``data`` starts with, from its magic bytes."""
    return sniff_with(data, _BY_FIRST_BYTE[data[0]]) if data else None


def sniff_with(data: bytes, signatures: tuple[tuple[int, bytes, str], ...]) -> str | None:
    """``sniff_media`` comparing ``signatures`` (the tests give it the whole table, the
    first-byte narrowing's reference)."""
    for offset, magic, mime in signatures:
        if data[offset:offset + len(magic)] == magic:
            if mime == "audio/ogg" and b"OpusHead" in data[:80]:
                return "audio/opus"
            if magic == b"WAVE" or magic == b"WEBP":
                return mime if data[:4] == b"RIFF" else None
            return mime
    if len(data) >= 4 and data[0] == 0xFF:
        if data[1] & 0xF6 == 0xF0:  # ADTS: 12-bit sync, layer 00 (ISO 14496-3 1.A.2)
            return "audio/aac"
        if data[1] & 0xE0 == 0xE0 and data[1] & 0x06 and data[2] & 0xF0 != 0xF0:
            return "audio/mpeg"  # MPEG audio frame sync, layer I-III, valid bitrate
    return None
