"""Tests for snippets/schedules.py: parity with diffusers and the analytic properties of a schedule."""

from __future__ import annotations

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
)

from snippets.schedules import (
    SCHEDULE_NAMES,
    TIMESTEP_SPACINGS,
    NoiseSchedule,
    inference_timesteps,
    scaled_linear_betas,
    sigma_from_alpha_bar,
    snr,
)

DIFFUSERS_NAME = {
    "linear": "linear",
    "scaled_linear": "scaled_linear",
    "cosine": "squaredcos_cap_v2",
    "sigmoid": "sigmoid",
}
# DDPMScheduler defaults to betas 1e-4 -> 0.02 for every name; our scaled_linear is SD's
DIFFUSERS_BETAS = {"scaled_linear": dict(beta_start=0.00085, beta_end=0.012)}


@pytest.mark.parametrize("rescale", [False, True])
@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_schedule_matches_diffusers_ddpm_scheduler(name, rescale):
    ours = NoiseSchedule.from_name(name, rescale_zero_terminal_snr=rescale)
    theirs = DDPMScheduler(
        beta_schedule=DIFFUSERS_NAME[name],
        rescale_betas_zero_snr=rescale,
        **DIFFUSERS_BETAS.get(name, {}),
    )
    for ours_t, theirs_t in [
        (ours.betas, theirs.betas),
        (ours.alphas, theirs.alphas),
        (ours.alpha_bar, theirs.alphas_cumprod),
    ]:
        assert ours_t.dtype == torch.float32
        assert (ours_t - theirs_t).abs().max() <= 1e-7


def test_scaled_linear_name_and_function_are_stable_diffusions_schedule():
    # the scheduler config of Stable Diffusion v1/v2 (and of diffusers' LDM pipelines)
    sd = DDPMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )
    by_name = NoiseSchedule.from_name("scaled_linear")
    assert torch.equal(by_name.betas, scaled_linear_betas(1000))
    assert torch.equal(by_name.betas, sd.betas)
    assert (by_name.alpha_bar - sd.alphas_cumprod).abs().max() <= 1e-7
    # explicit betas still win, and a half-given range keeps the other default
    ddpm_range = NoiseSchedule.from_name(
        "scaled_linear", beta_start=1e-4, beta_end=0.02
    )
    assert torch.equal(
        ddpm_range.betas, DDPMScheduler(beta_schedule="scaled_linear").betas
    )
    half = NoiseSchedule.from_name("scaled_linear", beta_end=0.02)
    assert torch.equal(half.betas, scaled_linear_betas(1000, 0.00085, 0.02))
    # linear keeps DDPM's 1e-4 -> 0.02
    assert torch.equal(NoiseSchedule.from_name("linear").betas, DDPMScheduler().betas)


@pytest.mark.parametrize("name", ["linear", "scaled_linear", "sigmoid"])
def test_schedule_matches_diffusers_with_other_sizes_and_betas(name):
    ours = NoiseSchedule.from_name(
        name, num_train_timesteps=250, beta_start=0.00085, beta_end=0.012
    )
    theirs = DDPMScheduler(
        num_train_timesteps=250, beta_start=0.00085, beta_end=0.012, beta_schedule=name
    )
    assert ours.num_train_timesteps == 250
    assert (ours.alpha_bar - theirs.alphas_cumprod).abs().max() <= 1e-7


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_alpha_bar_strictly_decreasing_in_unit_interval(name):
    schedule = NoiseSchedule.from_name(name)
    a = schedule.alpha_bar
    assert a.shape == (1000,)
    assert bool((a > 0).all()) and bool((a <= 1).all())
    assert bool((a[1:] < a[:-1]).all())
    # \alpha = 1 - \beta and \bar\alpha is their running product
    assert torch.allclose(schedule.alphas, 1 - schedule.betas)
    assert torch.allclose(
        a, torch.cumprod(schedule.alphas.double(), 0).float(), rtol=1e-5
    )


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_zero_terminal_snr_rescaling_keeps_first_and_zeroes_last(name):
    plain = NoiseSchedule.from_name(name)
    rescaled = NoiseSchedule.from_name(name, rescale_zero_terminal_snr=True)
    assert rescaled.alpha_bar[-1] == 0
    assert snr(rescaled.alpha_bar)[-1] == 0
    assert torch.isclose(rescaled.alpha_bar[0], plain.alpha_bar[0], rtol=1e-6)
    assert bool((rescaled.alpha_bar[1:] < rescaled.alpha_bar[:-1]).all())
    assert snr(plain.alpha_bar)[-1] > 0


def test_snr_is_alpha_bar_over_one_minus_alpha_bar_and_decreasing():
    a = NoiseSchedule.from_name("cosine").alpha_bar
    s = snr(a)
    assert torch.allclose(s * (1 - a), a, rtol=1e-5)
    assert bool((s[1:] < s[:-1]).all())
    # log-SNR of the cosine schedule crosses 0 (SNR = 1) in the middle of the process
    crossing = int((s < 1).nonzero()[0])
    assert 400 < crossing < 600


def test_cosine_schedule_caps_beta():
    betas = NoiseSchedule.from_name("cosine").betas
    assert betas.max() == pytest.approx(0.999)
    assert betas[0] < 1e-4


def test_unknown_schedule_name_raises():
    with pytest.raises(ValueError, match="unknown noise schedule name 'quadratic'"):
        NoiseSchedule.from_name("quadratic")


@pytest.mark.parametrize("T", [0, 1, 2.5])
def test_bad_number_of_train_timesteps_raises(T):
    with pytest.raises(ValueError, match="num_train_timesteps"):
        NoiseSchedule.from_name("linear", num_train_timesteps=T)


@pytest.mark.parametrize(
    "betas",
    [torch.tensor([0.1, 0.0, 0.2]), torch.tensor([0.1, 1.5]), torch.ones(2, 2) * 0.1],
)
def test_from_betas_rejects_bad_betas(betas):
    with pytest.raises(ValueError, match="beta"):
        NoiseSchedule.from_betas(betas)


@pytest.mark.parametrize("spacing", TIMESTEP_SPACINGS)
@pytest.mark.parametrize(
    ("T", "N"),
    [(1000, 1), (1000, 7), (1000, 10), (1000, 50), (1000, 1000), (999, 10), (50, 49)],
)
def test_inference_timesteps_match_diffusers_set_timesteps(T, N, spacing):
    scheduler = DDPMScheduler(num_train_timesteps=T, timestep_spacing=spacing)
    scheduler.set_timesteps(N)
    ours = inference_timesteps(T, N, spacing)
    assert ours.dtype == torch.int64 and ours.shape == (N,)
    assert torch.equal(ours, scheduler.timesteps)
    assert bool((ours[1:] < ours[:-1]).all()) and ours.min() >= 0 and ours.max() < T


@pytest.mark.parametrize("spacing", TIMESTEP_SPACINGS)
def test_every_n_gives_n_distinct_timesteps_equal_to_diffusers_first_n(spacing):
    # all 1 <= N <= T at T = 1000 against DDIMScheduler.set_timesteps (about a second)
    T, overshoots = 1000, []
    scheduler = DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing)
    for N in range(1, T + 1):
        ours = inference_timesteps(T, N, spacing)
        assert ours.shape == (N,) and bool((ours[1:] < ours[:-1]).all())
        assert ours.min() >= 0 and ours.max() < T
        scheduler.set_timesteps(N)
        theirs = scheduler.timesteps
        assert torch.equal(ours, theirs[:N])
        if len(theirs) > N:  # diffusers' np.arange(T, 0, -T / N) took one step too many
            assert theirs[N:].tolist() == [-1]
            overshoots.append(N)
    # what we do instead is documented in inference_timesteps: stop at N
    if spacing == "trailing":
        assert len(overshoots) == 62 and 61 in overshoots
    else:
        assert overshoots == []


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning"
)  # numpy 2 copy= inside diffusers
def test_trailing_euler_timesteps_are_diffusers_first_n_for_every_n():
    T = 1000
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=T, timestep_spacing="trailing"
    )
    for N in range(1, T + 1):
        scheduler.set_timesteps(N)
        ours = inference_timesteps(T, N, "trailing").float()
        assert torch.equal(ours, scheduler.timesteps[:N].float())


@pytest.mark.parametrize(
    ("T", "spacings"),
    [(2, TIMESTEP_SPACINGS), (50, TIMESTEP_SPACINGS), (100, TIMESTEP_SPACINGS)]
    + [(999, TIMESTEP_SPACINGS), (4000, ("trailing",))],
)
def test_every_spacing_gives_n_distinct_timesteps_in_range_for_every_n(T, spacings):
    for spacing in spacings:
        for N in range(1, T + 1):
            ours = inference_timesteps(T, N, spacing)
            # N values, strictly decreasing (so distinct), inside [0, T)
            assert ours.shape == (N,) and bool((ours[1:] < ours[:-1]).all())
            assert 0 <= ours[-1] and ours[0] < T, (T, N, spacing)


def test_trailing_starts_at_pure_noise_and_leading_does_not():
    assert inference_timesteps(1000, 10, "trailing")[0] == 999
    assert inference_timesteps(1000, 10, "linspace")[0] == 999
    assert inference_timesteps(1000, 10, "leading")[0] == 900


@pytest.mark.parametrize("N", [0, 1001, 2.5])
def test_more_inference_steps_than_training_steps_raises(N):
    with pytest.raises(
        ValueError,
        match=r"num_inference_steps must be an integer in \[1, 1000\]",
    ):
        inference_timesteps(1000, N, "leading")


def test_unknown_spacing_raises():
    with pytest.raises(
        ValueError,
        match="spacing must be one of 'leading', 'trailing', 'linspace', got 'uniform'",
    ):
        inference_timesteps(1000, 10, "uniform")


@pytest.mark.parametrize("rescale", [False, True])
def test_sigma_from_alpha_bar_matches_diffusers_sigmas(rescale):
    schedule = NoiseSchedule.from_name(
        "scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        rescale_zero_terminal_snr=rescale,
    )
    euler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        rescale_betas_zero_snr=rescale,
    )
    dpm = DPMSolverMultistepScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        rescale_betas_zero_snr=rescale,
    )
    sigma = sigma_from_alpha_bar(schedule.alpha_bar)
    assert torch.isfinite(sigma).all()
    assert torch.equal(sigma.flip(0), euler.sigmas[:-1])
    assert torch.equal(sigma, dpm.sigmas)
    # x_t / sqrt(alpha_bar) = x_0 + sigma * eps: sigma^2 = 1 / SNR
    if not rescale:
        assert torch.allclose(
            sigma**2 * snr(schedule.alpha_bar), torch.ones(1000), rtol=1e-4
        )
