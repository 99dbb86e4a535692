# Diffusion Model Feast — every target sets up .venv itself on first use.
#   make serve   serve the site on http://127.0.0.1:8000 (offline once installed)
#   make test    run the whole test suite (snippets, notebooks, strict build, browser test)
#   make build   build the static site into site/ with `mkdocs build --strict`
#   make bench   run the full benchmarks (slow, minutes to hours); make bench-fast for a smoke run
#   make onnx    export the playground's sampler steps to ONNX (docs/playground/models/)
#   make figures remake every figure from snippets/ and re-execute the notebooks in full mode (minutes)

PYTHON ?= python3.11
export NO_MKDOCS_2_WARNING := 1
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements-installed
# KaTeX (pinned in package-lock.json) typesets the site's math at build time: `npm ci` installs it
# into node_modules/ (needs Node.js and npm; offline afterwards), with ONNX Runtime Web, which the
# playground page runs in the reader's browser.
KATEX  := node_modules/katex/dist/katex.min.css
# The playground's step graphs (ONNX) and step tables, exported from snippets/ by `make onnx`
# (deterministic; not committed): the build needs them.
ONNX   := docs/playground/models/steps.json
ONNX_SOURCES := snippets/onnx_export.py snippets/sampling.py snippets/karras.py \
  snippets/dpm_solver.py snippets/guidance.py snippets/unet.py snippets/forward.py \
  checkpoints/digits/config.json checkpoints/digits/ema.safetensors

.PHONY: serve build test bench bench-fast figures browser onnx clean

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required; set PYTHON=...)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(KATEX): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: npm not found (Node.js and npm are needed to typeset the site's math with KaTeX)" >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $@

$(ONNX): $(STAMP) $(ONNX_SOURCES)
	OMP_NUM_THREADS=1 $(PY) -m snippets.onnx_export --checkpoint checkpoints/digits \
	  --out docs/playground/models

onnx: $(ONNX)

# Headless Chromium for the browser test (Debian packages; needs root or sudo on a fresh machine).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser test..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium chromium-driver; }

serve: $(STAMP) $(KATEX) $(ONNX)
	$(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

build: $(STAMP) $(KATEX) $(ONNX)
	$(VENV)/bin/mkdocs build --strict

test: $(STAMP) $(KATEX) $(ONNX) browser
	$(PY) -m pytest

bench: $(STAMP) $(KATEX) $(ONNX)
	$(PY) -m benchmarks

bench-fast: $(STAMP) $(KATEX) $(ONNX)
	$(PY) -m benchmarks --fast

# Every figure of the site, made by the code in snippets/ (docs/figures/make_*.py; some train small
# models for minutes), the benchmark plots redrawn from their JSON results, then the notebooks
# re-executed in full mode (FEAST_FAST unset), outputs in place.
figures: $(STAMP)
	@set -e; for script in docs/figures/make_*.py; do echo "== $$script"; $(PY) $$script; done
	$(PY) -m benchmarks --render
	env -u FEAST_FAST $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=3600 docs/notebooks/*.ipynb

clean:
	rm -rf site .pytest_cache
