"""Tests for inpainting (snippets/inpainting.py): known pixels kept exactly, the naive loop as
DDPM sampling and as RePaint without resampling, RePaint's schedule against diffusers', bad masks.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from diffusers import RePaintScheduler

from snippets.inpainting import (
    inpaint,
    inpaint_progressive,
    repaint,
    repaint_progressive,
    repaint_timesteps,
)
from snippets.sampling import ddpm_sample
from snippets.schedules import NoiseSchedule

SHAPE = (2, 1, 4, 4)
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)


def stand_in_model(x, t):
    """A deterministic stand-in for a trained network: smooth in x, varying with t, batch-vectorised."""
    return 0.9 * x + 0.1 * torch.sin(x + t.float().reshape(-1, 1, 1, 1) / 100)


def images(seed=0):
    return torch.rand(SHAPE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def left_half_known():
    mask = torch.zeros(SHAPE[0], 1, *SHAPE[2:])
    mask[..., :2] = 1
    return mask


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("num_inference_steps", "jump_length", "jump_n_sample"),
    [(10, 2, 3), (20, 10, 10), (25, 5, 2), (50, 10, 10), (7, 3, 4), (10, 10, 5)],
)
def test_repaint_timesteps_match_diffusers_repaint_scheduler(
    num_inference_steps, jump_length, jump_n_sample
):
    scheduler = RePaintScheduler()
    scheduler.set_timesteps(num_inference_steps, jump_length, jump_n_sample)
    ours = repaint_timesteps(1000, num_inference_steps, jump_length, jump_n_sample)
    assert torch.equal(ours, scheduler.timesteps)


# --8<-- [start:test-known-pixels]
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("method", ["inpaint", "repaint"])
def test_known_pixels_are_kept_exactly(method, prediction_type):
    x0, mask = images(), left_half_known()
    schedule = NoiseSchedule.from_name("cosine")
    if method == "inpaint":
        out = inpaint(
            stand_in_model,
            x0,
            mask,
            schedule,
            10,
            prediction_type=prediction_type,
            generator=generator(),
        )
    else:
        out = repaint(
            stand_in_model,
            x0,
            mask,
            schedule,
            10,
            jump_length=2,
            jump_n_sample=3,
            prediction_type=prediction_type,
            generator=generator(),
        )
    known = mask.expand(SHAPE).bool()
    assert torch.equal(out[known], x0[known])
    # and the unknown pixels were generated, not copied
    assert not torch.allclose(out[~known], x0[~known])
    assert torch.isfinite(out).all()
    # --8<-- [end:test-known-pixels]


def test_with_every_pixel_known_the_output_is_the_input():
    x0 = images()
    out = repaint(
        stand_in_model,
        x0,
        torch.ones(SHAPE),
        NoiseSchedule.from_name("linear"),
        10,
        jump_length=2,
        jump_n_sample=2,
        generator=generator(),
    )
    assert torch.equal(out, x0)


def test_with_no_pixel_known_the_naive_loop_is_ddpm_sampling():
    schedule = NoiseSchedule.from_name("linear")
    x_T = torch.randn(SHAPE, generator=generator(7))
    ours = inpaint(
        stand_in_model,
        images(),
        torch.zeros(SHAPE),
        schedule,
        10,
        x_T=x_T,
        generator=generator(1),
    )
    theirs = ddpm_sample(stand_in_model, x_T, schedule, 10, generator=generator(1))
    assert torch.equal(ours, theirs)


def test_repaint_without_resampling_is_the_naive_loop():
    schedule = NoiseSchedule.from_name("linear")
    x0, mask = images(), left_half_known()
    naive = list(
        inpaint_progressive(
            stand_in_model, x0, mask, schedule, 10, generator=generator()
        )
    )
    resampled = list(
        repaint_progressive(
            stand_in_model,
            x0,
            mask,
            schedule,
            10,
            jump_length=3,
            jump_n_sample=1,
            generator=generator(),
        )
    )
    assert len(naive) == len(resampled) == 10
    for (t_a, x_a, _), (t_b, x_b, _) in zip(naive, resampled):
        assert t_a == t_b and torch.equal(x_a, x_b)


def test_repaint_calls_the_model_once_per_step_down():
    calls = []

    def counting_model(x, t):
        calls.append(int(t[0]))
        return stand_in_model(x, t)

    timesteps = repaint_timesteps(1000, 10, 2, 3)
    repaint(
        counting_model,
        images(),
        left_half_known(),
        NoiseSchedule.from_name("linear"),
        10,
        jump_length=2,
        jump_n_sample=3,
        generator=generator(),
    )
    downs = [int(t) for t, before in zip(timesteps, [10**9, *timesteps]) if t < before]
    assert calls == downs and len(calls) > 10


@pytest.mark.parametrize(
    "mask",
    [
        torch.ones(2, 1, 4, 5),  # wrong width
        torch.ones(1, 4, 4),  # a dimension missing
        torch.ones(3, 1, 4, 4),  # wrong batch
        torch.full(SHAPE, 0.5),  # a soft mask
        torch.tensor([0.0, 1.0, 2.0, 1.0]).reshape(1, 1, 1, 4).expand(2, 1, 4, 4),
        torch.full(SHAPE, float("nan")),
        [[1, 0]],  # not a tensor
    ],
)
@pytest.mark.parametrize("function", [inpaint, repaint])
def test_a_bad_mask_is_an_error_naming_mask(function, mask):
    with pytest.raises(ValueError, match=r"^mask (must|contains)"):
        function(stand_in_model, images(), mask, NoiseSchedule.from_name("linear"), 10)


def test_boolean_and_broadcast_masks_are_accepted():
    schedule = NoiseSchedule.from_name("linear")
    x0 = images()
    a = inpaint(
        stand_in_model, x0, left_half_known().bool(), schedule, 5, generator=generator()
    )
    b = inpaint(
        stand_in_model,
        x0,
        left_half_known().expand(SHAPE),
        schedule,
        5,
        generator=generator(),
    )
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("name", "value"),
    list(itertools.product(["jump_length", "jump_n_sample"], [0, -1, 1.5])),
)
def test_bad_jump_arguments_are_errors_naming_them(name, value):
    with pytest.raises(ValueError, match=name):
        repaint(
            stand_in_model,
            images(),
            left_half_known(),
            NoiseSchedule.from_name("linear"),
            10,
            **{name: value},
        )
