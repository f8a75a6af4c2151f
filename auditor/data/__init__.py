"""What the package ships, read when an edge asks for it (never at import).

The attribution in ``auditor.recipients`` is pure: it takes the SDK table as an argument.
Reading the table from the installed package, and naming the IP-to-country database the
report cites, are file reads, so they happen here, called by whoever builds a session's
pipeline (``Session``, the validation runner). ``README.md`` beside this file says where
each row comes from and why no third-party tracker list was copied.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from importlib import metadata, resources

from auditor.memo import memoised
from auditor.recipients import SdkEntry

SDK_CSV = "data/sdks.csv"
SDK_COLUMNS = ("domain", "organization", "sdk", "sdk_type", "source")

# What an SDK endpoint does with what it receives (the list, plus the three kinds
# children's devices also talk to). "speech" covers speech recognition, synthesis and AI
# assistants; "device-id" covers services that issue or resolve device / installation ids.
SDK_TYPES = frozenset({
    "analytics", "advertising", "attribution", "push", "crash", "location", "speech",
    "cdn", "device-id", "social", "webview",
})

# "vendor documentation:" the page names the host (or its pattern) as the SDK's endpoint;
# "vendor site:" the domain is the vendor's own, its SDK role was not checked against a
# page of the vendor's (README.md).
SOURCE_PREFIXES = ("vendor documentation: ", "vendor site: ")


def parse_sdk_table(text: str, name: str = SDK_CSV) -> dict[str, SdkEntry]:
    """Rows of ``sdks.csv`` keyed by domain; a bad row raises naming the file and line."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != SDK_COLUMNS:
        raise ValueError(f"{name}: header is {reader.fieldnames}, expected {list(SDK_COLUMNS)}")
    table: dict[str, SdkEntry] = {}
    for row in reader:
        line = reader.line_num
        if any(row.get(col) is None or not row[col].strip() for col in SDK_COLUMNS):
            raise ValueError(f"{name}, line {line}: every column needs a value: {row}")
        entry = SdkEntry(**{col: row[col].strip() for col in SDK_COLUMNS})
        domain = entry.domain.lower().strip(".")
        if entry.sdk_type not in SDK_TYPES:
            raise ValueError(f"{name}, line {line}: sdk_type {entry.sdk_type!r} is not one of "
                             f"{sorted(SDK_TYPES)}")
        if not entry.source.startswith(SOURCE_PREFIXES):
            raise ValueError(f"{name}, line {line}: source must start with one of "
                             f"{list(SOURCE_PREFIXES)}")
        if domain in table:
            raise ValueError(f"{name}, line {line}: domain {domain!r} is listed twice")
        table[domain] = entry
    return table


@memoised(1)
def load_sdks() -> Mapping[str, SdkEntry]:
    """The shipped SDK list, read from the package (never from the network). Read once per
    process: every session's pipeline gets the same table."""
    text = resources.files("auditor").joinpath(SDK_CSV).read_text(encoding="utf-8")
    return parse_sdk_table(text)


@memoised(1)
def country_source() -> str:
    """Name, version and data date of the IP-to-country database, for the report, e.g.
    ``iptocc 3.3.170, registry allocation data of 2026-10-27 (wheel build date)``."""
    try:
        dist = metadata.distribution("iptocc")
    except metadata.PackageNotFoundError:
        return "iptocc (version unknown), registry allocation data of unknown date"
    built = "unknown date"
    for path in dist.files or ():
        if path.name.endswith(".cyclonedx.json"):
            try:
                stamp = json.loads(path.read_text(encoding="utf-8"))["metadata"]["timestamp"]
                built = f"{stamp[:10]} (wheel build date)"
            except (OSError, ValueError, KeyError, TypeError):
                pass
            break
    return f"iptocc {dist.version}, registry allocation data of {built}"
