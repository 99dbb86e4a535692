"""Sampler quality vs number of model evaluations, on the shipped digits model.

Every sampler of `snippets.sampling.SAMPLERS` draws the same 500 digits (labels 0-9, 50 each,
`torch.Generator` seeded 0, so every sampler starts from the same $x_T$) from the shipped
class-conditional v-prediction model `checkpoints/digits/` through `snippets.checkpoint.generate`,
with its default guidance scale (1.0: the plain conditional model, one network call per model
evaluation). Settings: DDPM at 1000 steps and strided to 250/100/50, DDIM (eta 0) at 10/25/50/100,
Euler, Heun and DPM-Solver++(2M) at 5/10/20 steps.

For each setting:

* ``nfe``: model evaluations, *counted* by wrapping the network (Heun takes 2 * steps - 1);
* digit FID, classifier confidence and class entropy (`snippets.metrics.digit_metrics`);
* wall time in seconds and per model evaluation (on a shared machine: indicative only).

The floor is 500 real train digits against the test split (`fid_floor`), computed for five
choices of the 500 digits so that the page can show how noisy a 500-image FID is.
Targets of issue 8, reported (never asserted): at <= 20 model evaluations, a sampler within 10 % of
DDPM-1000's FID and within 1.2x the floor.
"""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path

import torch
from torch import nn

from benchmarks import repo_relative
from snippets.checkpoint import generate, load_checkpoint
from snippets.metrics import digit_metrics, fid_floor, load_classifier

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHECKPOINT = REPO / "checkpoints" / "digits"
RESULTS = HERE / "results"

# (sampler, num_inference_steps); the first entry is the reference (DDPM at full length)
SETTINGS = [
    ("ddpm", 1000),
    ("ddpm", 250),
    ("ddpm", 100),
    ("ddpm", 50),
    ("ddim", 100),
    ("ddim", 50),
    ("ddim", 25),
    ("ddim", 10),
    ("euler", 20),
    ("euler", 10),
    ("euler", 5),
    ("heun", 20),
    ("heun", 10),
    ("heun", 5),
    ("dpmsolver++", 20),
    ("dpmsolver++", 10),
    ("dpmsolver++", 5),
]
FAST_SETTINGS = [
    ("ddpm", 3),
    ("ddpm", 2),
    ("ddim", 3),
    ("ddim", 2),
    ("euler", 3),
    ("euler", 2),
    ("heun", 3),
    ("heun", 2),
    ("dpmsolver++", 3),
    ("dpmsolver++", 2),
]
MAX_NFE = 20  # the budget of model evaluations
WITHIN_REFERENCE = 1.10  # FID within 10 % of DDPM-1000's
WITHIN_FLOOR = 1.20  # FID within 1.2x the floor
LABELS = {
    "ddpm": "DDPM",
    "ddim": "DDIM (eta 0)",
    "euler": "Euler (Karras)",
    "heun": "Heun (Karras)",
    "dpmsolver++": "DPM-Solver++(2M)",
}


class CountingModel(nn.Module):
    """Wraps a network and counts its forward calls (one per model evaluation of a batch)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.model(*args, **kwargs)


def run(fast: bool = False, out: Path | None = None, device: str = "cpu") -> dict:
    """Sample with every setting, score, and plot FID against model evaluations.

    Args:
        fast: Seconds-long smoke run: 16 digits, 2-3 steps per sampler.
        out: Folder for the plot (default `benchmarks/results/`, or its `fast/` in fast mode).
        device: Where the UNet runs (`"cpu"`, `"cuda"`). Every random draw ($x_T$ and DDPM's per-step
            noise) comes from one seeded CPU generator, so devices differ only by floating-point
            round-off. Wall times do not compare.

    Returns:
        JSON-serialisable results: settings, floor, one row per setting, targets, plot path.
    """
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    # One thread: on a shared 2-core machine two torch threads spin against other processes and a
    # batch-500 forward pass measured 4-6x slower than with one.
    torch.set_num_threads(1)
    try:
        # FID's 64x64 eigen-decompositions gain nothing from BLAS threads and stall under contention
        with threadpool_limits(limits=1):
            return _run(fast, out, device)
    finally:
        torch.set_num_threads(threads)


def _run(fast: bool, out: Path | None, device: str) -> dict:
    n = 16 if fast else 500
    settings = FAST_SETTINGS if fast else SETTINGS
    seed = 0
    checkpoint = load_checkpoint(CHECKPOINT, device=device)
    if checkpoint.num_classes is None:
        raise ValueError(
            f"{CHECKPOINT} is unconditional; this benchmark expects the class-conditional digits model"
        )
    guidance_scale = (
        inspect.signature(generate).parameters["guidance_scale"].default
    )  # what users get
    counting = CountingModel(checkpoint.model)
    checkpoint.model = counting
    class_labels = (
        torch.arange(n) % checkpoint.num_classes
    )  # 50 of each digit for n = 500
    classifier = load_classifier()
    floors = [fid_floor(n, classifier, seed=s) for s in range(1 if fast else 5)]
    floor = floors[0]

    load_before = os.getloadavg()[0]
    rows = []
    for sampler, steps in settings:
        counting.calls = 0
        start = time.perf_counter()
        # one batch of n, so that the number of network calls is the number of model evaluations
        generator = torch.Generator().manual_seed(
            seed
        )  # on the CPU: the same draws on any device
        x0 = generate(
            checkpoint,
            n,
            sampler=sampler,
            num_inference_steps=steps,
            class_labels=class_labels,
            guidance_scale=guidance_scale,
            generator=generator,
            batch_size=n,
        )
        if device != "cpu":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        metrics = digit_metrics(x0, classifier)
        rows.append(
            {
                "sampler": sampler,
                "steps": steps,
                "nfe": counting.calls,
                "fid": metrics["fid"],
                "confidence": metrics["confidence"],
                "class_entropy": metrics["class_entropy"],
                "seconds": round(seconds, 2),
                "ms_per_nfe": round(seconds / counting.calls * 1e3, 1),
            }
        )
        print(
            f"   {sampler:>12} {steps:>4} steps  nfe {counting.calls:>4}  FID {metrics['fid']:7.2f}  "
            f"{seconds:7.1f} s",
            flush=True,
        )

    reference = rows[0]
    for row in rows:
        row["fid_over_reference"] = row["fid"] / reference["fid"]
        row["fid_over_floor"] = row["fid"] / floor["fid"]
    targets = target_report(rows, reference, floor["fid"])
    plot = plot_fid_vs_nfe(
        rows,
        floor["fid"],
        (out or (RESULTS / "fast" if fast else RESULTS)) / "sampler_quality.png",
    )
    return {
        "checkpoint": "checkpoints/digits",
        "prediction_type": checkpoint.prediction_type,
        "checkpoint_step": checkpoint.config["step"],
        "n_samples": n,
        "labels": f"i % {checkpoint.num_classes} for i < {n} ({n // checkpoint.num_classes} per class)",
        "seed": seed,
        "guidance_scale": guidance_scale,
        "batch_size": n,
        "device": device
        if device == "cpu"
        else f"{device} ({torch.cuda.get_device_name()})",
        "torch_threads": torch.get_num_threads(),  # 1, set by run()
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "floor": floor,
        "floor_fids_by_seed": [f["fid"] for f in floors],
        "reference": f"{reference['sampler']}-{reference['steps']}",
        "rows": rows,
        "targets": targets,
        "plot": repo_relative(plot),
    }


def target_report(rows: list[dict], reference: dict, floor_fid: float) -> dict:
    """Which settings with at most `MAX_NFE` model evaluations meet the issue's two targets.

    Args:
        rows: One dict per setting with `sampler`, `steps`, `nfe`, `fid`.
        reference: The DDPM-1000 row.
        floor_fid: FID of real digits at the same n.

    Returns:
        The thresholds and the settings (``"sampler-steps"``) meeting each and both.
    """
    within_reference = [
        f"{r['sampler']}-{r['steps']}"
        for r in rows
        if r["nfe"] <= MAX_NFE and r["fid"] <= WITHIN_REFERENCE * reference["fid"]
    ]
    within_floor = [
        f"{r['sampler']}-{r['steps']}"
        for r in rows
        if r["nfe"] <= MAX_NFE and r["fid"] <= WITHIN_FLOOR * floor_fid
    ]
    both = [name for name in within_reference if name in within_floor]
    return {
        "max_nfe": MAX_NFE,
        "reference_fid": reference["fid"],
        "reference_threshold": WITHIN_REFERENCE * reference["fid"],
        "floor_threshold": WITHIN_FLOOR * floor_fid,
        "within_10pct_of_reference": within_reference,
        "within_1.2x_floor": within_floor,
        "both": both,
        "met": bool(both),
    }


def plot_fid_vs_nfe(rows: list[dict], floor_fid: float, path: Path) -> Path:
    """Digit FID against model evaluations (log x), one line per sampler, floor lines, DDPM-1000 starred.

    A `.png` path gets one light PNG; an `.svg` path a light and a dark variant (`snippets.plotting`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from snippets.plotting import THEMES, ink, muted, save_figure

    def draw():
        fig, ax = plt.subplots(figsize=(6.8, 4.6))
        for sampler in dict.fromkeys(r["sampler"] for r in rows):
            points = sorted(
                (r["nfe"], r["fid"]) for r in rows if r["sampler"] == sampler
            )
            ax.plot(*zip(*points), marker="o", label=LABELS.get(sampler, sampler))
        reference = rows[0]
        ax.plot(
            [reference["nfe"]],
            [reference["fid"]],
            marker="*",
            ms=14,
            color=ink(),
            ls="none",
            label=f"{LABELS.get(reference['sampler'], reference['sampler'])}-{reference['steps']} (reference)",
        )
        ax.axhline(floor_fid, color=ink(), lw=1, ls=":", label="floor (real digits)")
        ax.axhline(
            WITHIN_FLOOR * floor_fid, color=muted(), lw=1, ls="--", label="1.2 x floor"
        )
        ax.axvline(
            MAX_NFE,
            color=muted(),
            lw=0.8,
            ls="-.",
            label=f"{MAX_NFE} evaluations (target budget)",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("model evaluations (NFE, log scale)")
        ax.set_ylabel("digit FID (lower is better, log scale)")
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False
        )
        fig.tight_layout()
        return fig

    path = Path(path)
    save_figure(draw, path, themes=THEMES if path.suffix == ".svg" else ("light",))
    return path


def figure(record: dict, path: Path) -> list[Path]:
    """The site's figure of a run (its JSON record): the plot as light and dark SVGs at `path`."""
    r = record["results"]
    plot_fid_vs_nfe(r["rows"], r["floor"]["fid"], path)
    return [path, path.with_name(f"{path.stem}-dark{path.suffix}")]


def markdown(record: dict) -> str:
    """The results of a run (the runner's JSON record) as the Markdown table that the page includes."""
    r = record["results"]
    floor = r["floor"]
    # Two tables of six columns rather than one of ten: each fits a laptop's reading column and
    # scrolls little on a phone. The first answers "how good", the second "how sure and how fast".
    lines = [
        "| sampler | steps | model evaluations | digit FID | FID / DDPM-1000 "
        "| FID / floor |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {LABELS.get(row['sampler'], row['sampler'])} | {row['steps']} "
            f"| {row['nfe']} | {row['fid']:.1f} | {row['fid_over_reference']:.2f} "
            f"| {row['fid_over_floor']:.2f} |"
        )
    lines += [
        f"| *floor: {floor['n']} real train digits* | | | {floor['fid']:.1f} | | 1.00 |",
        "",
        "| sampler | steps | confidence | class entropy | wall time (s) "
        "| ms per evaluation |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {LABELS.get(row['sampler'], row['sampler'])} | {row['steps']} "
            f"| {row['confidence']:.3f} | {row['class_entropy']:.3f} "
            f"| {row['seconds']:.1f} | {row['ms_per_nfe']:.0f} |"
        )
    lines.append(
        f"| *floor: {floor['n']} real train digits* | | {floor['confidence']:.3f} "
        f"| {floor['class_entropy']:.3f} | | |"
    )
    t = r["targets"]
    seeds = ", ".join(f"{f:.1f}" for f in r["floor_fids_by_seed"])
    lines += [
        "",
        f"{r['n_samples']} samples, {r['labels']}, seed {r['seed']}, guidance scale {r['guidance_scale']:g}, "
        f"one batch of {r['batch_size']}, model on {r.get('device', 'cpu')}, load average (1 min) before and after "
        f"{r['load_average_1min'][0]:.1f}, {r['load_average_1min'][1]:.1f}. The floor for {len(r['floor_fids_by_seed'])} draws of the real "
        f"digits: {seeds}.",
        "",
        f"Targets at <= {t['max_nfe']} model evaluations: FID <= {t['reference_threshold']:.1f} "
        f"(DDPM-1000 + 10 %) met by {_names(t['within_10pct_of_reference'])}; "
        f"FID <= {t['floor_threshold']:.1f} (1.2x floor) met by {_names(t['within_1.2x_floor'])}; "
        f"both: {_names(t['both'])}.",
    ]
    return "\n".join(lines) + "\n"


def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


if __name__ == "__main__":
    import json

    print(json.dumps(run(fast=True), indent=2))
