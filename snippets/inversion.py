r"""DDIM inversion: run the deterministic sampler backwards, from an image to its noise.

DDIM with $\eta = 0$ (Song et al. 2021, Eq. 12) is a deterministic map $x_T \mapsto x_0$, the
Euler discretisation of an ODE (Section 4.3, Eq. 14). Running the same update with the roles of
the two noise levels swapped walks from a real image $x_0$ up to a latent $x_T$ that the sampler
maps back to (nearly) the same image, the basis of image editing by inversion (Mokady et al. 2023,
"Null-text inversion"; diffusers' `DDIMInverseScheduler`).

`ddim_invert` is the walk up; `ddim_round_trip` walks up and comes back down with
`snippets.sampling.ddim_sample`. A model is `model(x_t, t) -> prediction`, as for the samplers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from snippets import check
from snippets.forward import check_prediction_type, predict_x0_and_eps
from snippets.sampling import ddim_sample
from snippets.schedules import NoiseSchedule, inference_timesteps

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["ddim_invert_progressive", "ddim_invert", "ddim_round_trip"]

INVERSION_SPACINGS = ("leading", "trailing")


def check_eta_for_inversion(eta: float) -> None:
    """Raise a `ValueError` naming `eta` unless it is exactly 0 (the deterministic sampler)."""
    if (
        isinstance(eta, bool)
        or not isinstance(eta, (int, float))
        or math.isnan(eta)
        or eta != 0
    ):
        raise ValueError(
            f"eta must be 0 for DDIM inversion, got {eta!r}: a stochastic sampler (eta > 0) adds "
            "fresh noise at every step, so no single x_T maps back to the image"
        )


@torch.no_grad()
def ddim_invert_progressive(
    model: Model,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    eta: float = 0.0,
    timestep_spacing: str = "leading",
    clip_sample: bool = True,
    clip_sample_range: float = 1.0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    r"""DDIM inversion, step by step: $x_0 \to x_T$, same as `diffusers.DDIMInverseScheduler`.

    Each step is the DDIM update of Eq. 12 of Song et al. 2021 ($\eta = 0$) read upwards, from the
    current level $t'$ to the next one $t = t' + \lfloor T/N \rfloor$:

    $$x_{t} = \sqrt{\bar\alpha_{t}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t}}\;\hat\epsilon,
    \qquad \hat x_0 = \frac{x_{t'} - \sqrt{1-\bar\alpha_{t'}}\,\hat\epsilon}{\sqrt{\bar\alpha_{t'}}},
    \qquad \hat\epsilon = \epsilon_\theta(x_{t'}, t).$$

    **Why it is not exact.** The sampler that comes back down computes $\hat\epsilon$ at the
    point it starts from, $\epsilon_\theta(x_t, t)$. Going up we do not know $x_t$ yet, so the
    network is evaluated at $x_{t'}$ instead (with the label $t$, as diffusers does): the ODE is
    linearised, assuming $\epsilon_\theta(x_{t'}, t) \approx \epsilon_\theta(x_t, t)$. Each step
    makes an error of the order of how much $\hat\epsilon$ changes over one step, so the round trip
    misses $x_0$ by an amount that shrinks as the number of steps $N$ grows, and never reaches zero
    for a finite $N$ (the test of `ddim_round_trip` measures it on the shipped model).

    The timesteps are those of `ddim_sample`, in reverse: the last level reached is the one that
    `ddim_sample` starts from, and the first step starts from clean data ($\bar\alpha = 1$).
    With `prediction_type="sample"` that first step is undefined ($\hat\epsilon$ divides by
    $\sqrt{1 - \bar\alpha} = 0$), as in diffusers.

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x0: Clean images, shape `(B, C, H, W)`, values in `[-1, 1]`.
        schedule: The training noise schedule.
        num_inference_steps: $N$ in `[1, T]`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        eta: Must be 0: only the deterministic sampler can be inverted.
        timestep_spacing: `"leading"` or `"trailing"` (the two that `DDIMInverseScheduler` has).
        clip_sample: Clip $\hat x_0$ to `[-clip_sample_range, clip_sample_range]` (diffusers' default).
        clip_sample_range: Bound for the clipping.

    Yields:
        `(t, x_t, x0_hat)` after each step, $t$ increasing.

    Raises:
        TypeError: For a `model` that is not callable, an `x0` that is not a floating-point
            tensor, a `schedule` that is not a `NoiseSchedule` or a `clip_sample` that is not a
            bool.
        ValueError: If `eta` is not 0 (a stochastic sampler cannot be inverted), `x0` is not
            4-d and finite, `timestep_spacing` is not one of the two above, or
            `num_inference_steps` or `clip_sample_range` is out of range.
    """
    check.instance("model", model, Callable)
    check.tensor("x0", x0, ndim=4)
    check.instance("schedule", schedule, NoiseSchedule)
    T = schedule.num_train_timesteps
    check.integer("num_inference_steps", num_inference_steps, ge=1, le=T)
    check_prediction_type(prediction_type)
    check_eta_for_inversion(eta)
    check.one_of("timestep_spacing", timestep_spacing, INVERSION_SPACINGS)
    check.boolean("clip_sample", clip_sample)
    check.real("clip_sample_range", clip_sample_range, gt=0)
    T = schedule.num_train_timesteps
    # \bar\alpha with a leading 1 for clean data: index t' + 1, so that t' = -1 means \bar\alpha = 1
    alpha_bar_padded = F.pad(schedule.alpha_bar, (1, 0), value=1.0)
    # ddim_sample's timesteps, walked upwards
    timesteps = inference_timesteps(T, num_inference_steps, timestep_spacing).flip(0)
    x = x0
    # --8<-- [start:ddim-invert-loop]
    for t in timesteps:
        # 1. the level x sits at now: one stride below t, clean data below 0
        t_cur = (t - T // num_inference_steps).clamp(min=-1)
        # 2. predict at the current point x_{t'}, with the label of the next level t
        model_output = model(x, t.expand(x.shape[0]))
        # 3. predicted x_0 and epsilon at the current level (Eq. 12's "predicted x_0")
        x0_hat, eps_hat = predict_x0_and_eps(
            model_output, x, t_cur + 1, alpha_bar_padded, prediction_type
        )
        if clip_sample:
            x0_hat = x0_hat.clamp(-clip_sample_range, clip_sample_range)
        # 4. up to the next level:
        #    x_t = \sqrt{\bar\alpha_t} x0_hat + \sqrt{1-\bar\alpha_t} eps_hat
        a_bar_next = schedule.alpha_bar[t]
        x = a_bar_next**0.5 * x0_hat + (1 - a_bar_next) ** 0.5 * eps_hat
        yield t, x, x0_hat
    # --8<-- [end:ddim-invert-loop]


def ddim_invert(
    model: Model,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    **options,
) -> torch.Tensor:
    """Run `ddim_invert_progressive` to the end (same arguments) and return $x_T$, shape `(B, C, H, W)`."""
    x = x0
    for _, x, _ in ddim_invert_progressive(
        model,
        x0,
        schedule,
        num_inference_steps,
        prediction_type=prediction_type,
        **options,
    ):
        pass
    return x


def ddim_round_trip(
    model: Model,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    eta: float = 0.0,
    timestep_spacing: str = "leading",
    clip_sample: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Invert images to $x_T$ with `ddim_invert`, then sample them back with `ddim_sample`.

    Both directions use the same $N$ steps, spacing and clipping, and $\eta = 0$.

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x0: Clean images, shape `(B, C, H, W)`, values in `[-1, 1]`.
        schedule: The training noise schedule.
        num_inference_steps: $N$ in `[1, T]`, for each direction.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        eta: Must be 0 (see `ddim_invert_progressive`).
        timestep_spacing: `"leading"` or `"trailing"`.
        clip_sample: Clip $\hat x_0$ to `[-1, 1]` in both directions.

    Returns:
        `(x_T, x0_reconstructed)`, each shape `(B, C, H, W)`.
    """
    options = dict(timestep_spacing=timestep_spacing, clip_sample=clip_sample)
    # 1. up: x_0 -> x_T, deterministic
    x_T = ddim_invert(
        model,
        x0,
        schedule,
        num_inference_steps,
        prediction_type=prediction_type,
        eta=eta,
        **options,
    )
    # 2. down: the same DDIM steps with eta = 0, x_T -> x_0
    x0_reconstructed = ddim_sample(
        model,
        x_T,
        schedule,
        num_inference_steps,
        prediction_type=prediction_type,
        eta=0.0,
        **options,
    )
    return x_T, x0_reconstructed
