"""Latent vs pixel diffusion on the digits, and how well the miniature Stable Diffusion follows prompts.

Two shipped models generate the same number of digits, labels `i % 10`:

* *pixel*: `checkpoints/digits/`, the project's class-conditional UNet on 16x16x1 pixels,
  sampled by `snippets.checkpoint.generate`;
* *latent*: `checkpoints/mini-sd/`, diffusers' `StableDiffusionPipeline` with the autoencoder, text
  encoder and cross-attention UNet of `snippets.latent_diffusion`, on 4x4x4 latents, prompted
  "a zero", "a one", ... and decoded.

Both use DPM-Solver++(2M) with 20 steps and guidance scale 3. Per model: the numbers the denoiser
sees per image, its parameters, the optimizer steps it was trained for (from its checkpoint), its
training throughput (optimizer steps per second at batch 48, *timed* on a few steps here, one
thread), the sampling time and the digit FID of the decoded digits (`snippets.metrics`).

Prompt adherence: at guidance scales 1, 2, 3 and 5 the pipeline is prompted with "a thin <digit>"
and "a thick <digit>" (half each); the digit classifier's accuracy on the prompted class and, for
the ink, how often the measured ink (`snippets.captions.ink`) falls in the prompted third of the
train split, and the mean ink of each half. Wall times are indicative (a shared machine).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
PIXEL = HERE.parent / "checkpoints" / "digits"
LATENT = HERE.parent / "checkpoints" / "mini-sd"
SCALES = [1.0, 2.0, 3.0, 5.0]
STEPS, GUIDANCE, BATCH = 20, 3.0, 48


def run(fast: bool = False) -> dict:
    """Measure both models (see the module docstring).

    Args:
        fast: Smoke run: 20 digits, 3 steps, 2 timed training steps, scales 1 and 3.

    Returns:
        JSON-serialisable results.
    """
    from threadpoolctl import threadpool_limits

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return _run(fast)
    finally:
        torch.set_num_threads(threads)


def _train_steps_per_second(step, k: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(k):
        step()
    return k / (time.perf_counter() - start)


def _pixel_row(n, steps, k, classifier):
    from snippets.checkpoint import generate, load_checkpoint
    from snippets.forward import q_sample
    from snippets.metrics import digit_metrics

    ckpt = load_checkpoint(PIXEL)
    model = ckpt.model
    labels = torch.arange(n) % 10
    start = time.perf_counter()
    x = generate(
        ckpt,
        n,
        "dpmsolver++",
        steps,
        labels,
        GUIDANCE,
        torch.Generator().manual_seed(0),
    )
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = (classifier(x.clamp(-1, 1)).argmax(-1) == labels).float().mean()
    x0 = torch.randn(BATCH, 1, 16, 16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        t = torch.randint(0, 1000, (BATCH,))
        eps = torch.randn_like(x0)
        x_t = q_sample(x0, t, ckpt.schedule.alpha_bar, eps)
        loss = (model(x_t, t, torch.randint(0, 10, (BATCH,))) - eps).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return {
        "model": "pixel: project UNet, 16x16x1",
        "numbers_per_image": 256,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trained_steps": ckpt.config["step"],
        "train_steps_per_second": _train_steps_per_second(step, k),
        "sampling_seconds": seconds,
        "label_accuracy": accuracy.item(),
        **{k: v for k, v in digit_metrics(x, classifier).items() if k != "n"},
    }


def _latent_row(pipe, record, n, steps, k, classifier):
    from snippets.captions import DIGIT_WORDS, build_tokenizer
    from snippets.latent_diffusion import (
        SCHEDULE,
        _token_ids,
        denoiser_loss,
        generate,
    )
    from snippets.metrics import digit_metrics

    labels = torch.arange(n) % 10
    prompts = [f"a {DIGIT_WORDS[i]}" for i in labels.tolist()]
    start = time.perf_counter()
    x = generate(
        pipe, prompts, steps, GUIDANCE, generator=torch.Generator().manual_seed(0)
    )
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = (classifier(x).argmax(-1) == labels).float().mean()
    from diffusers import DDPMScheduler

    alphas_cumprod = DDPMScheduler(**SCHEDULE).alphas_cumprod
    unet, text_encoder = pipe.unet, pipe.text_encoder
    params = [*unet.parameters(), *text_encoder.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    ids = _token_ids(build_tokenizer(), prompts[:1] * BATCH)
    z0 = torch.randn(BATCH, 4, 4, 4)
    unet.train()
    text_encoder.train()

    def step():
        loss = denoiser_loss(unet, text_encoder, z0, ids, alphas_cumprod)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    rate = _train_steps_per_second(step, k)
    unet.eval()
    text_encoder.eval()
    return {
        "model": "latent: AutoencoderKL + CLIPTextModel + UNet2DConditionModel, 4x4x4",
        "numbers_per_image": 64,
        "parameters": sum(p.numel() for p in params),
        "autoencoder_parameters": sum(p.numel() for p in pipe.vae.parameters()),
        "trained_steps": record["unet_steps_done"],
        "autoencoder_steps": record["vae_steps"],
        "train_steps_per_second": rate,
        "sampling_seconds": seconds,
        "label_accuracy": accuracy.item(),
        **{k: v for k, v in digit_metrics(x, classifier).items() if k != "n"},
    }


def _adherence(pipe, record, n, steps, scales, classifier):
    from snippets.captions import DIGIT_WORDS, INK_WORDS, ink

    low, high = record["caption_thresholds"]["ink"]
    labels = torch.arange(n) % 10
    thick = (torch.arange(n) // 10) % 2 == 1
    prompts = [
        f"a {INK_WORDS[int(t)]} {DIGIT_WORDS[d]}"
        for d, t in zip(labels.tolist(), thick.tolist())
    ]
    from snippets.latent_diffusion import generate

    rows = []
    for s in scales:
        g = torch.Generator().manual_seed(1)
        x = generate(pipe, prompts, steps, s, generator=g)
        with torch.no_grad():
            accuracy = (classifier(x).argmax(-1) == labels).float().mean().item()
        measured = ink(x)
        in_third = torch.where(thick, measured > high, measured < low)
        rows.append(
            {
                "guidance_scale": s,
                "label_accuracy": accuracy,
                "ink_in_prompted_third": in_third.float().mean().item(),
                "mean_ink_thin": measured[~thick].mean().item(),
                "mean_ink_thick": measured[thick].mean().item(),
            }
        )
        print(f"   s = {s:g}: {rows[-1]}", flush=True)
    return rows


def _run(fast: bool) -> dict:
    from snippets.latent_diffusion import load_pipeline, read_record
    from snippets.metrics import fid_floor, load_classifier

    n, steps, k = (20, 3, 2) if fast else (300, STEPS, 10)
    scales = [1.0, 3.0] if fast else SCALES
    classifier = load_classifier()
    pipe, record = load_pipeline(LATENT), read_record(LATENT)
    rows = [
        _pixel_row(n, steps, k, classifier),
        _latent_row(pipe, record, n, steps, k, classifier),
    ]
    return {
        "n_samples": n,
        "sampler": "dpmsolver++",
        "steps": steps,
        "guidance_scale": GUIDANCE,
        "batch_size_timed": BATCH,
        "torch_threads": torch.get_num_threads(),
        "floor_fid": fid_floor(n, classifier)["fid"],
        "autoencoder_test_mse": record["test_reconstruction_mse"],
        "scaling_factor": record["scaling_factor"],
        "rows": rows,
        "adherence": _adherence(pipe, record, n, steps, scales, classifier),
        "ink_thresholds": record["caption_thresholds"]["ink"],
    }


def markdown(record: dict) -> str:
    """Two tables: pixel vs latent, and prompt adherence over the guidance scale."""
    r = record["results"]
    lines = [
        "| model | numbers per image | parameters | trained steps | train steps/s "
        "(batch 48) | sampling time (s) | read as the prompted digit | digit FID |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['model']} | {row['numbers_per_image']} | {row['parameters']:,} "
            f"| {row['trained_steps']} | {row['train_steps_per_second']:.2f} "
            f"| {row['sampling_seconds']:.1f} | {row['label_accuracy']:.1%} "
            f"| {row['fid']:.1f} |"
        )
    lines += [
        "",
        f"{r['n_samples']} digits each, labels i % 10, {r['sampler']} with {r['steps']} "
        f"steps at guidance scale {r['guidance_scale']:g}; digit FID floor "
        f"{r['floor_fid']:.1f}. Autoencoder: test MSE {r['autoencoder_test_mse']:.4f} "
        f"per pixel, scaling factor {r['scaling_factor']:.3f}.",
        "",
        "| guidance scale s | read as the prompted digit | ink in the prompted third "
        "| mean ink, 'thin' prompts | mean ink, 'thick' prompts |",
        "|---|---|---|---|---|",
    ]
    for row in r["adherence"]:
        lines.append(
            f"| {row['guidance_scale']:g} | {row['label_accuracy']:.1%} "
            f"| {row['ink_in_prompted_third']:.1%} | {row['mean_ink_thin']:.3f} "
            f"| {row['mean_ink_thick']:.3f} |"
        )
    low, high = r["ink_thresholds"]
    lines += [
        "",
        f"Prompts 'a thin <digit>' and 'a thick <digit>', half each; thin is ink below "
        f"{low:.3f}, thick above {high:.3f} (the thirds of the train split).",
    ]
    return "\n".join(lines) + "\n"
