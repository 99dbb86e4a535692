"""Tests for SDEdit / img2img (snippets/sdedit.py): diffusers' img2img timestep arithmetic, the
img2img loop with diffusers' schedulers, and the errors for a bad `strength`.

`StableDiffusionImg2ImgPipeline` cannot be imported here (it needs `transformers`, and its weights
are on the Hub), so its `get_timesteps` method is read from diffusers' installed source with `ast`
and run on a stand-in `self` that holds only a scheduler: the arithmetic tested is diffusers' own
code, not a copy of it.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from snippets.sampling import ddim_sample, ddpm_sample
from snippets.schedules import NoiseSchedule
from snippets.sdedit import img2img_timesteps, sdedit

SHAPE = (2, 1, 4, 4)
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)


def stand_in_model(x, t):
    """A deterministic stand-in for a trained network: smooth in x, varying with t, batch-vectorised."""
    return 0.9 * x + 0.1 * torch.sin(x + t.float().reshape(-1, 1, 1, 1) / 100)


def guide_images(seed=0):
    return torch.rand(SHAPE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def diffusers_get_timesteps():
    """`StableDiffusionImg2ImgPipeline.get_timesteps`, compiled from diffusers' source file."""
    spec = importlib.util.find_spec("diffusers")
    path = (
        Path(spec.origin).parent
        / "pipelines"
        / "stable_diffusion"
        / "pipeline_stable_diffusion_img2img.py"
    )
    tree = ast.parse(path.read_text())
    (pipeline,) = [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and node.name == "StableDiffusionImg2ImgPipeline"
    ]
    (function,) = [
        node
        for node in pipeline.body
        if isinstance(node, ast.FunctionDef) and node.name == "get_timesteps"
    ]
    namespace = {}
    exec(compile(ast.Module([function], []), str(path), "exec"), namespace)
    return namespace["get_timesteps"]


STRENGTHS = [0.0, 0.05, 0.1, 0.29, 0.3, 0.33, 0.5, 0.57, 0.7, 0.75, 0.8, 0.99, 1.0]


# --8<-- [start:test-img2img-parity]
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_img2img_timesteps_match_diffusers_img2img_get_timesteps(spacing):
    get_timesteps = diffusers_get_timesteps()
    for num_inference_steps, strength in itertools.product(
        [1, 2, 3, 7, 10, 20, 25, 50, 100], STRENGTHS
    ):
        scheduler = DDIMScheduler(timestep_spacing=spacing)
        scheduler.set_timesteps(num_inference_steps)
        theirs, their_steps = get_timesteps(
            SimpleNamespace(scheduler=scheduler), num_inference_steps, strength, "cpu"
        )
        ours, start_step = img2img_timesteps(
            1000, num_inference_steps, strength, spacing
        )
        assert torch.equal(ours, theirs), (num_inference_steps, strength)
        assert len(ours) == their_steps == num_inference_steps - start_step
    # --8<-- [end:test-img2img-parity]


def test_img2img_timesteps_floor_in_floating_point():
    # 100 * 0.29 = 28.999999999999996 in floating point: 28 steps, as in diffusers
    assert len(img2img_timesteps(1000, 100, 0.29)[0]) == 28
    assert len(img2img_timesteps(1000, 10, 0.7)[0]) == 7
    timesteps, start_step = img2img_timesteps(1000, 10, 1.0)
    assert start_step == 0 and int(timesteps[0]) == 900  # leading: not T - 1


def diffusers_img2img_loop(scheduler, num_inference_steps, strength, noise, seed=None):
    """The pipeline's loop without the VAE and text encoder: add_noise at t_0, then step."""
    get_timesteps = diffusers_get_timesteps()
    scheduler.set_timesteps(num_inference_steps)
    timesteps, _ = get_timesteps(
        SimpleNamespace(scheduler=scheduler), num_inference_steps, strength, "cpu"
    )
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    x = scheduler.add_noise(guide_images(), noise, timesteps[:1].repeat(SHAPE[0]))
    for t in timesteps:
        model_output = stand_in_model(x, t.expand(SHAPE[0]))
        x = scheduler.step(model_output, t, x, generator=generator).prev_sample
    return x


@pytest.mark.parametrize("strength", [0.3, 0.75, 1.0])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_sdedit_ddim_matches_diffusers_img2img_loop(strength, prediction_type):
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    scheduler = DDIMScheduler(prediction_type=prediction_type)
    theirs = diffusers_img2img_loop(scheduler, 20, strength, noise)
    ours = sdedit(
        stand_in_model,
        guide_images(),
        NoiseSchedule.from_name("linear"),
        strength,
        20,
        sampler="ddim",
        prediction_type=prediction_type,
        noise=noise,
    )
    assert (ours - theirs).abs().max() <= 1e-4


@pytest.mark.parametrize("strength", [0.3, 0.75])
def test_sdedit_ddpm_matches_diffusers_img2img_loop(strength):
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    theirs = diffusers_img2img_loop(DDPMScheduler(), 20, strength, noise, seed=3)
    ours = sdedit(
        stand_in_model,
        guide_images(),
        NoiseSchedule.from_name("linear"),
        strength,
        20,
        sampler="ddpm",
        noise=noise,
        generator=torch.Generator().manual_seed(3),
    )
    assert (ours - theirs).abs().max() <= 1e-4


def test_sdedit_at_zero_strength_returns_the_image_and_higher_strength_moves_further():
    schedule = NoiseSchedule.from_name("linear")
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    x0 = guide_images()
    assert torch.equal(sdedit(stand_in_model, x0, schedule, 0.0, 10, noise=noise), x0)
    distances = [
        float((sdedit(stand_in_model, x0, schedule, s, 10, noise=noise) - x0).norm())
        for s in (0.2, 0.5, 1.0)
    ]
    assert 0 < distances[0] < distances[1] < distances[2]


@pytest.mark.parametrize("strength", [-0.1, 1.01, float("nan"), float("inf"), "0.5"])
def test_strength_outside_zero_one_is_an_error_naming_strength(strength):
    schedule = NoiseSchedule.from_name("linear")
    with pytest.raises(ValueError, match="strength must be"):
        sdedit(stand_in_model, guide_images(), schedule, strength, 10)
    with pytest.raises(ValueError, match="strength must be"):
        img2img_timesteps(1000, 10, strength)


def test_sdedit_rejects_a_sampler_it_cannot_start_midway():
    with pytest.raises(ValueError, match="sampler must be"):
        sdedit(
            stand_in_model,
            guide_images(),
            NoiseSchedule.from_name("linear"),
            0.5,
            10,
            sampler="euler",
        )


@pytest.mark.parametrize("sampler", [ddim_sample, ddpm_sample])
@pytest.mark.parametrize("start_step", [-1, 11, 2.5])
def test_samplers_reject_a_start_step_outside_the_steps(sampler, start_step):
    with pytest.raises(ValueError, match="start_step must be"):
        sampler(
            stand_in_model,
            guide_images(),
            NoiseSchedule.from_name("linear"),
            10,
            start_step=start_step,
        )
