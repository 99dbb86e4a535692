"""Pieces of the sampler-quality and site-build benchmarks on small hand-made inputs."""

from __future__ import annotations

import gzip
import json

import pytest

from benchmarks.sampler_quality import CountingModel, target_report
from benchmarks.site_build import gzipped_size, pages, static_page_weight


def _row(sampler, steps, nfe, fid):
    return {"sampler": sampler, "steps": steps, "nfe": nfe, "fid": fid}


def test_target_report_applies_both_thresholds_within_the_nfe_budget():
    reference = _row("ddpm", 1000, 1000, 10.0)
    rows = [
        reference,
        _row("ddim", 10, 10, 10.9),  # within 10 % of 10.0 and within 1.2 x 9.5 = 11.4
        _row("euler", 20, 20, 11.2),  # within 1.2 x floor only
        _row("heun", 10, 19, 9.0),  # both (better than the reference counts as within)
        _row("dpmsolver++", 25, 25, 9.0),  # both, but over the 20-evaluation budget
        _row("ddim", 5, 5, 12.0),  # neither
    ]
    report = target_report(rows, reference, floor_fid=9.5)
    assert report["within_10pct_of_reference"] == ["ddim-10", "heun-10"]
    assert report["within_1.2x_floor"] == ["ddim-10", "euler-20", "heun-10"]
    assert report["both"] == ["ddim-10", "heun-10"] and report["met"]
    assert not target_report([reference, _row("ddim", 5, 5, 12.0)], reference, 9.5)[
        "met"
    ]


def test_counting_model_counts_calls_and_passes_arguments_through():
    class Net(torch_nn_module()):
        config = {"sample_size": 4}

        def forward(self, x, t, class_labels=None):
            return x * 2 + (0 if class_labels is None else class_labels.sum())

    import torch

    counting = CountingModel(Net())
    x = torch.ones(2, 1, 4, 4)
    assert torch.equal(
        counting(x, torch.zeros(2), class_labels=torch.tensor([1, 2])), x * 2 + 3
    )
    counting(x, torch.zeros(2))
    assert counting.calls == 2 and counting.config == {"sample_size": 4}


def torch_nn_module():
    from torch import nn

    return nn.Module


@pytest.fixture
def tiny_site(tmp_path):
    """A hand-made built site: one page referencing a stylesheet (which loads a font), a script,
    an image, a remote script, a missing file and a navigational link; Material's search config."""
    site = tmp_path / "site"
    (site / "page").mkdir(parents=True)
    (site / "assets").mkdir()
    (site / "search").mkdir()
    (site / "assets" / "font.woff2").write_bytes(b"F" * 300)
    (site / "assets" / "style.css").write_text(
        '@font-face{src:url("font.woff2")} a{background:url(data:image/png;base64,xx)}'
    )
    (site / "assets" / "app.js").write_text("x" * 1000)
    (site / "assets" / "worker.js").write_text("w" * 50)
    (site / "search" / "search_index.json").write_text(json.dumps({"docs": []}))
    (site / "img.png").write_bytes(b"P" * 700)
    config = json.dumps({"base": "..", "search": "../assets/worker.js"})
    html = (
        '<html><head><link rel="stylesheet" href="../assets/style.css"><link rel="canonical" href="../other/">'
        '<script src="../assets/app.js"></script><script src="https://cdn.example.com/x.js"></script>'
        f'<script id="__config" type="application/json">{config}</script></head>'
        '<body><img src="../img.png"><img src="../missing.png"></body></html>'
    )
    (site / "page" / "index.html").write_text(html)
    (site / "index.html").write_text("<html></html>")
    (site / "assets" / "skipped.html").write_text("<html></html>")
    return site


def test_static_page_weight_counts_html_and_every_same_site_file(tiny_site):
    weight = static_page_weight(tiny_site, tiny_site / "page" / "index.html")
    expected = {
        "assets/style.css",
        "assets/font.woff2",
        "assets/app.js",
        "assets/worker.js",
        "search/search_index.json",
        "img.png",
    }
    sizes = sum((tiny_site / f).stat().st_size for f in expected)
    html = (tiny_site / "page" / "index.html").stat().st_size
    assert weight["page"] == "page/"
    assert weight["files"] == len(expected)
    assert (
        weight["html_bytes"] == html
        and weight["resource_bytes"] == sizes
        and weight["total_bytes"] == html + sizes
    )
    assert weight["gzip_bytes"] < weight["total_bytes"]


def test_pages_skip_asset_folders(tiny_site):
    assert [p.relative_to(tiny_site).as_posix() for p in pages(tiny_site)] == [
        "index.html",
        "page/index.html",
    ]


def test_gzipped_size_compresses_text_but_not_images():
    text = b"a" * 10_000
    assert gzipped_size(text, "x.js") == len(gzip.compress(text, 6, mtime=0)) < 100
    assert gzipped_size(text, "x.png") == 10_000
    assert gzipped_size(text, "http://127.0.0.1:8000/fonts/x.woff2?v=1") == 10_000
