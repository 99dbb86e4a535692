"""Fine-tuning the shipped digits model on thick digits vs training the same UNet from scratch.

The new distribution is the bundled digits written with a thicker pen
(`snippets.finetuning.transform_images(x, "thick")`). Two runs of the same class-conditional
`UNet` (the shipped model's architecture) train on the thick train split for the same step
budgets:

* **fine-tune**: initialised from `checkpoints/digits/` (`snippets.finetuning.init_from_checkpoint`),
  AdamW at a lower learning rate `FINETUNE_LR`;
* **from scratch**: initialised at random (seed 0), AdamW at the project's default peak `SCRATCH_LR`.

Everything else is the shipped model's recipe (v-prediction, cosine schedule, min-SNR-5, EMA 0.999,
10 % label dropout), except a *constant* learning rate after a short warmup, so that one run per
arm gives every budget: the run is stopped at each budget, scored, and resumed exactly from its
checkpoint (`train(..., resume=True)`). The budgets are **counted in steps**, so the results do not
depend on how busy the machine is; the CPU-seconds each run used (process time, one torch thread)
are recorded beside them.

At each budget the EMA weights draw `N_SAMPLES` digits (labels `i % 10`, seed 0, DPM-Solver++(2M),
`SAMPLER_STEPS` steps) and they are scored by digit FID (`snippets.metrics`) twice: against the
*thick* test split (how well the new data is learnt) and against the original test split (what is
kept of the old data). The floors: as many real thick train digits vs the thick test split, real
train digits vs the test split, and real thick digits vs the original test split (where a model
that had fully moved to thick digits would sit on the old data).

    python -m benchmarks finetune_digits                 # both arms, one after the other
    python -m benchmarks.finetune_digits --arm fine-tune --out ft.jsonl        # one arm per process
    python -m benchmarks.finetune_digits --arm "from scratch" --out scratch.jsonl
    python -m benchmarks.finetune_digits --summarise ft.jsonl scratch.jsonl    # -> results/
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from snippets.checkpoint import Checkpoint, generate, read_config
from snippets.data import load_digits
from snippets.fast_digits import upsample_digits
from snippets.finetuning import (
    finetune_config,
    init_from_checkpoint,
    load_transformed_digits,
)
from snippets.metrics import digit_metrics, load_classifier
from snippets.schedules import NoiseSchedule
from snippets.training import TrainConfig, train
from snippets.unet import UNet

HERE = Path(__file__).resolve().parent
CHECKPOINT = HERE.parent / "checkpoints" / "digits"
TRANSFORM = "thick"
BUDGETS = (0, 20, 60)  # optimizer steps
BATCH_SIZE = 32
WARMUP_STEPS = 10
FINETUNE_LR, SCRATCH_LR = 5e-4, 2e-3
N_SAMPLES, SAMPLER, SAMPLER_STEPS = 200, "dpmsolver++", 10
ARMS = ("fine-tune", "from scratch")


def run(fast: bool = False, rows: list[dict] | None = None) -> dict:
    """Train both arms to every budget and score them on the new and the old data.

    Args:
        fast: Seconds-long smoke run: budgets 0 and 2 steps, batch 4, 16 samples, 2 sampler steps.
        rows: Rows of `run_arm` computed earlier (e.g. each arm in its own process, see `main`);
            skips training.

    Returns:
        JSON-serialisable results: settings, floors, one row per (arm, budget).
    """
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread on a shared 2-core machine
    try:
        with threadpool_limits(limits=1):
            return _run(fast, rows=rows)
    finally:
        torch.set_num_threads(threads)


def _settings(fast: bool) -> dict:
    """The budgets and sizes of a run, and the shipped model's image and sample sizes."""
    shipped = read_config(CHECKPOINT)
    sizes = dict(
        image_size=shipped["model"]["sample_size"],
        upsample_to=shipped.get("data", {}).get("upsample_to"),
    )
    if fast:
        return dict(budgets=(0, 2), batch_size=4, n=16, sampler_steps=2, **sizes)
    return dict(
        budgets=BUDGETS,
        batch_size=BATCH_SIZE,
        n=N_SAMPLES,
        sampler_steps=SAMPLER_STEPS,
        **sizes,
    )


def _new_data(split: str, s: dict) -> torch.Tensor:
    """The thick digits at the data's size, what the samples are scored against (a model
    trained at 8x8 learns their least-squares 8x8 version, `load_transformed_digits`)."""
    return load_transformed_digits(
        split, TRANSFORM, s["upsample_to"] or s["image_size"]
    )[0]


def _score(model, schedule, prediction_type, s, classifier, refs) -> dict:
    """Sample `s["n"]` digits from `model` and score them against both test splits."""
    model.eval()
    loaded = Checkpoint(
        model, schedule, prediction_type, 10, {}, upsample_to=s["upsample_to"]
    )
    x0 = generate(
        loaded,
        s["n"],
        sampler=SAMPLER,
        num_inference_steps=s["sampler_steps"],
        generator=torch.Generator().manual_seed(0),
    )
    new = digit_metrics(x0, classifier, reference=refs["new"])
    old = digit_metrics(x0, classifier, reference=refs["old"])
    return {
        "fid_new": new["fid"],
        "fid_old": old["fid"],
        "confidence": new["confidence"],
    }


def _run(fast: bool, arms=ARMS, rows: list[dict] | None = None, out=None) -> dict:
    s = _settings(fast)
    classifier = load_classifier()
    images = _new_data("train", s)
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    pick = pick[: s["n"]]
    refs = _references(s)
    real_new = digit_metrics(images[pick], classifier, refs["new"])
    floors = {
        "new": real_new["fid"],
        "new_confidence": real_new["confidence"],
        "old": digit_metrics(load_digits("train")[0][pick], classifier)["fid"],
        "new_vs_old": digit_metrics(images[pick], classifier, refs["old"])["fid"],
    }
    if s["upsample_to"] is not None:
        # the closest a model of the network's size can come: the same thick train digits
        # brought to its size (least squares) and upsampled back
        held = load_transformed_digits("train", TRANSFORM, s["image_size"])[0][pick]
        floors["new_at_model_size"] = digit_metrics(
            upsample_digits(held, s["upsample_to"]), classifier, refs["new"]
        )["fid"]
    shipped = read_config(CHECKPOINT)
    if rows is None:
        rows = [row for arm in arms for row in run_arm(arm, fast, out)]
    return {
        "checkpoint": "checkpoints/digits",
        "checkpoint_step": shipped["step"],
        "transform": TRANSFORM,
        "image_size": s["image_size"],
        "upsample_to": s["upsample_to"],
        "budgets": sorted({r["steps"] for r in rows}),
        "batch_size": s["batch_size"],
        "warmup_steps": WARMUP_STEPS,
        "lr_schedule": "constant",
        "n_samples": s["n"],
        "sampler": SAMPLER,
        "sampler_steps": s["sampler_steps"],
        "seed": 0,
        "torch_threads": 1,
        "floors": floors,
        "rows": sorted(rows, key=lambda r: (ARMS.index(r["arm"]), r["steps"])),
    }


def _references(s: dict) -> dict:
    return {
        "new": _new_data("test", s),
        "old": load_digits("test")[0],
    }


def run_arm(arm: str, fast: bool = False, out: Path | None = None) -> list[dict]:
    """Train one arm through every budget (one resumed run) and score it at each.

    Args:
        arm: `"fine-tune"` or `"from scratch"`.
        fast: The smoke-test settings.
        out: A JSONL file to append each row to as soon as it is scored.

    Returns:
        One row per budget.
    """
    s = _settings(fast)
    classifier = load_classifier()
    images, labels = load_transformed_digits("train", TRANSFORM, s["image_size"])
    refs = _references(s)
    shipped = read_config(CHECKPOINT)
    schedule = NoiseSchedule.from_name(**shipped["schedule"])
    rows = []
    torch.manual_seed(0)
    model = UNet(**shipped["model"])
    if arm == "fine-tune":
        init_from_checkpoint(model, CHECKPOINT)
    lr = FINETUNE_LR if arm == "fine-tune" else SCRATCH_LR
    cpu_seconds, done = 0.0, 0
    with tempfile.TemporaryDirectory() as run_dir:
        for budget in s["budgets"]:
            loss = None
            if budget > 0:
                config = _config(shipped, budget, lr, s["batch_size"])
                start = time.process_time()
                result = train(
                    model,
                    images,
                    labels,
                    config,
                    out_dir=run_dir,
                    resume=done > 0,
                    progress_bar=False,
                )
                cpu_seconds += time.process_time() - start
                if result.interrupted:  # SIGINT/SIGTERM: no row for a cut-short budget
                    raise KeyboardInterrupt(f"{arm} stopped at step {result.step}")
                done = budget
                # score the EMA weights; a resumed run reloads the raw ones
                model.load_state_dict(result.ema_state)
                loss = sum(result.losses[-20:]) / len(result.losses[-20:])
            scores = _score(
                model, schedule, shipped["prediction_type"], s, classifier, refs
            )
            row = {
                "arm": arm,
                "steps": budget,
                "learning_rate": lr,
                "cpu_seconds": round(cpu_seconds, 1),
                "final_loss": loss,
                "process_seconds": round(time.process_time(), 1),
                **scores,
            }
            rows.append(row)
            if out is not None:
                with open(out, "a") as f:
                    f.write(json.dumps(row) + "\n")
            print(
                f"   {arm}, {budget} steps: FID new {scores['fid_new']:.1f}, "
                f"old {scores['fid_old']:.1f}, {cpu_seconds:.0f} CPU-s",
                flush=True,
            )
    return rows


def _config(shipped: dict, steps: int, lr: float, batch_size: int) -> TrainConfig:
    """The shipped model's recipe with this run's budget, batch, learning rate, constant schedule."""
    return finetune_config(
        shipped,
        steps,
        lr,
        WARMUP_STEPS,
        batch_size=batch_size,
        mixed_precision="no",
        checkpoint_every=0,
    )


def markdown(record: dict) -> str:
    """The results of a run (the runner's JSON record) as the Markdown table the pages include."""
    r = record["results"]
    f = r["floors"]
    lines = [
        "| start | steps | CPU-seconds | learning rate | digit FID vs thick digits "
        "| digit FID vs original digits | confidence |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        start = "shipped model" if row["arm"] == "fine-tune" else "random weights"
        lines.append(
            f"| {start} | {row['steps']} | {row['cpu_seconds']:.0f} "
            f"| {row['learning_rate']:g} | {row['fid_new']:.1f} | {row['fid_old']:.1f} "
            f"| {row['confidence']:.3f} |"
        )
    held = ""
    if "new_at_model_size" in f:
        side = r["image_size"]
        held = (
            f"; thick train digits held at the network's {side}x{side} and upsampled, vs "
            f"thick test {f['new_at_model_size']:.1f} (the closest a model of that size "
            "can come)"
        )
    lines += [
        "",
        f"Floors ({r['n_samples']} real digits): thick train vs thick test "
        f"{f['new']:.1f}; train vs test {f['old']:.1f}; thick train vs the original test "
        f"split {f['new_vs_old']:.1f}{held}. Transform {r['transform']!r}, "
        f"batch {r['batch_size']}, "
        f"constant learning rate after {r['warmup_steps']} warmup steps, "
        f"{r['n_samples']} samples per row (labels i % 10, seed {r['seed']}), {r['sampler']} "
        f"with {r['sampler_steps']} steps; CPU-seconds are process time on "
        f"{r['torch_threads']} torch thread. Shipped checkpoint at step "
        f"{r['checkpoint_step']}.",
    ]
    return "\n".join(lines) + "\n"


def figure(record: dict, path: Path) -> list[Path]:
    """FID against training steps for both starts, on the new and the old data (light/dark SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from snippets.plotting import ink, muted, save_figure

    r = record["results"]
    budgets = r["budgets"]

    def draw():
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for arm, colour in zip(ARMS, ("C0", "C1")):
            rows = [row for row in r["rows"] if row["arm"] == arm]
            steps = [row["steps"] for row in rows]
            ax.plot(
                steps,
                [row["fid_new"] for row in rows],
                marker="o",
                color=colour,
                label=f"{arm}: vs thick digits",
            )
            ax.plot(
                steps,
                [row["fid_old"] for row in rows],
                marker="s",
                ls="--",
                color=colour,
                label=f"{arm}: vs original digits",
            )
        ax.axhline(
            r["floors"]["new"], color=ink(), lw=1, ls=":", label="real thick vs thick"
        )
        ax.axhline(
            r["floors"]["new_vs_old"],
            color=muted(),
            lw=1,
            ls="-.",
            label="real thick vs original",
        )
        ax.set_xscale("symlog", linthresh=max(1, min(b for b in budgets if b > 0)))
        ax.set_yscale("log")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("training steps on thick digits")
        ax.set_ylabel("digit FID (lower is better)")
        fig.subplots_adjust(left=0.13, right=0.97, top=0.97, bottom=0.32)
        fig.legend(
            *ax.get_legend_handles_labels(),
            loc="lower center",
            ncol=2,
            fontsize=9,
            frameon=False,
        )
        return fig

    return save_figure(draw, path)


def main(argv=None) -> None:
    """Run one arm in this process (rows to a JSONL file), or summarise rows into the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arm", choices=ARMS, help="train and score this arm only")
    parser.add_argument("--out", type=Path, help="JSONL file the arm appends rows to")
    parser.add_argument(
        "--summarise",
        type=Path,
        nargs="+",
        metavar="JSONL",
        help="write benchmarks/results/finetune_digits.json from rows computed earlier",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.arm:
        run_arm(args.arm, out=args.out)
        return
    if not args.summarise:
        parser.error("give --arm (with --out) or --summarise")
    from benchmarks.__main__ import RESULTS, metadata, write_outputs

    rows = [
        json.loads(line)
        for path in args.summarise
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    start = time.perf_counter()
    results = run(rows=rows)
    record = {
        "benchmark": "finetune_digits",
        "fast": False,
        **metadata(),
        "seconds": round(
            sum(max(r["process_seconds"] for r in rows if r["arm"] == a) for a in ARMS)
            + time.perf_counter()
            - start,
            1,
        ),
        "results": results,
    }
    target = RESULTS / "finetune_digits.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, target)
    print("wrote", target, *write_outputs(record, RESULTS))


if __name__ == "__main__":
    main()
