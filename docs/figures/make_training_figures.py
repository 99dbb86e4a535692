"""Figures for the training page, made from the shipped checkpoint with the tested code in ``snippets/``.

Run from the repository root (about half a minute on 2 CPU cores)::

    python docs/figures/make_training_figures.py     # writes docs/figures/training/*.png
"""

from __future__ import annotations

import shutil
import sys
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


def loss_curve() -> Path:
    """The loss curve the shipped run wrote."""
    OUT.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(CHECKPOINT / "loss.png", OUT / "loss.png"))


if __name__ == "__main__":
    for path in [*digit_grids(), loss_curve()]:
        print(f"wrote {path.relative_to(ROOT)}")
