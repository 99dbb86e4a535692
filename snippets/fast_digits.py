r"""Three minutes to digits: train at the digits' native 8x8, upsample exactly as the data are made.

`snippets.data.load_digits` makes its 16x16 digits by a bilinear resize of scikit-learn's 8x8
originals: a fixed linear map $U: \mathbb{R}^{64} \to \mathbb{R}^{256}$. Every 16x16 training image
is $U x$ for an 8x8 image $x$, so the data fill a 64-dimensional subspace of the 256 pixels. A
16x16 model has to learn that (its samples carry a little noise off the subspace, which the
classifier behind digit FID sees), and pays for 256 pixels per image. Training the diffusion model
on the 8x8 originals and applying $U$ to its samples gives 16x16 digits that lie exactly on the
data's subspace, at about a third of the cost per image, so a fixed budget buys about three times
the training.

`FAST_DIGITS_CONFIG` is the network, `FAST_DIGITS_RECIPE` the `TrainConfig` settings that differ
from the defaults, `upsample_digits` the map $U$ and `sample_fast_digits` the sampler wrapper.
`downsample_digits` is $U$'s least-squares inverse $U^+$: it takes 16x16 images to the 8x8 ones
the model works on (exactly back for the data, $U^+ U x = x$), for the methods that start from an
image rather than from noise (inversion, SDEdit, inpainting).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from snippets import check

# --8<-- [start:fast-digits-config]
FAST_DIGITS_CONFIG = dict(
    sample_size=8,  # the digits' native 8x8
    in_channels=1,
    out_channels=1,
    channels=(32, 64),  # 8x8 -> 4x4
    num_res_blocks=2,
    attention_levels=(1,),  # attention at 4x4 (16 tokens), as the base model
)
"""A two-level UNet for the 8x8 digits (the base model's first two levels)."""

FAST_DIGITS_RECIPE = dict()
"""`TrainConfig` settings of the fast recipe that differ from the defaults."""
# --8<-- [end:fast-digits-config]


# --8<-- [start:upsample-digits]
def upsample_digits(x: torch.Tensor, image_size: int = 16) -> torch.Tensor:
    r"""The resize of `load_digits`: 8x8 digits in $[-1, 1]$ to `image_size`, bilinearly.

    The samples are first clipped to $[-1, 1]$, the data's range; bilinear weights are convex, so
    the result stays in it, and `upsample_digits(load_digits(image_size=8)[0])` equals
    `load_digits(image_size=16)[0]`.

    Args:
        x: Images, shape `(B, 1, 8, 8)`, finite.
        image_size: Output side length.

    Returns:
        Images of shape `(B, 1, image_size, image_size)` in $[-1, 1]$.
    """
    check.tensor("x", x, shape=(None, 1, 8, 8))
    check.integer("image_size", image_size, ge=1, le=1024)
    return F.interpolate(
        x.clamp(-1, 1),
        size=(image_size, image_size),
        mode="bilinear",
        align_corners=False,
    )


# --8<-- [end:upsample-digits]


def _resize_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """The 1-D bilinear resize of `upsample_digits` as a `(size_out, size_in)` matrix."""
    eye = torch.eye(size_in, dtype=torch.float64).unsqueeze(1)  # (size_in, 1, size_in)
    columns = F.interpolate(eye, size=size_out, mode="linear", align_corners=False)
    return columns.squeeze(1).T  # column j: the resize of the j-th unit vector


def downsample_digits(x: torch.Tensor, image_size: int = 8) -> torch.Tensor:
    r"""The least-squares inverse $U^+$ of `upsample_digits`: 16x16 images to 8x8.

    The bilinear resize is separable, $U = A \otimes A$ with a $16 \times 8$ matrix $A$ of full
    column rank, so $U^+ = A^+ \otimes A^+$: each image $X$ maps to $A^+ X A^{+\top}$, the 8x8
    image whose upsampling is closest to $X$. On the data it is exact,
    `downsample_digits(upsample_digits(x))` equals `x` (up to float round-off) for `x` in
    $[-1, 1]$; an image off the data's subspace (a sketch, a mask) lands on its projection.

    Args:
        x: Images, shape `(B, 1, S, S)` with `S >= image_size`, finite.
        image_size: Side length of the result (the model's, 8 for the digits).

    Returns:
        Images of shape `(B, 1, image_size, image_size)`, same dtype as `x`.
    """
    check.integer("image_size", image_size, ge=1, le=1024)
    check.tensor("x", x, shape=(None, 1, None, None))
    size = x.shape[-1]
    if x.shape[-2] != size or size < image_size:
        raise ValueError(
            f"x must be square images at least {image_size}x{image_size}, "
            f"got shape {tuple(x.shape)}"
        )
    pinv = torch.linalg.pinv(_resize_matrix(image_size, size)).to(x)  # (image_size, S)
    return pinv @ x @ pinv.T


def sample_fast_digits(
    sampler: Callable[..., torch.Tensor],
    model: Callable[..., torch.Tensor],
    x_T: torch.Tensor,
    *args: object,
    image_size: int = 16,
    **kwargs: object,
) -> torch.Tensor:
    r"""Run any sampler of `snippets.sampling` at 8x8, then `upsample_digits` its result.

    Args:
        sampler: E.g. `snippets.sampling.SAMPLERS["dpmsolver++"]`.
        model: The 8x8 network, `model(x_t, t)`.
        x_T: Starting noise, shape `(B, 1, 8, 8)`.
        *args: Passed to `sampler` after `model` and `x_T` (the schedule, the step count).
        image_size: Side length of the returned digits.
        **kwargs: Passed to `sampler` (`prediction_type`, `generator`, ...).

    Returns:
        Digits of shape `(B, 1, image_size, image_size)` in $[-1, 1]$.
    """
    if not callable(sampler):
        raise TypeError(f"sampler must be callable, got {type(sampler).__name__}")
    check.tensor("x_T", x_T, shape=(None, 1, 8, 8))
    return upsample_digits(sampler(model, x_T, *args, **kwargs), image_size)
