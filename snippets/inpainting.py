r"""Inpainting with an unconditional diffusion model: fill the unknown pixels, keep the known ones.

A mask $m$ marks the known pixels ($m = 1$) of an image $x_0$; the model fills the rest ($m = 0$).
No training is needed (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion
Probabilistic Models", Section 4.1): at every reverse step the known region is taken from the
forward process applied to $x_0$ and the unknown region from the model's DDPM step,

$$x_{t-1} = m \odot x_{t-1}^{\text{known}} + (1 - m) \odot x_{t-1}^{\text{unknown}},
\qquad x_{t-1}^{\text{known}} \sim q(x_{t-1} \mid x_0) \quad \text{(Eq. 8)}.$$

`inpaint` is that naive replace-the-known-pixels loop. It harmonises badly: the unknown region
sees the known one only through a noised copy, one step at a time. `repaint` adds RePaint's
resampling (Algorithm 1, Section 4.2): after a reverse step it sometimes jumps back up by noising
($x_{t-1} \to x_t$, Eq. 9 / Algorithm 1 line 10) and redoes the step, `jump_n_sample` times per
jump of `jump_length` steps, on the schedule of diffusers' `RePaintScheduler`.

Both use the DDPM ancestral step of `snippets.sampling.ddpm_sample` (Ho et al. 2020, Algorithm 2)
with `"leading"` timesteps, and `mask` uses diffusers' convention: 1 = known (kept), 0 = to fill.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from snippets import check
from snippets.forward import (
    check_prediction_type,
    gaussian_noise,
    predict_x0_and_eps,
    q_posterior_mean_variance,
    q_sample,
)
from snippets.schedules import NoiseSchedule, inference_timesteps

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Step = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

__all__ = [
    "check_mask",
    "check_inpaint_args",
    "inpaint_step",
    "inpaint_progressive",
    "inpaint",
    "repaint_timesteps",
    "repaint_progressive",
    "repaint",
]


def check_mask(mask: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Check an inpainting mask against the images and return it as a boolean tensor.

    Args:
        mask: 1 (or `True`) where a pixel is known, 0 where it is to be filled; the shape of `x0`,
            or one that broadcasts to it with the same number of dimensions, e.g. `(B, 1, H, W)`.
        x0: The images, shape `(B, C, H, W)`.

    Returns:
        The mask as `torch.bool`, shape broadcastable to `x0`.

    Raises:
        TypeError: If `mask` is not a tensor, or `x0` is not a floating-point tensor.
        ValueError: If `mask` has the wrong shape or holds a value other than 0 and 1.
    """
    check.tensor("mask", mask, dtype=None)
    check.tensor("x0", x0, ndim=4)
    # broadcasts to x0: the same number of dimensions, each of size 1 or that of x0
    fits = mask.ndim == x0.ndim and all(
        m in (1, n) for m, n in zip(mask.shape, x0.shape)
    )
    if not fits:
        raise ValueError(
            f"mask must have the shape of the images {tuple(x0.shape)} (or broadcast to it, "
            f"e.g. {(x0.shape[0], 1, *x0.shape[2:])}), got {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(
            "mask must hold only 0 (pixel to fill) and 1 (known pixel), got other values"
        )
    return mask.to(device=x0.device, dtype=torch.bool)


def check_inpaint_args(
    model,
    x0,
    mask,
    schedule,
    num_inference_steps,
    prediction_type,
    generator,
    x_T,
    clip_sample,
) -> torch.Tensor:
    """The checks `inpaint_progressive` and `repaint_progressive` share; returns the mask."""
    check.instance("model", model, Callable)
    mask = check_mask(mask, x0)
    check.instance("schedule", schedule, NoiseSchedule)
    T = schedule.num_train_timesteps
    check.integer("num_inference_steps", num_inference_steps, ge=1, le=T)
    check_prediction_type(prediction_type)
    check.generator("generator", generator)
    if x_T is not None:
        check.same_shape("x_T", check.tensor("x_T", x_T), "x0", x0)
    check.boolean("clip_sample", clip_sample)
    return mask


def inpaint_step(
    model: Model,
    x: torch.Tensor,
    t: torch.Tensor,
    t_prev: torch.Tensor,
    x0: torch.Tensor,
    mask: torch.Tensor,
    schedule: NoiseSchedule,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    clip_sample: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One reverse step $x_t \to x_{t'}$ that keeps the known pixels (RePaint, Algorithm 1, lines 4-8).

    The unknown part is DDPM's ancestral step, $x^{\text{unknown}}_{t'} = \tilde\mu_t(x_t, \hat x_0)
    + \sigma_t z$ with $\sigma_t^2 = \tilde\beta_t$ (Ho et al. 2020, Eqs. 6-7 and Algorithm 2); the
    known part is $x_0$ noised to $t'$ with `q_sample` (Eq. 8 of Lugmayr et al. 2022), and at
    $t' = -1$ it is $x_0$ itself, so the known pixels come out exactly. The known part's noise is
    drawn only if some pixel is known, so that with an all-zero mask this is `ddpm_sample`'s step.

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x: The current batch $x_t$, shape `(B, C, H, W)`.
        t: The current timestep, a 0-d integer tensor in `[0, T)`.
        t_prev: The next, earlier timestep, in `[-1, t)` (-1: clean data).
        x0: The images whose known pixels are kept, shape `(B, C, H, W)`.
        mask: Boolean mask from `check_mask`, `True` where known.
        schedule: The training noise schedule.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        generator: Random number generator for $z$ and the known part's noise.
        clip_sample: Clip $\hat x_0$ to `[-1, 1]`, as `ddpm_sample` does by default.

    Returns:
        `(x_prev, x0_hat)`: the new batch and the model's estimate of the clean images.
    """
    check.instance("model", model, Callable)
    check.tensor("x", x, ndim=4)
    check.instance("schedule", schedule, NoiseSchedule)
    T = schedule.num_train_timesteps
    check.tensor("t", t, dtype="int", shape=(), ge=0, lt=T)
    check.tensor("t_prev", t_prev, dtype="int", shape=(), ge=-1, lt=int(t))
    check.same_shape("x0", check.tensor("x0", x0), "x", x)
    check.tensor("mask", mask, dtype="bool")
    check_prediction_type(prediction_type)
    check.generator("generator", generator)
    check.boolean("clip_sample", clip_sample)
    alpha_bar = schedule.alpha_bar
    # 1. predict with the network; predicted x_0 (Eq. 15 of Ho et al. 2020), optionally clipped
    model_output = model(x, t.expand(x.shape[0]))
    x0_hat, _ = predict_x0_and_eps(model_output, x, t, alpha_bar, prediction_type)
    if clip_sample:
        x0_hat = x0_hat.clamp(-1.0, 1.0)
    # --8<-- [start:inpaint-step-body]
    # 2. the unknown part: x_{t-1} ~ N(\tilde\mu_t, \tilde\beta_t I) (Algorithm 1, line 7)
    mean, variance = q_posterior_mean_variance(x0_hat, x, t, alpha_bar, t_prev)
    x_unknown = mean
    if t > 0:
        z = gaussian_noise(x, generator)
        x_unknown = mean + variance.clamp(min=1e-20) ** 0.5 * z
    # 3. the known part: x_{t-1} ~ q(x_{t-1} | x_0) (Algorithm 1, line 5);
    #    x_0 itself at the end
    x_known = x0
    if t_prev >= 0 and bool(mask.any()):
        x_known = q_sample(x0, t_prev, alpha_bar, generator=generator)
    # 4. m * known + (1 - m) * unknown (Algorithm 1, line 8), exact where m = 1
    return torch.where(mask, x_known, x_unknown), x0_hat
    # --8<-- [end:inpaint-step-body]


@torch.no_grad()
def inpaint_progressive(
    model: Model,
    x0: torch.Tensor,
    mask: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    clip_sample: bool = True,
) -> Iterator[Step]:
    r"""The naive inpainting loop: DDPM sampling that replaces the known pixels at every step.

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x0: The images to complete, shape `(B, C, H, W)`, values in `[-1, 1]`; the values under
            `mask == 0` are ignored.
        mask: 1 where known, 0 where to fill; the shape of `x0` or broadcastable, e.g. `(B, 1, H, W)`.
        schedule: The training noise schedule.
        num_inference_steps: $N$ in `[1, T]` (`"leading"` timesteps).
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        generator: Random number generator for $x_T$ (if omitted) and every step's noise.
        x_T: Starting noise, shape of `x0`; drawn with `generator` if omitted.
        clip_sample: Clip $\hat x_0$ to `[-1, 1]`.

    Yields:
        `(t, x_prev, x0_hat)` after each step.

    Raises:
        ValueError: If `mask` has the wrong shape or a value other than 0 and 1 (and for the
            other bad arguments named by `check_inpaint_args`).
    """
    mask = check_inpaint_args(
        model,
        x0,
        mask,
        schedule,
        num_inference_steps,
        prediction_type,
        generator,
        x_T,
        clip_sample,
    )
    T = schedule.num_train_timesteps
    x = gaussian_noise(x0, generator) if x_T is None else x_T
    for t in inference_timesteps(T, num_inference_steps, "leading"):
        # the previous step is one stride earlier; -1 (clean data) after the last
        t_prev = (t - T // num_inference_steps).clamp(min=-1)
        x, x0_hat = inpaint_step(
            model,
            x,
            t,
            t_prev,
            x0,
            mask,
            schedule,
            prediction_type=prediction_type,
            generator=generator,
            clip_sample=clip_sample,
        )
        yield t, x, x0_hat


def inpaint(
    model: Model,
    x0: torch.Tensor,
    mask: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    **options,
) -> torch.Tensor:
    """Run `inpaint_progressive` to the end (same arguments) and return the completed images."""
    x = x0
    for _, x, _ in inpaint_progressive(
        model, x0, mask, schedule, num_inference_steps, **options
    ):
        pass
    return x


def repaint_timesteps(
    num_train_timesteps: int,
    num_inference_steps: int,
    jump_length: int = 10,
    jump_n_sample: int = 10,
) -> torch.Tensor:
    r"""RePaint's schedule with resampling jumps, same as `diffusers.RePaintScheduler.set_timesteps`.

    Walk down the $N$ (`"leading"`) timesteps; every `jump_length` steps, jump back up
    `jump_length` steps and walk down again, `jump_n_sample - 1` times (Lugmayr et al. 2022,
    Section 4.2: jump length $j$, resampling count $r$). With `jump_n_sample=1`
    it is the plain descending schedule of the naive loop.

    Args:
        num_train_timesteps: $T$.
        num_inference_steps: $N$ in `[1, T]`.
        jump_length: $j \ge 1$, how far each jump goes back up, in inference steps.
        jump_n_sample: $r \ge 1$, how many times each stretch of $j$ steps is walked down.

    Returns:
        The timesteps in the order they are visited, int64: a step down wherever the next entry is
        smaller, a jump up by one stride wherever it is larger.

    Raises:
        TypeError: If an argument is not an integer.
        ValueError: If `jump_length` or `jump_n_sample` is below 1, or `num_inference_steps` is
            outside `[1, num_train_timesteps]`.
    """
    check.integer("num_train_timesteps", num_train_timesteps, ge=1)
    check.integer(
        "num_inference_steps", num_inference_steps, ge=1, le=num_train_timesteps
    )
    check.integer("jump_length", jump_length, ge=1)
    check.integer("jump_n_sample", jump_n_sample, ge=1)
    stride = num_train_timesteps // num_inference_steps
    # the indices (in inference steps) from which a jump starts, with their remaining counts
    jumps = {
        j: jump_n_sample - 1
        for j in range(0, num_inference_steps - jump_length, jump_length)
    }
    indices, i = [], num_inference_steps
    while i >= 1:
        i -= 1
        indices.append(i)
        if jumps.get(i, 0) > 0:
            jumps[i] -= 1
            for _ in range(jump_length):
                i += 1
                indices.append(i)
    return torch.tensor(indices, dtype=torch.int64) * stride


@torch.no_grad()
def repaint_progressive(
    model: Model,
    x0: torch.Tensor,
    mask: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    jump_length: int = 10,
    jump_n_sample: int = 10,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    clip_sample: bool = True,
) -> Iterator[Step]:
    r"""RePaint (Lugmayr et al. 2022, Algorithm 1): inpainting with resampling jumps.

    Follows `repaint_timesteps`. A step down is `inpaint_step`; a jump up by one stride from
    level $t'$ to $t$ re-noises the whole batch with the forward process,

    $$x_t = \sqrt{\bar\alpha_t / \bar\alpha_{t'}}\;x_{t'} + \sqrt{1 - \bar\alpha_t / \bar\alpha_{t'}}\;z,$$

    the closed form of the $t - t'$ single steps of Algorithm 1, line 10 ($\bar\alpha = 1$ for
    clean data). The model thus sees the known region, now harmonised with its own fill, again.

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x0: The images to complete, shape `(B, C, H, W)`, values in `[-1, 1]`.
        mask: 1 where known, 0 where to fill; the shape of `x0` or broadcastable, e.g. `(B, 1, H, W)`.
        schedule: The training noise schedule.
        num_inference_steps: $N$ in `[1, T]`.
        jump_length: $j$, in inference steps.
        jump_n_sample: $r$; 1 is the naive loop of `inpaint_progressive`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        generator: Random number generator for $x_T$ (if omitted), every step's and jump's noise.
        x_T: Starting noise, shape of `x0`; drawn with `generator` if omitted.
        clip_sample: Clip $\hat x_0$ to `[-1, 1]`.

    Yields:
        `(t, x_prev, x0_hat)` after each step down (jumps up yield nothing).

    Raises:
        ValueError: If `mask` has the wrong shape or a value other than 0 and 1, or `jump_length`
            or `jump_n_sample` is not a positive integer.
    """
    mask = check_inpaint_args(
        model,
        x0,
        mask,
        schedule,
        num_inference_steps,
        prediction_type,
        generator,
        x_T,
        clip_sample,
    )
    T = schedule.num_train_timesteps
    timesteps = repaint_timesteps(T, num_inference_steps, jump_length, jump_n_sample)
    stride = T // num_inference_steps
    # \bar\alpha with a leading 1 for clean data: index t + 1
    alpha_bar_padded = torch.cat([torch.ones(1), schedule.alpha_bar])
    x = gaussian_noise(x0, generator) if x_T is None else x_T
    t_last = timesteps[0] + 1
    # --8<-- [start:repaint-loop]
    for t in timesteps:
        if t < t_last:
            # 1. a step down, t -> t - stride, keeping the known pixels
            t_prev = (t - stride).clamp(min=-1)
            x, x0_hat = inpaint_step(
                model,
                x,
                t,
                t_prev,
                x0,
                mask,
                schedule,
                prediction_type=prediction_type,
                generator=generator,
                clip_sample=clip_sample,
            )
            yield t, x, x0_hat
        else:
            # 2. a jump up from the level x is at, t_last - stride, to t_last
            #    (Algorithm 1, line 10)
            a_from = alpha_bar_padded[(t_last - stride).clamp(min=-1) + 1]
            a_to = alpha_bar_padded[t_last + 1]
            z = gaussian_noise(x, generator)
            x = (a_to / a_from) ** 0.5 * x + (1 - a_to / a_from) ** 0.5 * z
        t_last = t
    # --8<-- [end:repaint-loop]


def repaint(
    model: Model,
    x0: torch.Tensor,
    mask: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    **options,
) -> torch.Tensor:
    """Run `repaint_progressive` to the end (same arguments) and return the completed images."""
    x = x0
    for _, x, _ in repaint_progressive(
        model, x0, mask, schedule, num_inference_steps, **options
    ):
        pass
    return x
