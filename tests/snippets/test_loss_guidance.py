"""Tests for snippets/loss_guidance.py: the course's loss guidance, on the amount of ink."""

from __future__ import annotations

import pytest
import torch

from snippets.loss_guidance import ink, ink_loss, loss_guided_ddim_sample
from snippets.sampling import ddim_sample
from snippets.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.from_name("linear", num_train_timesteps=100)


def stand_in_model(x, t):
    """A deterministic stand-in for a trained network: smooth in x, varying with t."""
    return 0.9 * x + 0.1 * torch.sin(x + t.float().reshape(-1, 1, 1, 1) / 100)


def x_T(seed=0):
    return torch.randn((4, 1, 8, 8), generator=torch.Generator().manual_seed(seed))


def test_ink_is_zero_for_blank_one_for_white_and_the_loss_zero_at_the_target():
    blank, white = torch.full((1, 1, 4, 4), -1.0), torch.ones(1, 1, 4, 4)
    half = torch.cat([blank[..., :2], white[..., 2:]], dim=-1)
    assert ink(blank).item() == 0 and ink(white).item() == 1 and ink(half).item() == 0.5
    assert ink_loss(half, 0.5).item() == 0 and ink_loss(white, 0.25).item() == 0.5625


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_scale_zero_is_ddim_exactly(prediction_type):
    guided = loss_guided_ddim_sample(
        stand_in_model, lambda x: ink_loss(x, 0.4), x_T(), SCHEDULE, 10,
        guidance_scale=0.0, prediction_type=prediction_type,
    )  # fmt: skip
    plain = ddim_sample(
        stand_in_model, x_T(), SCHEDULE, 10, prediction_type=prediction_type
    )
    assert torch.equal(guided, plain)


@pytest.mark.parametrize("gradient_through", ["x0", "x_t"])
def test_loss_guidance_lowers_the_loss(gradient_through):
    def loss(x):
        return ink_loss(x, 0.8)

    losses = []
    for scale in [0.0, 20.0, 100.0]:
        x0 = loss_guided_ddim_sample(
            stand_in_model, loss, x_T(), SCHEDULE, 10,
            guidance_scale=scale, gradient_through=gradient_through,
        )  # fmt: skip
        losses.append(loss(x0.clamp(-1, 1)).mean().item())
    assert losses[0] > losses[1] > losses[2]


def test_the_x0_gradient_runs_through_the_network():
    """One backward pass through the network per step for "x0", none for "x_t"."""
    calls = {"backward": 0}

    class Net(torch.nn.Module):
        def forward(self, x, t):
            out = 2 * x
            if out.requires_grad:
                out.register_hook(
                    lambda g: calls.__setitem__("backward", 1 + calls["backward"])
                )
            return out

    loss_guided_ddim_sample(
        Net(), lambda x: ink_loss(x, 0.8), x_T(), SCHEDULE, 5,
        guidance_scale=10.0, gradient_through="x0",
    )  # fmt: skip
    assert calls["backward"] == 5
    loss_guided_ddim_sample(
        Net(), lambda x: ink_loss(x, 0.8), x_T(), SCHEDULE, 5,
        guidance_scale=10.0, gradient_through="x_t",
    )  # fmt: skip
    assert calls["backward"] == 5
