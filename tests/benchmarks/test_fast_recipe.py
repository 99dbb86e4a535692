"""The fast-recipe benchmark: budgets in base-model-equivalent steps, a smoke run, its table."""

from __future__ import annotations

import json

import pytest

from benchmarks import fast_recipe as fr


def test_budgets_are_base_model_steps_divided_by_the_relative_cost():
    assert fr.budget_steps(3.0, 1.0) == 576  # 3 min x 192 base steps
    assert fr.budget_steps(1.0, 0.25) == 768  # a model 4x cheaper: 4x the steps
    assert fr.budget_steps(0.001, 1.0) == 1


@pytest.mark.parametrize("key", ["two8@64", "course16@64"])
def test_committed_calibration_covers_every_contender(key):
    cost = json.loads(fr.CALIBRATION.read_text())["relative_cost_per_step"][key]
    assert 0 < cost < 2


def test_fast_run_trains_both_contenders_both_ways_and_renders():
    result = fr.run(fast=True)
    rows = result["rows"]
    assert {(r["model"], r["conditional"]) for r in rows} == {
        ("ours", False),
        ("ours", True),
        ("course", False),
        ("course", True),
    }
    assert all(r["fid"] > 0 and 0 < r["confidence"] <= 1 for r in rows)
    assert set(result["minutes_to_1.2x_floor"]) == {
        "ours/unconditional",
        "ours/conditional",
        "course/unconditional",
        "course/conditional",
    }
    table = fr.markdown({"results": json.loads(json.dumps(result))})
    assert table.count("\n| ours |") == 2 and "Time to 1.2x the floor" in table


def test_time_to_quality_is_the_smallest_budget_within_the_factor():
    rows = [
        dict(model="ours", conditional=False, minutes=m, fid=f)
        for m, f in ((1.0, 20.0), (3.0, 15.0), (10.0, 13.0))
    ]
    assert fr.time_to_quality(rows, 12.8) == {"ours/unconditional": 3.0}
    assert fr.time_to_quality(rows, 10.0) == {"ours/unconditional": None}


def test_a_rerun_keeps_the_rows_already_in_the_results_folder(tmp_path):
    first = fr.run(fast=True, out=tmp_path)["rows"]
    rows_file = tmp_path / "fast_recipe.rows.jsonl"
    assert [json.loads(line) for line in rows_file.read_text().splitlines()] == first
    # mark one stored row: a rerun must return it as stored, not train it again
    stored = [json.loads(line) for line in rows_file.read_text().splitlines()]
    stored[1]["fid"] = 1234.5
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in stored))
    again = fr.run(fast=True, out=tmp_path)["rows"]
    assert again[1]["fid"] == 1234.5
    assert [r["steps"] for r in again] == [r["steps"] for r in first]
    assert len(rows_file.read_text().splitlines()) == len(first)


def test_stored_only_records_the_stored_rows_and_lists_the_rest_as_pending(tmp_path):
    fr.run(fast=True, out=tmp_path)
    rows_file = tmp_path / "fast_recipe.rows.jsonl"
    stored = rows_file.read_text().splitlines()
    rows_file.write_text("\n".join(stored[:3]) + "\n")  # the last row "not run yet"
    result = fr.run(fast=True, out=tmp_path, stored_only=True)
    assert [json.dumps(r) for r in result["rows"]] == stored[:3]
    assert result["pending"] == [
        {"model": "course", "conditional": True, "minutes": 0.02}
    ]
    assert len(rows_file.read_text().splitlines()) == 3  # nothing was trained
    table = fr.markdown({"results": result})
    assert "**Partial run:** 3 of 4 rows" in table
    assert "course/conditional: not within the budgets run so far" in table


def test_floor_spread_brackets_the_floor_and_shows_in_the_table():
    from snippets.metrics import fid_floor, load_classifier

    classifier = load_classifier()
    spread = fr.floor_spread(32, classifier, draws=3)
    floor = fid_floor(32, classifier)["fid"]  # the floor is the draw of seed 0
    assert spread["draws"] == 3 and spread["min"] <= floor <= spread["max"]
    assert spread["min"] < spread["mean"] < spread["max"] and spread["std"] > 0
    record = {
        "results": {
            "rows": [],
            "n_samples": 32,
            "sampler": "x",
            "floor": floor,
            "floor_spread": spread,
            "base_steps_per_minute": 192,
            "minutes_to_1.2x_floor": {},
        }
    }
    assert (
        f"3 draws of 32 real train digits score FID {spread['min']:.1f}"
        in fr.markdown(record)
    )


@pytest.mark.parametrize("draws", [1, 2.0, True])
def test_floor_spread_needs_at_least_two_integer_draws(draws):
    with pytest.raises(ValueError, match="draws"):
        fr.floor_spread(32, None, draws=draws)
