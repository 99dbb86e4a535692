"""Command line: train a diffusion model, sample from it, evaluate it, export it.

    python -m snippets train --data digits --steps 1578 --out runs/digits  # 3 slow-machine minutes
    python -m snippets sample --checkpoint runs/digits --sampler ddim --steps 50 --n 64 --out grid.png
    python -m snippets evaluate --checkpoint runs/digits --sampler dpmsolver++ --steps 20 --n 500
    python -m snippets export --checkpoint runs/digits --out checkpoints/digits
    python -m snippets train-sd --out runs/mini-sd        # autoencoder, text encoder, UNet
    python -m snippets sample-sd --prompt "a thick seven" --out seven.png
    accelerate launch --multi_gpu --num_processes 2 -m snippets train ...  # data-parallel (GPUs or CPU/gloo)

Run `python -m snippets <command> --help` for every option.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

RUN_INFO_KEYS = {
    "data",
    "image_size",
    "channels",
    "image_column",
    "label_column",
    "class_conditional",
}  # what `train` records about its data under "data" in config.json
OPTIONAL_RUN_INFO_KEYS = ("transform", "init_from")  # recorded when given
UPSAMPLED_KEY = (
    "upsample_to"  # digits trained at 8x8: samples are upsampled to this size
)
PRESETS = ("fast-digits", "digits", "course")  # --preset
SAMPLER_NAMES = (
    "ddpm",
    "ddim",
    "euler",
    "heun",
    "dpmsolver++",
)  # the keys of snippets.sampling.SAMPLERS


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (and exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _bounded_int(low: int, high: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(
                f"expected an integer {bounds}, got {text!r}"
            )
        return value

    return parse


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


_positive = _bounded_int(1)
_non_negative = _bounded_int(0)
_seed = _bounded_int(0, 2**63 - 1)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    """The `python -m snippets` argument parser (subcommands train, sample, evaluate, export)."""
    from snippets.finetuning import TRANSFORM_NAMES
    from snippets.training import TrainConfig

    d = TrainConfig(steps=1)  # defaults, to show them in --help
    parser = _Parser(
        prog="python -m snippets",
        description="Train diffusion models on a CPU in minutes, and sample from them.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="{train,sample,evaluate,export,train-sd,sample-sd}",
    )
    fmt = argparse.ArgumentDefaultsHelpFormatter

    # -- train ---------------------------------------------------------------------------------
    t = sub.add_parser(
        "train",
        formatter_class=fmt,
        help="train a UNet (add --resume to continue a run)",
        description="Train the project's UNet with the DDPM loss. Writes checkpoints, loss.png "
        "and samples.png to --out. Ctrl-C (SIGINT) or SIGTERM saves a checkpoint before exiting; "
        "--resume continues exactly where it stopped. Under `accelerate launch --num_processes N` "
        "it trains data-parallel; mixed precision is used only on a GPU.",
    )
    g = t.add_argument_group("data")
    g.add_argument(
        "--data",
        default="digits",
        help="'digits' (scikit-learn's bundled digits: trained at their native 8x8 and sampled at "
        "16x16 by default), a folder of images, a folder written by datasets' save_to_disk, or "
        "hf:NAME for a Hugging Face Hub dataset (downloads)",
    )
    g.add_argument(
        "--image-size",
        type=_bounded_int(1, 1024),
        default=None,
        help="image side in pixels (default 32; for digits 8, the native size, whose samples "
        "are upsampled to 16x16 as the data are, or 16 with --preset digits/course)",
    )
    g.add_argument(
        "--channels",
        type=int,
        default=None,
        choices=(1, 3),
        help="image channels (default 1 for digits, 3 otherwise)",
    )
    g.add_argument(
        "--image-column", default="image", help="image column of a datasets dataset"
    )
    g.add_argument(
        "--label-column",
        default=None,
        help="label column of a datasets dataset (enables class conditioning)",
    )
    g.add_argument(
        "--class-conditional",
        action="store_true",
        help="train with class labels (the digits' 0-9, or --label-column) and label dropout for "
        "classifier-free guidance",
    )
    g.add_argument(
        "--transform",
        choices=TRANSFORM_NAMES,
        default=None,
        help="map every training image to a new distribution first "
        "(snippets.finetuning.transform_images), e.g. thick strokes to fine-tune on",
    )
    g.add_argument(
        "--random-flip",
        action="store_true",
        help="random horizontal flips (not for digits)",
    )
    g = t.add_argument_group("model")
    g.add_argument(
        "--preset",
        choices=PRESETS,
        default=None,
        help="UNet preset: FAST_DIGITS_CONFIG (two levels, the digits at 8x8; the default for "
        "digits), DIGITS_CONFIG (three levels, 16x16; the default otherwise) or COURSE_CONFIG "
        "(32x32 RGB); image size and channels follow the data",
    )
    g.add_argument(
        "--unet-channels",
        type=_int_list,
        default=None,
        help="override the channels per level, e.g. 32,64,64",
    )
    g.add_argument(
        "--num-res-blocks",
        type=_positive,
        default=None,
        help="override residual blocks per level",
    )
    g.add_argument(
        "--attention-levels",
        type=_int_list,
        default=None,
        help="override levels with attention, e.g. 2 (empty: none)",
    )
    g.add_argument(
        "--num-groups",
        type=_positive,
        default=None,
        help="override the groups of group normalisation",
    )
    g = t.add_argument_group("budget")
    g.add_argument(
        "--minutes",
        type=_finite_float,
        default=None,
        help="wall-clock budget in minutes",
    )
    g.add_argument(
        "--steps",
        type=_positive,
        default=None,
        help="optimizer-step budget (with --minutes: whichever ends first)",
    )
    g = t.add_argument_group("optimisation")
    g.add_argument(
        "--batch-size",
        type=_positive,
        default=d.batch_size,
        help="images per step and per process",
    )
    g.add_argument(
        "--lr",
        type=_finite_float,
        default=d.learning_rate,
        help="peak AdamW learning rate",
    )
    g.add_argument(
        "--lr-schedule",
        choices=("cosine", "constant"),
        default=d.lr_schedule,
        help="cosine: decay to 0 over the budget; constant: as the course",
    )
    g.add_argument(
        "--warmup-steps",
        type=_non_negative,
        default=d.warmup_steps,
        help="linear warmup steps before the cosine decay",
    )
    g.add_argument(
        "--weight-decay",
        type=_finite_float,
        default=d.weight_decay,
        help="AdamW weight decay",
    )
    g.add_argument(
        "--grad-clip",
        type=_finite_float,
        default=d.grad_clip,
        help="max gradient norm (0: off)",
    )
    g.add_argument(
        "--ema-decay",
        type=_finite_float,
        default=d.ema_decay,
        help="decay of the EMA of the weights",
    )
    g.add_argument(
        "--mixed-precision",
        choices=("auto", "no", "fp16", "bf16"),
        default=d.mixed_precision,
        help="auto: bf16/fp16 on a GPU, off on a CPU",
    )
    g = t.add_argument_group("diffusion")
    g.add_argument(
        "--schedule",
        choices=("linear", "scaled_linear", "cosine", "sigmoid"),
        default=d.schedule,
        help="noise schedule",
    )
    g.add_argument(
        "--num-train-timesteps",
        type=_bounded_int(2, 100_000),
        default=d.num_train_timesteps,
        help="T, the diffusion steps",
    )
    g.add_argument(
        "--prediction-type",
        choices=("epsilon", "v_prediction", "sample"),
        default=d.prediction_type,
        help="what the network predicts",
    )
    g.add_argument(
        "--min-snr-gamma",
        type=_finite_float,
        default=d.min_snr_gamma,
        help="min-SNR loss weighting gamma (0: off)",
    )
    g.add_argument(
        "--p-uncond",
        type=_finite_float,
        default=d.p_uncond,
        help="label-dropout probability (class-conditional only)",
    )
    g = t.add_argument_group("run")
    g.add_argument(
        "--out",
        type=Path,
        required=True,
        help="run folder: checkpoint, loss.png, samples.png",
    )
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue the checkpoint in --out with its saved settings (--minutes/--steps, if given, "
        "replace the budget)",
    )
    g.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="fine-tune: start from this checkpoint's EMA weights (fresh optimizer); the model, "
        "schedule and prediction-type options must describe the checkpoint's",
    )
    g.add_argument(
        "--seed",
        type=_seed,
        default=d.seed,
        help="seed of the initial weights and every random draw",
    )
    g.add_argument(
        "--checkpoint-every",
        type=_non_negative,
        default=d.checkpoint_every,
        help="save every N steps (0: only at the end)",
    )
    g.add_argument(
        "--no-samples",
        action="store_true",
        help="skip the 64-sample grid (DDIM, 50 steps) at the end",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")

    # -- sample --------------------------------------------------------------------------------
    def sampling_options(p):
        p.add_argument(
            "--checkpoint",
            type=Path,
            required=True,
            help="checkpoint folder (e.g. checkpoints/digits)",
        )
        p.add_argument(
            "--sampler",
            choices=SAMPLER_NAMES,
            default="ddim",
            help="sampler from snippets.sampling.SAMPLERS",
        )
        p.add_argument(
            "--steps",
            type=_positive,
            default=50,
            help="sampler steps (model evaluations, twice for heun)",
        )
        p.add_argument(
            "--seed",
            type=_seed,
            default=0,
            help="seed of the starting noise and the sampler's noise",
        )
        p.add_argument(
            "--guidance-scale",
            type=_finite_float,
            default=1.0,
            help="classifier-free guidance scale s (class-conditional checkpoints; 1: no guidance)",
        )
        p.add_argument(
            "--raw-weights",
            action="store_true",
            help="use the raw weights instead of the EMA",
        )

    s = sub.add_parser(
        "sample",
        formatter_class=fmt,
        help="sample a PNG grid from a checkpoint",
        description="Sample images from a checkpoint and save them as one PNG grid.",
    )
    sampling_options(s)
    s.add_argument("--n", type=_positive, default=64, help="number of images")
    s.add_argument(
        "--labels",
        type=_int_list,
        default=None,
        help="class labels, cycled over the n images (class-conditional; default 0,1,...,K-1)",
    )
    s.add_argument("--out", type=Path, default=Path("grid.png"), help="output PNG")
    s.add_argument(
        "--scale",
        type=_positive,
        default=4,
        help="integer upscaling of the PNG (nearest)",
    )

    e = sub.add_parser(
        "evaluate",
        formatter_class=fmt,
        help="digit FID of a digits checkpoint, with its floor",
        description="Sample --n digits and print digit FID, confidence and class entropy as JSON, "
        "next to the floor (as many real train digits vs the test split).",
    )
    sampling_options(e)
    e.add_argument("--n", type=_bounded_int(2), default=500, help="number of samples")

    x = sub.add_parser(
        "export",
        formatter_class=fmt,
        help="copy what sampling needs (config + EMA) to a folder",
        description="Copy config.json and ema.safetensors of a checkpoint into --out: a small "
        "folder for sampling (no optimizer state: it cannot be resumed).",
    )
    x.add_argument("--checkpoint", type=Path, required=True, help="checkpoint folder")
    x.add_argument("--out", type=Path, required=True, help="target folder")

    # -- Stable Diffusion in miniature (snippets.latent_diffusion) -------------------------------
    ts = sub.add_parser(
        "train-sd",
        formatter_class=fmt,
        help="train a miniature Stable Diffusion (autoencoder, text encoder, UNet) on the digits",
        description="Train diffusers' AutoencoderKL, then transformers' CLIPTextModel and "
        "diffusers' UNet2DConditionModel jointly on captioned digits, and save them as a "
        "StableDiffusionPipeline folder (save_pretrained; every --checkpoint-every steps too). "
        "A stopped run starts again: the folder keeps what sampling needs (EMA weights), not "
        "the optimizer state a resumed run would need (see --resume).",
    )
    ts.add_argument("--out", type=Path, required=True, help="pipeline folder")
    ts.add_argument(
        "--vae-steps", type=_positive, default=500, help="autoencoder steps"
    )
    ts.add_argument(
        "--unet-steps",
        type=_positive,
        default=1200,
        help="denoiser + text encoder steps",
    )
    ts.add_argument("--batch-size", type=_positive, default=32, help="images per step")
    ts.add_argument("--kl-weight", type=_finite_float, default=1e-4, help="KL weight")
    ts.add_argument(
        "--p-uncond", type=_finite_float, default=0.1, help="caption dropout"
    )
    ts.add_argument("--seed", type=_seed, default=0, help="seed of every random draw")
    ts.add_argument(
        "--checkpoint-every",
        type=_non_negative,
        default=200,
        help="save the pipeline every N denoiser steps (0: only at the end)",
    )
    ts.add_argument("--tiny", action="store_true", help="tiny networks (smoke runs)")
    ts.add_argument(
        "--resume",
        action="store_true",
        help="refused with the reason: train-sd cannot continue a run as train --resume does",
    )
    ts.add_argument("--no-progress", action="store_true", help="no progress bars")
    ss = sub.add_parser(
        "sample-sd",
        formatter_class=fmt,
        help="sample digits from prompts with a miniature Stable Diffusion pipeline",
        description="Load a pipeline folder offline and sample --n digits per prompt into one "
        "PNG grid (one row per prompt).",
    )
    ss.add_argument(
        "--pipeline",
        type=Path,
        default=Path("checkpoints/mini-sd"),
        help="pipeline folder",
    )
    ss.add_argument(
        "--prompt", action="append", required=True, help="a prompt (repeatable)"
    )
    ss.add_argument("--n", type=_positive, default=8, help="images per prompt")
    ss.add_argument("--steps", type=_positive, default=20, help="scheduler steps")
    ss.add_argument(
        "--guidance-scale", type=_finite_float, default=3.0, help="guidance scale s"
    )
    ss.add_argument("--seed", type=_seed, default=0, help="seed of the latents")
    ss.add_argument("--out", type=Path, default=Path("prompts.png"), help="output PNG")
    ss.add_argument("--scale", type=_positive, default=4, help="PNG upscaling")
    return parser


def _train_sd(args) -> int:
    from snippets.latent_diffusion import train_mini_sd

    if args.resume:
        raise ValueError(
            f"--resume: train-sd cannot continue a run; {args.out} is a pipeline folder with "
            "the EMA weights that sampling needs, not the raw weights, AdamW moments and "
            "random state that `train --resume` reads from a pixel checkpoint. Start the run "
            "again (the default run is a few minutes of CPU), or sample from the folder as it is"
        )

    out = train_mini_sd(
        args.out,
        args.vae_steps,
        args.unet_steps,
        batch_size=args.batch_size,
        kl_weight=args.kl_weight,
        p_uncond=args.p_uncond,
        seed=args.seed,
        tiny=args.tiny,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
    )
    print(f"wrote {out}")
    return 0


def _sample_sd(args) -> int:
    import torch

    from snippets.data import save_grid
    from snippets.latent_diffusion import generate, load_pipeline

    pipe = load_pipeline(args.pipeline)
    prompts = [p for p in args.prompt for _ in range(args.n)]
    generator = torch.Generator().manual_seed(args.seed)
    images = generate(
        pipe, prompts, args.steps, args.guidance_scale, generator=generator
    )
    print(f"wrote {save_grid(images, args.out, nrow=args.n, scale=args.scale)}")
    return 0


# --8<-- [start:digits-default]
def _model_choice(args) -> tuple[int | None, str, int | None]:
    """The training resolution, UNet preset and sample size of a new `train` run.

    For `--data digits` without `--preset` or `--image-size` the fast recipe trains: the two-level
    `FAST_DIGITS_CONFIG` on the digits' native 8x8 images, its samples upsampled to 16x16 by
    `snippets.fast_digits.upsample_digits`, the resize that makes the 16x16 data.
    `--preset digits` (or `--image-size 16`) gives the three-level 16x16 model; fine-tuning
    (`--init-from`) trains at the resolution of the checkpoint it starts from. Any digits model
    trained at 8x8 has its samples upsampled: the digits are 16x16 everywhere else.

    Returns:
        `(image_size, preset, upsample_to)`; `image_size` `None` lets the data decide and
        `upsample_to` is `None` when samples are drawn at the training resolution.
    """
    size, preset = args.image_size, args.preset
    if args.data != "digits":
        if preset == "fast-digits":
            raise ValueError(
                "--preset fast-digits trains the digits at their native 8x8: it needs "
                f"--data digits, got --data {args.data!r} "
                "(use --preset digits or course)"
            )
        return size, preset or "digits", None
    if preset == "fast-digits" and size not in (None, 8):
        raise ValueError(
            f"--image-size {size} conflicts with --preset fast-digits, which trains at "
            "the digits' native 8x8 "
            "(for a 16x16 model: --preset digits --image-size 16)"
        )
    if args.init_from is not None and size is None and preset is None:
        from snippets.checkpoint import read_config

        size = read_config(args.init_from)["model"]["sample_size"]
    if size is None:
        size = 16 if preset in ("digits", "course") else 8
    if preset is None:
        preset = "fast-digits" if size == 8 else "digits"
    return size, preset, 16 if size == 8 else None


# --8<-- [end:digits-default]


def _train(args) -> int:
    from contextlib import nullcontext

    from snippets import checkpoint as ckpt

    if args.resume and args.init_from is not None:
        raise ValueError(
            "--init-from starts a new run from a checkpoint, --resume continues one: "
            "give one of them"
        )
    if args.resume and not args.out.is_dir():
        raise FileNotFoundError(f"--resume: run folder {args.out} does not exist")
    if not args.resume:  # refuse conflicting options before anything is written
        args.image_size, args.preset, args.upsample_to = _model_choice(args)
    # one writer per run folder, from the start (under `accelerate launch`: the main process)
    main_process = os.environ.get("RANK", "0") == "0"
    # the folders the lock creates: removed again if the run stops before saving anything
    created = [p for p in (args.out, *args.out.parents) if not p.exists()]
    try:
        with ckpt.RunLock(args.out) if main_process else nullcontext():
            return _train_locked(args)
    except BaseException:
        if main_process:
            for folder in created:  # innermost first; stops at the first non-empty one
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise


def _train_locked(args) -> int:
    import torch

    from snippets import checkpoint as ckpt
    from snippets import unet
    from snippets.data import load_data, save_grid
    from snippets.finetuning import init_from_checkpoint, transform_at_data_size
    from snippets.training import TrainConfig, train

    if args.resume:
        saved = ckpt.read_config(args.out)  # validated: types, bounds, no unknown key
        missing = [k for k in ("training", "data") if k not in saved]
        keys = set(saved.get("data", {}))
        optional = {*OPTIONAL_RUN_INFO_KEYS, UPSAMPLED_KEY}
        if missing or not RUN_INFO_KEYS <= keys <= RUN_INFO_KEYS | optional:
            raise ValueError(
                f"{args.out}/config.json cannot be resumed: it lacks {missing or 'data keys'}"
            )
        training = dict(saved["training"])
        if args.minutes is not None or args.steps is not None:
            training.update(minutes=args.minutes, steps=args.steps)
        config = TrainConfig(**training)
        run_info = saved["data"]
        model_config = saved["model"]
    else:
        config = TrainConfig(
            steps=args.steps,
            minutes=args.minutes,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            lr_schedule=args.lr_schedule,
            warmup_steps=args.warmup_steps,
            weight_decay=args.weight_decay,
            grad_clip=args.grad_clip,
            ema_decay=args.ema_decay,
            schedule=args.schedule,
            num_train_timesteps=args.num_train_timesteps,
            prediction_type=args.prediction_type,
            min_snr_gamma=args.min_snr_gamma or None,
            p_uncond=args.p_uncond,
            random_flip=args.random_flip,
            seed=args.seed,
            mixed_precision=args.mixed_precision,
            checkpoint_every=args.checkpoint_every,
        )
        run_info = {
            "data": args.data,
            "image_size": args.image_size,
            "channels": args.channels,
            "image_column": args.image_column,
            "label_column": args.label_column,
            "class_conditional": args.class_conditional,
        }
        for key in OPTIONAL_RUN_INFO_KEYS:
            if getattr(args, key) is not None:
                run_info[key] = str(getattr(args, key))
        if args.upsample_to is not None:  # sample at 8x8, then upsample_digits
            run_info[UPSAMPLED_KEY] = args.upsample_to
        model_config = None

    images, labels = load_data(
        run_info["data"],
        run_info["image_size"],
        run_info["channels"],
        run_info["image_column"],
        run_info["label_column"],
    )
    if run_info.get("transform") is not None:
        # at the data's size: an 8x8 model learns the 16x16 digits transformed, brought back
        images = transform_at_data_size(
            images, run_info["transform"], run_info.get(UPSAMPLED_KEY)
        )
    if not run_info["class_conditional"]:
        labels = None
    elif labels is None:
        raise ValueError(
            f"--class-conditional needs labels: {run_info['data']} has none (set --label-column)"
        )
    if model_config is None:
        from snippets.fast_digits import FAST_DIGITS_CONFIG

        preset = {
            "fast-digits": FAST_DIGITS_CONFIG,
            "digits": unet.DIGITS_CONFIG,
            "course": unet.COURSE_CONFIG,
        }[args.preset]
        model_config = dict(
            preset,
            sample_size=images.shape[-1],
            in_channels=images.shape[1],
            out_channels=images.shape[1],
        )
        for key, value in (
            ("channels", args.unet_channels),
            ("num_res_blocks", args.num_res_blocks),
            ("attention_levels", args.attention_levels),
            ("num_groups", args.num_groups),
        ):
            if value is not None:
                model_config[key] = value
        if labels is not None:
            model_config["num_classes"] = int(labels.max()) + 1
    torch.manual_seed(config.seed)
    model = unet.UNet(**model_config)
    if not args.resume and args.init_from is not None:
        # fine-tuning: theta_0 = the checkpoint's weights; a fresh optimizer and EMA
        init_from_checkpoint(
            model,
            args.init_from,
            config.prediction_type,
            config.schedule,
            config.num_train_timesteps,
        )
    result = train(
        model,
        images,
        labels,
        config,
        out_dir=args.out,
        resume=args.resume,
        progress_bar=not args.no_progress,
        run_info=run_info,
    )

    from accelerate import PartialState

    # under `accelerate launch`: every process leaves the process group together; exiting with it
    # still open can abort a gloo worker at interpreter shutdown ("terminate called ...")
    state = PartialState()
    state.wait_for_everyone()
    state.destroy_process_group()
    if not state.is_main_process:
        return 0
    print(
        f"step {result.step}: loss {sum(result.losses[-50:]) / max(1, len(result.losses[-50:])):.4f}, "
        f"{result.steps_per_second:.2f} steps/s, checkpoint in {args.out}",
        flush=True,
    )
    if result.interrupted:
        print(
            f"interrupted: checkpoint saved; continue with: python -m snippets train --out {args.out} --resume",
            file=sys.stderr,
        )
        return 130
    if not args.no_samples:
        loaded = ckpt.load_checkpoint(args.out)
        images = ckpt.generate(
            loaded, 64, "ddim", 50, generator=torch.Generator().manual_seed(0)
        )
        save_grid(images, args.out / "samples.png", nrow=8, scale=4)
    return 0


def _sample(args, n: int):
    import torch

    from snippets import checkpoint as ckpt

    loaded = ckpt.load_checkpoint(args.checkpoint, use_ema=not args.raw_weights)
    labels = None
    if getattr(args, "labels", None) is not None:
        k = loaded.num_classes
        if not args.labels:
            raise ValueError("--labels is empty")
        if k is not None and not all(0 <= label < k for label in args.labels):
            raise ValueError(f"--labels must be in [0, {k}), got {list(args.labels)}")
        labels = torch.tensor(args.labels)[torch.arange(n) % len(args.labels)]
    generator = torch.Generator().manual_seed(args.seed)
    images = ckpt.generate(
        loaded, n, args.sampler, args.steps, labels, args.guidance_scale, generator
    )
    bad = int((~torch.isfinite(images)).sum())
    if bad:
        raise FloatingPointError(
            f"the sampler produced {bad} NaN/Inf values ({args.sampler}, {args.steps} steps, "
            f"--guidance-scale {args.guidance_scale}); nothing written"
        )
    return images


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every user error is one line on stderr and exit code 2."""
    from snippets.checkpoint import RunFolderBusy

    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "sample":
            from snippets.data import save_grid

            images = _sample(args, args.n)
            print(f"wrote {save_grid(images, args.out, scale=args.scale)}")
            return 0
        if args.command == "evaluate":
            from snippets.metrics import digit_metrics, fid_floor

            images = _sample(args, args.n)
            report = {
                "samples": digit_metrics(images),
                "floor": fid_floor(args.n),
                "sampler": args.sampler,
                "steps": args.steps,
                "checkpoint": str(args.checkpoint),
            }
            print(json.dumps(report, indent=2))
            return 0
        if args.command == "train-sd":
            return _train_sd(args)
        if args.command == "sample-sd":
            return _sample_sd(args)
        if args.command == "export":
            from snippets.checkpoint import copy_for_sampling

            print(f"exported to {copy_for_sampling(args.checkpoint, args.out)}")
            return 0
    except KeyboardInterrupt:  # a second Ctrl-C: stop now, the last checkpoint stands
        print("interrupted: stopped without saving", file=sys.stderr)
        return 130
    except (
        OSError,  # no such file, a file in the way, no permission, disk full
        ValueError,
        TypeError,
        FloatingPointError,  # NaN/Inf in training or sampling
        RunFolderBusy,  # another process writes the run folder
    ) as err:
        message = " ".join(str(err).split())  # one line
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
