r"""Checkpoints without pickles: safetensors for tensors, JSON for everything else.

A checkpoint is a folder:

| File | Holds |
|---|---|
| `config.json` | model class and config, noise schedule, prediction type, training arguments, step |
| `ema.safetensors` | the EMA weights, what sampling uses |
| `model.safetensors` | the raw weights |
| `training_state.safetensors` | AdamW moments, per-process RNG states, loss history |
| `training_state.json` | step, elapsed seconds, number of processes, AdamW's hyper-parameters |

`torch.save` is avoided on purpose: it writes a pickle, and loading a pickle can run arbitrary code.
Every file is first written to a temporary folder next to the checkpoint and then moved into place
with `os.replace`, which is atomic, so a crash never leaves a half-written file. Every file records
the step it was saved at; a folder whose files disagree (a crash between two renames) is refused.
A missing, truncated, corrupt or mismatched file raises a `FileNotFoundError` or `ValueError` naming
the file and the problem.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_FILE = "config.json"
EMA_FILE = "ema.safetensors"
MODEL_FILE = "model.safetensors"
STATE_TENSORS_FILE = "training_state.safetensors"
STATE_JSON_FILE = "training_state.json"
FORMAT = "diffusion-model-feast/checkpoint-1"


@dataclass
class Checkpoint:
    """A model loaded for sampling.

    Attributes:
        model: The network in eval mode (EMA weights unless asked otherwise).
        schedule: The `NoiseSchedule` it was trained with.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        num_classes: Number of classes of a class-conditional model (`None`: unconditional).
        config: The whole `config.json`.
    """

    model: nn.Module
    schedule: object
    prediction_type: str
    num_classes: int | None
    config: dict


# --8<-- [start:atomic-save]
def save_checkpoint(
    directory: str | Path,
    model: nn.Module,
    config: dict,
    ema_state: dict[str, torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    training_state: dict | None = None,
    tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    r"""Write a checkpoint folder atomically (temporary folder, then `os.replace` per file).

    Args:
        directory: The checkpoint folder (created if needed; existing files are replaced).
        model: The model whose `state_dict` goes to `model.safetensors`.
        config: JSON-serialisable run config (`model_class`, `model`, `schedule`, `prediction_type`, ...).
        ema_state: EMA weights for `ema.safetensors` (default: the model's weights).
        optimizer: Optimizer whose state goes to `training_state.*` (`None`: weights only).
        training_state: JSON scalars such as `step` and `seconds`.
        tensors: Extra tensors for `training_state.safetensors` (RNG states, loss history).

    Returns:
        The checkpoint folder.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = dict(training_state or {})
    step = str(state.get("step", 0))
    meta = {"format": FORMAT, "step": step}
    model_state = {
        k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()
    }
    ema = {
        k: v.detach().contiguous().cpu() for k, v in (ema_state or model_state).items()
    }
    with tempfile.TemporaryDirectory(dir=directory, prefix=".tmp-save-") as tmp:
        tmp = Path(tmp)
        # 1. write every file into a temporary folder on the same filesystem
        written = []
        if optimizer is not None:
            opt_tensors, opt_json = _flatten_optimizer(optimizer.state_dict())
            extra = {
                f"extra.{k}": v.detach().contiguous().cpu()
                for k, v in (tensors or {}).items()
            }
            save_file({**opt_tensors, **extra}, tmp / STATE_TENSORS_FILE, metadata=meta)
            _write_json(
                tmp / STATE_JSON_FILE,
                {"format": FORMAT, **state, "optimizer": opt_json},
            )
            written += [STATE_TENSORS_FILE, STATE_JSON_FILE]
        save_file(model_state, tmp / MODEL_FILE, metadata=meta)
        save_file(ema, tmp / EMA_FILE, metadata=meta)
        _write_json(tmp / CONFIG_FILE, {"format": FORMAT, **config, "step": int(step)})
        written += [MODEL_FILE, EMA_FILE, CONFIG_FILE]
        # 2. move each into place: os.replace is atomic within a filesystem
        for name in written:
            os.replace(tmp / name, directory / name)
    if (
        optimizer is None
    ):  # a weights-only save must not leave an older training state behind
        for name in (STATE_TENSORS_FILE, STATE_JSON_FILE):
            (directory / name).unlink(missing_ok=True)
    return directory


# --8<-- [end:atomic-save]


def read_config(directory: str | Path) -> dict:
    """Read and check a checkpoint's `config.json`.

    Args:
        directory: The checkpoint folder.

    Returns:
        The config dict.

    Raises:
        FileNotFoundError: If the folder or its `config.json` is missing.
        ValueError: If `config.json` is not valid JSON or lacks required keys.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint folder {directory} does not exist")
    config = _read_json(directory / CONFIG_FILE)
    missing = [
        k
        for k in ("model_class", "model", "schedule", "prediction_type", "step")
        if k not in config
    ]
    if missing:
        raise ValueError(
            f"{directory / CONFIG_FILE}: not a checkpoint config, missing keys {missing}"
        )
    return config


def load_tensors(
    path: str | Path, expect_step: int | None = None
) -> dict[str, torch.Tensor]:
    """Load a safetensors file, turning every failure into an error that names the file.

    Args:
        path: The `.safetensors` file.
        expect_step: If given, the step recorded in the file's metadata must equal it.

    Returns:
        The tensors by name.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is truncated or corrupt, or was saved at another step.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} is missing")
    try:
        tensors = load_file(path)
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"checkpoint file {path} is truncated or corrupt: {err}"
        ) from None
    if expect_step is not None and meta.get("step") != str(expect_step):
        raise ValueError(
            f"checkpoint file {path} was saved at step {meta.get('step')} but config.json says step "
            f"{expect_step}: the folder mixes two saves (interrupted while saving?)"
        )
    return tensors


def load_state_dict_strict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str | Path
) -> None:
    """Copy `state` into `model` after checking names and shapes, with a readable error.

    Args:
        model: The model to fill.
        state: Tensors by parameter/buffer name.
        source: The file they came from (named in errors).

    Raises:
        ValueError: Listing missing, unexpected and mis-shaped tensors.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[:3]})")
        raise ValueError(
            f"checkpoint file {source} does not match the model: " + "; ".join(parts)
        )
    model.load_state_dict(state)


# --8<-- [start:load-checkpoint]
def load_checkpoint(
    directory: str | Path, use_ema: bool = True, device: str | torch.device = "cpu"
) -> Checkpoint:
    r"""Rebuild a trained model, its noise schedule and prediction type from a checkpoint folder.

    Args:
        directory: The checkpoint folder (`config.json` + `ema.safetensors` / `model.safetensors`).
        use_ema: Load the EMA weights (`True`, what sampling should use) or the raw ones.
        device: Where to put the model.

    Returns:
        A `Checkpoint` with the model in eval mode.

    Raises:
        FileNotFoundError: If the folder or a file is missing.
        ValueError: If a file is corrupt, truncated or does not match the config.
    """
    from snippets.schedules import NoiseSchedule
    from snippets.unet import UNet

    directory = Path(directory)
    config = read_config(directory)
    if config["model_class"] != "UNet":
        raise ValueError(
            f"{directory / CONFIG_FILE}: unknown model_class {config['model_class']!r} (expected 'UNet')"
        )
    try:
        model = UNet(**config["model"])
        schedule = NoiseSchedule.from_name(**config["schedule"])
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{directory / CONFIG_FILE}: invalid model or schedule config: {err}"
        ) from None
    weights = directory / (EMA_FILE if use_ema else MODEL_FILE)
    load_state_dict_strict(
        model, load_tensors(weights, expect_step=config["step"]), weights
    )
    return Checkpoint(
        model=model.to(device).eval(),
        schedule=schedule,
        prediction_type=config["prediction_type"],
        num_classes=config["model"].get("num_classes"),
        config=config,
    )


# --8<-- [end:load-checkpoint]


def load_training_state(
    directory: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema_state: dict[str, torch.Tensor],
    world_size: int = 1,
) -> dict:
    r"""Restore everything a run needs to continue exactly where it stopped.

    Fills `model`, `optimizer` and `ema_state` in place.

    Args:
        directory: The checkpoint folder written by `save_checkpoint` with an optimizer.
        model: The (unwrapped) model, built with the checkpoint's config.
        optimizer: The optimizer over `model`'s parameters (same hyper-parameters).
        ema_state: The EMA tensors, by name, to overwrite.
        world_size: Number of processes of the resumed run.

    Returns:
        A dict with `step`, `seconds`, `losses` (list of floats) and `generator_states` /
        `torch_rng_states` (`(world_size, n)` uint8 tensors, or `None` when the checkpoint was
        written by a different number of processes, in which case the resumed run is not exact).

    Raises:
        FileNotFoundError: If a file is missing (e.g. a weights-only checkpoint).
        ValueError: If a file is corrupt, truncated, from another step or does not match the model.
    """
    directory = Path(directory)
    config = read_config(directory)
    step = config["step"]
    state = _read_json(directory / STATE_JSON_FILE)
    if state.get("step") != step:
        raise ValueError(
            f"{directory / STATE_JSON_FILE} is from step {state.get('step')} but config.json from step {step}"
        )
    ema = load_tensors(directory / EMA_FILE, step)
    load_state_dict_strict(model, ema, directory / EMA_FILE)  # checks names and shapes
    load_state_dict_strict(
        model, load_tensors(directory / MODEL_FILE, step), directory / MODEL_FILE
    )
    for name, value in ema.items():
        ema_state[name].copy_(value)
    tensors = load_tensors(directory / STATE_TENSORS_FILE, step)
    opt_state = _unflatten_optimizer(tensors, state["optimizer"])
    try:
        optimizer.load_state_dict(opt_state)
    except (ValueError, KeyError, RuntimeError) as err:
        raise ValueError(
            f"{directory / STATE_TENSORS_FILE}: optimizer state does not match the model: {err}"
        ) from None
    same_world = state.get("world_size", 1) == world_size
    return {
        "step": step,
        "seconds": float(state.get("seconds", 0.0)),
        "losses": tensors["extra.losses"].tolist() if "extra.losses" in tensors else [],
        "generator_states": tensors.get("extra.generator_states")
        if same_world
        else None,
        "torch_rng_states": tensors.get("extra.torch_rng_states")
        if same_world
        else None,
    }


# --8<-- [start:flatten-optimizer]
def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer `state_dict` into tensors (for safetensors) and JSON (everything else)."""
    tensors, scalars = {}, {}
    for index, per_param in state_dict["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


# --8<-- [end:flatten-optimizer]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], opt_json: dict) -> dict:
    """Inverse of `_flatten_optimizer`."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in opt_json.get("scalars", {}).items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in g.items()}
        for g in opt_json["param_groups"]
    ]
    return {"state": dict(sorted(state.items())), "param_groups": groups}


def copy_for_sampling(source: str | Path, target: str | Path) -> Path:
    """Copy only what sampling needs (`config.json`, `ema.safetensors`) into another folder.

    The run's `loss.png` and `samples.png` come along when present.

    Args:
        source: A checkpoint folder.
        target: The folder to write (created; its checkpoint files are replaced).

    Returns:
        The target folder.
    """
    source, target = Path(source), Path(target)
    config = read_config(source)
    load_tensors(
        source / EMA_FILE, config["step"]
    )  # refuse to copy a broken checkpoint
    target.mkdir(parents=True, exist_ok=True)
    pictures = [
        name for name in ("loss.png", "samples.png") if (source / name).is_file()
    ]
    for name in (
        *pictures,
        EMA_FILE,
        CONFIG_FILE,
    ):  # config last: it names the step the weights must match
        tmp = target / f".{name}.tmp"
        shutil.copyfile(source / name, tmp)
        os.replace(tmp, target / name)
    return target


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} is missing")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"checkpoint file {path} is not valid JSON (truncated or corrupt?): {err}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(
            f"checkpoint file {path} must hold a JSON object, got {type(data).__name__}"
        )
    return data


# --8<-- [start:generate]
@torch.no_grad()
def generate(
    checkpoint: Checkpoint,
    n: int,
    sampler: str = "ddim",
    num_inference_steps: int = 50,
    class_labels: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    r"""Sample `n` images from a loaded checkpoint with one of `snippets.sampling.SAMPLERS`.

    A class-conditional model is wrapped by `snippets.guidance.cfg_model` (classifier-free
    guidance, diffusers' convention: `guidance_scale` 1 is the plain conditional model).

    Args:
        checkpoint: What `load_checkpoint` returned.
        n: Number of images.
        sampler: A key of `SAMPLERS` (`"ddpm"`, `"ddim"`, `"euler"`, `"heun"`, `"dpmsolver++"`).
        num_inference_steps: Sampler steps.
        class_labels: Labels, shape `(n,)`, for a class-conditional model (default: `i % num_classes`);
            must be `None` for an unconditional one.
        guidance_scale: Classifier-free guidance scale $s$ (class-conditional models only).
        generator: Random number generator for $x_T$ and the sampler's noise.
        batch_size: Most images per network call; the images do not depend on it (every
            image's $x_T$ and noise are drawn as in one batch of `n`).

    Returns:
        Images, shape `(n, C, H, W)`, roughly in `[-1, 1]`.
    """
    from snippets.guidance import cfg_model
    from snippets.sampling import SAMPLERS

    if sampler not in SAMPLERS:
        raise ValueError(
            f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}"
        )
    if n < 1 or num_inference_steps < 1:
        raise ValueError(
            f"n and num_inference_steps must be positive, got {n} and {num_inference_steps}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    model, k = checkpoint.model, checkpoint.num_classes
    if k is None and (class_labels is not None or guidance_scale != 1.0):
        raise ValueError(
            "this checkpoint is unconditional: class labels and guidance need a class-conditional model"
        )
    if k is not None and class_labels is None:
        class_labels = torch.arange(n) % k
    if class_labels is not None and class_labels.shape != (n,):
        raise ValueError(
            f"class_labels must have shape ({n},), got {tuple(class_labels.shape)}"
        )
    cfg = model.config
    device = next(model.parameters()).device
    # 1. x_T ~ N(0, I) for all n images, drawn on the CPU so that a seed gives the same images on
    #    any device
    x_T = torch.randn(
        (n, cfg["out_channels"], cfg["sample_size"], cfg["sample_size"]),
        generator=generator,
    )
    labels = None if class_labels is None else class_labels.to(device)

    # 2. the network as a plain model(x_t, t), guided if class-conditional, called on at most
    #    batch_size images at a time
    def net(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        outputs = []
        for start in range(0, x.shape[0], batch_size):
            chunk = slice(start, start + batch_size)
            chunk_model = (
                model
                if k is None
                else cfg_model(model, labels[chunk], guidance_scale, k)
            )
            outputs.append(chunk_model(x[chunk], t.expand(x.shape[0])[chunk]))
        return torch.cat(outputs)

    # 3. run the sampler from x_T to x_0 on all n images together: its noise is drawn for the
    #    whole set at each step, so batch_size changes how the network is called, never the images
    return SAMPLERS[sampler](
        net,
        x_T.to(device),
        checkpoint.schedule,
        num_inference_steps,
        prediction_type=checkpoint.prediction_type,
        generator=generator,
    ).cpu()


# --8<-- [end:generate]
