"""Figures for "What are diffusion models?", made by the tested code in ``snippets/``.

Two image strips, both from the model that ships in ``checkpoints/digits/``:

* ``noising.png``: one real digit, noised by the forward process at growing timesteps;
* ``denoising.png``: pure noise turned into a digit by the trained model in 10 DDIM steps, with
  the model's guess of the clean digit at each step underneath.

PNG at twice the width the page shows them (600 CSS px), with a transparent background and
mid-grey labels that read on the light and the dark theme. Run from the repository root::

    python docs/figures/make_onramp_figures.py              # writes docs/figures/onramp/*.png
    python docs/figures/make_onramp_figures.py --out DIR    # somewhere else
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "onramp"
CHECKPOINT = ROOT / "checkpoints" / "digits"

from snippets.checkpoint import load_checkpoint  # noqa: E402
from snippets.data import load_digits  # noqa: E402
from snippets.forward import q_sample  # noqa: E402
from snippets.guidance import cfg_model  # noqa: E402
from snippets.sampling import ddim_sample_progressive  # noqa: E402

DISPLAY_WIDTH_PX = 600  # the page shows each strip at this CSS width: { width="600" }
DPI = 200  # 6 inches at 200 dpi = 1200 px, twice the display width
LABEL = "#808080"  # mid grey: readable on white and on the slate scheme's dark grey
FONT_PT = 9  # 9 pt at 200 dpi = 25 px, shown at half size: 12.5 CSS px
NOISE_TIMESTEPS = [0, 100, 250, 400, 550, 700, 999]
DIGIT = 3  # the class the denoising strip asks for
DDIM_STEPS = 10


def strip(rows: list[list[torch.Tensor]], titles: list[str], row_labels: list[str]):
    """A grid of square images in [-1, 1], one title per column and one label per row."""
    n_rows, n_cols = len(rows), len(rows[0])
    width = DISPLAY_WIDTH_PX / 100  # inches at 100 "CSS" dpi; saved at DPI
    label_room = 0.9 if any(row_labels) else 0.0
    cell = (width - label_room) / n_cols
    height = n_rows * cell + 0.35
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(width, height), squeeze=False, dpi=100
    )
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            ax = axes[r][c]
            ax.imshow(
                image.squeeze(0).clamp(-1, 1),
                cmap="gray",
                vmin=-1,
                vmax=1,
                interpolation="nearest",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(LABEL)
            if r == 0:
                ax.set_title(titles[c], fontsize=FONT_PT, color=LABEL, pad=3)
    fig.subplots_adjust(
        left=label_room / width,
        right=0.995,
        bottom=0.01,
        top=1 - 0.3 / height,
        wspace=0.08,
        hspace=0.08,
    )
    for r, label in enumerate(row_labels):
        if label:  # beside the row, right-aligned against the first image
            box = axes[r][0].get_position()
            fig.text(
                box.x0 - 0.01,
                (box.y0 + box.y1) / 2,
                label,
                fontsize=FONT_PT,
                color=LABEL,
                ha="right",
                va="center",
            )
    return fig


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, transparent=True)
    plt.close(fig)
    return path


def noising(checkpoint, out: Path) -> Path:
    """A test-set digit at growing timesteps of the model's own (cosine) schedule.

    Shown at the size the model works at (the digits' native 8x8 for a model trained there),
    as the forward process noises it.
    """
    images, labels = load_digits("test")
    # the first test digit of class DIGIT, at the network's size
    x0 = checkpoint.to_model(images[(labels == DIGIT).nonzero()[0]])
    t = torch.tensor(NOISE_TIMESTEPS)
    noise = torch.randn(
        (len(t), *x0.shape[1:]), generator=torch.Generator().manual_seed(0)
    )
    x_t = q_sample(
        x0.expand(len(t), -1, -1, -1), t, checkpoint.schedule.alpha_bar, noise
    )
    fig = strip([list(x_t)], [f"t = {s}" for s in NOISE_TIMESTEPS], [""])
    return save(fig, out / "noising.png")


@torch.no_grad()
def denoising(checkpoint, out: Path) -> Path:
    """Noise to a digit with DDIM: x_t after each step, and the model's x_0 guess underneath."""
    size = checkpoint.image_size  # every image at the network's size, as it denoises
    x_T = torch.randn((1, 1, size, size), generator=torch.Generator().manual_seed(0))
    model = cfg_model(
        checkpoint.model,
        torch.tensor([DIGIT]),
        guidance_scale=3.0,
        null_label=checkpoint.num_classes,
    )
    steps = list(
        ddim_sample_progressive(
            model,
            x_T,
            checkpoint.schedule,
            DDIM_STEPS,
            prediction_type=checkpoint.prediction_type,
        )
    )
    shown = [1, 3, 5, 6, 7, 9]  # after steps 2, 4, 6, 7, 8 and 10
    x_rows = [x_T[0]] + [steps[i][1][0] for i in shown]
    x0_rows = [torch.full_like(x_T[0], -1.0)] + [steps[i][2][0] for i in shown]
    titles = ["noise"] + [f"step {i + 1}" for i in shown]
    fig = strip([x_rows, x0_rows], titles, ["image", "model's\nguess"])
    fig.axes[len(x_rows)].set_visible(False)  # no guess before the first step
    return save(fig, out / "denoising.png")


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=OUT, help="folder for the PNGs (created)"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=CHECKPOINT,
        help="digits checkpoint folder (default: the shipped model)",
    )
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out must be a folder, got the file {args.out}")
    checkpoint = load_checkpoint(args.checkpoint)
    return [noising(checkpoint, args.out), denoising(checkpoint, args.out)]


if __name__ == "__main__":
    for path in main():
        print(path)
