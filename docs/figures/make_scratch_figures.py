"""Figures for "Diffusion models from scratch", made with the tested code in ``snippets/``.

Trains the course's ``BasicUNet`` exactly as the page and the notebook do (same seeds, so the same
weights on a given machine), then samples it and the shipped DDPM model. Run from the repository root
(about 2 minutes on 2 CPU cores, most of it training)::

    python docs/figures/make_scratch_figures.py     # writes docs/figures/scratch/*.png, loss*.svg
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "scratch"
CHECKPOINT = ROOT / "checkpoints" / "digits"

from snippets.basic_unet import BasicUNet  # noqa: E402
from snippets.checkpoint import generate, load_checkpoint  # noqa: E402
from snippets.data import load_digits, save_grid  # noqa: E402
from snippets.forward import corrupt  # noqa: E402
from snippets.sampling import naive_sample, naive_sample_progressive  # noqa: E402
from snippets.scratch import to_unit_interval, train_basic_unet  # noqa: E402
from snippets.training import plot_loss_curve  # noqa: E402

N_EPOCHS = 30  # the notebook's full mode: 30 passes over 1,438 digits, 360 steps of 128
SCALE = 8  # 16x16 digits drawn 128x128: sharp at half size on a 2x screen


def save_unit(images: torch.Tensor, name: str, nrow: int) -> Path:
    """Save images in [0, 1] (the course's range) as a grid PNG under OUT."""
    return save_grid(images * 2 - 1, OUT / name, nrow=nrow, scale=SCALE)


def corruption(x: torch.Tensor) -> Path:
    """Eight digits (columns) corrupted by amounts 0, 0.2, ..., 1 (rows), the same noise in each row."""
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(1))
    rows = [
        corrupt(x, torch.full((x.shape[0],), a), noise=noise)
        for a in torch.linspace(0, 1, 6).tolist()
    ]
    return save_unit(torch.cat(rows), "corrupt.png", nrow=x.shape[0])


def predictions(net: torch.nn.Module, x: torch.Tensor) -> Path:
    """Rows: clean digits, corrupted by amounts 0 ... 1 left to right, the network's prediction."""
    amount = torch.linspace(0, 1, x.shape[0])
    noisy = corrupt(x, amount, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        pred = net(noisy)
    return save_unit(torch.cat([x, noisy, pred]), "predictions.png", nrow=x.shape[0])


def naive_progress(net: torch.nn.Module, n_steps: int, every: int = 1) -> Path:
    """One row per shown step of the naive sampler: 8 images x after the step, then the 8 predictions.

    Steps `every - 1, 2 * every - 1, ...` are shown, and always the last one.
    """
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    rows = [
        torch.cat([x_i, pred])
        for i, x_i, pred in naive_sample_progressive(net, x, n_steps)
        if (i + 1) % every == 0 or i == n_steps - 1
    ]
    return save_unit(torch.cat(rows), f"naive_{n_steps}_steps.png", nrow=16)


def ddpm_samples() -> Path:
    """64 samples of the shipped DDPM model (DDPM, 250 steps), at the data's 16x16.

    `generate` samples at the network's size and returns the digits at the data's (an 8x8
    model's samples upsampled by `upsample_digits`), so this needs no trained BasicUNet and can
    be remade alone: ``from make_scratch_figures import ddpm_samples``.
    """
    OUT.mkdir(parents=True, exist_ok=True)
    loaded = load_checkpoint(CHECKPOINT)
    ddpm = generate(loaded, 64, "ddpm", 250, generator=torch.Generator().manual_seed(0))
    return save_grid(ddpm, OUT / "ddpm_samples.png", nrow=8, scale=SCALE)


def comparison(net: torch.nn.Module) -> list[Path]:
    """64 samples each: BasicUNet + naive sampler (40 steps) and the shipped DDPM model (DDPM, 250 steps)."""
    x = torch.rand(64, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    paths = [save_unit(naive_sample(net, x, 40), "naive_samples.png", nrow=8)]
    paths.append(ddpm_samples())
    return paths


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    images, _ = load_digits("train")
    images = to_unit_interval(images)
    torch.manual_seed(0)  # BasicUNet's initial weights
    net = BasicUNet()
    losses = train_basic_unet(
        net, images, n_epochs=N_EPOCHS, generator=torch.Generator().manual_seed(0)
    )
    paths = [
        corruption(images[:8]),
        plot_loss_curve(losses, OUT / "loss.svg", window=12),
        predictions(net, images[:8]),
    ]
    paths += [
        naive_progress(net, 5),
        naive_progress(net, 40, every=5),
        *comparison(net),
    ]
    for path in paths:
        print(f"wrote {path.relative_to(ROOT)}")
