r"""Noise schedules: how much noise the forward process adds at each of its $T$ steps.

A schedule is a sequence of variances $\beta_1, \dots, \beta_T$ (Ho et al. 2020, Eq. 2). Everything
else follows from it:

$$\alpha_t = 1 - \beta_t, \qquad \bar\alpha_t = \prod_{s=1}^{t} \alpha_s, \qquad
\mathrm{SNR}(t) = \frac{\bar\alpha_t}{1 - \bar\alpha_t}.$$

The four schedules of `diffusers` (`DDPMScheduler(beta_schedule=...)`) are here, float32 and
bit-for-bit the same, plus the zero-terminal-SNR rescaling of Lin et al. 2024 and the three
ways `diffusers` picks a subset of timesteps for sampling. Code indexes timesteps from 0:
`alpha_bar[t]` for `t` in `[0, T)` is $\bar\alpha_{t+1}$ of the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from snippets import check

SCHEDULE_NAMES = ("linear", "scaled_linear", "cosine", "sigmoid")
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")


# --8<-- [start:beta-schedules]
def linear_betas(
    num_train_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    r"""The linear schedule of DDPM (Ho et al. 2020, Section 4): $\beta_t$ evenly spaced.

    $$\beta_t = \beta_\text{start} + \tfrac{t-1}{T-1}\,(\beta_\text{end} - \beta_\text{start})$$

    Args:
        num_train_timesteps: $T$, the number of diffusion steps.
        beta_start: $\beta_1$ (`1e-4` in the paper).
        beta_end: $\beta_T$ (`0.02` in the paper).

    Returns:
        $\beta$, float32, shape `(T,)`, every value in $(0, 1)$.
    """
    check.integer("num_train_timesteps", num_train_timesteps, ge=1)
    check.real("beta_start", beta_start, gt=0, lt=1)
    check.real("beta_end", beta_end, gt=0, lt=1)
    return torch.linspace(
        beta_start, beta_end, num_train_timesteps, dtype=torch.float32
    )


def scaled_linear_betas(
    num_train_timesteps: int, beta_start: float = 0.00085, beta_end: float = 0.012
) -> torch.Tensor:
    r"""The "scaled linear" schedule of latent diffusion (Rombach et al. 2022): $\sqrt{\beta_t}$ evenly spaced.

    $$\beta_t = \left(\sqrt{\beta_\text{start}} + \tfrac{t-1}{T-1}
    \left(\sqrt{\beta_\text{end}} - \sqrt{\beta_\text{start}}\right)\right)^2$$

    Args:
        num_train_timesteps: $T$.
        beta_start: $\beta_1$ (Stable Diffusion uses `0.00085`).
        beta_end: $\beta_T$ (Stable Diffusion uses `0.012`).

    Returns:
        $\beta$, float32, shape `(T,)`, every value in $(0, 1)$.
    """
    check.integer("num_train_timesteps", num_train_timesteps, ge=1)
    check.real("beta_start", beta_start, gt=0, lt=1)
    check.real("beta_end", beta_end, gt=0, lt=1)
    return (
        torch.linspace(
            beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32
        )
        ** 2
    )


def cosine_betas(
    num_train_timesteps: int, s: float = 0.008, max_beta: float = 0.999
) -> torch.Tensor:
    r"""The cosine schedule of Improved DDPM (Nichol & Dhariwal 2021, Eq. 17), `squaredcos_cap_v2`.

    $$\bar\alpha_t = \frac{f(t)}{f(0)}, \quad f(t) = \cos^2\!\left(\frac{t/T + s}{1 + s}\cdot\frac{\pi}{2}\right),
    \qquad \beta_t = \min\!\left(1 - \frac{\bar\alpha_t}{\bar\alpha_{t-1}},\ 0.999\right)$$

    Args:
        num_train_timesteps: $T$.
        s: Small offset that keeps $\beta_1$ from being tiny (`0.008` in the paper).
        max_beta: Cap on $\beta_t$ that avoids the singularity at $t = T$ (`0.999` in the paper).

    Returns:
        $\beta$, float32, shape `(T,)` (computed in float64, then rounded).
    """
    check.integer("num_train_timesteps", num_train_timesteps, ge=1)
    check.real("s", s, ge=0)
    check.real("max_beta", max_beta, gt=0, le=1)
    t = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return betas.to(torch.float32)


def sigmoid_betas(
    num_train_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    r"""A sigmoid-shaped schedule (as in GeoDiff, Xu et al. 2022): slow start, slow end.

    $$\beta_t = \beta_\text{start} + (\beta_\text{end} - \beta_\text{start})\,
    \mathrm{sigmoid}\!\left(-6 + 12\,\tfrac{t-1}{T-1}\right)$$

    Args:
        num_train_timesteps: $T$.
        beta_start: Lower asymptote of $\beta_t$.
        beta_end: Upper asymptote of $\beta_t$.

    Returns:
        $\beta$, float32, shape `(T,)`, every value in $(0, 1)$.
    """
    check.integer("num_train_timesteps", num_train_timesteps, ge=1)
    check.real("beta_start", beta_start, gt=0, lt=1)
    check.real("beta_end", beta_end, gt=0, lt=1)
    return (
        torch.sigmoid(torch.linspace(-6, 6, num_train_timesteps))
        * (beta_end - beta_start)
        + beta_start
    )


# --8<-- [end:beta-schedules]


# --8<-- [start:zero-terminal-snr]
def rescale_betas_zero_snr(betas: torch.Tensor) -> torch.Tensor:
    r"""Rescale a schedule so that $\bar\alpha_T = 0$ (Lin et al. 2024, Algorithm 1).

    Most schedules leave a little signal at $t = T$ ($\mathrm{SNR}(T) > 0$), yet sampling starts
    from pure noise. Shifting and scaling $\sqrt{\bar\alpha_t}$ keeps $\sqrt{\bar\alpha_1}$ and
    makes $\sqrt{\bar\alpha_T} = 0$:

    $$\sqrt{\bar\alpha_t}\ \leftarrow\ \left(\sqrt{\bar\alpha_t} - \sqrt{\bar\alpha_T}\right)
    \frac{\sqrt{\bar\alpha_1}}{\sqrt{\bar\alpha_1} - \sqrt{\bar\alpha_T}}$$

    The last $\beta$ becomes 1, so an $\epsilon$-prediction model cannot recover $x_0$ at $t = T$;
    pair it with `prediction_type="v_prediction"`.

    Args:
        betas: $\beta$, shape `(T,)`.

    Returns:
        Rescaled $\beta$, shape `(T,)`, with `betas[-1] == 1`.
    """
    check.tensor("betas", betas, ndim=1, gt=0, lt=1)
    check.integer("len(betas)", len(betas), ge=2)
    # 1. \sqrt{\bar\alpha_t} of the original schedule
    sqrt_alpha_bar = torch.cumprod(1.0 - betas, dim=0).sqrt()
    first, last = sqrt_alpha_bar[0].clone(), sqrt_alpha_bar[-1].clone()
    # 2. shift so the last is zero, scale so the first is unchanged
    sqrt_alpha_bar = (sqrt_alpha_bar - last) * (first / (first - last))
    # 3. back to betas: \alpha_t = \bar\alpha_t / \bar\alpha_{t-1}
    alpha_bar = sqrt_alpha_bar**2
    alphas = torch.cat([alpha_bar[0:1], alpha_bar[1:] / alpha_bar[:-1]])
    return 1 - alphas


# --8<-- [end:zero-terminal-snr]


# --8<-- [start:noise-schedule]
@dataclass(frozen=True)
class NoiseSchedule:
    r"""A discrete variance-preserving noise schedule (Ho et al. 2020, Eqs. 2 and 4).

    Attributes:
        betas: $\beta_t$, the variance added at step $t$, float32, shape `(T,)`.
        alphas: $\alpha_t = 1 - \beta_t$, float32, shape `(T,)`.
        alpha_bar: $\bar\alpha_t = \prod_{s=1}^{t} \alpha_s$, float32, shape `(T,)`.
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bar: torch.Tensor

    @property
    def num_train_timesteps(self) -> int:
        """$T$, the number of diffusion steps."""
        return self.betas.shape[0]

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> NoiseSchedule:
        r"""Build a schedule from $\beta$, computing $\alpha$ and $\bar\alpha$.

        Args:
            betas: $\beta_t \in (0, 1]$, shape `(T,)`.

        Raises:
            ValueError: If `betas` is not 1-D or has a value outside `(0, 1]`.
        """
        betas = torch.as_tensor(betas, dtype=torch.float32)
        if betas.ndim != 1 or betas.numel() < 2:
            raise ValueError(
                "betas must be a 1-D tensor with at least 2 entries, got shape "
                f"{tuple(betas.shape)}"
            )
        if not bool(((betas > 0) & (betas <= 1)).all()):
            raise ValueError(
                "every entry of betas must lie in (0, 1]; a variance of 0 or above 1 "
                "is not a diffusion step"
            )
        # \alpha_t = 1 - \beta_t
        alphas = 1.0 - betas
        # \bar\alpha_t = \prod_{s=1}^{t} \alpha_s
        alpha_bar = torch.cumprod(alphas, dim=0)
        return cls(betas=betas, alphas=alphas, alpha_bar=alpha_bar)

    @classmethod
    def from_name(
        cls,
        name: str,
        num_train_timesteps: int = 1000,
        beta_start: float | None = None,
        beta_end: float | None = None,
        rescale_zero_terminal_snr: bool = False,
    ) -> NoiseSchedule:
        r"""Build one of the named schedules, equal to `diffusers.DDPMScheduler(beta_schedule=...)`.

        Args:
            name: `"linear"`, `"scaled_linear"`, `"cosine"` (diffusers' `"squaredcos_cap_v2"`)
                or `"sigmoid"`. The cosine schedule ignores `beta_start` and `beta_end`.
            num_train_timesteps: $T \ge 2$.
            beta_start: $\beta_1$ for the linear-type schedules; `None` takes the named
                schedule's own default, so that one name means one schedule: `1e-4` for
                `"linear"` and `"sigmoid"` (DDPM's), `0.00085` for `"scaled_linear"` (Stable
                Diffusion's; diffusers' `DDPMScheduler` defaults to `1e-4` for every name, so pass
                it `beta_start=0.00085, beta_end=0.012` to get the same schedule).
            beta_end: $\beta_T$ likewise: `0.02`, or `0.012` for `"scaled_linear"`.
            rescale_zero_terminal_snr: Rescale to $\bar\alpha_T = 0$ (Lin et al. 2024).

        Raises:
            ValueError: For an unknown name or a bad number of timesteps or betas.
        """
        check.integer("num_train_timesteps", num_train_timesteps, ge=2)
        check.boolean("rescale_zero_terminal_snr", rescale_zero_terminal_snr)
        # the betas given; the others keep the named schedule's defaults
        beta_range = {"beta_start": beta_start, "beta_end": beta_end}
        beta_range = {k: v for k, v in beta_range.items() if v is not None}
        if name == "linear":
            betas = linear_betas(num_train_timesteps, **beta_range)
        elif name == "scaled_linear":
            betas = scaled_linear_betas(num_train_timesteps, **beta_range)
        elif name in ("cosine", "squaredcos_cap_v2"):
            betas = cosine_betas(num_train_timesteps)
        elif name == "sigmoid":
            betas = sigmoid_betas(num_train_timesteps, **beta_range)
        else:
            raise ValueError(
                f"unknown noise schedule name {name!r}; choose one of "
                f"{', '.join(SCHEDULE_NAMES)}"
            )
        if rescale_zero_terminal_snr:
            betas = rescale_betas_zero_snr(betas)
        return cls.from_betas(betas)


# --8<-- [end:noise-schedule]


# --8<-- [start:snr]
def snr(alpha_bar: torch.Tensor) -> torch.Tensor:
    r"""Signal-to-noise ratio of $x_t$ (Kingma et al. 2021, Eq. 2 in VP form).

    $$\mathrm{SNR}(t) = \frac{\bar\alpha_t}{1 - \bar\alpha_t}$$

    Args:
        alpha_bar: $\bar\alpha_t$, any shape.

    Returns:
        $\mathrm{SNR}$ with the shape of `alpha_bar` (`inf` where $\bar\alpha_t = 1$, 0 where it is 0).
    """
    check.tensor("alpha_bar", alpha_bar, ge=0, le=1)
    return alpha_bar / (1 - alpha_bar)


# --8<-- [end:snr]


# --8<-- [start:timestep-spacing]
def inference_timesteps(
    num_train_timesteps: int, num_inference_steps: int, spacing: str = "leading"
) -> torch.Tensor:
    r"""The decreasing subset of training timesteps a sampler visits (Lin et al. 2024, Table 2).

    With $T$ training steps and $N$ sampling steps:

    * `"leading"` (DDIM, Stable Diffusion): $t_i = i \lfloor T/N \rfloor$ — never visits $t = T-1$;
    * `"trailing"`: $t_i = \mathrm{round}(T - i\,T/N) - 1$ — starts at $T - 1$, the pure-noise end;
    * `"linspace"`: $N$ evenly spaced values from $T - 1$ down to $0$, rounded.

    The same rules as the `set_timesteps` of every `diffusers` scheduler (with `steps_offset=0`),
    always $N$ distinct timesteps. For `"trailing"`, diffusers' `np.arange(T, 0, -T/N)` takes one
    step too many for some $N$ (62 of the 1000 values at $T = 1000$, e.g. $N = 61$), where
    rounding leaves the last value just above 0, and so appends a timestep $-1$; here the list
    stops at $N$ values, which are diffusers' first $N$ timesteps.

    Args:
        num_train_timesteps: $T$.
        num_inference_steps: $N$, between 1 and $T$.
        spacing: `"leading"`, `"trailing"` or `"linspace"`.

    Returns:
        int64 timesteps in `[0, T)`, decreasing, shape `(N,)`.

    Raises:
        ValueError: If $N$ is not in `[1, T]` or `spacing` is unknown.
    """
    T, N = num_train_timesteps, num_inference_steps
    check.integer("num_train_timesteps", T, ge=1)
    check.integer("num_inference_steps", N, ge=1, le=T)
    check.one_of("spacing", spacing, TIMESTEP_SPACINGS)
    if spacing == "linspace":
        timesteps = np.linspace(0, T - 1, N).round()[::-1]
    elif spacing == "leading":
        timesteps = (np.arange(N) * (T // N))[::-1]
    else:  # "trailing"; np.arange can give one value too many (then -1): keep N
        timesteps = np.round(np.arange(T, 0, -T / N)[:N]) - 1
    return torch.from_numpy(timesteps.astype(np.int64))


# --8<-- [end:timestep-spacing]


# --8<-- [start:sigma-from-alpha-bar]
def sigma_from_alpha_bar(alpha_bar: torch.Tensor) -> torch.Tensor:
    r"""The noise level $\sigma_t$ of the same process written in "variance exploding" form (Karras et al. 2022, Table 1).

    Dividing $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ by $\sqrt{\bar\alpha_t}$
    gives $x_t / \sqrt{\bar\alpha_t} = x_0 + \sigma_t\,\epsilon$ with

    $$\sigma_t = \sqrt{\frac{1 - \bar\alpha_t}{\bar\alpha_t}} = \mathrm{SNR}(t)^{-1/2}.$$

    With a zero-terminal-SNR schedule $\sigma_T$ would be infinite; like `diffusers`, the last
    $\bar\alpha$ is then replaced by $2^{-24}$.

    Args:
        alpha_bar: $\bar\alpha$, shape `(T,)`.

    Returns:
        $\sigma_t$, increasing in $t$, shape `(T,)`.
    """
    check.tensor("alpha_bar", alpha_bar, ndim=1, ge=0, le=1)
    if alpha_bar[-1] == 0:
        alpha_bar = torch.cat([alpha_bar[:-1], alpha_bar.new_tensor([2.0**-24])])
    return ((1 - alpha_bar) / alpha_bar) ** 0.5


# --8<-- [end:sigma-from-alpha-bar]
