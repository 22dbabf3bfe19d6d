"""Benchmarks: `python -m bench.query` (query latency, recall, index build; see README)."""
