"""Tests for snippets/flow_matching.py: flow matching / rectified flow (Lipman et al. 2022, Liu et al. 2022)."""

from __future__ import annotations

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from snippets.flow_matching import (
    flow_match_sigmas,
    flow_matching_loss,
    flow_path,
    flow_sample,
    flow_sample_progressive,
    paper_time,
    paper_velocity,
    predict_x0_from_velocity,
    shift_sigmas,
    velocity_target,
)


class TinyVelocityNet(torch.nn.Module):
    """A small velocity network v(x, timestep) with fixed random weights."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x, timestep):
        t = timestep.reshape(-1, 1, 1, 1) / 1000
        return torch.tanh(self.conv(x)) * (1 + t) - x * t


def _pair(seed, shape=(3, 1, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


# --8<-- [start:test-flow-sigmas]
@pytest.mark.parametrize("shift", [1.0, 3.0])
@pytest.mark.parametrize("n", [1, 4, 28])
def test_sigmas_and_timesteps_match_diffusers(shift, n):
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(n)
    sigmas, timesteps = flow_match_sigmas(n, shift=shift)
    assert (sigmas - scheduler.sigmas).abs().max() <= 1e-6
    assert (
        timesteps - scheduler.timesteps
    ).abs().max() <= 1e-3  # timesteps are in [0, 1000]
    assert sigmas[0] == 1.0 and sigmas[-1] == 0.0


# --8<-- [end:test-flow-sigmas]


# --8<-- [start:test-flow-path]
def test_flow_path_matches_diffusers_scale_noise():
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(10)
    data, noise = _pair(0, (4, 1, 8, 8))
    idx = torch.tensor([0, 3, 6, 9])
    noisy = scheduler.scale_noise(data, scheduler.timesteps[idx], noise)
    assert (flow_path(data, noise, scheduler.sigmas[idx]) - noisy).abs().max() <= 1e-5


def test_flow_path_endpoints_in_both_conventions():
    data, noise = _pair(1)
    zeros, ones = torch.zeros(3), torch.ones(3)
    # diffusers: t = 0 is data, t = 1 is noise
    assert torch.equal(flow_path(data, noise, zeros), data)
    assert torch.equal(flow_path(data, noise, ones), noise)
    # Lipman / Liu: t = 0 is noise, t = 1 is data (up to sigma_min * noise)
    assert torch.equal(flow_path(data, noise, zeros, "paper"), noise)
    assert torch.equal(flow_path(data, noise, ones, "paper"), data)
    assert torch.allclose(
        flow_path(data, noise, ones, "paper", sigma_min=0.01), data + 0.01 * noise
    )


# --8<-- [end:test-flow-path]


def test_velocity_is_the_time_derivative_of_the_path():
    data, noise = _pair(2)
    t, h = torch.tensor([0.1, 0.5, 0.8]), 1e-3
    for convention, sigma_min in [("diffusers", 0.0), ("paper", 0.0), ("paper", 0.05)]:
        dx_dt = (
            flow_path(data, noise, t + h, convention, sigma_min)
            - flow_path(data, noise, t - h, convention, sigma_min)
        ) / (2 * h)
        assert torch.allclose(
            dx_dt, velocity_target(data, noise, convention, sigma_min), atol=1e-3
        )


def test_the_two_conventions_are_the_same_path_run_backwards():
    data, noise = _pair(3)
    t = torch.tensor([0.0, 0.3, 0.9])
    assert torch.allclose(
        flow_path(data, noise, t),
        flow_path(data, noise, paper_time(t), "paper"),
        atol=1e-6,
    )
    assert torch.equal(
        velocity_target(data, noise, "paper"),
        paper_velocity(velocity_target(data, noise)),
    )


def test_loss_is_zero_for_the_exact_target_and_x0_is_recoverable():
    data, noise = _pair(4)
    t = torch.tensor([0.2, 0.5, 0.95])
    oracle = lambda x_t, timestep: velocity_target(data, noise)  # noqa: E731
    assert flow_matching_loss(oracle, data, t=t, noise=noise).item() == 0.0
    zero = lambda x_t, timestep: torch.zeros_like(x_t)  # noqa: E731
    expected = ((noise - data) ** 2).mean().item()
    assert flow_matching_loss(zero, data, t=t, noise=noise).item() == pytest.approx(
        expected, rel=1e-6
    )
    x_t = flow_path(data, noise, t)
    assert torch.allclose(
        predict_x0_from_velocity(velocity_target(data, noise), x_t, t), data, atol=1e-5
    )


def test_loss_gives_the_network_diffusers_timesteps():
    seen = []

    def model(x_t, timestep):
        seen.append(timestep)
        return torch.zeros_like(x_t)

    data, _ = _pair(5)
    flow_matching_loss(model, data, t=torch.tensor([0.0, 0.25, 1.0]))
    assert seen[0].tolist() == [0.0, 250.0, 1000.0]


# --8<-- [start:test-flow-euler-parity]
def test_euler_sampler_matches_flow_match_euler_discrete_scheduler():
    net, n = TinyVelocityNet(), 8
    noise, _ = _pair(6, (2, 1, 8, 8))
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(n)
    x = noise.clone()
    with torch.no_grad():
        ours = list(flow_sample_progressive(net, noise, n, shift=3.0))
        for i, t in enumerate(scheduler.timesteps):
            x = scheduler.step(net(x, t.expand(2)), t, x).prev_sample
            assert (ours[i] - x).abs().max() <= 1e-5
    assert (ours[-1] - x).abs().max() <= 1e-4


# --8<-- [end:test-flow-euler-parity]


# --8<-- [start:test-flow-point-mass]
def test_exact_velocity_transports_a_point_mass_along_the_straight_line():
    # For data = x* (a point mass) the marginal velocity is v(x, t) = (x - x*) / t, and Euler follows
    # the straight line x_t = (1 - t) x* + t eps exactly, with any step sizes.
    x_star = torch.full((1, 1, 4, 4), 0.7)
    noise, _ = _pair(7, (1, 1, 4, 4))
    velocity = lambda x, timestep: (x - x_star) / (timestep.reshape(-1, 1, 1, 1) / 1000)  # noqa: E731
    sigmas, _ = flow_match_sigmas(5, shift=3.0)
    xs = list(flow_sample_progressive(velocity, noise, 5, shift=3.0))
    for x, t in zip(xs, sigmas[1:]):
        assert torch.allclose(x, (1 - t) * x_star + t * noise, atol=1e-5)
    assert torch.allclose(xs[-1], x_star, atol=1e-6)


# --8<-- [end:test-flow-point-mass]


def test_shift_keeps_the_endpoints_and_moves_times_toward_noise():
    t = torch.linspace(0, 1, 11)
    assert torch.equal(shift_sigmas(t, 1.0), t)
    shifted = shift_sigmas(t, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1
    assert (shifted[1:-1] > t[1:-1]).all() and (shifted[1:] > shifted[:-1]).all()


def test_custom_sigmas_override_the_schedule():
    net = TinyVelocityNet()
    noise, _ = _pair(8, (1, 1, 4, 4))
    sigmas, _ = flow_match_sigmas(6, shift=2.0)
    with torch.no_grad():
        assert torch.equal(
            flow_sample(net, noise, 6, shift=2.0),
            flow_sample(net, noise, 99, sigmas=sigmas),
        )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: flow_path(*_pair(0), torch.zeros(3), "lipman"), "convention"),
        (
            lambda: flow_path(
                torch.zeros(3, 1, 2, 2), torch.zeros(2, 1, 2, 2), torch.zeros(3)
            ),
            "same shape",
        ),
        (lambda: flow_path(*_pair(0), torch.tensor([0.0, 0.5, 1.5])), r"\[0, 1\]"),
        (lambda: flow_path(*_pair(0), torch.zeros(2)), "shape"),
        (lambda: flow_path(*_pair(0), torch.zeros(3), sigma_min=0.1), "sigma_min"),
        (lambda: velocity_target(*_pair(0), "paper", sigma_min=1.0), "sigma_min"),
        (lambda: shift_sigmas(torch.zeros(3), 0.0), "shift"),
        (lambda: flow_match_sigmas(0), "num_inference_steps"),
        (lambda: flow_match_sigmas(4, num_train_timesteps=0), "num_train_timesteps"),
        (
            lambda: flow_sample(
                TinyVelocityNet(),
                torch.zeros(1, 1, 2, 2),
                2,
                sigmas=torch.tensor([0.0, 1.0]),
            ),
            "decreasing",
        ),
        (
            lambda: flow_sample(
                TinyVelocityNet(),
                torch.zeros(1, 1, 2, 2),
                2,
                sigmas=torch.tensor([2.0, 0.0]),
            ),
            r"\[0, 1\]",
        ),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
