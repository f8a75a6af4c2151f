"""Capture readers: saved captures (.mitm, HAR, pcap) and mitmproxy flows, turned into
Transmissions. The live runtime, which feeds mitmproxy's flows to a session as they pass,
is ``auditor.live``."""
