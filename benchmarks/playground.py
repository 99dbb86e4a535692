"""The sampler playground's cost: what pressing Run downloads, and the time to 16 samples.

The playground's files are laid out as the built site holds them (the page's markup from
`docs/playground/index.md`, its script, the graphs of `make onnx`, ONNX Runtime Web from
`node_modules/` as `hooks/playground.py` copies it) and served on 127.0.0.1; headless Chromium
(Debian's, as for the site's browser test) opens the page with an empty cache and runs the page's own loop (`window.feastPlayground.sample`, what the Run button
calls) for 16 samples (labels `i % 10`, guidance scale 2, seed 0) with DPM-Solver++(2M) in 20
steps:

* ``payload``: the bytes of every response fetched from the call on, split into ONNX Runtime
  (its script, its WebAssembly glue and binary) and the playground's files (`steps.json`, the
  sampler's graph); the page itself, before Run, is weighed by `site_build`;
* ``browser_cold_s``: from the call to the last step with nothing loaded (runtime, graph, the
  WebAssembly compile, then sampling); ``browser_warm_s``: the same call again, sampling only;
* ``pytorch_s``: `snippets.checkpoint.generate` with the same sampler, steps, labels and guidance,
  one thread, the model already loaded (``pytorch_load_s``: loading it);
* ``load_average``: the machine's 1-minute load average before and after.

ONNX Runtime Web runs single-threaded WebAssembly (no cross-origin isolation needed); PyTorch is
limited to one thread too. Wall times on a shared machine: indicative only.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import torch

from benchmarks.site_build import _Quiet, chromium
from snippets.checkpoint import generate, load_checkpoint

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHECKPOINT = HERE.parent / "checkpoints" / "digits"
SAMPLER, STEPS, N, GUIDANCE, SEED = "dpmsolver++", 20, 16, 2.0, 0

SAMPLE_JS = """async (o) => {
    const before = performance.getEntriesByType('resource').length;
    const start = performance.now();
    const r = await window.feastPlayground.sample(o);
    const seconds = (performance.now() - start) / 1000;
    const loaded = performance.getEntriesByType('resource').slice(before)
        .map(e => ({url: e.name, bytes: e.encodedBodySize || e.transferSize}));
    return {seconds, loaded, n: r.B, steps: r.frames.length};
}"""


def run(fast: bool = False) -> dict:
    """Measure the playground in headless Chromium and the same sampling in PyTorch.

    Args:
        fast: A smoke run: 2 samples in 5 steps (the table for 5 steps ships with the page).

    Returns:
        JSON-serialisable results (see the module docstring).
    """
    n, steps = (2, 5) if fast else (N, STEPS)
    executable = chromium()
    if executable is None:
        raise RuntimeError("Chromium is needed for this benchmark: run `make browser`")
    labels = [i % 10 for i in range(n)]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="feast-bench-playground-") as tmp:
        site = Path(tmp) / "site"
        playground_site(site)
        cold, warm = _browser(site, executable, n, steps, labels)
    # the same sampling in PyTorch, one thread
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        checkpoint = load_checkpoint(CHECKPOINT)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        generate(
            checkpoint,
            n,
            sampler=SAMPLER,
            num_inference_steps=steps,
            class_labels=torch.tensor(labels),
            guidance_scale=GUIDANCE,
            generator=torch.Generator().manual_seed(SEED),
        )
        pytorch_s = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    runtime = sum(r["bytes"] for r in cold["loaded"] if "/assets/ort/" in r["url"])
    own = sum(r["bytes"] for r in cold["loaded"] if "/playground/models/" in r["url"])
    return {
        "sampler": SAMPLER,
        "steps": steps,
        "n_samples": n,
        "guidance_scale": GUIDANCE,
        "payload": {
            "runtime_mb": round(runtime / 1e6, 2),
            "graph_and_table_mb": round(own / 1e6, 2),
            "total_mb": round((runtime + own) / 1e6, 2),
            "files": sorted(
                {r["url"].split("/", 3)[-1]: r["bytes"] for r in cold["loaded"]}.items()
            ),
        },
        "browser_cold_s": round(cold["seconds"], 2),
        "browser_warm_s": round(warm["seconds"], 2),
        "pytorch_s": round(pytorch_s, 2),
        "pytorch_load_s": round(load_s, 2),
        "torch_threads": 1,
        "cpu_count": os.cpu_count(),
        # 1-minute load average before and after: on a shared machine, the times grow with it
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def playground_site(site: Path) -> None:
    """The playground page and what it loads, at the paths of the built site."""
    from hooks.playground import MODELS, ORT_DIST, ORT_FILES

    source = (REPO / "docs" / "playground" / "index.md").read_text()
    start = source.index('<div class="feast-playground"')
    end = source.index("</script>", start) + len("</script>")
    page = site / "playground"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>playground</title>"
        f"</head><body>{source[start:end]}</body></html>"
    )
    shutil.copytree(MODELS, page / "models")
    for folder in ("javascripts", "stylesheets"):
        shutil.copytree(REPO / "docs" / folder, site / folder)
    (site / "assets" / "ort").mkdir(parents=True)
    for name in ORT_FILES:
        shutil.copy2(ORT_DIST / name, site / "assets" / "ort" / name)


def _browser(site: Path, executable: str, n: int, steps: int, labels: list[int]):
    from playwright.sync_api import sync_playwright

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/playground/"
    options = {
        "sampler": SAMPLER,
        "steps": steps,
        "eta": 0,
        "guidance": GUIDANCE,
        "seed": SEED,
        "labels": labels,
    }
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable,
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                ],
            )
            try:
                page = browser.new_context().new_page()  # empty cache
                page.goto(url, wait_until="load")
                cold = page.evaluate(SAMPLE_JS, options)
                warm = page.evaluate(SAMPLE_JS, options)
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    if cold["n"] != n or cold["steps"] != steps:
        raise RuntimeError(
            f"the page sampled {cold['n']} images in {cold['steps']} steps"
        )
    return cold, warm


def markdown(record: dict) -> str:
    """The results of a run (the runner's JSON record) as the Markdown table the page includes."""
    r = record["results"]
    p = r["payload"]
    lines = [
        "| | download on Run (MB) | time to the samples (s) |",
        "|---|---|---|",
        f"| browser, first Run (runtime and graph loaded, then sampled) | {p['total_mb']:.1f} "
        f"| {r['browser_cold_s']:.1f} |",
        f"| browser, next Run (sampling only) | 0 | {r['browser_warm_s']:.1f} |",
        f"| PyTorch, one thread (model loaded) | | {r['pytorch_s']:.1f} |",
        "",
        f"{r['n_samples']} samples, {r['sampler']} in {r['steps']} steps, guidance scale "
        f"{r['guidance_scale']:g}; the download is ONNX Runtime Web "
        f"({p['runtime_mb']:.1f} MB) and the sampler's graph with the step table "
        f"({p['graph_and_table_mb']:.1f} MB). Load average "
        f"{r['load_average'][0]:.1f} before and {r['load_average'][1]:.1f} after the run on "
        f"{r['cpu_count']} cores: the times grow with the other jobs on the machine.",
    ]
    return "\n".join(lines) + "\n"
