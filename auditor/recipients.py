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
from auditor.model import Organisation, Recipient

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
PARTIES = 64  # profiles' parties remembered (a session has one; tests build a few)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    addr = address_of(ip)
    if addr is None:
        return ""
    if not addr.is_global or addr.is_multicast or addr.is_reserved or addr.is_unspecified:
        return ""
    return iptocc.country_code(str(addr)) or ""


def address_of(text: str) -> Address | None:
    """The IP address a host or address text is, if it is one; an IPv4-mapped IPv6 address
    is the IPv4 address it carries (a dual-stack socket reports the maker's IPv4 so)."""
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def network_of(text: str) -> Network | None:
    """An address (``203.0.113.7``) or CIDR block (``2001:db8::/32``) as a network; None for
    a name. Host bits are forgiven (``203.0.113.7/24`` is the /24): the lab means the block."""
    try:
        return ipaddress.ip_network(text.strip().strip("[]"), strict=False)
    except ValueError:
        return None


def _within(addr: Address | None, networks: tuple[Network, ...]) -> bool:
    return addr is not None and any(addr.version == n.version and addr in n for n in networks)


@dataclass(frozen=True)
class Parties:
    """The profile's word on who is who: the maker's own names and addresses
    (``first_party``) and the organisations it names for addresses no public data
    attributes. Asked by attribution, by the ledger (whom a disclosure names) and by rules."""

    domains: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()
    organisations: tuple[tuple[Organisation, tuple[Network, ...]], ...] = ()

    @property
    def declared(self) -> bool:
        """The profile says who the maker is: anyone else is then a third party."""
        return bool(self.domains or self.networks)

    def is_first(self, host: str, domain: str = "", ip: str = "") -> bool:
        """The maker's: a host under a first-party domain, or an address (the connection's,
        or the host when it is one) inside a first-party block."""
        if any(matches_domain(h, fp) for h in (host, domain) if h for fp in self.domains):
            return True
        return bool(self.networks) and any(
            _within(address_of(a), self.networks) for a in (ip, host) if a)

    def organisation_of(self, host: str, ip: str = "") -> Organisation | None:
        """The profile organisation a host (by its domains) or an address (by its blocks)
        belongs to; the first listed wins."""
        for org, networks in self.organisations:
            if host and any(matches_domain(host, d) for d in org.domains):
                return org
            if any(_within(address_of(a), networks) for a in (ip, host) if a):
                return org
        return None

    def names_maker(self, name: str) -> bool:
        """A plan's recipient name that is one of the maker's domains (or under one)."""
        return any(matches_domain(name, fp) for fp in self.domains)

    def domains_of(self, organisation: str) -> tuple[str, ...]:
        """The domains the profile gives the organisation of this name (any case)."""
        wanted = organisation.strip().casefold()
        return tuple(d for org, _ in self.organisations if org.name.casefold() == wanted
                     for d in org.domains)


@memoised(PARTIES)
def parties(first_party: tuple[str, ...] = (),
            organisations: tuple[Organisation, ...] = ()) -> Parties:
    """A profile's ``first_party`` and ``organisations`` read once into names and networks:
    every message asks, and parsing a CIDR block each time would be waste. An organisation
    owning a first-party domain is the maker, so its addresses are first party too."""
    domains, networks = [], []
    for entry in first_party:
        net = network_of(entry)
        if net is None:
            domains.append(entry.lower().strip("."))
        else:
            networks.append(net)
    orgs = tuple((org, tuple(n for a in org.addresses if (n := network_of(a)) is not None))
                 for org in organisations)
    # An organisation owning a first-party domain is the maker: its addresses are too.
    for org, nets in orgs:
        if any(matches_domain(d, fp) for d in org.domains for fp in domains):
            networks.extend(nets)
    return Parties(tuple(domains), tuple(networks), orgs)


class Recipients:
    """Attribution for one session: built once from the profile's ``first_party`` list (and
    ``organisations``) and the SDK table the edge loaded (``auditor.data.load_sdks()``)."""

    def __init__(self, first_party: tuple[str, ...], sdks: SdkTable, memo: int = MEMO, *,
                 organisations: tuple[Organisation, ...] = ()) -> None:
        """``memo``: how many (host, ip) pairs' answers to remember."""
        self.parties = parties(tuple(first_party), tuple(organisations))
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
        # The profile wins: a maker's own domain or address is first party even when it
        # sits on a cloud or shares a name with an SDK vendor.
        if self.parties.is_first(host, domain, ip):
            party = "first"
        elif self.parties.declared:
            party = "third"
        else:
            party = "unknown"  # without first_party we cannot tell, and we do not guess
        # An organisation the profile names outranks the SDK table's: the lab knows whose
        # address it is where public data says nothing (or something else).
        named = self.parties.organisation_of(host, ip)
        entry = sdk_for(host, self.sdks) if host else None
        organization = named.name if named else entry.organization if entry else ""
        if entry is None:
            return Recipient(domain=domain, organization=organization, party=party,
                             country=country)
        return Recipient(domain=domain, organization=organization, party=party,
                         country=country, sdk=entry.sdk, sdk_type=entry.sdk_type)
