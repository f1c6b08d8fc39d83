"""Benchmarks: each module exposes ``run() -> dict`` and prints its figures when run as __main__."""
