"""Measured numbers that the pages quote. Run with ``make bench`` (``make bench-fast`` for a smoke run).

Each benchmark is a module ``benchmarks/<name>.py`` with ``run(fast: bool = False) -> dict``.
The runner (``python -m benchmarks``) adds the commit, date and machine it ran on and writes
``benchmarks/results/<name>.json``. Speed and quality targets live here, never in timed tests.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def repo_relative(path: str | Path) -> str:
    """A path as a record shows it: relative to the repository when it lies inside it."""
    path = Path(path).resolve()
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
