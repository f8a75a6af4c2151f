"""Whether bytes are text, strictly (a format is then sniffed from the text) or loosely
(what is left when no format fits: a Chinese device's GB18030, a few bad bytes)."""

from __future__ import annotations

import re

_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"
TEXT_BYTES = bytes(b for b in range(256) if b not in _CONTROL)
STRINGS = re.compile(rb"[\x20-\x7e]{4,}")  # runs of printable ASCII inside binary data


def as_text(data: bytes) -> str | None:
    """``data`` as UTF-8 text when it is text: valid UTF-8, no control bytes but tab/CR/LF."""
    if data.translate(None, TEXT_BYTES):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def loose_text(data: bytes) -> str | None:
    """Text in UTF-8 or GB18030 (what Chinese devices often send) with a few bad bytes."""
    if len(data.translate(None, TEXT_BYTES)) > len(data) // 20:
        return None
    for codec in ("utf-8", "gb18030"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    text = data.decode("utf-8", errors="replace")
    return text if text.count("\ufffd") <= len(text) // 20 else None
