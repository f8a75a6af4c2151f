"""Inputs: live mitmproxy flows and saved captures, turned into Transmissions."""
