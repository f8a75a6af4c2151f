"""auditor/extract/xml_body.py: elements and attributes as fields, entities never expanded."""

from __future__ import annotations

import pytest

from tests.factories import CHILD_NAME, IMEI, LAT, LON
from tests.wire import body_fields


@pytest.mark.parametrize(("xml", "expected"), [
    pytest.param(f'<req v="2"><dev imei="{IMEI}"><name>{CHILD_NAME}</name></dev></req>', [
        ("body.xml.req.@v", "2"), ("body.xml.req.dev.@imei", IMEI),
        ("body.xml.req.dev.name", CHILD_NAME),
    ], id="elements-and-attributes"),
    pytest.param('<?xml version="1.0"?><s:Envelope xmlns:s="urn:x"><s:Body><p:loc '
                 f'xmlns:p="urn:p" p:lat="{LAT}">{LON}</p:loc></s:Body></s:Envelope>', [
        ("body.xml.Envelope.Body.loc.@lat", str(LAT)),
        ("body.xml.Envelope.Body.loc", str(LON)),
    ], id="namespaces-dropped"),
    pytest.param("<a><b>1</b><b>2</b></a>", [("body.xml.a.b", "1"), ("body.xml.a.b", "2")],
                 id="repeated-siblings-share-a-path"),
    pytest.param("<a><b>unclosed</a>", [("body.text", "<a><b>unclosed</a>")],
                 id="broken-xml-kept-as-text"),
])
def test_xml(xml: str, expected: list) -> None:
    assert [(p, v) for _, p, v in body_fields(xml.encode(), "text/xml")] == expected


def test_xml_entities_are_never_expanded() -> None:
    lol = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
           b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>')
    assert body_fields(lol, "application/xml") == [
        ("opaque", "body", "XML with entity declarations, not expanded"),
    ]
