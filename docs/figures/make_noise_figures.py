"""Figures for the forward-process and sampling pages, made from the tested code in ``snippets/``.

Run from the repository root::

    python docs/figures/make_noise_figures.py        # writes docs/figures/noise/*.svg
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

from snippets.plotting import save_figure  # noqa: E402
from snippets.schedules import NoiseSchedule  # noqa: E402


def schedule_coefficients() -> list[Path]:
    """sqrt(alpha_bar) and sqrt(1 - alpha_bar) for the linear and cosine schedules (T = 1000)."""
    alpha_bars = {
        name: NoiseSchedule.from_name(name).alpha_bar for name in ("linear", "cosine")
    }

    def draw():
        fig, ax = plt.subplots(figsize=(7.2, 3.0))
        for name, style in (("linear", "-"), ("cosine", "--")):
            alpha_bar = alpha_bars[name]
            ax.plot(
                alpha_bar.sqrt(),
                style,
                color="C0",
                label=rf"$\sqrt{{\bar\alpha_t}}$ ({name})",
            )
            ax.plot(
                (1 - alpha_bar).sqrt(),
                style,
                color="C1",
                label=rf"$\sqrt{{1-\bar\alpha_t}}$ ({name})",
            )
        ax.set(
            xlabel="timestep $t$", ylabel="coefficient", xlim=(0, 999), ylim=(0, 1.02)
        )
        ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.set_title("signal and noise in $x_t$: linear vs cosine schedule")
        return fig

    return save_figure(draw, OUT / "schedule_coefficients.svg")


if __name__ == "__main__":
    for path in schedule_coefficients():
        print(f"wrote {path.relative_to(ROOT)}")
