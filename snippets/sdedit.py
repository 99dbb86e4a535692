r"""SDEdit / img2img: edit an image by noising it part of the way and denoising it back.

SDEdit (Meng et al. 2022, "SDEdit: Guided Image Synthesis and Editing with Stochastic Differential
Equations", Section 3) starts the reverse process not from pure noise but from a guide image $x^{g}$
(a sketch, a stroke painting, a digit to change) noised to an intermediate time $t_0$:

$$x_{t_0} = \sqrt{\bar\alpha_{t_0}}\,x^{g} + \sqrt{1 - \bar\alpha_{t_0}}\,\epsilon,$$

then runs an ordinary sampler from $t_0$ down to 0. Small $t_0$ keeps the guide (faithful); large
$t_0$ forgets it (realistic). diffusers' `StableDiffusionImg2ImgPipeline` calls the fraction
$t_0 / T$ `strength`; `img2img_timesteps` does its arithmetic, and `sdedit` the whole edit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from snippets import check
from snippets.forward import check_prediction_type, q_sample
from snippets.sampling import ddim_sample, ddpm_sample
from snippets.schedules import TIMESTEP_SPACINGS, NoiseSchedule, inference_timesteps

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["SDEDIT_SAMPLERS", "check_strength", "img2img_timesteps", "sdedit"]

SDEDIT_SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddim": ddim_sample,
    "ddpm": ddpm_sample,
}


def check_strength(strength: float) -> None:
    """Raise a `ValueError` naming `strength` unless it is a number in `[0, 1]` (not NaN)."""
    if (
        isinstance(strength, bool)
        or not isinstance(strength, (int, float))
        or math.isnan(strength)
        or not 0 <= strength <= 1
    ):
        raise ValueError(
            f"strength must be a number in [0, 1] (0 keeps the image, 1 starts from the noisiest step), got {strength!r}"
        )


def img2img_timesteps(
    num_train_timesteps: int,
    num_inference_steps: int,
    strength: float,
    timestep_spacing: str = "leading",
) -> tuple[torch.Tensor, int]:
    r"""Which of the sampler's $N$ timesteps an img2img edit of a given `strength` runs.

    The arithmetic of diffusers' `StableDiffusionImg2ImgPipeline.get_timesteps`: of the $N$
    timesteps, keep the last $\lfloor N \cdot \mathrm{strength} \rfloor$ (computed in floating
    point, so $\lfloor 10 \cdot 0.7 \rfloor = 7$ but $\lfloor 100 \cdot 0.29 \rfloor = 28$). The
    first kept one is $t_0$, where the image is noised to. `strength` 1 runs every step, yet
    with `"leading"` spacing starts at $t = (N-1)\lfloor T/N \rfloor$, not at $T - 1$: a trace of
    the image survives.

    Args:
        num_train_timesteps: $T$.
        num_inference_steps: $N$ in `[1, T]`.
        strength: In `[0, 1]`: the fraction of the $N$ steps that are run.
        timestep_spacing: `"leading"`, `"trailing"` or `"linspace"` (see `inference_timesteps`).

    Returns:
        `(timesteps, start_step)`: the timesteps to run, descending (empty when
        $\lfloor N \cdot \mathrm{strength} \rfloor = 0$), and how many of the $N$ are skipped.

    Raises:
        ValueError: If `strength` is outside `[0, 1]` or NaN, or `timestep_spacing` is unknown.
    """
    check_strength(strength)
    check.one_of("timestep_spacing", timestep_spacing, TIMESTEP_SPACINGS)
    timesteps = inference_timesteps(
        num_train_timesteps, num_inference_steps, timestep_spacing
    )
    # --8<-- [start:img2img-timesteps]
    # 1. how many of the N steps to run: floor(N * strength), at most N
    init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    # 2. skip the first N - init_timestep of them (the noisiest)
    start_step = max(num_inference_steps - init_timestep, 0)
    return timesteps[start_step:], start_step
    # --8<-- [end:img2img-timesteps]


def sdedit(
    model: Model,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    strength: float,
    num_inference_steps: int,
    *,
    sampler: str = "ddim",
    prediction_type: str = "epsilon",
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    timestep_spacing: str = "leading",
    **options,
) -> torch.Tensor:
    r"""Edit images with SDEdit (Meng et al. 2022, Algorithm 1), diffusers' img2img arithmetic.

    Noise the guide images to $t_0$ with `q_sample` (Ho et al. 2020, Eq. 4), then run the last
    steps of a DDIM or DDPM sampler from there, exactly as `StableDiffusionImg2ImgPipeline` does
    with `DDIMScheduler` or `DDPMScheduler`. When no step is left
    ($\lfloor N \cdot \mathrm{strength} \rfloor = 0$) the images come back unchanged.
    Other keyword arguments go to the sampler (`eta`, `clip_sample`, `variance_type`, ...).

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x0: Guide images $x^{g}$, shape `(B, C, H, W)`, values in `[-1, 1]`.
        schedule: The training noise schedule.
        strength: In `[0, 1]`; larger edits more (see `img2img_timesteps`).
        num_inference_steps: $N$, the steps of the sampler at `strength` 1.
        sampler: `"ddim"` or `"ddpm"`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        noise: The $\epsilon$ that noises `x0`, shape of `x0`; drawn with `generator` if omitted.
        generator: Random number generator for `noise` and the sampler's own noise.
        timestep_spacing: `"leading"`, `"trailing"` or `"linspace"`.

    Returns:
        The edited images, shape `(B, C, H, W)`.

    Raises:
        TypeError: For a `model` that is not callable, an `x0` that is not a floating-point
            tensor or a `schedule` that is not a `NoiseSchedule`.
        ValueError: If `strength` is outside `[0, 1]` or NaN, `sampler` is unknown, or `x0` is
            not 4-d and finite; the sampler checks its own arguments.
    """
    check.instance("model", model, Callable)
    check.tensor("x0", x0, ndim=4)
    check.instance("schedule", schedule, NoiseSchedule)
    check_strength(strength)
    check.one_of("sampler", sampler, list(SDEDIT_SAMPLERS))
    check_prediction_type(prediction_type)
    if noise is not None:
        check.same_shape("noise", check.tensor("noise", noise), "x0", x0)
    check.generator("generator", generator)
    check.one_of("timestep_spacing", timestep_spacing, TIMESTEP_SPACINGS)
    # --8<-- [start:sdedit-body]
    # 1. the timesteps left at this strength; the first one is t_0
    timesteps, start_step = img2img_timesteps(
        schedule.num_train_timesteps, num_inference_steps, strength, timestep_spacing
    )
    if len(timesteps) == 0:
        return x0.clone()
    # 2. noise the guide to t_0:
    #    x_{t_0} = \sqrt{\bar\alpha_{t_0}} x^g + \sqrt{1-\bar\alpha_{t_0}} \epsilon
    t_0 = timesteps[0].expand(x0.shape[0])
    x_t0 = q_sample(x0, t_0, schedule.alpha_bar, noise=noise, generator=generator)
    # 3. run the sampler's remaining steps from x_{t_0} down to x_0
    return SDEDIT_SAMPLERS[sampler](
        model,
        x_t0,
        schedule,
        num_inference_steps,
        prediction_type=prediction_type,
        generator=generator,
        timestep_spacing=timestep_spacing,
        start_step=start_step,
        **options,
    )
    # --8<-- [end:sdedit-body]
