import pytest
import torch

from snippets.data import load_digits
from snippets.fast_digits import (
    FAST_DIGITS_CONFIG,
    downsample_digits,
    sample_fast_digits,
    upsample_digits,
)
from snippets.sampling import SAMPLERS
from snippets.schedules import NoiseSchedule
from snippets.unet import UNet


def test_upsampling_8x8_digits_gives_exactly_the_16x16_data():
    x8, y8 = load_digits("all", image_size=8)
    x16, y16 = load_digits("all", image_size=16)
    assert torch.equal(upsample_digits(x8), x16)
    assert torch.equal(y8, y16)


def test_upsampling_clips_to_the_data_range_first():
    x = torch.full((2, 1, 8, 8), 3.0)
    x[1] = -5.0
    out = upsample_digits(x)
    assert out.shape == (2, 1, 16, 16)
    assert torch.equal(out[0], torch.ones(1, 16, 16))
    assert torch.equal(out[1], -torch.ones(1, 16, 16))


def test_sampling_at_8x8_returns_16x16_digits_on_the_data_subspace():
    torch.manual_seed(0)
    model = UNet(**dict(FAST_DIGITS_CONFIG, channels=(32, 32))).eval()
    schedule = NoiseSchedule.from_name("cosine", 1000)
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x8 = SAMPLERS["dpmsolver++"](model, x_T, schedule, 2)
        x16 = sample_fast_digits(SAMPLERS["dpmsolver++"], model, x_T, schedule, 2)
    assert x16.shape == (3, 1, 16, 16)
    assert torch.equal(x16, upsample_digits(x8))


@pytest.mark.parametrize(
    "x, kwargs, message",
    [
        (torch.zeros(2, 1, 16, 16), {}, "x"),
        (torch.full((1, 1, 8, 8), float("nan")), {}, "x"),
        ([[0.0]], {}, "x"),
        (torch.zeros(1, 1, 8, 8), {"image_size": 0}, "image_size"),
        (torch.zeros(1, 1, 8, 8), {"image_size": 16.0}, "image_size"),
    ],
)
def test_upsample_digits_rejects_bad_input_naming_it(x, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        upsample_digits(x, **kwargs)


def test_sample_fast_digits_rejects_bad_input_naming_it():
    with pytest.raises(TypeError, match="sampler"):
        sample_fast_digits("ddpm", None, torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="x_T"):
        sample_fast_digits(SAMPLERS["ddpm"], None, torch.zeros(1, 1, 16, 16))


def test_downsampling_takes_the_16x16_data_exactly_back_to_their_8x8_originals():
    x8, _ = load_digits("all", image_size=8)
    x16, _ = load_digits("all", image_size=16)
    assert torch.allclose(downsample_digits(x16), x8, atol=1e-5)
    assert torch.equal(downsample_digits(x8), x8)  # the identity at the same size


def test_downsampling_is_the_least_squares_projection_onto_the_data_subspace():
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.3
    back = upsample_digits(downsample_digits(x))  # stays inside [-1, 1]: no clipping
    residual = x - back
    # the residual is orthogonal to every upsampled 8x8 image: U^T (x - U U^+ x) = 0
    basis = upsample_digits(torch.eye(64).reshape(64, 1, 8, 8) * 0.5)
    dots = torch.einsum("bchw,kchw->bk", residual, basis)
    assert dots.abs().max() < 1e-5
    assert residual.norm() > 0.1  # a random image is off the subspace


@pytest.mark.parametrize(
    "x, kwargs, message",
    [
        (torch.zeros(2, 1, 4, 4), {}, "x"),
        (torch.zeros(2, 1, 16, 12), {}, "x"),
        (torch.zeros(2, 3, 16, 16), {}, "x"),
        (torch.full((1, 1, 16, 16), float("inf")), {}, "x"),
        (torch.zeros(1, 1, 16, 16), {"image_size": 0}, "image_size"),
    ],
)
def test_downsample_digits_rejects_bad_input_naming_it(x, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        downsample_digits(x, **kwargs)
