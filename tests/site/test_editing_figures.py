"""The editing page's figures are made at the network's size and shown at the data's."""

from __future__ import annotations

import os
import subprocess
import sys

from PIL import Image
from siteaudit import REPO

SCRIPT = REPO / "docs" / "figures" / "make_editing_figures.py"
NAMES = ("inversion", "sdedit", "inpainting", "interpolation")


def test_every_editing_figure_is_made_from_an_8x8_model(tmp_path, fast_digits_checkpoint):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--fast", "--out", str(tmp_path)]
        + ["--checkpoint", str(fast_digits_checkpoint)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in NAMES:
        made = sorted(tmp_path.glob(f"{name}*.png"))
        assert made, f"no {name} figure in {proc.stdout}"
        for path in made:
            with Image.open(path) as image:
                assert min(image.size) > 100
