r"""Guidance by any differentiable loss: the course's "colour guidance", on the amount of ink.

The Hugging Face Diffusion Models Course (Unit 2, "Fine-tuning and Guidance") steers a sampler
with a loss on the image instead of a classifier: before each DDIM step, nudge $x_t$ down the
gradient of a loss $L$,

$$x_t \leftarrow x_t - s\,\nabla_{x_t} L, \qquad
  x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t-1}}\;\hat\epsilon .$$

The question is what $L$ is computed on:

* `gradient_through="x0"` (the course's way): on the network's estimate $\hat x_0(x_t)$ of the
  final image, so the gradient is taken through the network; one backward pass per step.
* `gradient_through="x_t"`: on $x_t$ itself; no backward pass through the network, but $x_t$ is
  mostly noise at high $t$, so the loss measures the wrong image.

The loss here is `ink_loss`: the squared gap between the mean brightness of a digit (its amount of
ink, in $[0, 1]$) and a target: more ink means thicker strokes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from snippets import check
from snippets.forward import check_sampler_args, predict_x0_and_eps
from snippets.schedules import NoiseSchedule, inference_timesteps

GRADIENT_THROUGH = ("x0", "x_t")


# --8<-- [start:ink-loss]
def ink(x: torch.Tensor) -> torch.Tensor:
    r"""Amount of ink of each image: its mean brightness $\frac{1}{N}\sum_i (x_i + 1)/2 \in [0, 1]$.

    Args:
        x: Images, shape `(B, C, H, W)`, in `[-1, 1]` (white ink on black: -1 is blank).

    Returns:
        Shape `(B,)`.
    """
    check.tensor("x", x, ndim=4)
    return ((x + 1) / 2).mean(dim=(1, 2, 3))


def ink_loss(x: torch.Tensor, target: float) -> torch.Tensor:
    r"""The squared gap to a target amount of ink, $L(x) = (\mathrm{ink}(x) - \text{target})^2$.

    Args:
        x: Images, shape `(B, C, H, W)`, in `[-1, 1]`.
        target: Target amount of ink, in `[0, 1]`.

    Returns:
        One loss per image, shape `(B,)`.
    """
    check.real("target", target, ge=0, le=1)
    return (ink(x) - target) ** 2


# --8<-- [end:ink-loss]


# --8<-- [start:loss-guided-ddim]
@torch.no_grad()
def loss_guided_ddim_sample_progressive(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    guidance_scale: float,
    gradient_through: str = "x0",
    prediction_type: str = "epsilon",
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    r"""DDIM ($\eta = 0$) guided by a loss, as the course's colour guidance.

    Each step: predict, take $g = \nabla_{x_t} L$ with $L$ on $\hat x_0(x_t)$ (through the
    network) or on $x_t$, move $x_t \leftarrow x_t - s\,g$, then take the DDIM step (Song et al.
    2021, Eq. 12) from the moved $x_t$ with the same $\hat\epsilon$. $s = 0$ is exactly
    `snippets.sampling.ddim_sample` with `clip_sample=True` (leading spacing).

    Args:
        model: `model(x_t, t) -> prediction`.
        loss_fn: `loss_fn(images) -> losses` of shape `(B,)`, differentiable (e.g.
            `lambda x: ink_loss(x, 0.4)`).
        x_T: Starting noise, shape `(B, C, H, W)`.
        schedule: The training noise schedule.
        num_inference_steps: $N$ in `[1, T]`.
        guidance_scale: $s \ge 0$.
        gradient_through: `"x0"` (loss on $\hat x_0$, gradient through the network) or `"x_t"`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.

    Yields:
        `(t, x_prev, x0_hat)` after each step.
    """
    check_sampler_args(model, x_T, schedule, prediction_type, None)
    check.instance("loss_fn", loss_fn, Callable)
    check.real("guidance_scale", guidance_scale, ge=0)
    check.one_of("gradient_through", gradient_through, GRADIENT_THROUGH)
    alpha_bar, T = schedule.alpha_bar, schedule.num_train_timesteps
    x = x_T
    for t in inference_timesteps(T, num_inference_steps, "leading"):
        t_batch = t.expand(x.shape[0])
        a_bar_t = alpha_bar[t]
        t_prev = t - T // num_inference_steps
        a_bar_prev = alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
        with torch.enable_grad():
            x = x.detach().requires_grad_(guidance_scale != 0)
            # 1. predict (with the graph when the loss is on x0_hat)
            with torch.set_grad_enabled(
                gradient_through == "x0" and guidance_scale != 0
            ):
                model_output = model(x, t_batch)
                x0_hat, eps_hat = predict_x0_and_eps(
                    model_output, x, t, alpha_bar, prediction_type
                )
            if guidance_scale != 0:
                # 2. the loss on x0_hat or on x_t, and its gradient w.r.t. x_t
                on = x0_hat if gradient_through == "x0" else x
                loss = _losses(loss_fn, on).sum()
                grad = torch.autograd.grad(loss, x)[0]
                # 3. move x_t down the gradient; with eps_hat held, x0_hat moves by
                #    the shift / sqrt(alpha_bar_t) (Eq. 4 solved for x_0)
                shift = -guidance_scale * grad
                x = x.detach() + shift
                x0_hat = x0_hat + shift / a_bar_t.sqrt()
        x0_hat, eps_hat = x0_hat.detach().clamp(-1, 1), eps_hat.detach()
        # 4. the DDIM step from the moved x_t with the same eps_hat (Eq. 12, eta = 0)
        x = a_bar_prev.sqrt() * x0_hat + (1 - a_bar_prev).sqrt() * eps_hat
        yield t, x, x0_hat


# --8<-- [end:loss-guided-ddim]


def loss_guided_ddim_sample(*args, **kwargs) -> torch.Tensor:
    """Run `loss_guided_ddim_sample_progressive` to the end; return $x_0$ `(B, C, H, W)`."""
    for _, x, _ in loss_guided_ddim_sample_progressive(*args, **kwargs):
        pass
    return x


def _losses(loss_fn, images: torch.Tensor) -> torch.Tensor:
    losses = loss_fn(images)
    if not isinstance(losses, torch.Tensor) or losses.shape != (images.shape[0],):
        shape = (
            tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses)
        )
        raise ValueError(
            f"loss_fn must return one loss per image, shape ({images.shape[0]},), "
            f"got {shape}"
        )
    return losses
