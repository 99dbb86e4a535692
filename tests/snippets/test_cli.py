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
    assert set(subparsers) == {"train", "sample", "evaluate", "export"}
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
    ]


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
