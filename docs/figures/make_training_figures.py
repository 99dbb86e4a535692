"""Figures for the training page, made from the shipped checkpoint with the tested code in ``snippets/``.

Run from the repository root::

    python docs/figures/make_training_figures.py               # every figure
    python docs/figures/make_training_figures.py --run runs/x  # the loss curve of your own run

The digit grids take half a minute on 2 CPU cores (PNGs at 4x, shown at half that). The loss curve
is an SVG pair (light and dark, `snippets.plotting`) drawn from a run's loss history, which
`training_state.safetensors` holds. The shipped checkpoint keeps only its EMA weights, so without
`--run` the script replays the shipped recipe by steps (the README's
`python -m snippets train --data digits --class-conditional --steps 3662`, seed 0): about ten
minutes on a free 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "training"
CHECKPOINT = ROOT / "checkpoints" / "digits"

from snippets.checkpoint import generate, load_checkpoint  # noqa: E402
from snippets.data import load_digits, save_grid  # noqa: E402


def digit_grids() -> list[Path]:
    """Real test digits, and samples of the shipped model: one row per class, DPM-Solver++ with 20 steps."""
    OUT.mkdir(parents=True, exist_ok=True)
    x, y = load_digits("test")
    real = torch.cat([x[y == k][:10] for k in range(10)])
    paths = [save_grid(real, OUT / "real_digits.png", nrow=10, scale=4)]
    loaded = load_checkpoint(CHECKPOINT)
    labels = torch.arange(10).repeat_interleave(10)  # row k: ten samples of digit k
    for scale in (1.0, 3.0):
        samples = generate(
            loaded,
            100,
            "dpmsolver++",
            20,
            class_labels=labels,
            guidance_scale=scale,
            generator=torch.Generator().manual_seed(0),
        )
        paths.append(
            save_grid(
                samples, OUT / f"samples_guidance_{scale:g}.png", nrow=10, scale=4
            )
        )
    return paths


def run_losses(run: Path) -> list[float]:
    """The per-step losses of a training run folder (its `training_state.safetensors`)."""
    from safetensors.torch import load_file

    from snippets.checkpoint import STATE_TENSORS_FILE

    return load_file(run / STATE_TENSORS_FILE)["extra.losses"].tolist()


def replay_shipped_recipe(out: Path) -> Path:
    """Train the shipped recipe for the shipped run's number of steps into `out`."""
    steps = json.loads((CHECKPOINT / "config.json").read_text())["step"]
    command = [sys.executable, "-m", "snippets", "train", "--data", "digits"]
    command += ["--class-conditional", "--steps", str(steps), "--out", str(out)]
    print(" ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)
    return out


def loss_curve(run: Path | None = None) -> list[Path]:
    """The loss and its running mean of a run (default: the shipped recipe replayed by steps)."""
    from snippets.training import plot_loss_curve

    if run is None:
        with tempfile.TemporaryDirectory(prefix="digits-replay-") as tmp:
            losses = run_losses(replay_shipped_recipe(Path(tmp)))
    else:
        losses = run_losses(run)
    light = plot_loss_curve(losses, OUT / "loss.svg")
    return [light, light.with_name("loss-dark.svg")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run",
        type=Path,
        default=None,
        help="a training run folder whose loss to draw (default: replay the shipped recipe)",
    )
    parser.add_argument(
        "--only",
        choices=("grids", "loss"),
        default=None,
        help="make only the digit grids or only the loss curve",
    )
    args = parser.parse_args()
    paths = [] if args.only == "loss" else digit_grids()
    paths += [] if args.only == "grids" else loss_curve(args.run)
    for path in paths:
        print(f"wrote {path.relative_to(ROOT)}")
