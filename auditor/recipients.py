"""Who receives a transmission: registrable domain, organisation, party, SDK and country.

Everything here is offline (DESIGN.md "attribute": no network calls, ever):

* the public-suffix list is tldextract's bundled snapshot, never fetched;
* organisation and SDK identity come from ``auditor/data/sdks.csv``, written for this
  project from the vendors' own documentation (``auditor/data/README.md`` says why no
  third-party tracker list was copied);
* the country is the one a Regional Internet Registry allocated the destination IP's block
  to (iptocc's embedded data). That is the *registered* country: a CDN or anycast address
  may be served from somewhere else, and the report says so.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources

import iptocc
import tldextract

from auditor.model import Recipient

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

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
# page of the vendor's (auditor/data/README.md).
SOURCE_PREFIXES = ("vendor documentation: ", "vendor site: ")


@dataclass(frozen=True)
class SdkEntry:
    domain: str
    organization: str
    sdk: str
    sdk_type: str
    source: str


@lru_cache(maxsize=4096)
def registrable_domain(host: str) -> str:
    """``api.acme-watch.example`` -> ``acme-watch.example``; an IP address stays itself.

    Hosts under a suffix the list does not know (``.example``, ``.lan``) keep their last two
    labels, which is what a lab means by "the maker's domain" there.
    """
    host = host.strip().strip(".").lower()
    if not host:
        return ""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host.strip("[]")
    except ValueError:
        pass
    parts = _EXTRACT(host)
    if parts.suffix and parts.domain:
        return f"{parts.domain}.{parts.suffix}"
    labels = host.split(".")
    return ".".join(labels[-2:])


def matches_domain(host: str, domain: str) -> bool:
    """A host belongs to a domain when it is the domain or one of its subdomains."""
    host, domain = host.lower().strip("."), domain.lower().strip(".")
    return host == domain or host.endswith("." + domain)


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


@lru_cache(maxsize=1)
def sdk_table() -> dict[str, SdkEntry]:
    """The shipped SDK list, read once from the package (never from the network)."""
    text = resources.files("auditor").joinpath(SDK_CSV).read_text(encoding="utf-8")
    return parse_sdk_table(text)


def sdk_for(host: str) -> SdkEntry | None:
    """The longest listed suffix the host is, or is a subdomain of; ``None`` when unknown."""
    labels = host.strip().strip(".").lower().split(".")
    table = sdk_table()
    for i in range(len(labels)):
        entry = table.get(".".join(labels[i:]))
        if entry is not None:
            return entry
    return None


def country_of(ip: str) -> str:
    """ISO 3166-1 alpha-2 country the registries allocated the IP to; "" when not public.

    Private, loopback, link-local, shared, documentation, multicast and reserved addresses
    get "" (they say nothing about where data went, and we do not guess). An IPv4-mapped
    IPv6 address is looked up as the IPv4 address it carries.
    """
    try:
        addr = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return ""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if not addr.is_global or addr.is_multicast or addr.is_reserved or addr.is_unspecified:
        return ""
    return iptocc.country_code(str(addr)) or ""


def _country_source() -> str:
    """Name, version and data date of the IP-to-country database, for the report."""
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


# e.g. "iptocc 3.3.170, registry allocation data of 2026-10-27 (wheel build date)"
COUNTRY_SOURCE = _country_source()


class Recipients:
    """Attribution for one session: built once from the profile's ``first_party`` list."""

    MEMO = 65536  # (host, ip) pairs remembered; forgotten all at once past this

    def __init__(self, first_party: tuple[str, ...]) -> None:
        self.first_party = tuple(d.lower().strip(".") for d in first_party)
        self._memo: dict[tuple[str, str], Recipient] = {}

    def attribute(self, host: str, ip: str = "") -> Recipient:
        """``ip`` is the address the proxy (or the pcap) saw the connection go to.

        Remembered per (host, ip): a device talks to a handful of servers, again and
        again, and the address lookup and suffix rules cost more than the rest of a small
        message's attribution. The answer depends on nothing else."""
        key = (host, ip)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= self.MEMO:
                self._memo.clear()
            found = self._memo[key] = self._attribute(host, ip)
        return found

    def _attribute(self, host: str, ip: str) -> Recipient:
        host = (host or "").strip().strip(".").lower()
        ip = (ip or "").strip()
        country = country_of(ip) if ip else country_of(host)
        domain = registrable_domain(host or ip)
        if not domain:
            return Recipient(domain="", party="unknown", country=country)
        # The profile wins: a maker's own domain is first party even when it sits on a
        # cloud or shares a name with an SDK vendor.
        if any(matches_domain(host, fp) or matches_domain(domain, fp) for fp in self.first_party):
            party = "first"
        elif self.first_party:
            party = "third"
        else:
            party = "unknown"  # without first_party we cannot tell, and we do not guess
        entry = sdk_for(host) if host else None
        if entry is None:
            return Recipient(domain=domain, party=party, country=country)
        return Recipient(domain=domain, organization=entry.organization, party=party,
                         country=country, sdk=entry.sdk, sdk_type=entry.sdk_type)
