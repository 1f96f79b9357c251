"""Benchmarks (each prints JSON)."""
