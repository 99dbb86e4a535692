r"""The course's `BasicUNet`: the smallest network with a UNet's shape.

Unit 1 of the Hugging Face Diffusion Models Course ("Diffusion Models from Scratch") trains this
network to predict a clean MNIST digit from a corrupted one. It has no time conditioning and no
normalisation: three 5x5 convolutions going down ($1 \to 32 \to 64 \to 64$ channels,
max-pooling by 2 in between), three going up ($64 \to 64 \to 32 \to 1$, nearest upsampling by 2
in between), SiLU after every layer, and skip connections that *add* each down layer's output to
the matching up layer's input. With one input and one output channel it has 309,057 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from snippets import check


# --8<-- [start:basic-unet]
class BasicUNet(nn.Module):
    r"""A minimal UNet, as built in the course notebook "Diffusion Models from Scratch".

    Down path: `Conv5x5 -> SiLU` three times, max-pooling by 2 after the first two layers and
    keeping their outputs for the skips. Up path: `Conv5x5 -> SiLU` three times, upsampling by 2 and
    adding the stored output before the last two layers. Resolution goes
    $H \to H/2 \to H/4 \to H/2 \to H$, so $H$ and $W$ must be divisible by 4.

    Args:
        in_channels: Channels of the input images (1 for MNIST).
        out_channels: Channels of the output images.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1):
        super().__init__()
        check.integer("in_channels", in_channels, ge=1)
        check.integer("out_channels", out_channels, ge=1)
        self.in_channels = in_channels
        self.down_layers = nn.ModuleList(
            [
                nn.Conv2d(in_channels, 32, kernel_size=5, padding=2),
                nn.Conv2d(32, 64, kernel_size=5, padding=2),
                nn.Conv2d(64, 64, kernel_size=5, padding=2),
            ]
        )
        self.up_layers = nn.ModuleList(
            [
                nn.Conv2d(64, 64, kernel_size=5, padding=2),
                nn.Conv2d(64, 32, kernel_size=5, padding=2),
                nn.Conv2d(32, out_channels, kernel_size=5, padding=2),
            ]
        )
        self.act = nn.SiLU()
        self.downscale = nn.MaxPool2d(2)
        self.upscale = nn.Upsample(scale_factor=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""Map a batch of (noisy) images to a batch of images of the same shape.

        Args:
            x: Images, shape `(B, in_channels, H, W)` with `H` and `W` divisible by 4.

        Returns:
            The network's output, shape `(B, out_channels, H, W)`.
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"BasicUNet expects images of shape (B, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        check.tensor("x", x)
        if x.dtype != self.down_layers[0].weight.dtype:
            raise check.ArgumentTypeError(
                f"x has dtype {x.dtype} but the model's weights are "
                f"{self.down_layers[0].weight.dtype}: convert x (x.to(...)) "
                "or the model"
            )
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(
                "BasicUNet pools twice by 2: height and width must be divisible by 4, "
                f"got {tuple(x.shape[-2:])}"
            )
        h = []  # outputs kept for the skip connections
        for i, layer in enumerate(self.down_layers):
            x = self.act(layer(x))
            # all but the last down layer: keep the output, then halve the resolution
            if i < 2:
                h.append(x)
                x = self.downscale(x)
        for i, layer in enumerate(self.up_layers):
            if i > 0:  # all but the first up layer: double the resolution, add the skip
                x = self.upscale(x)
                x += h.pop()  # fetch the stored output (skip connection)
            x = self.act(layer(x))
        return x


# --8<-- [end:basic-unet]
