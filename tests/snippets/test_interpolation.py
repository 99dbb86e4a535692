"""Tests for slerp and lerp (snippets/interpolation.py): the norm of a Gaussian noise."""

from __future__ import annotations

import math

import pytest
import torch

from snippets.interpolation import lerp, slerp

D = 1 * 16 * 16  # the digits model's noise: 256 numbers per image


def noises(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 16, 16, generator=g), torch.randn(
        n, 1, 16, 16, generator=g
    )


def norms(x):
    return x.flatten(1).norm(dim=1)


def test_a_gaussian_noise_has_norm_about_sqrt_d():
    x0, _ = noises()
    assert norms(x0).mean() == pytest.approx(math.sqrt(D), rel=0.02)


@pytest.mark.parametrize("alpha", [0.1, 0.25, 0.5, 0.9])
def test_slerp_keeps_the_gaussian_norm(alpha):
    x0, x1 = noises()
    ratio = norms(slerp(x0, x1, alpha)) / math.sqrt(D)
    assert ratio.mean() == pytest.approx(1.0, abs=0.02)
    assert (ratio - 1).abs().max() < 0.15


def test_lerp_at_one_half_shrinks_the_norm_by_one_over_sqrt_two():
    x0, x1 = noises()
    ratio = norms(lerp(x0, x1, 0.5)) / norms(slerp(x0, x1, 0.5))
    assert ratio.mean() == pytest.approx(1 / math.sqrt(2), abs=0.02)


def test_both_end_at_their_endpoints_and_slerp_keeps_an_exact_norm():
    x0, x1 = noises(4)
    for f in (lerp, slerp):
        assert torch.allclose(f(x0, x1, 0.0), x0, atol=1e-5)
        assert torch.allclose(f(x0, x1, 1.0), x1, atol=1e-5)
    # two vectors of equal norm: the great circle keeps it exactly
    x1 = x1 / norms(x1)[:, None, None, None] * norms(x0)[:, None, None, None]
    assert torch.allclose(norms(slerp(x0, x1, 0.3)), norms(x0), rtol=1e-5)


def test_slerp_of_parallel_noises_falls_back_to_lerp():
    x0, _ = noises(2)
    out = slerp(x0, 2 * x0, 0.5)
    assert torch.isfinite(out).all() and torch.allclose(out, 1.5 * x0, atol=1e-5)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
@pytest.mark.parametrize("f", [lerp, slerp])
def test_alpha_outside_zero_one_is_an_error_naming_alpha(f, alpha):
    x0, x1 = noises(2)
    with pytest.raises(ValueError, match="alpha must be"):
        f(x0, x1, alpha)


@pytest.mark.parametrize("f", [lerp, slerp])
def test_different_shapes_are_an_error(f):
    x0, x1 = noises(2)
    with pytest.raises(ValueError, match=r"x1 has shape .* but x0 has shape"):
        f(x0, x1[:1], 0.5)
