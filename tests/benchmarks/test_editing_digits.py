"""The editing benchmark on a model trained at 8x8: it edits at the network's size and measures
at the data's (the full run is `python -m benchmarks editing_digits`)."""

from __future__ import annotations

from benchmarks import editing_digits
from snippets.checkpoint import load_checkpoint


def test_editing_runs_on_an_8x8_model_and_reports_at_16x16(fast_digits_checkpoint):
    assert load_checkpoint(fast_digits_checkpoint).upsample_to == 16
    r = editing_digits.run(fast=True, checkpoint=fast_digits_checkpoint)
    assert (r["image_size"], r["data_size"], r["sqrt_d"]) == (8, 16, 8.0)
    errors = [row["rms"] for row in r["inversion"]["rows"]]
    assert all(e > 0 for e in errors)
    sdedit = r["sdedit"]["rows"]
    # strength 0 is the sketch projected onto the digits' 8x8 subspace and upsampled: close
    # to the sketch, not equal to it (a sketch is drawn at 16x16)
    assert 0 < sdedit[0]["rms_to_sketch"] < 0.5
    methods = [row["method"] for row in r["inpainting"]["rows"]]
    assert methods == ["original", "erased", "naive", "repaint"]
    norms = {row["noise"]: row["noise_norm"] for row in r["interpolation"]["rows"]}
    assert norms["endpoints"] < 10  # 8x8 noises: |z| about sqrt(64) = 8
    assert "8x8 noises" in editing_digits.markdown({"results": r})
