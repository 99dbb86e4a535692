r"""Training the course's `BasicUNet` from scratch: corrupt, predict the clean image, MSE.

The first half of Unit 1 of the Hugging Face Diffusion Models Course ("Diffusion Models from
Scratch") trains a network without any of DDPM's machinery: corrupt each image by a random amount
with `snippets.forward.corrupt`, ask `snippets.basic_unet.BasicUNet` for the clean image, and
regress with the mean squared error, using Adam at a learning rate of $10^{-3}$:

$$L = \mathbb{E}_{x,\,a \sim \mathcal{U}[0,1),\,u \sim \mathcal{U}[0,1)}
\big\| f_\theta\big((1-a)\,x + a\,u\big) - x \big\|^2$$

The course works on MNIST digits in $[0, 1]$ (0 is the background); the bundled digits of
`snippets.data.load_digits` are in $[-1, 1]$, and `to_unit_interval` maps them to the course's
range. Sampling with the trained network is `snippets.sampling.naive_sample`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from snippets import check
from snippets.forward import corrupt


# --8<-- [start:to-unit-interval]
def to_unit_interval(images: torch.Tensor) -> torch.Tensor:
    r"""Map images from $[-1, 1]$ (the rest of the site) to $[0, 1]$ (the course's MNIST): $(x + 1)/2$.

    Args:
        images: Images in `[-1, 1]`, any shape.

    Returns:
        The same images in `[0, 1]`.

    Raises:
        ValueError: If a value lies outside `[-1, 1]`.
    """
    check.tensor("images", images, ge=-1, le=1)
    return (images + 1) / 2


# --8<-- [end:to-unit-interval]


def _check_unit_interval(images: torch.Tensor, name: str = "images") -> None:
    """Raise a `ValueError` unless `images` is a `(B, C, H, W)` batch with values in `[0, 1]`."""
    check.tensor(name, images)
    if images.ndim != 4:
        raise ValueError(
            f"{name} must have shape (B, C, H, W), got {tuple(images.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if images.min() < 0 or images.max() > 1:
        raise ValueError(
            f"{name} must lie in [0, 1] as in the course (corrupt mixes them with uniform noise in [0, 1)); "
            f"got values from {images.min().item():.3g} to {images.max().item():.3g}; "
            "map [-1, 1] images with to_unit_interval"
        )


# --8<-- [start:scratch-loss]
def scratch_loss(
    model: nn.Module,
    x: torch.Tensor,
    amount: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The course's from-scratch loss: corrupt by a random amount, predict the clean image, MSE.

    $$L = \big\| f_\theta\big((1-a)\,x + a\,u\big) - x \big\|^2,
    \qquad a \sim \mathcal{U}[0, 1),\ u \sim \mathcal{U}[0, 1)$$

    Args:
        model: Network `model(x_noisy) -> x_hat` (no timestep), such as `BasicUNet`.
        x: Clean images, shape `(B, C, H, W)`, values in `[0, 1]`.
        amount: $a$, one value per image in `[0, 1]`, shape `(B,)`; drawn uniformly if omitted.
        noise: $u$ with the shape of `x`; drawn uniformly in `[0, 1)` if omitted.
        generator: Random number generator for `amount` and `noise` when they are omitted.

    Returns:
        The scalar loss, averaged over every pixel of the batch.
    """
    check.instance("model", model, Callable)
    _check_unit_interval(x, "x")
    # 1. a random amount of noise for each image, a ~ U[0, 1)
    if amount is None:
        amount = torch.rand(
            x.shape[0], generator=generator, dtype=x.dtype, device=x.device
        )
    # 2. the corrupted input (1 - a) x + a u
    noisy_x = corrupt(x, amount, noise=noise, generator=generator)
    # 3. the network's guess of the clean image
    pred = model(noisy_x)
    # 4. mean squared error against the clean image
    return nn.functional.mse_loss(pred, x)


# --8<-- [end:scratch-loss]


# --8<-- [start:train-basic-unet]
def train_basic_unet(
    model: nn.Module,
    images: torch.Tensor,
    n_epochs: int = 3,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    generator: torch.Generator | None = None,
    progress_bar: bool = True,
) -> list[float]:
    r"""The course's training loop: shuffled mini-batches, `scratch_loss`, Adam.

    Args:
        model: Network `model(x_noisy) -> x_hat`, trained in place (the course's `BasicUNet`).
        images: Training images, shape `(N, C, H, W)`, values in `[0, 1]`.
        n_epochs: Passes over `images` (the course does 3 over MNIST's 60,000 images).
        batch_size: Images per step (the last batch of an epoch may be smaller).
        learning_rate: Adam's learning rate ($10^{-3}$ in the course).
        generator: Random number generator for the shuffling, the amounts and the noise; with the
            same seed and the same initial weights, two runs give the same losses.
        progress_bar: Show a tqdm progress bar.

    Returns:
        The loss of every step, in order.
    """
    from tqdm import tqdm

    check.instance("model", model, nn.Module)
    check.integer("n_epochs", n_epochs, ge=1)
    check.integer("batch_size", batch_size, ge=1)
    check.real("learning_rate", learning_rate, gt=0)
    check.boolean("progress_bar", progress_bar)
    check.generator("generator", generator)
    _check_unit_interval(images)
    # 1. the data, shuffled every epoch
    loader = DataLoader(
        TensorDataset(images), batch_size=batch_size, shuffle=True, generator=generator
    )
    # 2. the optimizer: Adam at lr 1e-3
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    losses = []
    model.train()
    bar = tqdm(total=n_epochs * len(loader), unit="step", disable=not progress_bar)
    for epoch in range(n_epochs):
        for (x,) in loader:
            # 3. corrupt by a random amount, predict the clean image, MSE
            loss = scratch_loss(model, x, generator=generator)
            # 4. backpropagate and update the parameters
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            # 5. store the loss for the curve
            losses.append(loss.item())
            bar.update(1)
        bar.set_postfix(
            epoch=epoch + 1, loss=f"{sum(losses[-len(loader) :]) / len(loader):.4f}"
        )
    bar.close()
    model.eval()
    return losses


# --8<-- [end:train-basic-unet]
