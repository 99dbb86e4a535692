"""Figures that read on any screen: SVG, legible text, a light and a dark variant.

The site's plots are drawn twice, once per colour scheme of the site (Material's light `default`
and dark `slate`), on a transparent background:

```python
from snippets.plotting import save_figure

def draw():
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(x, y, color="C0")          # colours from the theme's cycle, "C0" ... "C7"
    ax.axhline(0, color=ink())         # text-coloured lines: ink(), never "k"
    return fig

save_figure(draw, "docs/figures/x.svg")  # writes x.svg (light) and x-dark.svg (dark)
```

A page shows both and the site's colour scheme picks one:
`![...](x.svg#only-light){ width="600" loading=lazy }` and the same with `x-dark.svg#only-dark`.
SVG glyphs are drawn as shapes (`svg.fonttype: path`), so a figure looks the same whatever fonts
the reader has, and is sharp at any zoom. Sizes are in points; a figure `w` inches wide shown `D`
CSS pixels wide scales its text by `D / (72 w)`, so with 10 pt tick labels a figure up to `D / 79`
inches wide keeps every label at 11 px or more.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

THEMES = ("light", "dark")
# Background of the page each theme is drawn for: Material's default and slate schemes.
BACKGROUND = {"light": "#ffffff", "dark": "#1e2029"}
# Text, axes and text-coloured lines.
INK = {"light": "#212121", "dark": "#e0e0e0"}
# Secondary lines (reference levels, grid).
MUTED = {"light": "#757575", "dark": "#9e9e9e"}
# Colour cycles "C0" ... "C7": the same hues, lighter on the dark page (contrast >= 3 on both).
CYCLE = {
    "light": [
        "#1f77b4",
        "#d95f02",
        "#2ca02c",
        "#d62728",
        "#7b3294",
        "#8c564b",
        "#e7298a",
        "#616161",
    ],
    "dark": [
        "#6cb4ee",
        "#ffa64d",
        "#7fd67f",
        "#ff8a80",
        "#c39bd3",
        "#d4a373",
        "#f78fc6",
        "#bdbdbd",
    ],
}
FONTS = ["DejaVu Sans"]  # matplotlib's own font: drawn as paths, nothing to install
PNG_DPI = 200  # raster figures: 2x a 100-dpi layout


def rc(theme: str) -> dict:
    """Matplotlib rcParams of a theme: transparent background, 10-11 pt labels.

    Args:
        theme: `"light"` or `"dark"`.

    Returns:
        A dict for `matplotlib.pyplot.rc_context`.
    """
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {THEMES}, got {theme!r}")
    from cycler import cycler

    ink, muted = INK[theme], MUTED[theme]
    return {
        "svg.fonttype": "path",  # glyphs as shapes: the same on every reader's fonts
        "svg.hashsalt": "diffusion-model-feast",  # stable ids: a file changes with its figure
        "font.family": "sans-serif",
        "font.sans-serif": FONTS,
        "mathtext.fontset": "dejavusans",
        "font.size": 11,
        "axes.titlesize": 11,
        "axes.labelsize": 11,
        "xtick.labelsize": 10,
        "ytick.labelsize": 10,
        "legend.fontsize": 10,
        "figure.titlesize": 11,
        "text.color": ink,
        "axes.labelcolor": ink,
        "axes.edgecolor": ink,
        "xtick.color": ink,
        "ytick.color": ink,
        "grid.color": muted,
        "axes.prop_cycle": cycler(color=CYCLE[theme]),
        "axes.facecolor": "none",
        "figure.facecolor": "none",
        "savefig.facecolor": "none",
        "savefig.transparent": True,
        "savefig.bbox": "tight",
        "savefig.pad_inches": 0.04,
        "legend.facecolor": BACKGROUND[theme],
        "legend.edgecolor": muted,
        "legend.framealpha": 0.85,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "image.interpolation": "none",  # digits stay 16x16 pixels, drawn crisp by the browser
        "lines.markersize": 5,
    }


def ink() -> str:
    """The current theme's text colour (use it where a plot would say `"k"`)."""
    import matplotlib

    return matplotlib.rcParams["text.color"]


def muted() -> str:
    """The current theme's colour for secondary lines (reference levels)."""
    import matplotlib

    return matplotlib.rcParams["grid.color"]


def is_dark() -> bool:
    """Whether the figure being drawn is the dark variant."""
    return ink() == INK["dark"]


def variant_path(path: str | Path, theme: str) -> Path:
    """Where a theme's variant of `path` goes: `x.svg` (light) or `x-dark.svg` (dark).

    Args:
        path: The light variant's path.
        theme: `"light"` or `"dark"`.
    """
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {THEMES}, got {theme!r}")
    path = Path(path)
    return (
        path if theme == "light" else path.with_name(f"{path.stem}-dark{path.suffix}")
    )


def _round_path_data(path: Path) -> None:
    """Round the coordinates of SVG path data to 0.01 pt: a third smaller, the same to the eye."""
    import re

    text = path.read_text(encoding="utf-8")

    def shorten(match: re.Match) -> str:
        return ' d="' + re.sub(r"(\d\.\d\d)\d+", r"\1", match[1]) + '"'

    path.write_text(re.sub(r' d="([^"]*)"', shorten, text), encoding="utf-8")


def _compact_images(path: Path) -> None:
    """Store the images an SVG embeds (`imshow`) as grey PNGs when they hold only greys.

    Matplotlib embeds every image as an RGBA PNG; a grid of digits drawn with a grey colour map
    is opaque and grey, so one 8-bit channel holds it all: the same pixels, a third the bytes.
    """
    import base64
    import io
    import re

    import numpy as np
    from PIL import Image

    text = path.read_text(encoding="utf-8")

    def grey(match: re.Match) -> str:
        data = base64.b64decode(match[1])
        image = Image.open(io.BytesIO(data))
        pixels = np.asarray(image.convert("RGBA"))
        opaque = (pixels[..., 3] == 255).all()
        if not opaque or not (pixels[..., 0] == pixels[..., 1]).all():
            return match[0]
        if not (pixels[..., 1] == pixels[..., 2]).all():
            return match[0]
        buffer = io.BytesIO()
        Image.fromarray(pixels[..., 0], mode="L").save(buffer, "PNG", optimize=True)
        if buffer.tell() >= len(data):
            return match[0]
        return f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"

    compact = re.sub(r"data:image/png;base64,\s*([A-Za-z0-9+/=\s]+)", grey, text)
    if compact != text:
        path.write_text(compact, encoding="utf-8")


def save_figure(
    draw: Callable[[], object], path: str | Path, themes: tuple[str, ...] = THEMES
) -> list[Path]:
    """Draw a figure once per theme and save each variant (SVG, or PNG at 200 dpi).

    Args:
        draw: Builds and returns a `matplotlib.figure.Figure`; called inside each theme's
            `rc_context`, so it takes its colours from `"C0"`... and `ink()`.
        path: Path of the light variant, ending in `.svg` or `.png`; the dark one gets `-dark`.
        themes: The variants to write.

    Returns:
        The paths written.
    """
    path = Path(path)
    if path.suffix not in (".svg", ".png"):
        raise ValueError(f"path must end in .svg or .png, got {str(path)!r}")
    if not themes or any(theme not in THEMES for theme in themes):
        raise ValueError(f"themes must be a non-empty subset of {THEMES}, got {themes}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for theme in themes:
        with plt.rc_context(rc(theme)):
            fig = draw()
            target = variant_path(path, theme)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".svg":
                fig.savefig(target, metadata={"Date": None, "Creator": None})
                _round_path_data(target)
                _compact_images(target)
            else:
                fig.savefig(target, dpi=PNG_DPI, metadata={"Software": None})
            plt.close(fig)
        written.append(target)
    return written
