"""Measured numbers in prose come from `benchmarks/results/*.json` (hooks/results.py).

Every page (and every notebook's Markdown) is rendered the way the build renders it: each
`{{ result(...) }}` must resolve to one value of its JSON, and nothing that looks like an
expression may survive. The resolver itself is checked on a small results folder written here.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
RESULTS = REPO / "benchmarks" / "results"

_spec = importlib.util.spec_from_file_location(
    "results_hook", REPO / "hooks" / "results.py"
)
hook = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hook)


def page_texts() -> dict[str, str]:
    """Each page's Markdown: the `.md` files and the Markdown cells of the notebooks."""
    texts = {
        str(p.relative_to(DOCS)): p.read_text(encoding="utf-8")
        for p in sorted(DOCS.rglob("*.md"))
    }
    for nb in sorted(DOCS.rglob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        texts[str(nb.relative_to(DOCS))] = "\n\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
    return texts


PAGES = page_texts()
EXPRESSIONS = [
    (page, m.group(0), m.groups())
    for page, text in PAGES.items()
    for m in hook.EXPRESSION.finditer(text)
]


def test_pages_quote_results():
    # the pages that quote measurements do so through the hook
    quoting = {page for page, _, _ in EXPRESSIONS}
    assert {"unit1/training.md", "unit1/sampling.md", "benchmarks.md"} <= quoting


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_result_on_the_page_resolves(page):
    rendered = hook.render(PAGES[page])  # raises on an expression that does not resolve
    # a misspelt expression would not be replaced: nothing like one may remain
    left = re.findall(r"\{\{[^}]*\bresult\b[^}]*\}\}", rendered)
    assert not left, f"{page}: unrendered result expressions {left}"


@pytest.mark.parametrize(
    ("page", "expression", "args"),
    EXPRESSIONS,
    ids=[f"{page}:{args[0]}:{args[1]}" for page, _, args in EXPRESSIONS],
)
def test_quoted_result_equals_its_json(page, expression, args):
    """The rendered text is the JSON value, formatted: read the value again without the hook."""
    name, path, spec = args
    record = json.loads((RESULTS / f"{name}.json").read_text())
    value = hook.resolve(name, path)
    if "|" not in path and "[" not in path:  # a plain key path: walk it independently
        node = record if path.startswith("/") else record["results"]
        for quoted, plain in re.findall(r"'([^']*)'|([^.']+)", path.lstrip("/")):
            key = quoted or plain
            node = node[int(key)] if isinstance(node, list) else node[key]
        assert node == value
    assert hook.render(expression) == hook.format_value(value, spec)
    assert isinstance(value, (int, float, str)) and not isinstance(value, bool)


# -- the resolver on a small results folder ---------------------------------------------------


@pytest.fixture
def results_dir(tmp_path):
    hook.load.cache_clear()
    record = {
        "seconds": 2468.9,
        "results": {
            "floor": {"fid": 12.81},
            "fids": [12.8, 8.2, 15.9],
            "samplers": {"ddim": {"ratio": 0.99}, "euler": {"ratio": 0.67}},
            "minutes_to_1.2x_floor": {"ours/unconditional": 3.0, "2": 10.0},
            "rows": [
                {"sampler": "ddpm", "steps": 250, "fid": 6.79, "params": 1623169},
                {"sampler": "ddpm", "steps": 1000, "fid": 6.64, "params": 1623169},
                {"sampler": "dpmsolver++", "steps": 20, "fid": 10.7, "minutes": 10.0},
            ],
        },
    }
    (tmp_path / "bench.json").write_text(json.dumps(record))
    yield tmp_path
    hook.load.cache_clear()


@pytest.mark.parametrize(
    ("path", "spec", "text"),
    [
        ("floor.fid", ".1f", "12.8"),
        ("fids.2", ".1f", "15.9"),
        ("fids|min", ".1f", "8.2"),
        ("rows[sampler=ddpm,steps=250].fid", ".1f", "6.8"),
        ("rows[sampler=dpmsolver++].steps", "d", "20"),
        ("rows[minutes=10].fid", ".2f", "10.70"),  # 10 matches 10.0
        ("rows[sampler=ddpm].fid|max", ".2f", "6.79"),
        ("rows[sampler=ddpm]|count", "d", "2"),
        ("rows[steps=250].params", "/1e6:.1f", "1.6"),
        ("rows[steps=250].params", ",d", "1,623,169"),
        ("/seconds", "/60:.0f", "41"),
        ("samplers.*.ratio|min", ".2f", "0.67"),
        ("samplers.euler.ratio", ".0%", "67%"),
        ("'minutes_to_1.2x_floor'.'ours/unconditional'", "g", "3"),  # quoted keys
        ("'minutes_to_1.2x_floor'.'2'", "g", "10"),  # a quoted number is a key
        ("'samplers'.'ddim'.ratio", ".2f", "0.99"),
    ],
)
def test_resolver_reads_paths_filters_aggregates_and_scales(
    results_dir, path, spec, text
):
    expression = f'{{{{ result("bench", "{path}", "{spec}") }}}}'
    assert hook.render(f"FID {expression}.", results_dir) == f"FID {text}."


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("rows[sampler=ddpm].fid", "matches 2 items"),
        ("rows[sampler=euler].fid", "no item"),
        ("floor.kid", "no 'kid'"),
        ("fids.7", "no '7'"),
        ("rows|mean", "unknown aggregate"),
        ("floor", "not a number"),
        ("minutes_to_1.2x_floor.'ours/unconditional'", "no 'minutes_to_1'"),
        ("'samplers.ddim'.ratio", "no 'samplers.ddim'"),
    ],
)
def test_resolver_refuses_what_does_not_name_one_number(results_dir, path, message):
    with pytest.raises(hook.ResultError, match=re.escape(message)):
        hook.render(f'{{{{ result("bench", "{path}", ".1f") }}}}', results_dir)


def test_a_missing_results_file_fails_the_build(results_dir):
    from mkdocs.exceptions import PluginError

    with pytest.raises(hook.ResultError, match="no results file"):
        hook.render('{{ result("nope", "fid", ".1f") }}', results_dir)

    class Page:  # what on_page_markdown reads of MkDocs' page
        class file:
            src_uri = "unit1/training.md"

    with pytest.raises(PluginError, match=r"unit1/training\.md.*sampler_quality"):
        hook.on_page_markdown(
            'FID {{ result("sampler_quality", "rows.fid", ".1f") }}', Page, {}, None
        )


def test_other_double_braces_are_left_alone(results_dir):
    text = "```jinja\n{{ value }} {{ result }}\n```"
    assert hook.render(text, results_dir) == text


def test_guidance_benchmark_at_scale_1_is_sampler_qualitys_dpm_solver_row():
    """Both benchmarks draw through `generate` with one seed: the same images, whatever the batch."""
    guided = json.loads((RESULTS / "guidance_digits.json").read_text())["results"]
    quality = json.loads((RESULTS / "sampler_quality.json").read_text())["results"]
    (plain,) = [r for r in guided["rows"] if r["guidance_scale"] == 1.0]
    (same,) = [
        r
        for r in quality["rows"]
        if r["sampler"] == guided["sampler"] and r["steps"] == guided["steps"]
    ]
    assert (
        guided["n_samples"] == quality["n_samples"]
        and guided["seed"] == quality["seed"]
    )
    assert plain["fid"] == pytest.approx(same["fid"], rel=1e-3)
    assert plain["confidence"] == pytest.approx(same["confidence"], rel=1e-3)
