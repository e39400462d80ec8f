"""Shared run harness, result schema, profilers and the side-by-side benchmarks."""
