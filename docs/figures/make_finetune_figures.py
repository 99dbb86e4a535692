"""Figures for the fine-tuning page: thick digits, the shipped model's samples before and after
fine-tuning on them, made with the tested code in ``snippets/``.

The digits are thickened at 16x16, as the reader sees them; a model that works at the digits'
native 8x8 is fine-tuned on their least-squares 8x8 version (`load_transformed_digits` with
`image_size=8`), as in `benchmarks/finetune_digits.py`.

Run from the repository root (one torch thread; fine-tunes the shipped model for ``STEPS`` steps,
about a CPU-minute)::

    python docs/figures/make_finetune_figures.py     # writes docs/figures/finetune/*.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "finetune"
CHECKPOINT = ROOT / "checkpoints" / "digits"
STEPS, LEARNING_RATE, BATCH_SIZE = 60, 5e-4, 32  # one of the benchmark's budgets

from snippets.checkpoint import generate, load_checkpoint, read_config  # noqa: E402
from snippets.data import load_digits, save_grid  # noqa: E402
from snippets.finetuning import (  # noqa: E402
    finetune_config,
    init_from_checkpoint,
    load_transformed_digits,
)
from snippets.training import train  # noqa: E402
from snippets.unet import UNet  # noqa: E402

LABELS = torch.arange(10).repeat(4)  # four rows of 0, 1, ..., 9


def _samples(directory: Path) -> torch.Tensor:
    return generate(
        load_checkpoint(directory),
        len(LABELS),
        "dpmsolver++",
        20,
        class_labels=LABELS,
        generator=torch.Generator().manual_seed(0),
    )


def _real(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Four real images of each digit, laid out as `LABELS`."""
    by_class = [images[labels == k][:4] for k in range(10)]
    return torch.stack([by_class[k][i // 10] for i, k in enumerate(LABELS.tolist())])


def grids() -> list[Path]:
    """Real plain and thick digits, then the shipped model's samples before and after."""
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    checkpoint = load_checkpoint(CHECKPOINT)
    size = checkpoint.image_size  # the network's: it learns the thick digits at this size
    plain, labels = load_digits("test")
    thick, _ = load_transformed_digits("test", "thick")
    paths = [
        save_grid(_real(plain, labels), OUT / "real_digits.png", nrow=10, scale=4),
        save_grid(_real(thick, labels), OUT / "real_thick.png", nrow=10, scale=4),
        save_grid(_samples(CHECKPOINT), OUT / "shipped.png", nrow=10, scale=4),
    ]
    shipped = read_config(CHECKPOINT)
    torch.manual_seed(0)
    model = UNet(**shipped["model"])
    init_from_checkpoint(model, CHECKPOINT)
    images, train_labels = load_transformed_digits("train", "thick", image_size=size)
    # the run's config.json records the data, so its samples are upsampled as the shipped ones
    run_info = {
        "data": "digits",
        "image_size": size,
        "transform": "thick",
        "upsample_to": checkpoint.upsample_to,
    }
    config = finetune_config(
        shipped,
        STEPS,
        LEARNING_RATE,
        batch_size=BATCH_SIZE,
        mixed_precision="no",
        checkpoint_every=0,
    )
    with tempfile.TemporaryDirectory() as run:
        train(model, images, train_labels, config, out_dir=run, run_info=run_info)
        paths.append(
            save_grid(_samples(Path(run)), OUT / "finetuned.png", nrow=10, scale=4)
        )
    return paths


if __name__ == "__main__":
    for path in grids():
        print(f"wrote {path.relative_to(ROOT)}")
