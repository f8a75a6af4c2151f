"""Who receives a transmission: registrable domain, first or third party.

The public-suffix list is tldextract's bundled snapshot: never fetched (the tool makes no
network connection of its own).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import tldextract

from auditor.model import Recipient

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


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


class Recipients:
    """Attribution for one session: built once from the profile's ``first_party`` list."""

    def __init__(self, first_party: tuple[str, ...]) -> None:
        self.first_party = tuple(d.lower() for d in first_party)

    def attribute(self, host: str, ip: str = "") -> Recipient:
        domain = registrable_domain(host or ip)
        if not domain:
            return Recipient(domain="", party="unknown")
        if any(matches_domain(host, fp) or matches_domain(domain, fp) for fp in self.first_party):
            party = "first"
        elif self.first_party:
            party = "third"
        else:
            party = "unknown"  # without first_party we cannot tell, and we do not guess
        return Recipient(domain=domain, party=party)
