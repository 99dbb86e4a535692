r"""Euler and Heun samplers on the Karras sigma schedule, for DDPM-trained models.

Karras et al. 2022 (EDM) view sampling as solving the probability-flow ODE in the noise level
$\sigma$ (Eq. 1 with $s(t) = 1$, $\sigma(t) = t$):

$$\frac{\mathrm{d}x}{\mathrm{d}\sigma} = \frac{x - D(x; \sigma)}{\sigma},$$

where $D(x; \sigma)$ is the denoised estimate $\hat x_0$. A network trained with a DDPM schedule
fits once its input is rescaled (`snippets.schedules.sigma_from_alpha_bar`): $x = x_t / \sqrt{\bar\alpha_t}$
has noise level $\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$ and the network sees
$x / \sqrt{\sigma^2 + 1}$. The steps $\sigma_i$ follow Eq. 5 ($\rho = 7$) between the smallest
and largest $\sigma$ that the timestep spacing visits; they are mapped back to (fractional)
training timesteps for the network. Same results as `diffusers.EulerDiscreteScheduler` and
`HeunDiscreteScheduler` with `use_karras_sigmas=True`. `snippets.edm` holds the samplers of the
paper itself, for networks trained in the EDM way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from snippets import check
from snippets.forward import (
    check_prediction_type,
    check_sampler_args,
    check_sampler_options,
    check_step_args,
    gaussian_noise,
)
from snippets.schedules import NoiseSchedule, inference_timesteps, sigma_from_alpha_bar

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Step = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


# --8<-- [start:karras-timesteps]
def sigma_to_t(sigma: torch.Tensor, train_sigmas: torch.Tensor) -> torch.Tensor:
    r"""Fractional training timestep of a noise level: interpolate linearly in $\log\sigma$.

    Args:
        sigma: Noise levels, float64, shape `(N,)`.
        train_sigmas: $\sigma_t$ of the training timesteps, increasing, shape `(T,)`.

    Returns:
        Timesteps in `[0, T - 1]` (clamped to the ends of the table), float64, shape `(N,)`.
    """
    check.tensor("sigma", sigma, ge=0)
    check.tensor("train_sigmas", train_sigmas, ndim=1, gt=0)
    log_sigmas = train_sigmas.log().double()
    log_sigma = sigma.log()
    # index of the table entry just below each sigma, so that [low, low + 1] brackets it
    low = (torch.searchsorted(log_sigmas, log_sigma, right=True) - 1).clamp(
        0, len(log_sigmas) - 2
    )
    w = ((log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[low + 1])).clamp(
        0, 1
    )
    return (1 - w) * low + w * (low + 1)


def karras_timesteps(
    alpha_bar: torch.Tensor,
    num_inference_steps: int,
    spacing: str = "linspace",
    rho: float = 7.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The Karras noise levels (Karras et al. 2022, Eq. 5) for a discrete VP schedule.

    $$\sigma_i = \left(\sigma_\text{max}^{1/\rho} + \tfrac{i}{N-1}
    \left(\sigma_\text{min}^{1/\rho} - \sigma_\text{max}^{1/\rho}\right)\right)^{\rho},
    \quad i < N, \qquad \sigma_N = 0,$$

    with $\sigma_\text{max}$, $\sigma_\text{min}$ the noise levels of the first and last timestep
    that `spacing` selects (`inference_timesteps`).

    Args:
        alpha_bar: $\bar\alpha$ of the training schedule, shape `(T,)`.
        num_inference_steps: $N$ in `[1, T]`.
        spacing: `"linspace"`, `"leading"` or `"trailing"`.
        rho: $\rho > 0$ (7 in the paper).

    Returns:
        `(sigmas, timesteps)`: float32 $\sigma_0 > \dots > \sigma_N = 0$, shape `(N + 1,)`, and
        the fractional training timesteps of $\sigma_0, \dots, \sigma_{N-1}$, float32, shape `(N,)`.
    """
    check.real("rho", rho, gt=0)
    train_sigmas = sigma_from_alpha_bar(alpha_bar)
    spaced = inference_timesteps(len(alpha_bar), num_inference_steps, spacing)
    sigma_max, sigma_min = (
        train_sigmas[spaced[0]].double(),
        train_sigmas[spaced[-1]].double(),
    )
    # Eq. 5, in float64
    ramp = torch.linspace(0, 1, num_inference_steps, dtype=torch.float64)
    sigmas = (
        sigma_max ** (1 / rho)
        + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    ) ** rho
    timesteps = sigma_to_t(sigmas, train_sigmas)
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float(), timesteps.float()


# --8<-- [end:karras-timesteps]


# --8<-- [start:denoise]
def denoise(
    model_output: torch.Tensor,
    x: torch.Tensor,
    sigma: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    r"""The denoised estimate $D(x; \sigma) = \hat x_0$ from a VP network's output (Karras et al. 2022, Eq. 7).

    With $x = x_0 + \sigma\epsilon$ and the network fed $x / \sqrt{\sigma^2+1}$:

    * `"epsilon"`: $D = x - \sigma\,\hat\epsilon$;
    * `"v_prediction"`: $D = \frac{x}{\sigma^2 + 1} - \frac{\sigma}{\sqrt{\sigma^2 + 1}}\,\hat v$;
    * `"sample"`: $D = \hat x_0$.

    Args:
        model_output: The network output, shape `(B, C, H, W)`.
        x: The sample on the $\sigma$ scale, shape `(B, C, H, W)`.
        sigma: $\sigma > 0$, a 0-d tensor.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.

    Returns:
        $\hat x_0$, shape `(B, C, H, W)`.
    """
    check.tensor("model_output", model_output)
    check.same_shape("model_output", model_output, "x", check.tensor("x", x))
    check.real("sigma", sigma, gt=0)
    check_prediction_type(prediction_type)
    if prediction_type == "epsilon":
        return x - sigma * model_output
    if prediction_type == "v_prediction":
        return model_output * (-sigma / (sigma**2 + 1) ** 0.5) + x / (sigma**2 + 1)
    return model_output


# --8<-- [end:denoise]


def _initial_sigma(sigmas: torch.Tensor, spacing: str) -> torch.Tensor:
    # diffusers' init_noise_sigma: sigma_0, or sqrt(sigma_0^2 + 1) for "leading" spacing
    return (
        sigmas[0]
        if spacing in ("linspace", "trailing")
        else (sigmas[0] ** 2 + 1) ** 0.5
    )


# --8<-- [start:euler-step]
def euler_step(
    model: Model,
    x: torch.Tensor,
    t: torch.Tensor,
    sigma: torch.Tensor,
    sigma_hat: torch.Tensor,
    sigma_next: torch.Tensor,
    noise: torch.Tensor,
    *,
    prediction_type: str = "epsilon",
    clip_sample: bool = False,
    clip_sample_range: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One Euler step from $\sigma_i$ to $\sigma_{i+1}$, with churn (Karras et al. 2022, Algorithm 2).

    A pure function of tensors, the same in `euler_sample_progressive` and in the browser
    (exported to ONNX by `snippets.onnx_export`). Like diffusers, the network sees
    $(x_i, \sigma_i)$, before the churn noise.

    Args:
        model: `model(x, t) -> prediction`, `t` float32 of shape `(B,)`.
        x: $x_i$ on the $\sigma$ scale, shape `(B, C, H, W)`.
        t: The fractional training timestep of $\sigma_i$, a float32 0-d tensor.
        sigma: $\sigma_i > 0$, a 0-d tensor.
        sigma_hat: $\hat\sigma_i = (1 + \gamma_i)\,\sigma_i$, a 0-d tensor.
        sigma_next: $\sigma_{i+1} \ge 0$, a 0-d tensor.
        noise: $S_\text{noise} z$, $z \sim \mathcal{N}(0, I)$, shape of `x` (zeros without churn).
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        clip_sample: Clip $\hat x_0$ to `[-clip_sample_range, clip_sample_range]`.
        clip_sample_range: Bound for the clipping.

    Returns:
        `(x_next, x0_hat)`, each shape `(B, C, H, W)`.
    """
    check_step_args(model, x, noise, prediction_type)
    check.real("sigma", sigma, gt=0)
    check.real("sigma_hat", sigma_hat, ge=float(sigma))
    check.real("sigma_next", sigma_next, ge=0)
    # 1. evaluate the network on its own scale, x / sqrt(sigma^2 + 1)
    model_output = model(x / (sigma**2 + 1) ** 0.5, t.expand(x.shape[0]))
    # 2. churn: \hat x_i = x_i + sqrt(\hat\sigma_i^2 - \sigma_i^2) S_noise z
    # (Algorithm 2, lines 5-6)
    x = x + noise * (sigma_hat**2 - sigma**2) ** 0.5
    # 3. D(\hat x_i; \hat\sigma_i); like diffusers, v is converted with sigma,
    # epsilon with \hat\sigma
    x0_hat = denoise(
        model_output,
        x,
        sigma_hat if prediction_type == "epsilon" else sigma,
        prediction_type,
    )
    if clip_sample:
        x0_hat = x0_hat.clamp(-clip_sample_range, clip_sample_range)
    # 4. Euler step along dx/dsigma = (x - D) / sigma (Algorithm 1, lines 4-5)
    d = (x - x0_hat) / sigma_hat
    return x + d * (sigma_next - sigma_hat), x0_hat


# --8<-- [end:euler-step]


# --8<-- [start:euler]
@torch.no_grad()
def euler_sample_progressive(
    model: Model,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    timestep_spacing: str = "linspace",
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
    clip_sample: bool = False,
    clip_sample_range: float = 1.0,
) -> Iterator[Step]:
    r"""Euler steps on the Karras sigmas, with optional churn (Karras et al. 2022, Algorithms 1-2).

    $$\hat\sigma_i = (1 + \gamma_i)\,\sigma_i,\quad
    \hat x_i = x_i + \sqrt{\hat\sigma_i^2 - \sigma_i^2}\;S_\text{noise}\,z,\quad
    x_{i+1} = \hat x_i + (\sigma_{i+1} - \hat\sigma_i)\,\frac{\hat x_i - D(\hat x_i; \hat\sigma_i)}{\hat\sigma_i}$$

    with $\gamma_i = \min(S_\text{churn}/N, \sqrt2 - 1)$ if $S_\text{tmin} \le \sigma_i \le S_\text{tmax}$,
    else 0. $S_\text{churn} = 0$ (the default) is the deterministic Euler ODE solver. Same as
    `diffusers.EulerDiscreteScheduler(use_karras_sigmas=True)` and its `step(s_churn=...)`, which
    evaluates the network once per step, at $(x_i, \sigma_i)$ *before* the churn noise (the paper
    evaluates it at $(\hat x_i, \hat\sigma_i)$).

    Args:
        model: `model(x, t) -> prediction`, `t` float32 of shape `(B,)` (fractional timesteps).
        x_T: Unit Gaussian noise, shape `(B, C, H, W)`; scaled here to $\sigma_0$.
        schedule: The training noise schedule.
        num_inference_steps: $N$ in `[1, T]`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        generator: Random number generator for the churn noise $z$.
        timestep_spacing: `"linspace"`, `"leading"` or `"trailing"` (sets $\sigma_\text{min}$, $\sigma_\text{max}$).
        s_churn: $S_\text{churn} \ge 0$, how much noise to add back.
        s_tmin: $S_\text{tmin}$, lowest $\sigma$ that gets churn.
        s_tmax: $S_\text{tmax}$, highest $\sigma$ that gets churn.
        s_noise: $S_\text{noise}$, scale of the added noise.
        clip_sample: Clip $\hat x_0$ to `[-clip_sample_range, clip_sample_range]`.
        clip_sample_range: Bound for the clipping.

    Yields:
        `(t, x_next, x0_hat)` after each step.
    """
    check_sampler_args(model, x_T, schedule, prediction_type, generator)
    check_sampler_options(timestep_spacing, clip_sample, clip_sample_range)
    check.real("s_churn", s_churn, ge=0)
    check.real("s_tmin", s_tmin, ge=0)
    check.real("s_tmax", s_tmax, ge=0, finite=False)
    check.real("s_noise", s_noise, ge=0)
    sigmas, timesteps = karras_timesteps(
        schedule.alpha_bar, num_inference_steps, timestep_spacing
    )
    # 1. x_0 ~ N(0, sigma_0^2 I) (Algorithm 1, line 1)
    x = x_T * _initial_sigma(sigmas, timestep_spacing)
    for i, t in enumerate(timesteps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        # 2. churn: gamma_i > 0 raises the noise level to \hat\sigma_i
        # (Algorithm 2, line 4)
        gamma = (
            min(s_churn / num_inference_steps, 2**0.5 - 1)
            if s_tmin <= sigma <= s_tmax
            else 0.0
        )
        sigma_hat = sigma * (gamma + 1)
        # S_noise z, z ~ N(0, I), drawn only when there is churn (Algorithm 2, line 5)
        z = gaussian_noise(x, generator) * s_noise if gamma > 0 else torch.zeros_like(x)
        x, x0_hat = euler_step(
            model,
            x,
            t,
            sigma,
            sigma_hat,
            sigma_next,
            z,
            prediction_type=prediction_type,
            clip_sample=clip_sample,
            clip_sample_range=clip_sample_range,
        )
        yield t, x, x0_hat


# --8<-- [end:euler]


def euler_sample(
    model: Model,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    **options,
) -> torch.Tensor:
    """Run `euler_sample_progressive` to the end (same arguments) and return $x_0$, shape `(B, C, H, W)`."""
    for _, x, _ in euler_sample_progressive(
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


# --8<-- [start:heun]
@torch.no_grad()
def heun_sample_progressive(
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
) -> Iterator[Step]:
    r"""Heun's second-order method on the Karras sigmas (Karras et al. 2022, Algorithm 1).

    An Euler step to $\sigma_{i+1}$, then a correction with the average of the slopes at both ends
    (the trapezoidal rule); the last step, to $\sigma_N = 0$, stays a plain Euler step:

    $$d_i = \frac{x_i - D(x_i; \sigma_i)}{\sigma_i},\quad
    \tilde x_{i+1} = x_i + (\sigma_{i+1} - \sigma_i)\,d_i,\quad
    x_{i+1} = x_i + (\sigma_{i+1} - \sigma_i)\,\tfrac12\left(d_i + \frac{\tilde x_{i+1} - D(\tilde x_{i+1}; \sigma_{i+1})}{\sigma_{i+1}}\right)$$

    $2N - 1$ network evaluations. Same as `diffusers.HeunDiscreteScheduler(use_karras_sigmas=True)`.

    Args:
        model: `model(x, t) -> prediction`, `t` float32 of shape `(B,)` (fractional timesteps).
        x_T: Unit Gaussian noise, shape `(B, C, H, W)`; scaled here to $\sigma_0$.
        schedule: The training noise schedule.
        num_inference_steps: $N$ in `[1, T]`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        generator: Unused (Heun is deterministic); accepted for the common sampler signature.
        timestep_spacing: `"linspace"`, `"leading"` or `"trailing"`.
        clip_sample: Clip $\hat x_0$ to `[-clip_sample_range, clip_sample_range]`.
        clip_sample_range: Bound for the clipping.

    Yields:
        `(t, x_next, x0_hat)` after each step.
    """
    check_sampler_args(model, x_T, schedule, prediction_type, generator)
    check_sampler_options(timestep_spacing, clip_sample, clip_sample_range)
    sigmas, timesteps = karras_timesteps(
        schedule.alpha_bar, num_inference_steps, timestep_spacing
    )
    # 1. x_0 ~ N(0, sigma_0^2 I) (Algorithm 1, line 1)
    x = x_T * _initial_sigma(sigmas, timestep_spacing)
    for i, t in enumerate(timesteps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        # 2. Euler step from sigma_i to sigma_{i+1} (Algorithm 1, lines 3-5)
        model_output = model(x / (sigma**2 + 1) ** 0.5, t.expand(x.shape[0]))
        x0_hat = denoise(model_output, x, sigma, prediction_type)
        if clip_sample:
            x0_hat = x0_hat.clamp(-clip_sample_range, clip_sample_range)
        d = (x - x0_hat) / sigma
        x_next = x + d * (sigma_next - sigma)
        # 3. second-order correction unless sigma_{i+1} = 0 (Algorithm 1, lines 6-8)
        if sigma_next > 0:
            model_output = model(
                x_next / (sigma_next**2 + 1) ** 0.5, timesteps[i + 1].expand(x.shape[0])
            )
            x0_hat = denoise(model_output, x_next, sigma_next, prediction_type)
            if clip_sample:
                x0_hat = x0_hat.clamp(-clip_sample_range, clip_sample_range)
            d_next = (x_next - x0_hat) / sigma_next
            x_next = x + (d + d_next) / 2 * (sigma_next - sigma)
        x = x_next
        yield t, x, x0_hat


# --8<-- [end:heun]


def heun_sample(
    model: Model,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    **options,
) -> torch.Tensor:
    """Run `heun_sample_progressive` to the end (same arguments) and return $x_0$, shape `(B, C, H, W)`."""
    for _, x, _ in heun_sample_progressive(
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
