"""Make the figures of the latent-diffusion page from the shipped miniature Stable Diffusion.

    .venv/bin/python docs/figures/make_latent_figures.py          # docs/figures/latent/
    .venv/bin/python docs/figures/make_latent_figures.py --fast   # fewer samples, into a temp dir

The pipeline `checkpoints/mini-sd/` (autoencoder, text encoder and UNet trained by
`python -m snippets train-sd`) is loaded offline with diffusers' `StableDiffusionPipeline`:

* `latent_autoencoder.png`: test digits, their 4x4x4 latents (the four channels side by side) and
  the autoencoder's reconstructions;
* `latent_prompts.png`: eight samples per prompt, one row per prompt, DPM-Solver++(2M) in 20 steps
  at guidance scale 3, the same starting latents in every row.

PNGs at 200 dpi, a light and a dark variant (`snippets.plotting`). Seconds on a CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "figures" / "latent"
PIPELINE = ROOT / "checkpoints" / "mini-sd"
PROMPTS = [
    "a two",
    "a thin two",
    "a thick two",
    "an upright seven",
    "a slanted seven",
    "a thick zero",
    "a thin one",
    "a five",
]

from snippets.data import load_digits  # noqa: E402
from snippets.latent_diffusion import generate, load_pipeline  # noqa: E402
from snippets.plotting import is_dark, save_figure  # noqa: E402


def _cmap():
    return "gray" if is_dark() else "gray_r"


def _strip(ax):
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _tile(images: torch.Tensor, pad_value: float) -> torch.Tensor:
    """(N, H, W) -> one row (H + 2, N (W + 2)), each image framed by `pad_value`."""
    framed = torch.nn.functional.pad(images, (1, 1, 1, 1), value=pad_value)
    return framed.permute(1, 0, 2).reshape(framed.shape[1], -1)


def fig_autoencoder(pipe, fast: bool) -> None:
    n = 6 if fast else 10
    x = load_digits("test")[0][:n]
    with torch.no_grad():
        z = pipe.vae.encode(x).latent_dist.mode()
        x_rec = pipe.vae.decode(z).sample.clamp(-1, 1)
    z = z * pipe.vae.config.scaling_factor
    # the 4 channels of each 4x4 latent side by side, as a 4x16 strip per digit
    strips = z.permute(0, 2, 1, 3).reshape(n, 4, 16)
    rows = [
        ("test digits x", _tile(x[:, 0], -1.0), (-1, 1), _cmap()),
        ("latents z (4 channels)", _tile(strips, 0.0), (-3, 3), "coolwarm"),
        ("decoded D(z)", _tile(x_rec[:, 0], -1.0), (-1, 1), _cmap()),
    ]

    def draw():
        fig, axes = plt.subplots(
            3, 1, figsize=(7.0, 3.6), gridspec_kw={"height_ratios": [18, 6, 18]}
        )
        for ax, (label, image, (lo, hi), cmap) in zip(axes, rows):
            ax.imshow(image, cmap=cmap, vmin=lo, vmax=hi, aspect="equal")
            ax.set_yticks([image.shape[0] / 2 - 0.5], [label])
            _strip(ax)
        fig.tight_layout()
        return fig

    _save(draw, "latent_autoencoder")


def fig_prompts(pipe, fast: bool) -> None:
    k, steps = (4, 4) if fast else (8, 20)
    prompts = PROMPTS[:3] if fast else PROMPTS
    z_T = torch.randn(k, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    rows = []
    for prompt in prompts:
        x = generate(pipe, [prompt] * k, steps, 3.0, latents=z_T)
        rows.append(_tile(x[:, 0], -1.0))
    grid = torch.cat(rows)

    def draw():
        fig, ax = plt.subplots(figsize=(7.0, 0.62 * len(prompts) + 0.5))
        ax.imshow(grid, cmap=_cmap(), vmin=-1, vmax=1)
        ax.set_yticks([9 + 18 * i for i in range(len(prompts))], prompts)
        _strip(ax)
        ax.set_title(
            f"StableDiffusionPipeline, DPM-Solver++(2M) {steps} steps, s = 3; "
            "same latents per column",
            fontsize=11,
        )
        fig.tight_layout()
        return fig

    _save(draw, "latent_prompts")


def _save(draw, name):
    for path in save_figure(draw, OUT / f"{name}.png"):
        print(f"wrote {path}")


def main(argv=None):
    global OUT
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fast", action="store_true", help="few samples, temp dir")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--pipeline", type=Path, default=PIPELINE, help="pipeline")
    args = parser.parse_args(argv)
    if args.out is not None:
        OUT = args.out.resolve()
    elif args.fast:
        import tempfile

        OUT = Path(tempfile.mkdtemp(prefix="latent-figures-"))
    torch.set_num_threads(1)
    pipe = load_pipeline(args.pipeline)
    fig_autoencoder(pipe, args.fast)
    fig_prompts(pipe, args.fast)


if __name__ == "__main__":
    main()
