r"""Checkpoints without pickles: safetensors for tensors, JSON for everything else.

A checkpoint is a folder:

| File | Holds |
|---|---|
| `config.json` | model class and config, noise schedule, prediction type, training arguments, step |
| `ema.safetensors` | the EMA weights, what sampling uses |
| `model.safetensors` | the raw weights |
| `training_state.safetensors` | AdamW moments, per-process RNG states, loss history |
| `training_state.json` | step, elapsed seconds, number of processes, AdamW's hyper-parameters |
| `manifest.json` | the SHA-256 of every file above: what makes them one checkpoint |

`torch.save` is avoided on purpose: it writes a pickle, and loading a pickle can run arbitrary code.

A save commits as a unit. Every file and, last, the manifest are written into a staging folder
(`.tmp-save-*`) inside the checkpoint folder; one atomic `os.rename` of that folder to `.commit`
is the commit point; then the files are moved into place, the manifest last, and `.commit` is
removed. Whatever stops a save — a signal, `kill -9`, a full disk — the folder holds the old
checkpoint (an unfinished staging folder is ignored by readers and deleted by the next writer) or
the new one (readers follow the manifest in `.commit`, the next writer finishes the moves).
Loading checks every file against the manifest's SHA-256, so one flipped bit is an error that names
the file, and refuses tensors holding NaN or infinity. One process at a time may write a folder
(`RunLock`). Every failure raises a `FileNotFoundError`, `ValueError` or `RunFolderBusy` that
names the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from snippets import check

CONFIG_FILE = "config.json"
EMA_FILE = "ema.safetensors"
MODEL_FILE = "model.safetensors"
STATE_TENSORS_FILE = "training_state.safetensors"
STATE_JSON_FILE = "training_state.json"
MANIFEST_FILE = "manifest.json"
CHECKPOINT_FILES = (
    CONFIG_FILE,
    EMA_FILE,
    MODEL_FILE,
    STATE_TENSORS_FILE,
    STATE_JSON_FILE,
)
TRAINING_FILES = (MODEL_FILE, STATE_TENSORS_FILE, STATE_JSON_FILE)
PICTURES = ("loss.png", "samples.png")
STAGING_PREFIX = ".tmp-save-"  # a save being written: not yet part of the checkpoint
COMMIT_DIR = ".commit"  # a committed save whose files are being moved into place
LOCK_FILE = ".lock"
FORMAT = "diffusion-model-feast/checkpoint-1"
MAX_JSON_BYTES = 1_000_000
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


class RunFolderBusy(RuntimeError):
    """Another process is writing the run folder (see `RunLock`)."""


@dataclass
class Checkpoint:
    """A model loaded for sampling.

    Attributes:
        model: The network in eval mode (EMA weights unless asked otherwise).
        schedule: The `NoiseSchedule` it was trained with.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        num_classes: Number of classes of a class-conditional model (`None`: unconditional).
        config: The whole `config.json`.
        upsample_to: Side length the samples are upsampled to by
            `snippets.fast_digits.upsample_digits` (a digits model trained at the native 8x8;
            `data.upsample_to` in `config.json`), or `None`: samples at the model's resolution.
    """

    model: nn.Module
    schedule: object
    prediction_type: str
    num_classes: int | None
    config: dict
    upsample_to: int | None = None

    @property
    def image_size(self) -> int:
        """Side length of the images the network itself takes and returns."""
        return int(self.model.config["sample_size"])

    @property
    def data_size(self) -> int:
        """Side length of the images the checkpoint stands for: its samples, its data."""
        return self.image_size if self.upsample_to is None else self.upsample_to

    def to_model(self, images: torch.Tensor) -> torch.Tensor:
        """Data-sized images, `(B, C, data_size, data_size)`, as the network takes them.

        For a digits model trained at 8x8 this is `snippets.fast_digits.downsample_digits`
        (exact on the data); otherwise the images are returned as they are.
        """
        from snippets.fast_digits import downsample_digits

        size = self.data_size
        check.tensor("images", images, shape=(None, None, size, size))
        if self.upsample_to is None:
            return images
        return downsample_digits(images, self.image_size)

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        """The network's images, `(B, C, image_size, image_size)`, at the data's size.

        For a digits model trained at 8x8 this is `snippets.fast_digits.upsample_digits`, as
        `generate` does with its samples; otherwise `x` is returned as it is.
        """
        from snippets.fast_digits import upsample_digits

        size = self.image_size
        check.tensor("x", x, shape=(None, None, size, size))
        if self.upsample_to is None:
            return x
        return upsample_digits(x, self.upsample_to)


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
    r"""Write a checkpoint folder that commits as a unit (see `commit_files`).

    Args:
        directory: The checkpoint folder (created if needed; the old checkpoint is replaced).
        model: The model whose `state_dict` goes to `model.safetensors`.
        config: JSON-serialisable run config (`model_class`, `model`, `schedule`, `prediction_type`, ...).
        ema_state: EMA weights for `ema.safetensors` (default: the model's weights).
        optimizer: Optimizer whose state goes to `training_state.*` (`None`: weights only).
        training_state: JSON scalars such as `step` and `seconds`.
        tensors: Extra tensors for `training_state.safetensors` (RNG states, loss history).

    Returns:
        The checkpoint folder.

    Raises:
        ValueError: If a tensor holds NaN or infinity (nothing is written).
        RunFolderBusy: If another process writes the folder.
    """
    state = dict(training_state or {})
    step = int(state.get("step", 0))
    meta = {"format": FORMAT, "step": str(step)}
    model_state = _cpu(model.state_dict())
    files = {}
    if optimizer is not None:
        opt_tensors, opt_json = _flatten_optimizer(optimizer.state_dict())
        extra = {f"extra.{k}": v for k, v in _cpu(tensors or {}).items()}
        files[STATE_TENSORS_FILE] = _safetensors_bytes({**opt_tensors, **extra}, meta)
        files[STATE_JSON_FILE] = _json_bytes(
            {"format": FORMAT, **state, "optimizer": opt_json}
        )
    files[MODEL_FILE] = _safetensors_bytes(model_state, meta)
    files[EMA_FILE] = _safetensors_bytes(_cpu(ema_state or model_state), meta)
    files[CONFIG_FILE] = _json_bytes({"format": FORMAT, **config, "step": step})
    return commit_files(directory, files, step)


# --8<-- [end:atomic-save]


# --8<-- [start:commit]
def commit_files(directory: str | Path, files: dict[str, bytes], step: int) -> Path:
    r"""Replace the checkpoint in `directory` by `files`, all or nothing.

    Checkpoint files of the old save that `files` lacks (e.g. the training state, for a
    weights-only save) are removed; other files (`loss.png`, a README) are left alone.

    Args:
        directory: The checkpoint folder (created if needed).
        files: File name -> content.
        step: The training step, recorded in `manifest.json`.

    Returns:
        The checkpoint folder.
    """
    directory = Path(directory)
    with RunLock(directory):
        recover(directory)  # finish a committed save, delete unfinished ones
        # 1. every file, then a manifest of their SHA-256, into a staging folder
        staging = Path(tempfile.mkdtemp(dir=directory, prefix=STAGING_PREFIX))
        manifest = {
            "format": FORMAT,
            "step": step,
            "files": {name: _sha256(data) for name, data in files.items()},
        }
        for name, data in {**files, MANIFEST_FILE: _json_bytes(manifest)}.items():
            _write_synced(staging / name, data)
        # 2. the commit point: one atomic rename makes the staging folder the checkpoint
        os.rename(staging, directory / COMMIT_DIR)
        # 3. move the files into place; until the manifest moves, readers use .commit's
        recover(directory)
    return directory


def recover(directory: str | Path) -> None:
    """Finish a committed save and delete unfinished ones (for the writer holding `RunLock`).

    Args:
        directory: The checkpoint folder.
    """
    directory = Path(directory)
    for staging in directory.glob(f"{STAGING_PREFIX}*"):  # never committed: drop them
        shutil.rmtree(staging, ignore_errors=True)
    committed = directory / COMMIT_DIR
    if not committed.is_dir():
        return
    if (committed / MANIFEST_FILE).is_file():
        new = _read_manifest(committed / MANIFEST_FILE)["files"]
        old_manifest = directory / MANIFEST_FILE
        old = _read_manifest(old_manifest)["files"] if old_manifest.is_file() else {}
        for name in new:  # os.replace is atomic; a file moved before a crash is skipped
            if (committed / name).is_file():
                os.replace(committed / name, directory / name)
        for name in (set(old) | set(CHECKPOINT_FILES)) - set(new):
            (directory / name).unlink(missing_ok=True)
        os.replace(committed / MANIFEST_FILE, directory / MANIFEST_FILE)
    shutil.rmtree(committed)


# --8<-- [end:commit]


class RunLock:
    """One writer per run folder: an exclusive `flock` on `<folder>/.lock`, which names its PID.

    The operating system releases the lock when its process ends, however it ends, so a lock file
    left by `kill -9` is stale and simply taken over. Re-entrant within a process.

    Args:
        directory: The run folder (created if needed).

    Raises:
        RunFolderBusy: On entering, if another process holds the folder (the message names it).
    """

    _held: dict[Path, list] = {}  # resolved folder -> [file descriptor, depth]

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def __enter__(self) -> RunLock:
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = self.directory.resolve()
        if self.key in RunLock._held:
            RunLock._held[self.key][1] += 1
            return self
        path = self.key / LOCK_FILE
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                raise RunFolderBusy(
                    f"run folder {self.directory} is in use by process "
                    f"{holder or '(starting)'}: one writer at a time; wait for it or stop it"
                ) from None
            try:  # the holder may have removed the file between our open and flock: retry
                same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        RunLock._held[self.key] = [fd, 1]
        return self

    def __exit__(self, *exc) -> bool:
        entry = RunLock._held[self.key]
        entry[1] -= 1
        if entry[1] == 0:
            del RunLock._held[self.key]
            try:  # remove the file while holding the lock, then release it
                (self.key / LOCK_FILE).unlink(missing_ok=True)
            finally:
                os.close(entry[0])
        return False


def read_config(directory: str | Path) -> dict:
    """Read and validate a checkpoint's `config.json` (checked against the manifest).

    Args:
        directory: The checkpoint folder.

    Returns:
        The config dict.

    Raises:
        FileNotFoundError: If the folder, its manifest or its `config.json` is missing.
        ValueError: If `config.json` is corrupt, not valid JSON or not a valid config.
    """
    directory = Path(directory)
    data = _read_files(directory, [CONFIG_FILE])[CONFIG_FILE]
    return validate_config(
        _parse_json(data, directory / CONFIG_FILE), directory / CONFIG_FILE
    )


def load_tensors(
    path: str | Path, expect_step: int | None = None, data: bytes | None = None
) -> dict[str, torch.Tensor]:
    """Load a safetensors file, turning every failure into an error that names the file.

    Args:
        path: The `.safetensors` file.
        expect_step: If given, the step recorded in the file's metadata must equal it.
        data: The file's bytes, if already read (and checked against a manifest).

    Returns:
        The tensors by name.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is unreadable, truncated or corrupt, holds NaN or infinity, or was
            saved at another step.
    """
    path = Path(path)
    if data is None:
        data = _read_bytes(path)
    try:
        tensors = load_safetensors(data)
        (header_size,) = struct.unpack("<Q", data[:8])
        meta = json.loads(data[8 : 8 + header_size]).get("__metadata__") or {}
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"checkpoint file {path} is truncated or corrupt: {err}"
        ) from None
    for name, value in tensors.items():
        if value.dtype.is_floating_point and not torch.isfinite(value).all():
            raise ValueError(
                f"checkpoint file {path}: tensor {name!r} holds NaN or infinity"
            )
    if expect_step is not None and meta.get("step") != str(expect_step):
        raise ValueError(
            f"checkpoint file {path} was saved at step {meta.get('step')} but config.json says step "
            f"{expect_step}: the folder mixes two saves"
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
    weights = EMA_FILE if use_ema else MODEL_FILE
    # 1. config and weights from one manifest, each checked against its SHA-256
    data = _read_files(directory, [CONFIG_FILE, weights])
    path = directory / CONFIG_FILE
    config = validate_config(_parse_json(data[CONFIG_FILE], path), path)
    # 2. the model and schedule the (validated) config describes
    try:
        model = UNet(**config["model"])
        schedule = NoiseSchedule.from_name(**config["schedule"])
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{directory / CONFIG_FILE}: invalid model or schedule config: {err}"
        ) from None
    # 3. the weights, after checking every name and shape
    state = load_tensors(directory / weights, config["step"], data[weights])
    load_state_dict_strict(model, state, directory / weights)
    return Checkpoint(
        model=model.to(device).eval(),
        schedule=schedule,
        prediction_type=config["prediction_type"],
        num_classes=config["model"].get("num_classes"),
        config=config,
        upsample_to=config.get("data", {}).get("upsample_to"),
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
    names = [CONFIG_FILE, STATE_JSON_FILE, EMA_FILE, MODEL_FILE, STATE_TENSORS_FILE]
    data = _read_files(directory, names)
    path = directory / CONFIG_FILE
    config = validate_config(_parse_json(data[CONFIG_FILE], path), path)
    step = config["step"]
    state = _parse_json(data[STATE_JSON_FILE], directory / STATE_JSON_FILE)
    if state.get("step") != step or not isinstance(state.get("optimizer"), dict):
        raise ValueError(
            f"{directory / STATE_JSON_FILE} is from step {state.get('step')} but config.json "
            f"from step {step}, or lacks the optimizer"
        )

    def tensors(name: str) -> dict[str, torch.Tensor]:
        return load_tensors(directory / name, step, data[name])

    ema = tensors(EMA_FILE)
    load_state_dict_strict(model, ema, directory / EMA_FILE)  # checks names and shapes
    load_state_dict_strict(model, tensors(MODEL_FILE), directory / MODEL_FILE)
    for name, value in ema.items():
        ema_state[name].copy_(value)
    extra = tensors(STATE_TENSORS_FILE)
    try:
        optimizer.load_state_dict(_unflatten_optimizer(extra, state["optimizer"]))
    except (ValueError, KeyError, RuntimeError, TypeError) as err:
        raise ValueError(
            f"{directory / STATE_TENSORS_FILE}: optimizer state does not match the model: {err}"
        ) from None
    same_world = state.get("world_size", 1) == world_size
    return {
        "step": step,
        "seconds": float(state.get("seconds", 0.0)),
        "losses": extra["extra.losses"].tolist() if "extra.losses" in extra else [],
        "generator_states": extra.get("extra.generator_states") if same_world else None,
        "torch_rng_states": extra.get("extra.torch_rng_states") if same_world else None,
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
    """Export what sampling needs (`config.json`, `ema.safetensors`) into another folder, as a unit.

    The run's `loss.png` and `samples.png` come along when present. The target is a new or empty
    folder or an earlier export; a folder holding a training run is refused, so that an export
    never mixes two runs.

    Args:
        source: A checkpoint folder.
        target: The folder to write (created; an earlier export there is replaced as a whole).

    Returns:
        The target folder.

    Raises:
        ValueError: If the source is broken, or the target is the source or holds a training run.
        RunFolderBusy: If another process writes the target.
    """
    source, target = Path(source), Path(target)
    if target.exists() and not target.is_dir():
        raise ValueError(f"export target {target} exists and is not a folder")
    if target.resolve() == Path(source).resolve():
        raise ValueError(f"export target {target} is the checkpoint folder itself")
    data = _read_files(source, [CONFIG_FILE, EMA_FILE])  # refuse a broken checkpoint
    path = source / CONFIG_FILE
    config = validate_config(_parse_json(data[CONFIG_FILE], path), path)
    load_tensors(source / EMA_FILE, config["step"], data[EMA_FILE])
    for name in PICTURES:
        if (source / name).is_file():
            data[name] = _read_bytes(source / name)
    with RunLock(target):
        held = [
            name
            for name in TRAINING_FILES
            if (target / name).exists() or (target / COMMIT_DIR / name).exists()
        ]
        if held:
            raise ValueError(
                f"export target {target} holds a training run ({', '.join(held)}): "
                "export into a new folder"
            )
        return commit_files(target, data, config["step"])


# -- validation of what comes from disk ------------------------------------------------------------

_MODEL_KEYS = {  # UNet argument -> (type, lowest, highest); None: any value of the type
    "in_channels": (int, 1, 16),
    "out_channels": (int, 1, 16),
    "num_res_blocks": (int, 1, 16),
    "attention_head_dim": (int, 1, 4096),
    "num_groups": (int, 1, 4096),
    "dropout": (float, 0.0, 0.99),
    "num_classes": (int, 1, 100_000),
    "sample_size": (int, 1, 1024),
    "downscale_freq_shift": (float, -10.0, 10.0),
    "mid_attention": (bool, None, None),
    "use_scale_shift_norm": (bool, None, None),
    "flip_sin_to_cos": (bool, None, None),
    "channels": (list, None, None),
    "attention_levels": (list, None, None),
}
_SCHEDULE_KEYS = {
    "name": (str, None, None),
    "num_train_timesteps": (int, 2, 100_000),
    "beta_start": (float, 0.0, 1.0),
    "beta_end": (float, 0.0, 1.0),
    "rescale_zero_terminal_snr": (bool, None, None),
}
_DATA_KEYS = {
    "data": (str, None, None),
    "image_size": (int, 1, 1024),
    "channels": (int, 1, 3),
    "image_column": (str, None, None),
    "label_column": (str, None, None),
    "class_conditional": (bool, None, None),
    "transform": (str, None, None),
    "init_from": (str, None, None),
    "upsample_to": (int, 1, 1024),
}
_TOP_KEYS = ("format", "model_class", "model", "schedule", "prediction_type", "step")
MAX_PARAMETERS = 200_000_000  # a rough bound on the UNet a config may ask for


def validate_config(config: dict, source: str | Path = "config.json") -> dict:
    """Check a checkpoint config's keys, types and bounds before anything is allocated.

    Args:
        config: The parsed `config.json`.
        source: Where it came from (named in errors).

    Returns:
        `config`, unchanged.

    Raises:
        ValueError: Naming the first bad key and its value.
    """
    where = str(source)
    if not isinstance(config, dict):
        raise ValueError(f"{where}: must hold a JSON object")
    missing = [k for k in _TOP_KEYS[1:] if k not in config]
    unknown = sorted(set(config) - set(_TOP_KEYS) - {"training", "data"})
    if missing or unknown:
        raise ValueError(
            f"{where}: not a checkpoint config (missing keys {missing}, unknown keys {unknown})"
        )
    if config["model_class"] != "UNet":
        raise ValueError(
            f"{where}: unknown model_class {config['model_class']!r} (expected 'UNet')"
        )
    if config["prediction_type"] not in PREDICTION_TYPES:
        raise ValueError(
            f"{where}: prediction_type must be one of {PREDICTION_TYPES}, "
            f"got {config['prediction_type']!r}"
        )
    _check_value(where, "step", config["step"], (int, 0, 10**12))
    model = _check_section(where, "model", config["model"], _MODEL_KEYS, ("channels",))
    channels, levels = model.get("channels"), model.get("attention_levels", [])
    if not isinstance(channels, list) or not 1 <= len(channels) <= 8:
        raise ValueError(f"{where}: model.channels must be a list of 1 to 8 integers")
    for c in channels:
        _check_value(where, "model.channels", c, (int, 1, 4096))
    if not isinstance(levels, list):
        raise ValueError(f"{where}: model.attention_levels must be a list")
    for level in levels:
        _check_value(
            where, "model.attention_levels", level, (int, 0, len(channels) - 1)
        )
    blocks = model.get("num_res_blocks", 2)
    if 36 * (blocks + 1) * sum(c * c for c in channels) > MAX_PARAMETERS:
        raise ValueError(
            f"{where}: model too large (channels {channels}, {blocks} blocks)"
        )
    _check_section(where, "schedule", config["schedule"], _SCHEDULE_KEYS, ("name",))
    if "data" in config:
        _check_section(where, "data", config["data"], _DATA_KEYS, ())
        shape = (model.get("sample_size"), model.get("out_channels"))
        if config["data"].get("upsample_to") is not None and shape != (8, 1):
            raise ValueError(
                f"{where}: data.upsample_to needs an 8x8 one-channel model (the digits' "
                f"native size), got model.sample_size {shape[0]}, out_channels {shape[1]}"
            )
    if "training" in config:
        _check_training(where, config["training"])
    return config


def _check_section(where, section, value, spec, required) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {section} must be a JSON object, got {value!r:.60}")
    unknown = sorted(set(value) - set(spec))
    missing = [k for k in required if k not in value]
    if unknown or missing:
        raise ValueError(
            f"{where}: {section} has unknown keys {unknown} or lacks {missing}"
        )
    for key, item in value.items():
        if key in spec and not (item is None and spec[key][0] is not bool):
            _check_value(where, f"{section}.{key}", item, spec[key])
    return value


def _check_value(where, name, value, spec) -> None:
    kind, low, high = spec
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if ok and kind is float:
        ok = math.isfinite(value)
    if ok and kind in (int, float) and low is not None:
        ok = math.isfinite(value) and low <= value <= high
    if not ok:
        bounds = f" in [{low}, {high}]" if low is not None else ""
        raise ValueError(
            f"{where}: {name} must be a {kind.__name__}{bounds}, got {value!r:.60}"
        )


def _check_training(where, training) -> None:
    from dataclasses import MISSING, fields

    from snippets.training import TrainConfig

    if not isinstance(training, dict):
        raise ValueError(f"{where}: training must be a JSON object")
    defaults = {
        f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING
    }
    unknown = sorted(set(training) - set(defaults))
    if unknown:
        raise ValueError(f"{where}: training has unknown keys {unknown}")
    nullable = {"steps": int, "minutes": float, "min_snr_gamma": float}
    for key, value in training.items():
        kind = nullable.get(key, type(defaults[key]))
        if value is None and (key in nullable or defaults[key] is None):
            continue
        if kind is not type(None):  # a field TrainConfig itself checks
            _check_value(where, f"training.{key}", value, (kind, None, None))


# -- bytes on disk -----------------------------------------------------------------------------------


def _read_files(directory: Path, names: list[str]) -> dict[str, bytes]:
    """The bytes of `names` from one committed save, each checked against the manifest's SHA-256.

    A save committed by another process while reading is noticed (the manifest changed) and the
    files are read again from the new one.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint folder {directory} does not exist")
    if (directory / "model_index.json").is_file():
        raise ValueError(
            f"{directory} holds model_index.json: a diffusers pipeline folder, not a "
            "checkpoint of snippets.checkpoint (load it with "
            "snippets.latent_diffusion.load_pipeline)"
        )
    for _attempt in range(5):
        manifest, folders = _current_manifest(directory)
        data, problem = {}, None
        for name in names:
            if name not in manifest["files"]:
                raise FileNotFoundError(
                    f"checkpoint file {directory / name} is missing "
                    f"(not in {MANIFEST_FILE}: a weights-only checkpoint?)"
                )
            data[name] = _read_first(folders, name, directory)
            if data[name] is None:
                problem = FileNotFoundError(
                    f"checkpoint file {directory / name} is missing"
                )
            elif _sha256(data[name]) != manifest["files"][name]:
                problem = ValueError(
                    f"checkpoint file {directory / name} is truncated or corrupt: its SHA-256 "
                    f"differs from {MANIFEST_FILE}"
                )
            if problem is not None:
                break
        if problem is None:
            return data
        if _current_manifest(directory)[0] == manifest:
            raise problem  # not a concurrent save: the file itself is bad
    raise problem


def _current_manifest(directory: Path) -> tuple[dict, list[Path]]:
    """The committed manifest and where its files are: `.commit/` first during a save's moves."""
    committed = directory / COMMIT_DIR
    try:
        return _read_manifest(committed / MANIFEST_FILE), [committed, directory]
    except FileNotFoundError:
        pass
    if not (directory / MANIFEST_FILE).is_file():
        raise FileNotFoundError(
            f"checkpoint folder {directory} has no {MANIFEST_FILE}: not a checkpoint, or its "
            "first save never finished"
        )
    return _read_manifest(directory / MANIFEST_FILE), [directory]


def _read_manifest(path: Path) -> dict:
    manifest = _parse_json(_read_bytes(path), path)
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, str) and len(v) == 64 for v in files.values()
    ):
        raise ValueError(f"{path}: not a checkpoint manifest (no 'files' with SHA-256)")
    return manifest


def _read_first(folders: list[Path], name: str, directory: Path) -> bytes | None:
    for folder in folders:
        try:
            return _read_bytes(folder / name)
        except FileNotFoundError:
            continue
    return None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".json" and path.stat().st_size > MAX_JSON_BYTES:
            raise ValueError(
                f"checkpoint file {path} is larger than {MAX_JSON_BYTES} bytes"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint file {path} is missing") from None
    except OSError as err:
        raise ValueError(
            f"cannot read checkpoint file {path}: {err.strerror}"
        ) from None


def _parse_json(data: bytes, path: Path) -> dict:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(
            f"checkpoint file {path} is not valid JSON (truncated or corrupt?): {err}"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(
            f"checkpoint file {path} must hold a JSON object, got {type(value).__name__}"
        )
    return value


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in tensors.items()}


def _safetensors_bytes(tensors: dict[str, torch.Tensor], meta: dict) -> bytes:
    for name, value in tensors.items():
        if value.dtype.is_floating_point and not torch.isfinite(value).all():
            raise ValueError(
                f"refusing to save tensor {name!r}: it holds NaN or infinity"
            )
    return save_safetensors(tensors, metadata=meta)


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=2, allow_nan=False) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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
    guidance, diffusers' convention: `guidance_scale` 1 is the plain conditional model). A digits
    model trained at 8x8 (`checkpoint.upsample_to`) samples at 8x8 and returns its digits
    upsampled by `snippets.fast_digits.sample_fast_digits`, as the 16x16 data are made.

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
        Images, shape `(n, C, H, W)`, roughly in `[-1, 1]` (`H = W = checkpoint.upsample_to`
        for an upsampled checkpoint, exactly in `[-1, 1]` then).
    """
    from snippets.fast_digits import sample_fast_digits
    from snippets.guidance import cfg_model
    from snippets.sampling import SAMPLERS

    check.instance("checkpoint", checkpoint, Checkpoint)
    check.integer("n", n, ge=1)
    check.one_of("sampler", sampler, list(SAMPLERS))
    check.integer("num_inference_steps", num_inference_steps, ge=1)
    check.real("guidance_scale", guidance_scale)
    check.generator("generator", generator)
    check.integer("batch_size", batch_size, ge=1)
    model, k = checkpoint.model, checkpoint.num_classes
    if k is None and (class_labels is not None or guidance_scale != 1.0):
        raise ValueError(
            "this checkpoint is unconditional: class labels and guidance need a "
            "class-conditional model"
        )
    if k is not None and class_labels is None:
        class_labels = torch.arange(n) % k
    if class_labels is not None:
        check.tensor("class_labels", class_labels, dtype="int", shape=(n,), ge=0, lt=k)
    cfg = model.config
    device = next(model.parameters()).device
    # 1. x_T ~ N(0, I) for all n images, drawn on the CPU so that a seed gives the
    #    same images on any device
    x_T = torch.randn(
        (n, cfg["out_channels"], cfg["sample_size"], cfg["sample_size"]),
        generator=generator,
    )
    labels = None if class_labels is None else class_labels.to(device)

    # 2. the network as a plain model(x_t, t), guided if class-conditional, called on
    #    at most batch_size images at a time
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

    # 3. run the sampler from x_T to x_0 on all n images together: its noise is drawn
    #    for the whole set at each step, so batch_size changes how the network is
    #    called, never the images
    args = (checkpoint.schedule, num_inference_steps)
    kwargs = dict(prediction_type=checkpoint.prediction_type, generator=generator)
    if checkpoint.upsample_to is None:
        return SAMPLERS[sampler](net, x_T.to(device), *args, **kwargs).cpu()
    # 4. an 8x8 digits model: upsample its samples exactly as the 16x16 data are made
    return sample_fast_digits(
        SAMPLERS[sampler],
        net,
        x_T.to(device),
        *args,
        image_size=checkpoint.upsample_to,
        **kwargs,
    ).cpu()


# --8<-- [end:generate]
