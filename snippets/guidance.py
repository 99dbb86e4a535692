r"""Classifier-free guidance (Ho & Salimans 2022, arXiv 2207.12598).

One network is trained both with and without its condition (the label is replaced by a "null"
label with probability $p_\text{uncond}$, Algorithm 1 of the paper). At sampling time the two
predictions are extrapolated away from the unconditional one (Eq. 6 of the paper):

$$\tilde\epsilon_\theta(z_\lambda, c) = (1 + w)\,\epsilon_\theta(z_\lambda, c) - w\,\epsilon_\theta(z_\lambda)$$

Two conventions for the strength are in use, and they differ by one:

* **paper** (`convention="paper"`): the guidance *strength* $w \ge 0$; $w = 0$ is the plain
  conditional model.
* **diffusers** (`convention="diffusers"`, the default here, as in every diffusers pipeline and in
  Imagen): the guidance *scale* $s = 1 + w$, written
  $\tilde\epsilon = \epsilon_u + s\,(\epsilon_c - \epsilon_u)$; $s = 1$ is the plain conditional
  model and $s = 0$ the unconditional one.

`cfg_model` wraps a class-conditional network `model(x, t, class_labels=...)` into a plain
`model(x, t)` callable, so that every sampler of `snippets.sampling` can use it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from snippets import check

CONVENTIONS = ("diffusers", "paper")


# --8<-- [start:drop-labels]
def drop_labels(
    class_labels: torch.Tensor,
    p_uncond: float,
    null_label: int,
    generator: torch.Generator | None = None,
    drop_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Replace labels by the null label with probability $p_\text{uncond}$ (Ho & Salimans 2022, Alg. 1).

    $$c \leftarrow \varnothing \ \text{with probability}\ p_\text{uncond}$$

    Training on these labels teaches one network both $\epsilon_\theta(z_\lambda, c)$ and the
    unconditional $\epsilon_\theta(z_\lambda) = \epsilon_\theta(z_\lambda, \varnothing)$.

    Args:
        class_labels: Integer labels, shape `(B,)`, in `[0, null_label)`.
        p_uncond: Probability of dropping a label, in `[0, 1]` (the paper uses 0.1 or 0.2).
        null_label: The label that means "no condition" (the project's `UNet` uses `num_classes`).
        generator: Random number generator used when `drop_mask` is omitted.
        drop_mask: Boolean mask, shape `(B,)`, `True` where the label is dropped; drawn if omitted.

    Returns:
        The labels with the dropped ones set to `null_label`, shape `(B,)`.
    """
    check.real("p_uncond", p_uncond, ge=0, le=1)
    _check_labels(class_labels, null_label)
    check.generator("generator", generator)
    if drop_mask is None:
        drop_mask = torch.rand(class_labels.shape, generator=generator) < p_uncond
    elif drop_mask.shape != class_labels.shape or drop_mask.dtype != torch.bool:
        raise ValueError(
            f"drop_mask must be a bool tensor of shape {tuple(class_labels.shape)}, "
            f"got {drop_mask.dtype} of shape {tuple(drop_mask.shape)}"
        )
    # c <- null with probability p_uncond
    return torch.where(
        drop_mask.to(class_labels.device),
        torch.full_like(class_labels, null_label),
        class_labels,
    )


# --8<-- [end:drop-labels]


# --8<-- [start:guided-prediction]
def guided_prediction(
    pred_cond: torch.Tensor,
    pred_uncond: torch.Tensor,
    guidance_scale: float,
    convention: str = "diffusers",
) -> torch.Tensor:
    r"""Combine conditional and unconditional predictions (Ho & Salimans 2022, Eq. 6).

    $$\text{paper:}\quad \tilde\epsilon = (1 + w)\,\epsilon_c - w\,\epsilon_u
    \qquad\qquad
    \text{diffusers:}\quad \tilde\epsilon = \epsilon_u + s\,(\epsilon_c - \epsilon_u),\ \ s = 1 + w$$

    The weights sum to one, so the same combination is correct for any prediction that is an
    affine function of $\epsilon$ with the same coefficients for both branches ($x_0$, $v$,
    EDM's $D(x;\sigma)$, a flow-matching velocity).

    Args:
        pred_cond: The conditional prediction $\epsilon_\theta(z, c)$, any shape.
        pred_uncond: The unconditional prediction $\epsilon_\theta(z, \varnothing)$, same shape.
        guidance_scale: $s$ for `convention="diffusers"`, $w$ for `convention="paper"`.
        convention: `"diffusers"` or `"paper"` (see the module docstring).

    Returns:
        The guided prediction $\tilde\epsilon$, same shape as `pred_cond`.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    check.tensor("pred_cond", pred_cond)
    check.tensor("pred_uncond", pred_uncond)
    check.real("guidance_scale", guidance_scale)
    if pred_cond.shape != pred_uncond.shape:
        raise ValueError(
            "pred_cond and pred_uncond must have the same shape, got "
            f"{tuple(pred_cond.shape)} "
            f"and {tuple(pred_uncond.shape)}"
        )
    if convention == "paper":
        # Eq. 6: (1 + w) eps_c - w eps_u
        w = guidance_scale
        return (1 + w) * pred_cond - w * pred_uncond
    # diffusers / Imagen: eps_u + s (eps_c - eps_u)
    s = guidance_scale
    return pred_uncond + s * (pred_cond - pred_uncond)


# --8<-- [end:guided-prediction]


# --8<-- [start:cfg-model]
def cfg_model(
    model: Callable[..., torch.Tensor],
    class_labels: torch.Tensor,
    guidance_scale: float,
    null_label: int,
    convention: str = "diffusers",
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    r"""Turn a class-conditional network into a guided `model(x, t)` (Ho & Salimans 2022, Alg. 2).

    Each call runs the network once on a doubled batch, conditional half first (labels $c$),
    unconditional half second (labels $\varnothing$), exactly as diffusers pipelines do, then
    combines the halves with `guided_prediction`. When guidance is off ($s = 1$, i.e. $w = 0$)
    only the conditional half is computed.

    Args:
        model: Network called as `model(x, t, class_labels=labels)`, e.g. the project's `UNet`
            built with `num_classes`, or an EDM `Denoiser`.
        class_labels: Integer labels, shape `(B,)`, in `[0, null_label)`: one per sample.
        guidance_scale: $s$ (`"diffusers"`) or $w$ (`"paper"`).
        null_label: The label the network was trained with for "no condition".
        convention: `"diffusers"` or `"paper"`.

    Returns:
        A callable `guided(x, t)` with `x` of shape `(B, C, H, W)` and `t` of shape `(B,)`
        (or a scalar tensor), returning the guided prediction of shape `(B, C, H, W)`.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    check.instance("model", model, Callable)
    check.real("guidance_scale", guidance_scale)
    _check_labels(class_labels, null_label)
    config = getattr(model, "config", None)
    if isinstance(config, dict) and "num_classes" in config:
        if config["num_classes"] is None:
            raise ValueError(
                "model is unconditional (config num_classes=None): classifier-free "
                "guidance needs a class-conditional model trained with label dropout"
            )
        if config["num_classes"] != null_label:
            raise ValueError(
                f"null_label={null_label} but the model's null label is its "
                f"num_classes={config['num_classes']}"
            )
    guidance_off = guidance_scale == (1.0 if convention == "diffusers" else 0.0)
    null_labels = torch.full_like(class_labels, null_label)

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check.tensor("x", x, ndim=4)
        if len(x) != len(class_labels):
            raise ValueError(
                f"x is a batch of {len(x)} but cfg_model was built for "
                f"{len(class_labels)} labels"
            )
        t = check.timesteps("t", t, len(x), x.device)
        labels = class_labels.to(x.device)
        if guidance_off:
            return model(x, t, class_labels=labels)
        # 1. one forward pass on [x, x] with labels [c, null]
        pred = model(
            torch.cat([x, x]),
            torch.cat([t, t]),
            class_labels=torch.cat([labels, null_labels.to(x.device)]),
        )
        # 2. split the halves and extrapolate away from the unconditional one, Eq. 6
        pred_cond, pred_uncond = pred.chunk(2)
        return guided_prediction(pred_cond, pred_uncond, guidance_scale, convention)

    return guided


# --8<-- [end:cfg-model]


def _check_labels(class_labels: torch.Tensor, null_label: int) -> None:
    check.tensor("class_labels", class_labels, dtype="int")
    if class_labels.ndim != 1:
        raise ValueError(
            f"class_labels must be a 1-D tensor of shape (B,), got {tuple(class_labels.shape)}"
        )
    check.integer("null_label", null_label, ge=1)
    if class_labels.numel() and (
        class_labels.min() < 0 or class_labels.max() >= null_label
    ):
        raise ValueError(
            f"class_labels must be in [0, null_label={null_label}), got values in "
            f"[{int(class_labels.min())}, {int(class_labels.max())}]"
        )
