"""Loopback stand-ins for the SMS providers and REDCap that the tests and the benchmarks share
(real HTTP on 127.0.0.1; see provider.py)."""
