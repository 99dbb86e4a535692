"""`snippets.unet.UNet` against `diffusers.UNet2DModel` at the same configuration, on CPU.

For the digits preset (16x16x1) and the course preset (32x32x3): parameter counts, the largest
difference between the two outputs once the diffusers weights are loaded into `UNet`, the median
time of a forward pass (no grad) and of a training step (forward, MSE loss, backward) per batch,
and the matching images per second. Medians of `repeats` runs after `warmup` runs; nothing here is asserted.
"""

from __future__ import annotations

import statistics
import time

import torch

from snippets.unet import (
    COURSE_CONFIG,
    DIGITS_CONFIG,
    UNet,
    convert_diffusers_state_dict,
    diffusers_equivalent,
)


def _median_seconds(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _timings(model, call, x, t, warmup, repeats) -> dict:
    def forward():
        with torch.no_grad():
            call(model, x, t)

    def train_step():
        model.zero_grad(set_to_none=True)
        call(model, x, t).square().mean().backward()

    model.eval()
    fwd = _median_seconds(forward, warmup, repeats)
    model.train()
    step = _median_seconds(train_step, warmup, repeats)
    batch = x.shape[0]
    return {
        "forward_s": round(fwd, 5),
        "train_step_s": round(step, 5),
        "forward_images_per_s": round(batch / fwd, 1),
        "train_images_per_s": round(batch / step, 1),
    }


def compare(
    config: dict, batch: int, warmup: int, repeats: int, timed: bool = True
) -> dict:
    """Build both models with the same weights, compare their outputs and (if `timed`) time them
    on the same batch."""
    torch.manual_seed(0)
    theirs = diffusers_equivalent(config)
    ours = UNet(**config)
    ours.load_state_dict(convert_diffusers_state_dict(theirs.state_dict()))
    side, channels = config["sample_size"], config["in_channels"]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, side, side, generator=generator)
    t = torch.randint(0, 1000, (batch,), generator=generator)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        max_abs_diff = (ours(x, t) - theirs(x, t).sample).abs().max().item()
    result = {
        "config": ours.config,
        "batch": batch,
        "params_ours": sum(p.numel() for p in ours.parameters()),
        "params_diffusers": sum(p.numel() for p in theirs.parameters()),
        "max_abs_output_diff": max_abs_diff,
    }
    if timed:
        result["ours"] = _timings(ours, lambda m, x, t: m(x, t), x, t, warmup, repeats)
        result["diffusers"] = _timings(
            theirs, lambda m, x, t: m(x, t).sample, x, t, warmup, repeats
        )
    return result


def run(fast: bool = False) -> dict:
    """Compare at the digits and course presets.

    `fast` (a smoke run): batch 2, one timed run, and the course preset is compared (parameters,
    outputs on one image) but not timed.
    """
    warmup, repeats = (1, 1) if fast else (3, 10)
    return {
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "warmup": warmup,
        "repeats": repeats,
        "digits": compare(
            DIGITS_CONFIG, batch=2 if fast else 128, warmup=warmup, repeats=repeats
        ),
        "course": compare(
            COURSE_CONFIG,
            batch=1 if fast else 16,
            warmup=warmup,
            repeats=repeats,
            timed=not fast,
        ),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(fast=True), indent=2))
