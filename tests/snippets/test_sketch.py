"""Tests for the digit sketches (snippets/sketch.py), the guides of SDEdit."""

from __future__ import annotations

import torch

from snippets.metrics import load_classifier
from snippets.sketch import DIGIT_STROKES, rasterise_strokes, sketch_digits


def test_a_horizontal_stroke_inks_its_rows_and_nothing_far_from_it():
    # a stroke along y = 0.5 on an 8-pixel grid: pixel centres at (k + 0.5) / 8
    image = rasterise_strokes([torch.tensor([[0.1, 0.5], [0.9, 0.5]])], 8, 2.0)
    assert image.shape == (1, 8, 8)
    assert image.min() == -1 and image.max() == 1
    # rows 3 and 4 have centres half a pixel from the line: inside half a pen width
    assert torch.all(image[0, 3:5, 2:6] == 1)
    # rows 0 and 7 are 3.5 pixels away: background
    assert torch.all(image[0, [0, 7]] == -1)


def test_sketches_are_deterministic_without_jitter_and_vary_with_it():
    labels = torch.arange(10)
    plain = sketch_digits(labels)
    assert plain.shape == (10, 1, 16, 16)
    assert torch.equal(plain, sketch_digits(labels))
    assert set(DIGIT_STROKES) == set(range(10))
    g = torch.Generator().manual_seed(0)
    jittered = sketch_digits(labels, jitter=1.0, generator=g)
    assert not torch.equal(plain, jittered)
    assert jittered.min() >= -1 and jittered.max() <= 1


def test_the_digit_classifier_reads_the_plain_sketches_as_their_digits():
    labels = torch.arange(10)
    with torch.no_grad():
        read_as = load_classifier()(sketch_digits(labels)).argmax(-1)
    assert (read_as == labels).sum() >= 9, read_as.tolist()
