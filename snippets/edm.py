r"""EDM: the design space of diffusion models (Karras et al. 2022, arXiv 2206.00364).

EDM writes every diffusion model as a *denoiser* $D(x; \sigma)$ of data corrupted by Gaussian
noise of standard deviation $\sigma$, $x = y + n$, $n \sim \mathcal{N}(0, \sigma^2 I)$, and the
sampler as the probability-flow ODE (Eq. 1 with $s(t) = 1$, $\sigma(t) = t$)

$$\frac{\mathrm{d}x}{\mathrm{d}\sigma} = \frac{x - D(x; \sigma)}{\sigma}.$$

This module holds the four pieces the paper tunes:

* the *preconditioning* that wraps a raw network $F_\theta$ into $D_\theta$ (Eq. 7, Table 1),
* the training loss with its weighting $\lambda(\sigma)$ and $\ln\sigma \sim \mathcal{N}(P_\text{mean}, P_\text{std}^2)$ (Eq. 2, 8, Table 1),
* the time steps $\sigma_i$ with $\rho = 7$ (Eq. 5),
* the Heun sampler with optional "churn" (Algorithm 2).

Everything is in the variance-exploding form of the paper: $x_i$ has standard deviation
$\sqrt{\sigma_\text{data}^2 + \sigma_i^2}$, not one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from snippets import check


# --8<-- [start:karras-sigmas]
def karras_sigmas(
    num_steps: int,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
) -> torch.Tensor:
    r"""The EDM time steps (Karras et al. 2022, Eq. 5), with $\sigma_N = 0$ appended.

    $$\sigma_{i<N} = \left(\sigma_\text{max}^{1/\rho} + \tfrac{i}{N-1}
    \left(\sigma_\text{min}^{1/\rho} - \sigma_\text{max}^{1/\rho}\right)\right)^{\rho},
    \qquad \sigma_N = 0$$

    $\rho = 7$ packs the steps near $\sigma_\text{min}$, where the ODE curves most.

    Args:
        num_steps: $N \ge 1$, the number of steps (and of $\sigma_i > 0$).
        sigma_min: $\sigma_\text{min} > 0$ (0.002 in the paper).
        sigma_max: $\sigma_\text{max} > \sigma_\text{min}$ (80 in the paper).
        rho: $\rho > 0$ (7 in the paper; $\rho = 1$ gives uniform steps).

    Returns:
        Decreasing float32 noise levels $\sigma_0 = \sigma_\text{max}, \dots,
        \sigma_{N-1} = \sigma_\text{min}, \sigma_N = 0$, shape `(N + 1,)`.
    """
    check.integer("num_steps", num_steps, ge=1)
    check.real("sigma_min", sigma_min, gt=0)
    check.real("sigma_max", sigma_max, gt=sigma_min)
    check.real("rho", rho, gt=0)
    # i / (N - 1), computed in float64 like the reference code;
    # a single step sits at sigma_max
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    # Eq. 5: interpolate linearly in sigma^(1/rho), then raise to rho
    sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)]).to(torch.float32)


# --8<-- [end:karras-sigmas]


# --8<-- [start:preconditioning]
def edm_preconditioning(
    sigma: torch.Tensor, sigma_data: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The scalings $c_\text{skip}, c_\text{out}, c_\text{in}, c_\text{noise}$ (Karras et al. 2022, Table 1).

    $$c_\text{skip}(\sigma) = \frac{\sigma_\text{data}^2}{\sigma^2 + \sigma_\text{data}^2},\quad
    c_\text{out}(\sigma) = \frac{\sigma\,\sigma_\text{data}}{\sqrt{\sigma^2 + \sigma_\text{data}^2}},\quad
    c_\text{in}(\sigma) = \frac{1}{\sqrt{\sigma^2 + \sigma_\text{data}^2}},\quad
    c_\text{noise}(\sigma) = \tfrac14 \ln \sigma$$

    They make the network's input and its training target unit-variance at every $\sigma$
    (Appendix B.6 of the paper).

    Args:
        sigma: Noise levels $\sigma > 0$, any shape (e.g. `(B,)` or `(B, 1, 1, 1)`).
        sigma_data: $\sigma_\text{data} > 0$, the standard deviation of the data (0.5 in the paper).

    Returns:
        `(c_skip, c_out, c_in, c_noise)`, each with the shape of `sigma`.
    """
    check.real("sigma_data", sigma_data, gt=0)
    sigma = check.tensor("sigma", torch.as_tensor(sigma), dtype="real", gt=0)
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / (sigma**2 + sigma_data**2).sqrt()
    c_in = 1 / (sigma**2 + sigma_data**2).sqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


# --8<-- [end:preconditioning]


# --8<-- [start:denoiser]
class Denoiser(nn.Module):
    r"""The preconditioned denoiser $D_\theta(x; \sigma)$ (Karras et al. 2022, Eq. 7).

    $$D_\theta(x; \sigma) = c_\text{skip}(\sigma)\,x
    + c_\text{out}(\sigma)\,F_\theta\big(c_\text{in}(\sigma)\,x;\ c_\text{noise}(\sigma)\big)$$

    Args:
        net: The raw network $F_\theta$, called as `net(x, c_noise)` (or with
            `class_labels=` when labels are given), e.g. the project's `UNet`.
        sigma_data: $\sigma_\text{data}$, the standard deviation of the training data.
    """

    def __init__(self, net: nn.Module, sigma_data: float = 0.5) -> None:
        super().__init__()
        check.instance("net", net, Callable)
        check.real("sigma_data", sigma_data, gt=0)
        self.net = net
        self.sigma_data = sigma_data

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        class_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r"""Denoise `x` (shape `(B, C, H, W)`) at noise levels `sigma` (shape `(B,)` or scalar, > 0)."""
        check.tensor("x", x, ndim=4)
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        sigma = sigma.expand(x.shape[0]) if sigma.ndim == 0 else sigma
        check.tensor("sigma", sigma, shape=(x.shape[0],), gt=0)
        if class_labels is not None:
            check.tensor(
                "class_labels", class_labels, dtype="int", shape=(len(x),), ge=0
            )
        c_skip, c_out, c_in, c_noise = edm_preconditioning(
            sigma.reshape(-1, 1, 1, 1), self.sigma_data
        )
        kwargs = {} if class_labels is None else {"class_labels": class_labels}
        # Eq. 7: F sees a unit-variance input and a log-noise "time"
        F_x = self.net(c_in * x, c_noise.flatten(), **kwargs)
        return c_skip * x + c_out * F_x


# --8<-- [end:denoiser]


# --8<-- [start:training]
def sample_training_sigma(
    batch_size: int,
    P_mean: float = -1.2,
    P_std: float = 1.2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Draw training noise levels, $\ln\sigma \sim \mathcal{N}(P_\text{mean}, P_\text{std}^2)$ (Karras et al. 2022, Table 1).

    Args:
        batch_size: How many $\sigma$ to draw.
        P_mean: Mean of $\ln\sigma$ (-1.2 in the paper).
        P_std: Standard deviation of $\ln\sigma$ (1.2 in the paper), > 0.
        generator: Random number generator.

    Returns:
        Noise levels, shape `(batch_size,)`.
    """
    check.integer("batch_size", batch_size, ge=1)
    check.real("P_mean", P_mean)
    check.real("P_std", P_std, gt=0)
    check.generator("generator", generator)
    return (torch.randn(batch_size, generator=generator) * P_std + P_mean).exp()


def loss_weight(sigma: torch.Tensor, sigma_data: float = 0.5) -> torch.Tensor:
    r"""The loss weighting $\lambda(\sigma) = 1 / c_\text{out}(\sigma)^2$ (Karras et al. 2022, Table 1).

    $$\lambda(\sigma) = \frac{\sigma^2 + \sigma_\text{data}^2}{(\sigma\,\sigma_\text{data})^2}$$

    Args:
        sigma: Noise levels $\sigma > 0$, any shape.
        sigma_data: $\sigma_\text{data} > 0$.
    """
    check.tensor("sigma", sigma, dtype="real", gt=0)
    check.real("sigma_data", sigma_data, gt=0)
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def edm_loss(
    denoiser: Denoiser,
    x0: torch.Tensor,
    sigma: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    class_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The EDM training loss (Karras et al. 2022, Eq. 2 with the weighting of Table 1).

    $$\mathcal{L} = \mathbb{E}_{\sigma, y, n}\Big[\lambda(\sigma)\,
    \big\lVert D_\theta(y + n; \sigma) - y \big\rVert_2^2\Big]$$

    Because $\lambda = 1/c_\text{out}^2$ this equals the plain MSE of the raw network against its
    effective target (Eq. 8), see `raw_network_target`.

    Args:
        denoiser: The preconditioned model $D_\theta$.
        x0: Clean data $y$, shape `(B, C, H, W)`.
        sigma: Noise levels, shape `(B,)`; drawn with `sample_training_sigma` if omitted.
        noise: Standard normal noise with the shape of `x0` (scaled by $\sigma$ here); drawn if omitted.
        generator: Random number generator for what is omitted.
        class_labels: Optional integer labels, shape `(B,)`, $\ge 0$, passed to the network.

    Returns:
        The scalar loss (mean over batch and pixels).
    """
    check.instance("denoiser", denoiser, Denoiser)
    check.tensor("x0", x0, ndim=4)
    if sigma is None:
        sigma = sample_training_sigma(x0.shape[0], generator=generator).to(x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    check.tensor("sigma", sigma, shape=(x0.shape[0],), gt=0)
    check.same_shape("noise", check.tensor("noise", noise), "x0", x0)
    if class_labels is not None:
        check.tensor("class_labels", class_labels, dtype="int", shape=(len(x0),), ge=0)
    s = sigma.reshape(-1, 1, 1, 1)
    # 1. corrupt: x = y + n, n ~ N(0, sigma^2 I)
    x = x0 + s * noise
    # 2. Eq. 2 weighted by lambda(sigma)
    return (
        loss_weight(s, denoiser.sigma_data)
        * (denoiser(x, sigma, class_labels) - x0) ** 2
    ).mean()


def raw_network_target(
    x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, sigma_data: float = 0.5
) -> torch.Tensor:
    r"""The effective regression target of the raw network $F_\theta$ (Karras et al. 2022, Eq. 8).

    $$F_\text{target} = \frac{1}{c_\text{out}(\sigma)}\big(y - c_\text{skip}(\sigma)\,(y + n)\big)$$

    Args:
        x0: Clean data $y$, shape `(B, C, H, W)`.
        noise: Standard normal noise, shape of `x0` ($n = \sigma \cdot$ `noise`).
        sigma: Noise levels, shape `(B,)`.
        sigma_data: $\sigma_\text{data}$.
    """
    check.tensor("x0", x0, ndim=4)
    check.same_shape("noise", check.tensor("noise", noise), "x0", x0)
    check.tensor("sigma", sigma, shape=(x0.shape[0],), gt=0)
    s = sigma.reshape(-1, 1, 1, 1)
    c_skip, c_out, _, _ = edm_preconditioning(s, sigma_data)
    return (x0 - c_skip * (x0 + s * noise)) / c_out


# --8<-- [end:training]


# --8<-- [start:heun-sampler]
def edm_sample_progressive(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    S_churn: float = 0.0,
    S_tmin: float = 0.0,
    S_tmax: float = float("inf"),
    S_noise: float = 1.0,
    second_order: bool = True,
    generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:
    r"""The EDM stochastic sampler (Karras et al. 2022, Algorithm 2), yielding every $x_{i+1}$.

    With `S_churn=0` it is the deterministic Heun sampler of Algorithm 1; with
    `second_order=False` it is Euler's method (what `diffusers.EDMEulerScheduler` does).

    Args:
        denoiser: $D(x; \sigma)$, called as `denoiser(x, sigma)` with `sigma` of shape `(B,)`.
        noise: Standard normal noise, shape `(B, C, H, W)`; sampling starts from
            $x_0 = \sigma_0 \cdot$ `noise` $\sim \mathcal{N}(0, \sigma_0^2 I)$.
        sigmas: Decreasing noise levels $\sigma_0 > \dots > \sigma_N \ge 0$, shape `(N + 1,)`
            (e.g. from `karras_sigmas`).
        S_churn: Total amount of added noise $S_\text{churn} \ge 0$.
        S_tmin: Churn is applied only when $\sigma_i \in [S_\text{tmin}, S_\text{tmax}]$.
        S_tmax: See `S_tmin`.
        S_noise: Standard deviation of the churn noise (slightly above 1 in the paper).
        generator: Random number generator for the churn noise.

    Yields:
        $x_1, \dots, x_N$, each of shape `(B, C, H, W)`; the last one is the sample.
    """
    check.instance("denoiser", denoiser, Callable)
    check.tensor("noise", noise)
    _check_sigmas(sigmas)
    check.real("S_churn", S_churn, ge=0)
    check.real("S_tmin", S_tmin, ge=0)
    check.real("S_tmax", S_tmax, ge=0, finite=False)
    check.real("S_noise", S_noise, ge=0)
    check.boolean("second_order", second_order)
    check.generator("generator", generator)
    N = len(sigmas) - 1
    batch = noise.shape[0]
    # 1. x_0 ~ N(0, sigma_0^2 I)
    x = noise * sigmas[0]
    for i in range(N):
        sigma, sigma_next = sigmas[i].item(), sigmas[i + 1].item()
        # 2. gamma_i = min(S_churn / N, sqrt(2) - 1) if S_tmin <= sigma_i <= S_tmax
        gamma = min(S_churn / N, math.sqrt(2) - 1) if S_tmin <= sigma <= S_tmax else 0.0
        # 3. raise the noise level: sigma_hat = sigma_i + gamma sigma_i, x_hat = x_i +
        # sqrt(sigma_hat^2 - sigma_i^2) eps
        sigma_hat = sigma * (gamma + 1)
        if gamma > 0:
            eps = (
                torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
                * S_noise
            )
            x = x + (sigma_hat**2 - sigma**2) ** 0.5 * eps
        # 4. Euler step: d_i = (x_hat - D(x_hat; sigma_hat)) / sigma_hat
        d = (
            x - denoiser(x, torch.full((batch,), sigma_hat, device=x.device))
        ) / sigma_hat
        x_next = x + (sigma_next - sigma_hat) * d
        # 5. second-order correction, unless the next sigma is 0
        if second_order and sigma_next != 0:
            d_prime = (
                x_next
                - denoiser(x_next, torch.full((batch,), sigma_next, device=x.device))
            ) / sigma_next
            x_next = x + (sigma_next - sigma_hat) * (0.5 * d + 0.5 * d_prime)
        x = x_next
        yield x


def edm_sample(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    **options: Any,
) -> torch.Tensor:
    r"""Run `edm_sample_progressive` to the end and return the sample $x_N$ (Karras et al. 2022, Alg. 2).

    Args:
        denoiser: $D(x; \sigma)$.
        noise: Standard normal noise, shape `(B, C, H, W)`.
        sigmas: Noise levels, shape `(N + 1,)`.
        **options: `S_churn`, `S_tmin`, `S_tmax`, `S_noise`, `second_order`, `generator`.
    """
    x = None
    for x in edm_sample_progressive(denoiser, noise, sigmas, **options):
        pass
    return x


# --8<-- [end:heun-sampler]


# --8<-- [start:vp-bridge]
def alpha_bar_from_sigma(sigma: torch.Tensor) -> torch.Tensor:
    r"""The DDPM $\bar\alpha$ of an EDM noise level (Karras et al. 2022, Table 1, VP column).

    The inverse of `snippets.schedules.sigma_from_alpha_bar`, $\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha}$:

    $$\bar\alpha = \frac{1}{1 + \sigma^2}$$

    Args:
        sigma: Noise levels $\sigma \ge 0$, any shape.
    """
    check.tensor("sigma", sigma, ge=0)
    return 1 / (1 + sigma**2)


def score_from_denoiser(
    denoised: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    r"""The score of the noised data from a denoiser output (Karras et al. 2022, Eq. 3; Song et al. 2021).

    $$\nabla_x \log p(x; \sigma) = \frac{D(x; \sigma) - x}{\sigma^2}$$

    Args:
        denoised: $D(x; \sigma)$, shape `(B, C, H, W)`.
        x: The noisy input, same shape.
        sigma: Noise levels $> 0$, shape `(B,)`.
    """
    check.same_shape("denoised", check.tensor("denoised", denoised), "x", x)
    check.tensor("x", x)
    check.tensor("sigma", sigma, shape=(x.shape[0],), gt=0)
    return (denoised - x) / sigma.reshape(-1, *([1] * (x.ndim - 1))) ** 2


# --8<-- [end:vp-bridge]


def _check_sigmas(sigmas: torch.Tensor) -> None:
    check.tensor("sigmas", sigmas, ndim=1, ge=0)
    if sigmas.ndim != 1 or len(sigmas) < 2:
        raise ValueError(
            f"sigmas must be 1-D with at least 2 values (sigma_0 ... sigma_N), got shape {tuple(sigmas.shape)}"
        )
    if bool((sigmas[:-1] <= 0).any()) or sigmas[-1] < 0:
        raise ValueError("sigmas must be positive, except the last one which may be 0")
    if bool((sigmas[1:] >= sigmas[:-1]).any()):
        raise ValueError("sigmas must be strictly decreasing")
