"""Run the benchmarks and write their JSON results.

Usage::

    python -m benchmarks                 # every benchmark, full size -> benchmarks/results/
    python -m benchmarks --fast          # tiny sizes, seconds each -> benchmarks/results/fast/
    python -m benchmarks unet_vs_diffusers scheduler_overhead
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def available() -> list[str]:
    """Names of the benchmark modules: every ``benchmarks/*.py`` that defines ``run``."""
    names = []
    for path in sorted(HERE.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{path.stem}")
        if callable(getattr(module, "run", None)):
            names.append(path.stem)
    return names


def metadata() -> dict:
    """Where and when a result was measured."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain"], cwd=HERE, capture_output=True, text=True
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    return {
        "commit": commit,
        "dirty": dirty,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    names = available()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(names)})")
    parser.add_argument("--fast", action="store_true", help="tiny sizes: a smoke run in seconds")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results[/fast])")
    args = parser.parse_args(argv)

    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(names)}")
    out = args.out or (RESULTS / "fast" if args.fast else RESULTS)
    out.mkdir(parents=True, exist_ok=True)

    for name in args.names or names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name} ({'fast' if args.fast else 'full'})", flush=True)
        start = time.perf_counter()
        results = module.run(fast=args.fast)
        record = {
            "benchmark": name,
            "fast": args.fast,
            **metadata(),
            "seconds": round(time.perf_counter() - start, 2),
            "results": results,
        }
        target = out / f"{name}.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, target)
        print(f"   wrote {target.relative_to(Path.cwd()) if target.is_relative_to(Path.cwd()) else target} "
              f"in {record['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
