"""Tests of snippets/finetuning.py: the transforms, initialising from a checkpoint, fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from snippets.__main__ import main
from snippets.checkpoint import load_checkpoint, read_config
from snippets.data import load_digits
from snippets.finetuning import (
    TRANSFORM_NAMES,
    init_from_checkpoint,
    load_transformed_digits,
    transform_at_data_size,
    transform_images,
)
from snippets.schedules import NoiseSchedule
from snippets.training import TrainConfig, diffusion_loss, train
from snippets.unet import UNet

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "checkpoints" / "digits"
TINY = dict(
    sample_size=16,
    channels=(8, 8),
    num_res_blocks=1,
    attention_levels=(),
    num_groups=4,
    num_classes=10,
)
QUICK = dict(mixed_precision="no", checkpoint_every=0, log_every=1)


# -- the new distribution --------------------------------------------------------------------


def test_thick_is_a_3x3_dilation_of_the_ink():
    x = torch.full((1, 1, 5, 5), -1.0)
    x[0, 0, 2, 2] = 0.5  # one inked pixel
    y = transform_images(x, "thick")
    expected = torch.full((1, 1, 5, 5), -1.0)
    expected[0, 0, 1:4, 1:4] = 0.5  # becomes a 3x3 square of the same ink
    assert torch.equal(y, expected)
    digits = load_digits("test")[0]
    thick = transform_images(digits, "thick")
    assert (thick >= digits).all() and thick.min() >= -1 and thick.max() <= 1
    # the pen really is thicker: more ink on every image
    assert ((thick > 0).sum((1, 2, 3)) > (digits > 0).sum((1, 2, 3))).all()


def test_rotate_four_times_and_invert_twice_give_the_images_back():
    x = load_digits("test")[0][:8]
    y = x
    for _ in range(4):
        y = transform_images(y, "rotate90")
    assert torch.equal(y, x)
    assert torch.equal(transform_images(transform_images(x, "invert"), "invert"), x)
    assert not torch.equal(transform_images(x, "rotate90"), x)


def test_transformed_digits_keep_the_split_and_labels():
    for name in TRANSFORM_NAMES:
        images, labels = load_transformed_digits("test", name)
        plain, plain_labels = load_digits("test")
        assert images.shape == plain.shape and torch.equal(labels, plain_labels)
        assert torch.equal(images, transform_images(plain, name))


# -- initialising from a checkpoint -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny class-conditional checkpoint trained for one step on the plain digits."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    images, labels = load_digits("train")
    torch.manual_seed(1)
    train(
        UNet(**TINY),
        images,
        labels,
        TrainConfig(steps=1, batch_size=4, **QUICK),
        out_dir=out,
        progress_bar=False,
    )
    return out


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_initial_weights_are_the_checkpoints_ema(tiny_checkpoint):
    torch.manual_seed(0)
    model = UNet(**TINY)
    before = _weights(model)
    config = init_from_checkpoint(model, tiny_checkpoint)
    ema = load_checkpoint(tiny_checkpoint).model.state_dict()
    assert config["step"] == 1
    assert any(not torch.equal(before[k], ema[k]) for k in ema)
    for name, value in model.state_dict().items():
        assert torch.equal(value, ema[name]), name


def test_three_steps_of_fine_tuning_stay_near_the_checkpoint(tiny_checkpoint):
    """Weights and EMA start at the checkpoint; each AdamW step moves a weight by at most
    about 3.2 lr (|m_hat / sqrt(v_hat)| <= (1 - beta1) / sqrt(1 - beta2) early on)."""
    model = UNet(**TINY)
    init_from_checkpoint(model, tiny_checkpoint)
    start = _weights(model)
    images, labels = load_transformed_digits("train", "thick")
    lr = 1e-3
    result = train(
        model,
        images,
        labels,
        TrainConfig(steps=3, batch_size=4, learning_rate=lr, warmup_steps=0, **QUICK),
        progress_bar=False,
    )
    assert result.step == 3 and all(torch.isfinite(torch.tensor(result.losses)))
    bound = 3 * 3.2 * lr
    moved = 0
    for name, value in model.state_dict().items():
        if value.dtype.is_floating_point:
            assert (value - start[name]).abs().max() <= bound, name
            assert (result.ema_state[name] - start[name]).abs().max() <= bound, name
            moved += int(not torch.equal(value, start[name]))
    assert moved, "three AdamW steps changed nothing"


def test_a_mismatched_model_or_recipe_is_refused_with_both_values(tiny_checkpoint):
    other = UNet(**{**TINY, "channels": (8, 16)})
    with pytest.raises(
        ValueError, match=r"channels: checkpoint \[8, 8\], model \[8, 16\]"
    ):
        init_from_checkpoint(other, tiny_checkpoint)
    unconditional = UNet(**{**TINY, "num_classes": None})
    with pytest.raises(ValueError, match="num_classes: checkpoint 10, model None"):
        init_from_checkpoint(unconditional, tiny_checkpoint)
    with pytest.raises(ValueError, match="prediction_type: checkpoint 'v_prediction'"):
        init_from_checkpoint(UNet(**TINY), tiny_checkpoint, prediction_type="epsilon")
    with pytest.raises(ValueError, match="schedule: checkpoint 'cosine', run 'linear'"):
        init_from_checkpoint(UNet(**TINY), tiny_checkpoint, schedule="linear")


def test_missing_or_corrupt_checkpoints_are_refused(tiny_checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        init_from_checkpoint(UNet(**TINY), tmp_path / "nowhere")
    import shutil

    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_checkpoint, corrupt)
    data = bytearray((corrupt / "ema.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (corrupt / "ema.safetensors").write_bytes(bytes(data))
    model = UNet(**TINY)
    before = _weights(model)
    with pytest.raises(ValueError, match="corrupt"):
        init_from_checkpoint(model, corrupt)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# -- the shipped model on the new data ---------------------------------------------------------


def _fixed_loss(model, images, labels, alpha_bar) -> float:
    """The v-prediction loss on fixed images, timesteps and noise (seed 0)."""
    with torch.no_grad():
        return diffusion_loss(
            model.eval(),
            images,
            alpha_bar,
            "v_prediction",
            labels,
            5.0,
            generator=torch.Generator().manual_seed(0),
        ).item()


def test_fine_tuning_the_shipped_model_lowers_its_loss_on_thick_digits():
    torch.set_num_threads(1)
    alpha_bar = NoiseSchedule.from_name("cosine", 1000).alpha_bar
    size = read_config(SHIPPED)["model"]["sample_size"]  # the network's: 8x8
    thick, labels = load_transformed_digits("test", "thick", image_size=size)
    plain = load_digits("test", image_size=size)[0]
    thick, plain, labels = thick[:128], plain[:128], labels[:128]
    model = UNet(**read_config(SHIPPED)["model"])
    init_from_checkpoint(model, SHIPPED, "v_prediction", "cosine", 1000)
    on_plain = _fixed_loss(model, plain, labels, alpha_bar)
    on_thick = _fixed_loss(model, thick, labels, alpha_bar)
    assert on_thick > 1.5 * on_plain, "thick digits are not new to the shipped model"
    images, train_labels = load_transformed_digits("train", "thick", image_size=size)
    train(
        model.train(),
        images,
        train_labels,
        TrainConfig(
            steps=6, batch_size=16, learning_rate=5e-4, warmup_steps=2, **QUICK
        ),
        progress_bar=False,
    )
    assert _fixed_loss(model, thick, labels, alpha_bar) < 0.8 * on_thick


# -- the command line --------------------------------------------------------------------------

TINY_ARGS = [
    "--data",
    "digits",
    "--class-conditional",
    "--unet-channels",
    "8,8",
    "--num-res-blocks",
    "1",
    "--attention-levels",
    "",
    "--num-groups",
    "4",
    "--batch-size",
    "4",
    "--steps",
    "1",
    "--no-progress",
    "--no-samples",
]


def test_cli_fine_tunes_records_and_resumes(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "ft"
    argv = ["train", *TINY_ARGS, "--transform", "thick", "--out", str(out)]
    assert main([*argv, "--init-from", str(tiny_checkpoint)]) == 0
    config = read_config(out)
    assert config["data"]["transform"] == "thick"
    assert config["data"]["init_from"] == str(tiny_checkpoint)
    assert main(["train", "--out", str(out), "--resume", "--steps", "2"]) == 0
    assert json.loads((out / "config.json").read_text())["step"] == 2


def test_cli_refuses_bad_fine_tuning_options(tiny_checkpoint, tmp_path, capsys):
    def error(argv) -> str:
        capsys.readouterr()
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        return lines[0]

    base = ["train", *TINY_ARGS]
    message = error([*base, "--out", str(tmp_path / "a"), "--init-from", "/nowhere"])
    assert "/nowhere" in message and "does not exist" in message
    wide = [*base, "--unet-channels", "8,16", "--out", str(tmp_path / "b")]
    message = error([*wide, "--init-from", str(tiny_checkpoint)])
    assert "channels: checkpoint [8, 8], model [8, 16]" in message
    eps = [*base, "--prediction-type", "epsilon", "--out", str(tmp_path / "c")]
    assert "prediction_type" in error([*eps, "--init-from", str(tiny_checkpoint)])
    resume = ["train", "--out", str(tiny_checkpoint), "--resume"]
    assert "--init-from" in error([*resume, "--init-from", str(tiny_checkpoint)])
    with pytest.raises(SystemExit) as info:
        main([*base, "--out", str(tmp_path / "d"), "--transform", "fat"])
    assert info.value.code == 2
    assert "--transform" in capsys.readouterr().err


def test_an_8x8_model_learns_the_16x16_transform_brought_to_8x8():
    from snippets.fast_digits import downsample_digits, upsample_digits

    x8, _ = load_digits("test", image_size=8)
    x16, _ = load_digits("test", image_size=16)
    # rotation and inversion commute with the resize: the 8x8 result is exact
    for name in ("rotate90", "invert"):
        assert torch.allclose(
            transform_at_data_size(x8, name, 16), transform_images(x8, name), atol=1e-5
        )
    # thick strokes do not: the least-squares 8x8 version of the 16x16 thick digits, which
    # upsamples much closer to them than thickening the 8x8 scans does
    thick16 = transform_images(x16, "thick")
    held = transform_at_data_size(x8, "thick", 16)
    assert torch.equal(held, downsample_digits(thick16).clamp(-1, 1))
    assert torch.equal(load_transformed_digits("test", "thick", 8)[0], held)
    near = (upsample_digits(held) - thick16).pow(2).mean().sqrt()
    far = (
        (upsample_digits(transform_images(x8, "thick")) - thick16).pow(2).mean().sqrt()
    )
    assert near < 0.5 * far
    assert torch.equal(transform_at_data_size(x16, "thick"), thick16)  # no data_size


@pytest.mark.parametrize(
    "call, name",
    [
        (
            lambda: transform_at_data_size(torch.full((1, 1, 8, 8), 2.0), "thick", 16),
            "images",
        ),
        (lambda: transform_at_data_size(torch.zeros(1, 1, 8, 8), "fat", 16), "name"),
        (
            lambda: transform_at_data_size(torch.zeros(1, 1, 8, 8), "thick", 4),
            "data_size",
        ),
        (lambda: load_transformed_digits("test", "thick", 12), "image_size"),
    ],
)
def test_transform_at_data_size_rejects_bad_input_naming_it(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()
