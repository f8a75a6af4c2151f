"""Addresses as text are the same on every Python: Python 3.12 and 3.13 print an IPv4-mapped
IPv6 address differently, and a report must not change with the interpreter."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from auditor.addresses import ip_text
from auditor.extract.payload import parse_dns
from auditor.sources.pcap import _ip6


@pytest.mark.parametrize(("written", "expected"), [
    ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
    ("::ffff:a00:1", "::ffff:10.0.0.1"),  # how Python up to 3.12 prints it
    ("0:0:0:0:0:ffff:c000:0201", "::ffff:192.0.2.1"),
    ("2001:db8::1", "2001:db8::1"),
    ("::1", "::1"),
    ("::", "::"),
    ("::a00:1", "::a00:1"),  # IPv4-compatible (deprecated), not mapped: left as it is
    ("192.0.2.1", "192.0.2.1"),
])
def test_an_address_reads_the_same_on_every_python(written: str, expected: str) -> None:
    address = ipaddress.ip_address(written)
    assert ip_text(address) == expected
    if isinstance(address, ipaddress.IPv6Address):
        assert _ip6(address.packed) == expected  # a pcap's packets


def test_a_dns_answer_with_a_mapped_address_reads_the_same() -> None:
    name = b"\x05watch\x07example\x00"
    query = name + struct.pack(">HH", 28, 1)
    answer = (b"\xc0\x0c" + struct.pack(">HHIH", 28, 1, 60, 16)
              + ipaddress.IPv6Address("::ffff:192.0.2.7").packed)
    message = struct.pack(">HHHHHH", 1, 0x8180, 1, 1, 0, 0) + query + answer
    assert parse_dns(message) == (["watch.example"], [("watch.example", "::ffff:192.0.2.7")])
