r"""Interpolating between two noises: spherical (`slerp`) versus linear (`lerp`).

A sample of $\mathcal{N}(0, I_d)$ in high dimension lies, with overwhelming probability, near the
sphere of radius $\sqrt{d}$: $\lVert\epsilon\rVert^2$ is a sum of $d$ squares of mean 1, so
$\lVert\epsilon\rVert \approx \sqrt{d}$ with a spread of about $1/\sqrt{2}$. Two independent noises
are also nearly orthogonal, so the midpoint of the straight line between them has norm
$\approx \sqrt{d/2}$: a noise a sampler never saw in training, which it turns into a washed-out,
low-contrast image. Spherical interpolation (Shoemake 1985; used for GAN and diffusion latents
since White 2016, "Sampling Generative Networks") follows the great circle instead and keeps the
norm.
"""

from __future__ import annotations

import torch

from snippets import check

__all__ = ["lerp", "slerp"]


def _check_pair(x0: torch.Tensor, x1: torch.Tensor, alpha: float) -> None:
    check.tensor("x0", x0)
    check.tensor("x1", x1)
    check.same_shape("x1", x1, "x0", x0)
    check.real("alpha", alpha, ge=0, le=1)


def lerp(x0: torch.Tensor, x1: torch.Tensor, alpha: float) -> torch.Tensor:
    r"""Linear interpolation $(1 - \alpha)\,x_0 + \alpha\,x_1$.

    For independent standard Gaussian $x_0, x_1$ the result has variance
    $(1 - \alpha)^2 + \alpha^2$ per coordinate: $1/2$ at $\alpha = 1/2$, so its norm shrinks by
    $\approx 1/\sqrt{2}$.

    Args:
        x0: The first tensor, any shape.
        x1: The second, same shape.
        alpha: $\alpha \in [0, 1]$; 0 gives `x0`, 1 gives `x1`.

    Returns:
        The interpolant, shape of `x0`.

    Raises:
        TypeError: If `x0` or `x1` is not a floating-point tensor.
        ValueError: If the shapes differ, an input is not finite, or `alpha` is outside
            `[0, 1]` or NaN.
    """
    _check_pair(x0, x1, alpha)
    return (1 - alpha) * x0 + alpha * x1


def slerp(
    x0: torch.Tensor, x1: torch.Tensor, alpha: float, dot_threshold: float = 0.9995
) -> torch.Tensor:
    r"""Spherical linear interpolation, per batch element (Shoemake 1985).

    With $\theta$ the angle between $x_0$ and $x_1$ (each batch element flattened),

    $$\mathrm{slerp}(x_0, x_1; \alpha) = \frac{\sin((1-\alpha)\,\theta)}{\sin\theta}\,x_0
    + \frac{\sin(\alpha\,\theta)}{\sin\theta}\,x_1 .$$

    For two vectors of the same norm the result keeps that norm. When the two are nearly parallel
    ($|\cos\theta| >$ `dot_threshold`) $\sin\theta \approx 0$ and `lerp` is used instead, as
    diffusers' community pipelines do.

    Args:
        x0: The first batch, shape `(B, ...)`.
        x1: The second, same shape.
        alpha: $\alpha \in [0, 1]$; 0 gives `x0`, 1 gives `x1`.
        dot_threshold: Above this $|\cos\theta|$, fall back to `lerp`.

    Returns:
        The interpolant, shape of `x0`.

    Raises:
        TypeError: If `x0` or `x1` is not a floating-point tensor.
        ValueError: If the shapes differ, an input is not finite, has no batch dimension or an
            all-zero element, `alpha` is outside `[0, 1]` or NaN, or `dot_threshold` is not in
            `(0, 1]`.
    """
    _check_pair(x0, x1, alpha)
    if x0.ndim < 2:  # one flattened vector per batch element
        raise ValueError(f"x0 must have shape (B, ...), got {tuple(x0.shape)}")
    check.real("dot_threshold", dot_threshold, gt=0, le=1)
    a, b = x0.flatten(1).double(), x1.flatten(1).double()
    for name, v in (("x0", a), ("x1", b)):
        if bool((v.norm(dim=1) == 0).any()):
            raise ValueError(f"{name} holds an all-zero element: it has no direction")
    # --8<-- [start:slerp-body]
    # 1. the angle between each pair: cos(theta) = <x0, x1> / (|x0| |x1|)
    cos_theta = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    theta = torch.arccos(cos_theta.clamp(-1.0, 1.0))
    # 2. the weights sin((1 - alpha) theta) / sin(theta) and sin(alpha theta) / sin(theta)
    w0 = torch.sin((1 - alpha) * theta) / torch.sin(theta)
    w1 = torch.sin(alpha * theta) / torch.sin(theta)
    # 3. nearly parallel: sin(theta) ~ 0, the straight line is as good and stable
    parallel = cos_theta.abs() > dot_threshold
    w0 = torch.where(parallel, torch.full_like(w0, 1 - alpha), w0)
    w1 = torch.where(parallel, torch.full_like(w1, alpha), w1)
    out = w0[:, None] * a + w1[:, None] * b
    # --8<-- [end:slerp-body]
    return out.reshape(x0.shape).to(x0.dtype)
