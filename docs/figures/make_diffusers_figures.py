"""Figures for the "Introduction to Diffusers" page, made with diffusers and the tested code in ``snippets/``.

Run from the repository root (minutes on a 2-core CPU, most of them the course's training run
and the 1000-step pipelines)::

    python docs/figures/make_diffusers_figures.py     # writes docs/figures/diffusers/*.svg, *.png
    python docs/figures/make_diffusers_figures.py course_training   # only those figures

Every random draw is seeded, so a rerun on the same machine gives the same images. The training run
is the notebook's full-mode run (``NUM_EPOCHS`` epochs of the course's loop, seed 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "diffusers"
CHECKPOINT = ROOT / "checkpoints" / "digits"
NUM_EPOCHS = 20  # the notebook's full mode
TIMESTEPS = (0, 50, 100, 200, 300, 500, 700, 999)
SCALE = 8  # 16x16 digits drawn 128x128: grids shown at half their size stay sharp on 2x screens

from diffusers import DDPMPipeline, DDPMScheduler  # noqa: E402

from snippets.checkpoint import load_checkpoint  # noqa: E402
from snippets.data import load_digits, save_grid  # noqa: E402
from snippets.plotting import save_figure  # noqa: E402
from snippets.training import plot_loss_curve  # noqa: E402
from snippets.unet import digits_unet2dmodel  # noqa: E402
from snippets.with_diffusers import (  # noqa: E402
    course_transform,
    digits_dataset,
    pipeline_from_checkpoint,
    sample_loop,
    scheduler_from_checkpoint,
    train_loop,
    unet2dmodel_from_checkpoint,
)


def scheduler_coefficients() -> list[Path]:
    """sqrt(alphas_cumprod) and sqrt(1 - alphas_cumprod) of DDPMScheduler, linear vs squaredcos_cap_v2."""
    schedules = ("linear", "squaredcos_cap_v2")
    alpha_bars = {
        name: DDPMScheduler(num_train_timesteps=1000, beta_schedule=name).alphas_cumprod
        for name in schedules
    }

    def draw():
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        for beta_schedule, style in zip(schedules, ("-", "--")):
            alpha_bar = alpha_bars[beta_schedule]
            ax.plot(
                alpha_bar.sqrt(),
                style,
                color="C0",
                label=rf"$\sqrt{{\bar\alpha_t}}$ ({beta_schedule})",
            )
            ax.plot(
                (1 - alpha_bar).sqrt(),
                style,
                color="C1",
                label=rf"$\sqrt{{1-\bar\alpha_t}}$ ({beta_schedule})",
            )
        ax.set(
            xlabel="timestep $t$", ylabel="coefficient", xlim=(0, 999), ylim=(0, 1.02)
        )
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title("DDPMScheduler: signal and noise in $x_t$")
        fig.tight_layout()
        return fig

    return save_figure(draw, OUT / "scheduler_coefficients.svg")


def add_noise() -> list[Path]:
    """One digit noised by scheduler.add_noise at several timesteps, one row per schedule (same noise)."""
    x0 = load_digits("test")[0][:1].expand(len(TIMESTEPS), -1, -1, -1)
    noise = torch.randn(
        x0.shape[1:], generator=torch.Generator().manual_seed(0)
    ).expand_as(x0)
    t = torch.tensor(TIMESTEPS)
    schedules = ("linear", "squaredcos_cap_v2")
    noisy = {
        name: DDPMScheduler(num_train_timesteps=1000, beta_schedule=name).add_noise(
            x0, noise, t
        )
        for name in schedules
    }

    def draw():
        fig, axes = plt.subplots(2, len(TIMESTEPS), figsize=(0.8 * len(TIMESTEPS), 2.3))
        for row, beta_schedule in enumerate(schedules):
            for col, ax in enumerate(axes[row]):
                ax.imshow(
                    noisy[beta_schedule][col, 0].clamp(-1, 1),
                    cmap="gray",
                    vmin=-1,
                    vmax=1,
                )
                ax.set_xticks([]), ax.set_yticks([])
                ax.spines[["left", "bottom"]].set_visible(False)
                if row == 0:
                    ax.set_title(f"t = {TIMESTEPS[col]}", fontsize=10)
            axes[row, 0].set_ylabel("linear" if row == 0 else "cosine")
        fig.tight_layout()
        return fig

    return save_figure(draw, OUT / "add_noise.svg")


def pipeline_samples() -> Path:
    """16 unconditional samples of the shipped checkpoint through DDPMPipeline (1000 steps, seed 0).

    The pipeline samples at the network's size (8x8 for a model trained at the digits' native
    size); `Checkpoint.to_data` makes the 16x16 digits, as `generate` does.
    """
    pipeline = pipeline_from_checkpoint(CHECKPOINT)
    pipeline.set_progress_bar_config(disable=True)
    images = pipeline(
        batch_size=16, generator=torch.Generator().manual_seed(0), output_type="pt"
    ).images
    digits = load_checkpoint(CHECKPOINT).to_data(images * 2 - 1)
    return save_grid(digits, OUT / "pipeline_samples.png", nrow=8, scale=SCALE)


def label_samples() -> Path:
    """The hand-written loop with labels: row k asks for digit k (DDPM, 250 steps, guidance scale 3).

    Sampled at the network's size, shown at the data's through `Checkpoint.to_data`.
    """
    unet = unet2dmodel_from_checkpoint(CHECKPOINT)
    labels = torch.arange(10).repeat_interleave(8)
    images = sample_loop(
        unet,
        scheduler_from_checkpoint(CHECKPOINT),
        len(labels),
        250,
        class_labels=labels,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(0),
    )
    digits = load_checkpoint(CHECKPOINT).to_data(images)
    return save_grid(digits, OUT / "label_samples.png", nrow=8, scale=SCALE)


def course_training() -> list[Path]:
    """The course's loop on the digits: UNet2DModel, epsilon, MSE, AdamW 4e-4; loss curve and samples."""
    torch.manual_seed(0)
    dataset = digits_dataset("train")
    dataset.set_transform(course_transform(image_size=16))
    dataloader = torch.utils.data.DataLoader(
        dataset, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    unet = digits_unet2dmodel()
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2"
    )
    optimizer = torch.optim.AdamW(unet.parameters(), lr=4e-4)
    losses = train_loop(
        unet,
        scheduler,
        dataloader,
        optimizer,
        num_epochs=NUM_EPOCHS,
        generator=torch.Generator().manual_seed(0),
    )
    # shown in a two-column grid, about 330 px wide: a narrow figure keeps its labels >= 11 px
    light = plot_loss_curve(losses, OUT / "course_loss.svg", window=23, width=4.0)
    paths = [light, light.with_name("course_loss-dark.svg")]
    pipeline = DDPMPipeline(unet=unet, scheduler=scheduler)
    pipeline.set_progress_bar_config(disable=True)
    images = pipeline(
        batch_size=16, generator=torch.Generator().manual_seed(0), output_type="pt"
    ).images
    paths.append(
        save_grid(images * 2 - 1, OUT / "course_samples.png", nrow=8, scale=SCALE)
    )
    return paths


FIGURES = {
    "scheduler_coefficients": scheduler_coefficients,
    "add_noise": add_noise,
    "pipeline_samples": pipeline_samples,
    "label_samples": label_samples,
    "course_training": course_training,
}

if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names", nargs="*", help=f"any of {', '.join(FIGURES)} (default: all)"
    )
    names = parser.parse_args().names
    if set(names) - set(FIGURES):
        parser.error(f"unknown figures {sorted(set(names) - set(FIGURES))}")
    for name in names or FIGURES:
        made = FIGURES[name]()
        for path in made if isinstance(made, list) else [made]:
            print(f"wrote {path.relative_to(ROOT)}", flush=True)
