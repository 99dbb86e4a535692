"""Make the figures of the editing page (docs/editing/) with the shipped digits model.

    .venv/bin/python docs/figures/make_editing_figures.py                # every figure
    .venv/bin/python docs/figures/make_editing_figures.py sdedit         # only those whose name starts so
    .venv/bin/python docs/figures/make_editing_figures.py --fast --out /tmp/x   # tiny settings

Every figure is a grid of 16x16 digits drawn by `snippets.inversion`, `snippets.sdedit`,
`snippets.inpainting` and `snippets.interpolation` on `checkpoints/digits/`, seeded; about two
minutes on a 2-core CPU in all. Output: PNGs at 200 dpi in docs/figures/editing/, a light and a
dark variant each (`snippets.plotting`).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from snippets.checkpoint import load_checkpoint  # noqa: E402
from snippets.data import load_digits  # noqa: E402
from snippets.inpainting import inpaint, repaint  # noqa: E402
from snippets.interpolation import lerp, slerp  # noqa: E402
from snippets.inversion import ddim_invert, ddim_round_trip  # noqa: E402
from snippets.plotting import is_dark, save_figure  # noqa: E402
from snippets.sampling import ddim_sample  # noqa: E402
from snippets.sdedit import sdedit  # noqa: E402
from snippets.sketch import sketch_digits  # noqa: E402

OUT = ROOT / "docs" / "figures" / "editing"


CHECKPOINT = ROOT / "checkpoints" / "digits"


@functools.cache
def _models(folder: Path = CHECKPOINT):
    """The shipped model, unconditional (null label) and conditioned on given labels.

    The network works at its own size (8x8 for a model trained at the digits' native size):
    images go in through `checkpoint.to_model` and every digit shown comes out through
    `checkpoint.to_data`, at 16x16, as `generate` returns samples.
    """
    checkpoint = load_checkpoint(folder)
    network, k = checkpoint.model, checkpoint.num_classes

    def unconditional(x, t):
        return network(x, t, class_labels=torch.full((x.shape[0],), k))

    def conditional(labels):
        return lambda x, t: network(x, t, class_labels=labels)

    return checkpoint, unconditional, conditional


def grid_figure(rows, row_labels, col_labels=None, title=None, cell=0.62):
    """A figure builder: one row of images per entry of `rows` (tensors `(n, 1, H, W)`)."""
    n_rows, n_cols = len(rows), rows[0].shape[0]
    label_width = 1.9

    def draw():
        fig, axes = plt.subplots(
            n_rows,
            n_cols,
            figsize=(
                label_width + cell * n_cols,
                0.35 + cell * n_rows + 0.3 * bool(title),
            ),
            squeeze=False,
        )
        for i, row in enumerate(rows):
            for j in range(n_cols):
                ax = axes[i, j]
                ax.imshow(
                    row[j, 0].clamp(-1, 1).numpy(),
                    cmap="gray" if is_dark() else "gray_r",
                    vmin=-1,
                    vmax=1,
                    interpolation="nearest",
                )
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if i == 0 and col_labels is not None:
                    ax.set_title(col_labels[j], fontsize=10)
            axes[i, 0].set_ylabel(
                row_labels[i], rotation=0, ha="right", va="center", fontsize=10
            )
        if title:
            fig.suptitle(title, fontsize=11)
        fig.subplots_adjust(
            left=label_width / (label_width + cell * n_cols),
            right=0.99,
            wspace=0.06,
            hspace=0.06,
        )
        return fig

    return draw


def fig_inversion(out, fast, folder=CHECKPOINT):
    """Held-out digits, inverted by DDIM to x_T and sampled back, at a few numbers of steps."""
    checkpoint, _, conditional = _models(folder)
    images, labels = load_digits("test")
    n = 4 if fast else 8
    x0, y = images[:n], labels[:n]
    x0_model = checkpoint.to_model(x0)
    steps_list = [2, 3] if fast else [2, 10, 50]
    kw = dict(prediction_type=checkpoint.prediction_type)
    x_T = ddim_invert(
        conditional(y), x0_model, checkpoint.schedule, steps_list[-1], **kw
    )
    # x_T has std about 1: divided by 3 to fit [-1, 1]; shown at the network's size
    rows = [x0, x_T / 3]
    names = ["held-out digits", f"x_T / 3 ({steps_list[-1]} steps)"]
    for steps in steps_list:
        _, back = ddim_round_trip(
            conditional(y), x0_model, checkpoint.schedule, steps, **kw
        )
        rows.append(checkpoint.to_data(back))
        names.append(f"back, {steps} steps")
    return save_figure(grid_figure(rows, names), out / "inversion.png")


def fig_sdedit(out, fast, folder=CHECKPOINT):
    """Jittered sketches of digits edited by SDEdit at increasing strength (unconditional)."""
    checkpoint, unconditional, _ = _models(folder)
    digits = torch.tensor([2, 3, 4] if fast else [0, 2, 3, 4, 5, 7])
    sketches = sketch_digits(
        digits, jitter=1.0, generator=torch.Generator().manual_seed(0)
    )
    strengths = [0.0, 0.5, 1.0] if fast else [0.0, 0.25, 0.5, 0.75, 1.0]
    columns = []
    for strength in strengths:
        edited = sdedit(
            unconditional,
            checkpoint.to_model(sketches),
            checkpoint.schedule,
            strength,
            4 if fast else 25,
            sampler="ddpm",
            prediction_type=checkpoint.prediction_type,
            generator=torch.Generator().manual_seed(1),
        )
        columns.append(checkpoint.to_data(edited))
    columns[0] = sketches  # strength 0 returns its input: show the sketch as drawn
    # rows = sketches, columns = strengths
    rows = [torch.stack([c[i] for c in columns]) for i in range(len(digits))]
    labels = [f"sketch of {d}" for d in digits.tolist()]
    cols = ["sketch"] + [f"{s:g}" for s in strengths[1:]]
    title = "SDEdit strength (0: the sketch itself)"
    draw = grid_figure(rows, labels, cols, title=title, cell=0.85)
    return save_figure(draw, out / "sdedit.png")


def fig_inpainting(out, fast, folder=CHECKPOINT):
    """Held-out digits with the bottom half erased, completed by the naive loop and RePaint."""
    checkpoint, unconditional, _ = _models(folder)
    images, _ = load_digits("test")
    n = 4 if fast else 8
    x0 = images[:n]
    known = checkpoint.to_model(x0)
    size = checkpoint.image_size
    mask = torch.ones(n, 1, size, size)
    mask[:, :, size // 2 :] = 0
    steps = 4 if fast else 25
    kw = dict(prediction_type=checkpoint.prediction_type)
    naive = inpaint(
        unconditional,
        known,
        mask,
        checkpoint.schedule,
        steps,
        generator=torch.Generator().manual_seed(2),
        **kw,
    )
    j, r = (2, 2) if fast else (5, 5)
    resampled = repaint(
        unconditional,
        known,
        mask,
        checkpoint.schedule,
        steps,
        jump_length=j,
        jump_n_sample=r,
        generator=torch.Generator().manual_seed(2),
        **kw,
    )
    erased = torch.where(mask.bool(), known, torch.zeros_like(known))  # mid-grey
    rows = [x0, *map(checkpoint.to_data, (erased, naive, resampled))]
    names = [
        "held-out digits",
        "bottom half erased",
        "naive",
        f"RePaint (j={j}, r={r})",
    ]
    return save_figure(grid_figure(rows, names), out / "inpainting.png")


def fig_interpolation(out, fast, folder=CHECKPOINT):
    """Two noises and the digits DDIM makes of their lerp and slerp interpolants."""
    checkpoint, unconditional, _ = _models(folder)
    g = torch.Generator().manual_seed(5)
    size = checkpoint.image_size
    a, b = (
        torch.randn(1, 1, size, size, generator=g),
        torch.randn(1, 1, size, size, generator=g),
    )
    alphas = [0.0, 0.5, 1.0] if fast else [i / 8 for i in range(9)]
    rows, names = [], []
    for name, f in (("lerp", lerp), ("slerp", slerp)):
        noises = torch.cat([f(a, b, alpha) for alpha in alphas])
        decoded = ddim_sample(
            unconditional,
            noises,
            checkpoint.schedule,
            3 if fast else 20,
            prediction_type=checkpoint.prediction_type,
        )
        rows.append(checkpoint.to_data(decoded))
        names.append(name)
    cols = [f"{alpha:g}" for alpha in alphas]
    return save_figure(grid_figure(rows, names, cols), out / "interpolation.png")


FIGURES = {
    "inversion": fig_inversion,
    "sdedit": fig_sdedit,
    "inpainting": fig_inpainting,
    "interpolation": fig_interpolation,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="figures to make (prefixes)")
    parser.add_argument("--fast", action="store_true", help="tiny settings")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    parser.add_argument(
        "--checkpoint", type=Path, default=CHECKPOINT, help="digits checkpoint folder"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name, make in FIGURES.items():
        if args.names and not any(name.startswith(p) for p in args.names):
            continue
        start = time.time()
        for path in make(args.out, args.fast, args.checkpoint):
            print(f"wrote {path}")
        print(f"  {name}: {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
