"""Tests for the samplers (snippets/sampling.py, karras.py, dpm_solver.py): step-by-step parity with diffusers.

The stand-in "network" is a fixed, smooth, vectorised function of (x, t), so that every sampler
sees the same model outputs as the diffusers scheduler it is compared with. Tolerances: max abs
difference <= 1e-5 after the first step and <= 1e-4 at every later step.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
)

from snippets.dpm_solver import dpm_solver_pp_2m_sample_progressive
from snippets.karras import (
    euler_sample_progressive,
    heun_sample_progressive,
    karras_timesteps,
)
from snippets.sampling import (
    SAMPLERS,
    ddim_sample_progressive,
    ddpm_sample_progressive,
    naive_sample,
    naive_sample_progressive,
)
from snippets.schedules import NoiseSchedule

PREDICTION_TYPES = ["epsilon", "v_prediction", "sample"]
SPACINGS = ["leading", "trailing", "linspace"]
STEP_TOL, LOOP_TOL = 1e-5, 1e-4
SHAPE = (2, 1, 4, 4)
# diffusers' own set_timesteps trips a NumPy 2 deprecation; not ours to fix
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)


def stand_in_model(x, t):
    """A deterministic stand-in for a trained network: smooth in x, varying with t, batch-vectorised."""
    return 0.9 * x + 0.1 * torch.sin(x + t.float().reshape(-1, 1, 1, 1) / 100)


def x_T(seed=0):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


def diffusers_loop(scheduler, num_inference_steps, seed=None, **step_kwargs):
    """The usual diffusers sampling loop; returns the sample after every `step` call."""
    scheduler.set_timesteps(num_inference_steps)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if generator is not None:
        step_kwargs["generator"] = generator
    x = x_T() * scheduler.init_noise_sigma
    samples = []
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t)
        model_output = stand_in_model(model_input, t.expand(x.shape[0]))
        x = scheduler.step(model_output, t, x, **step_kwargs).prev_sample
        samples.append(x)
    return samples


def our_loop(progressive, num_inference_steps, schedule=None, seed=None, **options):
    schedule = schedule or NoiseSchedule.from_name("linear")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    steps = progressive(
        stand_in_model,
        x_T(),
        schedule,
        num_inference_steps,
        generator=generator,
        **options,
    )
    return [x for _, x, _ in steps]


def assert_same_trajectory(ours, theirs):
    assert len(ours) == len(theirs)
    assert (ours[0] - theirs[0]).abs().max() <= STEP_TOL, "first step differs"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert torch.isfinite(a).all()
        assert (a - b).abs().max() <= LOOP_TOL, f"step {i} differs"


@pytest.mark.parametrize("clip_sample", [True, False])
@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize(
    ("prediction_type", "spacing"), list(itertools.product(PREDICTION_TYPES, SPACINGS))
)
def test_ddpm_matches_diffusers_ddpm_scheduler(
    prediction_type, spacing, variance_type, clip_sample
):
    config = dict(
        prediction_type=prediction_type,
        timestep_spacing=spacing,
        variance_type=variance_type,
        clip_sample=clip_sample,
    )
    theirs = diffusers_loop(DDPMScheduler(**config), 10, seed=1)
    ours = our_loop(ddpm_sample_progressive, 10, seed=1, **config)
    assert_same_trajectory(ours, theirs)


def test_ddpm_full_1000_step_loop_matches_diffusers():
    theirs = diffusers_loop(DDPMScheduler(clip_sample=False), 1000, seed=2)
    ours = our_loop(ddpm_sample_progressive, 1000, seed=2, clip_sample=False)
    assert_same_trajectory(ours, theirs)


@pytest.mark.parametrize("clip_sample", [True, False])
@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize(
    ("prediction_type", "spacing"), list(itertools.product(PREDICTION_TYPES, SPACINGS))
)
def test_ddim_matches_diffusers_ddim_scheduler(
    prediction_type, spacing, eta, clip_sample
):
    config = dict(
        prediction_type=prediction_type,
        timestep_spacing=spacing,
        clip_sample=clip_sample,
    )
    theirs = diffusers_loop(DDIMScheduler(**config), 10, seed=1, eta=eta)
    ours = our_loop(ddim_sample_progressive, 10, seed=1, eta=eta, **config)
    assert_same_trajectory(ours, theirs)


@pytest.mark.parametrize(
    ("prediction_type", "spacing"), list(itertools.product(PREDICTION_TYPES, SPACINGS))
)
def test_ddim_without_alpha_one_matches_diffusers_set_alpha_to_one_false(
    prediction_type, spacing
):
    config = dict(
        prediction_type=prediction_type, timestep_spacing=spacing, clip_sample=False
    )
    scheduler = DDIMScheduler(set_alpha_to_one=False, **config)
    theirs = diffusers_loop(scheduler, 10)
    ours = our_loop(ddim_sample_progressive, 10, set_alpha_to_one=False, **config)
    assert_same_trajectory(ours, theirs)
    # only the last step differs from ending at alpha_bar = 1
    default = our_loop(ddim_sample_progressive, 10, **config)
    for a, b in zip(ours[:-1], default[:-1]):
        assert torch.equal(a, b)
    assert (ours[-1] - default[-1]).abs().max() > 1e-4


@pytest.mark.parametrize(
    ("name", "diffusers_name"),
    [("scaled_linear", "scaled_linear"), ("cosine", "squaredcos_cap_v2")],
)
def test_ddim_matches_diffusers_on_other_schedules(name, diffusers_name):
    schedule = NoiseSchedule.from_name(name, beta_start=0.00085, beta_end=0.012)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule=diffusers_name,
        clip_sample=False,
    )
    theirs = diffusers_loop(scheduler, 20)
    ours = our_loop(ddim_sample_progressive, 20, schedule=schedule, clip_sample=False)
    assert_same_trajectory(ours, theirs)


def test_ddim_eta0_is_deterministic_and_eta1_uses_the_generator():
    a = our_loop(ddim_sample_progressive, 10, seed=1, eta=0.0)[-1]
    b = our_loop(ddim_sample_progressive, 10, seed=2, eta=0.0)[-1]
    c = our_loop(ddim_sample_progressive, 10, seed=1, eta=1.0)[-1]
    d = our_loop(ddim_sample_progressive, 10, seed=2, eta=1.0)[-1]
    assert torch.equal(a, b) and not torch.allclose(c, d)


@pytest.mark.parametrize(
    ("prediction_type", "spacing"), list(itertools.product(PREDICTION_TYPES, SPACINGS))
)
def test_euler_matches_diffusers_euler_discrete_with_karras_sigmas(
    prediction_type, spacing
):
    config = dict(prediction_type=prediction_type, timestep_spacing=spacing)
    theirs = diffusers_loop(
        EulerDiscreteScheduler(use_karras_sigmas=True, **config), 10
    )
    ours = our_loop(euler_sample_progressive, 10, **config)
    assert_same_trajectory(ours, theirs)


@pytest.mark.parametrize(
    ("prediction_type", "spacing"), list(itertools.product(PREDICTION_TYPES, SPACINGS))
)
def test_euler_with_churn_matches_diffusers(prediction_type, spacing):
    config = dict(prediction_type=prediction_type, timestep_spacing=spacing)
    churn = dict(s_churn=2.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003)
    theirs = diffusers_loop(
        EulerDiscreteScheduler(use_karras_sigmas=True, **config), 10, seed=3, **churn
    )
    ours = our_loop(euler_sample_progressive, 10, seed=3, **churn, **config)
    assert_same_trajectory(ours, theirs)
    # the churn really changed the trajectory
    assert not torch.allclose(
        ours[-1], our_loop(euler_sample_progressive, 10, **config)[-1]
    )


def test_euler_matches_diffusers_on_a_zero_terminal_snr_schedule():
    schedule = NoiseSchedule.from_name("linear", rescale_zero_terminal_snr=True)
    scheduler = EulerDiscreteScheduler(
        use_karras_sigmas=True,
        rescale_betas_zero_snr=True,
        prediction_type="v_prediction",
        timestep_spacing="trailing",
    )
    theirs = diffusers_loop(scheduler, 10)
    ours = our_loop(
        euler_sample_progressive,
        10,
        schedule=schedule,
        prediction_type="v_prediction",
        timestep_spacing="trailing",
    )
    assert_same_trajectory(ours, theirs)


@pytest.mark.parametrize("clip_sample", [False, True])
@pytest.mark.parametrize(
    ("prediction_type", "spacing"), list(itertools.product(PREDICTION_TYPES, SPACINGS))
)
def test_heun_matches_diffusers_heun_discrete_with_karras_sigmas(
    prediction_type, spacing, clip_sample
):
    config = dict(
        prediction_type=prediction_type,
        timestep_spacing=spacing,
        clip_sample=clip_sample,
    )
    scheduler = HeunDiscreteScheduler(
        beta_start=1e-4, beta_end=0.02, use_karras_sigmas=True, **config
    )
    theirs = diffusers_loop(scheduler, 10)
    # diffusers calls step() twice per Heun step (2N - 1 calls in all); ours yields once per step
    theirs = theirs[1::2] + theirs[-1:]
    ours = our_loop(heun_sample_progressive, 10, **config)
    assert_same_trajectory(ours, theirs)


@pytest.mark.parametrize(
    ("prediction_type", "spacing"), list(itertools.product(PREDICTION_TYPES, SPACINGS))
)
def test_dpm_solver_pp_2m_matches_diffusers_multistep(prediction_type, spacing):
    config = dict(prediction_type=prediction_type, timestep_spacing=spacing)
    scheduler = DPMSolverMultistepScheduler(
        algorithm_type="dpmsolver++", solver_order=2, **config
    )
    theirs = diffusers_loop(scheduler, 10)
    ours = our_loop(dpm_solver_pp_2m_sample_progressive, 10, **config)
    assert_same_trajectory(ours, theirs)


def test_dpm_solver_pp_2m_matches_diffusers_on_cosine_schedule_with_many_steps():
    schedule = NoiseSchedule.from_name("cosine")
    scheduler = DPMSolverMultistepScheduler(
        beta_schedule="squaredcos_cap_v2", algorithm_type="dpmsolver++", solver_order=2
    )
    assert_same_trajectory(
        our_loop(dpm_solver_pp_2m_sample_progressive, 25, schedule=schedule),
        diffusers_loop(scheduler, 25),
    )


def test_karras_sigmas_follow_eq5_and_end_at_zero():
    schedule = NoiseSchedule.from_name("linear")
    sigmas, timesteps = karras_timesteps(schedule.alpha_bar, 10, "linspace")
    assert sigmas.shape == (11,) and timesteps.shape == (10,) and sigmas[-1] == 0
    assert bool((sigmas[1:] < sigmas[:-1]).all()) and bool(
        (timesteps[1:] < timesteps[:-1]).all()
    )
    # Eq. 5: sigma^(1/rho) is evenly spaced
    inv = sigmas[:-1].double() ** (1 / 7)
    assert torch.allclose(inv.diff(), inv.diff()[0].expand(9), rtol=1e-4)
    assert timesteps[0].item() == pytest.approx(999, abs=1e-3) and timesteps[
        -1
    ].item() == pytest.approx(0, abs=1e-3)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_share_one_signature_and_plain_equals_last_progressive_step(name):
    sampler = SAMPLERS[name]
    schedule = NoiseSchedule.from_name("linear")
    out = sampler(
        stand_in_model,
        x_T(),
        schedule,
        4,
        prediction_type="v_prediction",
        generator=torch.Generator().manual_seed(5),
    )
    assert (
        out.shape == SHAPE and out.dtype == torch.float32 and torch.isfinite(out).all()
    )
    progressive = {
        "ddpm": ddpm_sample_progressive,
        "ddim": ddim_sample_progressive,
        "euler": euler_sample_progressive,
        "heun": heun_sample_progressive,
        "dpmsolver++": dpm_solver_pp_2m_sample_progressive,
    }[name]
    steps = list(
        progressive(
            stand_in_model,
            x_T(),
            schedule,
            4,
            prediction_type="v_prediction",
            generator=torch.Generator().manual_seed(5),
        )
    )
    assert len(steps) == 4
    t, last, x0_hat = steps[-1]
    assert torch.equal(out, last) and x0_hat.shape == SHAPE


@pytest.mark.parametrize("name", ["ddpm", "ddim", "heun"])
def test_clip_sample_bounds_the_predicted_x0(name):
    progressive = {
        "ddpm": ddpm_sample_progressive,
        "ddim": ddim_sample_progressive,
        "heun": heun_sample_progressive,
    }[name]
    schedule = NoiseSchedule.from_name("linear")
    steps = list(
        progressive(
            stand_in_model,
            x_T() * 3,
            schedule,
            5,
            clip_sample=True,
            clip_sample_range=0.5,
        )
    )
    assert all(x0_hat.abs().max() <= 0.5 for _, _, x0_hat in steps)
    unclipped = list(
        progressive(stand_in_model, x_T() * 3, schedule, 5, clip_sample=False)
    )
    assert any(x0_hat.abs().max() > 0.5 for _, _, x0_hat in unclipped)


def test_naive_sampler_lands_on_the_model_prediction():
    target = torch.full(SHAPE, 0.25)
    x = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0))
    steps = list(naive_sample_progressive(lambda x: target, x, 5))
    assert len(steps) == 5
    # each step moves 1/(n - i) of the way: distances shrink as 4/5, 3/4, ... of the previous one
    distances = [(x_i - target).abs().max().item() for _, x_i, _ in steps]
    start = (x - target).abs().max().item()
    assert distances[0] == pytest.approx(start * 4 / 5, rel=1e-5)
    assert distances[1] == pytest.approx(start * 3 / 5, rel=1e-5)
    assert torch.allclose(naive_sample(lambda x: target, x, 5), target)
    assert torch.allclose(
        naive_sample(lambda x: x, x, 3), x
    )  # a model that changes nothing leaves x alone


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_more_inference_steps_than_training_steps_raises(name):
    with pytest.raises(ValueError, match="num_inference_steps"):
        SAMPLERS[name](stand_in_model, x_T(), NoiseSchedule.from_name("linear"), 1001)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_unknown_prediction_type_and_spacing_raise(name):
    schedule = NoiseSchedule.from_name("linear")
    with pytest.raises(ValueError, match="unknown prediction_type 'noise'"):
        SAMPLERS[name](stand_in_model, x_T(), schedule, 4, prediction_type="noise")
    with pytest.raises(
        ValueError,
        match="timestep_spacing must be one of 'leading', 'trailing', 'linspace', got 'uniform'",
    ):
        SAMPLERS[name](stand_in_model, x_T(), schedule, 4, timestep_spacing="uniform")
    with pytest.raises(TypeError):
        SAMPLERS[name](stand_in_model, x_T(), schedule, 4, not_an_option=1)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_model_output_of_the_wrong_shape_raises(name):
    def learned_variance_model(x, t):
        return torch.cat(
            [x, x], dim=1
        )  # 2C channels, as a model with learned variance returns

    with pytest.raises(ValueError, match="model_output has shape"):
        SAMPLERS[name](
            learned_variance_model, x_T(), NoiseSchedule.from_name("linear"), 4
        )


def test_bad_sampler_options_raise():
    schedule = NoiseSchedule.from_name("linear")
    with pytest.raises(ValueError, match="unknown variance_type 'learned'"):
        SAMPLERS["ddpm"](stand_in_model, x_T(), schedule, 4, variance_type="learned")
    with pytest.raises(ValueError, match=r"eta must be a finite number in \[0, 1\]"):
        SAMPLERS["ddim"](stand_in_model, x_T(), schedule, 4, eta=-1.0)
    with pytest.raises(ValueError, match="s_churn must be a finite number >= 0"):
        SAMPLERS["euler"](stand_in_model, x_T(), schedule, 4, s_churn=-1.0)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        naive_sample(lambda x: x, x_T(), 0)
    with pytest.raises(ValueError, match="needs num_inference_steps < 1000"):
        SAMPLERS["dpmsolver++"](stand_in_model, x_T(), schedule, 1000)


@pytest.mark.parametrize("name", SAMPLERS)
def test_trailing_spacing_takes_exactly_n_steps_where_diffusers_overshoots(name):
    # N = 61 at T = 1000 is one of the N where np.arange(T, 0, -T / N) gives N + 1 values
    calls = []

    def counting_model(x, t):
        calls.append(float(t[0]))
        return torch.zeros_like(x)

    x = SAMPLERS[name](
        counting_model,
        torch.randn(1, 1, 2, 2, generator=torch.Generator().manual_seed(0)),
        NoiseSchedule.from_name("linear"),
        61,
        timestep_spacing="trailing",
        generator=torch.Generator().manual_seed(1),
    )
    assert len(calls) == (2 * 61 - 1 if name == "heun" else 61)
    assert min(calls) >= 0 and bool(x.isfinite().all())
