"""Benchmarks that measure speed, memory and quality.

Run them from the repository root as ``python -m benchmarks.<name>``.
"""
