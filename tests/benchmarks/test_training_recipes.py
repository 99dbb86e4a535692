"""The training-recipes grid: budgets in steps from a calibration, runs, the table and its gaps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import training_recipes as tr

REPO = Path(__file__).resolve().parents[2]
CALIBRATION = {
    "steps_per_second": {"small": 20.0, "base": 7.0, "wide": 2.0},
    "torch_threads": 2,
    "cores": 2,
}


def test_budgets_become_steps_from_the_calibration_longest_first():
    jobs = tr.grid(CALIBRATION)
    assert len(jobs) == len(tr.SIZES) * len(tr.BUDGETS) * len(tr.LEARNING_RATES) * len(
        tr.SCHEDULES
    )
    small_30 = [j for j in jobs if (j["size"], j["minutes"]) == ("small", 30.0)]
    assert {j["steps"] for j in small_30} == {36000}  # 30 min x 60 s x 20 steps/s
    assert [j["steps"] for j in jobs] == sorted(
        (j["steps"] for j in jobs), reverse=True
    )


def test_table_marks_best_gpu_and_missing_cells():
    row = dict(
        size="small",
        minutes=1.0,
        learning_rate=2e-3,
        schedule="cosine",
        steps=1200,
        params=280177,
        train_seconds=1.0,
        final_loss=0.1,
        confidence=0.9,
        class_entropy=2.3,
    )
    rows = [
        dict(row, fid=20.0, device="cpu"),
        dict(row, schedule="linear", fid=15.0, device="NVIDIA H200"),
    ]
    planned = tr.grid(CALIBRATION, sizes=["small"], budgets=(1.0, 3.0))
    result = tr.summarise(rows, {"fid": 12.0}, CALIBRATION, 500, planned)
    table = tr.markdown({"results": result})
    assert (
        "| small | 0.28M | 1 | 1200 |" in table
        and "**15.0†**" in table
        and "| 20.0 |" in table
    )
    assert "| small | 0.28M | 3 | 3600 | – | – | – | – |" in table
    assert len(result["not_measured"]) == len(planned) - 2
    assert result["best_per_budget"]["1"]["schedule"] == "linear"
    assert table.endswith("– not measured yet.")


def test_complete_grid_has_no_dashes_and_no_missing_note():
    row = dict(
        size="small",
        minutes=1.0,
        steps=1200,
        params=280177,
        device="cpu",
        train_seconds=1.0,
        final_loss=0.1,
        confidence=0.9,
        class_entropy=2.3,
    )
    rows = [
        dict(row, learning_rate=lr, schedule=s, fid=20.0 + i)
        for i, (lr, s) in enumerate(
            (lr, s) for lr in tr.LEARNING_RATES for s in tr.SCHEDULES
        )
    ]
    planned = tr.grid(CALIBRATION, sizes=["small"], budgets=(1.0,))
    result = tr.summarise(rows, {"fid": 12.0}, CALIBRATION, 500, planned)
    table = tr.markdown({"results": result})
    assert result["not_measured"] == []
    assert "–" not in table and "not measured" not in table
    assert table.endswith("the budget.")


def test_fast_run_trains_samples_and_scores(tmp_path):
    result = tr.run(fast=True, out=tmp_path)
    rate = result["calibration"]["steps_per_second"]["small"]
    assert [r["steps"] for r in result["rows"]] == [
        max(1, round(m * 60 * rate)) for m in (0.02, 0.05)
    ]
    assert all(r["fid"] > 0 and 0 < r["confidence"] <= 1 for r in result["rows"])
    assert (tmp_path / "training_recipes.png").is_file()
    json.dumps(result)  # JSON-serialisable for the runner


def test_cli_refuses_to_train_without_a_calibration():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.training_recipes"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "--calibration" in proc.stderr


@pytest.mark.parametrize("size", list(tr.SIZES))
def test_committed_calibration_covers_every_size(size):
    calibration = json.loads(
        (
            REPO / "benchmarks" / "results" / "training_recipes_calibration.json"
        ).read_text()
    )
    assert calibration["steps_per_second"][size] > 0
