"""The sampler playground: serve ONNX Runtime Web from the site itself, and its graphs.

`docs/playground/models/` holds the samplers' step graphs and `steps.json`, written by
`python -m snippets.onnx_export` (`make onnx`; the Makefile runs it before `build`, `serve` and
`test` when they are missing or older than the code). A build without them stops and says so.
After the build, ONNX Runtime Web's single-threaded WebAssembly runtime (pinned in
`package-lock.json`, installed by `npm ci`) is copied from `node_modules/` into
`site/assets/ort/`; only the playground page refers to it, and only when the reader presses Run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mkdocs.exceptions import PluginError

REPO = Path(__file__).resolve().parent.parent
ORT_DIST = REPO / "node_modules" / "onnxruntime-web" / "dist"
# The classic-script build that exposes `window.ort`, and the WebAssembly it loads.
ORT_FILES = (
    "ort.wasm.min.js",
    "ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm",
)
MODELS = REPO / "docs" / "playground" / "models"


def on_pre_build(config):
    missing = [f for f in ORT_FILES if not (ORT_DIST / f).is_file()]
    if missing:
        raise PluginError(
            f"ONNX Runtime Web is not installed ({ORT_DIST / missing[0]} is missing): "
            "run `npm ci` (or `make build`, which runs it)"
        )
    if not (MODELS / "steps.json").is_file():
        raise PluginError(
            f"the playground's graphs are missing ({MODELS / 'steps.json'}): run `make onnx` "
            "(python -m snippets.onnx_export)"
        )


def on_post_build(config):
    dest = Path(config["site_dir"]) / "assets" / "ort"
    dest.mkdir(parents=True, exist_ok=True)
    for name in ORT_FILES:
        shutil.copy2(ORT_DIST / name, dest / name)
