"""Scheduler overhead: our samplers' step math vs the matching diffusers ``scheduler.step``.

Two numbers per sampler:

* ``ratio``: seconds per step of our sampler divided by seconds per step of the diffusers loop
  (``set_timesteps``, then ``scale_model_input`` + ``step`` per timestep), both driven by a
  free "network" that returns a fixed tensor, on the same tensors. The goal is ``<= 1.0``.
  A step is timed as a whole ``num_inference_steps`` loop divided by its length (diffusers'
  schedulers keep a step counter, so a single ``step`` cannot be re-timed in isolation);
  warm-up first, then the median of several repeats.
* ``share_of_step_with_unet``: the fraction of a full sampling step that the scheduler math takes
  when the network is the project's UNet (``snippets.unet.UNet(**DIGITS_CONFIG)``); goal < 2%.
"""

from __future__ import annotations

import statistics
import time

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
)

from snippets.sampling import (
    ddim_sample_progressive,
    ddpm_sample_progressive,
    dpm_solver_pp_2m_sample_progressive,
    euler_sample_progressive,
    heun_sample_progressive,
)
from snippets.schedules import NoiseSchedule


def _cases():
    """(name, our progressive sampler, its options, diffusers scheduler, step kwargs, evaluations per step)."""
    return [
        (
            "ddpm",
            ddpm_sample_progressive,
            {"clip_sample": True},
            DDPMScheduler(clip_sample=True),
            {},
        ),
        ("ddim", ddim_sample_progressive, {"eta": 0.0}, DDIMScheduler(), {"eta": 0.0}),
        (
            "euler",
            euler_sample_progressive,
            {},
            EulerDiscreteScheduler(use_karras_sigmas=True),
            {},
        ),
        (
            "heun",
            heun_sample_progressive,
            {},
            HeunDiscreteScheduler(
                beta_start=1e-4, beta_end=0.02, use_karras_sigmas=True
            ),
            {},
        ),
        (
            "dpmsolver++",
            dpm_solver_pp_2m_sample_progressive,
            {},
            DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2),
            {},
        ),
    ]


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    return statistics.median(_seconds(fn) for _ in range(repeats))


def _paired_median_seconds(fn_a, fn_b, repeats: int) -> tuple[float, float]:
    """Median seconds of two functions timed alternately, so that load on a shared machine hits both alike."""
    fn_a(), fn_b()  # warm-up
    times_a, times_b = [], []
    for _ in range(repeats):
        times_a.append(_seconds(fn_a))
        times_b.append(_seconds(fn_b))
    return statistics.median(times_a), statistics.median(times_b)


def _ours(progressive, options, model, x_T, schedule, steps):
    def loop():
        for _ in progressive(
            model,
            x_T,
            schedule,
            steps,
            generator=torch.Generator().manual_seed(0),
            **options,
        ):
            pass

    return loop


def _diffusers(scheduler, step_kwargs, model, x_T, steps):
    def loop():
        scheduler.set_timesteps(steps)
        generator = torch.Generator().manual_seed(0)
        x = x_T * scheduler.init_noise_sigma
        with torch.no_grad():
            for t in scheduler.timesteps:
                model_output = model(
                    scheduler.scale_model_input(x, t), t.expand(x.shape[0])
                )
                if isinstance(scheduler, (DDPMScheduler, EulerDiscreteScheduler)):
                    x = scheduler.step(
                        model_output, t, x, generator=generator, **step_kwargs
                    ).prev_sample
                else:
                    x = scheduler.step(model_output, t, x, **step_kwargs).prev_sample

    return loop


def _unet_seconds(batch: int, repeats: int) -> tuple[float | None, str]:
    """Median seconds of one forward pass of the project's UNet, or None if it is not importable."""
    try:
        from snippets.unet import DIGITS_CONFIG, UNet
    except ImportError as error:  # written in parallel; report rather than fail
        return None, f"snippets.unet not importable: {error}"
    model = UNet(**DIGITS_CONFIG).eval()
    size, channels = DIGITS_CONFIG["sample_size"], DIGITS_CONFIG["in_channels"]
    x = torch.randn(batch, channels, size, size)
    t = torch.full((batch,), 500)
    with torch.no_grad():
        seconds = _median_seconds(lambda: model(x, t), repeats)
    return seconds, "UNet(**DIGITS_CONFIG)"


def run(fast: bool = False) -> dict:
    """Time every sampler against diffusers; see the module docstring for what is measured."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # step math on small tensors: one thread is steadier on a shared machine
    try:
        return _run(fast)
    finally:
        torch.set_num_threads(threads)


def _run(fast: bool) -> dict:
    batch, size = (2, 4) if fast else (64, 16)
    steps, repeats = (4, 3) if fast else (50, 21)
    x_T = torch.randn(batch, 1, size, size)
    fixed_output = torch.randn(batch, 1, size, size)

    def free_model(x, t):
        return fixed_output

    schedule = NoiseSchedule.from_name("linear")
    unet_seconds, unet_note = _unet_seconds(batch, 1 if fast else 10)
    results = {
        "batch_shape": [batch, 1, size, size],
        "num_inference_steps": steps,
        "repeats": repeats,
        "torch_threads": 1,
        "unet": unet_note,
        "unet_forward_ms": None
        if unet_seconds is None
        else round(unet_seconds * 1e3, 3),
        "samplers": {},
    }
    for name, progressive, options, scheduler, step_kwargs in _cases():
        evaluations = 2 * steps - 1 if name == "heun" else steps
        ours, theirs = _paired_median_seconds(
            _ours(progressive, options, free_model, x_T, schedule, steps),
            _diffusers(scheduler, step_kwargs, free_model, x_T, steps),
            repeats,
        )
        entry = {
            "ours_us_per_step": round(ours / steps * 1e6, 2),
            "diffusers_us_per_step": round(theirs / steps * 1e6, 2),
            "ratio": round(ours / theirs, 3),
        }
        if unet_seconds is not None:
            entry["share_of_step_with_unet"] = round(
                ours / (ours + evaluations * unet_seconds), 5
            )
        results["samplers"][name] = entry
    results["max_ratio"] = max(entry["ratio"] for entry in results["samplers"].values())
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(fast=True), indent=2))
