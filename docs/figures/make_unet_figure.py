"""Draw the architecture of `UNet(**DIGITS_CONFIG)` and print its parameter table.

    .venv/bin/python docs/figures/make_unet_figure.py

writes `docs/figures/unet_digits.svg` (the figure of the page "The UNet") and prints the Markdown
table of parameters per block that the page shows (a test checks the page against the code).
Everything is read from the model itself: levels, channels, resolutions, attention, counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from snippets.unet import DIGITS_CONFIG, SelfAttention, UNet, parameter_table  # noqa: E402

OUT = Path(__file__).resolve().parent / "unet_digits.svg"
COLORS = {
    "down": "#d1c4e9",
    "mid": "#ffe082",
    "up": "#b2dfdb",
    "io": "#eeeeee",
    "time": "#ffccbc",
}


def markdown_table(model: UNet) -> str:
    """The page's table: one row per block, then the total."""
    rows = parameter_table(model)
    lines = ["| Block | Parameters |", "|---|---:|"]
    lines += [f"| `{name}` | {count:,} |" for name, count in rows]
    lines.append(f"| `total` | {sum(count for _, count in rows):,} |")
    return "\n".join(lines)


def label(name: str, block, channels: int, side: int, count: int) -> str:
    """The text of a block's box: its name, layers, width, resolution and parameter count."""
    attention = any(isinstance(m, SelfAttention) for m in block.modules())
    if name == "mid_block":
        layers = "ResBlock, attention, ResBlock" if attention else "ResBlock x2"
    else:
        layers = f"ResBlock x{len(block.resnets)}" + (
            " + attention" if attention else ""
        )
    lines = [name, layers, f"{channels} ch, {side}x{side}"]
    if getattr(block, "downsample", None) is not None:
        lines.append("then downsample")
    if getattr(block, "upsample", None) is not None:
        lines.append("then upsample")
    lines.append(f"{count:,} params")
    return "\n".join(lines)


def box(ax, x, y, w, h, text, color):
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=color,
            edgecolor="#424242",
            linewidth=1.0,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5, linespacing=1.35)


def arrow(ax, start, end, style="-|>", color="#424242", **kw):
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops=dict(
            arrowstyle=style, color=color, lw=1.2, shrinkA=0, shrinkB=0, **kw
        ),
    )


def draw(model: UNet, path: Path) -> None:
    cfg = model.config
    levels, side = len(cfg["channels"]), cfg["sample_size"]
    counts = dict(parameter_table(model))
    dx, dy, w, h = 2.2, 1.75, 2.8, 1.35
    x_down = [i * dx for i in range(levels)]
    x_up = [(2 * levels - i) * dx for i in range(levels)]
    y = [-i * dy for i in range(levels)]
    x_mid, y_mid = levels * dx, -levels * dy

    fig, ax = plt.subplots(figsize=(10, 6.4))
    for i in range(levels):
        res, ch = side // 2**i, cfg["channels"][i]
        down, j = (
            model.down_blocks[i],
            levels - 1 - i,
        )  # up_blocks are built lowest level first
        up = model.up_blocks[j]
        box(
            ax,
            x_down[i],
            y[i],
            w,
            h,
            label(f"down_blocks.{i}", down, ch, res, counts[f"down_blocks.{i}"]),
            COLORS["down"],
        )
        box(
            ax,
            x_up[i],
            y[i],
            w,
            h,
            label(f"up_blocks.{j}", up, ch, res, counts[f"up_blocks.{j}"]),
            COLORS["up"],
        )
        n_skips = len(up.resnets)
        arrow(
            ax,
            (x_down[i] + w / 2, y[i] + 0.12),
            (x_up[i] - w / 2, y[i] + 0.12),
            color="#7e57c2",
            linestyle="--",
        )
        ax.text(
            (x_down[i] + x_up[i]) / 2,
            y[i] + 0.2,
            f"{n_skips} skips",
            ha="center",
            va="bottom",
            fontsize=8,
            color="#5e35b1",
        )
        if i < levels - 1:
            arrow(
                ax,
                (x_down[i] + 0.3, y[i] - h / 2),
                (x_down[i + 1] - 0.3, y[i + 1] + h / 2),
            )
            arrow(
                ax, (x_up[i + 1] + 0.3, y[i + 1] + h / 2), (x_up[i] - 0.3, y[i] - h / 2)
            )
    low = side // 2 ** (levels - 1)
    mid_text = label(
        "mid_block", model.mid_block, cfg["channels"][-1], low, counts["mid_block"]
    )
    box(ax, x_mid, y_mid, w + 0.6, h, mid_text, COLORS["mid"])
    arrow(ax, (x_down[-1] + 0.3, y[-1] - h / 2), (x_mid - 0.5, y_mid + h / 2))
    arrow(ax, (x_mid + 0.5, y_mid + h / 2), (x_up[-1] - 0.3, y[-1] - h / 2))

    # input and output
    c_in, c_out, c0 = cfg["in_channels"], cfg["out_channels"], cfg["channels"][0]
    box(
        ax,
        x_down[0],
        1.5,
        w + 0.3,
        0.75,
        f"x_t: {c_in}x{side}x{side}\nconv_in 3x3 -> {c0} ch",
        COLORS["io"],
    )
    arrow(ax, (x_down[0], 1.5 - 0.35), (x_down[0], y[0] + h / 2))
    box(
        ax,
        x_up[0],
        1.5,
        w + 0.7,
        0.75,
        f"GroupNorm, SiLU, conv_out 3x3\n-> {c_out}x{side}x{side} (zero-init)",
        COLORS["io"],
    )
    arrow(ax, (x_up[0], y[0] + h / 2), (x_up[0], 1.5 - 0.35))
    # time embedding
    emb_dim = model.time_embedding.linear_2.out_features
    box(
        ax,
        x_mid,
        1.5,
        4.8,
        0.75,
        f"t -> sinusoids ({c0}) -> MLP -> e_t ({emb_dim})\n"
        f"{counts['time_embedding']:,} params; e_t enters every ResBlock",
        COLORS["time"],
    )
    arrow(ax, (x_mid, 1.5 - 0.375), (x_mid, 0.85), color="#e64a19")

    ax.set_title(
        f"UNet(**DIGITS_CONFIG): {sum(counts.values()):,} parameters", fontsize=11
    )
    ax.set_xlim(x_down[0] - w / 2 - 0.35, x_up[0] + w / 2 + 0.55)
    ax.set_ylim(y_mid - h / 2 - 0.2, 2.0)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    plt.rcParams["svg.hashsalt"] = (
        "unet"  # stable ids: the file only changes when the figure does
    )
    fig.savefig(
        path,
        bbox_inches="tight",
        pad_inches=0.05,
        metadata={"Date": None, "Creator": None} if path.suffix == ".svg" else None,
    )
    plt.close(fig)


if __name__ == "__main__":
    model = UNet(**DIGITS_CONFIG)
    draw(model, OUT)
    print(f"wrote {OUT.relative_to(ROOT)}\n")
    print(markdown_table(model))
