"""Pieces of the guidance_compare benchmark on small inputs (the full run is `python -m benchmarks`)."""

from __future__ import annotations

import pytest
import torch

from benchmarks.guidance_compare import Counting, classifier_rows, markdown
from snippets.classifier_guidance import load_noisy_classifier
from snippets.metrics import load_classifier
from snippets.schedules import NoiseSchedule


def test_counting_counts_forward_and_backward_images():
    net = Counting(torch.nn.Conv2d(1, 1, 3, padding=1))
    x = torch.randn(3, 1, 4, 4, requires_grad=True)
    net(x).sum().backward()
    with torch.no_grad():
        net(x[:2])
    assert net.forward_images == 5 and net.backward_images == 3


def test_classifier_rows_read_clean_digits_and_fall_to_chance_at_pure_noise():
    schedule = NoiseSchedule.from_name("cosine", num_train_timesteps=1000)
    noisy = load_noisy_classifier()  # the shipped one, at the shipped model's 8x8
    rows = classifier_rows(
        load_classifier(), noisy, schedule.alpha_bar, [0, 999], 64, noisy.image_size
    )
    clean, noise = rows
    assert clean["accuracy_clean"] > 0.9 and clean["accuracy_noise_aware"] > 0.9
    assert noise["accuracy_clean"] < 0.4 and noise["accuracy_noise_aware"] < 0.4
    assert -1 <= clean["gradient_cosine"] <= 1


def test_markdown_renders_every_row():
    c = {
        "t": 0, "alpha_bar": 1.0, "accuracy_clean": 1.0, "accuracy_noise_aware": 1.0,
        "gradient_cosine": 0.5,
    }  # fmt: skip
    row = {
        "label_accuracy": 0.5, "fid": 10.0, "confidence": 0.9, "network_passes": 20,
        "backward_passes": 0, "seconds": 1.0,
    }  # fmt: skip
    record = {
        "results": {
            "classifiers": [c],
            "rows": [{"method": m, "scale": 1.0, **row} for m in ["cg", "cfg"]],
            "loss_guidance": [
                {"gradient_through": "x0", "scale": 3.0, "ink": 0.4, "ink_gap": 0.01, **row}
            ],
            "n_samples": 10, "labels": "i % 10", "seed": 0, "sampler": "ddim",
            "steps": 10, "floor": {"fid": 5.0}, "floor_loss": {"fid": 6.0},
            "ink_target": 0.4, "n_loss_samples": 5, "ink_test_split": 0.3,
        }
    }  # fmt: skip
    text = markdown(record)
    assert "classifier-free guidance" in text and "| x0 | 3 | 0.400 |" in text
    # three tables: header and rule, then 1 + 2 + 1 rows
    assert sum(line.startswith("|") for line in text.splitlines()) == 6 + 1 + 2 + 1


def test_an_8x8_model_is_guided_at_8x8_and_scored_at_16x16(
    tmp_path, fast_digits_checkpoint
):
    from benchmarks import guidance_compare
    from snippets.checkpoint import load_checkpoint
    from snippets.classifier_guidance import (
        save_noisy_classifier,
        train_noisy_classifier,
    )

    schedule = load_checkpoint(fast_digits_checkpoint).schedule
    noisy = train_noisy_classifier(schedule, steps=3, progress=False, image_size=8)
    save_noisy_classifier(noisy, tmp_path / "noisy8", {"steps": 3})
    r = guidance_compare.run(True, fast_digits_checkpoint, tmp_path / "noisy8")
    assert (r["image_size"], r["data_size"]) == (8, 16)
    assert [c["t"] for c in r["classifiers"]] == [0, 500, 999]
    # the clean classifier reads the clean 8x8 test digits, resized to its 16x16
    assert r["classifiers"][0]["accuracy_clean"] > 0.9
    methods = {row["method"] for row in r["rows"]}
    assert methods == {"cg", "cg_clean", "cfg"}
    assert all(0 <= row["label_accuracy"] <= 1 for row in r["rows"])
    # a 16x16 noise-aware classifier cannot guide an 8x8 model: refused, naming the size
    noisy16 = train_noisy_classifier(schedule, steps=1, progress=False, image_size=16)
    save_noisy_classifier(noisy16, tmp_path / "noisy16", {"steps": 1})
    with pytest.raises(ValueError, match="image_size"):
        guidance_compare.run(True, fast_digits_checkpoint, tmp_path / "noisy16")
