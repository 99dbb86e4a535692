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
