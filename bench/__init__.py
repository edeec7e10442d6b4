"""Benchmarks against the real daemons; each module is a script (see docs/performance.md)."""
