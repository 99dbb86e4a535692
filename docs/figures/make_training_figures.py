"""Figures for the training page, made from the shipped checkpoint with the tested code in ``snippets/``.

Run from the repository root::

    python docs/figures/make_training_figures.py               # every figure
    python docs/figures/make_training_figures.py --run runs/x  # the loss curve of your own run
    python docs/figures/make_training_figures.py --only three-minutes   # the three-minute grid

The digit grids take half a minute on 2 CPU cores (PNGs at 4x, shown at half that). The loss curve
is an SVG pair (light and dark, `snippets.plotting`) drawn from a run's loss history, which
`training_state.safetensors` holds. The shipped checkpoint keeps only its EMA weights, so without
`--run` the script replays the shipped recipe by steps, at the image size and for the steps its
`config.json` names (the README's
`python -m snippets train --data digits --class-conditional --steps 5260`, seed 0): about ten
minutes on a free 2-core CPU. `--run runs/digits` draws the run the README's commands leave.

The three-minute grid trains the command line's default digits recipe for 3 slow-machine minutes
in steps (`benchmarks.fast_recipe.budget_steps`: 1,578 steps of the 8x8 model), exactly as
``python -m snippets train --data digits --steps 1578`` does (3 to 20 minutes of wall time,
depending on the machine and its load).
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

THREE_MINUTES = 3.0  # slow-machine minutes


def three_minute_steps() -> int:
    """Steps of the 8x8 model in 3 slow-machine minutes (the calibration of `fast_recipe`)."""
    from benchmarks.fast_recipe import CALIBRATION, budget_steps

    cost = json.loads(CALIBRATION.read_text())["relative_cost_per_step"]["two8@64"]
    return budget_steps(THREE_MINUTES, cost)


def three_minute_grid() -> Path:
    """64 digits of the default recipe after 3 slow-machine minutes (DPM-Solver++, 20 steps).

    The run is the command line's own (`python -m snippets train --data digits --steps N`,
    seed 0): an 8x8 model whose samples are upsampled to 16x16.
    """
    from snippets.__main__ import main

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        argv = ["train", "--data", "digits", "--steps", str(three_minute_steps())]
        if main([*argv, "--seed", "0", "--no-samples", "--out", str(run)]) != 0:
            raise RuntimeError("the three-minute run failed")
        loaded = load_checkpoint(run)
        samples = generate(
            loaded, 64, "dpmsolver++", 20, generator=torch.Generator().manual_seed(0)
        )
    # 8 x 17 + 1 = 137 pixels, x4: 548 pixels for a figure shown 274 wide (2x)
    return save_grid(samples, OUT / "three_minutes.png", nrow=8, scale=4)


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
    """Train the shipped recipe for the shipped run's number of steps into `out`.

    The image size is the shipped network's: 8 gives the command line's default two-level
    model (its samples upsampled to 16x16), 16 the three-level one (`--preset digits`).
    """
    config = json.loads((CHECKPOINT / "config.json").read_text())
    size = config["model"]["sample_size"]
    command = [sys.executable, "-m", "snippets", "train", "--data", "digits"]
    command += ["--image-size", str(size)]  # picks the preset the shipped model used
    command += ["--class-conditional", "--steps", str(config["step"])]
    command += ["--out", str(out)]
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
        choices=("grids", "loss", "three-minutes"),
        default=None,
        help="make only the digit grids, the loss curve or the three-minute grid",
    )
    args = parser.parse_args()
    paths = [] if args.only not in (None, "grids") else digit_grids()
    paths += [] if args.only not in (None, "loss") else loss_curve(args.run)
    paths += [] if args.only not in (None, "three-minutes") else [three_minute_grid()]
    for path in paths:
        print(f"wrote {path.relative_to(ROOT)}")
