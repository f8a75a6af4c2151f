"""XML documents: elements' text and attributes as fields (``prefix.xml.root.a``).

Entity declarations are never expanded (billion laughs): a document that declares one is
noted opaque, not read.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from xml.etree import ElementTree

from auditor.extract.reading import Encoding, ReadContext, too_deep
from auditor.limits import MAX_TREE_DEPTH, NODE_COST, Limit, segment
from auditor.model import Field


def looks_like_xml(stripped: str) -> bool:
    return stripped[:1] == "<"


def read_xml(data: bytes, prefix: str, ctx: ReadContext, encoding: Encoding, nest: int
             ) -> Iterator[Field] | None:
    """Elements' text and attributes; paths are local names (namespaces dropped), repeated
    siblings share a path. None when ``data`` does not parse as XML."""
    if re.search(rb"<!ENTITY", data, re.IGNORECASE):
        raise Limit(prefix, "XML with entity declarations, not expanded")
    ctx.budget.spend(len(data), prefix)
    parser = ElementTree.XMLParser()
    try:
        parser.feed(data)
        root = parser.close()
    except (ElementTree.ParseError, ValueError, LookupError):
        return None

    def local(tag: object) -> str:
        return segment(tag.rpartition("}")[2]) if isinstance(tag, str) else "?"

    def walk() -> Iterator[Field]:
        stack = [(root, f"{prefix}.xml.{local(root.tag)}", 0)]
        while stack:
            elem, path, depth = stack.pop()
            ctx.budget.spend(NODE_COST + len(path), path)
            for name, value in elem.attrib.items():
                ctx.budget.spend(NODE_COST + len(path), path)
                yield Field(ctx.location, f"{path}.@{local(name)}", value, encoding)
            text = (elem.text or "").strip()
            if text:
                yield Field(ctx.location, path, text, encoding)
            if depth < MAX_TREE_DEPTH:
                stack.extend((child, f"{path}.{local(child.tag)}", depth + 1)
                             for child in reversed(elem))
            elif len(elem):
                yield too_deep(path, encoding)
    return walk()


def read_xml_text(text: str, data: bytes, prefix: str, ctx: ReadContext, encoding: Encoding,
                  nest: int) -> Generator[Field, None, bool]:
    """A text body that opens like XML; False when it does not parse, so the sniffer reads
    the text some other way."""
    found = read_xml(data, prefix, ctx, encoding, nest)
    if found is None:
        return False
    yield from found
    return True
