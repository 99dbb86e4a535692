"""Pixel-space against latent-space diffusion on the digits, trained for the same compute.

**The budget is counted in base-model-equivalent steps**, as in `benchmarks/fast_recipe.py`, so
the comparison reads the same on any machine: one *slow-machine minute* is 192 optimizer steps of
the base digits UNet (`snippets.unet.DIGITS_CONFIG`, 16x16, batch 64). Each model's cost per
step relative to the base model is measured side by side with it (`--calibrate`: CPU time of one
thread, the base model timed before and after; committed in
`results/latent_vs_pixel_calibration.json`), and a model costing ``r`` base steps per step gets
``1 / r`` times as many steps.

Both contenders get `BUDGET_MINUTES` slow-machine minutes, batch 64, labels or captions dropped
with probability 0.1 for classifier-free guidance:

* *pixel*: the base model itself, class-conditional (its class embedding's cost is measured by
  the calibration, not charged), on 16x16x1 pixels with the project's recipe
  (`snippets.training.TrainConfig`), the model of `checkpoints/digits/`;
* *latent*: `snippets.latent_diffusion.train_mini_sd`: `AutoencoderKL` (4x4x4 latents), then
  `UNet2DConditionModel` and `CLIPTextModel` trained together, run by diffusers'
  `StableDiffusionPipeline`, prompted "a zero", "a one", ... and decoded.

**The latent model pays for its autoencoder**: its `VAE_STEPS` autoencoder steps are charged to
its budget and the denoiser gets the rest. The text encoder is trained jointly with the denoiser,
so its cost is inside the denoiser's step. The record also gives the denoiser steps the budget
would buy if the autoencoder were free (a pretrained one, as Stable Diffusion's users have).

Per model: the steps it was trained for, its training throughput (steps per CPU second of one
thread, from the calibration), the sampling time of `N` digits (DPM-Solver++(2M), 20 steps,
guidance scale 3), and the digit FID of the (decoded) digits (`snippets.metrics`). Prompt
adherence over the guidance scale: the digit classifier's accuracy on the prompted class for
both, and for the latent model, prompted "a thin <digit>" and "a thick <digit>" (half each), how
often the measured ink (`snippets.captions.ink`) falls in the prompted third of the train split.
Wall times are indicative (a shared machine).

    python -m benchmarks.latent_vs_pixel --calibrate   # rewrite the calibration
    python -m benchmarks latent_vs_pixel               # the comparison (about 25 min on 2 cores)

Each contender's results are kept in ``results/latent_vs_pixel.{pixel,latent}.json`` and reused by
a rerun with the same budget (delete them to start afresh); ``--part pixel`` and ``--part latent``
compute one each, so the two can train in parallel before the full run assembles them. The latent
pipeline trained here is kept in ``results/latent_vs_pixel.mini-sd/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
CALIBRATION = HERE / "results" / "latent_vs_pixel_calibration.json"
SHIPPED = HERE.parent / "checkpoints" / "mini-sd"
BASE_STEPS_PER_MINUTE = (
    3.2 * 60
)  # base model, batch 64, the slowest 2-core machine seen
BUDGET_MINUTES = 1.0
BATCH = 64
VAE_STEPS = 200
P_UNCOND = 0.1
SCALES = [1.0, 2.0, 3.0, 5.0, 7.5]  # the latent model (cheap to sample)
PIXEL_SCALES = [1.0, 3.0]  # the pixel model: four times the numbers per image
STEPS, GUIDANCE, N = 20, 3.0, 200


def _cpu_seconds_per_step(train_steps, steps: int) -> float:
    """CPU seconds per step of `train_steps(k)` after 3 untimed steps (one thread)."""
    train_steps(3)
    start = (
        time.process_time()
    )  # CPU time of this process: other processes do not count
    train_steps(steps)
    return (time.process_time() - start) / steps


def _pixel_trainer(steps_config: dict | None = None):
    from snippets.data import load_digits
    from snippets.training import TrainConfig, train
    from snippets.unet import DIGITS_CONFIG, UNet

    x, y = load_digits("train")
    torch.manual_seed(0)
    model = UNet(**dict(DIGITS_CONFIG, num_classes=10))

    def steps(k):
        config = TrainConfig(
            steps=k, batch_size=BATCH, mixed_precision="no", checkpoint_every=0
        )
        train(model, x, y, config=config, progress_bar=False)

    return steps


def _latent_trainers():
    from transformers import CLIPTextModel

    from snippets.captions import (
        attribute_thresholds,
        build_tokenizer,
        make_captions,
        text_encoder_config,
    )
    from snippets.data import load_digits
    from snippets.latent_diffusion import (
        build_unet,
        build_vae,
        encode_latents,
        train_autoencoder,
        train_denoiser,
    )

    x, y = load_digits("train")
    captions = make_captions(x, y, attribute_thresholds(x))
    torch.manual_seed(0)
    vae = build_vae()
    mean, std = encode_latents(vae.eval(), x)
    tokenizer = build_tokenizer()
    unet = build_unet()
    text_encoder = CLIPTextModel(
        text_encoder_config(tokenizer, hidden_size=unet.config.cross_attention_dim)
    )

    def vae_steps(k):
        train_autoencoder(vae, x, k, BATCH, progress=False)

    def denoiser_steps(k):
        train_denoiser(
            unet, text_encoder, tokenizer, mean, std, 1.0, captions, k, BATCH,
            p_uncond=P_UNCOND, progress=False,
        )  # fmt: skip

    return vae_steps, denoiser_steps


def calibrate(rounds: int = 3, steps: int = 8) -> dict:
    """Cost per step of the pixel model, the autoencoder and the denoiser, in base steps.

    Every round times the base model (`benchmarks.fast_recipe_search`'s timing), then each part,
    then the base model again; a part's ratio is its CPU time over the mean of the two base times
    around it, and the median over rounds is kept. One thread.
    """
    from benchmarks.fast_recipe_search import _time_steps

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ratios: dict[str, list[float]] = {}
        base_seconds = []
        for r in range(rounds):
            before = _time_steps("base16", 64, steps)
            vae_steps, denoiser_steps = _latent_trainers()
            parts = {
                "pixel": _cpu_seconds_per_step(_pixel_trainer(), steps),
                "autoencoder": _cpu_seconds_per_step(vae_steps, steps),
                "denoiser+text_encoder": _cpu_seconds_per_step(denoiser_steps, steps),
            }
            after = _time_steps("base16", 64, steps)
            base = (before + after) / 2
            base_seconds += [before, after]
            for key, seconds in parts.items():
                ratios.setdefault(key, []).append(seconds / base)
                print(f"round {r}: {key} {seconds / base:.3f} x base", flush=True)
    finally:
        torch.set_num_threads(threads)
    return {
        "relative_cost_per_step": {
            k: round(sorted(v)[len(v) // 2], 3) for k, v in ratios.items()
        },
        "all_ratios": ratios,
        "base_cpu_seconds_per_step_here": sorted(base_seconds),
        "batch_size": BATCH,
        "torch_threads": 1,
        "method": "CPU time (time.process_time) per optimizer step, one thread, "
        f"{steps} timed steps after 3 untimed, base16@64 timed before and after the parts, "
        f"median over {rounds} rounds (python -m benchmarks.latent_vs_pixel --calibrate)",
        "measured": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
    }


def budget(calibration: dict, minutes: float = BUDGET_MINUTES) -> dict:
    """Slow-machine minutes -> each model's steps (the latent model pays for its autoencoder)."""
    cost = calibration["relative_cost_per_step"]
    base = minutes * BASE_STEPS_PER_MINUTE
    left = base - VAE_STEPS * cost["autoencoder"]
    return {
        "minutes": minutes,
        "base_steps": round(base),
        "pixel_steps": round(base),  # the base model itself, with a class embedding
        "autoencoder_steps": VAE_STEPS,
        "autoencoder_share": VAE_STEPS * cost["autoencoder"] / base,
        "denoiser_steps": round(left / cost["denoiser+text_encoder"]),
        "denoiser_steps_if_autoencoder_free": round(
            base / cost["denoiser+text_encoder"]
        ),
    }


def run(fast: bool = False, out: Path | None = None) -> dict:
    """Train both models for the same budget, sample, score (see the module docstring).

    Args:
        fast: Smoke run: a few training steps, 20 digits, 3 sampler steps, scales 1 and 3.
        out: Results folder; the latent pipeline trained here is saved in
            `out/latent_vs_pixel.mini-sd` (not in fast mode).

    Returns:
        JSON-serialisable results.
    """
    from threadpoolctl import threadpool_limits

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return _run(fast, out)
    finally:
        torch.set_num_threads(threads)


def _pixel(steps: int, n: int, sampler_steps: int, scales, classifier) -> tuple:
    from snippets.checkpoint import Checkpoint, generate
    from snippets.data import load_digits
    from snippets.metrics import digit_metrics
    from snippets.schedules import NoiseSchedule
    from snippets.training import TrainConfig, train
    from snippets.unet import DIGITS_CONFIG, UNet

    x, y = load_digits("train")
    torch.manual_seed(0)
    model = UNet(**dict(DIGITS_CONFIG, num_classes=10))
    config = TrainConfig(
        steps=steps, batch_size=BATCH, p_uncond=P_UNCOND, mixed_precision="no",
        checkpoint_every=0,
    )  # fmt: skip
    cpu, wall = time.process_time(), time.perf_counter()
    result = train(model, x, y, config=config, progress_bar=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if result.interrupted:
        raise RuntimeError("pixel training was interrupted: no results written")
    model.load_state_dict(result.ema_state)
    ckpt = Checkpoint(
        model.eval(),
        NoiseSchedule.from_name(config.schedule, config.num_train_timesteps),
        config.prediction_type,
        10,
        {},
    )
    labels = torch.arange(n) % 10
    adherence, row = [], {}
    for s in scales:
        start = time.perf_counter()
        g = torch.Generator().manual_seed(0)
        images = generate(ckpt, n, "dpmsolver++", sampler_steps, labels, s, g)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            hit = classifier(images.clamp(-1, 1)).argmax(-1) == labels
        adherence.append(
            {"guidance_scale": s, "label_accuracy": hit.float().mean().item()}
        )
        if s == GUIDANCE:
            metrics = digit_metrics(images, classifier)
            row = {"sampling_seconds": seconds, "fid": metrics["fid"]}
        print(f"   pixel, s = {s:g}: {adherence[-1]}", flush=True)
    return {
        "model": "pixel: project UNet, 16x16x1",
        "numbers_per_image": 256,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "train_cpu_seconds": cpu,
        "train_wall_seconds": wall,
        "label_accuracy": next(
            a["label_accuracy"] for a in adherence if a["guidance_scale"] == GUIDANCE
        ),
        **row,
    }, adherence


def _latent(plan: dict, folder: Path, fast: bool, n, sampler_steps, scales, classifier):
    from snippets.captions import DIGIT_WORDS, INK_WORDS, ink
    from snippets.latent_diffusion import (
        generate,
        load_pipeline,
        read_record,
        train_mini_sd,
    )
    from snippets.metrics import digit_metrics

    cpu, wall = time.process_time(), time.perf_counter()
    train_mini_sd(
        folder, plan["autoencoder_steps"], plan["denoiser_steps"], batch_size=BATCH,
        p_uncond=P_UNCOND, tiny=fast, n_train=64 if fast else None, progress=False,
    )  # fmt: skip
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    pipe, record = load_pipeline(folder), read_record(folder)
    labels = torch.arange(n) % 10
    start = time.perf_counter()
    prompts = [f"a {DIGIT_WORDS[i]}" for i in labels.tolist()]
    g = torch.Generator().manual_seed(0)
    x = generate(pipe, prompts, sampler_steps, GUIDANCE, generator=g)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = (classifier(x).argmax(-1) == labels).float().mean().item()
    params = [*pipe.unet.parameters(), *pipe.text_encoder.parameters()]
    row = {
        "model": "latent: AutoencoderKL + CLIPTextModel + UNet2DConditionModel, 4x4x4",
        "numbers_per_image": 64,
        "parameters": sum(p.numel() for p in params),
        "autoencoder_parameters": sum(p.numel() for p in pipe.vae.parameters()),
        "steps": plan["denoiser_steps"],
        "autoencoder_steps": plan["autoencoder_steps"],
        "train_cpu_seconds": cpu,
        "train_wall_seconds": wall,
        "sampling_seconds": seconds,
        "label_accuracy": accuracy,
        "fid": digit_metrics(x, classifier)["fid"],
        "autoencoder_test_mse": record["test_reconstruction_mse"],
        "scaling_factor": record["scaling_factor"],
    }
    low, high = record["caption_thresholds"]["ink"]
    thick = (torch.arange(n) // 10) % 2 == 1
    prompts = [
        f"a {INK_WORDS[int(t)]} {DIGIT_WORDS[d]}"
        for d, t in zip(labels.tolist(), thick.tolist())
    ]
    adherence = []
    for s in scales:
        x = generate(
            pipe, prompts, sampler_steps, s, generator=torch.Generator().manual_seed(1)
        )
        with torch.no_grad():
            hit = classifier(x).argmax(-1) == labels
        measured = ink(x)
        in_third = torch.where(thick, measured > high, measured < low)
        adherence.append(
            {
                "guidance_scale": s,
                "label_accuracy": hit.float().mean().item(),
                "ink_in_prompted_third": in_third.float().mean().item(),
                "mean_ink_thin": measured[~thick].mean().item(),
                "mean_ink_thick": measured[thick].mean().item(),
            }
        )
        print(f"   latent, s = {s:g}: {adherence[-1]}", flush=True)
    return row, adherence, record


def _part(name: str, key: dict, out: Path | None, compute) -> dict:
    """One contender's results, read from ``out/latent_vs_pixel.<name>.json`` when it was
    computed for the same steps (a rerun, or `--part` run beforehand in another process)."""
    path = None if out is None else Path(out) / f"latent_vs_pixel.{name}.json"
    if path is not None and path.is_file():
        saved = json.loads(path.read_text())
        if saved["key"] == key:
            print(f"kept from {path}", flush=True)
            return saved
    result = {"key": key, "torch_threads": torch.get_num_threads(), **compute()}
    if path is not None:
        path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _plan(fast: bool) -> tuple[dict, dict]:
    calibration = json.loads(CALIBRATION.read_text())
    plan = budget(calibration)
    if fast:
        plan.update(pixel_steps=2, autoencoder_steps=2, denoiser_steps=2)
    return calibration, plan


def _compute(name: str, fast: bool, out: Path | None) -> dict:
    import tempfile

    from snippets.metrics import load_classifier

    calibration, plan = _plan(fast)
    n, sampler_steps = (20, 3) if fast else (N, STEPS)
    scales = [1.0, GUIDANCE] if fast else SCALES
    base_seconds = sorted(calibration["base_cpu_seconds_per_step_here"])
    here = base_seconds[len(base_seconds) // 2]  # CPU s per base step, one thread
    cost = calibration["relative_cost_per_step"]

    def pixel():
        pixel_scales = [1.0, GUIDANCE] if fast else PIXEL_SCALES
        row, adherence = _pixel(
            plan["pixel_steps"], n, sampler_steps, pixel_scales, load_classifier()
        )
        row["train_steps_per_second"] = 1 / (cost["pixel"] * here)
        return {"row": row, "adherence": adherence}

    def latent():
        with tempfile.TemporaryDirectory() as tmp:
            keep = out is not None and not fast
            folder = Path(out) / "latent_vs_pixel.mini-sd" if keep else Path(tmp) / "sd"
            row, adherence, record = _latent(
                plan, folder, fast, n, sampler_steps, scales, load_classifier()
            )
        row["train_steps_per_second"] = 1 / (cost["denoiser+text_encoder"] * here)
        thresholds = record["caption_thresholds"]["ink"]
        return {"row": row, "adherence": adherence, "ink_thresholds": thresholds}

    keys = {
        "pixel": {"steps": plan["pixel_steps"], "n": n},
        "latent": {
            "steps": plan["denoiser_steps"],
            "autoencoder_steps": plan["autoencoder_steps"],
            "n": n,
        },
    }
    compute = {"pixel": pixel, "latent": latent}[name]
    return _part(name, keys[name], out, compute)


def _run(fast: bool, out: Path | None) -> dict:
    from snippets.metrics import fid_floor, load_classifier

    calibration, plan = _plan(fast)
    print(f"budget: {plan}", flush=True)
    pixel = _compute("pixel", fast, out)
    latent = _compute("latent", fast, out)
    n = 20 if fast else N
    return {
        "budget": plan,
        "calibration": calibration["relative_cost_per_step"],
        "base_steps_per_minute": BASE_STEPS_PER_MINUTE,
        "batch_size": BATCH,
        "p_uncond": P_UNCOND,
        "n_samples": n,
        "sampler": "dpmsolver++",
        "steps": 3 if fast else STEPS,
        "guidance_scale": GUIDANCE,
        "torch_threads": max(pixel["torch_threads"], latent["torch_threads"]),
        "floor_fid": fid_floor(n, load_classifier())["fid"],
        "rows": [
            {"name": "pixel", **pixel["row"]},
            {"name": "latent", **latent["row"]},
        ],
        "autoencoder_test_mse": latent["row"]["autoencoder_test_mse"],
        "scaling_factor": latent["row"]["scaling_factor"],
        "adherence": {"pixel": pixel["adherence"], "latent": latent["adherence"]},
        "ink_thresholds": latent["ink_thresholds"],
        "shipped": _shipped(),
    }


def _shipped() -> dict:
    """What `checkpoints/mini-sd/` records of its own training (the site quotes it)."""
    from snippets.latent_diffusion import read_record

    record = read_record(SHIPPED)
    keys = ("vae_steps", "unet_steps", "batch_size", "p_uncond", "scaling_factor")
    return {
        **{k: record[k] for k in keys},
        "autoencoder_test_mse": record["test_reconstruction_mse"],
    }


def markdown(record: dict) -> str:
    """Two tables: pixel vs latent at the same budget, and prompt adherence over the scale."""
    r = record["results"]
    if "budget" not in r:
        return _markdown_shipped_models(record)
    b = r["budget"]
    lines = [
        "| model | numbers per image | parameters | steps in the budget "
        "| train steps/s (one thread) | sampling time (s) | read as the prompted digit "
        "| digit FID |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        steps = f"{row['steps']:,}"
        if "autoencoder_steps" in row:
            steps += f" (+ {row['autoencoder_steps']} autoencoder)"
        lines.append(
            f"| {row['model']} | {row['numbers_per_image']} | {row['parameters']:,} "
            f"| {steps} | {row['train_steps_per_second']:.2f} "
            f"| {row['sampling_seconds']:.1f} | {row['label_accuracy']:.1%} "
            f"| {row['fid']:.1f} |"
        )
    latent = r["rows"][1]
    cost = r["calibration"]
    lines += [
        "",
        f"Budget: {b['minutes']:g} slow-machine minute{'s' if b['minutes'] != 1 else ''} = {b['base_steps']} steps of the base "
        f"UNet at batch {r['batch_size']}, both models at batch {r['batch_size']}. Cost per "
        f"step in base steps (CPU time, one thread): pixel {cost['pixel']:.2f}, autoencoder "
        f"{cost['autoencoder']:.2f}, denoiser + text encoder "
        f"{cost['denoiser+text_encoder']:.2f}. The latent model pays for its autoencoder "
        f"({b['autoencoder_share']:.0%} of its budget); free, it would buy "
        f"{b['denoiser_steps_if_autoencoder_free']:,} denoiser steps. "
        f"Steps/s: CPU time of one thread (the calibration); sampling time: wall clock "
        f"with {r['torch_threads']} thread{'s' if r['torch_threads'] != 1 else ''} on a "
        f"shared machine, indicative. "
        f"{r['n_samples']} digits each, labels i % 10, {r['sampler']} with {r['steps']} "
        f"steps at guidance scale {r['guidance_scale']:g}; digit FID floor "
        f"{r['floor_fid']:.1f}. Autoencoder: test MSE "
        f"{latent['autoencoder_test_mse']:.4f} per pixel, scaling factor "
        f"{latent['scaling_factor']:.3f}.",
        "",
        "| guidance scale s | pixel: read as the prompted digit "
        "| latent: read as the prompted digit | latent: ink in the prompted third "
        "| mean ink, 'thin' prompts | mean ink, 'thick' prompts |",
        "|---|---|---|---|---|---|",
    ]
    pixel = {p["guidance_scale"]: p["label_accuracy"] for p in r["adherence"]["pixel"]}
    for row in r["adherence"]["latent"]:
        p = pixel.get(row["guidance_scale"])
        lines.append(
            f"| {row['guidance_scale']:g} | {'—' if p is None else f'{p:.1%}'} "
            f"| {row['label_accuracy']:.1%} "
            f"| {row['ink_in_prompted_third']:.1%} | {row['mean_ink_thin']:.3f} "
            f"| {row['mean_ink_thick']:.3f} |"
        )
    low, high = r["ink_thresholds"]
    lines += [
        "",
        f"Pixel model: class labels. Latent model: prompts 'a thin <digit>' and "
        f"'a thick <digit>', half each; thin is ink below {low:.3f}, thick above "
        f"{high:.3f} (the thirds of the train split).",
    ]
    return "\n".join(lines) + "\n"


def _markdown_shipped_models(record: dict) -> str:
    """The tables of a record measured before the same-budget comparison: the shipped models."""
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--calibrate", action="store_true", help="rewrite the calibration"
    )
    parser.add_argument(
        "--part",
        choices=("pixel", "latent"),
        help="compute one contender into --out (the full run then keeps it)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of a --part run (wall time only: the budget is in steps)",
    )
    args = parser.parse_args()
    if args.calibrate:
        CALIBRATION.write_text(json.dumps(calibrate(), indent=2) + "\n")
        print(CALIBRATION.read_text())
    if args.part:
        from threadpoolctl import threadpool_limits

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch.set_num_threads(args.threads)
        with threadpool_limits(limits=args.threads):
            _compute(args.part, False, args.out)
