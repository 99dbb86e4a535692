"""`python -m benchmarks` end to end in fast mode, into a temporary folder, for the sampler-quality,
site-build, guidance and editing benchmarks; plus the runner's refusal of unknown names and its `--render` mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_benchmark_results import check_record

from benchmarks.__main__ import RESULTS, main, render

REPO = Path(__file__).resolve().parents[2]
NAMES = ("sampler_quality", "site_build", "guidance_digits", "editing_digits")


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    """One fast run of both benchmarks by the runner, in a new process, into a temporary folder."""
    out = tmp_path_factory.mktemp("bench")
    watched = [RESULTS / "fast" / f"sampler_quality.{ext}" for ext in ("json", "png")]
    before = {p: p.stat().st_mtime_ns for p in watched if p.exists()}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--fast", "--out", str(out), *NAMES],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    after = {p: p.stat().st_mtime_ns for p in watched if p.exists()}
    return out, before, after


@pytest.mark.parametrize("name", NAMES)
def test_fast_run_writes_a_valid_record_and_its_table(fast_run, name):
    out = fast_run[0]
    record = json.loads((out / f"{name}.json").read_text())
    check_record(record, name, fast=True)
    assert (out / f"{name}.md").read_text() == render(record)


def test_fast_run_writes_only_into_its_out_folder(fast_run):
    out, before, after = fast_run
    assert (out / "sampler_quality.png").stat().st_size > 0
    assert before == after, "a run with --out touched benchmarks/results/fast/"


def test_model_evaluations_are_counted_not_computed(fast_run):
    rows = json.loads((fast_run[0] / "sampler_quality.json").read_text())["results"][
        "rows"
    ]
    assert rows, "no rows"
    for row in rows:
        expected = 2 * row["steps"] - 1 if row["sampler"] == "heun" else row["steps"]
        assert row["nfe"] == expected, row
        assert row["fid"] > 0 and 0 < row["confidence"] <= 1, row


def test_sampler_quality_uses_the_default_guidance_and_balanced_labels(fast_run):
    results = json.loads((fast_run[0] / "sampler_quality.json").read_text())["results"]
    import inspect

    from snippets.checkpoint import generate

    assert (
        results["guidance_scale"]
        == inspect.signature(generate).parameters["guidance_scale"].default
    )
    assert results["n_samples"] == 16 and results["rows"][0]["sampler"] == "ddpm"


def test_guidance_digits_counts_the_doubled_batch_and_shares_sampler_qualitys_draws(
    fast_run,
):
    guided = json.loads((fast_run[0] / "guidance_digits.json").read_text())["results"]
    quality = json.loads((fast_run[0] / "sampler_quality.json").read_text())["results"]
    steps = guided["steps"]
    for row in guided["rows"]:
        unguided = row["guidance_scale"] == 1.0
        assert row["network_passes"] == (steps if unguided else 2 * steps), row
        assert 0 <= row["label_accuracy"] <= 1 and row["fid"] > 0, row
    # s = 1 is the plain conditional model: the very images of sampler_quality's same setting
    (plain,) = [r for r in guided["rows"] if r["guidance_scale"] == 1.0]
    (same,) = [
        r
        for r in quality["rows"]
        if r["sampler"] == guided["sampler"] and r["steps"] == steps
    ]
    assert plain["fid"] == pytest.approx(same["fid"], rel=1e-4)
    assert plain["confidence"] == pytest.approx(same["confidence"], rel=1e-4)


def test_editing_digits_fast_run_measures_each_edit(fast_run):
    r = json.loads((fast_run[0] / "editing_digits.json").read_text())["results"]
    errors = [row["rms"] for row in r["inversion"]["rows"]]
    assert errors == sorted(errors, reverse=True) and errors[-1] > 0  # 2 then 5 steps
    strengths = r["sdedit"]["rows"]
    # strength 0 returns the sketch as the shipped 8x8 network holds it: the 16x16 strokes
    # projected to 8x8 and upsampled, close to the sketch but not equal to it
    assert strengths[0]["strength"] == 0 and 0 < strengths[0]["rms_to_sketch"] < 0.5
    assert strengths[-1]["rms_to_sketch"] > strengths[0]["rms_to_sketch"]
    methods = [row["method"] for row in r["inpainting"]["rows"]]
    assert methods == ["original", "erased", "naive", "repaint"]
    norms = {row["noise"]: row["noise_norm"] for row in r["interpolation"]["rows"]}
    # lerp's midpoint is shorter than the noises by about sqrt(2); slerp's is not
    assert (
        norms["lerp"] < 0.8 * norms["slerp"]
        and norms["slerp"] > 0.9 * norms["endpoints"]
    )


def test_site_build_fast_run_measures_every_page(fast_run):
    results = json.loads((fast_run[0] / "site_build.json").read_text())["results"]
    assert len(results["build_seconds"]) == 1 and results["build_seconds"][0] > 0
    pages = results["static_bytes_by_page"]
    assert len(pages) == results["pages"] >= 10
    assert "" in pages and "benchmarks/" in pages  # the home page and this page
    assert results["static_max_bytes"] == max(pages.values())
    assert results["browser_top"] is None  # fast mode does not start a browser


def test_unknown_benchmark_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["no_such_benchmark"])
    assert "unknown benchmark(s) no_such_benchmark" in capsys.readouterr().err


def test_render_rewrites_tables_from_json(tmp_path):
    source = RESULTS / "scheduler_overhead.json"
    (tmp_path / source.name).write_text(source.read_text())
    assert main(["--render", "--out", str(tmp_path), "scheduler_overhead"]) == 0
    assert (tmp_path / "scheduler_overhead.md").read_text() == render(
        json.loads(source.read_text())
    )
    with pytest.raises(SystemExit):  # nothing to render from
        main(["--render", "--out", str(tmp_path), "unet_vs_diffusers"])


def test_a_record_assembled_from_stored_rows_says_so():
    """`--stored-rows-only` trains nothing: its seconds are not the benchmark's time."""
    from benchmarks.__main__ import measured_line

    record = json.loads((RESULTS / "scheduler_overhead.json").read_text())
    assert "the benchmark took" in measured_line(record)
    line = measured_line({**record, "stored_rows_only": True})
    assert "the benchmark took" not in line
    assert "assembled in" in line and "`train_seconds`" in line


def test_a_run_s_own_outputs_do_not_make_its_commit_dirty():
    from benchmarks.__main__ import is_output

    assert is_output("benchmarks/results/sampler_quality.json")
    assert is_output("docs/figures/benchmarks/guidance_compare-dark.svg")
    assert not is_output("snippets/sampling.py")
    assert not is_output("benchmarks/sampler_quality.py")  # the benchmark's code is an input
    assert not is_output("checkpoints/digits/ema.safetensors")
