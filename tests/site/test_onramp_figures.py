"""The on-ramp's figures: remade from the shipped model, sharp on high-DPI screens, no white panel."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from PIL import Image
from siteaudit import REPO

SCRIPT = REPO / "docs" / "figures" / "make_onramp_figures.py"
PAGE = REPO / "docs" / "unit1" / "what-are-diffusion-models.md"
IMAGE = re.compile(
    r"!\[[^\]]*\]\(\.\./figures/onramp/(?P<name>[\w-]+\.png)\)\{ width=\"(?P<width>\d+)\" \}"
)


def shown_figures() -> dict[str, int]:
    """The on-ramp figures the page shows, with the CSS width it shows them at."""
    return {m["name"]: int(m["width"]) for m in IMAGE.finditer(PAGE.read_text("utf-8"))}


def test_page_shows_both_figures_with_a_declared_width():
    assert set(shown_figures()) == {"noising.png", "denoising.png"}


@pytest.fixture(scope="module")
def remade(tmp_path_factory):
    out = tmp_path_factory.mktemp("onramp")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_script_remakes_the_committed_figures_at_twice_their_display_width(remade):
    for name, width in shown_figures().items():
        made = Image.open(remade / name)
        committed = Image.open(REPO / "docs" / "figures" / "onramp" / name)
        assert made.size == committed.size, name
        assert made.width >= 2 * width, f"{name}: {made.width} px for {width} CSS px"
        # a transparent background: no white panel in dark mode
        assert made.mode == "RGBA" and made.getchannel("A").getextrema()[0] == 0, name


def test_script_rejects_an_out_path_that_is_a_file(tmp_path):
    file = tmp_path / "x.png"
    file.write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "--out" in proc.stderr


def test_an_8x8_model_gives_the_same_figures_at_its_own_size(
    tmp_path, fast_digits_checkpoint
):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)]
        + ["--checkpoint", str(fast_digits_checkpoint)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in shown_figures():
        committed = Image.open(REPO / "docs" / "figures" / "onramp" / name)
        assert Image.open(tmp_path / name).size == committed.size, name
