r"""The forward (noising) process.

Two ways to destroy an image, as in Unit 1 of the Hugging Face Diffusion Models Course:
the course's from-scratch linear mix with uniform noise (`corrupt`) and the Gaussian
closed form of DDPM (`q_sample`, Ho et al. 2020, Eq. 4). Then what a sampler needs to run the
process backwards: the posterior $q(x_{t-1} \mid x_t, x_0)$ (Eqs. 6-7) and the conversions
between the three things a network can be trained to predict: the noise $\epsilon$, the clean
image $x_0$ (`"sample"`) and the velocity $v$ (Salimans & Ho 2022).

Timesteps are 0-based as in `diffusers`: `t` in `[0, T)`, and `alpha_bar[t]` is
$\bar\alpha_{t+1}$ of the paper.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from snippets import check
from snippets.schedules import TIMESTEP_SPACINGS, NoiseSchedule

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def broadcast_at(
    values: torch.Tensor, t: torch.Tensor | int, x: torch.Tensor
) -> torch.Tensor:
    r"""Look up `values[t]` and shape it to broadcast against a batch `x`.

    The one place that checks timesteps: integer, inside `[0, len(values))`, and either one per
    batch element or a single one for the whole batch. Nothing is clipped or wrapped.

    Args:
        values: A per-timestep table such as $\bar\alpha$, shape `(T,)`.
        t: Integer timesteps, shape `(B,)`, `(1,)` or `()`; a Python `int` is accepted.
        x: The batch the result multiplies, shape `(B, ...)`.

    Returns:
        `values[t]` in the dtype and on the device of `x`, shape `(B or 1, 1, ..., 1)`.

    Raises:
        ValueError: If `t` is not integer, does not match the batch size, or is out of range.
    """
    check.tensor("values", values, dtype=None, ndim=1)
    check.tensor("x", x, dtype=None, finite=False)
    t = torch.as_tensor(t, device=values.device)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise check.ArgumentTypeError(
            f"timesteps t must be integers, got dtype {t.dtype}"
        )
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, x.shape[0])):
        raise ValueError(
            f"timesteps t of shape {tuple(t.shape)} do not broadcast against x of shape {tuple(x.shape)}; "
            f"pass one timestep per batch element, shape ({x.shape[0]},), or a single one"
        )
    T = values.shape[0]
    t_min, t_max = (int(v) for v in torch.aminmax(t)) if t.numel() else (0, 0)
    if t_min < 0 or t_max >= T:
        raise ValueError(
            f"timesteps t must lie in [0, {T}), got values from {t_min} to {t_max}"
        )
    return values[t].to(x.device, x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


# --8<-- [start:corrupt]
def corrupt(
    x: torch.Tensor,
    amount: torch.Tensor,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The course's from-scratch corruption: mix each image with uniform noise.

    "Diffusion Models from Scratch" (Hugging Face Diffusion Models Course, Unit 1) blends an image
    linearly towards noise $u \sim \mathcal{U}[0, 1)$, by an amount $a \in [0, 1]$ per image:

    $$x_\text{noisy} = (1 - a)\,x + a\,u$$

    $a = 0$ keeps the image, $a = 1$ returns pure noise. Unlike DDPM this is not variance
    preserving and the noise is not Gaussian; the course uses it to motivate the real thing.

    Args:
        x: Images, shape `(B, C, H, W)` (the course uses values in `[0, 1]`).
        amount: $a$, one value per image in `[0, 1]`, shape `(B,)`.
        noise: $u$ with the shape of `x`; drawn uniformly in `[0, 1)` with `generator` if omitted.
        generator: Random number generator used when `noise` is omitted.

    Returns:
        The corrupted images, shape `(B, C, H, W)`.

    Raises:
        TypeError: If `x`, `amount` or `noise` is not a floating-point tensor.
        ValueError: If `amount` is not shape `(B,)`, is NaN or lies outside `[0, 1]`.
    """
    check.tensor("x", x, ndim=4)
    check.tensor("amount", amount, shape=(x.shape[0],), ge=0, le=1)
    check.generator("generator", generator)
    if noise is None:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    check.same_shape("noise", check.tensor("noise", noise), "x", x)
    amount = amount.reshape(-1, *([1] * (x.ndim - 1)))  # (B,) -> (B, 1, 1, 1)
    return x * (1 - amount) + noise * amount


# --8<-- [end:corrupt]


def gaussian_noise(
    x: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Standard normal noise shaped like `x`, drawn on the generator's device and moved to `x`'s.

    Drawing where the generator lives (the CPU for `torch.Generator()`) makes a seed give the same
    noise whether `x` is on a CPU or a GPU, as diffusers' `randn_tensor` does.

    Args:
        x: Any tensor; the noise gets its shape, dtype and device.
        generator: Random number generator, or `None` for the global one.

    Returns:
        $\epsilon \sim \mathcal{N}(0, I)$, same shape as `x`.
    """
    check.tensor("x", x, finite=False)
    check.generator("generator", generator)
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(
        x.device
    )


# --8<-- [start:q-sample]
def q_sample(
    x0: torch.Tensor,
    t: torch.Tensor,
    alpha_bar: torch.Tensor,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Sample $x_t \sim q(x_t \mid x_0)$ in closed form (Ho et al. 2020, Eq. 4).

    $$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,
    \qquad \epsilon \sim \mathcal{N}(0, I)$$

    Args:
        x0: Clean images, shape `(B, C, H, W)`, values in `[-1, 1]`.
        t: Integer timesteps, shape `(B,)`, in `[0, T)`.
        alpha_bar: Cumulative products $\bar\alpha_t = \prod_{s=1}^{t} \alpha_s$, shape `(T,)`.
        noise: $\epsilon$ with the shape of `x0`; drawn with `generator` if omitted.
        generator: Random number generator used when `noise` is omitted.

    Returns:
        The noised images $x_t$, shape `(B, C, H, W)`.
    """
    check.tensor("x0", x0)
    check.tensor("alpha_bar", alpha_bar, ndim=1, ge=0, le=1)
    if noise is None:
        noise = gaussian_noise(x0, generator)
    check.same_shape("noise", check.tensor("noise", noise), "x0", x0)
    # \bar\alpha_t, reshaped to broadcast over (C, H, W)
    a_bar = broadcast_at(alpha_bar, t, x0)
    return a_bar.sqrt() * x0 + (1 - a_bar).sqrt() * noise


# --8<-- [end:q-sample]


# --8<-- [start:q-posterior]
def q_posterior_mean_variance(
    x0: torch.Tensor,
    x_t: torch.Tensor,
    t: torch.Tensor,
    alpha_bar: torch.Tensor,
    t_prev: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean and variance of the posterior $q(x_{t-1} \mid x_t, x_0)$ (Ho et al. 2020, Eqs. 6-7).

    $$\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t}\,x_0
    + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\,x_t,
    \qquad
    \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\,\beta_t$$

    To jump over skipped steps (sampling with fewer steps than training) pass `t_prev`: the
    same formulas hold with $\alpha_t = \bar\alpha_t / \bar\alpha_{t'}$ and $\beta_t = 1 - \alpha_t$
    for the earlier step $t'$. Step `-1` stands for clean data, $\bar\alpha = 1$.

    Args:
        x0: (Predicted) clean images, shape `(B, C, H, W)`.
        x_t: Noisy images at step `t`, shape `(B, C, H, W)`.
        t: Integer timesteps in `[0, T)`, shape `(B,)` or `()`.
        alpha_bar: $\bar\alpha$, shape `(T,)`.
        t_prev: Earlier timesteps in `[-1, t)`, shape like `t`; `t - 1` if omitted.

    Returns:
        `(mean, variance)`: $\tilde\mu_t$ with the shape of `x_t`, and $\tilde\beta_t$ of shape
        `(B or 1, 1, 1, 1)`.
    """
    check.tensor("x0", x0)
    check.tensor("x_t", x_t)
    check.same_shape("x0", x0, "x_t", x_t)
    check.tensor("alpha_bar", alpha_bar, ndim=1, ge=0, le=1)
    t = check.tensor("t", torch.as_tensor(t), dtype="int")
    t_prev = t - 1 if t_prev is None else torch.as_tensor(t_prev)
    check.tensor("t_prev", t_prev, dtype="int", ge=-1, lt=len(alpha_bar))
    if bool((t_prev >= t).any()):
        raise ValueError(
            f"t_prev must be earlier than t, got t_prev={t_prev} and t={t}"
        )
    a_bar_t = broadcast_at(alpha_bar, t, x_t)
    # \bar\alpha_{-1} = 1: pad the table with a leading 1 and shift the index by one
    a_bar_prev = broadcast_at(F.pad(alpha_bar, (1, 0), value=1.0), t_prev + 1, x_t)
    # \alpha_t and \beta_t of the (possibly strided) step t' -> t
    alpha_t = a_bar_t / a_bar_prev
    beta_t = 1 - alpha_t
    # Eq. 7: the posterior mean, a mix of x_0 and x_t
    mean = (a_bar_prev.sqrt() * beta_t / (1 - a_bar_t)) * x0 + (
        alpha_t.sqrt() * (1 - a_bar_prev) / (1 - a_bar_t)
    ) * x_t
    # Eq. 7: the posterior variance \tilde\beta_t
    variance = (1 - a_bar_prev) / (1 - a_bar_t) * beta_t
    return mean, variance


# --8<-- [end:q-posterior]


def check_prediction_type(prediction_type: str) -> None:
    """Raise a `ValueError` unless `prediction_type` is one of `PREDICTION_TYPES`."""
    if not isinstance(prediction_type, str) or prediction_type not in PREDICTION_TYPES:
        raise ValueError(
            f"unknown prediction_type {prediction_type!r}; choose one of {', '.join(PREDICTION_TYPES)}"
        )


def check_sampler_args(
    model: Callable,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    prediction_type: str,
    generator: torch.Generator | None,
) -> None:
    """The checks every sampler on a `NoiseSchedule` starts with, each naming its argument.

    Raises:
        TypeError: For a `model` that is not callable, an `x_T` that is not a floating-point
            tensor, a `schedule` that is not a `NoiseSchedule` or a `generator` that is not a
            `torch.Generator`.
        ValueError: For a non-finite `x_T` or an unknown `prediction_type`.
    """
    check.instance("model", model, Callable)
    check.tensor("x_T", x_T)
    check.instance("schedule", schedule, NoiseSchedule)
    check_prediction_type(prediction_type)
    check.generator("generator", generator)


def check_step_args(
    model: Callable, x: torch.Tensor, noise: torch.Tensor, prediction_type: str
) -> None:
    """The checks every sampler's step function starts with, each naming its argument.

    Raises:
        TypeError: For a `model` that is not callable, or an `x` or `noise` that is not a
            floating-point tensor.
        ValueError: For a non-finite `x` or `noise`, a `noise` of another shape than `x`, or
            an unknown `prediction_type`.
    """
    check.instance("model", model, Callable)
    check.tensor("x", x)
    check.same_shape("noise", check.tensor("noise", noise), "x", x)
    check_prediction_type(prediction_type)


def check_sampler_options(
    timestep_spacing: str, clip_sample: bool, clip_sample_range: float
) -> None:
    """The checks of the options every sampler on a `NoiseSchedule` shares.

    Raises:
        TypeError: For a `clip_sample` that is not a bool.
        ValueError: For an unknown `timestep_spacing` or a `clip_sample_range` that is not a
            positive finite number.
    """
    check.one_of("timestep_spacing", timestep_spacing, TIMESTEP_SPACINGS)
    check.boolean("clip_sample", clip_sample)
    check.real("clip_sample_range", clip_sample_range, gt=0)


# --8<-- [start:targets]
def training_target(
    x0: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    alpha_bar: torch.Tensor,
    prediction_type: str = "epsilon",
) -> torch.Tensor:
    r"""What the network regresses onto for a given `prediction_type` (diffusers' names).

    * `"epsilon"`: the noise $\epsilon$ (Ho et al. 2020, Eq. 14);
    * `"sample"`: the clean image $x_0$;
    * `"v_prediction"`: the velocity (Salimans & Ho 2022, Section 4)
      $v_t = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1 - \bar\alpha_t}\,x_0$.

    Args:
        x0: Clean images, shape `(B, C, H, W)`.
        noise: The $\epsilon$ used to make $x_t$ with `q_sample`, shape `(B, C, H, W)`.
        t: Integer timesteps in `[0, T)`, shape `(B,)`.
        alpha_bar: $\bar\alpha$, shape `(T,)`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.

    Returns:
        The target, shape `(B, C, H, W)`.
    """
    check_prediction_type(prediction_type)
    check.tensor("x0", x0)
    check.same_shape("noise", check.tensor("noise", noise), "x0", x0)
    check.tensor("alpha_bar", alpha_bar, ndim=1, ge=0, le=1)
    a_bar = broadcast_at(alpha_bar, t, x0)
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return x0
    # v = \sqrt{\bar\alpha_t} \epsilon - \sqrt{1 - \bar\alpha_t} x_0
    return a_bar.sqrt() * noise - (1 - a_bar).sqrt() * x0


def predict_x0_and_eps(
    model_output: torch.Tensor,
    x_t: torch.Tensor,
    t: torch.Tensor,
    alpha_bar: torch.Tensor,
    prediction_type: str = "epsilon",
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Turn a network output into estimates of both $x_0$ and $\epsilon$.

    Inverting Eq. 4 of Ho et al. 2020, $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$:

    * from $\hat\epsilon$: $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon) / \sqrt{\bar\alpha_t}$ (Eq. 15);
    * from $\hat x_0$: $\hat\epsilon = (x_t - \sqrt{\bar\alpha_t}\,\hat x_0) / \sqrt{1-\bar\alpha_t}$;
    * from $\hat v$: $\hat x_0 = \sqrt{\bar\alpha_t}\,x_t - \sqrt{1-\bar\alpha_t}\,\hat v$ and
      $\hat\epsilon = \sqrt{\bar\alpha_t}\,\hat v + \sqrt{1-\bar\alpha_t}\,x_t$ (Salimans & Ho 2022).

    Args:
        model_output: The network's prediction, shape `(B, C, H, W)`.
        x_t: The noisy input it saw, shape `(B, C, H, W)`.
        t: Integer timesteps in `[0, T)`, shape `(B,)` or `()`.
        alpha_bar: $\bar\alpha$, shape `(T,)`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.

    Returns:
        `(x0_hat, eps_hat)`, each shape `(B, C, H, W)`.
    """
    check_prediction_type(prediction_type)
    check.tensor("x_t", x_t)
    check.tensor("model_output", model_output)
    check.same_shape("model_output", model_output, "x_t", x_t)
    check.tensor("alpha_bar", alpha_bar, ndim=1, ge=0, le=1)
    a_bar = broadcast_at(alpha_bar, t, x_t)
    sqrt_a_bar, sqrt_one_minus_a_bar = a_bar.sqrt(), (1 - a_bar).sqrt()
    if prediction_type == "epsilon":
        eps_hat = model_output
        x0_hat = (x_t - sqrt_one_minus_a_bar * eps_hat) / sqrt_a_bar
    elif prediction_type == "sample":
        x0_hat = model_output
        eps_hat = (x_t - sqrt_a_bar * x0_hat) / sqrt_one_minus_a_bar
    else:
        x0_hat = sqrt_a_bar * x_t - sqrt_one_minus_a_bar * model_output
        eps_hat = sqrt_a_bar * model_output + sqrt_one_minus_a_bar * x_t
    return x0_hat, eps_hat


# --8<-- [end:targets]
