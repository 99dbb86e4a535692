"""Make the figures of the paper-reading pages (docs/papers/) from the code in snippets/.

    .venv/bin/python docs/figures/make_paper_figures.py            # every figure
    .venv/bin/python docs/figures/make_paper_figures.py edm flow   # only those whose name starts so
    .venv/bin/python docs/figures/make_paper_figures.py --fast     # tiny settings, written to a temp dir

Analytic figures (EDM, flow paths, guidance on a 1-D mixture, schedules) take seconds. The
guidance digits sample the shipped checkpoint (about a minute); the flow-matching digits train a
small model with the project's UNet on the bundled digits, several minutes on a 2-core CPU (times
are printed). Output: SVGs in docs/figures/papers/, each in a light and a dark variant
(`snippets.plotting`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "figures" / "papers"

from snippets import edm, flow_matching, guidance  # noqa: E402
from snippets.plotting import ink, is_dark, save_figure  # noqa: E402


def _save(draw, name):
    """Draw the figure once per colour scheme: name.svg and name-dark.svg."""
    for path in save_figure(draw, OUT / f"{name}.svg"):
        print(f"wrote {path}")


def _digit_cmap():
    """Dark ink on white for the light page, white strokes on black for the dark one."""
    return "gray" if is_dark() else "gray_r"


# ---------------------------------------------------------------------------------------------
# A 1-D Gaussian mixture whose exact denoiser is known in closed form: every sampler below is run
# with the *exact* model, so the figures show what the samplers do, not how well a net learned.
# ---------------------------------------------------------------------------------------------
MEANS = torch.tensor([-1.0, 0.3, 1.1], dtype=torch.float64)
STD = 0.12
WEIGHTS = torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64)


def mixture_denoiser(x, sigma, class_labels=None):
    """E[x0 | x0 + sigma * n = x] for the mixture; class_labels = k conditions on component k (3 = none)."""
    shape = x.shape
    x = x.reshape(-1, 1).double()
    s = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1).expand(x.shape[0], 1)
    var = STD**2 + s**2
    # per-component posterior mean, then the component responsibilities
    post = MEANS + STD**2 / var * (x - MEANS)
    logits = WEIGHTS.log() - 0.5 * (x - MEANS) ** 2 / var
    if class_labels is not None:
        keep = (
            torch.nn.functional.one_hot(class_labels.clamp(max=2), 3).bool()
            | (class_labels == 3)[:, None]
        )
        logits = logits.masked_fill(~keep, -math.inf)
    return (torch.softmax(logits, dim=1) * post).sum(1).reshape(shape).to(torch.float32)


def mixture_density(xs):
    return sum(
        w * torch.exp(-0.5 * ((xs - m) / STD) ** 2) / (STD * math.sqrt(2 * math.pi))
        for m, w in zip(MEANS, WEIGHTS)
    )


def mixture_velocity(x, timestep):
    """Exact flow-matching velocity (diffusers convention) of the mixture: v = (x - E[x0 | x_t]) / t."""
    t = (timestep / 1000).reshape(-1, *([1] * (x.ndim - 1))).clamp(1e-6, 1 - 1e-6)
    x0_hat = mixture_denoiser(x / (1 - t), (t / (1 - t)).flatten())
    return (x - x0_hat) / t


# ---------------------------------------------------------------------------------------------
def fig_edm_preconditioning(fast):
    sigma = torch.logspace(-3, 2, 200)
    c_skip, c_out, c_in, c_noise = edm.edm_preconditioning(sigma, sigma_data=0.5)
    steps = {rho: edm.karras_sigmas(18, rho=rho)[:-1] for rho in (1.0, 3.0, 7.0)}

    def draw():
        fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.0))
        for y, name in [
            (c_skip, r"$c_\mathrm{skip}$"),
            (c_out, r"$c_\mathrm{out}$"),
            (c_in, r"$c_\mathrm{in}$"),
        ]:
            a.plot(sigma, y, label=name)
        a.set(
            xscale="log",
            xlabel=r"$\sigma$",
            title=r"EDM preconditioning, $\sigma_\mathrm{data}=0.5$",
        )
        a.legend()
        for rho, s in steps.items():
            b.plot(range(18), s, "o-", ms=3, label=rf"$\rho={rho:g}$")
        b.set(
            yscale="log",
            xlabel="step $i$",
            ylabel=r"$\sigma_i$",
            title="Eq. 5 time steps, N = 18",
        )
        b.legend()
        fig.tight_layout()
        return fig

    _save(draw, "edm_preconditioning")


def fig_edm_sampler(fast):
    n_samples = 2000 if fast else 20000
    noise = torch.randn(n_samples, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    reference = edm.edm_sample(
        mixture_denoiser, noise, edm.karras_sigmas(50 if fast else 400)
    )
    xs = torch.linspace(-1.8, 1.8, 400, dtype=torch.float64)
    runs = [
        ("Euler", 11, False),
        ("Heun", 6, True),
        ("Euler", 35, False),
        ("Heun", 18, True),
    ]
    samples = [
        edm.edm_sample(mixture_denoiser, noise, edm.karras_sigmas(n), second_order=heun)
        for _, n, heun in runs
    ]

    def draw():
        fig, axes = plt.subplots(2, 2, figsize=(8, 5.4), sharey=True, sharex=True)
        for ax, (name, n, heun), x in zip(axes.flat, runs, samples):
            nfe = 2 * n - 1 if heun else n
            err = (x - reference).abs().mean().item()
            ax.hist(
                x.flatten().numpy(),
                bins=120,
                range=(-1.8, 1.8),
                density=True,
                color="C4",
                alpha=0.7,
            )
            ax.plot(xs, mixture_density(xs), color=ink(), lw=1)
            ax.set_title(f"{name}, N={n}, {nfe} NFE, error {err:.3f}")
        for ax in axes[1]:
            ax.set_xlabel("$x$")
        fig.tight_layout()
        return fig

    _save(draw, "edm_sampler")


def fig_flow_paths(fast):
    g = torch.Generator().manual_seed(0)
    k = torch.multinomial(WEIGHTS.float(), 14, replacement=True, generator=g)
    data = (MEANS[k].float() + STD * torch.randn(14, generator=g)).reshape(-1, 1, 1, 1)
    noise = torch.randn(14, 1, 1, 1, generator=g)
    ts = torch.linspace(0, 1, 50)
    paths = [
        [
            flow_matching.flow_path(
                data[i : i + 1], noise[i : i + 1], t.reshape(1)
            ).item()
            for t in ts
        ]
        for i in range(14)
    ]
    start = torch.linspace(-2.2, 2.2, 25).reshape(-1, 1, 1, 1)
    traj = [start] + list(
        flow_matching.flow_sample_progressive(mixture_velocity, start, 60)
    )
    sig, _ = flow_matching.flow_match_sigmas(60)

    def draw():
        fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
        for path in paths:
            a.plot(ts, path, color="C4", lw=0.8)
        a.set(
            title="conditional paths (training pairs)",
            xlabel="$t$  (diffusers: 1 = noise)",
            ylabel="$x_t$",
        )
        b.plot(sig, torch.stack([x.flatten() for x in traj]), color="C1", lw=0.8)
        b.set(title="marginal ODE, exact velocity, Euler", xlabel="$t$")
        for ax in (a, b):
            ax.invert_xaxis()
            top = ax.secondary_xaxis(
                "top", functions=(lambda t: 1 - t, lambda t: 1 - t)
            )
            top.set_xlabel("paper time (Lipman, Liu: 1 = data)")
        fig.tight_layout()
        return fig

    _save(draw, "flow_paths")


def fig_cfg_toy(fast):
    n = 2000 if fast else 20000
    noise = torch.randn(n, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    labels = torch.full((n,), 1)  # the middle component, squeezed between the other two
    xs = torch.linspace(-1.8, 1.8, 400, dtype=torch.float64)
    scales = [0.0, 1.0, 3.0, 7.0]
    samples = [
        edm.edm_sample(
            guidance.cfg_model(mixture_denoiser, labels, s, null_label=3),
            noise,
            edm.karras_sigmas(32),
        )
        for s in scales
    ]

    def draw():
        fig, axes = plt.subplots(2, 2, figsize=(8, 5.2), sharey=True, sharex=True)
        for ax, s, x in zip(axes.flat, scales, samples):
            ax.hist(
                x.flatten().numpy(),
                bins=120,
                range=(-1.8, 1.8),
                density=True,
                color="C2",
                alpha=0.7,
            )
            ax.plot(
                xs,
                torch.exp(-0.5 * ((xs - MEANS[1]) / STD) ** 2)
                / (STD * math.sqrt(2 * math.pi)),
                color=ink(),
                lw=0.8,
                label="class 1",
            )
            ax.plot(
                xs, mixture_density(xs), ":", color=ink(), lw=0.8, label="all classes"
            )
            ax.set(title=f"$s = {s:g}$  ($w = {s - 1:g}$)", ylim=(0, 8))
        for ax in axes[1]:
            ax.set_xlabel("$x$")
        axes[0, 0].legend(loc="upper left", frameon=False)
        fig.tight_layout()
        return fig

    _save(draw, "cfg_toy")


def fig_cfg_digits(fast):
    """Digits of the shipped class-conditional model at guidance scales s = 0, 1, 3, 7, same noise for each.

    Rows are the classes 0-9; each column group is one scale in diffusers' convention (s = 1 + w,
    `snippets.guidance`). Every group starts from the same x_T, so the differences are guidance's
    alone. The digit classifier of `snippets.metrics` measures, per scale, how often the sample is
    read as the requested digit, its mean confidence, and the digit FID (diversity). About a minute
    on 2 CPU cores. The network samples at its own size (8x8 for a model trained at the digits'
    native size); the digits are scored and shown at 16x16, through `Checkpoint.to_data`.
    """
    import torch.nn.functional as F

    from snippets.checkpoint import load_checkpoint
    from snippets.metrics import digit_metrics, load_classifier
    from snippets.sampling import SAMPLERS

    digits = load_checkpoint(
        ROOT / "checkpoints" / "digits"
    )  # trained with label dropout p_uncond = 0.1
    per_class, shown, steps = (
        (2, 2, 4) if fast else (20, 6, 20)
    )  # samples per class (measured / drawn)
    labels = torch.arange(10).repeat_interleave(per_class)
    size = digits.image_size  # the network's side; x_T is drawn there
    x_T = torch.randn(
        len(labels), 1, size, size, generator=torch.Generator().manual_seed(0)
    )
    classifier = load_classifier()
    scales = [0.0, 1.0, 3.0, 7.0]
    names = {0.0: "unconditional", 1.0: "conditional, no guidance"}
    panels = []  # (scale, grid image, accuracy, metrics) per scale
    for s in scales:
        t0 = time.time()
        model = guidance.cfg_model(
            digits.model, labels, s, null_label=digits.num_classes
        )
        x = SAMPLERS["dpmsolver++"](
            model, x_T, digits.schedule, steps, prediction_type=digits.prediction_type
        )
        x = digits.to_data(x).clamp(-1, 1)  # the 16x16 digits the classifier reads
        with torch.no_grad():
            accuracy = (classifier(x).argmax(-1) == labels).float().mean().item()
        metrics = digit_metrics(x, classifier)
        print(
            f"  s = {s:g} (w = {s - 1:g}): label accuracy {accuracy:.3f}, confidence {metrics['confidence']:.3f}, "
            f"digit FID {metrics['fid']:.1f} (n = {len(x)}, {time.time() - t0:.0f} s)"
        )
        # rows = classes, columns = the first `shown` samples of each class; gray lines between them
        side = x.shape[-1]  # the data's, 16
        grid = F.pad(
            x.reshape(10, per_class, side, side)[:, :shown], (1, 1, 1, 1), value=0.0
        )
        panels.append(
            (
                s,
                grid.permute(0, 2, 1, 3).reshape(10 * (side + 2), shown * (side + 2)),
                accuracy,
                metrics,
            )
        )

    def draw():
        fig, axes = plt.subplots(
            1, len(scales), figsize=(1.9 * len(scales) * shown / 6 + 0.6, 5.0)
        )
        for ax, (s, image, accuracy, metrics) in zip(axes, panels):
            ax.imshow(image, cmap=_digit_cmap(), vmin=-1, vmax=1)
            ax.set_title(f"$s = {s:g}$  ($w = {s - 1:g}$)\n{names.get(s, 'guided')}")
            ax.set_xlabel(
                f"read as label: {accuracy:.0%}\nconfidence {metrics['confidence']:.3f}\n"
                f"digit FID {metrics['fid']:.1f}"
            )
            ax.set_xticks([])
            ax.set_yticks(
                [(side + 2) * (k + 0.5) for k in range(10)],
                [str(k) for k in range(10)] if ax is axes[0] else [],
            )
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
        fig.suptitle(
            f"shipped digits model, DPM-Solver++(2M) {steps} steps, same $x_T$ in every\n"
            f"group (metrics over {per_class} samples per class)"
        )
        fig.tight_layout()
        return fig

    _save(draw, "cfg_digits")


def fig_flow_digits(fast):
    """Train a flow-matching UNet on the digits (6-9 min on 2 cores), then sample with Euler."""
    from snippets.data import load_digits
    from snippets.unet import DIGITS_CONFIG, UNet

    torch.manual_seed(0)
    images, _ = load_digits("train")
    config = dict(
        DIGITS_CONFIG, channels=(32, 64), attention_levels=(), mid_attention=False
    )
    model = UNet(**config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    steps = 20 if fast else 1500
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.1
    )
    g = torch.Generator().manual_seed(0)
    t0 = time.time()
    for step in range(steps):
        batch = images[torch.randint(0, len(images), (64,), generator=g)]
        loss = flow_matching.flow_matching_loss(model, batch, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"  step {step}: loss {loss.item():.4f} ({time.time() - t0:.0f} s)")
    model.eval()
    noise = torch.randn(10, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    step_counts = [1, 2, 4, 8, 16, 32]
    with torch.no_grad():
        rows = [
            torch.cat(
                list(flow_matching.flow_sample(model, noise, n).clamp(-1, 1)[:, 0]),
                dim=1,
            ).numpy()
            for n in step_counts
        ]

    def draw():
        fig, axes = plt.subplots(
            len(step_counts), 1, figsize=(6, 0.75 * len(step_counts))
        )
        for ax, n, row in zip(axes, step_counts, rows):
            ax.imshow(row, cmap=_digit_cmap(), vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[["left", "bottom"]].set_visible(False)
            ax.set_ylabel(
                f"{n} step{'s' * (n > 1)}", rotation=0, ha="right", va="center"
            )
        fig.suptitle(
            f"flow matching on the digits: same noise, Euler\n({steps} training steps)"
        )
        fig.tight_layout()
        return fig

    _save(draw, "flow_digits")


def fig_schedules(fast):
    """Improved DDPM Fig. 5 and the notation page: alpha_bar and log-SNR of the named schedules."""
    from snippets.schedules import NoiseSchedule, snr

    alpha_bars = {}
    for name in ("linear", "cosine", "scaled_linear", "sigmoid"):
        kwargs = (
            dict(beta_start=0.00085, beta_end=0.012) if name == "scaled_linear" else {}
        )
        alpha_bars[name] = NoiseSchedule.from_name(name, **kwargs).alpha_bar

    def draw():
        fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.0))
        for name, alpha_bar in alpha_bars.items():
            t = torch.arange(len(alpha_bar)) / len(alpha_bar)
            a.plot(t, alpha_bar, label=name)
            b.plot(t, snr(alpha_bar).log(), label=name)
        a.set(
            xlabel="$t / T$",
            ylabel=r"$\bar\alpha_t$",
            title=r"$\bar\alpha_t$ (T = 1000)",
        )
        b.set(
            xlabel="$t / T$",
            ylabel=r"$\lambda_t = \log \mathrm{SNR}$",
            title="log signal-to-noise ratio",
        )
        a.legend(frameon=False)
        fig.tight_layout()
        return fig

    _save(draw, "schedules")


def fig_ddpm_forward(fast):
    """A digit noised with q_sample at several t, linear vs cosine schedule."""
    from snippets.data import load_digits
    from snippets.forward import q_sample
    from snippets.schedules import NoiseSchedule

    x0 = load_digits("train")[0][:1]
    ts = [0, 50, 100, 250, 500, 750, 999]
    noise = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    names = ("linear", "cosine")
    images = {
        (name, t): q_sample(
            x0, torch.tensor([t]), NoiseSchedule.from_name(name).alpha_bar, noise=noise
        )[0, 0]
        for name in names
        for t in ts
    }

    def draw():
        fig, axes = plt.subplots(2, len(ts), figsize=(7, 2.5))
        for row, name in enumerate(names):
            for col, t in enumerate(ts):
                axes[row, col].imshow(
                    images[name, t], cmap=_digit_cmap(), vmin=-2, vmax=2
                )
                axes[row, col].set_xticks([])
                axes[row, col].set_yticks([])
                axes[row, col].spines[["left", "bottom"]].set_visible(False)
                axes[0, col].set_title(f"t = {t}")
            axes[row, 0].set_ylabel(name)
        fig.tight_layout()
        return fig

    _save(draw, "ddpm_forward")


def _mixture_eps_model(alpha_bar):
    """The exact epsilon-prediction of the 1-D mixture for a DDPM schedule: eps = (x_t - sqrt(ab) E[x0|x_t]) / sqrt(1 - ab)."""

    def model(x_t, t):
        ab = alpha_bar[t.long()].reshape(-1, *([1] * (x_t.ndim - 1)))
        x0_hat = mixture_denoiser(x_t / ab.sqrt(), ((1 - ab) / ab).sqrt().flatten())
        return (x_t - ab.sqrt() * x0_hat) / (1 - ab).sqrt()

    return model


def fig_samplers(fast):
    """DDPM vs DDIM on the 1-D mixture, exact model: all the error is the sampler's."""
    from snippets.sampling import SAMPLERS
    from snippets.schedules import NoiseSchedule

    schedule = NoiseSchedule.from_name("linear")
    model = _mixture_eps_model(schedule.alpha_bar)
    n = 2000 if fast else 20000
    x_T = torch.randn(n, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    xs = torch.linspace(-1.8, 1.8, 400, dtype=torch.float64)
    runs = [("ddpm", 1000), ("ddpm", 20), ("ddim", 20), ("ddim", 5)]
    # no clipping of x0_hat: the mixture reaches beyond [-1, 1]
    samples = [
        SAMPLERS[name](
            model,
            x_T,
            schedule,
            100 if fast and steps == 1000 else steps,
            generator=torch.Generator().manual_seed(1),
            clip_sample=False,
        )
        for name, steps in runs
    ]

    def draw():
        fig, axes = plt.subplots(2, 2, figsize=(8, 5.2), sharey=True, sharex=True)
        for ax, (name, steps), x in zip(axes.flat, runs, samples):
            ax.hist(
                x.flatten().numpy(),
                bins=120,
                range=(-1.8, 1.8),
                density=True,
                color="C0",
                alpha=0.7,
            )
            ax.plot(xs, mixture_density(xs), color=ink(), lw=1)
            ax.set_title(f"{name.upper()}, {steps} steps")
        for ax in axes[1]:
            ax.set_xlabel("$x_0$")
        fig.tight_layout()
        return fig

    _save(draw, "samplers")


def fig_v_prediction(fast):
    """The three targets of Salimans & Ho 2022 as vectors: x_t, eps, x0 and v on the (x0, eps) circle."""
    from snippets.forward import training_target
    from snippets.schedules import NoiseSchedule

    alpha_bar = NoiseSchedule.from_name("cosine").alpha_bar
    x0, eps = (
        torch.ones(1, 1, 1, 1),
        torch.ones(1, 1, 1, 1),
    )  # the two axes of the plane
    phis = torch.linspace(0, math.pi / 2, 50)
    t = torch.tensor([400])
    ab = alpha_bar[t].item()
    # coordinates (x0-component, eps-component) of each quantity
    x_t = (math.sqrt(ab), math.sqrt(1 - ab))
    # v is linear in (x0, eps): its components are the targets of the two basis vectors
    v = (
        training_target(
            x0, eps * 0, t, alpha_bar, "v_prediction"
        ).item(),  # -sqrt(1 - ab)
        training_target(x0 * 0, eps, t, alpha_bar, "v_prediction").item(),
    )  # sqrt(ab)

    def draw():
        fig, ax = plt.subplots(figsize=(4.0, 3.8))
        ax.plot(phis.cos(), phis.sin(), ":", color=ink(), lw=0.8)
        for vec, label, color in [
            ((1, 0), "$x_0$", "C0"),
            ((0, 1), r"$\epsilon$", "C1"),
            (x_t, "$x_t$", ink()),
            (v, "$v_t$", "C3"),
        ]:
            ax.annotate(
                "",
                xy=vec,
                xytext=(0, 0),
                arrowprops=dict(arrowstyle="->", color=color, lw=1.5),
            )
            ax.text(vec[0] * 1.08, vec[1] * 1.08, label, color=color, fontsize=13)
        ax.text(0.25, 0.08, r"$\phi_t$", fontsize=12)
        ax.set(
            xlim=(-0.9, 1.25),
            ylim=(-0.1, 1.25),
            aspect="equal",
            xlabel="data direction",
            ylabel="noise direction",
            title=f"t = {t.item()} of the cosine schedule",
        )
        return fig

    _save(draw, "v_prediction")


# ---------------------------------------------------------------------------------------------
FIGURES = {
    "edm_preconditioning": fig_edm_preconditioning,
    "edm_sampler": fig_edm_sampler,
    "flow_paths": fig_flow_paths,
    "cfg_toy": fig_cfg_toy,
    "cfg_digits": fig_cfg_digits,
    "schedules": fig_schedules,
    "ddpm_forward": fig_ddpm_forward,
    "samplers": fig_samplers,
    "v_prediction": fig_v_prediction,
    "flow_digits": fig_flow_digits,
}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", help="prefixes of figure names (default: all)"
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="tiny settings for a smoke run (not saved in docs/)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: docs/figures/papers)",
    )
    args = parser.parse_args(argv)
    global OUT
    if args.out is not None:
        OUT = args.out.resolve()
    elif args.fast:
        import tempfile

        OUT = Path(tempfile.mkdtemp(prefix="paper-figures-"))
    chosen = [
        k for k in FIGURES if not args.names or any(k.startswith(p) for p in args.names)
    ]
    if not chosen:
        parser.error(f"no figure matches {args.names}; known: {', '.join(FIGURES)}")
    torch.manual_seed(0)
    for name in chosen:
        t0 = time.time()
        FIGURES[name](args.fast)
        print(f"  {name}: {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
