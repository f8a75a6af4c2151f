"""findings.json: the machine interface (schema ``kidaudit.findings/1``), complete: every
transmission and detection of the session, however long it ran.

Written a piece at a time: a document built from a session streams its transmissions,
detections and opaque notes (``document.Replay``), each row masked as it is reached, and
each row is encoded alone and indented to its depth. The bytes are those
``json.dump(doc, indent=2, ensure_ascii=False)`` gives of the same document held whole (a
test compares them), without the document or the text ever held at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from auditor.report.document import Coverage, Document, FindingEntry, Replay, json_value

INDENT = "  "


def render(doc: Document, out: Path) -> None:
    with open(out, "w", encoding="utf-8") as fh:
        for piece in pieces(doc):
            fh.write(piece)
        fh.write("\n")


def pieces(doc: Document) -> Iterator[str]:
    """The document's JSON text, in order, in pieces of about one row each."""
    return _value(doc, 0)


def _value(value: object, depth: int) -> Iterator[str]:
    """A value at ``depth``: the document, its coverage and each finding as objects whose
    members are written one by one (they hold the long lists: a finding of a week's soak
    cites every message), a list or stream an item at a time, anything else encoded whole
    (a row: small)."""
    if isinstance(value, Document | Coverage | FindingEntry):
        yield from _object(value.json(), depth)
    elif isinstance(value, Replay | list | tuple):
        yield from _list(value, depth)
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=json_value)
        yield text.replace("\n", "\n" + INDENT * depth) if depth else text


def _object(members: dict[str, object], depth: int) -> Iterator[str]:
    if not members:
        yield "{}"
        return
    inner = "\n" + INDENT * (depth + 1)
    for i, (key, value) in enumerate(members.items()):
        yield ("{" if i == 0 else ",") + inner + json.dumps(key, ensure_ascii=False) + ": "
        yield from _value(value, depth + 1)
    yield "\n" + INDENT * depth + "}"


def _list(rows: Replay, depth: int) -> Iterator[str]:
    inner = "\n" + INDENT * (depth + 1)
    empty = True
    for row in rows:
        yield ("[" if empty else ",") + inner
        empty = False
        yield from _value(row, depth + 1)
    yield "[]" if empty else "\n" + INDENT * depth + "]"
