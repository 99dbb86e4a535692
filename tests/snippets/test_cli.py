"""Tests of snippets/__main__.py: --help, train -> sample -> evaluate -> export, errors, SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from snippets.__main__ import SAMPLER_NAMES, build_parser, main
from snippets.checkpoint import read_config

ROOT = Path(__file__).resolve().parents[2]
TINY_ARGS = [
    "--unet-channels",
    "8,16",
    "--num-res-blocks",
    "1",
    "--attention-levels",
    "",
    "--num-groups",
    "4",
    "--batch-size",
    "8",
    "--no-progress",
    "--no-samples",
]


def test_help_explains_every_option():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    assert set(subparsers) == {
        "train",
        "sample",
        "evaluate",
        "export",
        "train-sd",
        "sample-sd",
    }
    for name, sub in subparsers.items():
        for action in sub._actions:
            assert action.help and len(action.help) > 8, (
                f"{name} {action.option_strings} has no help"
            )
    out = subprocess.run(
        [sys.executable, "-m", "snippets", "train", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        out.returncode == 0
        and "--minutes" in out.stdout
        and "--prediction-type" in out.stdout
    )


def test_sampler_names_match_the_registry():
    from snippets.sampling import SAMPLERS

    assert set(SAMPLER_NAMES) == set(SAMPLERS)


def test_train_sample_evaluate_export_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                "digits",
                "--steps",
                "2",
                "--out",
                str(run),
                "--class-conditional",
                "--num-train-timesteps",
                "100",
                *TINY_ARGS,
            ]
        )
        == 0
    )
    config = read_config(run)
    assert (
        config["step"] == 2
        and config["model"]["num_classes"] == 10
        and config["data"]["data"] == "digits"
    )
    assert (run / "loss.png").is_file()

    # resume with a larger budget continues the same run
    assert (
        main(
            [
                "train",
                "--out",
                str(run),
                "--resume",
                "--steps",
                "3",
                "--no-progress",
                "--no-samples",
            ]
        )
        == 0
    )
    assert read_config(run)["step"] == 3

    grid = tmp_path / "grid.png"
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(run),
                "--sampler",
                "ddim",
                "--steps",
                "3",
                "--n",
                "6",
                "--guidance-scale",
                "2",
                "--labels",
                "3,7",
                "--out",
                str(grid),
                "--scale",
                "1",
            ]
        )
        == 0
    )
    assert Image.open(grid).size == (3 * 17 + 1, 2 * 17 + 1)

    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(run),
                "--sampler",
                "dpmsolver++",
                "--steps",
                "2",
                "--n",
                "20",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert (
        report["samples"]["n"] == report["floor"]["n"] == 20
        and report["floor"]["fid"] < report["samples"]["fid"]
    )

    assert (
        main(["export", "--checkpoint", str(run), "--out", str(tmp_path / "ship")]) == 0
    )
    assert sorted(p.name for p in (tmp_path / "ship").iterdir()) == [
        "config.json",
        "ema.safetensors",
        "loss.png",
        "manifest.json",
    ]
    # exporting over a training run would mix two runs: refused
    assert (
        main(["export", "--checkpoint", str(tmp_path / "ship"), "--out", str(run)]) == 2
    )
    assert "holds a training run" in capsys.readouterr().err


def test_errors_are_one_line_messages(tmp_path, capsys):
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(tmp_path / "nope"),
                "--out",
                str(tmp_path / "g.png"),
            ]
        )
        == 2
    )
    assert "nope does not exist" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "r"), *TINY_ARGS]) == 2  # no budget
    assert "budget" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sample", "--checkpoint", "x", "--sampler", "plms"])


def test_sigterm_saves_a_checkpoint_before_exiting(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snippets",
            "train",
            "--steps",
            "100000",
            "--out",
            str(run),
            "--checkpoint-every",
            "0",
            *TINY_ARGS[:-2],
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait until the progress bar shows a few steps, then send SIGTERM
    deadline, seen = time.time() + 120, ""

    def steps_shown() -> int:
        return max((int(n) for n in re.findall(r"(\d+)/100000", seen)), default=0)

    while time.time() < deadline and steps_shown() < 3 and proc.poll() is None:
        seen += os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
    assert steps_shown() >= 3, seen[-2000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err
    step = read_config(run)["step"]
    assert 3 <= step < 100000


SHIPPED = str(ROOT / "checkpoints" / "digits")


def _run(argv, capsys):
    """Exit code and stderr of `python -m snippets ARGV`, argparse's exits included."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, named",
    [
        (["train", "--lr", "inf", "--steps", "2"], "--lr"),
        (["train", "--lr", "nan", "--steps", "2"], "--lr"),
        (["train", "--image-size", "0", "--steps", "2"], "--image-size"),
        (["train", "--batch-size", "2.5", "--steps", "2"], "--batch-size"),
        (["train", "--steps", "0"], "--steps"),
        (["train", "--seed", str(2**70), "--steps", "2"], "--seed"),
        (["train", "--data", "digitz", "--steps", "2"], "digitz"),
        (["sample", "--checkpoint", SHIPPED, "--scale", "0"], "--scale"),
        (["sample", "--checkpoint", SHIPPED, "--seed", str(2**70)], "--seed"),
        (["sample", "--checkpoint", SHIPPED, "--guidance-scale", "nan"], "--guidance"),
        (["sample", "--checkpoint", SHIPPED, "--steps", "0"], "--steps"),
        (["sample", "--checkpoint", SHIPPED, "--n", "-3"], "--n"),
        (["sample", "--checkpoint", SHIPPED, "--labels", "12", "--n", "1"], "--labels"),
        (["evaluate", "--checkpoint", SHIPPED, "--n", "1"], "--n"),
    ],
)
def test_bad_options_are_one_line_naming_the_option(tmp_path, capsys, argv, named):
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "run"), *TINY_ARGS]
    code, err = _run(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and named in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()  # a rejected run leaves no folder behind


@pytest.mark.parametrize(
    "bad",
    [
        ["--unet-channels", "12"],  # not divisible by --num-groups 4: refused by UNet
        ["--data", "no-such-folder"],
        ["--attention-levels", "5"],  # the UNet has 2 levels
    ],
)
def test_a_rejected_train_leaves_no_empty_folder(tmp_path, capsys, bad):
    out = tmp_path / "runs" / "new" / "run"
    code, err = _run(
        ["train", "--steps", "1", "--out", str(out), *TINY_ARGS, *bad], capsys
    )
    assert code == 2 and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []  # run, new and runs were all created by train
    # a folder that existed before is kept, and so is what it holds
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    _run(
        [
            "train",
            "--steps",
            "1",
            "--out",
            str(tmp_path / "mine" / "run"),
            *TINY_ARGS,
            *bad,
        ],
        capsys,
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["mine", "notes.txt"]


def test_file_system_errors_are_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    fast = ["--n", "1", "--steps", "1", "--scale", "1"]
    cases = [
        ["train", "--steps", "1", "--out", str(blocker), *TINY_ARGS],
        ["train", "--steps", "1", "--out", str(blocker / "run"), *TINY_ARGS],
        ["sample", "--checkpoint", SHIPPED, *fast, "--out", str(blocker / "g.png")],
        ["sample", "--checkpoint", SHIPPED, *fast, "--out", str(tmp_path)],
        ["export", "--checkpoint", SHIPPED, "--out", str(blocker)],
        ["export", "--checkpoint", SHIPPED, "--out", str(blocker / "ship")],
        ["train", "--out", str(tmp_path / "never-trained"), "--resume"],
    ]
    for argv in cases:
        code, err = _run(argv, capsys)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (
            argv,
            err,
        )


def test_a_full_disk_keeps_the_old_grid(tmp_path, capsys, monkeypatch):
    grid = tmp_path / "grid.png"
    argv = ["sample", "--checkpoint", SHIPPED, "--n", "2", "--steps", "1"]
    assert _run([*argv, "--out", str(grid)], capsys)[0] == 0
    good = grid.read_bytes()

    def disk_full(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG trunc")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    code, err = _run([*argv, "--seed", "1", "--out", str(grid)], capsys)
    assert code == 2 and "No space left on device" in err and err.count("\n") == 1
    assert grid.read_bytes() == good and sorted(os.listdir(tmp_path)) == ["grid.png"]


def test_non_finite_samples_are_reported_not_drawn(tmp_path, capsys, monkeypatch):
    import torch

    from snippets import checkpoint as ckpt

    monkeypatch.setattr(
        ckpt, "generate", lambda *a, **k: torch.full((2, 1, 16, 16), float("nan"))
    )
    grid = tmp_path / "grid.png"
    argv = ["sample", "--checkpoint", SHIPPED, "--n", "2", "--out", str(grid)]
    code, err = _run(argv, capsys)
    assert code == 2 and "NaN/Inf" in err and not grid.exists()


def test_an_unreadable_ema_file_is_named(tmp_path, capsys, monkeypatch):
    real = Path.read_bytes

    def read_bytes(self):
        if self.name == "ema.safetensors":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    code, err = _run(["sample", "--checkpoint", SHIPPED, "--n", "1"], capsys)
    assert (
        code == 2
        and "cannot read checkpoint file" in err
        and "Permission denied" in err
    )


def test_train_stops_on_nan_and_resume_checks_budget_and_config(tmp_path, capsys):
    run = tmp_path / "run"
    args = [*TINY_ARGS, "--out", str(run), "--warmup-steps", "0"]
    code, err = _run(
        ["train", "--steps", "8", "--lr", "1e30", "--checkpoint-every", "1", *args],
        capsys,
    )
    assert code == 2 and "not finite" in err and err.count("\n") == 1, err
    kept = read_config(run)["step"]
    assert 1 <= kept < 8  # the last good checkpoint stands

    fresh = tmp_path / "fresh"
    assert (
        _run(["train", "--steps", "2", "--out", str(fresh), *TINY_ARGS], capsys)[0] == 0
    )
    code, err = _run(["train", "--out", str(fresh), "--resume", "--steps", "1"], capsys)
    assert code == 2 and "beyond the budget" in err
    assert read_config(fresh)["step"] == 2

    # a resumed config without its training arguments: one line, not a KeyError
    import hashlib

    config = json.loads((fresh / "config.json").read_text())
    del config["training"]
    data = json.dumps(config).encode()
    (fresh / "config.json").write_bytes(data)
    manifest = json.loads((fresh / "manifest.json").read_text())
    manifest["files"]["config.json"] = hashlib.sha256(data).hexdigest()
    (fresh / "manifest.json").write_text(json.dumps(manifest))
    code, err = _run(["train", "--out", str(fresh), "--resume", "--steps", "3"], capsys)
    assert code == 2 and "training" in err and err.count("\n") == 1, err


LOCK_HOLDER = """
import sys, time
from snippets.checkpoint import RunLock
with RunLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_second_train_on_one_folder_fails_at_once_naming_the_first(tmp_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "run")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["train", "--steps", "1", "--out", str(tmp_path / "run"), *TINY_ARGS]
        code, err = _run(argv, capsys)
        assert code == 2 and f"in use by process {holder.pid}" in err, err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert _run(argv, capsys)[0] == 0  # the killed holder's lock is stale


def test_a_second_ctrl_c_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    import snippets.training

    def interrupted_twice(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(snippets.training, "train", interrupted_twice)
    argv = ["train", "--steps", "1", "--out", str(tmp_path / "run"), *TINY_ARGS]
    code, err = _run(argv, capsys)
    assert code == 130 and err.count("\n") == 1 and "interrupted" in err


@pytest.mark.parametrize("n", [-5, 0, 1, 2.5, True, "500"])
def test_fid_floor_rejects_a_bad_sample_count(n):
    from snippets.metrics import fid_floor

    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        fid_floor(n)


# -- the default digits recipe: 8x8 training, 16x16 samples ------------------------------------


def test_train_digits_defaults_to_the_fast_8x8_recipe(tmp_path, capsys):
    import dataclasses

    import torch

    from snippets import checkpoint as ckpt
    from snippets.fast_digits import (
        FAST_DIGITS_CONFIG,
        FAST_DIGITS_RECIPE,
        upsample_digits,
    )
    from snippets.sampling import SAMPLERS
    from snippets.training import TrainConfig

    run = tmp_path / "run"
    argv = ["train", "--data", "digits", "--steps", "2", "--batch-size", "4"]
    assert main([*argv, "--no-progress", "--no-samples", "--out", str(run)]) == 0
    config = read_config(run)
    fast = json.loads(json.dumps(FAST_DIGITS_CONFIG))
    assert {k: config["model"][k] for k in fast} == fast  # the two-level UNet, at 8x8
    assert config["data"]["image_size"] == 8 and config["data"]["upsample_to"] == 16
    recipe = TrainConfig(steps=2, batch_size=4, **FAST_DIGITS_RECIPE)
    assert config["training"] == dataclasses.asdict(recipe)

    # `sample` writes 16x16 digits: a 2 x 2 grid of 16 + 1 pixels
    grid = tmp_path / "grid.png"
    fast_sample = ["--steps", "2", "--n", "4", "--scale", "1", "--out", str(grid)]
    assert main(["sample", "--checkpoint", str(run), *fast_sample]) == 0
    assert Image.open(grid).size == (2 * 17 + 1, 2 * 17 + 1)

    # generate: the sampler at 8x8, then exactly the resize of load_digits
    loaded = ckpt.load_checkpoint(run)
    assert loaded.upsample_to == 16 and loaded.model.config["sample_size"] == 8
    images = ckpt.generate(
        loaded, 3, "ddim", 2, generator=torch.Generator().manual_seed(0)
    )
    generator = torch.Generator().manual_seed(0)
    x_T = torch.randn(3, 1, 8, 8, generator=generator)
    with torch.no_grad():
        x8 = SAMPLERS["ddim"](
            loaded.model,
            x_T,
            loaded.schedule,
            2,
            prediction_type=loaded.prediction_type,
            generator=generator,
        )
    assert images.shape == (3, 1, 16, 16) and torch.equal(images, upsample_digits(x8))

    # an export keeps the record of the upsampling (the end-to-end test above trains an
    # 8x8 model too, and evaluates and resumes it)
    ship = tmp_path / "ship"
    assert main(["export", "--checkpoint", str(run), "--out", str(ship)]) == 0
    assert ckpt.load_checkpoint(ship).upsample_to == 16


@pytest.mark.parametrize(
    "flags",
    [["--image-size", "16"], ["--preset", "digits"], ["--preset", "course"]],
)
def test_explicit_flags_give_a_16x16_model_without_upsampling(tmp_path, flags):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                "digits",
                "--steps",
                "1",
                *TINY_ARGS,
                *flags,
                "--out",
                str(run),
            ]
        )
        == 0
    )
    config = read_config(run)
    assert config["model"]["sample_size"] == 16 and config["data"]["image_size"] == 16
    assert "upsample_to" not in config["data"]


def test_image_size_8_and_fast_preset_train_the_8x8_model(tmp_path):
    for flags in (["--image-size", "8"], ["--preset", "fast-digits"]):
        run = tmp_path / flags[0].strip("-")
        assert (
            main(["train", "--steps", "1", *TINY_ARGS, *flags, "--out", str(run)]) == 0
        )
        config = read_config(run)
        assert config["model"]["sample_size"] == 8
        assert config["data"]["upsample_to"] == 16


def test_a_16x16_checkpoint_samples_at_its_own_size(tmp_path):
    import torch

    from snippets import checkpoint as ckpt
    from snippets.guidance import cfg_model
    from snippets.sampling import SAMPLERS

    run = tmp_path / "run16"
    argv = ["train", "--steps", "1", *TINY_ARGS, "--preset", "digits"]
    assert main([*argv, "--class-conditional", "--out", str(run)]) == 0
    loaded = ckpt.load_checkpoint(run)
    assert loaded.upsample_to is None and loaded.model.config["sample_size"] == 16
    images = ckpt.generate(
        loaded, 2, "ddim", 2, generator=torch.Generator().manual_seed(0)
    )
    generator = torch.Generator().manual_seed(0)
    x_T = torch.randn(2, 1, 16, 16, generator=generator)
    guided = cfg_model(loaded.model, torch.arange(2), 1.0, loaded.num_classes)
    with torch.no_grad():
        direct = SAMPLERS["ddim"](
            guided,
            x_T,
            loaded.schedule,
            2,
            prediction_type=loaded.prediction_type,
            generator=generator,
        )
    assert images.shape == (2, 1, 16, 16) and torch.equal(images, direct)
