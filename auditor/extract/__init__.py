"""Extraction: turn a transmission's raw parts into ``Field`` values.

One module per carrier (``http``, ``payload`` for raw TCP/UDP/WebSocket messages and DNS,
``watchproto`` for watch and tracker protocols) and one per body format (``json_body``,
``xml_body``, ``form``, ``multipart``, ``protobuf``, ``msgpack_body``, ``cbor_body``,
with ``compression``, ``media`` and ``text`` for what every format needs). ``bodies`` is
the sniffer that picks a format for any bytes; the limits they all share are in
``auditor.limits``.

``EXTRACTORS`` maps a transport to the function that reads it; a transport with no entry
is recorded but not looked into (the report lists it under coverage).
"""

from __future__ import annotations

from collections.abc import Callable

from auditor.extract.http import extract_http
from auditor.extract.payload import extract_dns, extract_payload
from auditor.model import Field, Transmission

EXTRACTORS: dict[str, Callable[[Transmission], list[Field]]] = {
    "http": extract_http,
    "https": extract_http,
    "tcp": extract_payload,
    "udp": extract_payload,
    "websocket": extract_payload,
    "dns": extract_dns,
}


def extract(tx: Transmission) -> list[Field]:
    reader = EXTRACTORS.get(tx.transport)
    return reader(tx) if reader is not None else []


__all__ = ["EXTRACTORS", "extract", "extract_http"]
