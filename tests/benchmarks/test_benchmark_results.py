"""The committed benchmark results: each JSON has the runner's schema, each table the page includes
is exactly what the renderer makes of that JSON, and each plot the docs show is drawn from it."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
from pathlib import Path

import pytest

from benchmarks.__main__ import RESULTS, available, render, renderer

REPO = Path(__file__).resolve().parents[2]
DOCS_FIGURES = REPO / "docs" / "figures" / "benchmarks"
NAMES = available()
RECORDS = sorted(p for p in RESULTS.glob("*.json") if p.stem in NAMES)
MACHINE_KEYS = {
    "cpu": str,
    "cores": int,
    "torch_threads": int,
    "python": str,
    "torch": str,
    "platform": str,
}


def check_record(record: dict, name: str, fast: bool) -> None:
    """Raise AssertionError naming the first way `record` departs from the runner's schema."""
    assert isinstance(record, dict), "a record is a JSON object"
    assert record.get("benchmark") == name, (
        f"benchmark is {record.get('benchmark')!r}, file is {name}.json"
    )
    assert record.get("fast") is fast, (
        f"fast is {record.get('fast')!r}, expected {fast}"
    )
    commit = record.get("commit")
    assert commit == "unknown" or re.fullmatch(r"[0-9a-f]{40}", str(commit)), (
        f"commit {commit!r} is not a git sha"
    )
    assert isinstance(record.get("dirty"), bool), "dirty must be a boolean"
    date = dt.datetime.fromisoformat(record["date"])
    assert date.tzinfo is not None, f"date {record['date']!r} has no time zone"
    machine = record.get("machine")
    assert isinstance(machine, dict), "machine must be an object"
    for key, kind in MACHINE_KEYS.items():
        assert isinstance(machine.get(key), kind), (
            f"machine.{key} must be {kind.__name__}, got {machine.get(key)!r}"
        )
    assert isinstance(record.get("seconds"), (int, float)) and record["seconds"] >= 0, (
        "seconds must be >= 0"
    )
    assert isinstance(record.get("results"), dict) and record["results"], (
        "results must be a non-empty object"
    )


def test_there_are_committed_results():
    assert {"scheduler_overhead", "unet_vs_diffusers", "train_vs_diffusers"} <= {
        p.stem for p in RECORDS
    }


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.stem)
def test_committed_json_matches_the_schema(path):
    check_record(json.loads(path.read_text()), path.stem, fast=False)


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.stem)
def test_committed_table_is_rendered_from_the_committed_json(path):
    if renderer(path.stem) is None:
        pytest.skip(f"{path.stem} has no Markdown renderer")
    table = path.with_suffix(".md")
    assert table.is_file(), f"{table} is missing: run `python -m benchmarks --render`"
    assert table.read_text() == render(json.loads(path.read_text())), (
        f"{table} differs from what its JSON renders to: run `python -m benchmarks --render`"
    )


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.md")), ids=lambda p: p.stem)
def test_every_table_is_included_by_a_page(path):
    include = f'--8<-- "benchmarks/results/{path.name}"'
    pages = [p for p in (REPO / "docs").rglob("*.md") if include in p.read_text()]
    assert pages, f"no page under docs/ includes {path.name} ({include})"


FIGURES = [
    p
    for p in RECORDS
    if getattr(importlib.import_module(f"benchmarks.{p.stem}"), "figure", None)
]


@pytest.mark.parametrize("path", FIGURES, ids=lambda p: p.stem)
def test_docs_figure_is_drawn_from_the_measured_json(path, tmp_path):
    """Each plot the docs show (light and dark SVG) is what the module draws from its JSON."""
    figure = importlib.import_module(f"benchmarks.{path.stem}").figure
    drawn = figure(json.loads(path.read_text()), tmp_path / f"{path.stem}.svg")
    assert len(drawn) == 2
    for fresh in drawn:
        committed = DOCS_FIGURES / fresh.name
        assert committed.is_file(), (
            f"{committed} is missing: run `python -m benchmarks --render`"
        )
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{committed} differs from what {path.name} draws: run `python -m benchmarks --render`"
        )


def test_schema_check_rejects_broken_records():
    good = json.loads((RESULTS / "scheduler_overhead.json").read_text())
    check_record(good, "scheduler_overhead", fast=False)
    broken = [
        {**good, "benchmark": "other"},
        {**good, "commit": "abc"},
        {**good, "date": "yesterday"},
        {**good, "machine": {**good["machine"], "cores": "2"}},
        {**good, "results": {}},
        {k: v for k, v in good.items() if k != "dirty"},
    ]
    for record in broken:
        with pytest.raises((AssertionError, ValueError, KeyError)):
            check_record(record, "scheduler_overhead", fast=False)
