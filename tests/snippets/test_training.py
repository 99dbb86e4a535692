"""Tests of snippets/training.py: the loss, LR schedule, EMA, a tiny run, exact resume, two processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snippets import checkpoint as ckpt
from snippets.checkpoint import load_checkpoint, read_config
from snippets.data import load_digits
from snippets.forward import q_sample, training_target
from snippets.schedules import NoiseSchedule
from snippets.training import (
    TrainConfig,
    diffusion_loss,
    ema_update,
    learning_rate_at,
    min_snr_weight,
    train,
)
from snippets.unet import UNet

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(
    sample_size=16,
    channels=(8, 16),
    num_res_blocks=1,
    attention_levels=(),
    num_groups=4,
    mid_attention=False,
)


def tiny_unet(seed: int = 0, **overrides) -> UNet:
    torch.manual_seed(seed)
    return UNet(**{**TINY, **overrides})


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits("train")
    return x[:256], y[:256]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(steps=0),
        dict(minutes=-1),
        dict(steps=5, prediction_type="x0"),
        dict(steps=5, ema_decay=1.0),
        dict(steps=5, p_uncond=1.5),
        dict(steps=5, min_snr_gamma=0.0),
        dict(steps=5, mixed_precision="fp8"),
    ],
)
def test_train_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        TrainConfig(**kwargs)


def test_min_snr_weights_match_the_x0_weighting_for_every_target():
    alpha_bar = NoiseSchedule.from_name("cosine").alpha_bar[
        torch.tensor([0, 100, 500, 900, 999])
    ]
    snr = alpha_bar / (1 - alpha_bar)
    gamma = 5.0
    w_x0 = min_snr_weight(alpha_bar, gamma, "sample")
    assert torch.allclose(w_x0, torch.clamp(snr, max=gamma))
    # ||eps error||^2 = SNR ||x0 error||^2 and ||v error||^2 = (SNR + 1) ||x0 error||^2
    assert torch.allclose(
        min_snr_weight(alpha_bar, gamma, "epsilon") * snr, w_x0, rtol=1e-5
    )
    assert torch.allclose(
        min_snr_weight(alpha_bar, gamma, "v_prediction") * (snr + 1), w_x0, rtol=1e-5
    )
    assert torch.equal(min_snr_weight(alpha_bar, None, "epsilon"), torch.ones(5))


def test_diffusion_loss_equals_algorithm_1_by_hand():
    schedule = NoiseSchedule.from_name("linear", 100)
    x0 = load_digits("train")[0][:4]
    model = tiny_unet()
    loss = diffusion_loss(
        model,
        x0,
        schedule.alpha_bar,
        "v_prediction",
        generator=torch.Generator().manual_seed(3),
    )
    g = torch.Generator().manual_seed(3)
    t = torch.randint(0, 100, (4,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    x_t = q_sample(x0, t, schedule.alpha_bar, noise=noise)
    target = training_target(x0, noise, t, schedule.alpha_bar, "v_prediction")
    assert torch.allclose(loss, ((model(x_t, t) - target) ** 2).mean(), rtol=1e-6)


def test_learning_rate_warms_up_linearly_then_decays_to_zero():
    config = TrainConfig(steps=100, learning_rate=1.0, warmup_steps=10)
    assert learning_rate_at(0, 0.0, config) == pytest.approx(0.1)
    assert learning_rate_at(4, 0.0, config) == pytest.approx(0.5)
    assert learning_rate_at(50, 0.5, config) == pytest.approx(
        0.5
    )  # cos(pi/2): half way down
    assert learning_rate_at(99, 1.0, config) == pytest.approx(0.0, abs=1e-12)
    lrs = [learning_rate_at(s, s / 100, config) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_ema_update_is_polyak_averaging_with_warmup():
    model = torch.nn.Linear(3, 2)
    ema = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    ema_update(ema, model, decay=0.9, step=1000)  # warmup over: d = 0.9
    assert torch.allclose(ema["weight"], 0.1 * model.weight)
    ema = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    ema_update(ema, model, decay=0.9, step=0)  # d = min(0.9, 1/10) = 0.1
    assert torch.allclose(ema["weight"], 0.9 * model.weight)


def test_tiny_training_run_loss_falls(digits):
    images, _ = digits
    config = TrainConfig(
        steps=40,
        batch_size=16,
        learning_rate=3e-3,
        warmup_steps=5,
        prediction_type="epsilon",
        min_snr_gamma=None,
        schedule="linear",
    )
    result = train(tiny_unet(), images, config=config, progress_bar=False)
    assert result.step == 40 and len(result.losses) == 40 and not result.interrupted
    first, last = sum(result.losses[:10]) / 10, sum(result.losses[-10:]) / 10
    assert last < 0.7 * first, (first, last)
    assert all(torch.isfinite(v).all() for v in result.ema_state.values())


def test_time_budget_stops_the_run(digits):
    images, _ = digits
    result = train(
        tiny_unet(),
        images,
        config=TrainConfig(minutes=0.005, batch_size=4),
        progress_bar=False,
    )
    assert result.step >= 1 and 0.3 <= result.seconds < 30
    assert len(result.losses) == result.step


def test_class_conditional_training_needs_a_conditional_model(digits):
    images, labels = digits
    with pytest.raises(ValueError, match="unconditional"):
        train(tiny_unet(), images, labels, TrainConfig(steps=1), progress_bar=False)
    result = train(
        tiny_unet(num_classes=10),
        images,
        labels,
        TrainConfig(steps=2, batch_size=8),
        progress_bar=False,
    )
    assert result.step == 2


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_after_sigint_equals_uninterrupted_run(digits, tmp_path):
    images, labels = digits
    config = TrainConfig(
        steps=6,
        batch_size=8,
        warmup_steps=2,
        checkpoint_every=0,
        p_uncond=0.3,
        random_flip=True,
    )
    straight = tiny_unet(num_classes=10)
    full = train(
        straight,
        images,
        labels,
        config,
        out_dir=tmp_path / "straight",
        progress_bar=False,
    )

    # the same run, hit by SIGINT during its third step, then resumed from its checkpoint
    interrupted = tiny_unet(num_classes=10)
    calls = []

    def send_sigint(module, inputs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)

    handle = interrupted.register_forward_pre_hook(send_sigint)
    first = train(
        interrupted,
        images,
        labels,
        config,
        out_dir=tmp_path / "run",
        progress_bar=False,
    )
    handle.remove()
    assert first.interrupted and first.step == 3
    assert (tmp_path / "run" / "training_state.safetensors").is_file()

    resumed_model = tiny_unet(
        seed=123, num_classes=10
    )  # other initial weights: all must come from the checkpoint
    second = train(
        resumed_model,
        images,
        labels,
        config,
        out_dir=tmp_path / "run",
        resume=True,
        progress_bar=False,
    )
    assert second.step == 6 and not second.interrupted
    assert second.losses == full.losses
    for name, value in _weights(straight).items():
        assert torch.equal(resumed_model.state_dict()[name], value), name
        assert torch.equal(second.ema_state[name], full.ema_state[name]), name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TWO_PROCESS_SCRIPT = """
import hashlib, sys, torch
from accelerate import PartialState
from snippets.data import load_digits
from snippets.training import TrainConfig, train
from snippets.unet import UNet

torch.manual_seed(0)
model = UNet(sample_size=16, channels=(8, 16), num_res_blocks=1, attention_levels=(), num_groups=4, mid_attention=False)
images = load_digits("train")[0][:64]
result = train(model, images, config=TrainConfig(steps=3, batch_size=8), out_dir=sys.argv[1] + "/ckpt",
               progress_bar=False)
state = PartialState()
digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values())).hexdigest()
open(f"{sys.argv[1]}/rank{state.process_index}.txt", "w").write(f"{state.num_processes} {result.step} {digest}")
state.wait_for_everyone()
state.destroy_process_group()  # as the CLI does: no open gloo group at interpreter exit
"""


def _accelerate_launch(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`accelerate launch` two CPU processes on this machine running ARGS (a script or `-m ...`)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(_free_port()),
        *args,
    ]
    return subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=240, cwd=cwd
    )


def test_two_cpu_processes_with_accelerate_launch_agree(tmp_path):
    script = tmp_path / "two_ranks.py"
    script.write_text(TWO_PROCESS_SCRIPT)
    proc = _accelerate_launch([str(script), str(tmp_path)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert (
        reports[0] == reports[1]
    )  # same world size, step and weights hash on both processes
    assert reports[0][:2] == ["2", "3"]
    state = (tmp_path / "ckpt" / "training_state.json").read_text()
    assert '"world_size": 2' in state


def test_cli_train_under_accelerate_launch_two_processes(tmp_path):
    # the README's `accelerate launch --multi_gpu --num_processes 2 -m snippets train ...`, at a tiny size
    args = [
        "-m",
        "snippets",
        "train",
        "--data",
        "digits",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--unet-channels",
        "8,16",
        "--num-res-blocks",
        "1",
        "--attention-levels",
        "",
        "--num-groups",
        "4",
        "--no-samples",
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
    ]
    proc = _accelerate_launch(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("step 3: loss") == 1  # printed by the main process only
    state = json.loads((tmp_path / "run" / "training_state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 3


def test_a_non_finite_loss_stops_training_and_keeps_the_last_checkpoint(
    digits, tmp_path
):
    images, _ = digits
    config = TrainConfig(
        steps=6, batch_size=4, learning_rate=1e30, warmup_steps=0, checkpoint_every=1
    )
    with pytest.raises(FloatingPointError, match="not finite.*last checkpoint"):
        train(tiny_unet(), images, config=config, out_dir=tmp_path, progress_bar=False)
    kept = load_checkpoint(tmp_path)  # loads: hashes and finiteness are checked
    assert 1 <= kept.config["step"] < 6
    # NaN data: refused before the first step (train checks images), the weights unchanged
    model = tiny_unet()
    before = _weights(model)
    nan_images = torch.full_like(images[:8], float("nan"))
    with pytest.raises(ValueError, match="images contains NaN"):
        train(model, nan_images, config=TrainConfig(steps=3), progress_bar=False)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_resume_refuses_a_budget_already_spent(digits, tmp_path):
    images, _ = digits
    config = TrainConfig(steps=2, batch_size=4, checkpoint_every=0)
    train(tiny_unet(), images, config=config, out_dir=tmp_path, progress_bar=False)
    with pytest.raises(ValueError, match="at step 2.*beyond the budget"):
        train(
            tiny_unet(),
            images,
            config=TrainConfig(steps=1, batch_size=4),
            out_dir=tmp_path,
            resume=True,
            progress_bar=False,
        )
    assert load_checkpoint(tmp_path).config["step"] == 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_during_the_final_save_wait_for_it(
    digits, tmp_path, monkeypatch, signum
):
    images, _ = digits
    real_write = ckpt._write_synced
    sent = []

    def write_and_signal(path, data):
        if len(sent) < 2:  # SIGTERM, or a first and a second Ctrl-C, mid-save
            sent.append(signum)
            os.kill(os.getpid(), signum)
        real_write(path, data)

    monkeypatch.setattr(ckpt, "_write_synced", write_and_signal)
    result = train(
        tiny_unet(),
        images,
        config=TrainConfig(steps=2, batch_size=4, checkpoint_every=0),
        out_dir=tmp_path,
        progress_bar=False,
    )
    assert len(sent) == 2 and result.step == 2
    assert load_checkpoint(tmp_path).config["step"] == 2


_MID_RUN = TrainConfig(steps=6, batch_size=4, warmup_steps=2, checkpoint_every=2)


@pytest.fixture(scope="module")
def uninterrupted(digits):
    model = tiny_unet()
    return train(model, digits[0], config=_MID_RUN, progress_bar=False), _weights(model)


# the save's file steps: 6 writes, the commit rename (7), 6 moves, the manifest's last (13)
@pytest.mark.parametrize("fail_at", [6, 7, 13])
def test_a_save_interrupted_mid_run_still_resumes_exactly(
    digits, uninterrupted, tmp_path, monkeypatch, fail_at
):
    images, config = digits[0], _MID_RUN
    full, straight_weights = uninterrupted

    real_commit, commits, ops = ckpt.commit_files, [], []

    def commit_failing_once(directory, files, step):
        commits.append(step)
        return real_commit(directory, files, step)

    def op(function):
        def step(*args, **kwargs):
            if len(commits) == 2:  # the save at step 4
                ops.append(function.__name__)
                if len(ops) == fail_at:
                    raise OSError(28, "No space left on device (injected)")
            return function(*args, **kwargs)

        return step

    with monkeypatch.context() as m:
        m.setattr(ckpt, "commit_files", commit_failing_once)
        m.setattr(ckpt, "_write_synced", op(ckpt._write_synced))
        for name in ("rename", "replace"):
            m.setattr(ckpt.os, name, op(getattr(os, name)))
        with pytest.raises(OSError, match="injected"):
            train(
                tiny_unet(), images, config=config, out_dir=tmp_path, progress_bar=False
            )
    assert read_config(tmp_path)["step"] in (2, 4)
    resumed = tiny_unet(seed=5)
    second = train(
        resumed,
        images,
        config=config,
        out_dir=tmp_path,
        resume=True,
        progress_bar=False,
    )
    assert second.losses == full.losses
    for name, value in straight_weights.items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


KILL_DURING_SAVE_SCRIPT = r'''
"""Train in forked children of one process (imports paid once); SIGKILL a child at a file step."""
import hashlib, json, os, signal, sys
from pathlib import Path

import accelerate, sklearn.datasets, tqdm.auto  # noqa: E401,F401  (imported before forking)
import snippets.data, snippets.plotting, snippets.training, snippets.unet  # noqa: E401,F401
from snippets import checkpoint as ckpt
from snippets.__main__ import main

tmp, args = Path(sys.argv[1]), sys.argv[2:]
calls, marks, kill_at = [], {}, [None]


def counted(function):
    """Count every file step inside tmp; SIGKILL this process before the kill_at-th."""
    def step(*a, **kw):
        if any(str(x).startswith(str(tmp)) for x in a):
            calls.append(function.__name__)
            if len(calls) == kill_at[0]:
                os.kill(os.getpid(), signal.SIGKILL)
        return function(*a, **kw)
    return step


def marked(function):
    def commit(directory, files, step):
        marks.setdefault(step, len(calls))  # file steps done before the save of `step`
        return function(directory, files, step)
    return commit


ckpt._write_synced = counted(ckpt._write_synced)
for name in ("rename", "replace", "unlink"):
    setattr(os, name, counted(getattr(os, name)))
ckpt.commit_files = marked(ckpt.commit_files)


def child(argv, kill=None):
    """Run `python -m snippets ARGV` in a forked child; its exit status (-9: killed)."""
    pid = os.fork()
    if pid == 0:
        kill_at[0] = kill
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
        (tmp / "calls.json").write_text(json.dumps({"calls": calls, "marks": marks}))
        os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def weights(run):  # the tensors' bytes (the files' JSON headers may order them otherwise)
    loaded = [ckpt.load_checkpoint(run, use_ema=e).model.state_dict() for e in (False, True)]
    return [hashlib.sha256(state[k].numpy().tobytes()).hexdigest()
            for state in loaded for k in sorted(state)]


report = {"baseline": child(["train", *args, "--out", str(tmp / "base")])}
log = json.loads((tmp / "calls.json").read_text())
calls_, marks_ = log["calls"], {int(k): v for k, v in log["marks"].items()}
save = range(marks_[4] + 1, marks_[6] + 1)  # the file steps of the step-4 save
# (marks_[6] is the start of the periodic step-6 save: the final one comes later)
names = [calls_[k - 1] for k in save]
commit = save[names.index("rename")]
moments = {  # SIGKILL just before the commit rename, and halfway through the moves
    "before-commit": commit, "mid-move": commit + len(names[names.index("rename"):]) // 2,
}
report["save_steps"] = names
for moment, k in moments.items():
    run = tmp / moment
    killed = child(["train", *args, "--out", str(run)], kill=k)
    loaded = ckpt.load_checkpoint(run).config["step"]  # whole: old or new, never a mix
    resumed = child(["train", "--out", str(run), "--resume", "--no-progress", "--no-samples"])
    leftovers = sorted(p.name for p in run.iterdir() if p.name.startswith(".tmp") or p.name == ".commit")
    report[moment] = dict(killed=killed, loaded=loaded, resumed=resumed,
                          same=weights(run) == weights(tmp / "base"), leftovers=leftovers)
print(json.dumps(report))
'''


def test_kill_9_at_any_moment_of_a_save_leaves_a_folder_that_loads_and_resumes(
    tmp_path,
):
    """A real SIGKILL of `python -m snippets train` inside its step-4 save, once with every
    file staged but not committed and once halfway through moving the committed files: the
    folder loads as step 2 or step 4, `--resume` finishes the run, and the weights equal
    those of an uninterrupted run bit for bit. (`test_checkpoint.py` interrupts a save at
    every one of its file steps in-process.)"""
    script = tmp_path / "kill_during_save.py"
    script.write_text(KILL_DURING_SAVE_SCRIPT)
    args = ["--data", "digits", "--steps", "6", "--checkpoint-every", "2"]
    args += ["--unet-channels", "8,16", "--num-res-blocks", "1", "--attention-levels"]
    args += [
        "",
        "--num-groups",
        "4",
        "--batch-size",
        "8",
        "--no-progress",
        "--no-samples",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), *args],
        env={**env, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["baseline"] == 0
    assert report["save_steps"].count("_write_synced") >= 6, report["save_steps"]
    expected_step = {"before-commit": 2, "mid-move": 4}
    for moment, step in expected_step.items():
        outcome = report[moment]
        assert outcome["killed"] == -signal.SIGKILL, (moment, outcome)
        assert outcome["loaded"] == step, (moment, outcome)
        assert outcome["resumed"] == 0, (moment, outcome, proc.stderr[-3000:])
        assert outcome["same"], (moment, outcome)
        assert outcome["leftovers"] == [], (moment, outcome)
