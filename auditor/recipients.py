"""Who receives a transmission: registrable domain, organisation, party, SDK and country.

Everything here is offline (DESIGN.md "attribute": no network calls, ever) and reads no
file of its own:

* the public-suffix list is tldextract's bundled snapshot, never fetched;
* organisation and SDK identity come from a table the caller passes in: the edge reads
  ``auditor/data/sdks.csv`` with ``auditor.data.load_sdks()`` (``auditor/data/README.md``
  says why no third-party tracker list was copied);
* the country is the one a Regional Internet Registry allocated the destination IP's block
  to (iptocc's embedded data). That is the *registered* country: a CDN or anycast address
  may be served from somewhere else, and the report says so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import iptocc
import tldextract

from auditor.memo import Memo, memoised
from auditor.model import Recipient

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@dataclass(frozen=True)
class SdkEntry:
    domain: str
    organization: str
    sdk: str
    sdk_type: str
    source: str


# Listed host suffix (lower case, no trailing dot) -> who operates it and what it does.
SdkTable = Mapping[str, SdkEntry]

MEMO = 65536  # (host, ip) pairs a session's attribution remembers


@memoised(4096)
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


def sdk_for(host: str, table: SdkTable) -> SdkEntry | None:
    """The longest listed suffix the host is, or is a subdomain of; ``None`` when unknown."""
    labels = host.strip().strip(".").lower().split(".")
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


class Recipients:
    """Attribution for one session: built once from the profile's ``first_party`` list and
    the SDK table the edge loaded (``auditor.data.load_sdks()``)."""

    def __init__(self, first_party: tuple[str, ...], sdks: SdkTable, memo: int = MEMO) -> None:
        """``memo``: how many (host, ip) pairs' answers to remember."""
        self.first_party = tuple(d.lower().strip(".") for d in first_party)
        self.sdks = sdks
        self._memo: Memo[tuple[str, str], Recipient] = Memo(memo)

    def attribute(self, host: str, ip: str = "") -> Recipient:
        """``ip`` is the address the proxy (or the pcap) saw the connection go to.

        Remembered per (host, ip): a device talks to a handful of servers, again and
        again, and the address lookup and suffix rules cost more than the rest of a small
        message's attribution. The answer depends on nothing else."""
        key = (host, ip)
        found = self._memo.get(key)
        if found is None:
            found = self._memo.put(key, self._attribute(host, ip))
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
        entry = sdk_for(host, self.sdks) if host else None
        if entry is None:
            return Recipient(domain=domain, party=party, country=country)
        return Recipient(domain=domain, organization=entry.organization, party=party,
                         country=country, sdk=entry.sdk, sdk_type=entry.sdk_type)
