"""Benchmarks: one script per measurement, each run as `python -m benchmarks.NAME` from the repo
root. They start real processes on loopback and print one JSON line of figures on stdout."""
