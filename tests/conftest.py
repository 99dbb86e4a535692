"""Settings for the whole test session, read before any test module imports torch.

One PyTorch thread by default. The tests' models are tiny (16x16 digits, a few thousand
parameters to a few million), so a second intra-op thread buys little on an idle machine, and on
a busy one (a shared 2-core CI runner, a benchmark in the background) OpenMP's threads wait for
each other at every operation: the same fast-mode notebook or figure script then takes several
times as long, a single forward pass up to fifty times. The variable is inherited by every
subprocess the tests start (CLI runs, benchmark runs, figure scripts) and by the notebooks'
kernels. Set OMP_NUM_THREADS yourself to override it (`OMP_NUM_THREADS=2 make test`).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

# torch imported by a plugin before this file has read the variable already
if "torch" in sys.modules:
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def fast_digits_checkpoint(tmp_path_factory):
    """A class-conditional digits checkpoint of the default recipe: trained at 8x8 (2 steps),
    sampled at 16x16 (`data.upsample_to`), as the shipped model is made, for the consumers'
    tests at the network's own size."""
    from snippets.__main__ import main

    out = tmp_path_factory.mktemp("fast-digits") / "run"
    argv = ["train", "--data", "digits", "--class-conditional", "--steps", "2"]
    argv += ["--batch-size", "4", "--no-progress", "--no-samples", "--out", str(out)]
    assert main(argv) == 0
    return out
