"""IP addresses as text, the same on every Python.

An IPv4-mapped IPv6 address prints as ``::ffff:a00:1`` up to Python 3.12 and as
``::ffff:10.0.0.1`` from 3.13 on. A profile's ``device.ip``, a pcap's addresses and a DNS
answer must compare equal whichever interpreter read them, and a report must not change with
the interpreter, so every address kidaudit turns into text goes through ``ip_text``: the
dotted form for a mapped address (RFC 5952 section 5, and what the OS reports for a socket,
which is what a live capture records).
"""

from __future__ import annotations

import ipaddress


def ip_text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)
