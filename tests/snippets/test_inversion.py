"""Tests for DDIM inversion (snippets/inversion.py): parity with diffusers' DDIMInverseScheduler,
the round trip on the shipped digits model, and the errors for what cannot be inverted.

The stand-in "network" is the fixed smooth function of tests/snippets/test_sampling.py, so that our
loop and diffusers' see the same model outputs.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from diffusers import DDIMInverseScheduler

from snippets.checkpoint import load_checkpoint
from snippets.data import load_digits
from snippets.guidance import cfg_model
from snippets.inversion import (
    ddim_invert,
    ddim_invert_progressive,
    ddim_round_trip,
)
from snippets.schedules import NoiseSchedule

SHAPE = (2, 1, 4, 4)
STEP_TOL, LOOP_TOL = 1e-5, 1e-4
CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "digits"
# diffusers' own set_timesteps trips a NumPy 2 deprecation; not ours to fix
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)


def stand_in_model(x, t):
    """A deterministic stand-in for a trained network: smooth in x, varying with t, batch-vectorised."""
    return 0.9 * x + 0.1 * torch.sin(x + t.float().reshape(-1, 1, 1, 1) / 100)


def clean_images(seed=0):
    return torch.rand(SHAPE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def diffusers_inverse_loop(scheduler, num_inference_steps, x0):
    """The loop of diffusers' inversion pipelines (e.g. DiffEdit's `invert`): model at x, label t."""
    scheduler.set_timesteps(num_inference_steps)
    x, samples = x0, []
    for t in scheduler.timesteps:
        model_output = stand_in_model(x, t.expand(x.shape[0]))
        x = scheduler.step(model_output, t, x).prev_sample
        samples.append(x)
    return scheduler.timesteps, samples


@pytest.mark.parametrize("clip_sample", [True, False])
@pytest.mark.parametrize(
    ("prediction_type", "spacing"),
    list(itertools.product(["epsilon", "v_prediction"], ["leading", "trailing"])),
)
@pytest.mark.parametrize(
    ("name", "diffusers_name"), [("linear", "linear"), ("cosine", "squaredcos_cap_v2")]
)
def test_ddim_invert_matches_diffusers_ddim_inverse_scheduler(
    name, diffusers_name, prediction_type, spacing, clip_sample
):
    config = dict(
        prediction_type=prediction_type,
        timestep_spacing=spacing,
        clip_sample=clip_sample,
    )
    scheduler = DDIMInverseScheduler(beta_schedule=diffusers_name, **config)
    their_timesteps, theirs = diffusers_inverse_loop(scheduler, 10, clean_images())
    steps = list(
        ddim_invert_progressive(
            stand_in_model,
            clean_images(),
            NoiseSchedule.from_name(name),
            10,
            **config,
        )
    )
    assert torch.equal(torch.stack([t for t, _, _ in steps]), their_timesteps)
    ours = [x for _, x, _ in steps]
    assert (ours[0] - theirs[0]).abs().max() <= STEP_TOL, "first step differs"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert torch.isfinite(a).all()
        assert (a - b).abs().max() <= LOOP_TOL, f"step {i} differs"


def test_ddim_invert_ends_where_ddim_sample_starts_and_walks_up():
    schedule = NoiseSchedule.from_name("linear")
    steps = list(ddim_invert_progressive(stand_in_model, clean_images(), schedule, 10))
    timesteps = [int(t) for t, _, _ in steps]
    assert (
        timesteps == sorted(timesteps) and timesteps[-1] == 900
    )  # leading: 0, ..., 900
    x_T = ddim_invert(stand_in_model, clean_images(), schedule, 10)
    assert x_T.shape == SHAPE and torch.equal(x_T, steps[-1][1])
    # deterministic: the same image always gives the same x_T
    assert torch.equal(x_T, ddim_invert(stand_in_model, clean_images(), schedule, 10))


@pytest.mark.parametrize("eta", [0.5, 1.0, -1.0, float("nan")])
def test_inversion_with_a_stochastic_sampler_is_an_error_naming_eta(eta):
    schedule = NoiseSchedule.from_name("linear")
    with pytest.raises(ValueError, match="eta must be 0"):
        ddim_invert(stand_in_model, clean_images(), schedule, 10, eta=eta)
    with pytest.raises(ValueError, match="eta must be 0"):
        ddim_round_trip(stand_in_model, clean_images(), schedule, 10, eta=eta)


def test_inversion_rejects_linspace_spacing_naming_the_argument():
    with pytest.raises(ValueError, match="timestep_spacing"):
        ddim_invert(
            stand_in_model,
            clean_images(),
            NoiseSchedule.from_name("linear"),
            10,
            timestep_spacing="linspace",
        )


@pytest.fixture(scope="module")
def shipped_round_trip_errors():
    """RMS reconstruction error of 4 held-out digits after inversion + DDIM, per number of steps."""
    checkpoint = load_checkpoint(CHECKPOINT)
    images, labels = load_digits("test")
    # at the network's size (the digits' native 8x8): exact for the data
    images, labels = checkpoint.to_model(images[:4]), labels[:4]
    model = cfg_model(checkpoint.model, labels, 1.0, checkpoint.num_classes)
    errors = {}
    for steps in (2, 5, 10):
        x_T, x0_rec = ddim_round_trip(
            model,
            images,
            checkpoint.schedule,
            steps,
            prediction_type=checkpoint.prediction_type,
        )
        assert x_T.shape == images.shape and torch.isfinite(x0_rec).all()
        errors[steps] = float((x0_rec - images).pow(2).mean().sqrt())
    return errors


def test_round_trip_error_on_the_shipped_model_shrinks_as_steps_grow(
    shipped_round_trip_errors,
):
    errors = shipped_round_trip_errors
    assert errors[2] > errors[5] > errors[10] > 0


def test_round_trip_error_on_the_shipped_model_is_within_its_measured_bound(
    shipped_round_trip_errors,
):
    # measured on these 4 digits at the network's 8x8: 0.21 (2 steps), 0.14 (5), 0.097 (10),
    # 0.062 (20), 0.054 (50); the editing_digits benchmark measures 24 digits at 16x16
    errors = shipped_round_trip_errors
    assert errors[10] < 0.12
