r"""Training a diffusion model: the DDPM loss, AdamW, warmup + cosine, EMA, with Accelerate.

One training step is Algorithm 1 of Ho et al. 2020 (DDPM): draw a clean image $x_0$, a timestep
$t \sim \mathcal{U}\{0, \dots, T-1\}$ and noise $\epsilon \sim \mathcal{N}(0, I)$, form
$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ and regress the network's output
on a target: $\epsilon$ (the paper), $v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0$
(Salimans & Ho 2022) or $x_0$. Around it sit the usual engineering pieces:

* AdamW (Loshchilov & Hutter 2019) with a linear warmup and a cosine decay of the learning rate;
* gradient clipping by global norm;
* an exponential moving average (EMA) of the weights, which is what we sample from;
* optional min-SNR-$\gamma$ loss weighting (Hang et al. 2023);
* optional class labels, dropped with probability $p_\text{uncond}$ to learn classifier-free
  guidance (Ho & Salimans 2022);
* Hugging Face Accelerate, so that `python -m snippets train` runs one CPU process and
  `accelerate launch --num_processes N -m snippets train` runs data-parallel on N processes
  (GPUs or CPU processes talking over gloo), with mixed precision when a GPU is present;
* a step budget and/or a wall-clock budget, checkpoints that resume exactly
  (`snippets.checkpoint`), and a checkpoint on SIGINT/SIGTERM.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from snippets import check
from snippets import checkpoint as ckpt
from snippets.forward import q_sample, training_target
from snippets.guidance import drop_labels
from snippets.schedules import SCHEDULE_NAMES, NoiseSchedule, snr

if TYPE_CHECKING:
    from accelerate import Accelerator

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


# --8<-- [start:train-config]
@dataclass
class TrainConfig:
    r"""Every knob of a training run; saved in the checkpoint's `config.json`.

    The defaults are the ones used for the shipped digits model (see the training page for why).

    Attributes:
        steps: Stop after this many optimizer steps (`None`: no step limit).
        minutes: Stop after this much wall-clock time (`None`: no time limit). With both set, the
            run stops at whichever comes first, and the cosine decay follows that budget.
        batch_size: Images per step and per process.
        learning_rate: Peak learning rate of AdamW.
        lr_schedule: `"cosine"` (decay to 0 over the budget) or `"constant"` (as the course does).
        warmup_steps: Steps of linear warmup from 0 to `learning_rate`.
        weight_decay: AdamW's decoupled weight decay.
        grad_clip: Maximum global gradient norm (`0` disables clipping).
        ema_decay: Decay of the exponential moving average of the weights.
        schedule: Noise schedule name for `NoiseSchedule.from_name`.
        num_train_timesteps: $T$.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"` (what the network outputs).
        min_snr_gamma: $\gamma$ of min-SNR loss weighting (Hang et al. 2023); `None` for the plain
            unweighted MSE of Ho et al. 2020.
        p_uncond: Probability of replacing a class label by the null label (class-conditional
            models only).
        random_flip: Flip images horizontally with probability 1/2 (not for digits!).
        seed: Seed of every random draw (weights are initialised by the caller).
        mixed_precision: `"auto"` (bf16 or fp16 on a GPU, none on a CPU), `"no"`, `"fp16"`, `"bf16"`.
        checkpoint_every: Save a checkpoint every this many steps (`0`: only at the end).
        log_every: Update the progress bar every this many steps.
    """

    steps: int | None = None
    minutes: float | None = None
    batch_size: int = 64
    learning_rate: float = 2e-3
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    schedule: str = "cosine"
    num_train_timesteps: int = 1000
    prediction_type: str = "v_prediction"
    min_snr_gamma: float | None = 5.0
    p_uncond: float = 0.1
    random_flip: bool = False
    seed: int = 0
    mixed_precision: str = "auto"
    checkpoint_every: int = 1000
    log_every: int = 10

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            raise ValueError("set a budget: steps and/or minutes (both are None)")
        if self.steps is not None:
            check.integer("steps", self.steps, ge=1)
        if self.minutes is not None:
            check.real("minutes", self.minutes, gt=0)
        check.integer("batch_size", self.batch_size, ge=1)
        check.real("learning_rate", self.learning_rate, gt=0)
        check.one_of("lr_schedule", self.lr_schedule, ("cosine", "constant"))
        check.integer("warmup_steps", self.warmup_steps, ge=0)
        check.real("weight_decay", self.weight_decay, ge=0)
        check.real("grad_clip", self.grad_clip, ge=0)
        check.real("ema_decay", self.ema_decay, ge=0, lt=1)
        check.one_of("schedule", self.schedule, SCHEDULE_NAMES)
        check.integer("num_train_timesteps", self.num_train_timesteps, ge=2)
        check.one_of("prediction_type", self.prediction_type, PREDICTION_TYPES)
        if self.min_snr_gamma is not None:
            check.real("min_snr_gamma", self.min_snr_gamma, gt=0)
        check.real("p_uncond", self.p_uncond, ge=0, le=1)
        check.boolean("random_flip", self.random_flip)
        check.integer("seed", self.seed, ge=0, lt=2**64)
        check.one_of(
            "mixed_precision", self.mixed_precision, ("auto", "no", "fp16", "bf16")
        )
        check.integer("checkpoint_every", self.checkpoint_every, ge=0)
        check.integer("log_every", self.log_every, ge=1)


# --8<-- [end:train-config]


@dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        step: Optimizer steps done in total (including those before a resume).
        losses: The loss of every step, in order (this process's batch).
        seconds: Wall-clock seconds spent training in total (including before a resume).
        interrupted: True if SIGINT or SIGTERM stopped the run (a checkpoint was saved).
        ema_state: The EMA weights, by parameter name.
    """

    step: int
    losses: list[float]
    seconds: float
    interrupted: bool
    ema_state: dict[str, torch.Tensor] = field(repr=False)

    @property
    def steps_per_second(self) -> float:
        """Mean training throughput."""
        return self.step / self.seconds if self.seconds > 0 else float("nan")


# --8<-- [start:min-snr]
def min_snr_weight(
    alpha_bar_t: torch.Tensor, gamma: float | None, prediction_type: str
) -> torch.Tensor:
    r"""Per-sample loss weights of min-SNR-$\gamma$ weighting (Hang et al. 2023, Eq. 9).

    The weight on the $x_0$ error is $\min(\mathrm{SNR}(t), \gamma)$. The squared errors of the
    other targets are $\mathrm{SNR}(t)$ and $\mathrm{SNR}(t)+1$ times *larger* than the $x_0$ error
    ($\lVert\epsilon - \hat\epsilon\rVert^2 = \mathrm{SNR}\,\lVert x_0 - \hat x_0\rVert^2$,
    $\lVert v - \hat v\rVert^2 = (\mathrm{SNR}+1)\,\lVert x_0 - \hat x_0\rVert^2$), so the same
    loss written for them divides by those factors:

    $$w_\epsilon = \frac{\min(\mathrm{SNR}, \gamma)}{\mathrm{SNR}}, \qquad
      w_v = \frac{\min(\mathrm{SNR}, \gamma)}{\mathrm{SNR} + 1}, \qquad
      w_{x_0} = \min(\mathrm{SNR}, \gamma).$$

    It stops the many easy low-noise steps from dominating the gradient.

    Args:
        alpha_bar_t: $\bar\alpha_t$ of each sample, shape `(B,)`.
        gamma: $\gamma$ (5 in the paper); `None` gives weight 1 (the plain loss).
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.

    Returns:
        Weights of shape `(B,)`.
    """
    check.tensor("alpha_bar_t", alpha_bar_t, ge=0, le=1)
    if gamma is None:
        return torch.ones_like(alpha_bar_t)
    check.real("gamma", gamma, gt=0)
    snr_t = snr(alpha_bar_t)
    clipped = torch.clamp(snr_t, max=gamma)
    if prediction_type == "epsilon":
        return clipped / snr_t
    if prediction_type == "v_prediction":
        return clipped / (snr_t + 1)
    if prediction_type == "sample":
        return clipped
    raise ValueError(
        f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}"
    )


# --8<-- [end:min-snr]


# --8<-- [start:diffusion-loss]
def diffusion_loss(
    model: nn.Module,
    x0: torch.Tensor,
    alpha_bar: torch.Tensor,
    prediction_type: str = "epsilon",
    class_labels: torch.Tensor | None = None,
    min_snr_gamma: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The denoising loss of Ho et al. 2020, Algorithm 1 (Eq. 14), for any prediction target.

    $$L = \mathbb{E}_{x_0, t, \epsilon}\; w(t)\,\big\| y - f_\theta(x_t, t) \big\|^2,
    \qquad y \in \{\epsilon,\ v,\ x_0\}$$

    Args:
        model: Network called as `model(x_t, t)` (or with `class_labels=`), output shaped like `x_t`.
        x0: Clean images, shape `(B, C, H, W)`, in `[-1, 1]`.
        alpha_bar: $\bar\alpha$ of the noise schedule, shape `(T,)`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        class_labels: Integer labels, shape `(B,)`, or `None` for an unconditional model.
        min_snr_gamma: $\gamma$ of `min_snr_weight`, or `None` for $w(t) = 1$.
        generator: Random number generator (on the CPU) for $t$ and $\epsilon$.

    Returns:
        The scalar loss, averaged over the batch.
    """
    check.instance("model", model, Callable)
    check.tensor("x0", x0, ndim=4)
    check.tensor("alpha_bar", alpha_bar, ndim=1, gt=0, le=1)
    if class_labels is not None:
        check.tensor("class_labels", class_labels, dtype="int", shape=(len(x0),), ge=0)
    check.generator("generator", generator)
    b, device = x0.shape[0], x0.device
    alpha_bar = alpha_bar.to(device)
    # 1. t ~ Uniform({0, ..., T-1}) and eps ~ N(0, I)  (Algorithm 1, lines 3-4)
    t = torch.randint(0, alpha_bar.shape[0], (b,), generator=generator).to(device)
    noise = torch.randn(x0.shape, generator=generator).to(device, x0.dtype)
    # 2. x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps  (Eq. 4)
    x_t = q_sample(x0, t, alpha_bar, noise=noise)
    # 3. the regression target: eps, v or x_0
    target = training_target(x0, noise, t, alpha_bar, prediction_type)
    # 4. the network's prediction
    prediction = (
        model(x_t, t)
        if class_labels is None
        else model(x_t, t, class_labels=class_labels)
    )
    # 5. per-sample squared error, weighted (min-SNR-gamma) and averaged  (Eq. 14)
    per_sample = ((prediction.float() - target.float()) ** 2).mean(
        dim=tuple(range(1, x0.ndim))
    )
    weights = min_snr_weight(alpha_bar[t], min_snr_gamma, prediction_type)
    return (weights * per_sample).mean()


# --8<-- [end:diffusion-loss]


# --8<-- [start:lr-schedule]
def learning_rate_at(step: int, progress: float, config: TrainConfig) -> float:
    r"""Linear warmup, then cosine decay to 0 over the budget (Loshchilov & Hutter 2017).

    $$\eta = \eta_\text{max}\cdot\min\!\Big(1, \frac{\text{step}+1}{\text{warmup}}\Big)
    \cdot \tfrac12\big(1 + \cos(\pi\,p)\big)$$

    where $p \in [0, 1]$ is the fraction of the budget used: steps done over `config.steps`, or
    elapsed over `config.minutes` when training to a time budget. With
    `config.lr_schedule == "constant"` the cosine factor is 1.

    Args:
        step: Optimizer steps done so far.
        progress: $p$, the fraction of the budget used.
        config: The run's `TrainConfig` (`learning_rate`, `warmup_steps`).

    Returns:
        The learning rate for the next step.
    """
    check.integer("step", step, ge=0)
    check.real("progress", progress)
    check.instance("config", config, TrainConfig)
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    if config.lr_schedule == "constant":
        cosine = 1.0
    return config.learning_rate * warmup * cosine


# --8<-- [end:lr-schedule]


# --8<-- [start:ema-update]
@torch.no_grad()
def ema_update(
    ema_state: dict[str, torch.Tensor], model: nn.Module, decay: float, step: int
) -> None:
    r"""Move the EMA weights towards the model's (Polyak averaging, as in Ho et al. 2020, App. B).

    $$\bar\theta \leftarrow d\,\bar\theta + (1 - d)\,\theta,\qquad
      d = \min\!\Big(d_\text{max}, \frac{1 + \text{step}}{10 + \text{step}}\Big)$$

    The warmup of $d$ (as in diffusers' `EMAModel`) lets the average forget the random
    initialisation quickly in short runs.

    Args:
        ema_state: EMA weights by name (updated in place), fp32.
        model: The (unwrapped) model being trained.
        decay: $d_\text{max}$.
        step: Optimizer steps done, including this one.
    """
    check.real("decay", decay, ge=0, lt=1)
    check.integer("step", step, ge=0)
    d = min(decay, (1 + step) / (10 + step))
    for name, value in model.state_dict().items():
        if value.dtype.is_floating_point:
            # \bar\theta <- d \bar\theta + (1 - d) \theta
            ema_state[name].lerp_(value.float(), 1.0 - d)
        else:
            ema_state[name].copy_(value)


# --8<-- [end:ema-update]


def _mixed_precision(setting: str) -> str:
    """Resolve `"auto"`: bf16 (or fp16) on a CUDA GPU, no mixed precision on a CPU."""
    if setting != "auto":
        return setting
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag that the loop checks between steps (a second SIGINT aborts)."""

    def __init__(self):
        self.signal = None
        self.saving = (
            False  # while a checkpoint is written, a second SIGINT waits for it
        )
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not in the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT and not self.saving:
            raise KeyboardInterrupt  # second Ctrl-C: stop now, without a checkpoint
        self.signal = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


# --8<-- [start:train]
def train(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    accelerator: Accelerator | None = None,
    progress_bar: bool = True,
    run_info: dict | None = None,
) -> TrainResult:
    r"""Train `model` to denoise `images` (Ho et al. 2020, Algorithm 1) with Hugging Face Accelerate.

    Each process draws its own random batches (with replacement) from the in-memory `images`;
    under `accelerate launch` the gradients are averaged across processes (data parallelism).

    Args:
        model: Network `model(x_t, t, class_labels=None)`; the project's `UNet` for checkpoints.
        images: Training images, shape `(N, C, H, W)`, in `[-1, 1]`.
        labels: Integer class labels, shape `(N,)`, for a class-conditional model (one built with
            `num_classes`); `None` trains unconditionally.
        config: Hyper-parameters and budget.
        out_dir: Folder for checkpoints and `loss.png` (`None`: save nothing).
        resume: Continue from the checkpoint in `out_dir` (weights, EMA, optimizer, step, RNG).
        accelerator: An `accelerate.Accelerator`; one is created when omitted.
        progress_bar: Show a tqdm bar on the main process.
        run_info: Extra JSON facts for the checkpoint's `config.json` (e.g. which data), under `"data"`.

    Returns:
        A `TrainResult` (the trained weights are in `model`, the EMA in `result.ema_state`).
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    config = config or TrainConfig(steps=1000)
    check.instance("model", model, nn.Module)
    check.tensor("images", images, ndim=4)
    check.instance("config", config, TrainConfig)
    check.boolean("resume", resume)
    check.boolean("progress_bar", progress_bar)
    num_classes = (getattr(model, "config", None) or {}).get("num_classes")
    if labels is not None and num_classes is None:
        raise ValueError(
            "labels were given but the model has no num_classes (it is unconditional)"
        )
    if labels is not None:
        n, k = len(images), num_classes
        check.tensor("labels", labels, dtype="int", shape=(n,), ge=0, lt=k)
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir, the folder holding the checkpoint")

    # 1. Accelerate: devices, data parallelism, mixed precision
    # (cpu=True on a machine without CUDA: under torchrun / `accelerate launch
    # --multi_gpu` that picks gloo)
    accelerator = accelerator or Accelerator(
        mixed_precision=_mixed_precision(config.mixed_precision),
        cpu=not torch.cuda.is_available(),
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    schedule = NoiseSchedule.from_name(config.schedule, config.num_train_timesteps)
    alpha_bar = schedule.alpha_bar.to(accelerator.device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    raw_model = accelerator.unwrap_model(model)
    ema_state = {
        k: v.detach().float().clone() for k, v in raw_model.state_dict().items()
    }
    # one CPU generator per process draws batches, timesteps, noise, label drops and
    # flips
    generator = torch.Generator().manual_seed(config.seed + 7919 * rank)
    step, seconds, losses = 0, 0.0, []

    # one writer per run folder; SIGINT/SIGTERM become a flag checked between steps
    main = accelerator.is_main_process
    lock = ckpt.RunLock(out_dir) if out_dir is not None and main else nullcontext()
    stop = _StopFlag()
    with lock, stop:
        # 2. resume: weights, EMA, optimizer, step, clock, loss history and RNG states
        if resume:
            if main:
                ckpt.recover(out_dir)  # finish or drop a save interrupted by kill -9
            accelerator.wait_for_everyone()
            state = ckpt.load_training_state(
                out_dir, raw_model, optimizer, ema_state, world_size=world
            )
            step, seconds, losses = state["step"], state["seconds"], state["losses"]
            if state["generator_states"] is not None:
                generator.set_state(state["generator_states"][rank])
                torch.set_rng_state(state["torch_rng_states"][rank])
            else:
                generator.manual_seed(config.seed + 7919 * rank + 104729 * step)

        def save():
            if not all(torch.isfinite(v).all() for v in ema_state.values()):
                raise FloatingPointError(
                    f"step {step}: the weights are NaN or infinite; nothing saved, the "
                    f"last checkpoint in {out_dir} is kept (lower the learning rate?)"
                )
            gen = accelerator.gather(
                generator.get_state().to(accelerator.device)[None]
            ).cpu()
            glob = accelerator.gather(
                torch.get_rng_state().to(accelerator.device)[None]
            ).cpu()
            stop.saving = True  # a second Ctrl-C waits until the checkpoint is whole
            try:
                if main:
                    ckpt.save_checkpoint(
                        out_dir,
                        model=raw_model,
                        ema_state=ema_state,
                        optimizer=optimizer,
                        config=_run_config(raw_model, config, run_info),
                        training_state={
                            "step": step,
                            "seconds": seconds,
                            "world_size": world,
                        },
                        tensors={
                            "losses": torch.tensor(losses, dtype=torch.float64),
                            "generator_states": gen,
                            "torch_rng_states": glob,
                        },
                    )
            finally:
                stop.saving = False
            accelerator.wait_for_everyone()

        def progress() -> float:
            return max(
                step / config.steps if config.steps else 0.0,
                seconds / (60 * config.minutes) if config.minutes else 0.0,
            )

        if resume and progress() >= 1.0:
            raise ValueError(
                f"the checkpoint in {out_dir} is at step {step} "
                f"({seconds / 60:.1f} min), "
                f"beyond the budget (steps={config.steps}, minutes={config.minutes}): "
                "give a larger --steps or --minutes to continue"
            )
        bar = tqdm(
            total=config.steps,
            initial=step,
            unit="step",
            dynamic_ncols=True,
            disable=not (progress_bar and accelerator.is_local_main_process),
        )
        model.train()
        interrupted = False
        start = time.perf_counter() - seconds
        while progress() < 1.0:
            # 3. a random batch for this process (with replacement), optional flip and
            # label drop
            index = torch.randint(
                0, images.shape[0], (config.batch_size,), generator=generator
            )
            x0 = images[index].to(accelerator.device)
            if config.random_flip:
                flip = (torch.rand(config.batch_size, generator=generator) < 0.5).to(
                    x0.device
                )
                x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
            y = None
            if labels is not None:
                y = drop_labels(
                    labels[index], config.p_uncond, num_classes, generator=generator
                ).to(x0.device)

            # 4. one optimizer step: loss, backward, clip, AdamW at the scheduled
            # learning rate
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(step, progress(), config)
            with accelerator.autocast():
                loss = diffusion_loss(
                    model,
                    x0,
                    alpha_bar,
                    config.prediction_type,
                    y,
                    config.min_snr_gamma,
                    generator,
                )
            accelerator.backward(loss)
            if config.grad_clip > 0:
                grad_norm = accelerator.clip_grad_norm_(
                    model.parameters(), config.grad_clip
                )
            else:
                grads = [p.grad for p in model.parameters() if p.grad is not None]
                grad_norm = torch.nn.utils.get_total_norm(grads)
            # a NaN/Inf loss or gradient stops the run before it reaches the weights
            # (with fp16, the loss scaler skips such steps itself)
            bad = not math.isfinite(loss.item())
            if accelerator.scaler is None:
                bad = bad or not torch.isfinite(grad_norm).item()
            if world > 1:  # every process stops at the same step
                flag = torch.tensor([float(bad)], device=accelerator.device)
                bad = accelerator.reduce(flag, "max").item() > 0
            if bad:
                raise FloatingPointError(
                    _non_finite(step + 1, loss, grad_norm, out_dir)
                )
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1

            # 5. EMA of the weights
            ema_update(ema_state, raw_model, config.ema_decay, step)

            # 6. bookkeeping: loss history, clock, progress bar, periodic checkpoint,
            # signals
            losses.append(loss.item())
            seconds = time.perf_counter() - start
            bar.update(1)
            if step % config.log_every == 0:
                recent = losses[-config.log_every :]
                bar.set_postfix(
                    loss=f"{sum(recent) / len(recent):.4f}",
                    lr=f"{group['lr']:.2e}",
                    refresh=False,
                )
            stop_now = torch.tensor(
                [float(stop.signal is not None)], device=accelerator.device
            )
            if (
                world > 1
            ):  # every process must stop at the same step (and so save together)
                stop_now = accelerator.reduce(stop_now, "max")
                seconds = accelerator.reduce(
                    torch.tensor([seconds], device=accelerator.device), "max"
                ).item()
            if stop_now.item() > 0:
                interrupted = True
                break
            if (
                out_dir is not None
                and config.checkpoint_every
                and step % config.checkpoint_every == 0
            ):
                save()
        bar.close()

        # 7. final checkpoint (a signal now waits for it) and loss curve
        if out_dir is not None:
            save()
            if main:
                plot_loss_curve(losses, Path(out_dir) / "loss.png")
    return TrainResult(
        step=step,
        losses=losses,
        seconds=seconds,
        interrupted=interrupted,
        ema_state=ema_state,
    )


# --8<-- [end:train]


def _non_finite(step: int, loss, grad_norm, out_dir) -> str:
    """The one-line message of a run stopped by a NaN/Inf loss or gradient."""
    saved = out_dir is not None and (Path(out_dir) / ckpt.MANIFEST_FILE).is_file()
    kept = f"the last checkpoint in {out_dir} is kept" if saved else "nothing saved"
    return (
        f"step {step}: loss {loss.item():.4g}, gradient norm {grad_norm.item():.4g}: not "
        f"finite, training stopped before updating the weights; {kept} (lower the "
        "learning rate?)"
    )


def _run_config(
    model: nn.Module, config: TrainConfig, run_info: dict | None = None
) -> dict:
    """The `config.json` of a checkpoint: model, schedule, prediction type and training args."""
    model_config = getattr(model, "config", None)
    if not isinstance(model_config, dict):
        raise ValueError(
            f"{type(model).__name__} has no `config` dict: only the project's UNet can be checkpointed"
        )
    return {
        "model_class": type(model).__name__,
        "model": model_config,
        "schedule": {
            "name": config.schedule,
            "num_train_timesteps": config.num_train_timesteps,
        },
        "prediction_type": config.prediction_type,
        "training": dataclasses.asdict(config),
        "data": run_info or {},
    }


def plot_loss_curve(
    losses: list[float], path: str | Path, window: int = 50, width: float = 6.0
) -> Path:
    """Save the per-step loss and its running mean as a PNG, or as SVGs for the site.

    Args:
        losses: Loss of every step.
        path: Output `.png` path (200 dpi), or `.svg`: then a light and a dark variant
            (`x.svg`, `x-dark.svg`, see `snippets.plotting`).
        window: Width of the running mean.
        width: Figure width in inches (the height is 7/12 of it); labels are 10-11 pt, so a
            figure shown `D` CSS pixels wide keeps them >= 11 px up to `D / 79` inches.

    Returns:
        The path written (the light variant for `.svg`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from snippets.plotting import save_figure

    path = Path(path)
    if path.suffix not in (".png", ".svg"):
        raise ValueError(f"path must end in .png or .svg, got {str(path)!r}")
    check.integer("window", window, ge=1)
    check.real("width", width, gt=0)

    def draw():
        fig, ax = plt.subplots(figsize=(width, width * 7 / 12))
        ax.plot(
            range(1, len(losses) + 1),
            losses,
            lw=0.6,
            alpha=0.5,
            color="C0",
            label="per step",
        )
        if len(losses) >= window:
            t = torch.tensor(losses, dtype=torch.float64)
            smooth = t.unfold(0, window, 1).mean(1)
            ax.plot(
                range(window, len(losses) + 1),
                smooth.tolist(),
                lw=1.8,
                color="C1",
                label=f"mean of {window}",
            )
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.legend()
        fig.tight_layout()
        return fig

    if path.suffix == ".svg":
        return save_figure(draw, path)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    save_figure(draw, tmp, themes=("light",))
    import os

    os.replace(tmp, path)
    return path
