"""Media uploads: a voice message or a photo, whatever it shows, is the child's data.

Extractors report an upload they recognised (a multipart part, an AMR frame in a watch's
``TK`` message, a JPEG body) as a field with location ``media`` and its MIME type as value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from auditor.model import Detection, Field

CONFIDENCE = 0.9

# MIME top-level type -> category (DESIGN.md "Categories").
MEDIA_TYPES: dict[str, str] = {"audio": "media.voice", "image": "media.photo"}


def find_media(tx_id: int, fields: Iterable[Field]) -> Iterator[Detection]:
    for f in fields:
        if f.location != "media":
            continue
        category = MEDIA_TYPES.get(f.value.split("/", 1)[0].strip().lower())
        if category is not None:
            yield Detection(tx_id, category, "pattern", f.location, f.path, f.encoding, "",
                            f.value, CONFIDENCE)
