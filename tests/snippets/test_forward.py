"""Tests for snippets/forward.py: the forward process, its posterior and the prediction targets."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from snippets.forward import (
    PREDICTION_TYPES,
    broadcast_at,
    corrupt,
    predict_x0_and_eps,
    q_posterior_mean_variance,
    q_sample,
    training_target,
)
from snippets.schedules import SCHEDULE_NAMES, NoiseSchedule

DIFFUSERS_NAME = {
    "linear": "linear",
    "scaled_linear": "scaled_linear",
    "cosine": "squaredcos_cap_v2",
    "sigmoid": "sigmoid",
}
# DDPMScheduler defaults to betas 1e-4 -> 0.02 for every name; our scaled_linear is SD's
DIFFUSERS_BETAS = {"scaled_linear": dict(beta_start=0.00085, beta_end=0.012)}


def make_batch(shape=(4, 1, 4, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(shape, generator=g) * 2 - 1
    noise = torch.randn(shape, generator=g)
    t = torch.randint(0, 1000, (shape[0],), generator=g)
    return x0, noise, t


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_q_sample_matches_diffusers_add_noise(name):
    schedule = NoiseSchedule.from_name(name)
    scheduler = DDPMScheduler(
        beta_schedule=DIFFUSERS_NAME[name], **DIFFUSERS_BETAS.get(name, {})
    )
    x0, noise, t = make_batch()
    t[0], t[1] = 0, 999
    ours = q_sample(x0, t, schedule.alpha_bar, noise=noise)
    assert ours.shape == x0.shape
    assert (ours - scheduler.add_noise(x0, noise, t)).abs().max() <= 1e-6


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_v_target_matches_diffusers_get_velocity(name):
    schedule = NoiseSchedule.from_name(name)
    scheduler = DDPMScheduler(
        beta_schedule=DIFFUSERS_NAME[name], **DIFFUSERS_BETAS.get(name, {})
    )
    x0, noise, t = make_batch(seed=1)
    ours = training_target(x0, noise, t, schedule.alpha_bar, "v_prediction")
    assert (ours - scheduler.get_velocity(x0, noise, t)).abs().max() <= 1e-6


def test_epsilon_and_sample_targets_are_the_noise_and_the_image():
    schedule = NoiseSchedule.from_name("linear")
    x0, noise, t = make_batch()
    assert torch.equal(
        training_target(x0, noise, t, schedule.alpha_bar, "epsilon"), noise
    )
    assert torch.equal(training_target(x0, noise, t, schedule.alpha_bar, "sample"), x0)


def test_q_sample_keeps_the_image_at_t0_and_gives_noise_at_the_last_step():
    schedule = NoiseSchedule.from_name("linear")
    x0, noise, _ = make_batch(shape=(8, 1, 8, 8))
    first = q_sample(
        x0, torch.zeros(8, dtype=torch.long), schedule.alpha_bar, noise=noise
    )
    last = q_sample(x0, torch.full((8,), 999), schedule.alpha_bar, noise=noise)
    assert (first - x0).abs().max() < 0.05  # sqrt(1 - alpha_bar_0) = 0.01
    assert (last - noise).abs().max() < 0.02  # sqrt(alpha_bar_999) = 0.006
    assert (last - x0).abs().mean() > 0.5


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
@pytest.mark.parametrize("t", [0, 250, 500, 999])
def test_q_sample_preserves_unit_variance(name, t):
    schedule = NoiseSchedule.from_name(name)
    g = torch.Generator().manual_seed(t)
    x0 = torch.randn(64, 1, 32, 32, generator=g)  # unit-variance data
    x_t = q_sample(x0, torch.full((64,), t), schedule.alpha_bar, generator=g)
    assert x_t.var().item() == pytest.approx(1.0, abs=0.03)
    assert x_t.mean().item() == pytest.approx(0.0, abs=0.03)


def test_q_sample_generator_makes_it_reproducible():
    schedule = NoiseSchedule.from_name("linear")
    x0, _, t = make_batch()
    a = q_sample(x0, t, schedule.alpha_bar, generator=torch.Generator().manual_seed(3))
    b = q_sample(x0, t, schedule.alpha_bar, generator=torch.Generator().manual_seed(3))
    c = q_sample(x0, t, schedule.alpha_bar, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_q_sample_accepts_a_single_timestep_for_the_batch():
    schedule = NoiseSchedule.from_name("linear")
    x0, noise, _ = make_batch()
    one = q_sample(x0, torch.tensor(300), schedule.alpha_bar, noise=noise)
    many = q_sample(x0, torch.full((4,), 300), schedule.alpha_bar, noise=noise)
    assert torch.equal(one, many)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_predict_x0_and_eps_inverts_the_training_target(prediction_type):
    schedule = NoiseSchedule.from_name("cosine")
    x0, noise, _ = make_batch(seed=2)
    t = torch.tensor([10, 200, 600, 900])
    x_t = q_sample(x0, t, schedule.alpha_bar, noise=noise)
    target = training_target(x0, noise, t, schedule.alpha_bar, prediction_type)
    x0_hat, eps_hat = predict_x0_and_eps(
        target, x_t, t, schedule.alpha_bar, prediction_type
    )
    assert (x0_hat - x0).abs().max() < 1e-3
    assert (eps_hat - noise).abs().max() < 1e-3


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_predict_x0_matches_diffusers_ddpm_pred_original_sample(prediction_type):
    schedule = NoiseSchedule.from_name("linear")
    scheduler = DDPMScheduler(prediction_type=prediction_type, clip_sample=False)
    x0, noise, _ = make_batch(shape=(1, 1, 4, 4))
    x_t = q_sample(x0, torch.tensor([400]), schedule.alpha_bar, noise=noise)
    model_output = 0.5 * noise + 0.1
    theirs = scheduler.step(
        model_output, 400, x_t, generator=torch.Generator().manual_seed(0)
    ).pred_original_sample
    ours, _ = predict_x0_and_eps(
        model_output, x_t, torch.tensor([400]), schedule.alpha_bar, prediction_type
    )
    assert (ours - theirs).abs().max() <= 1e-5


def test_posterior_variance_lies_between_the_two_ddpm_bounds():
    schedule = NoiseSchedule.from_name("linear")
    x = torch.zeros(1, 1, 1, 1)
    t = torch.arange(1000)
    _, var = q_posterior_mean_variance(
        x.expand(1000, 1, 1, 1), x.expand(1000, 1, 1, 1), t, schedule.alpha_bar
    )
    var = var.flatten()
    # \tilde\beta_0 = 0 (nothing left to add), and 0 < \tilde\beta_t <= \beta_t afterwards (Ho et al. 2020, Sec. 3.2)
    assert var[0] == 0
    # (float32: beta_t recomputed from alpha_bar differs from the stored one by ~1e-3 relative at small t)
    assert bool((var[1:] > 0).all()) and bool(
        (var[1:] <= schedule.betas[1:] * (1 + 1e-3)).all()
    )
    # for large t the two bounds nearly coincide; for small t they differ a lot
    assert var[-1] / schedule.betas[-1] > 0.99 and var[1] / schedule.betas[1] < 0.6


@pytest.mark.parametrize("t", [1, 17, 500, 999])
def test_posterior_mean_and_variance_match_bayes_rule(t):
    # An independent derivation, all in float64: combine q(x_{t-1}|x_0) = N(sqrt(a_prev) x_0, 1 - a_prev)
    # with q(x_t|x_{t-1}) = N(sqrt(1 - beta) x_{t-1}, beta) by Bayes' rule (precisions add).
    alpha_bar = NoiseSchedule.from_name("cosine").alpha_bar.double()
    x0, noise, _ = make_batch(shape=(1, 1, 4, 4), seed=t)
    x0, noise = x0.double(), noise.double()
    x_t = q_sample(x0, torch.tensor([t]), alpha_bar, noise=noise)
    a_bar_prev = alpha_bar[t - 1]
    beta = 1 - alpha_bar[t] / a_bar_prev
    expected_var = 1 / (1 / (1 - a_bar_prev) + (1 - beta) / beta)
    expected_mean = expected_var * (
        a_bar_prev.sqrt() * x0 / (1 - a_bar_prev) + (1 - beta).sqrt() * x_t / beta
    )
    mean, var = q_posterior_mean_variance(x0, x_t, torch.tensor([t]), alpha_bar)
    assert var.item() == pytest.approx(expected_var.item(), rel=1e-9)
    assert (mean - expected_mean).abs().max() < 1e-9


def test_posterior_with_t_prev_jumps_over_skipped_steps():
    schedule = NoiseSchedule.from_name("linear")
    x0, noise, _ = make_batch(shape=(1, 1, 4, 4))
    x_t = q_sample(x0, torch.tensor([600]), schedule.alpha_bar, noise=noise)
    # a jump 600 -> 400 is the posterior of the two-step chain with alpha = alpha_bar_600 / alpha_bar_400
    mean, var = q_posterior_mean_variance(
        x0, x_t, torch.tensor([600]), schedule.alpha_bar, t_prev=torch.tensor([400])
    )
    a_t, a_prev = schedule.alpha_bar[600], schedule.alpha_bar[400]
    beta = 1 - a_t / a_prev
    assert var.item() == pytest.approx(
        ((1 - a_prev) / (1 - a_t) * beta).item(), rel=1e-5
    )
    # with t_prev = -1 the posterior is the clean image itself
    mean0, var0 = q_posterior_mean_variance(
        x0, x_t, torch.tensor([600]), schedule.alpha_bar, t_prev=torch.tensor([-1])
    )
    assert torch.allclose(mean0, x0, atol=1e-5) and var0.item() == 0


def test_corrupt_is_the_course_linear_mix_with_uniform_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 8, 8, generator=g)
    noise = torch.rand(3, 1, 8, 8, generator=g)
    amount = torch.tensor([0.0, 0.3, 1.0])
    out = corrupt(x, amount, noise=noise)
    assert out.shape == x.shape
    assert torch.equal(out[0], x[0]) and torch.equal(out[2], noise[2])
    assert torch.allclose(out[1], 0.7 * x[1] + 0.3 * noise[1])
    drawn = corrupt(x, torch.ones(3), generator=torch.Generator().manual_seed(1))
    assert (
        drawn.min() >= 0 and drawn.max() < 1 and drawn.std() > 0.2
    )  # uniform noise in [0, 1)


def test_corrupt_rejects_bad_amount():
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"amount must have shape \(2,\)"):
        corrupt(x, torch.rand(3))
    with pytest.raises(ValueError, match=r"amount must lie in \[0, 1\]"):
        corrupt(x, torch.tensor([0.5, 1.5]))


@pytest.mark.parametrize("t", [torch.tensor([-1, 3]), torch.tensor([0, 1000])])
def test_timestep_outside_range_raises(t):
    schedule = NoiseSchedule.from_name("linear")
    x0 = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"timesteps t must lie in \[0, 1000\)"):
        q_sample(x0, t, schedule.alpha_bar)
    with pytest.raises(ValueError, match=r"timesteps t must lie in \[0, 1000\)"):
        predict_x0_and_eps(x0, x0, t, schedule.alpha_bar, "epsilon")


def test_float_timesteps_raise():
    schedule = NoiseSchedule.from_name("linear")
    with pytest.raises(ValueError, match="timesteps t must be integers"):
        q_sample(torch.zeros(2, 1, 4, 4), torch.tensor([1.0, 2.0]), schedule.alpha_bar)


@pytest.mark.parametrize("t", [torch.tensor([1, 2, 3]), torch.tensor([[1, 2]])])
def test_timesteps_that_do_not_broadcast_raise(t):
    schedule = NoiseSchedule.from_name("linear")
    x0 = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="do not broadcast against x of shape"):
        q_sample(x0, t, schedule.alpha_bar)
    with pytest.raises(ValueError, match="do not broadcast"):
        training_target(x0, x0, t, schedule.alpha_bar, "v_prediction")


def test_mismatched_noise_or_model_output_shapes_raise():
    schedule = NoiseSchedule.from_name("linear")
    x0 = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="noise has shape"):
        q_sample(
            x0, torch.tensor([1, 2]), schedule.alpha_bar, noise=torch.zeros(2, 1, 4, 1)
        )
    with pytest.raises(ValueError, match="model_output has shape"):
        predict_x0_and_eps(
            torch.zeros(2, 2, 4, 4),
            x0,
            torch.tensor([1, 2]),
            schedule.alpha_bar,
            "epsilon",
        )


def test_unknown_prediction_type_raises():
    schedule = NoiseSchedule.from_name("linear")
    x0, noise, t = make_batch()
    with pytest.raises(ValueError, match="unknown prediction_type 'x0'"):
        training_target(x0, noise, t, schedule.alpha_bar, "x0")
    with pytest.raises(ValueError, match="unknown prediction_type 'x0'"):
        predict_x0_and_eps(x0, x0, t, schedule.alpha_bar, "x0")


def test_broadcast_at_shapes():
    values = torch.arange(10, dtype=torch.float64)
    x = torch.zeros(3, 2, 5, 5)
    out = broadcast_at(values, torch.tensor([1, 2, 3]), x)
    assert out.shape == (3, 1, 1, 1) and out.dtype == torch.float32
    assert out.flatten().tolist() == [1.0, 2.0, 3.0]
    assert broadcast_at(values, 4, x).shape == (1, 1, 1, 1)


def test_gaussian_noise_is_drawn_on_the_generators_device_and_moved_to_x():
    from snippets.forward import gaussian_noise

    x = torch.zeros(4, 1, 8, 8, dtype=torch.float64)
    a = gaussian_noise(x, torch.Generator().manual_seed(3))
    b = torch.randn(
        x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    assert a.dtype == torch.float64 and torch.equal(a, b)
    # a CPU generator with a tensor on another device (meta stands in for a GPU) must not fail
    on_meta = gaussian_noise(x.to("meta"), torch.Generator().manual_seed(3))
    assert on_meta.device.type == "meta" and on_meta.shape == x.shape
