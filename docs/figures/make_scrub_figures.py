"""Sprite sheets for the scrubbable figures, made by the tested code in ``snippets/``.

* ``forward-<schedule>.png``: four digits noised by ``q_sample`` at 41 timesteps, one frame per
  timestep, for the linear and the cosine schedule (the same noise for both), and
  ``forward.json`` with each frame's t, sqrt(alpha_bar), sqrt(1 - alpha_bar) and SNR;
* ``sampling-<sampler>.png``: one x_T taken to four digits by the shipped model in 20 steps of
  DDPM, DDIM, Euler and DPM-Solver++(2M) (their ``_progressive`` samplers); frame k holds x_t after
  step k (on the variance-preserving scale) and the model's estimate of x_0 at that step. The
  network samples at its own size (8x8 for a model trained at the digits' native size); both
  are shown at the data's 16x16 through ``Checkpoint.to_data`` (``upsample_digits``), as the
  playground shows them.

Each sheet is one row of frames at the native 16 px per digit; the page scales it with
``image-rendering: pixelated`` and ``docs/javascripts/scrub.js`` moves a slider over the frames
(with JavaScript off the page shows the frame its HTML names). Run from the repository root::

    python docs/figures/make_scrub_figures.py              # writes docs/figures/scrub/
    python docs/figures/make_scrub_figures.py --out DIR    # somewhere else
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "scrub"

from snippets.checkpoint import load_checkpoint  # noqa: E402
from snippets.data import load_digits  # noqa: E402
from snippets.dpm_solver import dpm_solver_pp_2m_sample_progressive  # noqa: E402
from snippets.forward import q_sample  # noqa: E402
from snippets.guidance import cfg_model  # noqa: E402
from snippets.karras import euler_sample_progressive, karras_timesteps  # noqa: E402
from snippets.sampling import ddim_sample_progressive, ddpm_sample_progressive  # noqa: E402
from snippets.schedules import NoiseSchedule, snr  # noqa: E402

FORWARD_FRAMES = 41
SCHEDULES = ("linear", "cosine")
SAMPLERS = {
    "ddpm": ddpm_sample_progressive,
    "ddim": ddim_sample_progressive,
    "euler": euler_sample_progressive,
    "dpmsolver++": dpm_solver_pp_2m_sample_progressive,
}
SAMPLING_STEPS = 20
DIGITS = (0, 3, 5, 7)
GUIDANCE = 2.0
GAP = 4  # pixels between x_t and x0_hat in a sampling frame


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """A batch (B, 1, H, W) in [-1, 1] as one row of 8-bit grey tiles, shape (H, B * W)."""
    grey = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return np.concatenate([g[0].numpy() for g in grey], axis=1)


def save_sheet(frames: list[np.ndarray], path: Path) -> None:
    """Frames of equal shape side by side in one PNG."""
    Image.fromarray(np.concatenate(frames, axis=1), mode="L").save(path, optimize=True)


def forward_figures(out: Path) -> dict:
    images, labels = load_digits("test")
    x0 = torch.stack([images[(labels == d).nonzero()[0, 0]] for d in DIGITS])
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    timesteps = torch.linspace(0, 999, FORWARD_FRAMES).round().long()
    values = {"t": timesteps.tolist()}
    for name in SCHEDULES:
        alpha_bar = NoiseSchedule.from_name(name, num_train_timesteps=1000).alpha_bar
        frames = [
            to_pixels(q_sample(x0, t.expand(len(x0)), alpha_bar, noise=noise))
            for t in timesteps
        ]
        save_sheet(frames, out / f"forward-{name}.png")
        a_bar = alpha_bar[timesteps]
        values[name] = {
            "sqrt_alpha_bar": [round(v, 4) for v in a_bar.sqrt().tolist()],
            "sqrt_one_minus_alpha_bar": [
                round(v, 4) for v in (1 - a_bar).sqrt().tolist()
            ],
            "snr": [float(f"{v:.3g}") for v in snr(alpha_bar)[timesteps].tolist()],
        }
    (out / "forward.json").write_text(json.dumps(values, separators=(",", ":")))
    return values


def sampling_figures(out: Path) -> None:
    digits = load_checkpoint(ROOT / "checkpoints" / "digits")
    model = cfg_model(digits.model, torch.tensor(DIGITS), GUIDANCE, digits.num_classes)
    size = digits.image_size  # the network's side: x_T is drawn there
    x_T = torch.randn(
        len(DIGITS), 1, size, size, generator=torch.Generator().manual_seed(0)
    )
    gap = np.full((digits.data_size, GAP), 255, dtype=np.uint8)
    # the noise levels Euler steps to (its x lives on the sigma scale)
    sigmas, _ = karras_timesteps(digits.schedule.alpha_bar, SAMPLING_STEPS, "linspace")
    for name, progressive in SAMPLERS.items():
        frames = []
        with torch.no_grad():
            steps = progressive(
                model,
                x_T,
                digits.schedule,
                SAMPLING_STEPS,
                prediction_type=digits.prediction_type,
                generator=torch.Generator().manual_seed(1),
            )
            for i, (t, x, x0_hat) in enumerate(steps):
                if name == "euler":  # x on the sigma scale: x_t = x / sqrt(sigma^2 + 1)
                    x = x / (sigmas[i + 1] ** 2 + 1) ** 0.5
                x, x0_hat = digits.to_data(x), digits.to_data(x0_hat)
                frames.append(np.concatenate([to_pixels(x), gap, to_pixels(x0_hat)], 1))
        save_sheet(frames, out / f"sampling-{name.replace('+', 'p')}.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    forward_figures(args.out)
    sampling_figures(args.out)
    for path in sorted(args.out.iterdir()):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
