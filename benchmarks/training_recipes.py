"""Training recipes at different scales: model size x budget x learning rate x schedule on the digits.

The Unit 1 exercise of the course asks how results change with the model's size, the training time,
the learning rate and the noise schedule. This benchmark measures it, so a reader can pick a recipe
for the CPU time they have:

* model sizes: ``small`` (channels 16-32-32, one block per level, 0.28M parameters), ``base``
  (`snippets.unet.DIGITS_CONFIG`, 1.6M) and ``wide`` (64-128-128, 6.5M);
* budgets of 1, 3, 10 and 30 CPU-minutes;
* peak learning rates 5e-4 and 2e-3; linear (DDPM) and cosine (Improved DDPM) noise schedules.

Everything else is the project's default recipe (`snippets.training.TrainConfig`: v-prediction,
min-SNR-5 weighting, AdamW with warmup and cosine decay over the budget, EMA 0.999, batch 64,
unconditional). Each run is scored by digit FID (`snippets.metrics`) of 500 samples drawn with
DPM-Solver++ (20 steps) from its EMA weights, against the floor.

**Budgets are counted in steps.** A "CPU-minute" is the number of optimizer steps that model size
completes in one minute on the reference machine (the 2-core CPU of the project's CI), measured
first by `calibrate`. Runs then train for exactly that many steps, so the results do not depend on
how busy the machine is, and the 48 runs (about 9 CPU-hours) can be executed on any device,
in parallel, with the same mathematics: the batches, timesteps and noise come from a seeded CPU
generator, identical on every device. The JSON records both the calibration machine and the
device that trained.

    python -m benchmarks training_recipes                 # calibrate here, train here (hours on a CPU)
    python -m benchmarks.training_recipes --calibrate cal.json          # only measure steps/minute
    python -m benchmarks.training_recipes --calibration cal.json --jobs 15 --out runs.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import torch

from snippets.data import load_digits
from snippets.metrics import digit_metrics, fid_floor, load_classifier
from snippets.sampling import SAMPLERS
from snippets.schedules import NoiseSchedule
from snippets.training import TrainConfig, train
from snippets.unet import DIGITS_CONFIG, UNet

RESULTS = Path(__file__).resolve().parent / "results"

SIZES = {
    "small": dict(DIGITS_CONFIG, channels=(16, 32, 32), num_res_blocks=1, num_groups=8),
    "base": dict(DIGITS_CONFIG),
    "wide": dict(DIGITS_CONFIG, channels=(64, 128, 128)),
}
BUDGETS = (1.0, 3.0, 10.0, 30.0)
LEARNING_RATES = (5e-4, 2e-3)
SCHEDULES = ("linear", "cosine")
SAMPLER, SAMPLER_STEPS = "dpmsolver++", 20


def calibrate(
    sizes: dict[str, dict] | None = None, steps: int = 40, warmup: int = 5
) -> dict:
    """Measure training steps per second of each model size on this machine's CPU.

    Args:
        sizes: Model configs by name (default `SIZES`).
        steps: Timed steps per size (after `warmup` untimed ones).
        warmup: Untimed steps first (allocations, first-call overheads).

    Returns:
        `{"steps_per_second": {size: float}, "torch_threads": int, "cores": int}`.
    """
    sizes = SIZES if sizes is None else sizes
    images = load_digits("train")[0]
    rates = {}
    for name, config in sizes.items():
        torch.manual_seed(0)
        model = UNet(**config)
        recipe = dict(mixed_precision="no", checkpoint_every=0)
        train(
            model,
            images,
            config=TrainConfig(steps=warmup, **recipe),
            accelerator=_cpu(),
            progress_bar=False,
        )
        start = time.perf_counter()
        train(
            model,
            images,
            config=TrainConfig(steps=steps, **recipe),
            accelerator=_cpu(),
            progress_bar=False,
        )
        rates[name] = steps / (time.perf_counter() - start)
        print(f"calibration: {name} {rates[name]:.2f} steps/s", flush=True)
    return {
        "steps_per_second": rates,
        "torch_threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
    }


def _cpu():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def grid(
    calibration: dict,
    budgets=BUDGETS,
    sizes=None,
    learning_rates=LEARNING_RATES,
    schedules=SCHEDULES,
    fast: bool = False,
) -> list[dict]:
    """Every (size, budget, learning rate, schedule) job, with its budget converted to steps."""
    sizes = list(SIZES) if sizes is None else sizes
    jobs = []
    for size, minutes, lr, schedule in itertools.product(
        sizes, budgets, learning_rates, schedules
    ):
        steps = max(1, round(minutes * 60 * calibration["steps_per_second"][size]))
        jobs.append(
            dict(
                size=size,
                minutes=minutes,
                learning_rate=lr,
                schedule=schedule,
                steps=steps,
                fast=fast,
            )
        )
    # longest first: the best packing when jobs run in parallel
    return sorted(jobs, key=lambda job: -job["steps"])


def run_job(job: dict) -> dict:
    """Train one recipe for its step budget, sample from its EMA weights and score the samples."""
    torch.set_num_threads(
        int(os.environ.get("RECIPES_THREADS", torch.get_num_threads()))
    )
    torch.backends.cudnn.allow_tf32 = False  # fp32 convolutions on a GPU, as on the CPU
    fast = job["fast"]
    n = 16 if fast else 500
    images = load_digits("train")[0]
    torch.manual_seed(0)
    model = UNet(**SIZES[job["size"]])
    config = TrainConfig(
        steps=job["steps"],
        learning_rate=job["learning_rate"],
        schedule=job["schedule"],
        warmup_steps=min(100, max(1, job["steps"] // 10)),
        mixed_precision="no",
        checkpoint_every=0,
        **({"batch_size": 8} if fast else {}),
    )
    start = time.perf_counter()
    result = train(model, images, config=config, progress_bar=False)
    train_seconds = time.perf_counter() - start
    model.load_state_dict(result.ema_state)
    model.eval()
    device = next(model.parameters()).device
    schedule = NoiseSchedule.from_name(config.schedule, config.num_train_timesteps)
    generator = torch.Generator().manual_seed(0)
    x_T = torch.randn((n, 1, 16, 16), generator=generator).to(device)
    with torch.no_grad():
        x0 = SAMPLERS[SAMPLER](
            lambda x, t: model(x, t.to(x.device)),
            x_T,
            schedule,
            3 if fast else SAMPLER_STEPS,
            prediction_type=config.prediction_type,
        )
    metrics = digit_metrics(x0.cpu(), load_classifier())
    last = result.losses[-100:]
    return {
        **{
            k: job[k] for k in ("size", "minutes", "learning_rate", "schedule", "steps")
        },
        "params": sum(p.numel() for p in model.parameters()),
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else "cpu",
        "train_seconds": round(train_seconds, 1),
        "final_loss": sum(last) / len(last),
        "fid": metrics["fid"],
        "confidence": metrics["confidence"],
        "class_entropy": metrics["class_entropy"],
    }


def execute(
    jobs: list[dict],
    workers: int = 1,
    out: Path | None = None,
    deadline: float | None = None,
) -> list[dict]:
    """Run the jobs, `workers` at a time in separate processes; append each row to `out` (JSON lines) as it ends.

    Args:
        jobs: From `grid`, run in this order.
        workers: Processes at a time (1: run in this process).
        out: JSON-lines file that each finished run's row is appended to (so a cut-off run keeps them).
        deadline: Stop waiting after this many seconds and drop the unfinished runs (`None`: no limit).

    Returns:
        The rows of the finished runs.
    """
    from tqdm.auto import tqdm

    rows, start = [], time.monotonic()

    def record(row):
        rows.append(row)
        if out is not None:
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
        bar.set_postfix_str(
            f"{row['size']} {row['minutes']:g} min lr {row['learning_rate']:g} "
            f"{row['schedule']}: FID {row['fid']:.1f}"
        )
        bar.update(1)

    with tqdm(total=len(jobs), unit="run") as bar:
        if workers <= 1:
            for job in jobs:
                if deadline is not None and time.monotonic() - start > deadline:
                    break
                record(run_job(job))
            return rows
        import concurrent.futures as cf
        import multiprocessing as mp

        pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        pending = {pool.submit(run_job, job) for job in jobs}
        while pending:
            left = None if deadline is None else deadline - (time.monotonic() - start)
            if left is not None and left <= 0:
                break
            done, pending = cf.wait(
                pending, timeout=left, return_when=cf.FIRST_COMPLETED
            )
            for future in done:
                try:
                    record(future.result())
                except Exception as error:  # one broken run must not lose the others
                    print(f"a run failed: {error!r}", flush=True)
        if pending:
            print(f"deadline: {len(pending)} run(s) unfinished, dropped", flush=True)
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=not pending, cancel_futures=True)
    return rows


def summarise(
    rows: list[dict], floor: dict, calibration: dict, n: int, planned: list[dict]
) -> dict:
    """The JSON result: rows in grid order, the best recipe per budget, the grid's unmeasured cells."""
    order = {k: i for i, k in enumerate(SIZES)}
    rows = sorted(
        rows,
        key=lambda r: (
            order[r["size"]],
            r["minutes"],
            r["learning_rate"],
            r["schedule"],
        ),
    )
    for row in rows:
        row["fid_over_floor"] = row["fid"] / floor["fid"]
    best = {}
    for minutes in sorted({r["minutes"] for r in rows}):
        winner = min(
            (r for r in rows if r["minutes"] == minutes), key=lambda r: r["fid"]
        )
        best[f"{minutes:g}"] = {
            k: winner[k]
            for k in (
                "size",
                "learning_rate",
                "schedule",
                "steps",
                "fid",
                "fid_over_floor",
            )
        }
    measured = {
        (r["size"], r["minutes"], r["learning_rate"], r["schedule"]) for r in rows
    }
    missing = [
        job
        for job in planned
        if (job["size"], job["minutes"], job["learning_rate"], job["schedule"])
        not in measured
    ]
    return {
        "n_samples": n,
        "sampler": f"{SAMPLER} ({SAMPLER_STEPS} steps)",
        "floor": floor,
        "calibration": calibration,
        "device": _devices(rows),
        "torch_threads": calibration["torch_threads"],
        "budgets": sorted({job["minutes"] for job in planned}),
        "rows": rows,
        "best_per_budget": best,
        "not_measured": [
            {k: j[k] for k in ("size", "minutes", "learning_rate", "schedule", "steps")}
            for j in missing
        ],
    }


def _devices(rows: list[dict]) -> str:
    """Where the runs trained, in words, for the line under the table."""
    gpus = sorted({r["device"] for r in rows} - {"cpu"})
    if not gpus:
        return "cpu"
    cpu = any(r["device"] == "cpu" for r in rows)
    return (
        ("the CPU (unmarked runs) and " if cpu else "")
        + " and ".join(gpus)
        + " (runs marked †)"
    )


def markdown(record: dict) -> str:
    """The results as a Markdown table (for `python -m benchmarks`, which adds the measured-at line)."""
    r = record["results"]
    return markdown_table(
        r["rows"],
        r["floor"]["fid"],
        r["n_samples"],
        r["sampler"],
        r["calibration"],
        r["budgets"],
    )


def markdown_table(
    rows: list[dict],
    floor: float,
    n: int,
    sampler: str,
    calibration: dict,
    budgets: list[float],
) -> str:
    """One row per (size, budget) of the grid, the four (learning rate, schedule) recipes as FID columns.

    The best FID of each row is bold; a dagger marks runs trained on a GPU (same steps, same seeds);
    a dash marks runs not measured yet.
    """
    recipes = list(itertools.product(LEARNING_RATES, SCHEDULES))
    head = " | ".join(f"lr {lr:g}, {s}" for lr, s in recipes)
    lines = [
        f"| size | params | CPU-min | steps | {head} |",
        "|---" * (4 + len(recipes)) + "|",
    ]
    missing = False
    for size in [s for s in SIZES if any(r["size"] == s for r in rows)]:
        params = next(r["params"] for r in rows if r["size"] == size)
        for minutes in budgets:
            cells = {
                (r["learning_rate"], r["schedule"]): r
                for r in rows
                if (r["size"], r["minutes"]) == (size, minutes)
            }
            best = min((c["fid"] for c in cells.values()), default=None)
            steps = max(1, round(minutes * 60 * calibration["steps_per_second"][size]))
            texts = []
            for key in recipes:
                if key not in cells:
                    missing = True
                    texts.append("–")
                    continue
                text = f"{cells[key]['fid']:.1f}" + (
                    "†" if cells[key]["device"] != "cpu" else ""
                )
                texts.append(f"**{text}**" if cells[key]["fid"] == best else text)
            lines.append(
                f"| {size} | {params / 1e6:.2f}M | {minutes:g} | {steps} | "
                + " | ".join(texts)
                + " |"
            )
    devices = sorted({r["device"] for r in rows if r["device"] != "cpu"})
    notes = [
        f"Digit FID (lower is better) of {n} samples, {sampler}, from each run's EMA weights.",
        f"Floor (real train digits vs test split): {floor:.1f}; 1.2 x floor: {1.2 * floor:.1f}.",
        "Steps: what one CPU-minute buys on the 2-core reference machine, times the budget.",
    ]
    if devices:
        notes.append(
            f"† trained on {', '.join(devices)} (same steps and seeds); the others on the 2-core CPU."
        )
    if missing:
        notes.append("– not measured yet.")
    lines.append("\n" + " ".join(notes))
    return "\n".join(lines)


def plot(rows: list[dict], floor: float, path: Path) -> Path:
    """FID against CPU-minutes, one panel per model size, one line per (learning rate, schedule).

    A `.png` path gets one light PNG; an `.svg` path a light and a dark variant (`snippets.plotting`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from snippets.plotting import THEMES, ink, muted, save_figure

    sizes = [s for s in SIZES if any(r["size"] == s for r in rows)]
    minutes = sorted({r["minutes"] for r in rows})

    def draw():
        fig, axes = plt.subplots(
            1,
            len(sizes),
            figsize=(2.45 * len(sizes) + 0.6, 3.6),
            sharey=True,
            squeeze=False,
        )
        for ax, size in zip(axes[0], sizes):
            for lr, schedule in sorted(
                {(r["learning_rate"], r["schedule"]) for r in rows}
            ):
                pts = sorted(
                    (r["minutes"], r["fid"])
                    for r in rows
                    if (r["size"], r["learning_rate"], r["schedule"])
                    == (size, lr, schedule)
                )
                ax.plot(
                    *zip(*pts),
                    marker="o",
                    ls="-" if schedule == "cosine" else "--",
                    label=f"lr {lr:g}, {schedule}",
                )
            params = next(r["params"] for r in rows if r["size"] == size)
            ax.axhline(floor, color=ink(), lw=1, ls=":", label="floor")
            ax.axhline(1.2 * floor, color=muted(), lw=0.8, ls=":", label="1.2 x floor")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(minutes, [f"{m:g}" for m in minutes])
            ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
            ax.set_title(f"{size}\n({params / 1e6:.2f}M params)")
            ax.set_xlabel("CPU-minutes")
        axes[0][0].set_ylabel("digit FID (lower is better)")
        handles, labels = axes[0][-1].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=3,
            frameon=False,
        )
        fig.tight_layout()
        return fig

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(draw, path, themes=THEMES if path.suffix == ".svg" else ("light",))
    return path


def figure(record: dict, path: Path) -> list[Path]:
    """The site's figure of a run (its JSON record): the plot as light and dark SVGs at `path`."""
    r = record["results"]
    plot(r["rows"], r["floor"]["fid"], path)
    return [path, path.with_name(f"{path.stem}-dark{path.suffix}")]


def run(
    fast: bool = False,
    calibration: dict | None = None,
    rows: list[dict] | None = None,
    workers: int = 1,
    out: Path | None = None,
) -> dict:
    """Calibrate (unless given), train and score every recipe (unless `rows` are given), summarise, plot.

    Args:
        fast: Seconds-long smoke run: the small size, one learning rate and schedule, tiny budgets.
        calibration: A `calibrate` result measured earlier on the reference machine.
        rows: Results of `run_job` computed elsewhere (e.g. in parallel on a GPU); skips training.
        workers: Jobs at a time (processes).
        out: Folder for the plot (default `benchmarks/results/`, or its `fast/` for a fast run).

    Returns:
        JSON-serialisable results.
    """
    if fast:
        calibration = calibration or calibrate(
            {"small": SIZES["small"]}, steps=2, warmup=1
        )
        jobs = grid(
            calibration,
            budgets=(0.02, 0.05),
            sizes=["small"],
            learning_rates=(2e-3,),
            schedules=("cosine",),
            fast=True,
        )
    else:
        calibration = calibration or calibrate()
        jobs = grid(calibration)
    if rows is None:
        rows = execute(jobs, workers)
    n = 16 if fast else 500
    result = summarise(rows, fid_floor(n, load_classifier()), calibration, n, jobs)
    folder = Path(out) if out is not None else (RESULTS / "fast" if fast else RESULTS)
    path = plot(result["rows"], result["floor"]["fid"], folder / "training_recipes.png")
    result["plot"] = str(
        path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    )
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--calibrate",
        type=Path,
        metavar="JSON",
        help="only measure steps/s here, write them to JSON",
    )
    parser.add_argument(
        "--calibration", type=Path, metavar="JSON", help="use steps/s measured earlier"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs at a time, each in its own process"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="JSONL",
        help="append each run's row to this file as it ends",
    )
    parser.add_argument(
        "--budgets",
        type=float,
        nargs="+",
        default=BUDGETS,
        metavar="MIN",
        help="CPU-minute budgets",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=list(SIZES),
        choices=list(SIZES),
        help="model sizes",
    )
    parser.add_argument(
        "--shortest-first", action="store_true", help="run the cheapest runs first"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        metavar="SECONDS",
        help="drop the runs unfinished after this long",
    )
    parser.add_argument(
        "--summarise",
        type=Path,
        metavar="JSONL",
        help="write benchmarks/results/training_recipes.json from rows computed earlier",
    )
    parser.add_argument("--fast", action="store_true", help="tiny smoke run")
    args = parser.parse_args(argv)
    if args.calibrate:
        args.calibrate.write_text(json.dumps(calibrate(), indent=2))
        return
    if args.calibration is None:
        parser.error(
            "--calibration JSON is required to train (measure it on the reference machine with --calibrate)"
        )
    calibration = json.loads(args.calibration.read_text())
    if args.summarise:
        from benchmarks.__main__ import metadata, write_outputs

        rows = [
            json.loads(line)
            for line in args.summarise.read_text().splitlines()
            if line.strip()
        ]
        record = {
            "benchmark": "training_recipes",
            "fast": False,
            **metadata(),
            "seconds": round(sum(r["train_seconds"] for r in rows), 1),
            "results": run(calibration=calibration, rows=rows),
        }
        target = RESULTS / "training_recipes.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, target)
        print("wrote", target, *write_outputs(record, RESULTS))
        return
    jobs = (
        grid(calibration, budgets=args.budgets, sizes=args.sizes)
        if not args.fast
        else grid(
            calibration,
            budgets=(0.02,),
            sizes=["small"],
            learning_rates=(2e-3,),
            schedules=("cosine",),
            fast=True,
        )
    )
    if args.out and args.out.exists():  # resume: skip the runs already recorded
        done = {
            (r["size"], r["minutes"], r["learning_rate"], r["schedule"])
            for r in map(json.loads, args.out.read_text().splitlines())
        }
        jobs = [
            j
            for j in jobs
            if (j["size"], j["minutes"], j["learning_rate"], j["schedule"]) not in done
        ]
    if args.shortest_first:
        jobs = jobs[::-1]
    if torch.cuda.is_available():
        torch.backends.cudnn.allow_tf32 = False  # fp32 convolutions, as on the CPU
    execute(jobs, args.jobs, args.out, args.deadline)


if __name__ == "__main__":
    main()
