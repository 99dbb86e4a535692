r"""Stable Diffusion in miniature: autoencoder, text encoder and cross-attention UNet, trained here.

Latent diffusion (Rombach et al. 2022) trains in two stages. First an autoencoder
$\mathcal{E}, \mathcal{D}$ (diffusers' `AutoencoderKL`) learns to compress an image $x$ to a latent
$z = \mathcal{E}(x)$ and back, with a reconstruction loss and a small KL penalty towards
$\mathcal{N}(0, I)$. Then a denoiser $\epsilon_\theta(z_t, t, \tau_\theta(y))$ (diffusers'
`UNet2DConditionModel`) learns DDPM's loss on the latents, multiplied by a `scaling_factor` that gives
them unit standard deviation (Eq. 2), attending to the token states of a caption's text encoder
$\tau_\theta$ (`CLIPTextModel`, `snippets.captions`) through cross-attention (Eq. 3). Captions are
dropped to the empty prompt with probability $p_\text{uncond}$ so the same network also predicts
unconditionally, for classifier-free guidance. The parts then drop into diffusers'
`StableDiffusionPipeline` unchanged.

On the 16x16 digits the autoencoder downsamples by $f = 4$ to a 4x4x4 latent (64 numbers for 256
pixels); Stable Diffusion 1.5 uses $f = 8$ and 64x64x4 latents for 512x512x3 images.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from snippets import check
from snippets.captions import WORDS, check_prompt, write_tokenizer

if TYPE_CHECKING:
    from diffusers import (
        AutoencoderKL,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

PIPELINE_FORMAT = "diffusion-model-feast/mini-sd-1"
STATE_FILE = "feast_training.json"  # our record of the run, next to model_index.json
MANIFEST_FILE = "manifest.json"  # the SHA-256 of every file of the save

# --8<-- [start:configs]
VAE_CONFIG = dict(  # SD 1.5: 3 -> 4 channels, (128, 256, 512, 512), f = 8
    in_channels=1,
    out_channels=1,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 32),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=16,
)  # two downsamplings: f = 4, a 4x4x4 latent
UNET_CONFIG = dict(  # SD 1.5: (320, 640, 1280, 1280), 2 layers, 768-wide text states
    sample_size=4,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(32, 64),
    layers_per_block=1,
    cross_attention_dim=32,  # = the text encoder's hidden_size
    attention_head_dim=8,
    norm_num_groups=8,
)
SCHEDULE = dict(  # Stable Diffusion's training schedule, unchanged
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
)
# --8<-- [end:configs]


def _tiny(config: dict, **overrides) -> dict:
    return {**config, **overrides}


def build_vae(**overrides) -> AutoencoderKL:
    """A `diffusers.AutoencoderKL` of `VAE_CONFIG` (keyword arguments override it)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(**_tiny(VAE_CONFIG, **overrides))


def build_unet(**overrides) -> UNet2DConditionModel:
    """A `diffusers.UNet2DConditionModel` of `UNET_CONFIG` (keyword arguments override it)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**_tiny(UNET_CONFIG, **overrides))


def _check_images(name: str, images, channels: int | None = None) -> None:
    check.tensor(name, images, shape=(None, channels, None, None), ge=-1, le=1)
    if len(images) < 1:
        raise ValueError(
            f"{name} must hold at least one image, got shape {tuple(images.shape)}"
        )


def _batches(n: int, batch_size: int, steps: int, generator):
    for _ in range(steps):
        yield torch.randint(0, n, (min(batch_size, n),), generator=generator)


# --8<-- [start:vae-loss]
def vae_loss(
    vae: AutoencoderKL,
    x: torch.Tensor,
    kl_weight: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The autoencoder's loss: reconstruction plus a KL weight (Rombach et al. 2022, Sec. 3.1).

    $$L = \lVert x - \mathcal{D}(z) \rVert_2^2
    + \beta\,\mathrm{KL}\big(q_\mathcal{E}(z \mid x)\,\Vert\,\mathcal{N}(0, I)\big),
    \qquad z \sim q_\mathcal{E}(z \mid x)$$

    Both terms are summed over an image's pixels and latent entries and averaged over the batch.
    Stable Diffusion's autoencoder adds a perceptual (LPIPS) and an adversarial loss; on 16x16
    digits the squared error alone reconstructs well.

    Args:
        vae: The `AutoencoderKL`.
        x: Images, shape `(B, C, H, W)`, in `[-1, 1]`.
        kl_weight: $\beta \ge 0$.
        generator: Random number generator for $z$.

    Returns:
        `(loss, reconstruction, kl)`, scalars.
    """
    posterior = vae.encode(x).latent_dist
    z = posterior.sample(generator=generator)
    x_rec = vae.decode(z).sample
    rec = (x_rec - x).pow(2).flatten(1).sum(1).mean()
    kl = posterior.kl().mean()  # summed over (C, h, w) by diffusers
    return rec + kl_weight * kl, rec, kl


# --8<-- [end:vae-loss]


def train_autoencoder(
    vae: AutoencoderKL,
    images: torch.Tensor,
    steps: int,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    kl_weight: float = 1e-4,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> list[float]:
    r"""Train an `AutoencoderKL` on images with `vae_loss` and AdamW.

    Args:
        vae: The `AutoencoderKL` (trained in place).
        images: Training images, shape `(N, C, H, W)`, in `[-1, 1]`.
        steps: Optimizer steps, `>= 1`.
        batch_size: Images per step.
        learning_rate: AdamW's learning rate, decayed by a cosine to 0.
        kl_weight: $\beta$ of `vae_loss`.
        generator: Random number generator for batches and $z$.
        progress: Show a tqdm bar.

    Returns:
        The loss after every step.
    """
    _check_images("images", images, vae.config.in_channels)
    check.integer("steps", steps, ge=1)
    check.integer("batch_size", batch_size, ge=1)
    check.real("learning_rate", learning_rate, gt=0)
    check.real("kl_weight", kl_weight, ge=0)
    check.generator("generator", generator)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses = []
    vae.train()
    bar = tqdm(total=steps, desc="autoencoder", disable=not progress)
    for index in _batches(len(images), batch_size, steps, generator):
        # 1. encode, sample z, decode; reconstruction + beta KL
        loss, rec, _ = vae_loss(vae, images[index], kl_weight, generator)
        # 2. one AdamW step
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.update()
        bar.set_postfix(reconstruction=f"{rec.item():.3f}")
    bar.close()
    vae.eval()
    return losses


# --8<-- [start:scaling-factor]
@torch.no_grad()
def latent_scaling_factor(
    vae: AutoencoderKL,
    images: torch.Tensor,
    generator: torch.Generator | None = None,
) -> float:
    r"""Stable Diffusion's `scaling_factor`: one over the standard deviation of the latents.

    Rombach et al. rescale $z \sim q_\mathcal{E}(z \mid x)$ by $1 / \hat\sigma$, estimated on a
    batch of training latents (Appendix G), so that the diffused latents have unit variance as
    every noise schedule assumes; SD 1.x's $0.18215$ was computed this way.

    Args:
        vae: The trained `AutoencoderKL`.
        images: Training images, shape `(N, C, H, W)`, in `[-1, 1]`, `N >= 2`.
        generator: Random number generator for $z$.

    Returns:
        $1 / \hat\sigma(z)$.
    """
    _check_images("images", images, vae.config.in_channels)
    z = vae.encode(images).latent_dist.sample(generator=generator)
    return 1.0 / z.flatten().std().item()


# --8<-- [end:scaling-factor]


@torch.no_grad()
def reconstruction_error(vae: AutoencoderKL, images: torch.Tensor) -> float:
    """Mean squared error per pixel of `decode(mean of encode(x))`, on images in `[-1, 1]`."""
    _check_images("images", images, vae.config.in_channels)
    x_rec = vae.decode(vae.encode(images).latent_dist.mode()).sample
    return F.mse_loss(x_rec.clamp(-1, 1), images).item()


def _token_ids(tokenizer: CLIPTokenizer, captions: list[str]) -> torch.Tensor:
    check_prompt(list(captions), tokenizer)
    return tokenizer(
        list(captions),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


# --8<-- [start:denoiser-loss]
def denoiser_loss(
    unet: UNet2DConditionModel,
    text_encoder: CLIPTextModel,
    z0: torch.Tensor,
    input_ids: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The conditional latent-diffusion loss (Rombach et al. 2022, Eq. 3).

    $$L_\text{LDM} = \mathbb{E}_{\mathcal{E}(x), y, \epsilon, t}\big[\lVert \epsilon
    - \epsilon_\theta(z_t, t, \tau_\theta(y)) \rVert_2^2\big]$$

    Args:
        unet: The `UNet2DConditionModel` $\epsilon_\theta$.
        text_encoder: The `CLIPTextModel` $\tau_\theta$.
        z0: Scaled latents, shape `(B, 4, h, w)`.
        input_ids: Token ids of the (possibly dropped) captions, shape `(B, L)`.
        alphas_cumprod: $\bar\alpha$, shape `(T,)`.
        generator: Random number generator for $t$ and $\epsilon$.

    Returns:
        The scalar loss.
    """
    b = z0.shape[0]
    T = alphas_cumprod.shape[0]
    t = torch.randint(0, T, (b,), generator=generator)
    eps = torch.randn(z0.shape, generator=generator)
    a_bar = alphas_cumprod[t].view(b, 1, 1, 1)
    # z_t = sqrt(a_bar) z_0 + sqrt(1 - a_bar) eps (Ho et al. 2020, Eq. 4, on latents)
    z_t = a_bar.sqrt() * z0 + (1 - a_bar).sqrt() * eps
    # tau_theta(y): the text encoder's last hidden states, as the pipeline reads them
    states = text_encoder(input_ids).last_hidden_state
    eps_hat = unet(z_t, t, encoder_hidden_states=states).sample
    return F.mse_loss(eps_hat, eps)


# --8<-- [end:denoiser-loss]


def train_denoiser(
    unet: UNet2DConditionModel,
    text_encoder: CLIPTextModel,
    tokenizer: CLIPTokenizer,
    latent_mean: torch.Tensor,
    latent_std: torch.Tensor,
    scaling_factor: float,
    captions: list[str],
    steps: int,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    p_uncond: float = 0.1,
    ema_decay: float = 0.999,
    generator: torch.Generator | None = None,
    progress: bool = True,
    callback: Callable[[int, list[float], dict], None] | None = None,
    callback_every: int = 0,
) -> tuple[list[float], dict]:
    r"""Train the denoiser and the text encoder together on scaled latents, with caption dropout.

    Each step draws $z = \mu + \sigma\,\epsilon'$ from the autoencoder's posterior (as SD's
    training reads `latent_dist.sample()`), multiplies it by `scaling_factor`, replaces each
    caption by the empty prompt with probability $p_\text{uncond}$ (Ho & Salimans 2022), and takes
    one AdamW step on `denoiser_loss`. An EMA of both networks is kept for sampling.

    Args:
        unet: The `UNet2DConditionModel` (trained in place).
        text_encoder: The `CLIPTextModel` (trained in place, jointly).
        tokenizer: Its `CLIPTokenizer`.
        latent_mean: Posterior means $\mu$, shape `(N, 4, h, w)`.
        latent_std: Posterior standard deviations $\sigma$, same shape.
        scaling_factor: $1/\hat\sigma$ of `latent_scaling_factor`.
        captions: `N` captions, one per latent.
        steps: Optimizer steps.
        batch_size: Latents per step.
        learning_rate: AdamW's learning rate, decayed by a cosine to 0.
        p_uncond: Probability of dropping a caption, in `[0, 1]`.
        ema_decay: Maximum EMA decay.
        generator: Random number generator.
        progress: Show a tqdm bar.
        callback: Called as `callback(step, losses, ema)` every `callback_every` steps
            (checkpoints).
        callback_every: Steps between callbacks (0: never).

    Returns:
        `(losses, ema)`: the loss after every step and the EMA weights
        `{"unet": state_dict, "text_encoder": state_dict}`.
    """
    from diffusers import DDPMScheduler

    from snippets.training import ema_update

    c = unet.config.in_channels
    check.tensor("latent_mean", latent_mean, shape=(None, c, None, None))
    check.tensor("latent_std", latent_std, shape=tuple(latent_mean.shape), ge=0)
    check.real("scaling_factor", scaling_factor, gt=0)
    check.instance("captions", captions, list)
    if len(captions) != len(latent_mean):
        raise ValueError(
            f"captions must hold one caption per latent ({len(latent_mean)}), got "
            f"{len(captions)}"
        )
    check.integer("steps", steps, ge=1)
    check.integer("batch_size", batch_size, ge=1)
    check.real("learning_rate", learning_rate, gt=0)
    check.real("p_uncond", p_uncond, ge=0, le=1)
    check.real("ema_decay", ema_decay, ge=0, lt=1)
    check.generator("generator", generator)
    alphas_cumprod = DDPMScheduler(**SCHEDULE).alphas_cumprod
    ids, null_ids = _token_ids(tokenizer, captions), _token_ids(tokenizer, [""])
    nets = torch.nn.ModuleDict({"unet": unet, "text_encoder": text_encoder})
    ema = {k: v.detach().clone().float() for k, v in nets.state_dict().items()}
    optimizer = torch.optim.AdamW(nets.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses = []
    nets.train()
    bar = tqdm(total=steps, desc="denoiser + text encoder", disable=not progress)
    for step, index in enumerate(_batches(len(ids), batch_size, steps, generator), 1):
        # 1. z ~ q(z | x), scaled to unit variance
        noise = torch.randn(latent_mean[index].shape, generator=generator)
        z0 = scaling_factor * (latent_mean[index] + latent_std[index] * noise)
        # 2. caption dropout: y <- "" with probability p_uncond
        drop = torch.rand(len(index), generator=generator) < p_uncond
        batch_ids = torch.where(drop[:, None], null_ids, ids[index])
        # 3. Eq. 3, one AdamW step on both networks, EMA
        loss = denoiser_loss(
            unet, text_encoder, z0, batch_ids, alphas_cumprod, generator
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(nets.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        ema_update(ema, nets, ema_decay, step)
        losses.append(loss.item())
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if callback is not None and callback_every and step % callback_every == 0:
            callback(step, losses, _split(ema))
    bar.close()
    nets.eval()
    return losses, _split(ema)


def _split(ema: dict) -> dict:
    split = {"unet": {}, "text_encoder": {}}
    for key, value in ema.items():
        part, name = key.split(".", 1)
        split[part][name] = value
    return split


@torch.no_grad()
def encode_latents(
    vae: AutoencoderKL, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The autoencoder's posterior $q_\\mathcal{E}(z \\mid x)$: means and standard deviations."""
    _check_images("images", images, vae.config.in_channels)
    dist = vae.encode(images).latent_dist
    return dist.mean, dist.std


# --8<-- [start:assemble]
def assemble_pipeline(
    vae: AutoencoderKL,
    text_encoder: CLIPTextModel,
    tokenizer: CLIPTokenizer,
    unet: UNet2DConditionModel,
    scheduler: object | None = None,
) -> StableDiffusionPipeline:
    """Put the trained parts into diffusers' `StableDiffusionPipeline`, safety checker off.

    Args:
        vae: The `AutoencoderKL`, its `config.scaling_factor` set.
        text_encoder: The `CLIPTextModel`.
        tokenizer: The `CLIPTokenizer`.
        unet: The `UNet2DConditionModel`.
        scheduler: Any diffusers scheduler (default: DPM-Solver++(2M) on SD's schedule).

    Returns:
        The pipeline, in eval mode, without progress bars.
    """
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    if scheduler is None:
        scheduler = DPMSolverMultistepScheduler(
            **SCHEDULE, algorithm_type="dpmsolver++", steps_offset=1
        )
    pipe = StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --8<-- [end:assemble]


# --8<-- [start:generate]
@torch.no_grad()
def generate(
    pipe: StableDiffusionPipeline,
    prompt: str | list[str],
    num_inference_steps: int = 20,
    guidance_scale: float = 3.0,
    generator: torch.Generator | None = None,
    latents: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample digits from prompts with the pipeline, after checking prompt and latents.

    Args:
        pipe: A `StableDiffusionPipeline` of `assemble_pipeline` or `load_pipeline`.
        prompt: A prompt or a list of prompts, words of the tokenizer's vocabulary only.
        num_inference_steps: Scheduler steps.
        guidance_scale: $s$ of classifier-free guidance (diffusers' convention; 1: none).
        generator: Random number generator for the starting latents.
        latents: Starting latents $z_T$, shape `(B, 4, h, w)` (drawn if omitted).

    Returns:
        Images, shape `(B, 1, 16, 16)`, in `[-1, 1]`.
    """
    prompts = check_prompt(prompt, pipe.tokenizer)
    check.integer("num_inference_steps", num_inference_steps, ge=1)
    check.real("guidance_scale", guidance_scale, ge=0)
    check.generator("generator", generator)
    c, s = pipe.unet.config.in_channels, pipe.unet.config.sample_size
    if latents is not None:
        check.tensor("latents", latents, shape=(len(prompts), c, s, s))
    size = s * pipe.vae_scale_factor
    out = pipe(
        prompts,
        height=size,
        width=size,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        generator=generator,
        latents=latents,
        output_type="pt",
    ).images  # in [0, 1]
    return out * 2 - 1


# --8<-- [end:generate]


# --8<-- [start:scratch-sampler]
@torch.no_grad()
def scratch_sample(
    pipe: StableDiffusionPipeline,
    prompt: str | list[str],
    latents: torch.Tensor,
    sampler: str = "dpmsolver++",
    num_inference_steps: int = 20,
    guidance_scale: float = 3.0,
    generator: torch.Generator | None = None,
    **options: object,
) -> torch.Tensor:
    r"""The same sampling with the project's from-scratch samplers, on the latents.

    The prompt and the empty prompt are encoded once, $\tau_\theta(y)$ and $\tau_\theta(\varnothing)$;
    the model the sampler sees is the guided $\tilde\epsilon = \epsilon_u + s(\epsilon_c - \epsilon_u)$;
    the clean latent is decoded with $\mathcal{D}(z_0 / \text{scaling\_factor})$.

    Args:
        pipe: The `StableDiffusionPipeline`.
        prompt: A prompt or a list of prompts.
        latents: Starting latents $z_T$, shape `(B, 4, h, w)`.
        sampler: A key of `snippets.sampling.SAMPLERS`.
        num_inference_steps: Sampler steps.
        guidance_scale: $s$ (1: the conditional prediction alone).
        generator: Random number generator of a stochastic sampler.
        **options: The sampler's options (e.g. `clip_sample=False` for DDIM: latents are not
            bounded like pixels).

    Returns:
        Images, shape `(B, 1, 16, 16)`, in `[-1, 1]`.
    """
    from snippets.guidance import guided_prediction
    from snippets.sampling import SAMPLERS
    from snippets.schedules import NoiseSchedule

    prompts = check_prompt(prompt, pipe.tokenizer)
    c, s = pipe.unet.config.in_channels, pipe.unet.config.sample_size
    check.tensor("latents", latents, shape=(len(prompts), c, s, s))
    check.one_of("sampler", sampler, tuple(SAMPLERS))
    check.real("guidance_scale", guidance_scale, ge=0)
    ids = _token_ids(pipe.tokenizer, prompts + [""] * len(prompts))
    states = pipe.text_encoder(ids).last_hidden_state  # tau_theta(y), tau_theta("")

    def model(z, t):
        # 1. one batch: conditional and unconditional halves
        eps = pipe.unet(torch.cat([z, z]), torch.cat([t, t]), states).sample
        eps_c, eps_u = eps.chunk(2)
        # 2. classifier-free guidance (Ho & Salimans 2022, diffusers' convention)
        return guided_prediction(eps_c, eps_u, guidance_scale)

    schedule = NoiseSchedule.from_name(
        "scaled_linear",
        num_train_timesteps=SCHEDULE["num_train_timesteps"],
        beta_start=SCHEDULE["beta_start"],
        beta_end=SCHEDULE["beta_end"],
    )
    z0 = SAMPLERS[sampler](
        model, latents, schedule, num_inference_steps, generator=generator, **options
    )
    x = pipe.vae.decode(z0 / pipe.vae.config.scaling_factor).sample
    return x.clamp(-1, 1)


# --8<-- [end:scratch-sampler]


class _Quiet:
    """Silence diffusers' and transformers' progress bars and warnings while saving or loading."""

    def __enter__(self):
        from diffusers.utils import logging as d_logging
        from transformers.utils import logging as t_logging

        self.levels = (d_logging.get_verbosity(), t_logging.get_verbosity())
        self.bars = (
            d_logging.is_progress_bar_enabled(),
            t_logging.is_progress_bar_enabled(),
        )
        for logging in (d_logging, t_logging):
            logging.set_verbosity_error()
            logging.disable_progress_bar()
        return self

    def __exit__(self, *exc):
        from diffusers.utils import logging as d_logging
        from transformers.utils import logging as t_logging

        for logging, level, bar in zip((d_logging, t_logging), self.levels, self.bars):
            logging.set_verbosity(level)
            if bar:
                logging.enable_progress_bar()
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --8<-- [start:save]
def save_pipeline(
    pipe: StableDiffusionPipeline, directory: str | Path, record: dict | None = None
) -> Path:
    """Save a pipeline as one unit: staging folder, hashed manifest, fsync, rename into place.

    The folder is `model_index.json` and one subfolder per part (diffusers' `save_pretrained`
    layout), `feast_training.json` (`record`: how the parts were trained, what they measured) and
    `manifest.json`, the SHA-256 of every other file, which `load_pipeline` checks. Everything is
    written into a staging folder next to `directory` and flushed to disk; then the old folder is
    renamed aside and the staging folder renamed into place, so a reader sees the old save or the
    new one, never a mixture (a save stopped between the two renames leaves `<name>.old`, which
    the next save puts back before it starts).

    Args:
        pipe: The `StableDiffusionPipeline`.
        directory: Destination folder (replaced).
        record: JSON-serialisable record of the run.

    Returns:
        The folder.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    old = directory.with_name(directory.name + ".old")
    if old.is_dir() and not directory.exists():  # a save stopped between its renames
        os.rename(old, directory)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-save-", dir=directory.parent))
    try:
        # 1. every file, then the manifest of their SHA-256, into the staging folder
        with _Quiet():
            pipe.save_pretrained(staging, safe_serialization=True)
        words = [t[:-4] for t in pipe.tokenizer.get_vocab() if t.endswith("</w>")]
        write_tokenizer(staging / "tokenizer", tuple(w for w in WORDS if w in words))
        (staging / STATE_FILE).write_text(
            json.dumps({"format": PIPELINE_FORMAT, **(record or {})}, indent=2) + "\n"
        )
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        manifest = {
            "format": PIPELINE_FORMAT,
            "files": {p.relative_to(staging).as_posix(): _sha256(p) for p in files},
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        # 2. flush every file and folder to disk before the renames
        for path in sorted(staging.rglob("*"), reverse=True):
            _fsync(path)
        _fsync(staging)
        # 3. swap: the old folder aside, the staging folder in place (the commit point)
        if old.exists():
            shutil.rmtree(old)
        if directory.exists():
            os.rename(directory, old)
        os.rename(staging, directory)
        _fsync(directory.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


# --8<-- [end:save]


def verify_pipeline(directory: str | Path) -> dict:
    """Check every file of a `save_pipeline` folder against its `manifest.json`.

    Files the manifest does not name (a README added later) are not checked.

    Args:
        directory: The pipeline folder.

    Returns:
        The manifest.

    Raises:
        FileNotFoundError: If `manifest.json` or a file it names is missing (the message names it).
        ValueError: If the manifest is not one of `save_pipeline`, or a file's SHA-256 differs
            from it (corrupt or changed; the message names the file).
    """
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; not a folder written by save_pipeline, or its save did not "
            "finish"
        )
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        manifest = {}
    files = manifest.get("files")
    if manifest.get("format") != PIPELINE_FORMAT or not isinstance(files, dict):
        raise ValueError(
            f"{path}: not a manifest of save_pipeline (format "
            f"{manifest.get('format')!r}, expected {PIPELINE_FORMAT!r})"
        )
    for name, digest in files.items():
        file = directory / name
        if not file.is_file():
            raise FileNotFoundError(f"{file}: missing (listed in {MANIFEST_FILE})")
        if _sha256(file) != digest:
            raise ValueError(
                f"{file}: corrupt or changed, its SHA-256 differs from {MANIFEST_FILE}"
            )
    return manifest


def load_pipeline(directory: str | Path) -> StableDiffusionPipeline:
    """Load a folder of `save_pipeline` offline, after checking it, refusing other kinds clearly.

    Args:
        directory: A folder with `model_index.json`, `feast_training.json` and `manifest.json`.

    Returns:
        The `StableDiffusionPipeline`, progress bars off.

    Raises:
        FileNotFoundError: If the folder, its manifest or a file the manifest names is missing.
        ValueError: If it is another kind of checkpoint (e.g. the pixel-space `checkpoints/digits`)
            or a file is corrupt (`verify_pipeline`).
    """
    from diffusers import StableDiffusionPipeline

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such pipeline folder")
    index = directory / "model_index.json"
    if not index.is_file():
        kind = (
            "a pixel-space checkpoint of snippets.checkpoint (load it with "
            "snippets.checkpoint.load_checkpoint)"
            if (directory / "config.json").is_file()
            else "not a pipeline folder"
        )
        raise ValueError(f"{directory}: no model_index.json; this is {kind}")
    verify_pipeline(directory)
    name = json.loads(index.read_text()).get("_class_name")
    if name != "StableDiffusionPipeline":
        raise ValueError(
            f"{directory}: model_index.json names {name!r}, not StableDiffusionPipeline"
        )
    with _Quiet():
        pipe = StableDiffusionPipeline.from_pretrained(
            directory,
            local_files_only=True,
            safety_checker=None,
            feature_extractor=None,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def read_record(directory: str | Path) -> dict:
    """The `feast_training.json` of a pipeline folder (how it was trained, what it measured)."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; not a folder written by save_pipeline"
        )
    return json.loads(path.read_text())


TINY = dict(  # the test suite's and the notebook's fast mode
    vae=dict(block_out_channels=(8, 8, 8), norm_num_groups=4),
    unet=dict(block_out_channels=(16, 16), norm_num_groups=4, cross_attention_dim=16),
    text_encoder=dict(num_layers=1),
)


def train_mini_sd(
    out: str | Path,
    vae_steps: int,
    unet_steps: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    kl_weight: float = 1e-4,
    p_uncond: float = 0.1,
    seed: int = 0,
    n_train: int | None = None,
    tiny: bool = False,
    checkpoint_every: int = 0,
    progress: bool = True,
) -> Path:
    """Train all three parts on the digits' train split and save the pipeline (CLI `train-sd`).

    Args:
        out: Pipeline folder to write.
        vae_steps: Autoencoder steps.
        unet_steps: Denoiser + text encoder steps.
        batch_size: Images per step.
        learning_rate: AdamW's learning rate for both stages.
        kl_weight: $\\beta$ of `vae_loss`.
        p_uncond: Caption dropout.
        seed: Seed of every random choice.
        n_train: Use only the first `n_train` training digits (tests).
        tiny: The `TINY` networks (tests and the notebook's fast mode).
        checkpoint_every: Save the pipeline (EMA weights) every this many denoiser steps, so
            that an interrupted run leaves a folder to sample from. It cannot be resumed: the
            folder is diffusers' layout for sampling, without the raw weights, AdamW moments
            and random state that `snippets.checkpoint`'s training checkpoints keep.
        progress: tqdm bars.

    Returns:
        The folder.
    """
    import time

    from transformers import CLIPTextModel

    from snippets.captions import (
        attribute_thresholds,
        build_tokenizer,
        make_captions,
        text_encoder_config,
    )
    from snippets.data import load_digits

    check.integer("vae_steps", vae_steps, ge=1)
    check.integer("unet_steps", unet_steps, ge=1)
    check.integer("seed", seed, ge=0)
    check.integer("checkpoint_every", checkpoint_every, ge=0)
    check.boolean("tiny", tiny)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x, y = load_digits("train")
    thresholds = attribute_thresholds(x)
    if n_train is not None:
        check.integer("n_train", n_train, ge=1)
        x, y = x[:n_train], y[:n_train]
    captions = make_captions(x, y, thresholds)
    sizes = TINY if tiny else {"vae": {}, "unet": {}, "text_encoder": {}}
    # 1. the autoencoder, then the scaling factor 1 / std(z)
    vae = build_vae(**sizes["vae"])
    start = time.perf_counter()
    vae_losses = train_autoencoder(
        vae, x, vae_steps, batch_size, learning_rate, kl_weight, generator, progress
    )
    vae_seconds = time.perf_counter() - start
    scale = latent_scaling_factor(vae, x, generator)
    vae.register_to_config(scaling_factor=scale)
    mean, std = encode_latents(vae, x)
    record = {
        "vae_steps": vae_steps,
        "unet_steps": unet_steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "kl_weight": kl_weight,
        "p_uncond": p_uncond,
        "seed": seed,
        "n_train": len(x),
        "tiny": tiny,
        "caption_thresholds": thresholds,
        "scaling_factor": scale,
        "latent_shape": list(mean.shape[1:]),
        "test_reconstruction_mse": reconstruction_error(vae, load_digits("test")[0]),
        "vae_loss_last_100": sum(vae_losses[-100:]) / len(vae_losses[-100:]),
        "vae_seconds": vae_seconds,
    }
    # 2. the text encoder and the denoiser, jointly
    tokenizer = build_tokenizer()
    unet = build_unet(**sizes["unet"])
    text_encoder = CLIPTextModel(
        text_encoder_config(
            tokenizer,
            hidden_size=unet.config.cross_attention_dim,  # the UNet's K, V read it
            **sizes["text_encoder"],
        )
    )
    start = time.perf_counter()

    def save(step, losses, ema):
        te, un = copy.deepcopy(text_encoder), copy.deepcopy(unet)
        te.load_state_dict(ema["text_encoder"])
        un.load_state_dict(ema["unet"])
        record.update(
            unet_steps_done=step,
            unet_loss_last_100=sum(losses[-100:]) / len(losses[-100:]),
            unet_seconds=time.perf_counter() - start,
        )
        save_pipeline(assemble_pipeline(vae, te, tokenizer, un), out, record)

    losses, ema = train_denoiser(
        unet, text_encoder, tokenizer, mean, std, scale, captions, unet_steps,
        batch_size, learning_rate, p_uncond, generator=generator, progress=progress,
        callback=save, callback_every=checkpoint_every,
    )  # fmt: skip
    save(unet_steps, losses, ema)
    return Path(out)
