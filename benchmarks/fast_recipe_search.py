"""The search for a digits recipe that trains in three slow-machine minutes: one run per call.

Budgets are *base-model-equivalent training images*: the slowest 2-core machine seen trains the base
digits UNet (`snippets.unet.DIGITS_CONFIG`, 16x16, batch 64) at 3.2 steps/s, so one of its minutes is
``3.2 * 60 * 64 = 12,288`` base images. A model that costs ``r`` times the base model per step (its
cost measured side by side with the base model by ``--calibrate``) gets ``1 / r`` times the base
model's steps. Every run appends one JSON line (recipe, budget, steps, FID) to a JSONL file, so the
search can be re-run and cited line by line.

A model of resolution 8 trains on the digits' native 8x8 images (``load_digits(image_size=8)``); its
samples are clipped to ``[-1, 1]`` and upsampled to 16x16 by the bilinear resize that
``load_digits`` applies to the data, so the digit FID sees them exactly as it sees real digits.

    python -m benchmarks.fast_recipe_search --calibrate
    python -m benchmarks.fast_recipe_search --spec '{"model": "base8", "minutes": 3}'
    python -m benchmarks.fast_recipe_search --summarise   # the JSONL -> fast_recipe_search.json

``--summarise`` writes ``results/fast_recipe_search.json``: every search run as one flat row (model,
labels, budget, steps, FID and FID over the floor with DPM-Solver++ in 20 steps), the floor and
the calibration, which is what the pages quote (through ``hooks/results.py``).

This module is a research tool (no ``run``): the benchmark of the chosen recipe is
``benchmarks/fast_recipe.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from snippets.data import load_digits
from snippets.metrics import digit_metrics, fid_floor, load_classifier
from snippets.sampling import SAMPLERS
from snippets.schedules import NoiseSchedule
from snippets.training import TrainConfig, train
from snippets.unet import DIGITS_CONFIG, UNet

RESULTS = Path(__file__).resolve().parent / "results"
SEARCH_FILE = RESULTS / "fast_recipe_search.jsonl"
SUMMARY_FILE = RESULTS / "fast_recipe_search.json"
CALIBRATION_FILE = RESULTS / "fast_recipe_calibration.json"
BASE_STEPS_PER_SECOND = 3.2  # the slowest 2-core machine seen, base model, batch 64
BASE_BATCH = 64

# name -> (UNet kwargs, training resolution)
MODELS = {
    "base16": (dict(DIGITS_CONFIG), 16),
    "small16": (
        dict(DIGITS_CONFIG, channels=(16, 32, 32), num_res_blocks=1, num_groups=8),
        16,
    ),
    "base8": (dict(DIGITS_CONFIG, sample_size=8), 8),
    "two8": (
        dict(DIGITS_CONFIG, sample_size=8, channels=(32, 64), attention_levels=(1,)),
        8,
    ),
    "two8noattn": (
        dict(
            DIGITS_CONFIG,
            sample_size=8,
            channels=(32, 64),
            attention_levels=(),
            mid_attention=False,
        ),
        8,
    ),
    "wide8": (dict(DIGITS_CONFIG, sample_size=8, channels=(64, 128, 128)), 8),
    "wide8two": (
        dict(DIGITS_CONFIG, sample_size=8, channels=(64, 128), attention_levels=(1,)),
        8,
    ),
    "small8": (
        dict(
            DIGITS_CONFIG,
            sample_size=8,
            channels=(32, 64),
            num_res_blocks=1,
            attention_levels=(1,),
        ),
        8,
    ),
}


def upsample_like_load_digits(x8: torch.Tensor) -> torch.Tensor:
    """8x8 images in [-1, 1] -> 16x16 by the bilinear resize of `load_digits`."""
    return F.interpolate(
        x8.clamp(-1, 1), size=(16, 16), mode="bilinear", align_corners=False
    )


def build(model: str, cond: bool) -> tuple[UNet, int]:
    """The named model (class-conditional when `cond`) and its training resolution."""
    if model == "course16":  # the course's UNet2DModel (benchmarks.fast_recipe)
        from benchmarks.fast_recipe import contenders

        return contenders(False)["course"][0](10 if cond else None), 16
    kwargs, res = MODELS[model]
    return UNet(**dict(kwargs, num_classes=10 if cond else None)), res


def _time_steps(model_name: str, batch: int, steps: int) -> float:
    """CPU seconds per optimizer step of `train` for this model and batch (after 3 warm-up steps)."""
    torch.manual_seed(0)
    model, res = build(model_name, cond=False)
    images = load_digits("train", image_size=res)[0]
    common = dict(
        batch_size=batch, mixed_precision="no", checkpoint_every=0, warmup_steps=1
    )
    train(model, images, config=TrainConfig(steps=3, **common), progress_bar=False)
    start = time.process_time()  # CPU time of this (single-threaded) process: the load
    train(model, images, config=TrainConfig(steps=steps, **common), progress_bar=False)
    return (time.process_time() - start) / steps  # of other processes does not count


def calibrate(pairs: list[tuple[str, int]], rounds: int = 2, steps: int = 8) -> dict:
    """Cost per step of each (model, batch) relative to base16 at batch 64, measured interleaved.

    Every round times the base model, then each candidate, then the base model again; a
    candidate's ratio in that round is its time over the mean of the two base times around it (so a
    change of the machine's load between rounds cancels), and the median over rounds is kept.
    """
    ratios: dict[str, list[float]] = {}
    base_seconds = []
    for r in range(rounds):
        before = _time_steps("base16", BASE_BATCH, steps)
        cands = {f"{m}@{b}": _time_steps(m, b, steps) for m, b in pairs}
        after = _time_steps("base16", BASE_BATCH, steps)
        base = (before + after) / 2
        base_seconds += [before, after]
        for key, cand in cands.items():
            ratios.setdefault(key, []).append(cand / base)
            print(
                f"round {r}: {key} {cand / base:.3f} x base "
                f"(base {before:.3f} / {after:.3f} s/step)",
                flush=True,
            )
    median = {k: sorted(v)[len(v) // 2] for k, v in ratios.items()}
    return {
        "relative_cost_per_step": median,
        "all_ratios": ratios,
        "base_seconds_per_step_here": sorted(base_seconds)[len(base_seconds) // 2],
        "torch_threads": torch.get_num_threads(),
    }


def budget_steps(minutes: float, model: str, batch: int, calibration: dict) -> int:
    """Slow-machine minutes -> this model's optimizer steps (the base model: 192 per minute)."""
    cost = calibration["relative_cost_per_step"][f"{model}@{batch}"]
    return max(1, round(minutes * 60 * BASE_STEPS_PER_SECOND / cost))


def run_spec(spec: dict, calibration: dict, classifier=None, floor=None) -> dict:
    """Train one recipe for its budget, sample 500 digits with DPM-Solver++ (20 steps), score."""
    model_name = spec.get("model", "base16")
    cond = bool(spec.get("cond", False))
    seed = int(spec.get("seed", 0))
    overrides = dict(spec.get("train", {}))
    batch = overrides.get("batch_size", BASE_BATCH)
    steps = budget_steps(spec["minutes"], model_name, batch, calibration)
    torch.manual_seed(seed)
    model, res = build(model_name, cond)
    images, labels = load_digits("train", image_size=res)
    config = TrainConfig(
        steps=steps,
        seed=seed,
        mixed_precision="no",
        checkpoint_every=0,
        **overrides,
    )
    start = time.perf_counter()
    result = train(
        model, images, labels if cond else None, config=config, progress_bar=False
    )
    train_seconds = time.perf_counter() - start
    model.load_state_dict(result.ema_state)
    model.eval()
    schedule = NoiseSchedule.from_name(config.schedule, config.num_train_timesteps)
    n = int(spec.get("n", 500))
    row = {
        "spec": spec,
        "steps": steps,
        "base_equivalent_images": round(
            spec["minutes"] * 60 * BASE_STEPS_PER_SECOND * BASE_BATCH
        ),
        "images_seen": steps * batch,
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds_here": round(train_seconds, 1),
        "final_loss": sum(result.losses[-50:]) / len(result.losses[-50:]),
    }
    classifier = classifier or load_classifier()
    floor = floor or fid_floor(n, classifier)["fid"]
    samplers = spec.get("samplers", [["dpmsolver++", 20]])
    for sampler, n_steps in samplers:
        generator = torch.Generator().manual_seed(0)
        x_T = torch.randn((n, 1, res, res), generator=generator)
        y = torch.arange(n) % 10
        net = (lambda x, t: model(x, t, class_labels=y)) if cond else model
        with torch.no_grad():
            x0 = SAMPLERS[sampler](
                net,
                x_T,
                schedule,
                n_steps,
                prediction_type=config.prediction_type,
                generator=generator,
            )
        if res == 8:
            x0 = upsample_like_load_digits(x0)
        m = digit_metrics(x0, classifier)
        row[f"fid_{sampler}_{n_steps}"] = m["fid"]
        row[f"ratio_{sampler}_{n_steps}"] = m["fid"] / floor
        row[f"confidence_{sampler}_{n_steps}"] = m["confidence"]
    row["floor"] = floor
    return row


def summarise(
    search_file: Path = SEARCH_FILE, calibration_file: Path = CALIBRATION_FILE
) -> dict:
    """The search runs as one JSON record whose ``results`` the pages quote.

    Args:
        search_file: The JSONL file the runs were appended to (one JSON object a line).
        calibration_file: The calibration the budgets were converted with.

    Returns:
        ``{"benchmark", "source", "date", "results": {"floor", "base_steps_per_second",
        "relative_cost_per_step", "rows"}}``; a row has ``model``, ``conditional``, ``minutes``,
        ``seed``, ``train`` (the `TrainConfig` settings changed from the defaults), ``steps``,
        ``images_seen``, ``params``, ``fid``, ``fid_over_floor`` and ``confidence`` (DPM-Solver++,
        20 steps, 500 samples), ``final_loss``.
    """
    import datetime as dt

    rows, floors = [], set()
    for line in Path(search_file).read_text().splitlines():
        if not line.strip():
            continue
        run = json.loads(line)
        spec = run["spec"]
        floors.add(run["floor"])
        rows.append(
            {
                "model": spec.get("model", "base16"),
                "conditional": bool(spec.get("cond", False)),
                "minutes": spec["minutes"],
                "seed": int(spec.get("seed", 0)),
                "train": dict(spec.get("train", {})),
                "steps": run["steps"],
                "images_seen": run["images_seen"],
                "params": run["params"],
                "fid": run["fid_dpmsolver++_20"],
                "fid_over_floor": run["ratio_dpmsolver++_20"],
                "confidence": run["confidence_dpmsolver++_20"],
                "final_loss": run["final_loss"],
            }
        )
    if len(floors) != 1:
        raise ValueError(
            f"{search_file}: the runs were scored against {len(floors)} floors"
        )
    calibration = json.loads(Path(calibration_file).read_text())
    return {
        "benchmark": "fast_recipe_search",
        "source": f"benchmarks/results/{Path(search_file).name}",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "results": {
            "floor": floors.pop(),
            "base_steps_per_second": BASE_STEPS_PER_SECOND,
            "relative_cost_per_step": calibration["relative_cost_per_step"],
            "rows": rows,
        },
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument(
        "--summarise",
        action="store_true",
        help=f"write {SUMMARY_FILE.name} from the search file (--out) and the calibration",
    )
    parser.add_argument("--pairs", default="base8@64,two8@64,small16@64")
    parser.add_argument("--spec", action="append", default=[])
    parser.add_argument("--out", type=Path, default=SEARCH_FILE)
    parser.add_argument(
        "--queue",
        type=Path,
        help="a file of JSON specs, one a line, run in order as they are appended "
        "(a line starting with # is skipped; the run stops when QUEUE.stop exists)",
    )
    args = parser.parse_args(argv)
    if args.summarise:
        summary = summarise(args.out)
        SUMMARY_FILE.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {SUMMARY_FILE} ({len(summary['results']['rows'])} runs)")
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.calibrate:
        pairs = [(p.split("@")[0], int(p.split("@")[1])) for p in args.pairs.split(",")]
        new = calibrate(pairs)
        old = (
            json.loads(CALIBRATION_FILE.read_text())
            if CALIBRATION_FILE.exists()
            else {"relative_cost_per_step": {}, "all_ratios": {}}
        )
        old["relative_cost_per_step"].update(new["relative_cost_per_step"])
        old["all_ratios"].update(new["all_ratios"])
        old["base_seconds_per_step_here"] = new["base_seconds_per_step_here"]
        old["torch_threads"] = new["torch_threads"]
        CALIBRATION_FILE.write_text(json.dumps(old, indent=2) + "\n")
        print(json.dumps(old["relative_cost_per_step"], indent=2))
        return
    calibration = json.loads(CALIBRATION_FILE.read_text())
    classifier = load_classifier()
    floor = fid_floor(500, classifier)["fid"]

    def one(text):
        row = run_spec(json.loads(text), calibration, classifier, floor)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    for text in args.spec:
        one(text)
    if args.queue is not None:
        done = 0
        stop = args.queue.with_suffix(".stop")
        while not stop.exists():
            lines = args.queue.read_text().splitlines()
            if done >= len(lines):
                time.sleep(10)
                continue
            text = lines[done].strip()
            done += 1
            if text and not text.startswith("#"):
                one(text)
                calibration = json.loads(CALIBRATION_FILE.read_text())


if __name__ == "__main__":
    main()
