"""Figures: the paper figures are remade in their fast mode, and every figure a page shows exists,
is sharp on a 2x screen, has text legible at its display size and reads in dark mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_paper_figures_script_makes_every_figure_in_fast_mode(tmp_path):
    script = REPO / "docs" / "figures" / "make_paper_figures.py"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(script), "--fast", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    made = {p.stem for p in tmp_path.glob("*.svg") if p.stat().st_size > 1000}
    committed = {
        p.stem
        for p in (REPO / "docs" / "figures" / "papers").iterdir()
        if p.suffix in {".svg", ".png"}
    }
    assert committed <= made, (
        f"figures on the site that the script no longer makes: {sorted(committed - made)}"
    )


# ---------------------------------------------------------------------------------------------
# Every figure a page shows: it exists, it is sharp on a 2x screen, its text is legible at the
# size the page shows it, and it reads in dark mode. Checked on the sources (pages and figure
# files), so it runs without a build.
# ---------------------------------------------------------------------------------------------
import re  # noqa: E402
import struct  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

import pytest  # noqa: E402

DOCS = REPO / "docs"
IMAGE = re.compile(r"!\[[^\]]*\]\((?P<src>[^)\s]+)\)(?:\{(?P<attrs>[^}]*)\})?")
WIDTH = re.compile(r"""\bwidth=["']?(?P<w>\d+)""")
MIN_TEXT_PX = 11  # labels, ticks, titles
MIN_SCRIPT_PX = 0.7 * MIN_TEXT_PX  # math sub/superscripts (TeX's script size is 70 %)
PHONE_PX = 358  # a 390 px phone minus the page's margins
COLUMN_PX = 688  # the page's text column in a 1400 px window (measured in Chromium)
PHONE_FIGURES = {
    "figures/unet_digits.svg"
}  # must read on a phone, not only on a desktop
GRID_CELL_PX = (
    340  # a figure in a `<div class="grid">`: two to a row of the 688 px column
)
# Rasters allowed below 2x, each with its reason (a figure whose SVG-writing script has not been
# rerun yet); none at present, and an entry must name a figure the site still shows.
RASTER_EXCEPTIONS: dict[str, str] = {}


GRID = re.compile(r'<div class="grid[^"]*"[^>]*>.*?\n</div>', re.DOTALL)


def shown_images() -> list[tuple[str, str, str, int | None]]:
    """(page, figure path relative to docs/, URL fragment, display width) of every image.

    The display width is the declared one, or a grid cell's where the page sets the figure in a
    `<div class="grid">` and that is narrower.
    """
    found = []
    for md in sorted(DOCS.rglob("*.md")):
        page = md.relative_to(DOCS).as_posix()
        text = md.read_text(encoding="utf-8")
        grids = [m.span() for m in GRID.finditer(text)]
        for m in IMAGE.finditer(text):
            src, _, fragment = m["src"].partition("#")
            if src.startswith(("http:", "https:", "data:")):
                continue
            target = (md.parent / src).resolve()
            rel = (
                target.relative_to(DOCS).as_posix()
                if target.is_relative_to(DOCS)
                else str(target)
            )
            width = WIDTH.search(m["attrs"] or "")
            width = int(width["w"]) if width else None
            if width and any(a <= m.start() < b for a, b in grids):
                width = min(width, GRID_CELL_PX)
            found.append((page, rel, fragment, width))
    return found


IMAGES = shown_images()


def png_width(path: Path) -> int:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">I", data[16:20])[0]


def too_soft(path: Path, width: int | None) -> str | None:
    """Why a PNG shown `width` CSS px wide is soft on a 2x screen, or None if it is sharp."""
    pixels = png_width(path)
    if width is not None and pixels >= 2 * width:
        return None
    need = (
        "a declared width" if width is None else f"a 2x screen needs >= {2 * width} px"
    )
    return f"{path.name} ({pixels} px wide) at {width} px: {need}"


SVG_NS = "{http://www.w3.org/2000/svg}"
TRANSLATE_SCALE = re.compile(r"scale\(\s*([-\d.e]+)")


def svg_text_sizes(path: Path) -> list[tuple[str, float, bool]]:
    """(text, size in SVG units, is a scaled math glyph) of every text run in a matplotlib SVG.

    With `svg.fonttype: path` matplotlib writes each text as `<!-- text -->` followed by a group
    `translate(x y) scale(s -s)` of glyphs: its font size is 100 s. Glyphs of math scripts carry
    their own `scale(k)`, k < 1 (the radical sign of the STIXSize fonts is sized to its content
    and left out). With `svg.fonttype: none` the size is the `font-size` of each `<text>`.
    """
    text = path.read_text(encoding="utf-8")
    sizes = []
    for m in re.finditer(
        r"<!-- (?P<label>.*?) -->\s*<g [^>]*?transform=\"translate\([^)]*\)"
        r"(?: rotate\([^)]*\))? scale\((?P<s>[\d.e-]+) -[\d.e-]+\)\"",
        text,
        flags=re.S,
    ):
        base = 100 * float(m["s"])
        sizes.append((m["label"], base, False))
        # the glyphs of this text run, up to the end of its group
        body = text[m.end() : text.find("</g>", m.end())]
        for use in re.finditer(
            r'<use xlink:href="#(?P<glyph>[^"]+)"[^>]*?scale\((?P<k>[\d.e-]+)\)', body
        ):
            if use["glyph"].startswith("STIXSize"):
                continue
            sizes.append((m["label"], base * float(use["k"]), True))
    for m in re.finditer(r"font-size:\s*([\d.]+)px", text):
        sizes.append(("<text>", float(m[1]), False))
    for m in re.finditer(r"font:\s*(?:[a-z]+\s+)*([\d.]+)px", text):
        sizes.append(("<text>", float(m[1]), False))
    return sizes


def svg_width(path: Path) -> float:
    root = ET.parse(path).getroot()
    return float(root.get("viewBox").split()[2])


def test_pages_show_figures():
    assert len(IMAGES) > 30, IMAGES


@pytest.mark.parametrize(
    "page, rel, fragment, width", IMAGES, ids=[f"{p}:{r}" for p, r, _, _ in IMAGES]
)
def test_every_figure_exists_and_declares_its_width(page, rel, fragment, width):
    path = DOCS / rel
    assert path.is_file(), f"{page} shows {rel}, which does not exist"
    assert path.suffix in {".svg", ".png"}, f"{page}: {rel}: figures are SVG or PNG"
    assert width is not None, (
        f'{page} shows {rel} without {{ width="..." }}: declare the display width'
    )
    assert width <= 760, f"{page}: {rel} is wider than the page's column ({width} px)"


PNGS = [i for i in IMAGES if i[1].endswith(".png") and i[1] not in RASTER_EXCEPTIONS]


def test_raster_exceptions_are_figures_the_site_still_shows():
    """An exception goes with its figure: a plot redrawn as SVG cannot leave a 1x PNG behind."""
    shown = {rel for _, rel, _, _ in IMAGES}
    stale = sorted(set(RASTER_EXCEPTIONS) - shown)
    assert not stale, f"exceptions for figures no page shows any more: {stale}"


def test_a_1x_png_plot_fails_the_2x_check(tmp_path):
    """The check itself: a 600 px PNG shown at 600 px is too soft for a 2x screen."""
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = tmp_path / "plot.png"
    png.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 600, 350, 8, 0, 0, 0, 0))
    )
    assert "a 2x screen needs >= 1200 px" in too_soft(png, 600)
    assert too_soft(png, 300) is None  # the same file shown at half its width is sharp


@pytest.mark.parametrize(
    "page, rel, fragment, width", PNGS, ids=[f"{p}:{r}" for p, r, _, _ in PNGS]
)
def test_png_figures_have_twice_their_display_width(page, rel, fragment, width):
    problem = too_soft(DOCS / rel, width)
    assert problem is None, f"{page} shows {problem}"


SVGS = [i for i in IMAGES if i[1].endswith(".svg")]


@pytest.mark.parametrize(
    "page, rel, fragment, width", SVGS, ids=[f"{p}:{r}" for p, r, _, _ in SVGS]
)
def test_svg_text_is_legible_at_its_display_size(page, rel, fragment, width):
    path = DOCS / rel
    sizes = svg_text_sizes(path)
    assert sizes, f"{rel}: no text found (is it a matplotlib SVG?)"
    shown = [width] + ([PHONE_PX] if rel.replace("-dark", "") in PHONE_FIGURES else [])
    for display in shown:
        factor = min(display, width, COLUMN_PX) / svg_width(path)
        small = [
            f"{label!r} {size * factor:.1f} px"
            for label, size, script in sizes
            if size * factor < (MIN_SCRIPT_PX if script else MIN_TEXT_PX) - 1e-6
        ]
        assert not small, (
            f"{page} shows {rel} at {display} px: text below {MIN_TEXT_PX} px "
            f"({MIN_SCRIPT_PX:.1f} px for math scripts): {small[:8]}"
        )


def _has_opaque_background(path: Path) -> bool:
    """Whether the figure paints its own background (matplotlib's figure patch, or a full rect)."""
    root = ET.parse(path).getroot()
    for group in root.iter(f"{SVG_NS}g"):
        if group.get("id") == "patch_1":
            shape = group.find(f"{SVG_NS}path")
            style = (shape.get("style") or "") if shape is not None else ""
            return "fill: none" not in style and "fill:none" not in style
    for rect in root.iter(f"{SVG_NS}rect"):
        if rect.get("width") in ("100%", root.get("width")) and rect.get(
            "fill"
        ) not in (
            None,
            "none",
        ):
            return True
    return False


@pytest.mark.parametrize(
    "page, rel, fragment, width", SVGS, ids=[f"{p}:{r}" for p, r, _, _ in SVGS]
)
def test_svg_figures_have_a_transparent_background(page, rel, fragment, width):
    assert not _has_opaque_background(DOCS / rel), (
        f"{rel} paints a background: a white panel in dark mode"
    )


@pytest.mark.parametrize("page", sorted({p for p, *_ in IMAGES}))
def test_light_and_dark_variants_come_in_pairs(page):
    shown = {(rel, fragment) for p, rel, fragment, _ in IMAGES if p == page}
    for rel, fragment in shown:
        if fragment == "only-light":
            dark = rel.replace(".svg", "-dark.svg").replace(".png", "-dark.png")
            assert (dark, "only-dark") in shown, (
                f"{page} shows {rel}#only-light but not {dark}#only-dark"
            )
        if fragment == "only-dark":
            assert rel.rsplit("-dark", 1)[0] + Path(rel).suffix in {
                r for r, f in shown if f == "only-light"
            }, f"{page} shows {rel}#only-dark without its light variant"


def test_plots_with_a_dark_variant_are_shown_with_it():
    """A figure drawn in two variants is shown as a pair, never the light one alone."""
    for page, rel, fragment, _ in IMAGES:
        dark = DOCS / rel.replace(".svg", "-dark.svg")
        if rel.endswith(".svg") and "-dark" not in rel and dark.is_file():
            assert fragment == "only-light", (
                f"{page} shows {rel} in both colour schemes, but it has a dark variant: "
                f"show it as {rel}#only-light and {dark.name}#only-dark"
            )


def test_svg_figures_weigh_little():
    for path in sorted(DOCS.glob("figures/**/*.svg")):
        assert path.stat().st_size < 150_000, f"{path} is {path.stat().st_size} bytes"
