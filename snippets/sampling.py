r"""Samplers: from noise back to images, as plain loops over a model callable.

Every sampler here runs the same loop: ask the model about the current noisy batch, turn its answer
into an estimate $\hat x_0$ of the clean image, and step to a less noisy batch. They differ only in
the step:

* `naive_sample` — the course's iterative refinement ("Diffusion Models from Scratch");
* `ddpm_sample` — ancestral sampling (Ho et al. 2020, Algorithm 2);
* `ddim_sample` — DDIM with $\eta$ (Song et al. 2021, Eq. 12);
* `euler_sample`, `heun_sample` — on the Karras sigmas (Karras et al. 2022), in `snippets.karras`;
* `dpm_solver_pp_2m_sample` — DPM-Solver++(2M) (Lu et al. 2022), in `snippets.dpm_solver`.

A model is `model(x_t, t) -> prediction` with `t` of shape `(B,)`; what it predicts is set by
`prediction_type` (`"epsilon"`, `"v_prediction"` or `"sample"`, the names of `diffusers`). Each
sampler has a `_progressive` twin that yields `(t, x, x0_hat)` after every step, for figures;
the plain sampler just runs it to the end. `SAMPLERS` maps names to the plain samplers, which all
share the signature
`sampler(model, x_T, schedule, num_inference_steps, *, prediction_type="epsilon", generator=None, **options)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from snippets import check
from snippets.dpm_solver import (
    dpm_solver_pp_2m_sample,
    dpm_solver_pp_2m_sample_progressive,
)
from snippets.forward import (
    check_sampler_args,
    check_sampler_options,
    check_step_args,
    gaussian_noise,
    predict_x0_and_eps,
    q_posterior_mean_variance,
)
from snippets.karras import (
    euler_sample,
    euler_sample_progressive,
    heun_sample,
    heun_sample_progressive,
)
from snippets.schedules import NoiseSchedule, inference_timesteps

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Step = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

__all__ = [
    "SAMPLERS",
    "naive_sample_progressive",
    "naive_sample",
    "ddpm_step",
    "ddpm_sample_progressive",
    "ddpm_sample",
    "ddim_step",
    "ddim_sample_progressive",
    "ddim_sample",
    "euler_sample_progressive",
    "euler_sample",
    "heun_sample_progressive",
    "heun_sample",
    "dpm_solver_pp_2m_sample_progressive",
    "dpm_solver_pp_2m_sample",
]


def check_start_step(start_step: int, num_inference_steps: int) -> None:
    """Raise unless `start_step` is an integer in `[0, num_inference_steps]`."""
    check.integer("start_step", start_step, ge=0, le=num_inference_steps)


# --8<-- [start:naive]
@torch.no_grad()
def naive_sample_progressive(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, n_steps: int
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    r"""The course's naive sampler: move a fraction of the way to the model's guess, repeatedly.

    From "Diffusion Models from Scratch" (Hugging Face Diffusion Models Course, Unit 1). The model
    predicts the clean image directly; step $i$ of $n$ blends the current batch towards it with
    weight $1 / (n - i)$, so the last step lands on the prediction:

    $$x \leftarrow \left(1 - \tfrac{1}{n - i}\right) x + \tfrac{1}{n - i}\,\mathrm{model}(x)$$

    Args:
        model: An $x_0$-predicting network `model(x) -> x0_hat` (no timestep), such as the course's
            `BasicUNet` trained on `corrupt`.
        x: The starting point, shape `(B, C, H, W)` (the course uses `torch.rand`).
        n_steps: $n \ge 1$.

    Yields:
        `(i, x, pred)` after each step: the step index, the new batch, the model's prediction.
    """
    check.instance("model", model, Callable)
    check.tensor("x", x)
    check.integer("n_steps", n_steps, ge=1)
    for i in range(n_steps):
        # 1. the model's guess of the clean image
        pred = model(x)
        # 2. move 1 / (n - i) of the way towards it
        mix_factor = 1 / (n_steps - i)
        x = x * (1 - mix_factor) + pred * mix_factor
        yield i, x, pred


# --8<-- [end:naive]


def naive_sample(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, n_steps: int
) -> torch.Tensor:
    """Run `naive_sample_progressive` to the end and return the final batch, shape `(B, C, H, W)`."""
    for _, x, _ in naive_sample_progressive(model, x, n_steps):
        pass
    return x


# --8<-- [start:ddpm-step]
def ddpm_step(
    model: Model,
    x: torch.Tensor,
    t: torch.Tensor,
    t_prev: torch.Tensor,
    alpha_bar: torch.Tensor,
    noise: torch.Tensor,
    *,
    prediction_type: str = "epsilon",
    variance_type: str = "fixed_small",
    clip_sample: bool = True,
    clip_sample_range: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One DDPM step from $x_t$ to $x_{t'}$ (Ho et al. 2020, Algorithm 2, lines 3-4).

    A pure function of tensors, the same in `ddpm_sample_progressive` and in the browser
    (exported to ONNX by `snippets.onnx_export`).

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x: $x_t$, shape `(B, C, H, W)`.
        t: The timestep, an int64 0-d tensor in `[0, T)`.
        t_prev: The next (earlier) timestep $t'$, an int64 0-d tensor in `[-1, t)`.
        alpha_bar: $\bar\alpha$ of the training schedule, shape `(T,)`.
        noise: $z \sim \mathcal{N}(0, I)$, shape of `x`; zeros for the last step ($t = 0$).
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        variance_type: `"fixed_small"` ($\tilde\beta_t$) or `"fixed_large"` ($\beta_t$).
        clip_sample: Clip $\hat x_0$ to `[-clip_sample_range, clip_sample_range]`.
        clip_sample_range: Bound for the clipping.

    Returns:
        `(x_prev, x0_hat)`, each shape `(B, C, H, W)`.
    """
    check_step_args(model, x, noise, prediction_type)
    # 1. predict with the network
    model_output = model(x, t.expand(x.shape[0]))
    # 2. predicted x_0 (Eq. 15), optionally clipped
    x0_hat, _ = predict_x0_and_eps(model_output, x, t, alpha_bar, prediction_type)
    if clip_sample:
        x0_hat = x0_hat.clamp(-clip_sample_range, clip_sample_range)
    # 3. posterior mean \tilde\mu_t and variance \tilde\beta_t (Eqs. 6-7)
    mean, variance = q_posterior_mean_variance(x0_hat, x, t, alpha_bar, t_prev)
    if variance_type == "fixed_large":
        # \beta_t = 1 - \bar\alpha_t / \bar\alpha_{t'}, with \bar\alpha_{-1} = 1
        variance = 1 - alpha_bar[t] / F.pad(alpha_bar, (1, 0), value=1.0)[t_prev + 1]
    # 4. x_{t-1} = \tilde\mu_t + \sigma_t z (Algorithm 2, line 4)
    return mean + variance.clamp(min=1e-20) ** 0.5 * noise, x0_hat


# --8<-- [end:ddpm-step]


# --8<-- [start:ddpm]
@torch.no_grad()
def ddpm_sample_progressive(
    model: Model,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    timestep_spacing: str = "leading",
    variance_type: str = "fixed_small",
    clip_sample: bool = True,
    clip_sample_range: float = 1.0,
    start_step: int = 0,
) -> Iterator[Step]:
    r"""DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), same as `diffusers.DDPMScheduler`.

    Each step draws $x_{t-1}$ from the posterior of Eqs. 6-7 with the predicted $\hat x_0$ in place
    of $x_0$:

    $$x_{t-1} = \tilde\mu_t(x_t, \hat x_0) + \sigma_t z, \qquad z \sim \mathcal{N}(0, I),$$

    with $\sigma_t^2 = \tilde\beta_t$ (`"fixed_small"`) or $\sigma_t^2 = \beta_t$ (`"fixed_large"`),
    the two choices of Section 3.2. With fewer steps than training steps, $\beta_t$ is that of the
    whole jump, $1 - \bar\alpha_t / \bar\alpha_{t'}$. Like `diffusers`, noise is added whenever
    $t > 0$, so with `"trailing"` spacing (last step from $t = T/N - 1$) the last step is noisy too.

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x_T: Starting noise $x_T \sim \mathcal{N}(0, I)$, shape `(B, C, H, W)`.
        schedule: The training noise schedule.
        num_inference_steps: $N$ in `[1, T]`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        generator: Random number generator for the per-step noise $z$.
        timestep_spacing: `"leading"`, `"trailing"` or `"linspace"` (see `inference_timesteps`).
        variance_type: `"fixed_small"` ($\tilde\beta_t$) or `"fixed_large"` ($\beta_t$).
        clip_sample: Clip $\hat x_0$ to `[-clip_sample_range, clip_sample_range]` (diffusers' default).
        clip_sample_range: Bound for the clipping.
        start_step: Skip the first `start_step` of the $N$ steps and start from `x_T` at the
            level of the step after them (SDEdit / img2img, diffusers' `set_begin_index`).

    Yields:
        `(t, x_prev, x0_hat)` after each step.
    """
    check_sampler_args(model, x_T, schedule, prediction_type, generator)
    check_sampler_options(timestep_spacing, clip_sample, clip_sample_range)
    if variance_type not in ("fixed_small", "fixed_large"):
        raise ValueError(
            f"unknown variance_type {variance_type!r}; choose 'fixed_small' or "
            "'fixed_large'"
        )
    alpha_bar = schedule.alpha_bar
    timesteps = inference_timesteps(
        schedule.num_train_timesteps, num_inference_steps, timestep_spacing
    )
    # the step after t is the next one in the list; -1 (clean data) after the last
    prev_timesteps = torch.cat([timesteps[1:], timesteps.new_tensor([-1])])
    check_start_step(start_step, num_inference_steps)
    timesteps, prev_timesteps = timesteps[start_step:], prev_timesteps[start_step:]
    x = x_T
    for t, t_prev in zip(timesteps, prev_timesteps):
        # z ~ N(0, I) if t > 0, else z = 0 (Algorithm 2, line 3)
        z = gaussian_noise(x, generator) if t > 0 else torch.zeros_like(x)
        x, x0_hat = ddpm_step(
            model,
            x,
            t,
            t_prev,
            alpha_bar,
            z,
            prediction_type=prediction_type,
            variance_type=variance_type,
            clip_sample=clip_sample,
            clip_sample_range=clip_sample_range,
        )
        yield t, x, x0_hat


# --8<-- [end:ddpm]


def ddpm_sample(
    model: Model,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    **options,
) -> torch.Tensor:
    """Run `ddpm_sample_progressive` to the end (same arguments) and return $x_0$, shape `(B, C, H, W)`."""
    for _, x, _ in ddpm_sample_progressive(
        model,
        x_T,
        schedule,
        num_inference_steps,
        prediction_type=prediction_type,
        generator=generator,
        **options,
    ):
        pass
    return x


# --8<-- [start:ddim-step]
def ddim_step(
    model: Model,
    x: torch.Tensor,
    t: torch.Tensor,
    t_prev: torch.Tensor,
    alpha_bar: torch.Tensor,
    final_alpha_bar: torch.Tensor,
    eta: float | torch.Tensor,
    noise: torch.Tensor,
    *,
    prediction_type: str = "epsilon",
    clip_sample: bool = True,
    clip_sample_range: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One DDIM step from $x_t$ to $x_{t-1}$ (Song et al. 2021, Eqs. 12 and 16).

    A pure function of tensors, the same in `ddim_sample_progressive` and in the browser
    (exported to ONNX by `snippets.onnx_export`).

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x: $x_t$, shape `(B, C, H, W)`.
        t: The timestep, an int64 0-d tensor in `[0, T)`.
        t_prev: The previous timestep $t - \lfloor T/N \rfloor$, an int64 0-d tensor (below 0:
            the last step, which ends at `final_alpha_bar`).
        alpha_bar: $\bar\alpha$ of the training schedule, shape `(T,)`.
        final_alpha_bar: $\bar\alpha$ after the last step, a 0-d tensor (1: clean data).
        eta: $\eta \in [0, 1]$, a float or a 0-d tensor.
        noise: $z \sim \mathcal{N}(0, I)$, shape of `x` (zeros when $\eta = 0$).
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        clip_sample: Clip $\hat x_0$ to `[-clip_sample_range, clip_sample_range]`.
        clip_sample_range: Bound for the clipping.

    Returns:
        `(x_prev, x0_hat)`, each shape `(B, C, H, W)`.
    """
    check_step_args(model, x, noise, prediction_type)
    check.tensor("t_prev", t_prev, dtype="int", ndim=0)
    check.real("final_alpha_bar", final_alpha_bar, gt=0, le=1)
    check.real("eta", eta, ge=0, le=1)
    # 1. predict with the network
    model_output = model(x, t.expand(x.shape[0]))
    # 2. predicted x_0 and epsilon (Eq. 12's "predicted x_0"); clipping x_0 only
    x0_hat, eps_hat = predict_x0_and_eps(model_output, x, t, alpha_bar, prediction_type)
    if clip_sample:
        x0_hat = x0_hat.clamp(-clip_sample_range, clip_sample_range)
    a_bar_t = alpha_bar[t]
    a_bar_prev = torch.where(
        t_prev >= 0, alpha_bar[t_prev.clamp(min=0)], final_alpha_bar
    )
    # 3. sigma_t (Eq. 16)
    sigma_t = (
        eta * ((1 - a_bar_prev) / (1 - a_bar_t) * (1 - a_bar_t / a_bar_prev)) ** 0.5
    )
    # 4. x_{t-1}: predicted x_0, "direction pointing to x_t", random noise (Eq. 12)
    x = a_bar_prev**0.5 * x0_hat + (1 - a_bar_prev - sigma_t**2) ** 0.5 * eps_hat
    return x + sigma_t * noise, x0_hat


# --8<-- [end:ddim-step]


# --8<-- [start:ddim]
@torch.no_grad()
def ddim_sample_progressive(
    model: Model,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    eta: float = 0.0,
    timestep_spacing: str = "leading",
    clip_sample: bool = True,
    clip_sample_range: float = 1.0,
    start_step: int = 0,
    set_alpha_to_one: bool = True,
) -> Iterator[Step]:
    r"""DDIM sampling (Song et al. 2021, Eqs. 12 and 16), same as `diffusers.DDIMScheduler`.

    $$x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,\hat x_0
    + \sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\;\hat\epsilon + \sigma_t z,
    \qquad
    \sigma_t = \eta\,\sqrt{\frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}}\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_{t-1}}}$$

    $\eta = 0$ is deterministic (the same noise always gives the same image); $\eta = 1$ has the
    variance of DDPM's posterior. The previous step is $t - \lfloor T/N \rfloor$, as in `diffusers`
    (with `"linspace"` spacing that is not always the next listed timestep); below 0 it is clean
    data, $\bar\alpha = 1$, or $\bar\alpha_0$ of the first training step with
    `set_alpha_to_one=False` (as Stable Diffusion's scheduler config does).

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x_T: Starting noise $x_T \sim \mathcal{N}(0, I)$, shape `(B, C, H, W)`.
        schedule: The training noise schedule.
        num_inference_steps: $N$ in `[1, T]`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        generator: Random number generator for $z$ (used only when $\eta > 0$).
        eta: $\eta \in [0, 1]$. Above 1, $\sigma_t^2$ can exceed $1 - \bar\alpha_{t-1}$ and the
            square root of Eq. 12 turns NaN, so larger values are refused.
        timestep_spacing: `"leading"`, `"trailing"` or `"linspace"`.
        clip_sample: Clip $\hat x_0$ to `[-clip_sample_range, clip_sample_range]` (diffusers' default).
        clip_sample_range: Bound for the clipping.
        start_step: Skip the first `start_step` of the $N$ steps and start from `x_T` at the
            level of the step after them (SDEdit / img2img, diffusers' `set_begin_index`).
        set_alpha_to_one: The $\bar\alpha$ the last step ends at: 1 (clean data, diffusers'
            default) or, when `False`, $\bar\alpha_0$ (diffusers' `set_alpha_to_one=False`).

    Yields:
        `(t, x_prev, x0_hat)` after each step.
    """
    check_sampler_args(model, x_T, schedule, prediction_type, generator)
    check_sampler_options(timestep_spacing, clip_sample, clip_sample_range)
    check.real("eta", eta, ge=0, le=1)
    alpha_bar = schedule.alpha_bar
    T = schedule.num_train_timesteps
    timesteps = inference_timesteps(T, num_inference_steps, timestep_spacing)
    check_start_step(start_step, num_inference_steps)
    check.boolean("set_alpha_to_one", set_alpha_to_one)
    # \bar\alpha after the last step: clean data, or the first training step's
    final_alpha_bar = torch.tensor(1.0) if set_alpha_to_one else alpha_bar[0]
    x = x_T
    for t in timesteps[start_step:]:
        t_prev = t - T // num_inference_steps
        # z ~ N(0, I), drawn only when the step is stochastic (eta > 0)
        z = gaussian_noise(x, generator) if eta > 0 else torch.zeros_like(x)
        x, x0_hat = ddim_step(
            model,
            x,
            t,
            t_prev,
            alpha_bar,
            final_alpha_bar,
            eta,
            z,
            prediction_type=prediction_type,
            clip_sample=clip_sample,
            clip_sample_range=clip_sample_range,
        )
        yield t, x, x0_hat


# --8<-- [end:ddim]


def ddim_sample(
    model: Model,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    **options,
) -> torch.Tensor:
    """Run `ddim_sample_progressive` to the end (same arguments) and return $x_0$, shape `(B, C, H, W)`."""
    for _, x, _ in ddim_sample_progressive(
        model,
        x_T,
        schedule,
        num_inference_steps,
        prediction_type=prediction_type,
        generator=generator,
        **options,
    ):
        pass
    return x


# --8<-- [start:registry]
SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddpm": ddpm_sample,
    "ddim": ddim_sample,
    "euler": euler_sample,
    "heun": heun_sample,
    "dpmsolver++": dpm_solver_pp_2m_sample,
}
# --8<-- [end:registry]
