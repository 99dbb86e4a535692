import pytest
import torch

from snippets.data import load_digits
from snippets.fast_digits import (
    FAST_DIGITS_CONFIG,
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
