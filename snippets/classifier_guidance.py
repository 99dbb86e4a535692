r"""Classifier guidance (Dhariwal & Nichol 2021, "Diffusion Models Beat GANs", arXiv 2105.05233).

A classifier $p_\phi(y \mid x_t, t)$ trained on *noisy* images steers an unconditional (or
conditional) diffusion model towards a class $y$ by adding the gradient of its log-probability to
every sampling step:

* **Algorithm 1** (DDPM, ancestral): shift the mean of $p_\theta(x_{t-1} \mid x_t)$ by
  $s\,\Sigma\,\nabla_{x_t} \log p_\phi(y \mid x_t)$ (`cg_ddpm_sample_progressive`);
* **Algorithm 2** (DDIM): shift the predicted noise,
  $\hat\epsilon = \epsilon_\theta(x_t) - s\,\sqrt{1 - \bar\alpha_t}\,\nabla_{x_t} \log p_\phi(y \mid x_t)$
  (`cg_model`, which wraps a network so that every sampler of `snippets.sampling` uses it).

The classifier must be *noise-aware*: it sees $x_t$ and $t$, as the diffusion model does.
`NoisyDigitClassifier` is such a classifier for the digits, at 16x16 or at their native 8x8 (its
`image_size`, which must be the diffusion model's: its gradient is added to $x_t$), trained in a
minute on a CPU by `train_noisy_classifier` on `q_sample`-noised digits; `load_noisy_classifier`
loads the shipped one (16x16, `checkpoints/noisy_digit_classifier/`). `TimeBlind` wraps a
clean-image classifier (such as `snippets.metrics.DigitClassifier`) in the same interface, to
show why it is the wrong tool.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from snippets import check
from snippets.forward import (
    broadcast_at,
    check_prediction_type,
    check_sampler_args,
    gaussian_noise,
    predict_x0_and_eps,
    q_posterior_mean_variance,
    q_sample,
)
from snippets.schedules import NoiseSchedule, inference_timesteps
from snippets.unet import TimeEmbedding, timestep_embedding

NOISY_CLASSIFIER_DIR = (
    Path(__file__).resolve().parent.parent / "checkpoints" / "noisy_digit_classifier"
)
WEIGHTS_FILE, CONFIG_FILE = "classifier.safetensors", "classifier.json"


# --8<-- [start:noisy-classifier]
class NoisyDigitClassifier(nn.Module):
    r"""A noise-aware digit classifier $p_\phi(y \mid x_t, t)$ (Dhariwal & Nichol 2021, Sec. 4).

    Two conv blocks as `snippets.metrics.DigitClassifier`, each told the timestep through the
    project's sinusoidal embedding and MLP (`snippets.unet.TimeEmbedding`), added per channel.

    Args:
        num_classes: Number of classes $K$.
        num_train_timesteps: $T$ of the diffusion schedule it is trained on.
        width: Channels of the first conv block (the second has twice as many).
        image_size: Side $S$ of the images it reads, the diffusion model's: 16 for the
            16x16 digits, 8 for their native 8x8 (any multiple of 4, for two 2x2 poolings).
    """

    def __init__(
        self,
        num_classes: int = 10,
        num_train_timesteps: int = 1000,
        width: int = 32,
        image_size: int = 16,
    ):
        super().__init__()
        check.integer("num_classes", num_classes, ge=2)
        check.integer("num_train_timesteps", num_train_timesteps, ge=1)
        check.integer("width", width, ge=1)
        check.integer("image_size", image_size, ge=4)
        if image_size % 4:
            raise ValueError(
                f"image_size must be a multiple of 4 (two 2x2 poolings), "
                f"got {image_size}"
            )
        self.num_classes, self.num_train_timesteps = num_classes, num_train_timesteps
        self.image_size = image_size
        self.config = dict(
            num_classes=num_classes,
            num_train_timesteps=num_train_timesteps,
            width=width,
            image_size=image_size,
        )
        self.time_embedding = TimeEmbedding(width, 4 * width)
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)  # S x S -> pool -> S/2 x S/2
        self.time1 = nn.Linear(4 * width, width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)  # -> pool -> S/4 x S/4
        self.time2 = nn.Linear(4 * width, 2 * width)
        self.fc = nn.Linear(2 * width * (image_size // 4) ** 2, 64)
        self.head = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Class logits `(B, K)` of `x_t` `(B, 1, S, S)` (`S = image_size`) at `t` `(B,)`."""
        s = self.image_size
        check.tensor("x", x, shape=(None, 1, s, s))
        t = check.tensor("t", torch.as_tensor(t, device=x.device), dtype="real")
        t = t.expand(x.shape[0]) if t.ndim == 0 else t
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape ({x.shape[0]},), got {tuple(t.shape)}")
        # e_t: sinusoids of t, then the MLP (the UNet's time embedding)
        emb = F.silu(
            self.time_embedding(timestep_embedding(t, self.conv1.out_channels))
        )
        h = F.silu(self.conv1(x) + self.time1(emb)[:, :, None, None])
        h = F.max_pool2d(h, 2)
        h = F.silu(self.conv2(h) + self.time2(emb)[:, :, None, None])
        h = F.max_pool2d(h, 2)
        return self.head(F.silu(self.fc(h.flatten(1))))


# --8<-- [end:noisy-classifier]


class TimeBlind(nn.Module):
    """A clean-image classifier `classifier(x)` called as `classifier(x_t, t)`, ignoring `t`.

    Args:
        classifier: A module mapping images `(B, C, H, W)` to logits `(B, K)`, e.g.
            `snippets.metrics.DigitClassifier` (`K = 10`).
        num_classes: $K$.
    """

    def __init__(self, classifier: nn.Module, num_classes: int = 10):
        super().__init__()
        check.instance("classifier", classifier, nn.Module)
        check.integer("num_classes", num_classes, ge=2)
        self.classifier, self.num_classes = classifier, num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)


# --8<-- [start:train-noisy-classifier]
def train_noisy_classifier(
    schedule: NoiseSchedule,
    steps: int = 3000,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    image_size: int = 16,
) -> NoisyDigitClassifier:
    r"""Train $p_\phi(y \mid x_t, t)$ on noised train digits (Dhariwal & Nichol 2021, Sec. 4).

    Each step draws digits $x_0$ with labels $y$, timesteps $t \sim \mathcal{U}\{0, T-1\}$ and
    noise, makes $x_t$ with `q_sample` (Ho et al. 2020, Eq. 4), and minimises the cross-entropy
    $-\log p_\phi(y \mid x_t, t)$ with Adam. Single-threaded and seeded: deterministic on a machine.
    The digits are `snippets.data.load_digits`'s at `image_size`, the diffusion model's.

    Args:
        schedule: The diffusion model's noise schedule (the classifier must see the same $x_t$).
        steps: Optimizer steps.
        batch_size: Images per step.
        learning_rate: Adam's step size.
        seed: Seed of the initialisation, the batches, the timesteps and the noise.
        progress: Show a tqdm progress bar.
        image_size: Side of the digits, the diffusion model's `sample_size`: 16, or 8 for a
            model of the native 8x8 digits (its samples upsampled to 16x16 afterwards).

    Returns:
        The trained classifier in eval mode.
    """
    from tqdm.auto import tqdm

    from snippets.data import load_digits

    check.instance("schedule", schedule, NoiseSchedule)
    check.integer("steps", steps, ge=1)
    check.integer("batch_size", batch_size, ge=1)
    check.real("learning_rate", learning_rate, gt=0)
    check.integer("seed", seed, ge=0)
    check.boolean("progress", progress)
    check.integer("image_size", image_size, ge=4)
    x, y = load_digits("train", image_size=image_size)
    T = schedule.num_train_timesteps
    generator = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(), torch.enable_grad():
            torch.manual_seed(seed)
            model = NoisyDigitClassifier(10, T, image_size=image_size)
            optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
            bar = tqdm(range(steps), desc="noisy classifier", disable=not progress)
            for _ in bar:
                # 1. digits, timesteps t ~ U{0, ..., T-1}, x_t ~ q(x_t | x_0) (Eq. 4)
                index = torch.randint(0, len(x), (batch_size,), generator=generator)
                t = torch.randint(0, T, (batch_size,), generator=generator)
                x_t = q_sample(x[index], t, schedule.alpha_bar, generator=generator)
                # 2. cross-entropy -log p_phi(y | x_t, t), one Adam step
                loss = F.cross_entropy(model(x_t, t), y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    finally:
        torch.set_num_threads(threads)
    return model.eval()


# --8<-- [end:train-noisy-classifier]


def save_noisy_classifier(
    classifier: NoisyDigitClassifier, directory: str | Path, training: dict
) -> Path:
    """Write the classifier's weights and config to `directory`, atomically and hashed.

    Uses `snippets.checkpoint.commit_files`: all files or none, with a manifest of SHA-256.

    Args:
        classifier: The trained classifier.
        directory: Target folder (created if needed).
        training: JSON-serialisable training arguments, recorded in `classifier.json`.

    Returns:
        The folder.
    """
    from safetensors.torch import save as save_safetensors

    from snippets.checkpoint import commit_files

    check.instance("classifier", classifier, NoisyDigitClassifier)
    check.instance("directory", directory, (str, Path))
    check.instance("training", training, dict)
    state = {k: v.detach().contiguous() for k, v in classifier.state_dict().items()}
    config = {"model": classifier.config, "training": training}
    files = {
        WEIGHTS_FILE: save_safetensors(state),
        CONFIG_FILE: (json.dumps(config, indent=2) + "\n").encode(),
    }
    return commit_files(directory, files, int(training.get("steps", 0)))


def load_noisy_classifier(
    directory: str | Path | None = None, image_size: int | None = None
) -> NoisyDigitClassifier:
    """Load a saved `NoisyDigitClassifier` (default: the shipped one), checking its hashes.

    The saved config restores the classifier's `image_size`; one saved before that field
    existed (the shipped one) reads 16x16 digits.

    Args:
        directory: Folder written by `save_noisy_classifier`
            (default `checkpoints/noisy_digit_classifier/`, a 16x16 classifier).
        image_size: If given, the size the caller needs (its diffusion model's
            `sample_size`); a classifier saved at another size is refused.

    Returns:
        The classifier in eval mode.
    """
    from snippets.checkpoint import _read_files, load_state_dict_strict, load_tensors

    if directory is not None:
        check.instance("directory", directory, (str, Path))
    if image_size is not None:
        check.integer("image_size", image_size, ge=1)
    directory = Path(directory or NOISY_CLASSIFIER_DIR)
    data = _read_files(directory, [CONFIG_FILE, WEIGHTS_FILE])
    config = json.loads(data[CONFIG_FILE])["model"]
    saved_size = config.setdefault("image_size", 16)  # saved before the field: 16x16
    if image_size is not None and image_size != saved_size:
        raise ValueError(
            f"image_size={image_size} was asked but {directory} holds a classifier of "
            f"{saved_size}x{saved_size} digits: train one at {image_size}x{image_size} "
            f"with python -m snippets.classifier_guidance --image-size {image_size}"
        )
    model = NoisyDigitClassifier(**config)
    path = directory / WEIGHTS_FILE
    tensors = load_tensors(path, data=data[WEIGHTS_FILE])
    load_state_dict_strict(model, tensors, path)
    return model.eval()


# --8<-- [start:log-prob-grad]
def classifier_log_prob_grad(
    classifier: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_t: torch.Tensor,
    t: torch.Tensor,
    class_labels: torch.Tensor,
) -> torch.Tensor:
    r"""The gradient $\nabla_{x_t} \log p_\phi(y \mid x_t, t)$ (Dhariwal & Nichol 2021, Alg. 1-2).

    Each image's log-probability depends on that image only, so the gradient of their sum gives
    every image its own gradient in one backward pass.

    Args:
        classifier: `classifier(x_t, t) -> logits` of shape `(B, K)`; if it has an
            `image_size` (as `NoisyDigitClassifier`), it must be `x_t`'s `H = W`.
        x_t: Noisy images, shape `(B, C, H, W)`.
        t: Integer timesteps, shape `(B,)`.
        class_labels: Target classes $y$, shape `(B,)`, in `[0, K)`.

    Returns:
        The gradient, shape `(B, C, H, W)`.
    """
    check.instance("classifier", classifier, Callable)
    check.tensor("x_t", x_t)
    _check_classifier_size(classifier, x_t, "x_t")
    _check_labels(class_labels, x_t.shape[0], getattr(classifier, "num_classes", None))
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        # log p_phi(y | x_t, t): log-softmax of the logits, picked at y
        logits = classifier(x, t)
        if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(
                f"classifier must return logits of shape ({x.shape[0]}, K), "
                f"got {tuple(logits.shape)}"
            )
        log_p = logits.log_softmax(-1)
        selected = log_p[torch.arange(x.shape[0]), class_labels.to(x.device)]
        return torch.autograd.grad(selected.sum(), x)[0]


# --8<-- [end:log-prob-grad]


# --8<-- [start:cg-model]
def cg_model(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    classifier: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    class_labels: torch.Tensor,
    classifier_scale: float,
    alpha_bar: torch.Tensor,
    prediction_type: str = "epsilon",
    num_classes: int | None = None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    r"""Classifier guidance as a network wrapper (Dhariwal & Nichol 2021, Algorithm 2).

    $$\hat\epsilon(x_t) = \epsilon_\theta(x_t)
      - s\,\sqrt{1 - \bar\alpha_t}\;\nabla_{x_t} \log p_\phi(y \mid x_t)$$

    The wrapper returns the guided prediction in the network's own `prediction_type`, so DDIM
    (the paper's Algorithm 2) and every other sampler of `snippets.sampling` use it unchanged.
    $s = 0$ returns the network's output exactly.

    Args:
        model: `model(x_t, t) -> prediction`, e.g. `lambda x, t: unet(x, t, class_labels=null_labels)`
            for the unconditional branch of a class-conditional network.
        classifier: `classifier(x_t, t) -> logits (B, K)`, e.g. `NoisyDigitClassifier`
            at the model's `sample_size` (checked against `x_t` at every call).
        class_labels: Target classes $y$, shape `(B,)`, in `[0, K)`.
        classifier_scale: $s \ge 0$ (the paper's "gradient scale").
        alpha_bar: $\bar\alpha$ of the diffusion schedule, shape `(T,)`.
        prediction_type: What `model` predicts: `"epsilon"`, `"v_prediction"` or `"sample"`.
        num_classes: If given, the number of classes the labels refer to (e.g. the diffusion
            model's); the classifier's `num_classes` must equal it.

    Returns:
        A callable `guided(x_t, t)` returning a prediction of the shape of `x_t`.
    """
    check.instance("model", model, Callable)
    check.instance("classifier", classifier, Callable)
    check.real("classifier_scale", classifier_scale, ge=0)
    check.tensor("alpha_bar", alpha_bar, ndim=1, ge=0, le=1)
    check_prediction_type(prediction_type)
    k = _check_classifier_classes(classifier, num_classes)
    _check_labels(class_labels, None, k)

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        model_output = model(x, t)
        if classifier_scale == 0:
            return model_output
        t = torch.as_tensor(t, device=x.device).expand(x.shape[0])
        # 1. the network's epsilon, and the gradient of log p_phi(y | x_t) at x_t
        x0_hat, eps = predict_x0_and_eps(model_output, x, t, alpha_bar, prediction_type)
        grad = classifier_log_prob_grad(classifier, x, t, class_labels)
        # 2. Algorithm 2: eps_hat = eps - s sqrt(1 - alpha_bar_t) grad
        a_bar = broadcast_at(alpha_bar, t, x)
        eps_hat = eps - classifier_scale * (1 - a_bar).sqrt() * grad
        if prediction_type == "epsilon":
            return eps_hat
        # 3. the same shift in the network's own parametrisation (Eq. 4 solved for x_0,
        #    v = sqrt(a_bar) eps - sqrt(1 - a_bar) x_0), never dividing x_t by
        #    sqrt(a_bar)
        if prediction_type == "sample":
            return x0_hat + classifier_scale * (1 - a_bar) / a_bar.sqrt() * grad
        return model_output - classifier_scale * ((1 - a_bar) / a_bar).sqrt() * grad

    return guided


# --8<-- [end:cg-model]


# --8<-- [start:cg-ddpm]
@torch.no_grad()
def cg_ddpm_sample_progressive(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    classifier: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    class_labels: torch.Tensor,
    x_T: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    *,
    classifier_scale: float = 1.0,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    clip_sample: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    r"""DDPM sampling with classifier guidance (Dhariwal & Nichol 2021, Algorithm 1).

    $$x_{t-1} \sim \mathcal{N}\big(\mu + s\,\Sigma\,\nabla_{x_t} \log p_\phi(y \mid x_t),\
    \Sigma\big)$$

    with $\mu, \Sigma$ the mean and variance of `snippets.sampling.ddpm_sample`'s step (the
    posterior $\tilde\mu_t(x_t, \hat x_0)$, $\tilde\beta_t$). $s = 0$ is exactly `ddpm_sample`
    with the same generator.

    Args:
        model: `model(x_t, t) -> prediction`.
        classifier: `classifier(x_t, t) -> logits (B, K)`; its `image_size`, if it has
            one, must be `x_T`'s.
        class_labels: Target classes $y$, shape `(B,)`, in `[0, K)`.
        x_T: Starting noise, shape `(B, C, H, W)`.
        schedule: The training noise schedule.
        num_inference_steps: $N$ in `[1, T]` (leading spacing, as `ddpm_sample`).
        classifier_scale: $s \ge 0$.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        generator: Random number generator for the per-step noise.
        clip_sample: Clip $\hat x_0$ to `[-1, 1]` (as `ddpm_sample` by default).

    Yields:
        `(t, x_prev, x0_hat)` after each step.
    """
    check_sampler_args(model, x_T, schedule, prediction_type, generator)
    check.instance("classifier", classifier, Callable)
    _check_classifier_size(classifier, x_T, "x_T")
    _check_labels(class_labels, x_T.shape[0], getattr(classifier, "num_classes", None))
    check.real("classifier_scale", classifier_scale, ge=0)
    check.boolean("clip_sample", clip_sample)
    alpha_bar = schedule.alpha_bar
    timesteps = inference_timesteps(
        schedule.num_train_timesteps, num_inference_steps, "leading"
    )
    prev_timesteps = torch.cat([timesteps[1:], timesteps.new_tensor([-1])])
    x = x_T
    for t, t_prev in zip(timesteps, prev_timesteps):
        t_batch = t.expand(x.shape[0])
        # 1. mu, Sigma <- mu_theta(x_t), Sigma_theta(x_t): the DDPM posterior
        #    (Ho et al. 2020, Eq. 7)
        model_output = model(x, t_batch)
        x0_hat, _ = predict_x0_and_eps(model_output, x, t, alpha_bar, prediction_type)
        if clip_sample:
            x0_hat = x0_hat.clamp(-1, 1)
        mean, variance = q_posterior_mean_variance(x0_hat, x, t, alpha_bar, t_prev)
        # 2. Algorithm 1: shift the mean by s Sigma grad log p_phi(y | x_t)
        if classifier_scale != 0:
            grad = classifier_log_prob_grad(classifier, x, t_batch, class_labels)
            mean = mean + classifier_scale * variance * grad
        # 3. x_{t-1} ~ N(mean, Sigma); no noise on the last step
        if t > 0:
            z = gaussian_noise(x, generator)
            x = mean + variance.clamp(min=1e-20) ** 0.5 * z
        else:
            x = mean
        yield t, x, x0_hat


# --8<-- [end:cg-ddpm]


def cg_ddpm_sample(*args, **kwargs) -> torch.Tensor:
    """Run `cg_ddpm_sample_progressive` to the end (same arguments); return $x_0$ `(B, C, H, W)`."""
    for _, x, _ in cg_ddpm_sample_progressive(*args, **kwargs):
        pass
    return x


def _check_classifier_size(classifier, x: torch.Tensor, name: str) -> None:
    """Refuse a classifier whose `image_size` is not the side of the images `x`."""
    size = getattr(classifier, "image_size", None)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        raise ValueError(
            f"classifier reads {size}x{size} images (image_size={size}) but {name} has "
            f"shape {tuple(x.shape)}: use a classifier trained at the diffusion model's "
            f"size (train_noisy_classifier(..., image_size={x.shape[-1]}))"
        )


def _check_classifier_classes(classifier, num_classes: int | None) -> int | None:
    k = getattr(classifier, "num_classes", None)
    if num_classes is not None:
        check.integer("num_classes", num_classes, ge=1)
        if k is not None and k != num_classes:
            raise ValueError(
                f"classifier has num_classes={k} but the labels refer to "
                f"num_classes={num_classes}: use a classifier trained on the same classes"
            )
        return num_classes
    return k


def _check_labels(class_labels, batch: int | None, num_classes: int | None) -> None:
    check.tensor("class_labels", class_labels, dtype="int")
    if class_labels.ndim != 1 or (batch is not None and class_labels.shape[0] != batch):
        raise ValueError(
            f"class_labels must have shape ({'B' if batch is None else batch},), "
            f"got {tuple(class_labels.shape)}"
        )
    if class_labels.numel() and (
        class_labels.min() < 0
        or (num_classes is not None and class_labels.max() >= num_classes)
    ):
        raise ValueError(
            f"class_labels must be in [0, num_classes={num_classes}), got values in "
            f"[{int(class_labels.min())}, {int(class_labels.max())}]"
        )


def main(argv: list[str] | None = None) -> int:
    """`python -m snippets.classifier_guidance --steps 3000 --out DIR`: train and save.

    `--image-size 8` trains on the native 8x8 digits, for a diffusion model of that size.
    """
    import sys

    from snippets.__main__ import _Parser  # one-line errors on stderr, exit code 2

    parser = _Parser(
        prog="python -m snippets.classifier_guidance",
        description="Train the noise-aware digit classifier and save it atomically.",
    )
    parser.add_argument("--steps", default="3000", help="optimizer steps (>= 1)")
    parser.add_argument("--batch-size", default="64", help="images per step (>= 1)")
    parser.add_argument("--seed", default="0", help="seed (>= 0)")
    parser.add_argument("--schedule", default="cosine", help="noise schedule name")
    parser.add_argument("--num-train-timesteps", default="1000", help="T (>= 1)")
    parser.add_argument(
        "--image-size", default="16", help="digit side: 16, or 8 (a multiple of 4)"
    )
    parser.add_argument("--out", default=str(NOISY_CLASSIFIER_DIR), help="folder")
    args = parser.parse_args(argv)
    try:
        values = {}
        names = ("steps", "batch_size", "seed", "num_train_timesteps", "image_size")
        for name in names:
            text = getattr(args, name)
            try:
                values[name] = int(text)
            except ValueError:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be an integer, got {text!r}"
                ) from None
        schedule = NoiseSchedule.from_name(
            args.schedule, num_train_timesteps=values["num_train_timesteps"]
        )
        classifier = train_noisy_classifier(
            schedule,
            values["steps"],
            values["batch_size"],
            seed=values["seed"],
            image_size=values["image_size"],
        )
    except (TypeError, ValueError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    training = {
        "steps": values["steps"],
        "batch_size": values["batch_size"],
        "learning_rate": 1e-3,
        "seed": values["seed"],
        "schedule": args.schedule,
        "num_train_timesteps": values["num_train_timesteps"],
        "image_size": values["image_size"],
    }
    path = save_noisy_classifier(classifier, args.out, training)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
