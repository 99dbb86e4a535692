"""Tests for snippets/basic_unet.py: the course's BasicUNet."""

import pytest
import torch
import torch.nn.functional as F

from snippets.basic_unet import BasicUNet


def conv_params(c_in: int, c_out: int, k: int = 5) -> int:
    return c_in * c_out * k * k + c_out


def test_parameter_count_is_the_courses_309057():
    model = BasicUNet()
    assert sum(p.numel() for p in model.parameters()) == 309_057


def test_parameter_count_follows_the_layer_widths_for_other_channel_counts():
    model = BasicUNet(in_channels=3, out_channels=2)
    expected = (
        conv_params(3, 32)
        + conv_params(32, 64)
        + conv_params(64, 64)
        + conv_params(64, 64)
        + conv_params(64, 32)
        + conv_params(32, 2)
    )
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize(
    "in_channels, out_channels, size",
    [(1, 1, (28, 28)), (1, 1, (32, 32)), (3, 2, (16, 24))],
)
def test_output_has_the_input_resolution(in_channels, out_channels, size):
    x = torch.randn(2, in_channels, *size, generator=torch.Generator().manual_seed(0))
    assert BasicUNet(in_channels, out_channels)(x).shape == (2, out_channels, *size)


def test_output_is_bounded_below_by_the_minimum_of_silu():
    # every layer, the last included, ends with a SiLU, whose minimum is about -0.2785
    x = 10 * torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    silu_min = F.silu(torch.linspace(-2, 0, 20001)).min()
    assert BasicUNet()(x).min() >= silu_min - 1e-6


def test_matches_a_functional_rewrite_of_the_course_forward():
    torch.manual_seed(0)
    model = BasicUNet()
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    d, u = model.down_layers, model.up_layers
    h1 = F.silu(d[0](x))
    h2 = F.silu(d[1](F.max_pool2d(h1, 2)))
    h = F.silu(d[2](F.max_pool2d(h2, 2)))
    h = F.silu(u[0](h))
    h = F.silu(u[1](F.interpolate(h, scale_factor=2) + h2))
    h = F.silu(u[2](F.interpolate(h, scale_factor=2) + h1))
    torch.testing.assert_close(model(x), h)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = BasicUNet()
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    model(x).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_deterministic_under_a_fixed_seed():
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(123)
    a = BasicUNet()(x)
    torch.manual_seed(123)
    b = BasicUNet()(x)
    torch.manual_seed(124)
    c = BasicUNet()(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize(
    "shape, message",
    [
        ((2, 3, 28, 28), "expects images of shape"),
        ((1, 28, 28), "expects images of shape"),
        ((2, 1, 30, 28), "divisible by 4"),
        ((2, 1, 28, 26), "divisible by 4"),
    ],
)
def test_bad_input_raises_a_clear_error(shape, message):
    with pytest.raises(ValueError, match=message):
        BasicUNet()(torch.zeros(shape))
