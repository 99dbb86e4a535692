"""The summary of the recipe search (`fast_recipe_search.json`) is what its JSONL file says."""

from __future__ import annotations

import json

import pytest

from benchmarks.fast_recipe_search import SEARCH_FILE, SUMMARY_FILE, summarise


def test_committed_summary_is_the_summary_of_the_committed_runs():
    committed = json.loads(SUMMARY_FILE.read_text())
    fresh = summarise()
    assert committed["results"] == fresh["results"]
    assert len(fresh["results"]["rows"]) == len(SEARCH_FILE.read_text().splitlines())


def test_summary_flattens_each_run(tmp_path):
    run = {
        "spec": {"model": "two8", "minutes": 3, "cond": True, "train": {"lr": 1e-3}},
        "steps": 1578,
        "images_seen": 100992,
        "params": 1003137,
        "final_loss": 0.07,
        "fid_dpmsolver++_20": 11.8,
        "ratio_dpmsolver++_20": 0.92,
        "confidence_dpmsolver++_20": 0.95,
        "floor": 12.8,
    }
    search = tmp_path / "search.jsonl"
    search.write_text(
        json.dumps(run) + "\n" + json.dumps(dict(run, spec={"minutes": 1}))
    )
    rows = summarise(search)["results"]["rows"]
    assert rows[0] == {
        "model": "two8",
        "conditional": True,
        "minutes": 3,
        "seed": 0,
        "train": {"lr": 1e-3},
        "steps": 1578,
        "images_seen": 100992,
        "params": 1003137,
        "fid": 11.8,
        "fid_over_floor": 0.92,
        "confidence": 0.95,
        "final_loss": 0.07,
    }
    assert rows[1]["model"] == "base16" and rows[1]["conditional"] is False
    search.write_text(json.dumps(run) + "\n" + json.dumps(dict(run, floor=13.0)))
    with pytest.raises(ValueError, match="2 floors"):
        summarise(search)
