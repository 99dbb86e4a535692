"""Time to quality on a CPU: the project's UNet and recipe vs diffusers' UNet2DModel and the course's recipe.

Both networks have the course's small configuration for 16x16 digits (block_out_channels
(32, 64, 64), DownBlock2D, DownBlock2D, AttnDownBlock2D, layers_per_block 2: about 1.6M parameters)
and are trained by the same loop (`snippets.training.train`) on the same data for equal wall-clock
budgets of 1, 3 and 10 minutes. What differs is the implementation and the recipe:

* ours: `snippets.unet.UNet(**DIGITS_CONFIG)`, cosine schedule, v-prediction, min-SNR-5 weighting,
  AdamW 2e-3 with warmup + cosine decay, EMA 0.999 (the defaults of `TrainConfig`);
* diffusers: `UNet2DModel`, the course's recipe: cosine schedule (`squaredcos_cap_v2`),
  epsilon-prediction, plain MSE, AdamW 4e-4 at a constant rate, no EMA.

After each budget, 500 digits are sampled with DDPM (250 steps) and DPM-Solver++ (20 steps) and
scored by digit FID (`snippets.metrics`) against the floor (500 real train digits vs the test split).
The full run takes about an hour on 2 cores: 28 minutes of training, the rest sampling.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from snippets.data import load_digits
from snippets.metrics import digit_metrics, fid_floor, load_classifier
from snippets.sampling import SAMPLERS
from snippets.schedules import NoiseSchedule
from snippets.training import TrainConfig, train
from snippets.unet import DIGITS_CONFIG, UNet

RESULTS = Path(__file__).resolve().parent / "results"


class DiffusersUNet(nn.Module):
    """`UNet2DModel` called as `model(x, t)` and returning a tensor, as `train` and the samplers expect."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, t, class_labels=None):
        return self.unet(x, t, class_labels=class_labels).sample


def course_unet2dmodel(sample_size: int = 16):
    """The course's small UNet2DModel for 1-channel images."""
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=sample_size,
        in_channels=1,
        out_channels=1,
        layers_per_block=2,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    )


def contenders(tiny: bool) -> dict:
    """Name -> (model factory, training recipe, sample from the EMA?)."""
    ours_config = dict(DIGITS_CONFIG)
    if tiny:
        ours_config.update(channels=(32, 32), attention_levels=(1,), num_res_blocks=1)
    return {
        "ours": (lambda: UNet(**ours_config), dict(), True),
        "diffusers": (
            lambda: DiffusersUNet(course_unet2dmodel()),
            dict(
                prediction_type="epsilon",
                min_snr_gamma=None,
                learning_rate=4e-4,
                lr_schedule="constant",
                warmup_steps=0,
            ),
            False,
        ),
    }


def run(fast: bool = False) -> dict:
    """Train both contenders for each budget, sample, score; write a plot next to the results.

    Args:
        fast: Seconds-long smoke run (tiny budgets, 16 samples, a few sampler steps).

    Returns:
        JSON-serialisable results: the floor, one row per (model, budget, sampler), the plot path.
    """
    budgets = (0.02,) if fast else (1.0, 3.0, 10.0)
    n = 16 if fast else 500
    samplers = (
        (("ddpm", 4), ("dpmsolver++", 3))
        if fast
        else (("ddpm", 250), ("dpmsolver++", 20))
    )
    images = load_digits("train")[0]
    classifier = load_classifier()
    floor = fid_floor(n, classifier)
    rows = []
    for name, (factory, recipe, use_ema) in contenders(fast).items():
        for minutes in budgets:
            torch.manual_seed(0)
            model = factory()
            config = TrainConfig(
                minutes=minutes,
                checkpoint_every=0,
                **recipe,
                **({"batch_size": 8} if fast else {}),
            )
            start = time.perf_counter()
            result = train(model, images, config=config, progress_bar=False)
            train_seconds = time.perf_counter() - start
            if use_ema:
                model.load_state_dict(result.ema_state)
            model.eval()
            schedule = NoiseSchedule.from_name(
                config.schedule, config.num_train_timesteps
            )
            last = result.losses[-50:]
            for sampler, steps in samplers:
                generator = torch.Generator().manual_seed(0)
                x_T = torch.randn((n, 1, 16, 16), generator=generator)
                start = time.perf_counter()
                with torch.no_grad():
                    x0 = SAMPLERS[sampler](
                        model,
                        x_T,
                        schedule,
                        steps,
                        prediction_type=config.prediction_type,
                        generator=generator,
                    )
                metrics = digit_metrics(x0, classifier)
                rows.append(
                    {
                        "model": name,
                        "minutes": minutes,
                        "train_seconds": round(train_seconds, 1),
                        "steps": result.step,
                        "steps_per_second": round(result.steps_per_second, 2),
                        "params": sum(p.numel() for p in model.parameters()),
                        "final_loss": sum(last) / len(last),
                        "sampler": sampler,
                        "sampler_steps": steps,
                        "sample_seconds": round(time.perf_counter() - start, 1),
                        "fid": metrics["fid"],
                        "fid_over_floor": metrics["fid"] / floor["fid"],
                        "confidence": metrics["confidence"],
                        "class_entropy": metrics["class_entropy"],
                    }
                )
    plot = plot_fid_vs_minutes(
        rows,
        floor["fid"],
        (RESULTS / "fast" if fast else RESULTS) / "train_vs_diffusers.png",
    )
    return {
        "n_samples": n,
        "floor": floor,
        "rows": rows,
        "table": markdown_table(rows, floor["fid"]),
        "time_to_1.2x_floor_minutes": time_to_quality(rows, floor["fid"]),
        "plot": str(
            plot.relative_to(Path.cwd()) if plot.is_relative_to(Path.cwd()) else plot
        ),
    }


def time_to_quality(rows: list[dict], floor: float, factor: float = 1.2) -> dict:
    """Smallest budget at which each (model, sampler) reaches `factor` times the floor (None if never)."""
    out = {}
    for row in rows:
        key = f"{row['model']}/{row['sampler']}"
        out.setdefault(key, None)
        if row["fid"] <= factor * floor and (
            out[key] is None or row["minutes"] < out[key]
        ):
            out[key] = row["minutes"]
    return out


def markdown_table(rows: list[dict], floor: float) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| model | CPU min | steps | steps/s | params | final loss | sampler | FID | FID / floor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['minutes']:g} | {r['steps']} | {r['steps_per_second']:.2f} | "
            f"{r['params'] / 1e6:.2f}M | {r['final_loss']:.4f} | {r['sampler']} ({r['sampler_steps']}) | "
            f"{r['fid']:.1f} | {r['fid_over_floor']:.2f} |"
        )
    lines.append(f"\nFloor (real train digits vs test split): FID {floor:.1f}.")
    return "\n".join(lines)


def plot_fid_vs_minutes(rows: list[dict], floor: float, path: Path) -> Path:
    """Digit FID against training minutes, one line per (model, sampler), the floor dashed.

    A `.png` path gets one light PNG; an `.svg` path a light and a dark variant (`snippets.plotting`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from snippets.plotting import THEMES, ink, muted, save_figure

    def draw():
        fig, ax = plt.subplots(figsize=(6.8, 4.4))
        for key in sorted(
            {(r["model"], r["sampler"], r["sampler_steps"]) for r in rows}
        ):
            points = sorted(
                (r["minutes"], r["fid"])
                for r in rows
                if (r["model"], r["sampler"], r["sampler_steps"]) == key
            )
            ax.plot(
                *zip(*points),
                marker="o",
                ls="-" if key[0] == "ours" else "--",
                label=f"{key[0]}, {key[1]} ({key[2]} steps)",
            )
        ax.axhline(floor, color=ink(), lw=1, ls=":", label="floor (real digits)")
        ax.axhline(1.2 * floor, color=muted(), lw=0.8, ls=":", label="1.2 x floor")
        ax.set_xlabel("training budget (CPU minutes)")
        ax.set_ylabel("digit FID (lower is better)")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False
        )
        fig.tight_layout()
        return fig

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(draw, path, themes=THEMES if path.suffix == ".svg" else ("light",))
    return path


def figure(record: dict, path: Path) -> list[Path]:
    """The site's figure of a run (its JSON record): the plot as light and dark SVGs at `path`."""
    r = record["results"]
    plot_fid_vs_minutes(r["rows"], r["floor"]["fid"], path)
    return [path, path.with_name(f"{path.stem}-dark{path.suffix}")]
