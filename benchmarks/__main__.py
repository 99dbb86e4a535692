"""Run the benchmarks and write their JSON results.

Usage::

    python -m benchmarks                 # every benchmark, full size -> benchmarks/results/
    python -m benchmarks --fast          # tiny sizes, seconds each -> benchmarks/results/fast/
    python -m benchmarks unet_vs_diffusers scheduler_overhead
    python -m benchmarks --out /tmp/bench --fast sampler_quality   # anywhere else
    python -m benchmarks --render        # only rewrite the .md tables (and docs figures) from the JSON
    python -m benchmarks --stored-rows-only fast_recipe   # a resumable run's rows so far, no training

Next to each ``<name>.json`` the runner writes ``<name>.md``: a Markdown table rendered from the
JSON alone (by the module's ``markdown(record)`` or, for the older benchmarks, by a renderer here),
followed by a line naming the commit, date and machine. Pages include that file with
``--8<-- "benchmarks/results/<name>.md"``, so no number on the site is copied by hand. A full run
into ``benchmarks/results/`` also draws the site's figure of a benchmark that has one (its module's
``figure(record, path)``) from the JSON into ``docs/figures/benchmarks/<name>.svg`` and
``<name>-dark.svg``; ``--render`` redraws them.
A benchmark whose ``run`` accepts ``out`` is told the results folder (for its plots).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import inspect
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
DOCS_FIGURES = HERE.parent / "docs" / "figures" / "benchmarks"


def available() -> list[str]:
    """Names of the benchmark modules: every ``benchmarks/*.py`` that defines ``run``."""
    names = []
    for path in sorted(HERE.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"benchmarks.{path.stem}")
        except (
            ImportError
        ) as error:  # e.g. diffusers missing on a GPU machine: the others still run
            print(
                f"warning: benchmark {path.stem} skipped, it does not import: {error}",
                file=sys.stderr,
            )
            continue
        if callable(getattr(module, "run", None)):
            names.append(path.stem)
    return names


OUTPUTS = ("benchmarks/results/", "docs/figures/benchmarks/")


def is_output(path: str) -> bool:
    """Whether a changed file (a path of `git status --porcelain`) is a benchmark's output.

    The results and plots a run writes are not changes to what is measured: a run of several
    benchmarks, or one after another's results were written, is still at its commit.
    """
    path = path.strip().strip('"')
    return any(path.startswith(prefix) for prefix in OUTPUTS)


def metadata() -> dict:
    """Where and when a result was measured."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=HERE,
            capture_output=True,
            text=True,
        ).stdout
        dirty = any(not is_output(line[3:]) for line in status.splitlines())
    except (OSError, subprocess.CalledProcessError):
        # a copy without .git (e.g. sent to another machine): the sender may name the commit
        commit = os.environ.get("FEAST_BENCH_COMMIT", "unknown")
        dirty = os.environ.get("FEAST_BENCH_DIRTY", "0") == "1"
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
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
    }


def measured_line(record: dict) -> str:
    """One sentence naming the commit, date and machine of a result: the last line of every table."""
    m = record["machine"]
    threads = record["results"].get("torch_threads", m["torch_threads"])
    commit = f"`{record['commit'][:7]}`" + (
        " (plus uncommitted changes)" if record.get("dirty") else ""
    )
    mode = " (fast mode: smoke-test sizes, not results)" if record.get("fast") else ""
    device = record["results"].get("device", "cpu")
    where = f"{m['cores']} CPU cores ({m['cpu']})" + (
        "" if device == "cpu" else f", model on {device}"
    )
    took = f"the benchmark took {record['seconds']:.0f} s{mode}"
    if record.get("stored_rows_only"):
        took = (
            f"this record was assembled in {record['seconds']:.0f} s from the rows that "
            "earlier runs of the benchmark stored (each row's training time is its "
            "`train_seconds`)"
        )
    return (
        f"*Measured {record['date'][:10]} at commit {commit} on {where}, "
        f"torch {m['torch']} with {threads} thread{'s' if threads != 1 else ''}, Python {m['python']}; "
        f"{took}.*"
    )


def _scheduler_overhead_table(record: dict) -> str:
    r = record["results"]
    lines = [
        "| sampler | ours (µs / step) | diffusers (µs / step) | ours / diffusers | scheduler share of a step with the UNet |",
        "|---|---|---|---|---|",
    ]
    for name, e in r["samplers"].items():
        share = e.get("share_of_step_with_unet")
        lines.append(
            f"| {name} | {e['ours_us_per_step']:.1f} | {e['diffusers_us_per_step']:.1f} | {e['ratio']:.2f} "
            f"| {'n/a' if share is None else f'{share * 100:.2f} %'} |"
        )
    shares = [
        e["share_of_step_with_unet"]
        for e in r["samplers"].values()
        if "share_of_step_with_unet" in e
    ]
    shape = "x".join(str(d) for d in r["batch_shape"])
    lines += [
        "",
        f"Batch {shape}, {r['num_inference_steps']} steps, median of {r['repeats']} repeats, "
        f"{r['torch_threads']} torch thread; one forward pass of {r['unet']} on that batch: "
        f"{r['unet_forward_ms']:.1f} ms. Largest ratio {r['max_ratio']:.2f} (target <= 1: "
        f"{'met' if r['max_ratio'] <= 1 else 'not met'}); largest share "
        + (
            f"{max(shares) * 100:.2f} % (target < 2 %: {'met' if max(shares) < 0.02 else 'not met'})."
            if shares
            else "not measured."
        ),
    ]
    return "\n".join(lines) + "\n"


def _unet_vs_diffusers_table(record: dict) -> str:
    r = record["results"]
    lines = [
        "| configuration | batch | parameters (ours / diffusers) | max abs output difference "
        "| forward images/s (ours / diffusers) | training images/s (ours / diffusers) |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("digits", "course"):
        if name not in r:
            continue
        c = r[name]
        size = c["config"]["sample_size"]
        lines.append(
            f"| {name}: channels {tuple(c['config']['channels'])}, {c['config']['in_channels']}x{size}x{size} "
            f"| {c['batch']} | {c['params_ours']:,} / {c['params_diffusers']:,} | {c['max_abs_output_diff']:.1e} "
            f"| {c['ours']['forward_images_per_s']:.0f} / {c['diffusers']['forward_images_per_s']:.0f} "
            f"| {c['ours']['train_images_per_s']:.0f} / {c['diffusers']['train_images_per_s']:.0f} |"
        )
    lines += [
        "",
        f"Device {r['device']}, {r['torch_threads']} torch threads, {r['warmup']} warm-up passes, "
        f"median of {r['repeats']}. A training step is forward + MSE + backward + AdamW step.",
    ]
    return "\n".join(lines) + "\n"


def _train_vs_diffusers_table(record: dict) -> str:
    from benchmarks.train_vs_diffusers import markdown_table

    r = record["results"]
    reached = ", ".join(
        f"{k}: {'not within the budgets' if v is None else f'{v:g} min'}"
        for k, v in r["time_to_1.2x_floor_minutes"].items()
    )
    return (
        markdown_table(r["rows"], r["floor"]["fid"])
        + f" {r['n_samples']} samples per row. Time to reach 1.2x the floor: {reached}.\n"
    )


# Renderers for benchmarks whose module has no ``markdown(record)`` of its own.
RENDERERS = {
    "scheduler_overhead": _scheduler_overhead_table,
    "unet_vs_diffusers": _unet_vs_diffusers_table,
    "train_vs_diffusers": _train_vs_diffusers_table,
}


def renderer(name: str):
    """The function that turns benchmark `name`'s JSON record into Markdown, or None if it has none."""
    module = importlib.import_module(f"benchmarks.{name}")
    return getattr(module, "markdown", None) or RENDERERS.get(name)


def render(record: dict) -> str | None:
    """The Markdown table file of a JSON record (its table, a blank line, `measured_line`), or None."""
    fn = renderer(record["benchmark"])
    if fn is None:
        return None
    return fn(record).rstrip("\n") + "\n\n" + measured_line(record) + "\n"


def write_outputs(record: dict, out: Path) -> list[Path]:
    """Write `<name>.md` next to the JSON; for results in `benchmarks/results/`, draw the docs figure."""
    name, written = record["benchmark"], []
    markdown = render(record)
    if markdown is not None:
        (out / f"{name}.md").write_text(markdown)
        written.append(out / f"{name}.md")
    figure = getattr(importlib.import_module(f"benchmarks.{name}"), "figure", None)
    if out.resolve() == RESULTS.resolve() and figure is not None:
        written += figure(record, DOCS_FIGURES / f"{name}.svg")
    return written


def _show(path: Path) -> str:
    return str(
        path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    )


def main(argv: list[str] | None = None) -> int:
    names = available()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "names",
        nargs="*",
        help=f"benchmarks to run (default: all of {', '.join(names)})",
    )
    parser.add_argument(
        "--fast", action="store_true", help="tiny sizes: a smoke run in seconds"
    )
    parser.add_argument(
        "--stored-rows-only",
        action="store_true",
        help="train nothing: write the record of the rows a resumable benchmark has stored "
        "(fast_recipe), listing the rest as pending",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default benchmarks/results[/fast])",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="where benchmarks that accept a device run their model (default: their own, the CPU)",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="run nothing: rewrite each <name>.md (and docs figure) from the <name>.json in the folder",
    )
    args = parser.parse_args(argv)

    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(names)}"
        )
    out = (args.out or (RESULTS / "fast" if args.fast else RESULTS)).resolve()

    if args.render:
        for name in args.names or names:
            source = out / f"{name}.json"
            if not source.is_file():
                if args.names:
                    parser.error(f"{source} does not exist: run the benchmark first")
                continue
            for path in write_outputs(json.loads(source.read_text()), out):
                print(f"   wrote {_show(path)}", flush=True)
        return 0

    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name} ({'fast' if args.fast else 'full'})", flush=True)
        parameters = inspect.signature(module.run).parameters
        kwargs = {"out": out} if "out" in parameters else {}
        if args.stored_rows_only:
            if "stored_only" not in parameters:
                parser.error(f"benchmark {name} does not take --stored-rows-only")
            kwargs["stored_only"] = True
        if args.device is not None:
            if "device" not in parameters:
                parser.error(f"benchmark {name} does not take --device")
            kwargs["device"] = args.device
        start = time.perf_counter()
        results = module.run(fast=args.fast, **kwargs)
        record = {
            "benchmark": name,
            "fast": args.fast,
            **metadata(),
            "seconds": round(time.perf_counter() - start, 2),
            **({"stored_rows_only": True} if args.stored_rows_only else {}),
            "results": results,
        }
        target = out / f"{name}.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, target)
        print(f"   wrote {_show(target)} in {record['seconds']} s", flush=True)
        for path in write_outputs(record, out):
            print(f"   wrote {_show(path)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
