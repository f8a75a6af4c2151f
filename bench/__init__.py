"""Benchmarks (not tests): the auditor's cost on the proxy path and on offline analysis.

``python -m bench`` runs them all and writes ``bench/results.md``; every figure is measured
on the machine that ran it and printed beside its target, met or missed.
"""
