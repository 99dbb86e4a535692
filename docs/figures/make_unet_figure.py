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

from snippets.plotting import rc  # noqa: E402
from snippets.unet import DIGITS_CONFIG, SelfAttention, UNet, parameter_table  # noqa: E402

OUT = Path(__file__).resolve().parent / "unet_digits.svg"
# Pastel boxes with dark text and mid-grey connectors: legible on the light and the dark page
# alike, so one file serves both colour schemes (transparent background).
COLORS = {
    "down": "#d1c4e9",
    "mid": "#ffe082",
    "up": "#b2dfdb",
    "io": "#e0e0e0",
    "time": "#ffccbc",
}
TEXT = "#212121"
EDGE = "#616161"
ARROW = "#8c8c8c"
SKIP = "#9575cd"
# Drawn in inches (1 data unit = 1 inch = 72 SVG units). 5.2 in wide, shown on a 390 px phone
# (358 px of content) the 12 pt labels are 11.5 CSS px; on a desktop the page shows it wider.
WIDTH, FONT = 5.2, 12


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
        layers = "ResBlock, attn, ResBlock" if attention else "ResBlock x2"
    else:
        layers = f"ResBlock x{len(block.resnets)}" + (", attn" if attention else "")
    lines = [name, layers, f"{channels} ch, {side}x{side}"]
    if getattr(block, "downsample", None) is not None:
        lines.append("then downsample")
    if getattr(block, "upsample", None) is not None:
        lines.append("then upsample")
    lines.append(f"{count:,} params")
    return "\n".join(lines)


def box(ax, x, y, w, h, text, color, fontsize=FONT):
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=color,
            edgecolor=EDGE,
            linewidth=1.0,
        )
    )
    ax.text(
        x,
        y,
        text,
        ha="center",
        va="center",
        fontsize=fontsize,
        linespacing=1.3,
        color=TEXT,
    )


def arrow(ax, start, end, color=ARROW, **kw):
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops=dict(
            arrowstyle="-|>", color=color, lw=1.4, shrinkA=0, shrinkB=0, **kw
        ),
    )


def draw(model: UNet, path: Path) -> None:
    """A vertical U: the down path on the left, the up path on the right, skips across."""
    cfg = model.config
    levels, side = len(cfg["channels"]), cfg["sample_size"]
    counts = dict(parameter_table(model))
    w, h, gap = 2.05, 1.3, 0.42  # box width and height, vertical gap (inches)
    x_left, x_right = 0.05 + w / 2, WIDTH - 0.05 - w / 2
    c_in, c_out, c0 = cfg["in_channels"], cfg["out_channels"], cfg["channels"][0]
    emb_dim = model.time_embedding.linear_2.out_features

    y_time, h_time = 0.0, 1.0
    h_io = 1.15
    y_io = y_time - h_time / 2 - gap - h_io / 2
    y_level = [y_io - h_io / 2 - gap - h / 2 - i * (h + gap) for i in range(levels)]
    y_mid = y_level[-1] - h - gap
    height = (y_time + h_time / 2) - (y_mid - h / 2) + 0.1

    with plt.rc_context(rc("light")):
        fig = plt.figure(figsize=(WIDTH, height))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, WIDTH)
        ax.set_ylim(y_mid - h / 2 - 0.05, y_time + h_time / 2 + 0.05)
        ax.axis("off")

        box(
            ax,
            WIDTH / 2,
            y_time,
            WIDTH - 0.1,
            h_time,
            f"t -> sinusoids ({c0}) -> MLP -> e_t ({emb_dim})\n"
            f"{counts['time_embedding']:,} params; e_t enters every ResBlock\n"
            f"UNet(**DIGITS_CONFIG): {sum(counts.values()):,} params",
            COLORS["time"],
        )
        box(
            ax,
            x_left,
            y_io,
            w,
            h_io,
            f"x_t: {c_in}x{side}x{side}\nconv_in 3x3\n-> {c0} ch",
            COLORS["io"],
        )
        box(
            ax,
            x_right,
            y_io,
            w,
            h_io,
            f"GroupNorm, SiLU\nconv_out 3x3\n-> {c_out}x{side}x{side}\n(zero-init)",
            COLORS["io"],
        )
        arrow(ax, (x_left, y_io - h_io / 2), (x_left, y_level[0] + h / 2))
        arrow(ax, (x_right, y_level[0] + h / 2), (x_right, y_io - h_io / 2))
        for i in range(levels):
            res, ch = side // 2**i, cfg["channels"][i]
            down, j = model.down_blocks[i], levels - 1 - i  # up_blocks: lowest first
            up = model.up_blocks[j]
            box(
                ax,
                x_left,
                y_level[i],
                w,
                h,
                label(f"down_blocks.{i}", down, ch, res, counts[f"down_blocks.{i}"]),
                COLORS["down"],
            )
            box(
                ax,
                x_right,
                y_level[i],
                w,
                h,
                label(f"up_blocks.{j}", up, ch, res, counts[f"up_blocks.{j}"]),
                COLORS["up"],
            )
            arrow(
                ax,
                (x_left + w / 2, y_level[i] - 0.3),
                (x_right - w / 2, y_level[i] - 0.3),
                color=SKIP,
                linestyle="--",
            )
            ax.text(
                WIDTH / 2,
                y_level[i] + 0.02,
                f"{len(up.resnets)}\nskips",
                ha="center",
                va="center",
                fontsize=FONT,
                linespacing=1.1,
                color=TEXT,
                bbox=dict(
                    boxstyle="round,pad=0.15",
                    facecolor=COLORS["down"],
                    edgecolor=SKIP,
                ),
            )
            if i < levels - 1:
                arrow(
                    ax, (x_left, y_level[i] - h / 2), (x_left, y_level[i + 1] + h / 2)
                )
                arrow(
                    ax,
                    (x_right, y_level[i + 1] + h / 2),
                    (x_right, y_level[i] - h / 2),
                )
        low = side // 2 ** (levels - 1)
        box(
            ax,
            WIDTH / 2,
            y_mid,
            w + 0.3,
            h,
            label(
                "mid_block",
                model.mid_block,
                cfg["channels"][-1],
                low,
                counts["mid_block"],
            ),
            COLORS["mid"],
        )
        arrow(
            ax,
            (x_left, y_level[-1] - h / 2),
            (WIDTH / 2 - (w + 0.3) / 2 + 0.05, y_mid + 0.2),
            connectionstyle="angle,angleA=-90,angleB=0",
        )
        arrow(
            ax,
            (WIDTH / 2 + (w + 0.3) / 2 - 0.05, y_mid + 0.2),
            (x_right, y_level[-1] - h / 2),
            connectionstyle="angle,angleA=0,angleB=-90",
        )
        fig.savefig(
            path,
            bbox_inches=None,
            metadata={"Date": None, "Creator": None} if path.suffix == ".svg" else None,
        )
        plt.close(fig)


if __name__ == "__main__":
    model = UNet(**DIGITS_CONFIG)
    draw(model, OUT)
    print(f"wrote {OUT.relative_to(ROOT)}\n")
    print(markdown_table(model))
