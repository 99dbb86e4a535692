"""Tests of snippets/checkpoint.py: round trips without pickles, atomic saves, clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
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
        "manifest.json",
        "model.safetensors",
        "training_state.json",
        "training_state.safetensors",
    ]  # no staging folder, no .commit, no lock left behind

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


def _rewrite(directory, name, data: bytes):
    """Replace one file and update the manifest: a consistent but crafted checkpoint."""
    (directory / name).write_bytes(data)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256(data).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _rewrite_config(directory, change):
    config = json.loads((directory / "config.json").read_text())
    change(config)
    _rewrite(directory, "config.json", json.dumps(config).encode())


def test_truncated_and_corrupt_files_raise_value_errors_naming_them(tmp_path):
    _save(tmp_path, _model())
    ema = tmp_path / "ema.safetensors"
    data = ema.read_bytes()
    ema.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"ema.safetensors is truncated or corrupt"):
        load_checkpoint(tmp_path)
    _rewrite(tmp_path, "ema.safetensors", b"\x00garbage" * 10)  # even with its hash
    with pytest.raises(ValueError, match=r"ema.safetensors is truncated or corrupt"):
        load_checkpoint(tmp_path)
    config = (tmp_path / "config.json").read_bytes()
    _rewrite(tmp_path, "config.json", config[:40])
    with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
        load_checkpoint(tmp_path)
    _rewrite(tmp_path, "config.json", json.dumps({"model": {}}).encode())
    with pytest.raises(ValueError, match="missing keys"):
        read_config(tmp_path)


def test_one_flipped_bit_in_any_file_is_an_error_naming_it(tmp_path):
    model = _model()
    _save(tmp_path, model, optimizer=_stepped_optimizer(model))
    for name in ckpt.CHECKPOINT_FILES:
        path = tmp_path / name
        good = path.read_bytes()
        flipped = bytearray(good)
        flipped[len(good) * 2 // 3] ^= 0x01
        path.write_bytes(bytes(flipped))
        with pytest.raises(
            ValueError, match=f"{name} is truncated or corrupt.*SHA-256"
        ):
            load_training_state(
                tmp_path,
                _model(),
                torch.optim.AdamW(_model().parameters()),
                {k: v.clone() for k, v in model.state_dict().items()},
            )
        path.write_bytes(good)
    assert load_checkpoint(tmp_path).config["step"] == 3


def test_non_finite_tensors_are_refused_on_save_and_on_load(tmp_path):
    from safetensors.torch import save

    model = _model()
    _save(tmp_path, model)
    bad = {k: v.clone() for k, v in model.state_dict().items()}
    name = next(iter(bad))
    bad[name].view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match=f"{name}.*NaN"):
        _save(tmp_path / "other", model, ema=bad)
    assert not (tmp_path / "other" / "manifest.json").exists()
    # NaN data bytes with a matching hash (a checkpoint written by other code)
    _rewrite(tmp_path, "ema.safetensors", save(bad, metadata={"step": "3"}))
    with pytest.raises(ValueError, match=f"ema.safetensors: tensor '{name}' holds NaN"):
        load_checkpoint(tmp_path)


def test_weights_that_do_not_match_the_config_are_refused(tmp_path):
    _save(tmp_path, _model())
    _rewrite_config(tmp_path, lambda c: c["model"].update(channels=[8, 24]))
    with pytest.raises(ValueError, match="does not match the model.*other shapes"):
        load_checkpoint(tmp_path)
    # not a multiple of num_groups: the UNet refuses it
    _rewrite_config(tmp_path, lambda c: c["model"].update(channels=[8, 17]))
    with pytest.raises(ValueError, match="invalid model or schedule config"):
        load_checkpoint(tmp_path)


def _nested(depth):
    value = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["model"].update(sample_size=200_000), "model.sample_size"),
        (lambda c: c["model"].update(sample_size=-4), "model.sample_size"),
        (lambda c: c["model"].update(sample_size="16"), "model.sample_size"),
        (lambda c: c["model"].update(channels=[32768]), "model.channels"),
        (lambda c: c["model"].update(channels=[8.5, 16]), "model.channels"),
        (lambda c: c["model"].update(attention_levels=[0.7]), "attention_levels"),
        (lambda c: c["model"].update(num_res_blocks=3000), "model.num_res_blocks"),
        (lambda c: c["model"].update(channels=[2048] * 8), "model too large"),
        (lambda c: c["model"].update(bogus=1), "unknown keys"),
        (lambda c: c["schedule"].update(num_train_timesteps=10**12), "timesteps"),
        (lambda c: c.update(prediction_type="bogus"), "prediction_type"),
        (lambda c: c.update(step=-1), "step"),
        (lambda c: c.update(extra=_nested(50)), "unknown keys"),
        (lambda c: c.update(training={"batch_size": "64"}), "training.batch_size"),
        (lambda c: c.update(training={"bogus": 1}), "unknown keys"),
        (lambda c: c.update(data={"image_size": 0}), "data.image_size"),
    ],
)
def test_configs_from_disk_are_validated_before_allocating(tmp_path, change, message):
    _save(tmp_path, _model())
    _rewrite_config(tmp_path, change)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(tmp_path)


def test_deeply_nested_json_is_a_clear_error(tmp_path):
    _save(tmp_path, _model())
    _rewrite(tmp_path, "config.json", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        read_config(tmp_path)


def test_scheduler_from_checkpoint_rejects_an_unknown_prediction_type(tmp_path):
    from snippets.with_diffusers import scheduler_from_checkpoint

    _save(tmp_path, _model())
    _rewrite_config(tmp_path, lambda c: c.update(prediction_type="bogus"))
    with pytest.raises(ValueError, match="prediction_type"):
        scheduler_from_checkpoint(tmp_path)


def _count_file_steps(monkeypatch, fail_at=None):
    """Count (and make the `fail_at`-th raise) every write, rename, replace and unlink."""
    calls = []

    def wrap(function):
        def step(*args, **kwargs):
            calls.append(function.__name__)
            if len(calls) == fail_at:
                raise OSError(28, "No space left on device (injected)")
            return function(*args, **kwargs)

        return step

    monkeypatch.setattr(ckpt, "_write_synced", wrap(ckpt._write_synced))
    for name in ("rename", "replace", "unlink"):
        monkeypatch.setattr(ckpt.os, name, wrap(getattr(os, name)))
    return calls


def test_a_save_interrupted_at_any_file_step_leaves_the_old_or_the_new_checkpoint(
    tmp_path, monkeypatch
):
    old_model, new_model = _model(seed=0), _model(seed=1)
    old_opt, new_opt = _stepped_optimizer(old_model), _stepped_optimizer(new_model)
    with monkeypatch.context() as m:
        calls = _count_file_steps(m)
        _save(tmp_path / "count", old_model, step=1, optimizer=old_opt)
    total = len(calls)
    assert total >= 12, calls  # 6 writes, 1 commit rename, 6 moves, removals

    for k in range(1, total + 1):
        run = tmp_path / f"run{k}"
        _save(run, old_model, step=1, optimizer=old_opt)
        with monkeypatch.context() as m:
            _count_file_steps(m, fail_at=k)
            with pytest.raises(OSError, match="injected"):
                _save(run, new_model, step=2, optimizer=new_opt)
        # the folder loads, whole: either the old save or the new one, never a mix
        fresh = _model(seed=7)
        fresh_ema = {n: torch.zeros_like(v) for n, v in fresh.state_dict().items()}
        state = load_training_state(
            run, fresh, torch.optim.AdamW(fresh.parameters(), lr=1e-3), fresh_ema
        )
        expected = {1: old_model, 2: new_model}[state["step"]]
        assert load_checkpoint(run).config["step"] == state["step"]
        for name, value in expected.state_dict().items():
            assert torch.equal(fresh.state_dict()[name], value), (k, name)
        # the next save finishes or drops the interrupted one and leaves nothing behind
        _save(run, old_model, step=3, optimizer=old_opt)
        assert load_checkpoint(run).config["step"] == 3
        assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


def test_readers_follow_a_committed_save_while_its_files_move(tmp_path, monkeypatch):
    old_model, new_model = _model(seed=0), _model(seed=1)
    _save(tmp_path, old_model, step=1)
    moves = []
    real_replace = os.replace

    def stop_after_two_moves(src, dst):
        moves.append(dst)
        if len(moves) == 3:
            raise KeyboardInterrupt  # e.g. killed in the middle of the moves
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", stop_after_two_moves)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, new_model, step=2)
    monkeypatch.undo()
    assert (tmp_path / ".commit").is_dir()  # committed, half moved
    loaded = load_checkpoint(tmp_path, use_ema=False)
    assert loaded.config["step"] == 2
    for name, value in new_model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], value)


LOCK_HOLDER = """
import sys, time
from snippets.checkpoint import RunLock
with RunLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_one_writer_per_folder_and_a_killed_writer_leaves_a_stale_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "run")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ckpt.RunFolderBusy, match=f"in use by process {holder.pid}"):
            _save(tmp_path / "run", _model())
        with pytest.raises(ckpt.RunFolderBusy, match=str(holder.pid)):
            ckpt.copy_for_sampling(ROOT / "checkpoints" / "digits", tmp_path / "run")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    # kill -9 left the lock file with a dead PID: stale, taken over
    assert (tmp_path / "run" / ".lock").read_text().strip() == str(holder.pid)
    _save(tmp_path / "run", _model())
    assert load_checkpoint(tmp_path / "run").config["step"] == 3
    assert not (tmp_path / "run" / ".lock").exists()


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with ckpt.RunLock(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
        _save(tmp_path, _model())  # save_checkpoint takes the same lock again
        assert (tmp_path / ".lock").is_file()
    assert not (tmp_path / ".lock").exists()


def test_generate_checks_labels_and_sampler(tmp_path):
    _save(tmp_path, _model())
    loaded = load_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="sampler must be one of"):
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
    size = loaded.image_size  # the network's side; generate upsamples its samples
    x_T = torch.randn((5, 1, size, size), generator=generator)
    guided = cfg_model(loaded.model, labels, 3.0, loaded.num_classes)
    with torch.no_grad():
        expected = loaded.to_data(
            SAMPLERS[sampler](
                guided,
                x_T,
                loaded.schedule,
                4,
                prediction_type=loaded.prediction_type,
                generator=generator,
            )
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
    (tmp_path / "run" / "loss.png").write_bytes(b"a loss curve")
    ckpt.copy_for_sampling(tmp_path / "run", tmp_path / "ship")
    assert sorted(p.name for p in (tmp_path / "ship").iterdir()) == [
        "config.json",
        "ema.safetensors",
        "loss.png",
        "manifest.json",
    ]
    assert load_checkpoint(tmp_path / "ship").config["step"] == 3
    # a second export replaces the first as a whole (its loss.png too)
    (tmp_path / "run" / "loss.png").unlink()
    _save(tmp_path / "run", model, step=5, optimizer=_stepped_optimizer(model))
    ckpt.copy_for_sampling(tmp_path / "run", tmp_path / "ship")
    assert load_checkpoint(tmp_path / "ship").config["step"] == 5
    assert not (tmp_path / "ship" / "loss.png").exists()


def test_export_never_mixes_two_runs(tmp_path):
    model = _model()
    _save(tmp_path / "a", model, step=3, optimizer=_stepped_optimizer(model))
    _save(tmp_path / "b", model, step=9, optimizer=_stepped_optimizer(model))
    before = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    with pytest.raises(ValueError, match="holds a training run"):
        ckpt.copy_for_sampling(tmp_path / "a", tmp_path / "b")
    assert {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()} == before
    with pytest.raises(ValueError, match="checkpoint folder itself"):
        ckpt.copy_for_sampling(tmp_path / "a", tmp_path / "a")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        ckpt.copy_for_sampling(tmp_path / "a", tmp_path / "file")


def test_shipped_digits_checkpoint_loads_and_samples():
    loaded = load_checkpoint(ROOT / "checkpoints" / "digits")
    # the default recipe: an 8x8 network whose samples are upsampled to the 16x16 digits
    assert (
        loaded.model.config["sample_size"] == 8
        and loaded.model.config["in_channels"] == 1
        and loaded.upsample_to == 16
    )
    x = generate(
        loaded, 4, "dpmsolver++", 5, generator=torch.Generator().manual_seed(0)
    )
    assert x.shape == (4, 1, 16, 16) and torch.isfinite(x).all()
    assert (ROOT / "checkpoints" / "digits" / "README.md").is_file()


def test_shipped_digits_manifest_names_its_files_with_their_hashes():
    folder = ROOT / "checkpoints" / "digits"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {
        "config.json",
        "ema.safetensors",
        "loss.png",
        "samples.png",
    }
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest


def test_a_checkpoint_moves_images_between_the_data_and_the_network_sizes():
    from snippets.data import load_digits
    from snippets.fast_digits import FAST_DIGITS_CONFIG
    from snippets.schedules import NoiseSchedule
    from snippets.unet import UNet

    schedule = NoiseSchedule.from_name("cosine", 10)
    small = UNet(**dict(FAST_DIGITS_CONFIG, channels=(32, 32)))
    fast = ckpt.Checkpoint(small, schedule, "epsilon", None, {}, upsample_to=16)
    plain = ckpt.Checkpoint(_model(), schedule, "epsilon", None, {})
    x8, _ = load_digits("test", image_size=8)
    x16, _ = load_digits("test", image_size=16)
    assert (fast.image_size, fast.data_size) == (8, 16)
    assert torch.allclose(fast.to_model(x16), x8, atol=1e-5)
    assert torch.equal(fast.to_data(x8), x16)
    size = plain.image_size
    assert plain.data_size == size
    x = torch.zeros(2, 1, size, size)
    assert plain.to_model(x) is x and plain.to_data(x) is x
    with pytest.raises(ValueError, match="images"):
        fast.to_model(x8)  # already at the network's size: a mistake, not a no-op
    with pytest.raises(ValueError, match="x"):
        fast.to_data(x16)
