"""Measured numbers that the pages quote. Run with ``make bench`` (``make bench-fast`` for a smoke run).

Each benchmark is a module ``benchmarks/<name>.py`` with ``run(fast: bool = False) -> dict``.
The runner (``python -m benchmarks``) adds the commit, date and machine it ran on and writes
``benchmarks/results/<name>.json``. Speed and quality targets live here, never in timed tests.
"""
