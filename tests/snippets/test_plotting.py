"""snippets/plotting.py: every figure in a light and a dark variant, transparent, text legible."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from snippets.plotting import (  # noqa: E402
    INK,
    THEMES,
    ink,
    is_dark,
    rc,
    save_figure,
    variant_path,
)


def _draw():
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1], color="C0")
    ax.axhline(0.5, color=ink())
    ax.set_title("x")
    return fig


def test_save_figure_writes_a_light_and_a_dark_svg(tmp_path):
    paths = save_figure(_draw, tmp_path / "f.svg")
    assert paths == [tmp_path / "f.svg", tmp_path / "f-dark.svg"]
    light, dark = (p.read_text() for p in paths)
    for text, theme in ((light, "light"), (dark, "dark")):
        assert INK[theme] in text, f"{theme} variant lacks its ink colour"
        # matplotlib's figure background patch is left unpainted: no white panel in dark mode
        background = re.search(r'<g id="patch_1">\s*<path[^>]*style="([^"]*)"', text)
        assert background and "fill: none" in background[1]
    assert INK["dark"] not in light and INK["light"] not in dark


def test_save_figure_is_deterministic(tmp_path):
    a = save_figure(_draw, tmp_path / "a.svg")[0].read_text()
    b = save_figure(_draw, tmp_path / "b.svg")[0].read_text()
    assert a == b


def test_png_is_drawn_at_200_dpi(tmp_path):
    (path,) = save_figure(_draw, tmp_path / "f.png", themes=("light",))
    width = int.from_bytes(path.read_bytes()[16:20], "big")
    assert (
        width > 2 * 100 * 1.5
    )  # a 2-inch figure at 200 dpi, tight box: well over 300 px


def test_ink_follows_the_theme():
    for theme in THEMES:
        with plt.rc_context(rc(theme)):
            assert ink() == INK[theme]
            assert is_dark() == (theme == "dark")


def test_variant_path():
    assert variant_path("a/x.svg", "light").as_posix() == "a/x.svg"
    assert variant_path("a/x.svg", "dark").as_posix() == "a/x-dark.svg"


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: rc("sepia"), "theme"),
        (lambda: variant_path("x.svg", "sepia"), "theme"),
        (lambda: save_figure(_draw, "x.pdf"), "path"),
        (lambda: save_figure(_draw, "x.svg", themes=("sepia",)), "themes"),
        (lambda: save_figure(_draw, "x.svg", themes=()), "themes"),
    ],
)
def test_bad_input_is_rejected_by_name(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_grey_images_are_embedded_as_one_channel_pngs(tmp_path):
    """A digit grid drawn with a grey colour map keeps its pixels in an 8-bit grey PNG."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).uniform(-1, 1, (40, 60))

    def draw():
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.imshow(pixels, cmap="gray", vmin=-1, vmax=1)
        return fig

    light, dark = save_figure(draw, tmp_path / "grid.svg")
    for path in (light, dark):
        (data,) = re.findall(
            r"data:image/png;base64,\s*([A-Za-z0-9+/=\s]+)", path.read_text()
        )
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.mode == "L" and image.size == (60, 40)
        # the same greys as the colour map gives them
        expected = (plt.get_cmap("gray")((pixels + 1) / 2)[..., 0] * 255).round()
        assert np.abs(np.asarray(image, dtype=float) - expected).max() <= 1
