"""Figures for the forward-process and sampling pages, made from the tested code in ``snippets/``.

Run from the repository root::

    python docs/figures/make_noise_figures.py        # writes docs/figures/noise/*.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "noise"

from snippets.schedules import NoiseSchedule  # noqa: E402


def schedule_coefficients() -> Path:
    """sqrt(alpha_bar) and sqrt(1 - alpha_bar) for the linear and cosine schedules (T = 1000)."""
    fig, ax = plt.subplots(figsize=(7.5, 2.8), dpi=100)
    for name, style in (("linear", "-"), ("cosine", "--")):
        alpha_bar = NoiseSchedule.from_name(name).alpha_bar
        ax.plot(
            alpha_bar.sqrt(),
            style,
            color="tab:blue",
            label=rf"$\sqrt{{\bar\alpha_t}}$ ({name})",
        )
        ax.plot(
            (1 - alpha_bar).sqrt(),
            style,
            color="tab:orange",
            label=rf"$\sqrt{{1-\bar\alpha_t}}$ ({name})",
        )
    ax.set(xlabel="timestep $t$", ylabel="coefficient", xlim=(0, 999), ylim=(0, 1.02))
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("signal and noise in $x_t$: linear vs cosine schedule", fontsize=10)
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "schedule_coefficients.png"
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(schedule_coefficients())
