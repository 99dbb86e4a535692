r"""DPM-Solver++(2M): a second-order multistep solver of the diffusion ODE (Lu et al. 2022, arXiv 2211.01095).

Writing $x_t = \alpha_t x_0 + \sigma_t \epsilon$ (here $\alpha_t = \sqrt{\bar\alpha_t}$,
$\sigma_t = \sqrt{1-\bar\alpha_t}$) and $\lambda_t = \log(\alpha_t / \sigma_t)$ (half the log-SNR),
the probability-flow ODE in terms of the data prediction $\hat x_0$ has the exact solution

$$x_t = \frac{\sigma_t}{\sigma_s}\,x_s + \sigma_t \int_{\lambda_s}^{\lambda_t} e^{\lambda}\,\hat x_0(\lambda)\,\mathrm{d}\lambda.$$

DPM-Solver++ approximates $\hat x_0$ in the integral: constant (first order, which is DDIM),
or a line through the last two predictions (second order, "2M": one network call per step,
reusing the previous one). Same as `diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from snippets import check
from snippets.forward import (
    check_prediction_type,
    check_sampler_args,
    check_sampler_options,
)
from snippets.schedules import NoiseSchedule, inference_timesteps, sigma_from_alpha_bar

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Step = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def dpm_solver_timesteps(
    num_train_timesteps: int, num_inference_steps: int, spacing: str = "linspace"
) -> torch.Tensor:
    r"""The timesteps `diffusers.DPMSolverMultistepScheduler` visits.

    `"linspace"` and `"leading"` place $N + 1$ points as `inference_timesteps` does and drop the
    last one ($t = 0$, reached by the final step to clean data); `"trailing"` is unchanged.

    Args:
        num_train_timesteps: $T$.
        num_inference_steps: $N$, in `[1, T)` (`[1, T]` for `"trailing"`).
        spacing: `"linspace"`, `"leading"` or `"trailing"`.

    Returns:
        int64 timesteps, decreasing, shape `(N,)`.
    """
    T, N = num_train_timesteps, num_inference_steps
    inference_timesteps(T, N, spacing)  # checks N and spacing
    if spacing == "trailing":
        return inference_timesteps(T, N, spacing)
    if N >= T:
        raise ValueError(
            f"DPM-Solver with {spacing!r} spacing needs num_inference_steps < {T}, got {N}"
        )
    return inference_timesteps(T, N + 1, spacing)[:-1]


def dpm_solver_coefficients(
    alpha_bar: torch.Tensor, timesteps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""$\alpha_t$, $\sigma_t$ and $\lambda_t$ at the visited timesteps, then at clean data.

    Args:
        alpha_bar: $\bar\alpha$ of the training schedule, shape `(T,)`.
        timesteps: The visited timesteps (`dpm_solver_timesteps`), shape `(N,)`.

    Returns:
        `(alphas_t, sigmas_t, lambdas)`, each shape `(N + 1,)`; the last entry is clean data
        ($\alpha = 1$, $\sigma = 0$, $\lambda = \infty$).
    """
    # noise levels sigma = sqrt((1 - alpha_bar) / alpha_bar) of the visited steps, then
    # 0 (clean data)
    sigmas = torch.cat([sigma_from_alpha_bar(alpha_bar)[timesteps], torch.zeros(1)])
    # VP coefficients: alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma alpha_t;
    # lambda_t = log alpha_t - log sigma_t
    alphas_t = 1 / (sigmas**2 + 1) ** 0.5
    sigmas_t = sigmas * alphas_t
    lambdas = alphas_t.log() - sigmas_t.log()
    return alphas_t, sigmas_t, lambdas


# --8<-- [start:dpm-solver-step]
def dpm_solver_pp_2m_step(
    model: Model,
    x: torch.Tensor,
    x0_prev: torch.Tensor,
    t: torch.Tensor,
    alpha_t: torch.Tensor,
    sigma_t: torch.Tensor,
    alpha_next: torch.Tensor,
    sigma_next: torch.Tensor,
    h: torch.Tensor,
    inv_r: torch.Tensor,
    *,
    prediction_type: str = "epsilon",
    clip_sample: bool = False,
    clip_sample_range: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One DPM-Solver++(2M) step from $t_{i-1}$ to $t_i$ (Lu et al. 2022, Algorithm 2).

    A pure function of tensors, the same in `dpm_solver_pp_2m_sample_progressive` and in the
    browser (exported to ONNX by `snippets.onnx_export`).

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x: $x_{t_{i-1}}$, shape `(B, C, H, W)`.
        x0_prev: The previous step's $\hat x_0$, shape of `x` (unused when `inv_r` is 0).
        t: The timestep $t_{i-1}$, an int64 0-d tensor.
        alpha_t: $\alpha_{t_{i-1}}$, a 0-d tensor.
        sigma_t: $\sigma_{t_{i-1}} > 0$, a 0-d tensor.
        alpha_next: $\alpha_{t_i}$, a 0-d tensor.
        sigma_next: $\sigma_{t_i} \ge 0$, a 0-d tensor.
        h: $h_i = \lambda_{t_i} - \lambda_{t_{i-1}}$ (infinite for the last step), a 0-d tensor.
        inv_r: $1 / r_i = h_i / h_{i-1}$, or 0 for a first-order step, a 0-d tensor.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        clip_sample: Clip $\hat x_0$ to `[-clip_sample_range, clip_sample_range]`.
        clip_sample_range: Bound for the clipping.

    Returns:
        `(x_next, x0_hat)`, each shape `(B, C, H, W)`.
    """
    check.instance("model", model, Callable)
    check.tensor("x", x)
    check.same_shape("x0_prev", check.tensor("x0_prev", x0_prev), "x", x)
    check_prediction_type(prediction_type)
    for name, value in (
        ("alpha_t", alpha_t),
        ("sigma_t", sigma_t),
        ("alpha_next", alpha_next),
    ):
        check.real(name, value, gt=0)
    check.real("sigma_next", sigma_next, ge=0)
    check.real("h", h, gt=0, finite=False)
    check.real("inv_r", inv_r, ge=0)
    # 1. data prediction \hat x_0 at t_{i-1}
    model_output = model(x, t.expand(x.shape[0]))
    check.same_shape("model_output", model_output, "x", x)
    if prediction_type == "epsilon":
        x0_hat = (x - sigma_t * model_output) / alpha_t
    elif prediction_type == "v_prediction":
        x0_hat = alpha_t * x - sigma_t * model_output
    else:
        x0_hat = model_output
    if clip_sample:
        x0_hat = x0_hat.clamp(-clip_sample_range, clip_sample_range)
    # 2. D_i = x0_hat + (1 / 2r) (x0_hat - x0_prev): a line through the last two
    # predictions (Algorithm 2); 1/r = 0 is the first-order update (Eq. 9, = DDIM)
    D0, D1 = x0_hat, inv_r * (x0_hat - x0_prev)
    x = (
        (sigma_next / sigma_t) * x
        - (alpha_next * (torch.exp(-h) - 1.0)) * D0
        - 0.5 * (alpha_next * (torch.exp(-h) - 1.0)) * D1
    )
    return x, x0_hat


# --8<-- [end:dpm-solver-step]


# --8<-- [start:dpm-solver]
@torch.no_grad()
def dpm_solver_pp_2m_sample_progressive(
    model: Model,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    timestep_spacing: str = "linspace",
    clip_sample: bool = False,
    clip_sample_range: float = 1.0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    r"""DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), from $x_T$ to $x_0$.

    With $h = \lambda_{t_i} - \lambda_{t_{i-1}}$ and $r = h_{\text{prev}} / h$:

    $$x_{t_i} = \frac{\sigma_{t_i}}{\sigma_{t_{i-1}}}\,x_{t_{i-1}} - \alpha_{t_i}\left(e^{-h} - 1\right) D_i,
    \qquad D_i = \left(1 + \tfrac{1}{2r}\right)\hat x_0^{(i-1)} - \tfrac{1}{2r}\,\hat x_0^{(i-2)}$$

    The first step has no previous prediction and the last (to $\sigma = 0$, where
    $\lambda = \infty$) lands on $\hat x_0$: both use the first-order update $D_i = \hat x_0^{(i-1)}$.

    Args:
        model: `model(x_t, t) -> prediction`, `t` int64 of shape `(B,)`.
        x_T: Starting noise $x_T \sim \mathcal{N}(0, I)$, shape `(B, C, H, W)`.
        schedule: The training noise schedule.
        num_inference_steps: $N$ (see `dpm_solver_timesteps`).
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        generator: Unused (the solver is deterministic); accepted for the common signature.
        timestep_spacing: `"linspace"`, `"leading"` or `"trailing"`.
        clip_sample: Clip $\hat x_0$ to `[-clip_sample_range, clip_sample_range]` (not in diffusers).
        clip_sample_range: Bound for the clipping.

    Yields:
        `(t, x_next, x0_hat)` after each step.
    """
    check_sampler_args(model, x_T, schedule, prediction_type, generator)
    check_sampler_options(timestep_spacing, clip_sample, clip_sample_range)
    timesteps = dpm_solver_timesteps(
        schedule.num_train_timesteps, num_inference_steps, timestep_spacing
    )
    alphas_t, sigmas_t, lambdas = dpm_solver_coefficients(schedule.alpha_bar, timesteps)
    x, x0_prev = x_T, torch.zeros_like(x_T)
    for i, t in enumerate(timesteps):
        # 1. step size in half-log-SNR; r_i = h_{i-1} / h_i
        h = lambdas[i + 1] - lambdas[i]
        # 2. first order (1/r = 0) at the first step and the last, else second order
        first_order = i == 0 or i == len(timesteps) - 1
        r = (lambdas[i] - lambdas[i - 1]) / h
        inv_r = torch.zeros(()) if first_order else 1.0 / r
        x, x0_prev = dpm_solver_pp_2m_step(
            model,
            x,
            x0_prev,
            t,
            alphas_t[i],
            sigmas_t[i],
            alphas_t[i + 1],
            sigmas_t[i + 1],
            h,
            inv_r,
            prediction_type=prediction_type,
            clip_sample=clip_sample,
            clip_sample_range=clip_sample_range,
        )
        yield t, x, x0_prev


# --8<-- [end:dpm-solver]


def dpm_solver_pp_2m_sample(
    model: Model,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    **options,
) -> torch.Tensor:
    """Run `dpm_solver_pp_2m_sample_progressive` to the end (same arguments) and return $x_0$, shape `(B, C, H, W)`."""
    for _, x, _ in dpm_solver_pp_2m_sample_progressive(
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
