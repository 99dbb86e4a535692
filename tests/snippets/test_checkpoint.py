"""Tests of snippets/checkpoint.py: round trips without pickles, atomic saves, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from snippets import checkpoint as ckpt
from snippets.checkpoint import (
    generate,
    load_checkpoint,
    load_training_state,
    read_config,
    save_checkpoint,
)
from snippets.guidance import cfg_model
from snippets.sampling import SAMPLERS
from snippets.unet import UNet

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(
    sample_size=8,
    channels=(8, 16),
    num_res_blocks=1,
    attention_levels=(),
    num_groups=4,
    mid_attention=False,
)
RUN = {
    "model_class": "UNet",
    "schedule": {"name": "cosine", "num_train_timesteps": 50},
    "prediction_type": "v_prediction",
    "training": {},
}


def _model(seed=0, **overrides):
    torch.manual_seed(seed)
    return UNet(**{**TINY, **overrides})


def _stepped_optimizer(model):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 1, 8, 8), torch.tensor([1, 2])).square().mean().backward()
    optimizer.step()
    return optimizer


def _save(directory, model, step=3, optimizer=None, ema=None):
    return save_checkpoint(
        directory,
        model,
        {**RUN, "model": model.config},
        ema_state=ema,
        optimizer=optimizer,
        training_state={"step": step, "seconds": 1.5},
        tensors={"losses": torch.tensor([0.5, 0.25], dtype=torch.float64)},
    )


def test_round_trip_restores_weights_ema_optimizer_and_scalars(tmp_path):
    model = _model()
    optimizer = _stepped_optimizer(model)
    ema = {k: v + 1 for k, v in model.state_dict().items()}
    _save(tmp_path, model, optimizer=optimizer, ema=ema)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "ema.safetensors",
        "model.safetensors",
        "training_state.json",
        "training_state.safetensors",
    ]

    loaded = load_checkpoint(tmp_path)  # the EMA weights, for sampling
    assert loaded.prediction_type == "v_prediction" and loaded.num_classes is None
    assert loaded.schedule.num_train_timesteps == 50 and not loaded.model.training
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, ema[name])
    raw = load_checkpoint(tmp_path, use_ema=False).model.state_dict()
    assert all(torch.equal(raw[k], v) for k, v in model.state_dict().items())

    fresh = _model(seed=1)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    fresh_ema = {k: torch.zeros_like(v) for k, v in fresh.state_dict().items()}
    state = load_training_state(tmp_path, fresh, fresh_opt, fresh_ema)
    assert (
        state["step"] == 3
        and state["seconds"] == 1.5
        and state["losses"] == [0.5, 0.25]
    )
    assert all(
        torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items()
    )
    assert all(torch.equal(fresh_ema[k], v) for k, v in ema.items())
    saved, restored = optimizer.state_dict()["state"], fresh_opt.state_dict()["state"]
    assert saved.keys() == restored.keys()
    for index, per_param in saved.items():
        assert all(
            torch.equal(value, restored[index][key]) for key, value in per_param.items()
        )
    assert fresh_opt.state_dict()["param_groups"][0]["betas"] == (0.9, 0.999)


def test_no_file_is_a_pickle(tmp_path):
    model = _model()
    _save(tmp_path, model, optimizer=_stepped_optimizer(model))
    for path in tmp_path.iterdir():
        head = path.read_bytes()[:2]
        assert head != b"\x80\x04" and head != b"PK", (
            f"{path.name} looks like a pickle / torch.save zip"
        )


def test_missing_folder_and_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_checkpoint(tmp_path / "nowhere")
    _save(tmp_path, _model())  # weights only: no training state
    with pytest.raises(FileNotFoundError, match="training_state.json is missing"):
        load_training_state(
            tmp_path, _model(), torch.optim.AdamW(_model().parameters()), {}
        )
    (tmp_path / "ema.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="ema.safetensors is missing"):
        load_checkpoint(tmp_path)


def test_truncated_and_corrupt_files_raise_value_errors_naming_them(tmp_path):
    _save(tmp_path, _model())
    ema = tmp_path / "ema.safetensors"
    data = ema.read_bytes()
    ema.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"ema.safetensors is truncated or corrupt"):
        load_checkpoint(tmp_path)
    ema.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match=r"ema.safetensors is truncated or corrupt"):
        load_checkpoint(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(config.read_text()[:40])
    with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
        load_checkpoint(tmp_path)
    config.write_text(json.dumps({"model": {}}))
    with pytest.raises(ValueError, match="missing keys"):
        read_config(tmp_path)


def test_weights_that_do_not_match_the_config_are_refused(tmp_path):
    _save(tmp_path, _model())
    config = json.loads((tmp_path / "config.json").read_text())
    config["model"]["channels"] = [8, 24]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match the model.*other shapes"):
        load_checkpoint(tmp_path)
    config["model"]["channels"] = [
        8,
        17,
    ]  # not a multiple of num_groups: the UNet refuses it
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="invalid model or schedule config"):
        load_checkpoint(tmp_path)


def test_interrupted_save_is_detected_and_old_files_survive(tmp_path, monkeypatch):
    model = _model()
    _save(tmp_path, model, step=1, optimizer=_stepped_optimizer(model))
    calls = []
    real_replace = ckpt.os.replace

    def crash_after_first(src, dst):
        calls.append(dst)
        if len(calls) > 1:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash_after_first)
    with pytest.raises(OSError):
        _save(tmp_path, model, step=2, optimizer=_stepped_optimizer(model))
    monkeypatch.undo()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-save-")]
    assert (
        load_checkpoint(tmp_path).config["step"] == 1
    )  # the sampling files are still the old, whole ones
    with pytest.raises(
        ValueError, match="mixes two saves"
    ):  # but the training state was half replaced
        load_training_state(
            tmp_path,
            _model(),
            torch.optim.AdamW(_model().parameters()),
            {k: v.clone() for k, v in model.state_dict().items()},
        )


def test_generate_checks_labels_and_sampler(tmp_path):
    _save(tmp_path, _model())
    loaded = load_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="unknown sampler"):
        generate(loaded, 2, sampler="plms")
    with pytest.raises(ValueError, match="unconditional"):
        generate(loaded, 2, class_labels=torch.tensor([0, 1]))
    x = generate(
        loaded, 3, "ddim", 4, generator=torch.Generator().manual_seed(0), batch_size=2
    )
    assert x.shape == (3, 1, 8, 8) and torch.isfinite(x).all()
    assert torch.equal(
        x, generate(loaded, 3, "ddim", 4, generator=torch.Generator().manual_seed(0))
    )


@pytest.mark.parametrize("sampler", ["ddpm", "dpmsolver++"])
def test_generate_gives_the_same_images_whatever_the_batch_size(sampler):
    loaded = load_checkpoint(ROOT / "checkpoints" / "digits")  # class-conditional
    labels = torch.tensor([3, 1, 4, 1, 5])

    def sample(batch_size):
        return generate(
            loaded,
            5,
            sampler,
            4,
            class_labels=labels,
            guidance_scale=3.0,
            generator=torch.Generator().manual_seed(7),
            batch_size=batch_size,
        )

    whole = sample(5)
    # the images of one batch of n: x_T and every step's noise drawn for all n at once
    generator = torch.Generator().manual_seed(7)
    x_T = torch.randn((5, 1, 16, 16), generator=generator)
    guided = cfg_model(loaded.model, labels, 3.0, loaded.num_classes)
    with torch.no_grad():
        expected = SAMPLERS[sampler](
            guided,
            x_T,
            loaded.schedule,
            4,
            prediction_type=loaded.prediction_type,
            generator=generator,
        )
    torch.testing.assert_close(whole, expected, atol=1e-5, rtol=0)
    for batch_size in (1, 2, 3, 256):
        torch.testing.assert_close(sample(batch_size), whole, atol=1e-5, rtol=0)
    # a different seed gives different images (DDPM also draws noise at every step)
    other = generate(
        loaded, 5, sampler, 4, labels, 3.0, torch.Generator().manual_seed(8), 2
    )
    assert (other - whole).abs().max() > 0.1


def test_generate_rejects_a_bad_batch_size(tmp_path):
    _save(tmp_path, _model())
    with pytest.raises(ValueError, match="batch_size"):
        generate(load_checkpoint(tmp_path), 2, batch_size=0)


def test_copy_for_sampling_keeps_config_and_ema_only(tmp_path):
    model = _model()
    _save(tmp_path / "run", model, optimizer=_stepped_optimizer(model))
    ckpt.copy_for_sampling(tmp_path / "run", tmp_path / "ship")
    assert sorted(p.name for p in (tmp_path / "ship").iterdir()) == [
        "config.json",
        "ema.safetensors",
    ]
    assert load_checkpoint(tmp_path / "ship").config["step"] == 3


def test_shipped_digits_checkpoint_loads_and_samples():
    loaded = load_checkpoint(ROOT / "checkpoints" / "digits")
    assert (
        loaded.model.config["sample_size"] == 16
        and loaded.model.config["in_channels"] == 1
    )
    x = generate(
        loaded, 4, "dpmsolver++", 5, generator=torch.Generator().manual_seed(0)
    )
    assert x.shape == (4, 1, 16, 16) and torch.isfinite(x).all()
    assert (ROOT / "checkpoints" / "digits" / "README.md").is_file()
