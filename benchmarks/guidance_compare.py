"""Classifier guidance against classifier-free guidance, and loss guidance, on the shipped digits model.

Three measurements, all on `checkpoints/digits/` and the digits' test split:

* ``classifiers``: why a clean-image classifier is the wrong guide. Test digits are noised to
  $x_t$ with `q_sample` (one seeded noise per level); at each $t$ the shipped clean classifier
  (`snippets.metrics`) and the noise-aware one (`checkpoints/noisy_digit_classifier/`) read
  them; the cosine between their gradients $\\nabla_{x_t} \\log p(y \\mid x_t)$ of the true label
  says whether they push the same way.
* ``rows``: the same $x_T$ (seeded 0), labels `i % 10`, DDIM ($\\eta = 0$, 10 steps, the paper's
  Algorithm 2) under classifier guidance of the model's unconditional branch (null label) with the
  noise-aware classifier and, for contrast, with the clean classifier, and under classifier-free
  guidance of the conditional model. For each: the share read as the requested digit by the
  clean classifier, digit FID, confidence, class entropy, network passes per sample (counted)
  and wall time. CG at scale 0 is the unconditional model, CFG at scale 1 the conditional one.
* ``loss_guidance``: the conditional model (labels `i % 10`, no CFG) guided towards more ink with
  `snippets.loss_guidance` (DDIM, 10 steps), the gradient taken through $\\hat x_0$ (and the
  network) or on $x_t$: ink reached, distance to the target, FID, label accuracy, network
  forward and backward passes per sample, wall time.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from benchmarks import repo_relative
from snippets.checkpoint import load_checkpoint
from snippets.classifier_guidance import (
    NOISY_CLASSIFIER_DIR,
    TimeBlind,
    cg_model,
    classifier_log_prob_grad,
    load_noisy_classifier,
)
from snippets.data import load_digits
from snippets.forward import q_sample
from snippets.guidance import cfg_model
from snippets.loss_guidance import ink, ink_loss, loss_guided_ddim_sample
from snippets.metrics import digit_metrics, fid_floor, load_classifier
from snippets.sampling import ddim_sample

HERE = Path(__file__).resolve().parent
CHECKPOINT = HERE.parent / "checkpoints" / "digits"
STEPS = 10
CG_SCALES = [0.0, 1.0, 2.0, 3.0, 5.0, 10.0]
CG_CLEAN_SCALES = [1.0, 3.0]
CFG_SCALES = [1.0, 2.0, 3.0, 5.0]
INK_TARGET = 0.40
LOSS_SCALES = {"x0": 300.0, "x_t": 300.0}
TIMESTEPS = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 999]


class AtDataSize(nn.Module):
    """A classifier of data-sized images (16x16) called on the network's (8x8) ones.

    The images are resized by the bilinear map that makes the 16x16 digits, without the clip to
    $[-1, 1]$ of `upsample_digits`: a noisy $x_t$ goes beyond that range, and the gradient
    must flow through the resize. On images at the data's size it is the classifier itself.
    """

    def __init__(self, classifier: nn.Module, size: int):
        super().__init__()
        self.classifier, self.size = classifier, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            x = nn.functional.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False
            )
        return self.classifier(x)


class Counting(nn.Module):
    """Wraps the network; counts images through its forward and backward passes."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.forward_images, self.backward_images = model, 0, 0

    def forward(self, x, *args, **kwargs):
        self.forward_images += x.shape[0]
        out = self.model(x, *args, **kwargs)
        if out.requires_grad:
            n = x.shape[0]

            def count(grad):
                self.backward_images += n
                return grad

            out.register_hook(count)
        return out


def run(
    fast: bool = False,
    checkpoint: str | Path = CHECKPOINT,
    noisy_classifier: str | Path | None = None,
) -> dict:
    """Measure the classifiers, CG vs CFG over the scale, and loss guidance.

    Args:
        fast: Seconds-long smoke run: 8 digits, 2 sampler steps, 3 noise levels.
        checkpoint: A class-conditional digits checkpoint (default: the shipped model);
            one trained at 8x8 is guided at 8x8 and scored at 16x16.
        noisy_classifier: A `NoisyDigitClassifier` folder at the model's size (default: the
            shipped one).

    Returns:
        JSON-serialisable results.
    """
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return _run(fast, Path(checkpoint), noisy_classifier)
    finally:
        torch.set_num_threads(threads)


def classifier_rows(
    classifier, noisy, alpha_bar, timesteps, n_test=None, image_size=16
) -> list[dict]:
    """Accuracy of both classifiers on noised test digits, and the cosine of their gradients.

    The digits are noised at `image_size`, the diffusion model's (8: the native digits); the
    clean classifier reads them resized to its 16x16 (`AtDataSize`).
    """
    x0, y = load_digits("test", image_size=image_size)
    classifier = AtDataSize(classifier, 16)
    if n_test is not None:
        x0, y = x0[:n_test], y[:n_test]
    clean = TimeBlind(classifier)
    rows = []
    for t in timesteps:
        tt = torch.full((len(x0),), t)
        x_t = q_sample(x0, tt, alpha_bar, generator=torch.Generator().manual_seed(t))
        with torch.no_grad():
            acc_clean = (classifier(x_t).argmax(-1) == y).float().mean().item()
            acc_noisy = (noisy(x_t, tt).argmax(-1) == y).float().mean().item()
        g_clean = classifier_log_prob_grad(clean, x_t, tt, y).flatten(1)
        g_noisy = classifier_log_prob_grad(noisy, x_t, tt, y).flatten(1)
        cosine = torch.nn.functional.cosine_similarity(g_clean, g_noisy, dim=1)
        rows.append(
            {
                "t": t,
                "alpha_bar": alpha_bar[t].item(),
                "accuracy_clean": acc_clean,
                "accuracy_noise_aware": acc_noisy,
                "gradient_cosine": cosine.mean().item(),
                "gradient_norm_clean": g_clean.norm(dim=1).mean().item(),
                "gradient_norm_noise_aware": g_noisy.norm(dim=1).mean().item(),
            }
        )
        print(
            f"   t = {t}: clean {acc_clean:.1%}, noise-aware {acc_noisy:.1%}, "
            f"cosine {rows[-1]['gradient_cosine']:.2f}",
            flush=True,
        )
    return rows


def _score(x0, labels, classifier, counting, n, seconds) -> dict:
    with torch.no_grad():
        read_as = classifier(x0.clamp(-1, 1)).argmax(-1)
    m = digit_metrics(x0, classifier)
    return {
        "label_accuracy": (read_as == labels).float().mean().item(),
        "fid": m["fid"],
        "confidence": m["confidence"],
        "class_entropy": m["class_entropy"],
        "network_passes": counting.forward_images / n,
        "backward_passes": counting.backward_images / n,
        "seconds": round(seconds, 2),
    }


def _run(fast: bool, folder: Path, noisy_folder: str | Path | None) -> dict:
    n, n_loss, steps = (8, 4, 2) if fast else (100, 50, STEPS)
    timesteps = [0, 500, 999] if fast else TIMESTEPS
    checkpoint = load_checkpoint(folder)
    k, size = checkpoint.num_classes, checkpoint.image_size
    counting = Counting(checkpoint.model)
    schedule, prediction_type = checkpoint.schedule, checkpoint.prediction_type
    classifier = load_classifier()
    # the noise-aware classifier reads x_t at the network's size; the clean one reads 16x16
    noisy = load_noisy_classifier(noisy_folder, image_size=size)
    clean_guide = TimeBlind(AtDataSize(classifier, checkpoint.data_size))

    # 1. the two classifiers on x_t
    classifiers = classifier_rows(
        classifier, noisy, schedule.alpha_bar, timesteps, 32 if fast else None, size
    )

    # 2. CG (unconditional branch + classifier) and CFG over the scale, the same x_T;
    #    the samples are scored at the data's size (`to_data`)
    labels = torch.arange(n) % k
    x_T = torch.randn((n, 1, size, size), generator=torch.Generator().manual_seed(0))
    null_labels = torch.full((n,), k)  # the null label: the unconditional branch

    def unconditional(x, t):
        return counting(x, t, class_labels=null_labels)

    runs = [("cg", s, noisy) for s in CG_SCALES]
    runs += [("cg_clean", s, clean_guide) for s in CG_CLEAN_SCALES]
    runs += [("cfg", s, None) for s in CFG_SCALES]
    rows = []
    for method, scale, guide in runs:
        counting.forward_images = counting.backward_images = 0
        start = time.perf_counter()
        if method == "cfg":
            model = cfg_model(counting, labels, scale, k)
        else:
            model = cg_model(
                unconditional, guide, labels, scale, schedule.alpha_bar,
                prediction_type, num_classes=k,
            )  # fmt: skip
        x0 = ddim_sample(model, x_T, schedule, steps, prediction_type=prediction_type)
        x0 = checkpoint.to_data(x0)
        row = {"method": method, "scale": scale}
        row |= _score(x0, labels, classifier, counting, n, time.perf_counter() - start)
        rows.append(row)
        print(
            f"   {method} s = {scale:g}: read as label {row['label_accuracy']:.1%}, "
            f"FID {row['fid']:.2f}, {row['seconds']:.0f} s",
            flush=True,
        )

    # 3. loss guidance towards more ink: the gradient through x0_hat or on x_t
    loss_labels = torch.arange(n_loss) % k
    conditional = cfg_model(counting, loss_labels, 1.0, k)
    loss_rows = []
    for through, scale in [("x0", 0.0)] + list(LOSS_SCALES.items()):
        counting.forward_images = counting.backward_images = 0
        start = time.perf_counter()
        x0 = loss_guided_ddim_sample(
            conditional,
            lambda x: ink_loss(x, INK_TARGET),
            x_T[:n_loss],
            schedule,
            steps,
            guidance_scale=scale,
            gradient_through=through,
            prediction_type=prediction_type,
        )
        seconds = time.perf_counter() - start
        x0 = checkpoint.to_data(x0)
        amount = ink(x0.clamp(-1, 1))
        row = {
            "gradient_through": "none" if scale == 0 else through,
            "scale": scale,
            "ink": amount.mean().item(),
            "ink_gap": (amount - INK_TARGET).abs().mean().item(),
        }
        row |= _score(x0, loss_labels, classifier, counting, n_loss, seconds)
        loss_rows.append(row)
        print(
            f"   loss guidance {row['gradient_through']} s = {scale:g}: ink "
            f"{row['ink']:.3f} (target {INK_TARGET}), FID {row['fid']:.2f}, "
            f"{seconds:.0f} s",
            flush=True,
        )
    real_ink = ink(load_digits("test")[0])
    return {
        "checkpoint": repo_relative(folder),
        "noisy_classifier": repo_relative(Path(noisy_folder or NOISY_CLASSIFIER_DIR)),
        "image_size": size,
        "data_size": checkpoint.data_size,
        "n_samples": n,
        "n_loss_samples": n_loss,
        "labels": f"i % {k}",
        "seed": 0,
        "sampler": "ddim",
        "steps": steps,
        "torch_threads": torch.get_num_threads(),
        "floor": fid_floor(n, classifier),
        "floor_loss": fid_floor(n_loss, classifier),
        "classifiers": classifiers,
        "rows": rows,
        "ink_target": INK_TARGET,
        "ink_test_split": real_ink.mean().item(),
        "loss_guidance": loss_rows,
    }


NAMES = {
    "cg": "classifier guidance, noise-aware classifier",
    "cg_clean": "classifier guidance, clean classifier",
    "cfg": "classifier-free guidance",
}


def markdown(record: dict) -> str:
    """Three Markdown tables: the classifiers on x_t, CG vs CFG, loss guidance."""
    r = record["results"]
    lines = [
        "| t | alpha_bar_t | clean classifier accuracy | noise-aware accuracy "
        "| cosine of their gradients |",
        "|---|---|---|---|---|",
    ]
    for c in r["classifiers"]:
        lines.append(
            f"| {c['t']} | {c['alpha_bar']:.3g} | {c['accuracy_clean']:.1%} "
            f"| {c['accuracy_noise_aware']:.1%} | {c['gradient_cosine']:.2f} |"
        )
    lines += [
        "",
        "| guidance | scale | read as the requested digit | digit FID | confidence "
        "| network passes per sample | wall time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {NAMES[row['method']]} | {row['scale']:g} | {row['label_accuracy']:.1%} "
            f"| {row['fid']:.1f} | {row['confidence']:.3f} | {row['network_passes']:g} "
            f"| {row['seconds']:.0f} |"
        )
    lines += [
        "",
        f"{r['n_samples']} samples ({r['labels']}), seed {r['seed']}, the same x_T in every "
        f"row, {r['sampler']} with {r['steps']} steps; FID floor at this size "
        f"{r['floor']['fid']:.1f}.",
        "",
        "| gradient taken | scale | ink (target "
        f"{r['ink_target']:.2f}) | mean gap to the target | digit FID "
        "| read as the requested digit | forward / backward passes per sample "
        "| wall time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["loss_guidance"]:
        lines.append(
            f"| {row['gradient_through']} | {row['scale']:g} | {row['ink']:.3f} "
            f"| {row['ink_gap']:.3f} | {row['fid']:.1f} | {row['label_accuracy']:.1%} "
            f"| {row['network_passes']:g} / {row['backward_passes']:g} "
            f"| {row['seconds']:.0f} |"
        )
    lines += [
        "",
        f"{r['n_loss_samples']} samples, the first of the x_T above; test digits have ink "
        f"{r['ink_test_split']:.3f} on average; FID floor at this size "
        f"{r['floor_loss']['fid']:.1f}.",
    ]
    return "\n".join(lines) + "\n"


def figure(record: dict, path: Path) -> list[Path]:
    """Accuracy of the requested digit against FID, one line per guidance method."""
    from snippets.plotting import ink as ink_colour
    from snippets.plotting import save_figure

    r = record["results"]

    def draw():
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        for i, method in enumerate(["cg", "cfg", "cg_clean"]):
            rows = [row for row in r["rows"] if row["method"] == method]
            if not rows:
                continue
            fids = [row["fid"] for row in rows]
            accs = [100 * row["label_accuracy"] for row in rows]
            ax.plot(fids, accs, "o-", color=f"C{i}", label=NAMES[method])
            for row, f, a in zip(rows, fids, accs):
                ax.annotate(
                    f"s={row['scale']:g}", (f, a), textcoords="offset points",
                    xytext=(5, -12), fontsize=10, color=f"C{i}",
                )  # fmt: skip
        floor = r["floor"]["fid"]
        ax.axvline(floor, color=ink_colour(), ls=":", lw=1)
        ax.annotate(
            "real digits", (floor, 104), xytext=(4, 0), textcoords="offset points",
            fontsize=10, color=ink_colour(), va="center",
        )  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator([10, 20, 50, 100, 200, 500, 1000]))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-3, 108)
        ax.set_xlabel("digit FID, log scale (lower is better)")
        ax.set_ylabel("read as the requested digit (%)")
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=10, frameon=False
        )
        fig.tight_layout()
        return fig

    return save_figure(draw, path)
