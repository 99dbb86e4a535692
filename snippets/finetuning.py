r"""Fine-tuning: start from a trained model's weights and keep training on a new distribution.

The idea of the Hugging Face Diffusion Models Course's `finetune_model.py` (Unit 2): load a
pipeline trained on one data set, continue the ordinary denoising objective (Ho et al. 2020,
Algorithm 1) on another, with a lower learning rate and few steps, and gradient accumulation when
a batch does not fit in memory. Nothing in the loss changes; only the starting point does:
$\theta_0 = \theta_\text{pretrained}$ instead of a random initialisation.

The new distribution here is made offline from the bundled digits by a fixed transform
(`TRANSFORMS`): by default `"thick"`, the same digits written with a thicker pen (a 3x3
grey-level dilation, i.e. a max-pool of stride 1). A model trained on the thin digits already
knows the shapes; what it must learn is the new stroke, so the head start of fine-tuning over
training from scratch can be measured, and so can what it forgets of the thin digits.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from snippets import check
from snippets import checkpoint as ckpt
from snippets.data import load_digits
from snippets.training import TrainConfig

TRANSFORM_NAMES = ("thick", "rotate90", "invert")


# --8<-- [start:transform]
def transform_images(images: torch.Tensor, name: str = "thick") -> torch.Tensor:
    r"""Map images in $[-1, 1]$ to a new distribution by a fixed, deterministic transform.

    * `"thick"`: grey-level dilation by a 3x3 square, $x'_{ij} = \max_{|k|,|l| \le 1}
      x_{i+k,\,j+l}$ (a max-pool of stride 1): every stroke one pixel wider on each side;
    * `"rotate90"`: a quarter turn counter-clockwise (exact, no interpolation);
    * `"invert"`: $x' = -x$, dark ink on a light background.

    Each keeps the values in $[-1, 1]$.

    Args:
        images: Images, shape `(N, C, H, W)`, values in `[-1, 1]`.
        name: One of `TRANSFORM_NAMES`.

    Returns:
        The transformed images, same shape.
    """
    check.tensor("images", images, ndim=4, ge=-1, le=1)
    check.one_of("name", name, TRANSFORM_NAMES)
    if name == "thick":
        # the ink is the bright end of [-1, 1]: a 3x3 max widens every stroke
        return F.max_pool2d(images, kernel_size=3, stride=1, padding=1)
    if name == "rotate90":
        return torch.rot90(images, k=1, dims=(2, 3))
    return -images


# --8<-- [end:transform]


def transform_at_data_size(
    images: torch.Tensor, name: str, data_size: int | None = None
) -> torch.Tensor:
    r"""`transform_images` applied to the digits as the reader sees them, at `data_size`.

    A model trained at the digits' native 8x8 (its samples upsampled to 16x16) learns the new
    data at 8x8, but the new data are the 16x16 digits transformed: a 3x3 dilation of the 8x8
    scans would thicken each stroke by a quarter of the digit. So the 8x8 images are upsampled
    (`snippets.fast_digits.upsample_digits`, which makes the 16x16 data), transformed, and brought
    back by `downsample_digits`, the least-squares inverse of the resize: the 8x8 images whose
    upsampling is closest to the new data, clipped to $[-1, 1]$.

    Args:
        images: Images `(N, 1, H, W)` in `[-1, 1]`, at the model's size.
        name: One of `TRANSFORM_NAMES`.
        data_size: Side the model's samples are upsampled to (`data.upsample_to`), or `None`:
            the model works at the data's size and the transform acts on `images` directly.

    Returns:
        The transformed images, same shape.
    """
    from snippets.fast_digits import downsample_digits, upsample_digits

    check.tensor("images", images, ndim=4, ge=-1, le=1)
    check.one_of("name", name, TRANSFORM_NAMES)
    if data_size is None:
        return transform_images(images, name)
    check.integer("data_size", data_size, ge=images.shape[-1], le=1024)
    new = transform_images(upsample_digits(images, data_size), name)
    return downsample_digits(new, images.shape[-1]).clamp(-1, 1)


def load_transformed_digits(
    split: str = "train", name: str = "thick", image_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The bundled digits of one split after `transform_images`: the new data set.

    The transform acts on the 16x16 digits. At `image_size=8`, the size a model trained at the
    digits' native 8x8 learns, the result is brought to 8x8 by `transform_at_data_size`.

    Args:
        split: `"train"`, `"test"` or `"all"` (the fixed split of `snippets.data.load_digits`).
        name: One of `TRANSFORM_NAMES`.
        image_size: 16, or 8 for a model trained at the native 8x8.

    Returns:
        `(images, labels)`: images `(N, 1, image_size, image_size)` in `[-1, 1]`, labels `(N,)`
        in `[0, 10)`.
    """
    check.one_of("split", split, ("train", "test", "all"))
    check.one_of("name", name, TRANSFORM_NAMES)
    check.integer("image_size", image_size)
    if image_size not in (8, 16):
        raise ValueError(f"image_size must be 8 or 16, got {image_size}")
    images, labels = load_digits(split, image_size=image_size)
    return transform_at_data_size(images, name, 16 if image_size == 8 else None), labels


# --8<-- [start:init-from-checkpoint]
def init_from_checkpoint(
    model: nn.Module,
    directory: str | Path,
    prediction_type: str | None = None,
    schedule: str | None = None,
    num_train_timesteps: int | None = None,
) -> dict:
    r"""Copy a checkpoint's EMA weights into `model`: the starting point of fine-tuning.

    The model must be built with the checkpoint's architecture (same `UNet` arguments, including
    `num_classes`), and the run must use its noise schedule and prediction type: a network
    trained to output $v$ under the cosine schedule is no head start for predicting $\epsilon$
    under another. The EMA weights are taken because they are the better model (what sampling
    uses); `snippets.training.train` then starts its own EMA from them and a fresh AdamW.

    Args:
        model: The project's `UNet` (it has a `config` dict), weights overwritten in place.
        directory: Checkpoint folder (`config.json` + `ema.safetensors`), e.g. `checkpoints/digits`.
        prediction_type: The run's prediction type, checked against the checkpoint's if given.
        schedule: The run's noise schedule name, checked likewise if given.
        num_train_timesteps: The run's $T$, checked likewise if given.

    Returns:
        The checkpoint's validated `config.json`.

    Raises:
        FileNotFoundError: If the folder or a file is missing.
        ValueError: If a file is corrupt, or the architecture, schedule or prediction type differ
            (the message names each differing key with both values).
    """
    check.instance("model", model, nn.Module)
    check.instance("directory", directory, (str, Path))
    model_config = getattr(model, "config", None)
    if not isinstance(model_config, dict):
        raise TypeError(
            f"model must be the project's UNet (with a config dict), got "
            f"{type(model).__name__}"
        )
    # 1. the checkpoint's config and EMA weights, each checked against its SHA-256
    loaded = ckpt.load_checkpoint(directory, use_ema=True)
    saved = loaded.config
    # 2. the same architecture (JSON turns tuples into lists: compare as JSON)
    ours = json.loads(json.dumps(model_config))
    diffs = [
        f"{k}: checkpoint {saved['model'].get(k)!r}, model {ours.get(k)!r}"
        for k in sorted(set(ours) | set(saved["model"]))
        if saved["model"].get(k) != ours.get(k)
    ]
    # 3. the same noise schedule and prediction target
    for key, value, theirs in (
        ("prediction_type", prediction_type, saved["prediction_type"]),
        ("schedule", schedule, saved["schedule"]["name"]),
        (
            "num_train_timesteps",
            num_train_timesteps,
            saved["schedule"].get("num_train_timesteps"),
        ),
    ):
        if value is not None and value != theirs:
            diffs.append(f"{key}: checkpoint {theirs!r}, run {value!r}")
    if diffs:
        raise ValueError(
            f"cannot initialise from {directory}: it differs from this run in "
            + "; ".join(diffs)
        )
    # 4. theta_0 = theta_pretrained (the EMA weights)
    model.load_state_dict(loaded.model.state_dict())
    return saved


# --8<-- [end:init-from-checkpoint]


# --8<-- [start:finetune-config]
def finetune_config(
    checkpoint_config: dict,
    steps: int,
    learning_rate: float = 5e-4,
    warmup_steps: int = 10,
    **overrides: object,
) -> TrainConfig:
    r"""The checkpoint's own training recipe, with a new step budget and a lower, constant rate.

    Fine-tuning keeps what defines the model's task: the noise schedule, the prediction target,
    the loss weighting (min-SNR-$\gamma$), the label dropout and the EMA decay all come from the
    checkpoint's `config.json`. What changes is the optimisation: a fresh AdamW with a short
    warmup to a *constant* learning rate, lower than the one the model was trained with (the
    course's script fine-tunes at $10^{-5}$ for the same reason: large steps would wipe out
    what the pretrained weights know before the new data can use it).

    Args:
        checkpoint_config: A validated `config.json` (`snippets.checkpoint.read_config`).
        steps: Optimizer steps of fine-tuning.
        learning_rate: The constant learning rate after warmup.
        warmup_steps: Steps of linear warmup from 0.
        **overrides: Any other `TrainConfig` field (e.g. `batch_size`, `checkpoint_every`).

    Returns:
        The `TrainConfig` of the fine-tuning run.
    """
    check.instance("checkpoint_config", checkpoint_config, dict)
    missing = [k for k in ("schedule", "prediction_type") if k not in checkpoint_config]
    if missing:
        raise ValueError(
            f"checkpoint_config is not a checkpoint config: lacks {missing}"
        )
    recipe = dict(checkpoint_config.get("training") or {})
    recipe.update(
        schedule=checkpoint_config["schedule"]["name"],
        num_train_timesteps=checkpoint_config["schedule"].get(
            "num_train_timesteps", 1000
        ),
        prediction_type=checkpoint_config["prediction_type"],
        steps=steps,
        minutes=None,
        learning_rate=learning_rate,
        lr_schedule="constant",
        warmup_steps=warmup_steps,
    )
    recipe.update(overrides)
    return TrainConfig(**recipe)


# --8<-- [end:finetune-config]
