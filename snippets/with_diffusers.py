r"""Unit 1 with 🤗 Diffusers: pipelines, models and schedulers, offline on a CPU.

The course's notebook "Introduction to Diffusers" downloads a pipeline and the Smithsonian
butterflies from the Hub. Everything here works without a network:

1. `scheduler_from_checkpoint`, `unet2dmodel_from_checkpoint`, `fold_class_label` and
   `pipeline_from_checkpoint` turn the project's shipped checkpoint (`checkpoints/digits/`) into a
   `diffusers.DDPMPipeline`: a `UNet2DModel` holding the same weights and a `DDPMScheduler` with the
   same noise schedule and prediction type;
2. `digits_dataset` and `course_transform` are the course's data step (a `datasets.Dataset`, a
   transform, a `DataLoader`) on scikit-learn's bundled digits;
3. `train_loop` is the course's training loop: noise the images with `scheduler.add_noise`,
   predict the noise, mean squared error, AdamW (Ho et al. 2020, Algorithm 1);
4. `sample_loop` is what `DDPMPipeline.__call__` does, written out over `scheduler.timesteps`
   (Ho et al. 2020, Algorithm 2 when the scheduler is a `DDPMScheduler`), with class labels and
   classifier-free guidance added;
5. `show_images` tiles a batch into one PIL image, as the course's helper of the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from snippets import check

if TYPE_CHECKING:  # diffusers and datasets are imported by the functions that need them
    import datasets
    from diffusers import DDPMPipeline, DDPMScheduler, SchedulerMixin, UNet2DModel

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
# our schedule names -> DDPMScheduler's beta_schedule
BETA_SCHEDULES = {
    "linear": "linear",
    "scaled_linear": "scaled_linear",
    "cosine": "squaredcos_cap_v2",
    "sigmoid": "sigmoid",
}
# DDPMScheduler's betas default to 1e-4 -> 0.02 whatever the name; our "scaled_linear" is Stable
# Diffusion's 0.00085 -> 0.012 (the defaults of snippets.schedules.scaled_linear_betas)
DEFAULT_BETAS = {"scaled_linear": {"beta_start": 0.00085, "beta_end": 0.012}}


# --8<-- [start:scheduler-from-checkpoint]
def scheduler_from_checkpoint(directory: str | Path) -> DDPMScheduler:
    r"""The `DDPMScheduler` with a checkpoint's noise schedule and prediction type.

    Its `alphas_cumprod` equal the $\bar\alpha_t = \prod_{s \le t} (1 - \beta_s)$ of the
    checkpoint's `NoiseSchedule` (Ho et al. 2020, Eq. 4); the cosine schedule of Nichol & Dhariwal
    2021 is called `"squaredcos_cap_v2"` in diffusers.

    Args:
        directory: A checkpoint folder written by `snippets.checkpoint` (e.g. `checkpoints/digits`).

    Returns:
        A `DDPMScheduler` (variance `"fixed_small"`, $\hat x_0$ clipped to $[-1, 1]$, diffusers'
        defaults, the same as `snippets.sampling.ddpm_sample`'s).

    Raises:
        FileNotFoundError: If the folder or its `config.json` is missing.
        ValueError: If the schedule is unknown.
    """
    from diffusers import DDPMScheduler

    from snippets.checkpoint import read_config

    config = read_config(directory)
    check.one_of("prediction_type", config["prediction_type"], PREDICTION_TYPES)
    schedule = dict(config["schedule"])
    name = schedule.pop("name")
    if name not in BETA_SCHEDULES:
        raise ValueError(
            f"{directory}: schedule {name!r} has no DDPMScheduler equivalent; known: "
            f"{list(BETA_SCHEDULES)}"
        )
    if schedule.pop("rescale_zero_terminal_snr", False):
        schedule["rescale_betas_zero_snr"] = True
    schedule = {**DEFAULT_BETAS.get(name, {}), **schedule}
    return DDPMScheduler(
        beta_schedule=BETA_SCHEDULES[name],
        prediction_type=config["prediction_type"],
        # num_train_timesteps, and beta_start / beta_end when the run set them
        **schedule,
    )


# --8<-- [end:scheduler-from-checkpoint]


# --8<-- [start:unet2dmodel-from-checkpoint]
def unet2dmodel_from_checkpoint(
    directory: str | Path, use_ema: bool = True
) -> UNet2DModel:
    r"""A `diffusers.UNet2DModel` holding the weights of a checkpoint of the project's `UNet`.

    The project's `UNet` has the same layers as `UNet2DModel` under almost the same names
    (`snippets.unet.convert_diffusers_state_dict` maps them); this goes the other way. A
    class-conditional checkpoint gives a `UNet2DModel` with `num_class_embeds = num_classes + 1`
    (the last label is the null class of classifier-free guidance).

    Args:
        directory: A checkpoint folder (e.g. `checkpoints/digits`).
        use_ema: Take the EMA weights (what sampling should use) or the raw ones.

    Returns:
        The `UNet2DModel` in eval mode; `unet(x, t, class_labels).sample` equals the checkpoint's
        `UNet(x, t, class_labels)`.

    Raises:
        FileNotFoundError: If the folder or a file is missing.
        ValueError: If a file is corrupt or does not match the config.
    """
    from snippets.checkpoint import load_checkpoint
    from snippets.unet import convert_diffusers_state_dict, diffusers_equivalent

    check.boolean("use_ema", use_ema)
    ours = load_checkpoint(directory, use_ema=use_ema).model
    unet = diffusers_equivalent(ours.config)
    # 1. diffusers' name for each of our parameter names (the inverse of
    # convert_diffusers_state_dict)
    diffusers_name = convert_diffusers_state_dict(
        {name: name for name in unet.state_dict()}
    )
    # 2. copy every tensor under its diffusers name; strict, so nothing is left out
    unet.load_state_dict(
        {diffusers_name[name]: tensor for name, tensor in ours.state_dict().items()}
    )
    return unet.eval()


# --8<-- [end:unet2dmodel-from-checkpoint]


# --8<-- [start:fold-class-label]
def fold_class_label(unet: UNet2DModel, class_label: int) -> UNet2DModel:
    r"""An unconditional copy of a class-conditional `UNet2DModel` that always sees `class_label`.

    `UNet2DModel` adds the label's embedding to the time embedding,
    $\mathbf{e} = W_2\,\mathrm{SiLU}(W_1\,\mathbf{e}(t) + b_1) + b_2 + E[c]$, so a fixed label $c$
    is a constant that can move into the bias: $b_2 \leftarrow b_2 + E[c]$. The copy needs no
    `class_labels` argument, which is what `DDPMPipeline` (it has no label argument) requires.

    Args:
        unet: A `UNet2DModel` built with `num_class_embeds` (and `class_embed_type=None`).
        class_label: The label in `[0, num_class_embeds)`; the last one is the project's null class
            (unconditional generation).

    Returns:
        A new `UNet2DModel` without class embedding, in eval mode; `unet` is left unchanged.
    """
    from diffusers import UNet2DModel

    num_class_embeds = unet.config.num_class_embeds
    if num_class_embeds is None or unet.config.class_embed_type is not None:
        raise ValueError(
            "fold_class_label needs a UNet2DModel with num_class_embeds and "
            "class_embed_type=None"
        )
    if (
        isinstance(class_label, bool)
        or int(class_label) != class_label
        or not 0 <= class_label < num_class_embeds
    ):
        raise ValueError(
            f"class_label must be an integer in [0, {num_class_embeds}), got "
            f"{class_label!r}"
        )
    config = {**unet.config, "num_class_embeds": None}
    folded = UNet2DModel.from_config(config)
    state = {
        k: v
        for k, v in unet.state_dict().items()
        if not k.startswith("class_embedding.")
    }
    # b_2 <- b_2 + E[c]
    state["time_embedding.linear_2.bias"] = (
        state["time_embedding.linear_2.bias"]
        + unet.class_embedding.weight[int(class_label)].detach()
    )
    folded.load_state_dict(state)
    return folded.eval()


# --8<-- [end:fold-class-label]


# --8<-- [start:pipeline-from-checkpoint]
def pipeline_from_checkpoint(
    directory: str | Path, class_label: int | None = None, use_ema: bool = True
) -> DDPMPipeline:
    r"""A `DDPMPipeline` (Ho et al. 2020) built offline from a checkpoint folder of this project.

    Args:
        directory: A checkpoint folder (e.g. `checkpoints/digits`).
        class_label: For a class-conditional checkpoint, the label every image gets (default: the
            null class, i.e. unconditional samples); must be `None` for an unconditional one.
        use_ema: Take the EMA weights (what sampling should use) or the raw ones.

    Returns:
        `DDPMPipeline(unet=..., scheduler=...)`: `pipeline(batch_size, generator)` samples, and
        `save_pretrained` / `from_pretrained` round-trip it through a local folder.

    A digits model trained at the native 8x8 (`data.upsample_to` in its config) gives a
    pipeline that samples at 8x8, as the network does; `snippets.fast_digits.upsample_digits`
    then makes the 16x16 digits, as `snippets.checkpoint.generate` does.
    """
    from diffusers import DDPMPipeline

    check.boolean("use_ema", use_ema)
    scheduler = scheduler_from_checkpoint(directory)
    unet = unet2dmodel_from_checkpoint(directory, use_ema=use_ema)
    num_class_embeds = unet.config.num_class_embeds
    if num_class_embeds is None and class_label is not None:
        raise ValueError(
            f"{directory} holds an unconditional model: class_label must be None, got "
            f"{class_label!r}"
        )
    if num_class_embeds is not None:
        # 1. DDPMPipeline passes no labels: fix one (the null class by default) inside
        # the network
        unet = fold_class_label(
            unet, num_class_embeds - 1 if class_label is None else class_label
        )
    # 2. the two building blocks a pipeline holds
    return DDPMPipeline(unet=unet, scheduler=scheduler)


# --8<-- [end:pipeline-from-checkpoint]


# --8<-- [start:digits-dataset]
def digits_dataset(split: str = "train") -> datasets.Dataset:
    r"""scikit-learn's bundled digits as a `datasets.Dataset` with `"image"` (PIL) and `"label"` columns.

    The same kind of object as `load_dataset("huggan/smithsonian_butterflies_subset", split="train")`
    in the course, so the course's data code runs on it unchanged. The 8x8 scans (values 0..16)
    become 8-bit grayscale PIL images ($p \mapsto \mathrm{round}(255\,p/16)$), in the same seeded
    train/test split as `snippets.data.load_digits`.

    Args:
        split: `"train"`, `"test"` or `"all"`.

    Returns:
        A `datasets.Dataset` of 8x8 `L`-mode images and integer labels in `[0, 10)`.
    """
    import datasets

    from snippets.data import load_digits

    check.one_of("split", split, ("train", "test", "all"))
    x, y = load_digits(split, image_size=8)  # 8x8, in [-1, 1] = p / 8 - 1
    pixels = ((x[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy()
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.Value("int64")}
    )
    return datasets.Dataset.from_dict(
        {"image": [Image.fromarray(p) for p in pixels], "label": y.tolist()},
        features=features,
    )


# --8<-- [end:digits-dataset]


# --8<-- [start:course-transform]
def course_transform(
    image_size: int = 16,
    channels: int = 1,
    random_flip: bool = False,
    generator: torch.Generator | None = None,
) -> Callable[[dict], dict]:
    r"""The course's preprocessing, for `dataset.set_transform`: resize, flip, to a tensor in $[-1, 1]$.

    The course composes torchvision's `Resize((s, s))`, `RandomHorizontalFlip()`, `ToTensor()` and
    `Normalize([0.5], [0.5])`; this does the same with PIL and torch (no torchvision needed):
    $x = (p / 255 - 0.5) / 0.5 = p / 127.5 - 1$.

    Args:
        image_size: Side $s$ of the square output (bilinear resize).
        channels: 1 (grayscale, `"L"`) or 3 (`"RGB"`, the butterflies).
        random_flip: Flip each image horizontally with probability 1/2 (the course does, for
            butterflies; digits must not be flipped).
        generator: Random number generator for the flips.

    Returns:
        `transform(examples)`: a batch `{"image": [PIL images], ...}` to `{"images": [tensors]}`,
        each of shape `(channels, image_size, image_size)`.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    check.integer("image_size", image_size, ge=1)
    check.boolean("random_flip", random_flip)
    check.generator("generator", generator)

    def transform(examples: dict) -> dict:
        if "image" not in examples:
            raise ValueError(
                f"the dataset has no 'image' column; columns: {list(examples)}"
            )
        images = []
        for image in examples["image"]:
            # 1. Resize((s, s)) and the colour mode
            image = image.convert("L" if channels == 1 else "RGB").resize(
                (image_size, image_size), Image.BILINEAR
            )
            # 2. ToTensor + Normalize([0.5], [0.5]): (H, W, C) uint8 -> (C, H, W) in
            # [-1, 1]
            array = np.asarray(image, dtype=np.float32).reshape(
                image_size, image_size, channels
            )
            x = torch.from_numpy(array.copy()).permute(2, 0, 1) / 127.5 - 1.0
            # 3. RandomHorizontalFlip
            if random_flip and torch.rand((), generator=generator) < 0.5:
                x = x.flip(-1)
            images.append(x)
        return {"images": images}

    return transform


# --8<-- [end:course-transform]


# --8<-- [start:train-loop]
def train_loop(
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    dataloader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    num_epochs: int = 1,
    max_steps: int | None = None,
    generator: torch.Generator | None = None,
) -> list[float]:
    r"""The course's training loop (Ho et al. 2020, Algorithm 1): learn to predict the noise.

    For each batch of clean images $x_0$: draw $\epsilon \sim \mathcal{N}(0, I)$ and
    $t \sim \mathcal{U}\{0, \dots, T-1\}$, noise with `scheduler.add_noise` (Eq. 4),
    $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$, and take an optimizer step
    on the mean squared error (Eq. 14),

    $$L = \big\| \epsilon - \epsilon_\theta(x_t, t) \big\|^2 .$$

    A scheduler built with `prediction_type="v_prediction"` or `"sample"` regresses on
    $v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0$ or on $x_0$ instead.

    Args:
        unet: The `UNet2DModel` to train (unconditional; put it on the data's device first).
        scheduler: Supplies $\bar\alpha_t$ (`add_noise`), $T$ and the prediction type.
        dataloader: Yields batches `{"images": tensor (B, C, H, W) in [-1, 1]}` (the course's format).
        optimizer: E.g. `torch.optim.AdamW(unet.parameters(), lr=4e-4)`, as in the course.
        num_epochs: Passes over the data.
        max_steps: Stop after this many optimizer steps in all (`None`: run every epoch).
        generator: Random number generator for $\epsilon$ and $t$ (CPU), for reproducible runs.

    Returns:
        The loss of every step.
    """
    check.integer("num_epochs", num_epochs, ge=1)
    if max_steps is not None:
        check.integer("max_steps", max_steps, ge=1)
    prediction_type = scheduler.config.prediction_type
    if prediction_type not in ("epsilon", "v_prediction", "sample"):
        raise ValueError(f"cannot train for prediction_type {prediction_type!r}")
    num_train_timesteps = scheduler.config.num_train_timesteps
    device = next(unet.parameters()).device
    losses = []
    unet.train()
    for epoch in range(num_epochs):
        for batch in dataloader:
            if "images" not in batch:
                raise ValueError(
                    "batches must hold 'images' (see course_transform), got keys "
                    f"{list(batch)}"
                )
            x0 = batch["images"].to(device)
            # 1. noise epsilon ~ N(0, I) and a timestep t ~ U{0, ..., T-1} per image
            noise = torch.randn(x0.shape, generator=generator).to(device)
            t = torch.randint(
                0, num_train_timesteps, (x0.shape[0],), generator=generator
            ).to(device)
            # 2. x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) epsilon, Eq. (4)
            x_t = scheduler.add_noise(x0, noise, t)
            # 3. the network's prediction and its target
            prediction = unet(x_t, t, return_dict=False)[0]
            if prediction_type == "epsilon":
                target = noise
            elif prediction_type == "v_prediction":
                target = scheduler.get_velocity(x0, noise, t)
            else:
                target = x0
            # 4. mean squared error, Eq. (14), and one AdamW step
            loss = F.mse_loss(prediction, target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            if max_steps is not None and len(losses) >= max_steps:
                unet.eval()
                return losses
    unet.eval()
    return losses


# --8<-- [end:train-loop]


# --8<-- [start:sample-loop]
@torch.no_grad()
def sample_loop(
    unet: UNet2DModel,
    scheduler: SchedulerMixin,
    batch_size: int = 1,
    num_inference_steps: int = 1000,
    class_labels: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""`DDPMPipeline.__call__` written out, with class labels and classifier-free guidance added.

    Start from $x_T \sim \mathcal{N}(0, I)$ and let the scheduler step backwards through
    `scheduler.timesteps`; with a `DDPMScheduler` each step is Algorithm 2 of Ho et al. 2020. With
    the same `generator` and no labels the result equals `pipeline(..., output_type="pt")` before
    its mapping to $[0, 1]$. With labels and `guidance_scale` $s \ne 1$ the prediction is
    $\epsilon_\varnothing + s\,(\epsilon_c - \epsilon_\varnothing)$ (Ho & Salimans 2022, Eq. 6 in
    diffusers' convention), the null class $\varnothing$ being the last label.

    Args:
        unet: A `UNet2DModel`; class-conditional ones need `class_labels`.
        scheduler: Any diffusers scheduler with `set_timesteps` and `step` (DDPM, DDIM,
            DPM-Solver++, Euler, ...); its prediction type must be the one `unet` was trained for.
        batch_size: Number of images $B$.
        num_inference_steps: Number of denoising steps.
        class_labels: Integer labels, shape `(B,)`, in `[0, num_class_embeds - 1)`.
        guidance_scale: $s$; 1 is the plain conditional model.
        generator: Random number generator for $x_T$ and the scheduler's noise.

    Returns:
        Images $x_0$, shape `(B, C, H, W)`, roughly in $[-1, 1]$.
    """
    from diffusers.utils.torch_utils import randn_tensor

    num_class_embeds = unet.config.num_class_embeds
    check.integer("batch_size", batch_size, ge=1)
    T = scheduler.config.num_train_timesteps
    check.integer("num_inference_steps", num_inference_steps, ge=1, le=T)
    check.real("guidance_scale", guidance_scale)
    check.generator("generator", generator)
    if (class_labels is None) != (num_class_embeds is None):
        raise ValueError(
            "class_labels are required for a class-conditional unet and not allowed "
            "otherwise "
            f"(num_class_embeds={num_class_embeds})"
        )
    if class_labels is not None:
        check.tensor("class_labels", class_labels, dtype="int", shape=(batch_size,))
        if class_labels.min() < 0 or class_labels.max() >= num_class_embeds:
            raise ValueError(
                f"class_labels must be in [0, {num_class_embeds}), got values up to "
                f"{int(class_labels.max())}"
            )
    elif guidance_scale != 1.0:
        raise ValueError(
            "guidance_scale needs a class-conditional unet and class_labels"
        )
    device = next(unet.parameters()).device
    size = unet.config.sample_size
    shape = (
        batch_size,
        unet.config.in_channels,
        *((size, size) if isinstance(size, int) else size),
    )
    # 1. x_T ~ N(0, I), drawn as DDPMPipeline draws it (scaled for schedulers that work
    # in sigma)
    x = (
        randn_tensor(shape, generator=generator, device=device, dtype=unet.dtype)
        * scheduler.init_noise_sigma
    )
    # 2. the inference timesteps, e.g. 999, 998, ..., 0
    scheduler.set_timesteps(num_inference_steps)
    if class_labels is not None:
        labels = class_labels.to(device)
        if guidance_scale != 1.0:  # conditional half first, null class second
            labels = torch.cat([labels, torch.full_like(labels, num_class_embeds - 1)])
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)  # the identity for DDPM and DDIM
        # 3. the network's prediction (epsilon, v or x_0, as the scheduler's
        # prediction_type says)
        if class_labels is not None and guidance_scale != 1.0:
            pred_cond, pred_uncond = unet(
                torch.cat([x_in, x_in]), t, class_labels=labels
            ).sample.chunk(2)
            model_output = pred_uncond + guidance_scale * (pred_cond - pred_uncond)
        elif class_labels is not None:
            model_output = unet(x_in, t, class_labels=labels).sample
        else:
            model_output = unet(x_in, t).sample
        # 4. x_t -> x_{t-1}
        x = scheduler.step(model_output, t, x, generator=generator).prev_sample
    return x


# --8<-- [end:sample-loop]


# --8<-- [start:show-images]
def show_images(
    images: torch.Tensor, nrow: int | None = None, scale: int = 4
) -> Image.Image:
    r"""Tile images in $[-1, 1]$ into one PIL image (the course's `show_images`); clipped for display.

    Args:
        images: Shape `(B, C, H, W)` with `C` 1 or 3.
        nrow: Images per row (default: about $\sqrt{B}$).
        scale: Integer upscaling (nearest), so that 16x16 digits are visible.

    Returns:
        A PIL image (Jupyter displays it when it ends a cell).
    """
    import tempfile

    from snippets.data import save_grid

    check.tensor("images", images, ndim=4)
    if nrow is not None:
        check.integer("nrow", nrow, ge=1)
    check.integer("scale", scale, ge=1)
    with tempfile.TemporaryDirectory() as folder:
        path = save_grid(images, Path(folder) / "grid.png", nrow=nrow, scale=scale)
        with Image.open(path) as image:
            return image.copy()


# --8<-- [end:show-images]
