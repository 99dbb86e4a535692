"""Classifier-free guidance on the shipped digits model: what each guidance scale buys and costs.

The shipped class-conditional model `checkpoints/digits/` draws the same 500 digits as
`sampler_quality` (labels `i % 10`, `torch.Generator` seeded 0, so every scale starts from the same
$x_T$) with DPM-Solver++(2M) in 20 steps through `snippets.checkpoint.generate`, at the guidance
scales $s = 0$ (unconditional: the null label), 1 (the plain conditional model), 3 and 7
(diffusers' convention, $s = 1 + w$). Its $s = 1$ row is `sampler_quality`'s DPM-Solver++ 20-step
row: the same images.

For each scale:

* ``network_passes``: images through the network per sample, *counted* by wrapping it (a guided
  step runs a doubled batch: conditional and unconditional halves);
* ``label_accuracy``: how often the digit classifier reads the requested digit;
* digit FID, confidence and class entropy (`snippets.metrics.digit_metrics`);
* wall time (on a shared machine: indicative only).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from snippets.checkpoint import generate, load_checkpoint
from snippets.metrics import digit_metrics, load_classifier

HERE = Path(__file__).resolve().parent
CHECKPOINT = HERE.parent / "checkpoints" / "digits"
SCALES = [0.0, 1.0, 3.0, 7.0]
SAMPLER, STEPS = "dpmsolver++", 20


class CountingModel(nn.Module):
    """Wraps a network and counts the images it is run on."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config
        self.images = 0

    def forward(self, x, *args, **kwargs):
        self.images += x.shape[0]
        return self.model(x, *args, **kwargs)


def run(fast: bool = False) -> dict:
    """Sample at every guidance scale and score the samples.

    Args:
        fast: Seconds-long smoke run: 16 digits, 3 steps (as `sampler_quality`'s fast run).

    Returns:
        JSON-serialisable results: settings, floor, one row per guidance scale.
    """
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # as sampler_quality: one thread on a shared 2-core machine
    try:
        with threadpool_limits(limits=1):
            return _run(fast)
    finally:
        torch.set_num_threads(threads)


def _run(fast: bool) -> dict:
    n, steps, seed = (16, 3, 0) if fast else (500, STEPS, 0)
    checkpoint = load_checkpoint(CHECKPOINT)
    counting = CountingModel(checkpoint.model)
    checkpoint.model = counting
    labels = torch.arange(n) % checkpoint.num_classes
    classifier = load_classifier()
    rows = []
    for scale in SCALES:
        counting.images = 0
        start = time.perf_counter()
        x0 = generate(
            checkpoint,
            n,
            sampler=SAMPLER,
            num_inference_steps=steps,
            class_labels=labels,
            guidance_scale=scale,
            generator=torch.Generator().manual_seed(seed),
            batch_size=n,
        )
        seconds = time.perf_counter() - start
        with torch.no_grad():
            read_as = classifier(x0.clamp(-1, 1)).argmax(-1)
        metrics = digit_metrics(x0, classifier)
        rows.append(
            {
                "guidance_scale": scale,
                "network_passes": counting.images / n,
                "label_accuracy": (read_as == labels).float().mean().item(),
                "fid": metrics["fid"],
                "confidence": metrics["confidence"],
                "class_entropy": metrics["class_entropy"],
                "seconds": round(seconds, 2),
            }
        )
        print(
            f"   s = {scale:g}: FID {metrics['fid']:.2f}, read as label "
            f"{rows[-1]['label_accuracy']:.1%}, {seconds:.1f} s",
            flush=True,
        )
    return {
        "checkpoint": "checkpoints/digits",
        "checkpoint_step": checkpoint.config["step"],
        "n_samples": n,
        "labels": f"i % {checkpoint.num_classes} for i < {n}",
        "seed": seed,
        "sampler": SAMPLER,
        "steps": steps,
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
    }


def markdown(record: dict) -> str:
    """The results of a run (the runner's JSON record) as the Markdown table that the page includes."""
    r = record["results"]
    lines = [
        "| guidance scale s (paper w) | network passes per sample | read as the requested digit "
        "| digit FID | confidence | class entropy | wall time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        s = row["guidance_scale"]
        lines.append(
            f"| {s:g} ({s - 1:g}) | {row['network_passes']:g} | {row['label_accuracy']:.1%} "
            f"| {row['fid']:.1f} | {row['confidence']:.3f} | {row['class_entropy']:.3f} "
            f"| {row['seconds']:.1f} |"
        )
    lines += [
        "",
        f"{r['n_samples']} samples ({r['labels']}), seed {r['seed']}, the same x_T at every scale, "
        f"{r['sampler']} with {r['steps']} steps, checkpoint step {r['checkpoint_step']}.",
    ]
    return "\n".join(lines) + "\n"
