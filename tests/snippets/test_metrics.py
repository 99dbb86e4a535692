"""Tests of snippets/metrics.py: the Fréchet distance, the cached classifier, digit FID's sanity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from snippets.data import load_digits
from snippets.metrics import (
    CLASSIFIER_DIR,
    CLASSIFIER_FILE,
    DigitClassifier,
    digit_metrics,
    fid_floor,
    frechet_distance,
    load_classifier,
    train_classifier,
)


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def test_frechet_distance_of_a_shift_is_its_squared_length():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, a + shift) == pytest.approx((shift**2).sum(), rel=1e-8)


def test_frechet_distance_matches_the_scipy_sqrtm_formula():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 6)), 2 * rng.normal(size=(200, 6)) + 0.3
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(
        s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real
    )
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError):
        frechet_distance(a, b[:, :5])


def test_cached_classifier_loads_and_retraining_reproduces_it(classifier):
    assert (CLASSIFIER_DIR / CLASSIFIER_FILE).is_file()
    x, y = load_digits("test")
    retrained = train_classifier()
    with torch.no_grad():
        cached_pred, new_pred = classifier(x).argmax(-1), retrained(x).argmax(-1)
    assert (cached_pred == y).float().mean() > 0.95
    assert (
        new_pred == cached_pred
    ).float().mean() > 0.99  # same recipe, same classifier
    assert (new_pred == y).float().mean() > 0.95


def test_corrupt_classifier_cache_is_reported(tmp_path):
    (tmp_path / CLASSIFIER_FILE).write_bytes(b"broken")
    with pytest.raises(
        ValueError, match="classifier.safetensors is truncated or corrupt"
    ):
        load_classifier(tmp_path)


def test_digit_fid_is_zero_on_the_test_split_and_large_on_noise(classifier):
    test = digit_metrics(load_digits("test")[0], classifier)
    floor = fid_floor(300, classifier)
    noise = digit_metrics(
        torch.rand(300, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1,
        classifier,
    )
    assert test["fid"] == pytest.approx(0.0, abs=1e-6)
    assert 0 < floor["fid"] < 0.1 * noise["fid"]
    assert floor["confidence"] > 0.9 > noise["confidence"]
    assert floor["class_entropy"] > 0.97 * math.log(10)
    assert floor["n"] == noise["n"] == 300


def test_digit_metrics_reject_bad_samples(classifier):
    with pytest.raises(ValueError, match="shape"):
        digit_metrics(torch.zeros(4, 1, 8, 8), classifier)
    with pytest.raises(ValueError, match="NaN"):
        digit_metrics(torch.full((4, 1, 16, 16), float("nan")), classifier)
    assert isinstance(
        DigitClassifier().features(torch.zeros(2, 1, 16, 16)), torch.Tensor
    )
