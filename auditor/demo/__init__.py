"""``kidaudit demo``: a simulated watch, parent app and cloud on loopback, through real
mitmproxy with the kidaudit addon. Every value is invented; nothing leaves 127.0.0.1."""
