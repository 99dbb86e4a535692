"""Three minutes to digits: the 8x8 fast recipe against the course's recipe, in slow-machine minutes.

**Budgets are counted in base-model-equivalent steps**, so the table reads the same on any machine.
The slowest 2-core machine seen trains the base digits UNet (`snippets.unet.DIGITS_CONFIG`,
16x16, batch 64) at 3.2 steps/s: one *slow-machine minute* is 192 of its steps. Each contender's
cost per step relative to the base model was measured side by side with it
(`benchmarks/fast_recipe_search.py --calibrate`, committed in
`results/fast_recipe_calibration.json`); a contender gets ``192 * minutes / cost`` steps.

* ours: `snippets.fast_digits`: a two-level UNet trained on the digits' native 8x8 images with the
  project's recipe (`TrainConfig` plus `FAST_DIGITS_RECIPE`), sampled at 8x8 and upsampled by
  the bilinear resize that makes the 16x16 data;
* course: diffusers' `UNet2DModel` in the course's configuration for 16x16 digits, the course's
  recipe (epsilon-prediction, plain MSE, AdamW 4e-4 at a constant rate, no EMA).

Both are trained unconditionally and class-conditionally (labels dropped with probability 0.1;
sampled at guidance scale 1, the plain conditional model, labels ``i % 10``), at 1, 3 and 10
slow-machine minutes, sampled with DPM-Solver++(2M) in 20 steps (20 model evaluations) and scored
by digit FID of 500 samples against the floor. The time to 1.2x the floor is the smallest budget
at which a contender reaches it. How far apart two rows must be to differ is measured alongside:
the FID of 20 random draws of 500 real digits (`floor_spread`).

The full run trains 2 x 2 x (1 + 3 + 10) = 56 slow-machine minutes of base-model compute (10,752
base steps): about 1 h 40 min on an idle 2-core machine that trains the base model at 1.8 steps/s,
so run it in the background; it resumes where it stopped (see `run`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from benchmarks.train_vs_diffusers import DiffusersUNet, course_unet2dmodel
from snippets.data import load_digits
from snippets.fast_digits import (
    FAST_DIGITS_CONFIG,
    FAST_DIGITS_RECIPE,
    sample_fast_digits,
)
from snippets.metrics import digit_metrics, fid_floor, load_classifier
from snippets.sampling import SAMPLERS
from snippets.schedules import NoiseSchedule
from snippets.training import TrainConfig, train
from snippets.unet import UNet

HERE = Path(__file__).resolve().parent
CALIBRATION = HERE / "results" / "fast_recipe_calibration.json"
BASE_STEPS_PER_MINUTE = (
    3.2 * 60
)  # base model, batch 64, on the slowest 2-core machine seen
BUDGETS = (1.0, 3.0, 10.0)
# draws of real digits that show how much FID varies at this sample size
FLOOR_DRAWS = 20
SAMPLER, SAMPLER_STEPS = "dpmsolver++", 20
COURSE_RECIPE = dict(
    prediction_type="epsilon",
    min_snr_gamma=None,
    learning_rate=4e-4,
    lr_schedule="constant",
    warmup_steps=0,
)


def contenders(fast: bool) -> dict:
    """Name -> (model factory taking num_classes, resolution, recipe, calibration key, EMA?)."""
    ours = dict(FAST_DIGITS_CONFIG, channels=(32, 32)) if fast else FAST_DIGITS_CONFIG

    def course(num_classes):
        net = course_unet2dmodel()
        if num_classes is not None:
            from diffusers import UNet2DModel

            net = UNet2DModel(**dict(net.config, num_class_embeds=num_classes + 1))
        wrapped = DiffusersUNet(net)
        wrapped.config = {"num_classes": num_classes}
        return wrapped

    return {
        "ours": (
            lambda k: UNet(**dict(ours, num_classes=k)),
            8,
            dict(FAST_DIGITS_RECIPE),
            "two8@64",
            True,
        ),
        "course": (course, 16, dict(COURSE_RECIPE), "course16@64", False),
    }


def budget_steps(minutes: float, cost: float) -> int:
    """Slow-machine minutes -> optimizer steps of a model costing `cost` base steps per step."""
    return max(1, round(minutes * BASE_STEPS_PER_MINUTE / cost))


def run(fast: bool = False, out: Path | None = None, stored_only: bool = False) -> dict:
    """Train every contender for every budget, conditional and not; sample, score.

    The smallest budgets run first. Each finished row is appended to
    ``out/fast_recipe.rows.jsonl`` and a rerun skips the rows found there (every row is
    deterministic given its budget in steps and seed 0), so an interrupted run resumes; delete the
    file to start afresh.

    Args:
        fast: Seconds-long smoke run (tiny models, 3-step budgets, 16 samples, 3 sampler steps).
        out: Results folder for the rows file (`None`: no resuming).
        stored_only: Train nothing: the record of the rows already in the rows file, the others
            listed under ``"pending"`` (``python -m benchmarks --stored-rows-only fast_recipe``).

    Returns:
        JSON-serialisable results: the floor, the calibration, one row per run, time to 1.2x.
    """
    calibration = json.loads(CALIBRATION.read_text())["relative_cost_per_step"]
    n = 16 if fast else 500
    classifier = load_classifier()
    floor = fid_floor(n, classifier)["fid"]
    spread = floor_spread(n, classifier, draws=3 if fast else FLOOR_DRAWS)
    rows_file = None if out is None else Path(out) / "fast_recipe.rows.jsonl"
    done = {}
    if rows_file is not None and rows_file.exists():
        for line in rows_file.read_text().splitlines():
            row = json.loads(line)
            done[(row["model"], row["conditional"], row["minutes"], row["steps"])] = row
    rows, pending = [], []
    for minutes in (0.02,) if fast else BUDGETS:
        for name, (factory, res, recipe, key, use_ema) in contenders(fast).items():
            images, labels = load_digits("train", image_size=res)
            for cond in (False, True):
                steps = 3 if fast else budget_steps(minutes, calibration[key])
                if (name, cond, minutes, steps) in done:
                    rows.append(done[(name, cond, minutes, steps)])
                    print(f"kept from {rows_file}: {json.dumps(rows[-1])}", flush=True)
                    continue
                if stored_only:
                    pending.append(
                        {"model": name, "conditional": cond, "minutes": minutes}
                    )
                    continue
                torch.manual_seed(0)
                model = factory(10 if cond else None)
                config = TrainConfig(
                    steps=steps,
                    mixed_precision="no",
                    checkpoint_every=0,
                    **recipe,
                    **({"batch_size": 8} if fast else {}),
                )
                start = time.perf_counter()
                result = train(
                    model,
                    images,
                    labels if cond else None,
                    config=config,
                    progress_bar=False,
                )
                train_seconds = time.perf_counter() - start
                if use_ema:
                    model.load_state_dict(result.ema_state)
                model.eval()
                x0 = _sample(model, res, cond, config, n, 3 if fast else SAMPLER_STEPS)
                metrics = digit_metrics(x0, classifier)
                rows.append(
                    {
                        "model": name,
                        "conditional": cond,
                        "minutes": minutes,
                        "steps": steps,
                        "cost_per_step": calibration[key],
                        "params": sum(p.numel() for p in model.parameters()),
                        "train_seconds": round(train_seconds, 1),
                        "fid": metrics["fid"],
                        "fid_over_floor": metrics["fid"] / floor,
                        "confidence": metrics["confidence"],
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
                if rows_file is not None:
                    with rows_file.open("a") as f:
                        f.write(json.dumps(rows[-1]) + "\n")
    return {
        "n_samples": n,
        "sampler": f"{SAMPLER} ({SAMPLER_STEPS} steps)",
        "floor": floor,
        "floor_spread": spread,
        "base_steps_per_minute": BASE_STEPS_PER_MINUTE,
        "calibration": calibration,
        "rows": rows,
        "minutes_to_1.2x_floor": time_to_quality(rows + pending, floor),
        "pending": pending,
    }


@torch.no_grad()
def _sample(model, res, cond, config, n, steps) -> torch.Tensor:
    """`n` digits of 16x16 with DPM-Solver++ (labels i % 10 when conditional)."""
    schedule = NoiseSchedule.from_name(config.schedule, config.num_train_timesteps)
    generator = torch.Generator().manual_seed(0)
    x_T = torch.randn((n, 1, res, res), generator=generator)
    y = torch.arange(n) % 10
    net = (lambda x, t: model(x, t, class_labels=y)) if cond else model
    args = (schedule, steps)
    kwargs = dict(prediction_type=config.prediction_type, generator=generator)
    if res == 8:
        return sample_fast_digits(SAMPLERS[SAMPLER], net, x_T, *args, **kwargs)
    return SAMPLERS[SAMPLER](net, x_T, *args, **kwargs)


def floor_spread(n: int, classifier, draws: int) -> dict:
    """How much the FID of `n` real train digits varies from one random draw to the next.

    The floor is one such draw (seed 0). A row's FID varies by about as much between sampling
    seeds, so rows closer than about one standard deviation are not told apart by the metric.

    Args:
        n: Digits per draw (the samples per row).
        classifier: The feature network of digit FID.
        draws: Number of draws (seeds ``0 .. draws - 1``), at least 2.

    Returns:
        ``draws``, ``mean``, ``std`` (sample standard deviation), ``min`` and ``max`` of the FID.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 2:
        raise ValueError(f"draws must be an integer >= 2, got {draws!r}")
    fids = torch.tensor(
        [fid_floor(n, classifier, seed=s)["fid"] for s in range(draws)],
        dtype=torch.float64,
    )
    return {
        "draws": draws,
        "mean": fids.mean().item(),
        "std": fids.std().item(),
        "min": fids.min().item(),
        "max": fids.max().item(),
    }


def time_to_quality(rows: list[dict], floor: float, factor: float = 1.2) -> dict:
    """Smallest budget (slow-machine minutes) at which each contender reaches `factor` x floor."""
    out = {}
    for row in rows:
        key = (
            f"{row['model']}/{'conditional' if row['conditional'] else 'unconditional'}"
        )
        out.setdefault(key, None)
        if "fid" not in row:  # a pending row: its contender is listed, not measured
            continue
        if row["fid"] <= factor * floor and (
            out[key] is None or row["minutes"] < out[key]
        ):
            out[key] = row["minutes"]
    return out


def markdown(record: dict) -> str:
    """The table of a run (its JSON record)."""
    r = record["results"]
    lines = [
        "| model | labels | slow-machine min | steps | cost / base step | FID | FID / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['model']} | {'class' if row['conditional'] else 'none'} | "
            f"{row['minutes']:g} | {row['steps']} | {row['cost_per_step']:.2f} | "
            f"{row['fid']:.1f} | {row['fid_over_floor']:.2f} |"
        )
    pending = r.get("pending", [])
    waiting = {
        f"{p['model']}/{'conditional' if p['conditional'] else 'unconditional'}"
        for p in pending
    }
    reach = ", ".join(
        f"{k}: {f'{v:g} min' if v is not None else 'not within the budgets run so far' if k in waiting else 'not within the budgets'}"
        for k, v in r["minutes_to_1.2x_floor"].items()
    )
    lines.append(
        f"\nFloor (real train digits vs test split): FID {r['floor']:.1f}. "
        f"{r['n_samples']} samples per row, {r['sampler']}. "
        f"A slow-machine minute is {r['base_steps_per_minute']:g} steps of the base model. "
        f"Time to 1.2x the floor: {reach}."
    )
    spread = r.get("floor_spread")
    if spread is not None:
        lines.append(
            f"\nHow noisy FID is at {r['n_samples']} samples: {spread['draws']} draws of "
            f"{r['n_samples']} real train digits score FID {spread['min']:.1f} to "
            f"{spread['max']:.1f} against the same test split (mean {spread['mean']:.1f}, "
            f"standard deviation {spread['std']:.1f}, that is "
            f"{spread['std'] / r['floor']:.2f}x the floor). Rows closer than that are not "
            "told apart by this metric; a 1.2x threshold is met or missed within that noise."
        )
    if pending:
        rest = ", ".join(
            f"{p['model']} {'class' if p['conditional'] else 'none'} {p['minutes']:g} min"
            for p in pending
        )
        lines.append(
            f"\n**Partial run:** {len(r['rows'])} of {len(r['rows']) + len(pending)} rows "
            f"measured; still to run: {rest}. `python -m benchmarks fast_recipe` resumes "
            "from `benchmarks/results/fast_recipe.rows.jsonl`."
        )
    return "\n".join(lines)
