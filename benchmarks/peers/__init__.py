"""Peers side by side: each benchmark runs a peer library from its own virtual environment
and ours in this one, alternately, on the same data, and prints the ratios.

Run them from the repository root as ``python -m benchmarks.peers.<name>``; the environments
are made on the first run (see :mod:`benchmarks.peers.environment`).
"""
