r"""A time-conditioned UNet, written from scratch and read top to bottom.

The denoiser of DDPM (Ho et al. 2020, Appendix B) is a UNet (Ronneberger et al. 2015) built
from residual blocks (He et al. 2016) with group normalisation (Wu & He 2018), self-attention at
low resolutions (Vaswani et al. 2017) and a sinusoidal embedding of the timestep $t$ fed to every
residual block. This module builds it in the order a reader meets it:

1. `timestep_embedding` and `TimeEmbedding`: $t \mapsto$ a vector $\mathbf{e}_t$;
2. `ResBlock`: convolutions that receive $\mathbf{e}_t$ as a per-channel shift (or scale and shift);
3. `SelfAttention`: every pixel attends to every other pixel;
4. `Downsample` / `Upsample`: halve or double the resolution;
5. `DownBlock`, `MidBlock`, `UpBlock`: one resolution level each, with skip connections;
6. `UNet`: the whole network, `forward(x, t, class_labels=None)`.

The module and parameter names follow `diffusers.UNet2DModel`, so that a `UNet2DModel` with
the configuration returned by `diffusers_equivalent` has exactly the same parameters, and its
weights load into `UNet` with `convert_diffusers_state_dict`.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from snippets import check

if (
    TYPE_CHECKING
):  # diffusers is imported only by the functions that build a UNet2DModel
    from diffusers import UNet2DModel


_FLAGS = ("attention", "downsample", "upsample", "use_scale_shift_norm")


def _check_block_args(**args) -> None:
    """Check a building block's constructor arguments, passed by their names.

    Sizes are positive integers, the channel counts a group norm sees are divisible by
    `num_groups`, an attention's `channels` by `head_dim`; `dropout` is in `[0, 1)` and the
    flags are bools. Raises a `ValueError` (`TypeError` for a wrong type) naming the argument.
    """
    for name, value in args.items():
        if name == "dropout":
            check.real(name, value, ge=0, lt=1)
        elif name in _FLAGS:
            check.boolean(name, value)
        elif name == "skip_channels":
            if not check.integers(name, value, ge=1):
                raise ValueError(f"{name} must not be empty, got {value!r}")
        else:
            check.integer(name, value, ge=1)
    for name in ("in_channels", "out_channels", "channels"):
        groups = args.get("num_groups")
        if name in args and groups is not None and args[name] % groups:
            raise ValueError(
                f"{name}={args[name]} must be divisible by num_groups={groups}"
            )
    if (
        "head_dim" in args
        and "channels" in args
        and args["channels"] % args["head_dim"]
    ):
        raise ValueError(
            f"channels={args['channels']} must be divisible by "
            f"head_dim={args['head_dim']} (the number of heads is their ratio)"
        )


# --8<-- [start:timestep-embedding]
def timestep_embedding(
    t: torch.Tensor,
    dim: int,
    flip_sin_to_cos: bool = False,
    downscale_freq_shift: float = 1.0,
    scale: float = 1.0,
    max_period: float = 10000,
) -> torch.Tensor:
    r"""Sinusoidal timestep embedding (Vaswani et al. 2017, Sec. 3.5; Ho et al. 2020, App. B).

    With $k = \lfloor D/2 \rfloor$ frequencies $\omega_i = \text{max\_period}^{-i/(k - \delta)}$,
    $i = 0, \dots, k-1$, and a scale $s$,

    $$\mathbf{e}(t) = \big[\sin(s\,\omega_0 t), \dots, \sin(s\,\omega_{k-1} t),\;
    \cos(s\,\omega_0 t), \dots, \cos(s\,\omega_{k-1} t)\big]$$

    with cosines first when `flip_sin_to_cos`, and a zero appended when `dim` is odd. Equal to
    `diffusers.models.embeddings.get_timestep_embedding` with the same arguments.

    Args:
        t: Timesteps, shape `(B,)`; may be fractional.
        dim: Size $D$ of the embedding; $k = \lfloor D/2 \rfloor$ must exceed $\delta$ (the
            exponent divides by $k - \delta$: `dim=2` with $\delta = 1$ would be 0/0).
        flip_sin_to_cos: Put the cosines before the sines (`UNet2DModel` does).
        downscale_freq_shift: The shift $\delta$. With $\delta = 1$ (the default, as in DDPM's
            code) the lowest frequency is exactly $1/\text{max\_period}$; `UNet2DModel` uses
            $\delta = 0$.
        scale: Factor $s$ multiplying $\omega_i t$.
        max_period: Sets the lowest frequency (a period of about $2\pi\,\text{max\_period}$
            timesteps).

    Returns:
        The embeddings, shape `(B, D)`, float32.
    """
    check.tensor("t", t, dtype="real")
    if t.ndim != 1:
        raise ValueError(
            f"timesteps must be a 1-D tensor of shape (B,), got shape {tuple(t.shape)}"
        )
    check.integer("dim", dim, ge=1)
    check.boolean("flip_sin_to_cos", flip_sin_to_cos)
    check.real("downscale_freq_shift", downscale_freq_shift)
    if dim > 1 and not dim // 2 > downscale_freq_shift:
        raise ValueError(
            f"dim={dim} gives dim // 2 = {dim // 2} frequencies, which must exceed "
            f"downscale_freq_shift={downscale_freq_shift} "
            "(the exponent divides by the difference)"
        )
    check.real("scale", scale)
    check.real("max_period", max_period, gt=0)
    half = dim // 2
    # \omega_i = max_period^{-i / (k - \delta)}
    exponent = -math.log(max_period) * torch.arange(
        half, dtype=torch.float32, device=t.device
    )
    omega = torch.exp(exponent / (half - downscale_freq_shift))
    angles = scale * (t[:, None].float() * omega[None, :])
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


class TimeEmbedding(nn.Module):
    r"""The MLP after the sinusoids (Ho et al. 2020, App. B).

    $$\mathbf{e}_t = W_2\,\mathrm{SiLU}(W_1\,\mathbf{e}(t) + b_1) + b_2$$

    Args:
        in_dim: Size of the sinusoidal embedding.
        dim: Size of the time embedding $\mathbf{e}_t$ every residual block receives.
    """

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        _check_block_args(in_dim=in_dim, dim=dim)
        self.linear_1 = nn.Linear(in_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        in_dim, dtype = self.linear_1.in_features, self.linear_1.weight.dtype
        check.tensor("emb", emb, dtype=dtype, shape=(None, in_dim), finite=False)
        return self.linear_2(F.silu(self.linear_1(emb)))


# --8<-- [end:timestep-embedding]


# --8<-- [start:res-block]
class ResBlock(nn.Module):
    r"""A residual block conditioned on the time embedding (Ho et al. 2020, App. B).

    $$h = \mathrm{Conv}(\mathrm{SiLU}(\mathrm{GN}(x))), \qquad
    h \leftarrow \begin{cases}
      \mathrm{GN}(h + W\mathbf{e}_t) & \text{shift (default)}\\
      \mathrm{GN}(h)\,(1 + \gamma) + \beta, \ [\gamma, \beta] = W\mathbf{e}_t & \text{scale-shift}
    \end{cases}$$

    $$\text{out} = \mathrm{skip}(x) + \mathrm{Conv}(\mathrm{Dropout}(\mathrm{SiLU}(h)))$$

    where $\mathbf{e}_t$ first goes through a SiLU, $W$ is a linear map to one value (or a scale
    and a shift, FiLM-style: Perez et al. 2018, Dhariwal & Nichol 2021) per channel, and
    $\mathrm{skip}$ is a 1x1 convolution when the channel count changes, the identity otherwise.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output.
        emb_dim: Size of the time embedding.
        num_groups: Groups of the group normalisations.
        dropout: Dropout probability before the second convolution.
        use_scale_shift_norm: Condition by scale and shift instead of a shift.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_dim: int,
        num_groups: int = 32,
        dropout: float = 0.0,
        use_scale_shift_norm: bool = False,
    ):
        super().__init__()
        _check_block_args(
            in_channels=in_channels,
            out_channels=out_channels,
            emb_dim=emb_dim,
            num_groups=num_groups,
            dropout=dropout,
            use_scale_shift_norm=use_scale_shift_norm,
        )
        self.use_scale_shift_norm = use_scale_shift_norm
        self.norm1 = nn.GroupNorm(num_groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.time_emb_proj = nn.Linear(
            emb_dim, 2 * out_channels if use_scale_shift_norm else out_channels
        )
        self.norm2 = nn.GroupNorm(num_groups, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.conv_shortcut = None
        if in_channels != out_channels:
            self.conv_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        r"""Args:
            x: Feature maps, shape `(B, in_channels, H, W)`.
            emb: Time embeddings $\mathbf{e}_t$, shape `(B, emb_dim)`.

        Returns:
            Feature maps, shape `(B, out_channels, H, W)`.
        """
        check.feature_maps("x", x, self.conv1.in_channels, self.conv1.weight.dtype)
        emb_shape = (len(x), self.time_emb_proj.in_features)  # (B, emb_dim)
        check.tensor("emb", emb, dtype=x.dtype, shape=emb_shape, finite=False)
        h = self.conv1(F.silu(self.norm1(x)))
        # one value (or a scale and a shift) per channel, broadcast over H and W
        cond = self.time_emb_proj(F.silu(emb))[:, :, None, None]
        if self.use_scale_shift_norm:
            scale, shift = cond.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + cond)
        h = self.conv2(self.dropout(F.silu(h)))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return skip + h


# --8<-- [end:res-block]


# --8<-- [start:self-attention]
class SelfAttention(nn.Module):
    r"""Multi-head self-attention over the pixels of a feature map, with a residual connection.

    The $N = HW$ pixels are $N$ tokens of $C$ channels. After a group norm, each head computes
    (Vaswani et al. 2017, Eq. 1)

    $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d}}\right) V$$

    with $d$ = `head_dim` and $C/d$ heads; the heads are concatenated, projected back to $C$
    channels and added to the input.

    Args:
        channels: Channels $C$ of the feature map.
        head_dim: Channels $d$ per head; must divide `channels`.
        num_groups: Groups of the group normalisation.
    """

    def __init__(self, channels: int, head_dim: int = 8, num_groups: int = 32):
        super().__init__()
        _check_block_args(channels=channels, head_dim=head_dim, num_groups=num_groups)
        self.heads = channels // head_dim
        self.head_dim = head_dim
        self.group_norm = nn.GroupNorm(num_groups, channels)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""Args:
            x: Feature maps, shape `(B, C, H, W)`.

        Returns:
            $x + \mathrm{Attention}(x)$, shape `(B, C, H, W)`.
        """
        check.feature_maps("x", x, self.to_q.in_features, self.to_q.weight.dtype)
        B, C, H, W = x.shape
        tokens = self.group_norm(x).reshape(B, C, H * W).transpose(1, 2)  # (B, N, C)

        def split_heads(
            z: torch.Tensor,
        ) -> torch.Tensor:  # (B, N, C) -> (B, heads, N, d)
            return z.reshape(B, H * W, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = (
            split_heads(self.to_q(tokens)),
            split_heads(self.to_k(tokens)),
            split_heads(self.to_v(tokens)),
        )
        # softmax(Q K^T / sqrt(d)) V, Eq. (1) of Vaswani et al. 2017
        weights = torch.softmax(
            q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1
        )
        out = (
            (weights @ v).transpose(1, 2).reshape(B, H * W, C)
        )  # concatenate the heads
        out = self.to_out(out).transpose(1, 2).reshape(B, C, H, W)
        return x + out


# --8<-- [end:self-attention]


# --8<-- [start:resample]
class Downsample(nn.Module):
    """Halve the resolution with a 3x3 convolution of stride 2."""

    def __init__(self, channels: int):
        super().__init__()
        _check_block_args(channels=channels)
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check.feature_maps("x", x, self.conv.in_channels, self.conv.weight.dtype)
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour upsampling, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        _check_block_args(channels=channels)
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check.feature_maps("x", x, self.conv.in_channels, self.conv.weight.dtype)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


# --8<-- [end:resample]


# --8<-- [start:levels]
class DownBlock(nn.Module):
    r"""One level of the encoder: `num_res_blocks` residual blocks (each optionally followed by
    self-attention), then a downsampling unless this is the lowest level.

    Every block's output is kept for a skip connection, and so is the downsampled output.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_dim: int,
        num_res_blocks: int,
        attention: bool,
        downsample: bool,
        head_dim: int,
        num_groups: int,
        dropout: float,
        use_scale_shift_norm: bool,
    ):
        super().__init__()
        _check_block_args(
            num_res_blocks=num_res_blocks, attention=attention, downsample=downsample
        )
        self.resnets = nn.ModuleList(
            [
                ResBlock(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    emb_dim,
                    num_groups,
                    dropout,
                    use_scale_shift_norm,
                )
                for i in range(num_res_blocks)
            ]
        )
        self.attentions = nn.ModuleList(
            [
                SelfAttention(out_channels, head_dim, num_groups)
                if attention
                else nn.Identity()
                for _ in range(num_res_blocks)
            ]
        )
        self.downsample = Downsample(out_channels) if downsample else None

    def forward(
        self, h: torch.Tensor, emb: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for resnet, attention in zip(self.resnets, self.attentions):
            h = attention(resnet(h, emb))
            skips.append(h)
        if self.downsample is not None:
            h = self.downsample(h)
            skips.append(h)
        return h, skips


class MidBlock(nn.Module):
    """The bottom of the U, at the lowest resolution: residual block, attention, residual block."""

    def __init__(
        self,
        channels: int,
        emb_dim: int,
        attention: bool,
        head_dim: int,
        num_groups: int,
        dropout: float,
        use_scale_shift_norm: bool,
    ):
        super().__init__()
        _check_block_args(attention=attention)
        self.resnets = nn.ModuleList(
            [
                ResBlock(
                    channels,
                    channels,
                    emb_dim,
                    num_groups,
                    dropout,
                    use_scale_shift_norm,
                )
                for _ in range(2)
            ]
        )
        self.attention = (
            SelfAttention(channels, head_dim, num_groups)
            if attention
            else nn.Identity()
        )

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.resnets[0](h, emb)
        h = self.attention(h)
        return self.resnets[1](h, emb)


class UpBlock(nn.Module):
    r"""One level of the decoder: `num_res_blocks + 1` residual blocks (each optionally followed by
    self-attention), each taking the previous output concatenated with a skip connection, then an
    upsampling unless this is the highest level.

    Args:
        skip_channels: Channels of the skips this level consumes, in the order it pops them.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        skip_channels: list[int],
        emb_dim: int,
        attention: bool,
        upsample: bool,
        head_dim: int,
        num_groups: int,
        dropout: float,
        use_scale_shift_norm: bool,
    ):
        super().__init__()
        _check_block_args(
            skip_channels=skip_channels, attention=attention, upsample=upsample
        )
        self.resnets = nn.ModuleList(
            [
                ResBlock(
                    (in_channels if i == 0 else out_channels) + skip,
                    out_channels,
                    emb_dim,
                    num_groups,
                    dropout,
                    use_scale_shift_norm,
                )
                for i, skip in enumerate(skip_channels)
            ]
        )
        self.attentions = nn.ModuleList(
            [
                SelfAttention(out_channels, head_dim, num_groups)
                if attention
                else nn.Identity()
                for _ in skip_channels
            ]
        )
        self.upsample = Upsample(out_channels) if upsample else None

    def forward(
        self, h: torch.Tensor, skips: list[torch.Tensor], emb: torch.Tensor
    ) -> torch.Tensor:
        """Pops the skips it needs from the end of `skips` (the encoder's outputs, last first)."""
        check.instance("skips", skips, list)
        if len(skips) < len(self.resnets):
            raise ValueError(
                f"skips holds {len(skips)} tensors, "
                f"this level needs {len(self.resnets)}"
            )
        for resnet, attention in zip(self.resnets, self.attentions):
            h = torch.cat([h, skips.pop()], dim=1)
            h = attention(resnet(h, emb))
        if self.upsample is not None:
            h = self.upsample(h)
        return h


# --8<-- [end:levels]


class UNet(nn.Module):
    r"""A time-conditioned UNet that predicts a tensor shaped like its input (e.g. the noise
    $\epsilon_\theta(x_t, t)$ of Ho et al. 2020, Eq. 14).

    Level $\ell = 0, \dots, L-1$ works at resolution $H/2^\ell$ with `channels[ℓ]` channels, so
    the input's height and width must be divisible by $2^{L-1}$. The module and parameter names
    match `diffusers.UNet2DModel`; see `diffusers_equivalent`.

    Args:
        in_channels: Channels of the input images.
        out_channels: Channels of the output.
        channels: Channels of each resolution level, highest resolution first; each a multiple of
            `num_groups` and of `attention_head_dim`.
        num_res_blocks: Residual blocks per level in the encoder (the decoder has one more).
        attention_levels: Indices of the levels with self-attention after every residual block.
        attention_head_dim: Channels per attention head.
        mid_attention: Put self-attention between the two residual blocks at the bottom.
        num_groups: Groups of every group normalisation.
        dropout: Dropout probability in the residual blocks.
        use_scale_shift_norm: Condition the residual blocks by a scale and a shift (FiLM)
            instead of a shift.
        num_classes: Number of classes for class conditioning, `None` for an unconditional model.
            Labels are in `[0, num_classes]`: the extra label `num_classes` is the "null" class
            used to drop the condition for classifier-free guidance (Ho & Salimans 2022).
        flip_sin_to_cos: Passed to `timestep_embedding` (cosines first, as `UNet2DModel`).
        downscale_freq_shift: Passed to `timestep_embedding` (0, as `UNet2DModel`).
        sample_size: The image side the model is meant for (recorded in `config` for trainers and
            samplers; `forward` accepts any side divisible by $2^{L-1}$).

    Attributes:
        config: The constructor's arguments as a JSON-serialisable dict: `UNet(**model.config)`
            builds the same architecture.
    """

    # --8<-- [start:unet-init]
    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: tuple[int, ...] | list[int] = (32, 64, 64),
        num_res_blocks: int = 2,
        attention_levels: tuple[int, ...] | list[int] = (2,),
        attention_head_dim: int = 8,
        mid_attention: bool = True,
        num_groups: int = 32,
        dropout: float = 0.0,
        use_scale_shift_norm: bool = False,
        num_classes: int | None = None,
        flip_sin_to_cos: bool = True,
        downscale_freq_shift: float = 0.0,
        sample_size: int | None = None,
    ):
        super().__init__()
        # lists of ints, so that config survives a JSON round trip (32.9 is refused, not 32)
        channels = check.integers("channels", channels, ge=1)
        attention_levels = sorted(check.integers("attention_levels", attention_levels))
        self.config = dict(
            in_channels=in_channels,
            out_channels=out_channels,
            channels=channels,
            num_res_blocks=num_res_blocks,
            attention_levels=attention_levels,
            attention_head_dim=attention_head_dim,
            mid_attention=mid_attention,
            num_groups=num_groups,
            dropout=dropout,
            use_scale_shift_norm=use_scale_shift_norm,
            num_classes=num_classes,
            flip_sin_to_cos=flip_sin_to_cos,
            downscale_freq_shift=downscale_freq_shift,
            sample_size=sample_size,
        )
        _check_config(self.config)
        levels = len(channels)
        emb_dim = (
            4 * channels[0]
        )  # size of the time embedding e_t, as in DDPM and UNet2DModel
        block_args = dict(
            head_dim=attention_head_dim,
            num_groups=num_groups,
            dropout=dropout,
            use_scale_shift_norm=use_scale_shift_norm,
        )

        # 1. time embedding: sinusoids of size channels[0] (computed in forward), then an
        # MLP
        self.time_embedding = TimeEmbedding(channels[0], emb_dim)
        # 2. class embedding, added to the time embedding; the extra row is the null class
        self.class_embedding = None
        if num_classes is not None:
            self.class_embedding = nn.Embedding(num_classes + 1, emb_dim)

        # 3. encoder: conv_in, then one DownBlock per level; record the channels of every
        # skip
        self.conv_in = nn.Conv2d(in_channels, channels[0], kernel_size=3, padding=1)
        skip_channels = [channels[0]]
        self.down_blocks = nn.ModuleList()
        for level, ch in enumerate(channels):
            is_lowest = level == levels - 1
            block = DownBlock(
                channels[max(level - 1, 0)],
                ch,
                emb_dim,
                num_res_blocks,
                attention=level in attention_levels,
                downsample=not is_lowest,
                **block_args,
            )
            self.down_blocks.append(block)
            skip_channels += [ch] * (num_res_blocks + (0 if is_lowest else 1))

        # 4. bottleneck at the lowest resolution
        self.mid_block = MidBlock(
            channels[-1], emb_dim, attention=mid_attention, **block_args
        )

        # 5. decoder: one UpBlock per level, lowest first, each popping num_res_blocks + 1
        # skips
        self.up_blocks = nn.ModuleList()
        h_channels = channels[-1]
        for level in reversed(range(levels)):
            popped = [skip_channels.pop() for _ in range(num_res_blocks + 1)]
            block = UpBlock(
                h_channels,
                channels[level],
                popped,
                emb_dim,
                attention=level in attention_levels,
                upsample=level > 0,
                **block_args,
            )
            self.up_blocks.append(block)
            h_channels = channels[level]

        # 6. output: GroupNorm, SiLU, conv to out_channels, zero-initialised so that the
        # untrained
        #    model predicts 0 (the mean of the noise it learns to predict)
        self.conv_norm_out = nn.GroupNorm(num_groups, channels[0])
        self.conv_out = nn.Conv2d(channels[0], out_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    # --8<-- [end:unet-init]

    # --8<-- [start:unet-forward]
    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | float | int,
        class_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r"""Predict a tensor shaped like `x` from noisy images and their timesteps.

        Args:
            x: Noisy images $x_t$, shape `(B, in_channels, H, W)`, `H` and `W` divisible by
                $2^{L-1}$.
            t: Timesteps, shape `(B,)`, or a scalar used for the whole batch; may be fractional.
            class_labels: Integer labels, shape `(B,)`, in `[0, num_classes]` (`num_classes` = null
                class); required if and only if the model is class-conditional.

        Returns:
            The prediction, shape `(B, out_channels, H, W)`.
        """
        t = self._check_inputs(x, t, class_labels)
        # 1. time embedding e_t = MLP(sinusoids(t)), Ho et al. 2020, App. B
        emb = timestep_embedding(
            t,
            self.config["channels"][0],
            self.config["flip_sin_to_cos"],
            self.config["downscale_freq_shift"],
        )
        emb = self.time_embedding(emb.to(x.dtype))
        # 2. class conditioning: add the label's embedding to e_t
        if self.class_embedding is not None:
            emb = emb + self.class_embedding(class_labels)
        # 3. encoder, keeping every intermediate output for the skip connections
        h = self.conv_in(x)
        skips = [h]
        for block in self.down_blocks:
            h, block_skips = block(h, emb)
            skips += block_skips
        # 4. bottleneck
        h = self.mid_block(h, emb)
        # 5. decoder, consuming the skips in reverse order
        for block in self.up_blocks:
            h = block(h, skips, emb)
        # 6. output projection
        return self.conv_out(F.silu(self.conv_norm_out(h)))

    # --8<-- [end:unet-forward]

    # --8<-- [start:unet-checks]
    def _check_inputs(self, x, t, class_labels) -> torch.Tensor:
        """Raise a `ValueError` naming the problem; return `t` as a float tensor of shape `(B,)`."""
        cfg = self.config
        if x.ndim != 4:
            raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
        check.tensor("x", x)
        if x.dtype != self.conv_in.weight.dtype:
            raise check.ArgumentTypeError(
                f"x has dtype {x.dtype} but the model's weights are "
                f"{self.conv_in.weight.dtype}: convert x (x.to(...)) "
                "or the model"
            )
        B, C, H, W = x.shape
        if C != cfg["in_channels"]:
            raise ValueError(
                f"x has {C} channels but the model expects in_channels={cfg['in_channels']}"
            )
        factor = 2 ** (len(cfg["channels"]) - 1)
        if H % factor or W % factor:
            raise ValueError(
                f"height and width must be divisible by 2^(levels-1) = {factor} "
                f"for {len(cfg['channels'])} levels, got {H}x{W}"
            )
        t = check.timesteps("t", t, B, x.device)  # a scalar is used for the whole batch
        if cfg["num_classes"] is None:
            if class_labels is not None:
                raise ValueError(
                    "class_labels given to an unconditional model (num_classes=None)"
                )
        else:
            if class_labels is None:
                raise ValueError(
                    "class_labels are required: the model is class-conditional "
                    f"(num_classes={cfg['num_classes']}); pass label {cfg['num_classes']} "
                    "for the "
                    "null class"
                )
            check.tensor("class_labels", class_labels, dtype="int", shape=(B,))
            if class_labels.min() < 0 or class_labels.max() > cfg["num_classes"]:
                raise ValueError(
                    f"class_labels must be in [0, {cfg['num_classes']}] "
                    f"({cfg['num_classes']} = null class), got values in "
                    f"[{int(class_labels.min())}, {int(class_labels.max())}]"
                )
        return t

    # --8<-- [end:unet-checks]


def _check_config(cfg: dict) -> None:
    """Raise a `ValueError` naming the first invalid constructor argument."""
    channels, levels = cfg["channels"], len(cfg["channels"])
    if levels == 0 or any(c <= 0 for c in channels):
        raise ValueError(
            f"channels must be a non-empty list of positive ints, got {channels}"
        )
    for name in (
        "in_channels",
        "out_channels",
        "num_res_blocks",
        "num_groups",
        "attention_head_dim",
    ):
        check.integer(name, cfg[name], ge=1)
    if any(c % cfg["num_groups"] for c in channels):
        raise ValueError(
            f"every entry of channels {channels} must be divisible by "
            f"num_groups={cfg['num_groups']}"
        )
    bad = [a for a in cfg["attention_levels"] if not 0 <= a < levels]
    if bad:
        raise ValueError(
            f"attention_levels {bad} out of range for {levels} levels (valid: 0..{levels - 1})"
        )
    with_attention = [channels[a] for a in cfg["attention_levels"]] + (
        [channels[-1]] if cfg["mid_attention"] else []
    )
    if any(c % cfg["attention_head_dim"] for c in with_attention):
        raise ValueError(
            f"attention_head_dim={cfg['attention_head_dim']} must divide the channels of every "
            "level with attention"
        )
    check.real("dropout", cfg["dropout"], ge=0, lt=1)
    for name in ("mid_attention", "use_scale_shift_norm", "flip_sin_to_cos"):
        check.boolean(name, cfg[name])
    check.real("downscale_freq_shift", cfg["downscale_freq_shift"], lt=channels[0] // 2)
    if cfg["sample_size"] is not None:
        check.integer("sample_size", cfg["sample_size"], ge=1)
    if cfg["num_classes"] is not None and (
        isinstance(cfg["num_classes"], bool)
        or not isinstance(cfg["num_classes"], int)
        or cfg["num_classes"] < 1
    ):
        raise ValueError(
            f"num_classes must be None or a positive int, got {cfg['num_classes']!r}"
        )


# --8<-- [start:presets]
DIGITS_CONFIG = dict(
    sample_size=16,  # 16x16 single-channel digits
    in_channels=1,
    out_channels=1,
    channels=(32, 64, 64),  # 16x16 -> 8x8 -> 4x4
    num_res_blocks=2,
    attention_levels=(2,),  # attention only at 4x4 (16 tokens)
)
"""A small UNet (about 1.6M parameters) for 16x16 digits that trains on a 2-core CPU in minutes."""

COURSE_CONFIG = dict(
    sample_size=32,  # the course's 32x32 RGB butterflies
    in_channels=3,
    out_channels=3,
    channels=(64, 128, 128, 256),  # block_out_channels of the course's UNet2DModel
    num_res_blocks=2,  # layers_per_block
    attention_levels=(
        2,
        3,
    ),  # AttnDownBlock2D / AttnUpBlock2D at the two lowest resolutions
)
"""The course's 32x32 RGB `UNet2DModel` ("Introduction to Diffusers"), about 18.5M parameters."""
# --8<-- [end:presets]


# --8<-- [start:digits-unet2dmodel]
def digits_unet2dmodel() -> UNet2DModel:
    """`UNet(**DIGITS_CONFIG)` written as a `diffusers.UNet2DModel`, argument by argument."""
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=16,
        in_channels=1,
        out_channels=1,
        layers_per_block=2,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    )


# --8<-- [end:digits-unet2dmodel]


# --8<-- [start:diffusers-equivalent]
def diffusers_equivalent(config: dict) -> UNet2DModel:
    r"""The `diffusers.UNet2DModel` with the same architecture as `UNet(**config)`.

    Args:
        config: Keyword arguments of `UNet` (a preset or `model.config`); missing ones take `UNet`'s
            defaults.

    Returns:
        An untrained `UNet2DModel` with the same parameter names (up to
        `convert_diffusers_state_dict`) and shapes.
    """
    check.instance("config", config, dict)
    bound = inspect.signature(UNet).bind(**config)
    bound.apply_defaults()
    from diffusers import UNet2DModel

    c = bound.arguments
    levels = range(len(c["channels"]))
    return UNet2DModel(
        sample_size=c["sample_size"],
        in_channels=c["in_channels"],
        out_channels=c["out_channels"],
        block_out_channels=tuple(c["channels"]),
        layers_per_block=c["num_res_blocks"],
        down_block_types=tuple(
            "AttnDownBlock2D" if i in c["attention_levels"] else "DownBlock2D"
            for i in levels
        ),
        up_block_types=tuple(
            "AttnUpBlock2D" if i in c["attention_levels"] else "UpBlock2D"
            for i in reversed(levels)
        ),
        attention_head_dim=c["attention_head_dim"],
        add_attention=c["mid_attention"],
        norm_num_groups=c["num_groups"],
        attn_norm_num_groups=c[
            "num_groups"
        ],  # else the mid attention loses its norm with scale_shift
        dropout=c["dropout"],
        resnet_time_scale_shift="scale_shift"
        if c["use_scale_shift_norm"]
        else "default",
        num_class_embeds=None
        if c["num_classes"] is None
        else c["num_classes"] + 1,  # + the null class
        flip_sin_to_cos=c["flip_sin_to_cos"],
        freq_shift=c["downscale_freq_shift"],
    )


# --8<-- [end:diffusers-equivalent]


# --8<-- [start:convert-diffusers]
def convert_diffusers_state_dict(
    state_dict: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Rename the parameters of a `UNet2DModel` (built by `diffusers_equivalent`) to `UNet`'s names.

    Only three kinds of names differ: diffusers keeps its down/upsampler and attention output layer
    in one-element lists, and calls the mid block's attention `attentions.0`.

    Args:
        state_dict: `UNet2DModel.state_dict()`.

    Returns:
        A state dict for `UNet.load_state_dict`.
    """
    check.instance("state_dict", state_dict, dict)
    renames = [
        ("downsamplers.0.", "downsample."),
        ("upsamplers.0.", "upsample."),
        ("to_out.0.", "to_out."),
        ("mid_block.attentions.0.", "mid_block.attention."),
    ]
    converted = {}
    for name, tensor in state_dict.items():
        for old, new in renames:
            name = name.replace(old, new)
        converted[name] = tensor
    return converted


# --8<-- [end:convert-diffusers]


# --8<-- [start:parameter-table]
def parameter_table(model: nn.Module) -> list[tuple[str, int]]:
    """Count the parameters of each top-level block (each level of a `ModuleList` separately).

    Args:
        model: A `UNet` (or any module).

    Returns:
        `(name, number of parameters)` rows in the order the blocks were built; their sum is the
        total.
    """
    check.instance("model", model, nn.Module)
    rows = []
    for name, child in model.named_children():
        parts = (
            list(child.named_children())
            if isinstance(child, nn.ModuleList)
            else [("", child)]
        )
        for index, part in parts:
            count = sum(p.numel() for p in part.parameters())
            if count:
                rows.append((f"{name}.{index}" if index else name, count))
    return rows


# --8<-- [end:parameter-table]
