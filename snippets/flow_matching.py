r"""Flow matching and rectified flow (Lipman et al. 2022, arXiv 2210.02747; Liu et al. 2022, arXiv 2209.03003).

Instead of a noise schedule, draw a straight line between a data point and a noise sample and
train a network to predict the *velocity* along it. Sampling integrates that velocity with an ODE
solver; the straighter the paths, the fewer steps it needs.

**Which end is noise.** The two conventions in use run time in opposite directions:

| | noise at | data at | path | velocity target |
|---|---|---|---|---|
| `"diffusers"` (SD3, Flux, `FlowMatchEulerDiscreteScheduler`) | $t = 1$ | $t = 0$ | $x_t = (1 - t)\,x_0 + t\,\epsilon$ | $v = \epsilon - x_0$ |
| `"paper"` (Lipman et al., Liu et al.) | $t = 0$ | $t = 1$ | $x_t = t\,x_1 + (1 - (1 - \sigma_\text{min})\,t)\,x_0$ | $u = x_1 - (1 - \sigma_\text{min})\,x_0$ |

In the paper column $x_0$ is the noise and $x_1$ the data; in the diffusers column $x_0$ is the
data and $\epsilon$ the noise. Here every function takes `data` and `noise` by name, so the roles
never depend on a subscript. In diffusers $t$ is called `sigma` (`scheduler.sigmas`), and the
network is given `timestep = sigma * num_train_timesteps`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from snippets import check

CONVENTIONS = ("diffusers", "paper")


# --8<-- [start:path]
def flow_path(
    data: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    convention: str = "diffusers",
    sigma_min: float = 0.0,
) -> torch.Tensor:
    r"""A point on the straight path between data and noise (Lipman et al. 2022, Eq. 22; Liu et al. 2022, Eq. 1).

    $$\text{diffusers:}\ \ x_t = (1 - t)\,x_\text{data} + t\,\epsilon
    \qquad
    \text{paper:}\ \ \psi_t = t\,x_\text{data} + \big(1 - (1 - \sigma_\text{min})\,t\big)\,\epsilon$$

    Args:
        data: Clean data, shape `(B, C, H, W)`.
        noise: Standard normal noise $\epsilon$, same shape.
        t: Times in `[0, 1]`, shape `(B,)`; `t = 1` is noise for `"diffusers"`, data for `"paper"`.
        convention: `"diffusers"` or `"paper"`.
        sigma_min: Lipman's $\sigma_\text{min} \ge 0$, the width left around the data at
            $t = 1$ (`"paper"` only; 0 gives rectified flow).

    Returns:
        $x_t$, shape `(B, C, H, W)`.
    """
    t = _check(data, noise, t, convention, sigma_min)
    if convention == "diffusers":
        return (1 - t) * data + t * noise
    return t * data + (1 - (1 - sigma_min) * t) * noise


# --8<-- [end:path]


# --8<-- [start:velocity]
def velocity_target(
    data: torch.Tensor,
    noise: torch.Tensor,
    convention: str = "diffusers",
    sigma_min: float = 0.0,
) -> torch.Tensor:
    r"""The conditional velocity $\mathrm{d}x_t/\mathrm{d}t$ along `flow_path` (Lipman et al. 2022).

    In the papers' convention it is Lipman's conditional field (Eq. 21) evaluated on the path,
    i.e. the time derivative $\mathrm{d}\psi_t/\mathrm{d}t$ of the flow of Eq. 22:

    $$\text{diffusers:}\ \ v = \epsilon - x_\text{data}
    \qquad
    \text{paper:}\ \ u_t = x_\text{data} - (1 - \sigma_\text{min})\,\epsilon$$

    It does not depend on $t$: the path is a straight line travelled at constant speed.

    Args:
        data: Clean data, shape `(B, C, H, W)`.
        noise: Standard normal noise, same shape.
        convention: `"diffusers"` or `"paper"`.
        sigma_min: Lipman's $\sigma_\text{min}$ (`"paper"` only).

    Returns:
        The regression target, shape `(B, C, H, W)`.
    """
    _check(data, noise, None, convention, sigma_min)
    if convention == "diffusers":
        return noise - data
    return data - (1 - sigma_min) * noise


# --8<-- [end:velocity]


# --8<-- [start:loss]
def flow_matching_loss(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: torch.Tensor,
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    num_train_timesteps: int = 1000,
) -> torch.Tensor:
    r"""The conditional flow-matching loss in diffusers' convention (Lipman et al. 2022).

    Lipman's Eq. 23 with $\sigma_\text{min} = 0$ and time reversed; Eq. 23 is the OT-path instance
    of the generic conditional flow-matching loss, Eq. 9.

    $$\mathcal{L}_\text{CFM} = \mathbb{E}_{t \sim \mathcal{U}[0,1],\,x_\text{data},\,\epsilon}
    \big\lVert v_\theta(x_t, t) - (\epsilon - x_\text{data}) \big\rVert^2$$

    Args:
        model: Velocity network, called as `model(x_t, t * num_train_timesteps)` (the timestep
            diffusers gives the network), e.g. the project's `UNet`.
        data: Clean data, shape `(B, C, H, W)`.
        t: Times in `[0, 1]`, shape `(B,)`; uniform if omitted.
        noise: Standard normal noise with the shape of `data`; drawn if omitted.
        generator: Random number generator for what is omitted.
        num_train_timesteps: Scale from $t \in [0, 1]$ to the network's timestep (1000 in diffusers).

    Returns:
        The scalar mean squared error.
    """
    check.instance("model", model, Callable)
    check.tensor("data", data, ndim=4)
    check.integer("num_train_timesteps", num_train_timesteps, ge=1)
    check.generator("generator", generator)
    if t is None:
        t = torch.rand(data.shape[0], generator=generator).to(data.device)
    if noise is None:
        noise = torch.randn(data.shape, generator=generator, dtype=data.dtype).to(
            data.device
        )
    # 1. x_t on the straight line, 2. its velocity, 3. regress
    x_t = flow_path(data, noise, t)
    target = velocity_target(data, noise)
    return ((model(x_t, t * num_train_timesteps) - target) ** 2).mean()


# --8<-- [end:loss]


# --8<-- [start:sigmas]
def shift_sigmas(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    r"""Spend more steps at high noise: the timestep shift of SD3 (Esser et al. 2024, arXiv 2403.03206, Eq. 23).

    $$t' = \frac{s\,t}{1 + (s - 1)\,t}$$

    Args:
        sigmas: Times $t \in [0, 1]$ (diffusers convention), any shape.
        shift: $s > 0$; 1 leaves `sigmas` unchanged, $s > 1$ moves them toward noise.
    """
    check.tensor("sigmas", sigmas, ge=0, le=1)
    check.real("shift", shift, gt=0)
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def flow_match_sigmas(
    num_inference_steps: int, num_train_timesteps: int = 1000, shift: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The sampling times of `diffusers.FlowMatchEulerDiscreteScheduler.set_timesteps`.

    $N$ times evenly spaced from 1 down to $t_\text{min}$, shifted by `shift_sigmas`, then a final 0.
    diffusers takes $t_\text{min}$ as the *already shifted* smallest training time
    $\text{shift}(1/T)$ and shifts again; this reproduces that exactly.

    Args:
        num_inference_steps: $N \ge 1$.
        num_train_timesteps: $T$, the number of training timesteps (1000).
        shift: The SD3 shift $s$ (1 for plain rectified flow, 3 for SD3).

    Returns:
        `(sigmas, timesteps)`: float32 times of shape `(N + 1,)` ending in 0, and the network
        timesteps `sigmas[:-1] * T`, shape `(N,)`.
    """
    check.integer("num_inference_steps", num_inference_steps, ge=1)
    check.integer("num_train_timesteps", num_train_timesteps, ge=1)
    check.real("shift", shift, gt=0)
    T = num_train_timesteps
    # the smallest training time 1/T, shifted as the scheduler's __init__ does (float32
    # like diffusers)
    t_min = shift_sigmas(torch.tensor(1.0 / T, dtype=torch.float32), shift).item()
    # N evenly spaced times from 1 to t_min, shifted (in float64, like diffusers), then
    # float32
    sigmas = torch.linspace(1.0, t_min, num_inference_steps, dtype=torch.float64)
    sigmas = shift_sigmas(sigmas, shift).to(torch.float32)
    return torch.cat([sigmas, torch.zeros(1)]), sigmas * T


# --8<-- [end:sigmas]


# --8<-- [start:euler-sampler]
def flow_sample_progressive(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    num_inference_steps: int,
    shift: float = 1.0,
    num_train_timesteps: int = 1000,
    sigmas: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    r"""Euler integration of the learned ODE from noise ($t = 1$) to data ($t = 0$), yielding each step.

    $$x_{t_{i+1}} = x_{t_i} + (t_{i+1} - t_i)\,v_\theta(x_{t_i}, t_i)$$

    (Liu et al. 2022, Eq. 1 integrated with Euler; `FlowMatchEulerDiscreteScheduler.step`.)

    Args:
        model: Velocity network `model(x_t, timestep)`, `timestep = t * num_train_timesteps`, shape `(B,)`.
        noise: $x_1 = \epsilon$, shape `(B, C, H, W)`.
        num_inference_steps: $N$, the number of Euler steps.
        shift: The SD3 shift (see `flow_match_sigmas`).
        num_train_timesteps: $T$.
        sigmas: Custom decreasing times $1 \ge t_0 > \dots > t_N \ge 0$, shape `(N + 1,)`,
            used as given: they override `num_inference_steps`, and `shift` must stay 1
            (shift them with `shift_sigmas` first).

    Yields:
        $x_{t_1}, \dots, x_{t_N}$; the last is the sample.
    """
    check.instance("model", model, Callable)
    check.tensor("noise", noise)
    check.real("shift", shift, gt=0)
    if sigmas is None:
        sigmas, _ = flow_match_sigmas(num_inference_steps, num_train_timesteps, shift)
    elif shift != 1.0:
        raise ValueError(
            f"shift={shift} cannot be combined with explicit sigmas, which are used as "
            "given; shift them first with shift_sigmas(sigmas, shift)"
        )
    check.tensor("sigmas", sigmas, ndim=1)
    check.integer("num_train_timesteps", num_train_timesteps, ge=1)
    if sigmas.ndim != 1 or len(sigmas) < 2 or bool((sigmas[1:] >= sigmas[:-1]).any()):
        raise ValueError(
            "sigmas must be a strictly decreasing 1-D tensor with at least 2 values"
        )
    elif sigmas[0] > 1 or sigmas[-1] < 0:
        raise ValueError(
            f"sigmas must lie in [0, 1], got [{sigmas[-1].item()}, {sigmas[0].item()}]"
        )
    x = noise
    batch = noise.shape[0]
    for i in range(len(sigmas) - 1):
        t, t_next = sigmas[i].item(), sigmas[i + 1].item()
        # 1. velocity at the current point
        v = model(x, torch.full((batch,), t * num_train_timesteps, device=x.device))
        # 2. Euler step toward data (t_next < t)
        x = x + (t_next - t) * v
        yield x


def flow_sample(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    num_inference_steps: int,
    **options: Any,
) -> torch.Tensor:
    r"""Run `flow_sample_progressive` to the end and return the sample at $t = 0$.

    Args:
        model: Velocity network.
        noise: Standard normal noise, shape `(B, C, H, W)`.
        num_inference_steps: Number of Euler steps.
        **options: `shift`, `num_train_timesteps`, `sigmas`.
    """
    x = None
    for x in flow_sample_progressive(model, noise, num_inference_steps, **options):
        pass
    return x


# --8<-- [end:euler-sampler]


# --8<-- [start:conversions]
def paper_time(t_diffusers: torch.Tensor) -> torch.Tensor:
    r"""Convert diffusers' time (1 = noise) to the papers' time (1 = data): $t_\text{paper} = 1 - t$."""
    check.tensor("t_diffusers", t_diffusers, ge=0, le=1)
    return 1 - t_diffusers


def paper_velocity(v_diffusers: torch.Tensor) -> torch.Tensor:
    r"""Convert diffusers' velocity $\epsilon - x_\text{data}$ to the papers' $x_\text{data} - \epsilon$ (time runs the other way)."""
    check.tensor("v_diffusers", v_diffusers)
    return -v_diffusers


def predict_x0_from_velocity(
    v: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    r"""Recover the data estimate from a velocity (diffusers convention): $\hat x_\text{data} = x_t - t\,v$.

    Args:
        v: Predicted velocity, shape `(B, C, H, W)`.
        x_t: Current point, same shape.
        t: Times in `[0, 1]`, shape `(B,)`.
    """
    check.same_shape("v", check.tensor("v", v), "x_t", check.tensor("x_t", x_t))
    check.tensor("t", t, shape=(x_t.shape[0],), ge=0, le=1)
    return x_t - t.reshape(-1, *([1] * (x_t.ndim - 1))) * v


# --8<-- [end:conversions]


def _check(data, noise, t, convention, sigma_min):
    check.tensor("data", data)
    check.tensor("noise", noise)
    check.real("sigma_min", sigma_min, ge=0, lt=1)
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if data.shape != noise.shape:
        raise ValueError(
            f"data and noise must have the same shape, got {tuple(data.shape)} and {tuple(noise.shape)}"
        )
    if not 0.0 <= sigma_min < 1.0:
        raise ValueError(f"sigma_min must be in [0, 1), got {sigma_min}")
    if sigma_min and convention == "diffusers":
        raise ValueError(
            "sigma_min is part of Lipman's path; use convention='paper' with it"
        )
    if t is None:
        return None
    t = torch.as_tensor(t, dtype=data.dtype, device=data.device)
    check.tensor("t", t, shape=(data.shape[0],), ge=0, le=1)
    return t.reshape(-1, *([1] * (data.ndim - 1)))
