"""Editing with the shipped digits model: inversion, SDEdit, inpainting and interpolation, measured.

Four experiments on `checkpoints/digits/` (a class-conditional, v-prediction model), every
random draw seeded, every budget a number of images and steps:

* **DDIM inversion** (`snippets.inversion.ddim_round_trip`): the first held-out test digits,
  each with its own label, inverted to $x_T$ and sampled back with the same number of DDIM steps
  ("leading" spacing, $\\hat x_0$ clipped); the RMS error of the reconstruction per step count,
  and the standard deviation of $x_T$ (1 for a standard Gaussian noise).
* **SDEdit** (`snippets.sdedit.sdedit`, DDPM sampler, unconditional: the null label): sketches
  drawn by `snippets.sketch.sketch_digits` (every digit, jittered), edited at several strengths;
  how often the digit classifier reads the sketched digit, its confidence, and the RMS distance
  to the sketch (faithfulness).
* **Inpainting** (`snippets.inpainting`, unconditional): held-out digits with their bottom half
  erased, completed by the naive loop and by RePaint with a few resampling counts $r$ (jump length
  $j$); the classifier's accuracy on the completed digits against the true label, and the RMS
  error on the erased half against the erased pixels. The classifier on the half-erased digits
  themselves (erased pixels set to the background) is the baseline to beat.
* **Interpolation** (`snippets.interpolation`): pairs of standard Gaussian noises, their `lerp`
  and `slerp` midpoints, each decoded by deterministic DDIM (unconditional); the noise's norm and
  the decoded images' contrast (pixel standard deviation) and ink (share of pixels above 0).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from benchmarks import repo_relative
from snippets.checkpoint import load_checkpoint
from snippets.data import load_digits
from snippets.inpainting import inpaint, repaint
from snippets.interpolation import lerp, slerp
from snippets.inversion import ddim_round_trip
from snippets.metrics import load_classifier
from snippets.sampling import ddim_sample
from snippets.sdedit import sdedit
from snippets.sketch import sketch_digits

HERE = Path(__file__).resolve().parent
CHECKPOINT = HERE.parent / "checkpoints" / "digits"

FULL = dict(
    inversion_n=24,
    inversion_steps=[2, 5, 10, 20, 50, 100],
    sdedit_n=40,
    sdedit_steps=25,
    strengths=[0.0, 0.25, 0.5, 0.75, 1.0],
    inpaint_n=40,
    inpaint_steps=25,
    repaint=[(5, 2), (5, 5)],  # (jump_length j, jump_n_sample r)
    interpolation_pairs=32,
    interpolation_steps=20,
)
FAST = dict(
    inversion_n=2,
    inversion_steps=[2, 5],
    sdedit_n=2,
    sdedit_steps=4,
    strengths=[0.0, 0.5, 1.0],
    inpaint_n=2,
    inpaint_steps=4,
    repaint=[(2, 2)],
    interpolation_pairs=2,
    interpolation_steps=3,
)


def unconditional(network, null_label: int):
    """The class-conditional network as `model(x, t)` with the null label ("no condition")."""

    def model(x, t):
        labels = torch.full((x.shape[0],), null_label, dtype=torch.int64)
        return network(x, t, class_labels=labels)

    return model


def conditional(network, labels: torch.Tensor):
    """The network as `model(x, t)` conditioned on one label per image."""

    def model(x, t):
        return network(x, t, class_labels=labels)

    return model


def rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).mean().sqrt())


def read(classifier, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """The classifier's accuracy against `labels` and its mean confidence in its own answer."""
    with torch.no_grad():
        p = classifier(images.clamp(-1, 1)).softmax(-1)
    return {
        "accuracy": float((p.argmax(-1) == labels).float().mean()),
        "confidence": float(p.max(-1).values.mean()),
    }


def run(fast: bool = False, checkpoint: str | Path = CHECKPOINT) -> dict:
    """Run the four experiments, single-threaded.

    Args:
        fast: Seconds-long smoke run: two images per experiment, a few steps.
        checkpoint: A class-conditional digits checkpoint folder (default: the shipped
            model); one trained at 8x8 and upsampled works at its own size.

    Returns:
        JSON-serialisable results: settings and one block of rows per experiment.
    """
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread on a shared 2-core machine
    try:
        with threadpool_limits(limits=1):
            return _run(FAST if fast else FULL, Path(checkpoint))
    finally:
        torch.set_num_threads(threads)


def _run(cfg: dict, folder: Path) -> dict:
    checkpoint = load_checkpoint(folder)
    network, schedule = checkpoint.model, checkpoint.schedule
    prediction_type, k = checkpoint.prediction_type, checkpoint.num_classes
    uncond = unconditional(network, k)
    classifier = load_classifier()
    images, labels = load_digits("test")
    # The network works at its own size (8x8 for a model trained at the digits' native
    # size): images go in through `to_model` (exact for the data), and everything measured
    # or shown comes out through `to_data`, at the data's 16x16, as `generate` returns it.
    size, half = checkpoint.image_size, checkpoint.image_size // 2
    to_model, to_data = checkpoint.to_model, checkpoint.to_data
    data_half = checkpoint.data_size // 2
    seconds = {}

    # 1. DDIM inversion: round trip per number of steps
    start = time.perf_counter()
    n = cfg["inversion_n"]
    x0, y = images[:n], labels[:n]
    inversion = []
    for steps in cfg["inversion_steps"]:
        x_T, x_rec = ddim_round_trip(
            conditional(network, y),
            to_model(x0),
            schedule,
            steps,
            prediction_type=prediction_type,
        )
        x_rec = to_data(x_rec)
        per_image = (x_rec - x0).pow(2).flatten(1).mean(1).sqrt()
        inversion.append(
            {
                "steps": steps,
                "network_passes": 2 * steps,
                "rms": rms(x_rec, x0),
                "max_rms": float(per_image.max()),
                "x_T_std": float(x_T.std()),
            }
        )
        print(
            f"   inversion, {steps} steps: RMS {inversion[-1]['rms']:.4f}", flush=True
        )
    seconds["inversion"] = round(time.perf_counter() - start, 1)

    # 2. SDEdit: sketches to digits, per strength
    start = time.perf_counter()
    n = cfg["sdedit_n"]
    sketch_labels = torch.arange(n) % 10
    sketches = sketch_digits(
        sketch_labels, jitter=1.0, generator=torch.Generator().manual_seed(0)
    )
    sdedit_rows = []
    for strength in cfg["strengths"]:
        edited = sdedit(
            uncond,
            to_model(sketches),
            schedule,
            strength,
            cfg["sdedit_steps"],
            sampler="ddpm",
            prediction_type=prediction_type,
            generator=torch.Generator().manual_seed(1),
        )
        edited = to_data(edited)
        sdedit_rows.append(
            {
                "strength": strength,
                **read(classifier, edited, sketch_labels),
                "rms_to_sketch": rms(edited.clamp(-1, 1), sketches),
            }
        )
        print(f"   SDEdit, strength {strength}: {sdedit_rows[-1]}", flush=True)
    seconds["sdedit"] = round(time.perf_counter() - start, 1)

    # 3. Inpainting: the bottom half erased, naive loop vs RePaint
    start = time.perf_counter()
    n, steps = cfg["inpaint_n"], cfg["inpaint_steps"]
    x0, y = images[:n], labels[:n]
    mask = torch.ones(n, 1, size, size)
    mask[:, :, half:] = 0  # 1: known (top half), 0: to fill (bottom half)
    erased = to_data(
        torch.where(mask.bool(), to_model(x0), torch.full_like(mask, -1.0))
    )
    inpainting = [
        {"method": "original", **read(classifier, x0, y), "erased_rms": 0.0},
        {
            "method": "erased",
            **read(classifier, erased, y),
            "erased_rms": rms(erased[:, :, data_half:], x0[:, :, data_half:]),
        },
    ]
    methods = [("naive", 1, 1), *(("repaint", j, r) for j, r in cfg["repaint"])]
    for method, j, r in methods:
        options = dict(prediction_type=prediction_type)
        options["generator"] = torch.Generator().manual_seed(2)
        known = to_model(x0)
        if method == "naive":
            done = inpaint(uncond, known, mask, schedule, steps, **options)
        else:
            options.update(jump_length=j, jump_n_sample=r)
            done = repaint(uncond, known, mask, schedule, steps, **options)
        assert torch.equal(done[:, :, :half], known[:, :, :half]), (
            "known pixels changed"
        )
        done = to_data(done)
        inpainting.append(
            {
                "method": method,
                "jump_length": j,
                "jump_n_sample": r,
                **read(classifier, done, y),
                "erased_rms": rms(
                    done[:, :, data_half:].clamp(-1, 1), x0[:, :, data_half:]
                ),
            }
        )
        print(f"   inpainting, {method} j={j} r={r}: {inpainting[-1]}", flush=True)
    seconds["inpainting"] = round(time.perf_counter() - start, 1)

    # 4. Interpolation: lerp vs slerp midpoints of pairs of noises, decoded by DDIM
    start = time.perf_counter()
    n, steps = cfg["interpolation_pairs"], cfg["interpolation_steps"]
    g = torch.Generator().manual_seed(3)
    a, b = (
        torch.randn(n, 1, size, size, generator=g),
        torch.randn(n, 1, size, size, generator=g),
    )
    noises = {
        "endpoints": torch.cat([a, b]),
        "slerp": slerp(a, b, 0.5),
        "lerp": lerp(a, b, 0.5),
    }
    interpolation = []
    for name, noise in noises.items():
        decoded = to_data(
            ddim_sample(uncond, noise, schedule, steps, prediction_type=prediction_type)
        ).clamp(-1, 1)
        with torch.no_grad():
            confidence = classifier(decoded).softmax(-1).max(-1).values.mean()
        interpolation.append(
            {
                "noise": name,
                "noise_norm": float(noise.flatten(1).norm(dim=1).mean()),
                "pixel_std": float(decoded.std(dim=(1, 2, 3)).mean()),
                "ink": float((decoded > 0).float().mean()),
                "confidence": float(confidence),
            }
        )
        print(f"   interpolation, {name}: {interpolation[-1]}", flush=True)
    seconds["interpolation"] = round(time.perf_counter() - start, 1)

    return {
        "checkpoint": repo_relative(folder),
        "checkpoint_step": checkpoint.config["step"],
        "settings": {key: value for key, value in cfg.items()},
        "image_size": size,
        "data_size": checkpoint.data_size,
        "sqrt_d": float(size),
        "torch_threads": torch.get_num_threads(),
        "seconds_per_experiment": seconds,
        "inversion": {"n": cfg["inversion_n"], "rows": inversion},
        "sdedit": {
            "n": cfg["sdedit_n"],
            "steps": cfg["sdedit_steps"],
            "rows": sdedit_rows,
        },
        "inpainting": {
            "n": cfg["inpaint_n"],
            "steps": cfg["inpaint_steps"],
            "rows": inpainting,
        },
        "interpolation": {
            "pairs": cfg["interpolation_pairs"],
            "steps": cfg["interpolation_steps"],
            "rows": interpolation,
        },
    }


def markdown(record: dict) -> str:
    """The results of a run (the runner's JSON record) as the Markdown tables the page includes."""
    r = record["results"]
    inv, sd, inp, itp = r["inversion"], r["sdedit"], r["inpainting"], r["interpolation"]
    lines = [
        "| DDIM steps (each way) | network passes | round-trip RMS error | worst image "
        "| std of x_T |",
        "|---|---|---|---|---|",
    ]
    for row in inv["rows"]:
        lines.append(
            f"| {row['steps']} | {row['network_passes']} | {row['rms']:.4f} "
            f"| {row['max_rms']:.4f} | {row['x_T_std']:.3f} |"
        )
    lines += [
        "",
        f"DDIM inversion and back: the first {inv['n']} held-out digits, each with its "
        "label; RMS in pixel units of [-1, 1].",
        "",
        "| SDEdit strength | read as the sketched digit | confidence | RMS to the sketch |",
        "|---|---|---|---|",
    ]
    for row in sd["rows"]:
        lines.append(
            f"| {row['strength']:g} | {row['accuracy']:.1%} | {row['confidence']:.3f} "
            f"| {row['rms_to_sketch']:.3f} |"
        )
    size, data = r.get("image_size", 16), r.get("data_size", 16)
    strength_0 = (
        "the sketch itself"
        if size == data
        else f"the sketch as the {size}x{size} network holds it (the 16x16 sketch "
        f"projected to {size}x{size}, then upsampled): the strokes blur"
    )
    lines += [
        "",
        f"{sd['n']} jittered sketches (every digit), DDPM with {sd['steps']} steps at "
        f"strength 1, unconditional; strength 0 is {strength_0}.",
        "",
        "| inpainting (bottom half erased) | network passes | read as the true digit "
        "| confidence | RMS on the erased half |",
        "|---|---|---|---|---|",
    ]
    for row in inp["rows"]:
        if row["method"] in ("original", "erased"):
            name = {
                "original": "*the digits, nothing erased*",
                "erased": "*the half-erased digits, not completed*",
            }[row["method"]]
            passes = ""
        elif row["method"] == "naive":
            name, passes = "naive (replace the known pixels)", inp["steps"]
        else:
            name = f"RePaint, j = {row['jump_length']}, r = {row['jump_n_sample']}"
            passes = _repaint_passes(
                inp["steps"], row["jump_length"], row["jump_n_sample"]
            )
        lines.append(
            f"| {name} | {passes} | {row['accuracy']:.1%} | {row['confidence']:.3f} "
            f"| {row['erased_rms']:.3f} |"
        )
    lines += [
        "",
        f"The first {inp['n']} held-out digits, DDPM with {inp['steps']} steps, "
        "unconditional.",
        "",
        "| noise | mean norm | decoded: pixel std (contrast) | decoded: ink share "
        "| classifier confidence |",
        "|---|---|---|---|---|",
    ]
    for row in itp["rows"]:
        name = {"endpoints": "the two noises", "slerp": "slerp midpoint"}.get(
            row["noise"], "lerp midpoint"
        )
        lines.append(
            f"| {name} | {row['noise_norm']:.2f} | {row['pixel_std']:.3f} "
            f"| {row['ink']:.1%} | {row['confidence']:.3f} |"
        )
    side = r.get("image_size", 16)
    upsampled = (
        f", then upsampled to {r['data_size']}x{r['data_size']}"
        if r.get("data_size", side) != side
        else ""
    )
    lines += [
        "",
        f"{itp['pairs']} pairs of {side}x{side} noises (sqrt(d) = {r['sqrt_d']:g}), "
        f"decoded by DDIM with {itp['steps']} steps, unconditional{upsampled}; "
        f"checkpoint step {r['checkpoint_step']}.",
    ]
    return "\n".join(lines) + "\n"


def _repaint_passes(steps: int, jump_length: int, jump_n_sample: int) -> int:
    """Network passes of RePaint: one per step down of its schedule."""
    from snippets.inpainting import repaint_timesteps

    t = repaint_timesteps(1000, steps, jump_length, jump_n_sample)
    return 1 + int((t[1:] < t[:-1]).sum())


def figure(record: dict, path: Path) -> list[Path]:
    """The round-trip error of DDIM inversion against the number of steps, light and dark SVGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from snippets.plotting import save_figure

    rows = record["results"]["inversion"]["rows"]

    def draw():
        fig, ax = plt.subplots(figsize=(5.6, 3.4))
        steps = [row["steps"] for row in rows]
        ax.plot(steps, [row["rms"] for row in rows], marker="o", label="mean")
        ax.plot(
            steps, [row["max_rms"] for row in rows], marker="s", ls="--", label="worst"
        )
        ax.set_xscale("log")
        ax.set_xticks(steps, [str(s) for s in steps])
        ax.set_xlabel("DDIM steps, each way")
        ax.set_ylabel("round-trip RMS error")
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False)
        fig.tight_layout()
        return fig

    return save_figure(draw, path)
