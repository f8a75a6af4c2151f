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
import operator
import tempfile
from collections.abc import Iterator
from pathlib import Path

from auditor.model import Ids
from auditor.report.document import (
    Coverage,
    DetectionEntry,
    Document,
    FindingEntry,
    RecipientEntry,
    Replay,
    TransmissionEntry,
    iso_text,
    json_value,
)

INDENT = "  "
BATCH = 512  # pieces of text (half as many rows) joined before they are handed on
HELD = 1 << 18  # characters of rows' text held before they are written (a piece may be a batch)


def render(doc: Document, out: Path, written: Rows | None = None) -> None:
    """``written``: the document's transmissions and detections, written already as the
    session's rows were made (``Rows``): copied in, not walked again."""
    with open(out, "w", encoding="utf-8") as fh:
        for piece in pieces(doc) if written is None else _object(
                {**doc.json(), **written.lists()}, 0):
            fh.write(piece)
        fh.write("\n")


class Rows:
    """The text of the transmissions and detections lists, written as a session's rows are
    made (``document.Survey(keep=)``, on the rules' walk: ``write_outputs``), so that the
    end of a run copies them in instead of encoding every row then, when nothing else
    runs beside it. Each list is an unnamed file in the folder the reports are written
    into (as the report spool is), gone when closed."""

    NAMES = ("transmissions", "detections")
    DEPTH = 1  # where the document holds them

    def __init__(self, directory: Path) -> None:
        self._files = {name: tempfile.TemporaryFile(  # noqa: SIM115 - closed by close()
            "w+", encoding="utf-8", dir=directory) for name in self.NAMES}
        self._empty = dict.fromkeys(self.NAMES, True)
        # Each list's text not yet written, a message's rows (or a batch's) a piece:
        # written ``BATCH`` pieces or ``HELD`` characters at a time (a file write a message
        # was a tenth of the cost of its rows).
        self._pending: dict[str, list[str]] = {name: [] for name in self.NAMES}
        self._held = dict.fromkeys(self.NAMES, 0)  # characters pending, a batch's text

    def __enter__(self) -> Rows:
        return self

    def __exit__(self, *exc: object) -> None:
        for fh in self._files.values():
            fh.close()

    def add(self, row: tuple[object, list, list]) -> None:
        """One transmission's row and its detections' rows (a ``Survey`` row)."""
        transmission, detections = row_texts(row)
        self.add_joined("transmissions", transmission)
        self.add_joined("detections", joined(detections))

    def add_joined(self, name: str, text: str) -> None:
        """Rows' texts (``row_texts``) as ``joined`` joins them, written as ``_list`` writes
        its items: each after a comma (the list's first after its bracket), on its line.
        A batch of rows is joined as one: another process of ``analyze --jobs`` may have
        made the text (``report.rows``)."""
        if not text:
            return
        pending = self._pending[name]
        pending.append(("[" if self._empty[name] else ",") + _ROW_START + text)
        self._empty[name] = False
        self._held[name] += len(text)
        if len(pending) >= BATCH or self._held[name] >= HELD:
            self._flush(name)

    def _flush(self, name: str) -> None:
        pending = self._pending[name]
        if pending:
            self._files[name].write("".join(pending))
            pending.clear()
            self._held[name] = 0

    def lists(self) -> dict[str, _Written]:
        return {name: _Written(self, name) for name in self.NAMES}

    def text(self, name: str) -> Iterator[str]:
        """The list's text, as ``_list`` ends it."""
        if self._empty[name]:
            yield "[]"
            return
        self._flush(name)
        fh = self._files[name]
        fh.flush()
        fh.seek(0)
        while piece := fh.read(1 << 16):
            yield piece
        yield "\n" + INDENT * self.DEPTH + "]"


_ROW_START = "\n" + INDENT * (Rows.DEPTH + 1)  # what starts a row of the lists on its line


def row_texts(row: tuple[object, list, list]) -> tuple[str, list[str]]:
    """A ``Survey`` row's text in the document's lists: its transmission's and each of its
    detections'."""
    depth = Rows.DEPTH + 1
    return encode(row[0], depth), [_detection(d, depth) if type(d) is DetectionEntry
                                   else encode(d, depth) for d in row[1]]


def joined(texts: list[str]) -> str:
    """Rows' texts of one list as ``_list`` writes them one after another (the first's
    comma or bracket aside: ``Rows.add_joined``)."""
    return ("," + _ROW_START).join(texts)


class _Written:
    """A list of the document written already (``Rows``)."""

    def __init__(self, rows: Rows, name: str) -> None:
        self.rows, self.name = rows, name


def pieces(doc: Document) -> Iterator[str]:
    """The document's JSON text, in order, in pieces of a few hundred rows at most."""
    return _value(doc, 0)


def _value(value: object, depth: int) -> Iterator[str]:
    """A value at ``depth``: the document, its coverage and each finding as objects whose
    members are written one by one (they hold the long lists: a finding of a week's soak
    cites every message), a list or stream an item at a time, anything else encoded whole
    (a row: small)."""
    if isinstance(value, Document | Coverage | FindingEntry):
        yield from _object(value.json(), depth)
    elif isinstance(value, _Written):
        assert depth == Rows.DEPTH, "a list written for another place"
        yield from value.rows.text(value.name)
    elif isinstance(value, Ids):
        yield from _ids(value, depth)
    elif isinstance(value, Replay | list | tuple):
        yield from _list(value, depth)
    else:
        yield encode(value, depth)


def _object(members: dict[str, object], depth: int) -> Iterator[str]:
    if not members:
        yield "{}"
        return
    inner = "\n" + INDENT * (depth + 1)
    for i, (key, value) in enumerate(members.items()):
        yield ("{" if i == 0 else ",") + inner + json.dumps(key, ensure_ascii=False) + ": "
        yield from _value(value, depth + 1)
    yield "\n" + INDENT * depth + "}"


def _ids(ids: Ids, depth: int) -> Iterator[str]:
    """A finding's ids as ``_list`` writes them (ints, each on its line), ``BATCH`` ids
    joined at a time without a call an id: a finding may cite every message."""
    if not len(ids):
        yield "[]"
        return
    inner = "\n" + INDENT * (depth + 1)
    between = "," + inner
    for start in range(0, len(ids), BATCH):
        yield (between if start else "[" + inner) + between.join(
            map(int.__repr__, ids[start:start + BATCH]))
    yield "\n" + INDENT * depth + "]"


def _list(rows: Replay, depth: int) -> Iterator[str]:
    """Rows a batch at a time: an item that is a row is encoded at once, and each batch's
    text (a few hundred rows) is handed on joined."""
    inner = "\n" + INDENT * (depth + 1)
    batch: list[str] = []
    empty = True
    for row in rows:
        batch.append(("[" if empty else ",") + inner)
        empty = False
        if isinstance(row, Document | Coverage | FindingEntry | Replay | list | tuple | Ids):
            yield "".join(batch)
            batch = []
            yield from _value(row, depth + 1)
            continue
        batch.append(encode(row, depth + 1))
        if len(batch) >= BATCH:
            yield "".join(batch)
            batch = []
    batch.append("[]" if empty else "\n" + INDENT * depth + "]")
    yield "".join(batch)


# -- one row's text ------------------------------------------------------------------------
# ``json.dumps(indent=...)`` runs the encoder written in Python, a few calls per value, and
# findings.json is mostly rows of a few values: the same text, made here with a call per
# container and the C encoder's string escaping. Each branch is the one ``json.encoder``'s
# ``_make_iterencode`` takes, in its order.

_STRING = json.encoder.encode_basestring  # ensure_ascii=False; the C function when built
_CONSTANTS = {None: "null", True: "true", False: "false"}
_FLOATS = {float("inf"): "Infinity", float("-inf"): "-Infinity"}


def encode(value: object, depth: int = 0) -> str:
    """``value`` as ``json.dumps(value, indent=2, ensure_ascii=False, default=json_value)``
    writes it, indented as if it stood at ``depth``."""
    kind = type(value)
    if kind is str:  # the common types by identity first: most values are these
        return _STRING(value)
    if kind is DetectionEntry:  # most rows of the file
        return _detection(value, depth)  # type: ignore[arg-type]
    if kind is TransmissionEntry:
        return _transmission(value, depth)  # type: ignore[arg-type]
    if kind is int:
        return int.__repr__(value)
    if kind is dict:
        return _dict(value, depth) if value else "{}"  # type: ignore[arg-type]
    if value is None or value is True or value is False:
        return _CONSTANTS[value]
    if isinstance(value, str):
        return _STRING(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = "\n" + INDENT * (depth + 1)
        return ("[" + inner + ("," + inner).join([encode(v, depth + 1) for v in value])
                + "\n" + INDENT * depth + "]")
    if isinstance(value, dict):
        return _dict(value, depth) if value else "{}"
    return encode(json_value(value), depth)


def _dict(value: dict, depth: int) -> str:
    inner = "\n" + INDENT * (depth + 1)
    return ("{" + inner + ("," + inner).join([
        (_STRING(k) if type(k) is str else _key(k)) + ": " + (
            _STRING(v) if type(v) is str else encode(v, depth + 1))
        for k, v in value.items()]) + "\n" + INDENT * depth + "}")


def _detection(d: DetectionEntry, depth: int) -> str:
    """A detection's row as ``_dict(d.json(), depth)`` writes it, from a template of its
    members made once per depth, when its values are of the types a session gives them;
    any other row (one read back from a file, a damaged one) by ``_dict``."""
    tid, category, method, location, field, enc, key, value, confidence = _DET_FIELDS(d)
    if not (type(tid) is int and type(category) is str and type(method) is str
            and type(location) is str and type(field) is str and type(key) is str
            and type(value) is str and (confidence is None or type(confidence) is float)
            and (type(enc) is tuple or type(enc) is list)
            and (not enc or all(type(e) is str for e in enc))):
        return _dict(d.json(), depth)
    template = _DETECTION.get(depth)
    if template is None:
        template = _DETECTION[depth] = _template(_DET_KEYS, depth)
    if enc:
        inner = "\n" + INDENT * (depth + 2)
        encoding = ("[" + inner + ("," + inner).join([_STRING(e) for e in enc]) + "\n"
                    + INDENT * (depth + 1) + "]")
    else:
        encoding = "[]"
    return template % (int.__repr__(tid), _STRING(category), _STRING(method),
                       _STRING(location), _STRING(field), encoding, _STRING(key),
                       _STRING(value), "null" if confidence is None
                       # a finite float (x - x is 0) as repr writes it; else as json does
                       else float.__repr__(confidence) if confidence - confidence == 0
                       else _float(confidence))


_DET_KEYS = ("transmission", "category", "method", "location", "field", "encoding",
             "profile_key", "value", "confidence")
_DET_FIELDS = operator.attrgetter(*_DET_KEYS)
_DETECTION: dict[int, str] = {}  # a detection row's template by depth (a handful)
_TX_KEYS = ("id", "ts", "transport", "direction", "host", "ip", "port", "method", "url",
            "inspected", "bytes", "recipient", "consent")
_RECIPIENT_KEYS = ("domain", "organization", "party", "country", "sdk", "sdk_type")
# a transmission row's template by depth and whether it names a probe case
_TRANSMISSION: dict[tuple[int, bool], str] = {}
_RECIPIENT: dict[int, str] = {}


def _transmission(tx: TransmissionEntry, depth: int) -> str:
    """A transmission's row as ``_dict(tx.json(), depth)`` writes it, from templates made
    once per depth, when its values are of the types a session gives them (its consent a
    dict of texts); any other row by ``_dict``."""
    r, consent, port, ts = tx.recipient, tx.consent, tx.port, tx.ts
    if not (type(tx.id) is int and type(tx.transport) is str and type(tx.direction) is str
            and type(tx.host) is str and type(tx.ip) is str and type(tx.method) is str
            and type(tx.url) is str and type(tx.inspected) is bool
            and type(tx.bytes) is int and type(tx.probe) is str
            and (port is None or type(port) is int) and type(r) is RecipientEntry
            and type(r.domain) is str and type(r.party) is str
            and (r.organization is None or type(r.organization) is str)
            and (r.country is None or type(r.country) is str)
            and (r.sdk is None or type(r.sdk) is str)
            and (r.sdk_type is None or type(r.sdk_type) is str)
            and type(consent) is dict
            and all(type(k) is str and type(v) is str for k, v in consent.items())):
        return _dict(tx.json(), depth)
    probe = bool(tx.probe)
    template = _TRANSMISSION.get((depth, probe))
    if template is None:
        template = _TRANSMISSION[depth, probe] = _template(
            _TX_KEYS + ("probe",) * probe, depth)
    recipient = _RECIPIENT.get(depth + 1)
    if recipient is None:
        recipient = _RECIPIENT[depth + 1] = _template(_RECIPIENT_KEYS, depth + 1)
    if consent:
        inner = "\n" + INDENT * (depth + 2)
        states = ("{" + inner + ("," + inner).join([
            _STRING(k) + ": " + _STRING(v) for k, v in consent.items()])
            + "\n" + INDENT * (depth + 1) + "}")
    else:
        states = "{}"
    values = (int.__repr__(tx.id), _STRING(iso_text(ts)), _STRING(tx.transport),
              _STRING(tx.direction), _STRING(tx.host), _STRING(tx.ip),
              "null" if port is None else int.__repr__(port), _STRING(tx.method),
              _STRING(tx.url), "true" if tx.inspected else "false", int.__repr__(tx.bytes),
              recipient % tuple("null" if v is None else _STRING(v) for v in (
                  r.domain, r.organization, r.party, r.country, r.sdk, r.sdk_type)),
              states)
    return template % (values + (_STRING(tx.probe),) if probe else values)


def _template(keys: tuple[str, ...], depth: int) -> str:
    """``_dict``'s text of an object with these members at ``depth``, each value a ``%s``."""
    inner = "\n" + INDENT * (depth + 1)
    return ("{" + inner + ("," + inner).join(_STRING(k).replace("%", "%%") + ": %s"
                                             for k in keys) + "\n" + INDENT * depth + "}")


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    return _FLOATS.get(value) or float.__repr__(value)


def _key(key: object) -> str:
    """A member's name as json writes it: text as is, numbers and constants as text."""
    if isinstance(key, str):
        return _STRING(key)
    if isinstance(key, float):
        return _STRING(_float(key))
    if key is None or key is True or key is False:
        return _STRING(_CONSTANTS[key])
    if isinstance(key, int):
        return _STRING(int.__repr__(key))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
