"""The fine-tuning benchmark's table, figure and recipe, on a hand-made record (no training)."""

from __future__ import annotations

from benchmarks.finetune_digits import ARMS, CHECKPOINT, _config, figure, markdown
from snippets.checkpoint import read_config


def _record() -> dict:
    rows = [
        {
            "arm": arm,
            "steps": steps,
            "learning_rate": lr,
            "cpu_seconds": 0.5 * steps,
            "final_loss": None if steps == 0 else 0.1,
            "process_seconds": 1.0,
            "fid_new": fid_new,
            "fid_old": fid_old,
            "confidence": 0.9,
        }
        for arm, lr, points in (
            (ARMS[0], 5e-4, ((0, 80.0, 10.0), (20, 14.0, 90.0))),
            (ARMS[1], 2e-3, ((0, 800.0, 820.0), (20, 400.0, 410.0))),
        )
        for steps, fid_new, fid_old in points
    ]
    return {
        "results": {
            "checkpoint_step": 3662,
            "transform": "thick",
            "budgets": [0, 20],
            "batch_size": 32,
            "warmup_steps": 10,
            "n_samples": 200,
            "sampler": "dpmsolver++",
            "sampler_steps": 10,
            "seed": 0,
            "torch_threads": 1,
            "floors": {
                "new": 8.0,
                "new_confidence": 0.9,
                "old": 12.0,
                "new_vs_old": 88,
            },
            "rows": rows,
        }
    }


def test_table_has_one_line_per_arm_and_budget_in_order():
    lines = markdown(_record()).splitlines()
    body = [line for line in lines[2:] if line.startswith("| ")]
    assert len(body) == 4
    assert body[0].startswith("| shipped model | 0 |") and "| 80.0 | 10.0 |" in body[0]
    assert (
        body[3].startswith("| random weights | 20 |") and "| 400.0 | 410.0 |" in body[3]
    )
    assert "thick train vs thick test 8.0" in markdown(_record())


def test_figure_writes_a_light_and_a_dark_svg(tmp_path):
    written = figure(_record(), tmp_path / "f.svg")
    assert [p.name for p in written] == ["f.svg", "f-dark.svg"]
    assert all(p.read_text().lstrip().startswith("<?xml") for p in written)


def test_both_arms_keep_the_shipped_recipe_but_budget_and_rate():
    shipped = read_config(CHECKPOINT)
    config = _config(shipped, 60, 5e-4, 32)
    training = shipped["training"]
    for key in (
        "schedule",
        "prediction_type",
        "min_snr_gamma",
        "p_uncond",
        "ema_decay",
    ):
        assert getattr(config, key) == training[key], key
    assert (config.steps, config.learning_rate, config.batch_size) == (60, 5e-4, 32)
    assert config.lr_schedule == "constant" and config.minutes is None


def test_an_8x8_shipped_model_fine_tunes_at_8x8_and_is_scored_at_16x16(
    fast_digits_checkpoint, monkeypatch
):
    from benchmarks import finetune_digits

    monkeypatch.setattr(finetune_digits, "CHECKPOINT", fast_digits_checkpoint)
    r = finetune_digits.run(fast=True)
    assert (r["image_size"], r["upsample_to"]) == (8, 16)
    # the thick digits as an 8x8 model can hold them: a floor of their own, in the table
    assert r["floors"]["new_at_model_size"] > 0
    assert "held at the network's 8x8" in markdown({"results": r})
    assert [(row["arm"], row["steps"]) for row in r["rows"]] == [
        (arm, steps) for arm in ARMS for steps in (0, 2)
    ]
    # the fine-tuned arm starts from the checkpoint's weights, the other from random ones:
    # at 0 steps they are different models
    start = {row["arm"]: row for row in r["rows"] if row["steps"] == 0}
    assert all(row["fid_new"] > 0 for row in r["rows"])
    assert start[ARMS[0]]["fid_old"] != start[ARMS[1]]["fid_old"]
