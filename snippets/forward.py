r"""The forward (noising) process.

Two ways to destroy an image, as in Unit 1 of the Hugging Face Diffusion Models Course:
the course's from-scratch linear mix with uniform noise (`corrupt`) and the Gaussian
closed form of DDPM (`q_sample`, Ho et al. 2020, Eq. 4).
"""

from __future__ import annotations

import torch


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
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    # \bar\alpha_t, reshaped to broadcast over (C, H, W)
    a_bar = alpha_bar.to(x0.device, x0.dtype)[t].reshape(-1, *([1] * (x0.ndim - 1)))
    return a_bar.sqrt() * x0 + (1 - a_bar).sqrt() * noise
# --8<-- [end:q-sample]
