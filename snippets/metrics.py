r"""Digit FID: how close generated digits are to real ones, measured in seconds on a CPU.

FID (Heusel et al. 2017) compares two sets of images through the features of a classifier: fit a
Gaussian $\mathcal{N}(\mu, \Sigma)$ to each set's features and take the Fréchet distance

$$d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\!\big(\Sigma_1 + \Sigma_2
        - 2\,(\Sigma_1^{1/2}\,\Sigma_2\,\Sigma_1^{1/2})^{1/2}\big).$$

The usual Inception network knows nothing of 16x16 digits and would have to be downloaded, so
"digit FID" uses a small CNN trained here, deterministically and in seconds, on the digits' train
split; its 64 penultimate activations are the features. Generated samples are compared with the
held-out test split. Two more numbers read the classifier's softmax: *confidence* (mean top
probability: does each sample look like some digit?) and *class entropy* (entropy of the histogram
of predicted classes, $\log 10 \approx 2.30$ when all ten digits are equally frequent).

FID is biased upwards for small sets, so every figure comes with its *floor*: the FID between
as many real train images and the test split.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snippets import check
from snippets.data import load_digits

CLASSIFIER_DIR = (
    Path(__file__).resolve().parent.parent / "checkpoints" / "digit_classifier"
)
CLASSIFIER_FILE = "classifier.safetensors"


# --8<-- [start:digit-classifier]
class DigitClassifier(nn.Module):
    r"""A small CNN for 16x16 digits: two conv blocks, a 64-d feature layer, 10 logits.

    `features(x)` returns the penultimate activations used by `frechet_distance`.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)  # 16x16 -> pool -> 8x8
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)  # 8x8 -> pool -> 4x4
        self.fc = nn.Linear(64 * 4 * 4, 64)
        self.head = nn.Linear(64, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, shape `(B, 64)`, of images `(B, 1, 16, 16)` in `[-1, 1]`."""
        check.tensor("x", x, shape=(None, 1, 16, 16))
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, shape `(B, 10)`."""
        return self.head(self.features(x))


# --8<-- [end:digit-classifier]


# --8<-- [start:train-classifier]
def train_classifier(
    epochs: int = 15, batch_size: int = 64, seed: int = 0
) -> DigitClassifier:
    r"""Train `DigitClassifier` on the digits' train split, deterministically (a few seconds on a CPU).

    Adam at $10^{-3}$ on random shifts of up to one pixel (so the features do not hinge on exact
    pixel positions), single-threaded so that the result does not depend on the thread count.

    Args:
        epochs: Passes over the train split.
        batch_size: Images per step.
        seed: Seed of the initialisation, the shuffling and the shifts.

    Returns:
        The trained classifier in eval mode.
    """
    check.integer("epochs", epochs, ge=1)
    check.integer("batch_size", batch_size, ge=1)
    check.integer("seed", seed, ge=0)
    x, y = load_digits("train")
    generator = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(), torch.enable_grad():
            torch.manual_seed(seed)
            model = DigitClassifier()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            for _ in range(epochs):
                order = torch.randperm(len(x), generator=generator)
                for i in range(0, len(x), batch_size):
                    index = order[i : i + batch_size]
                    # random shifts of -1, 0 or +1 pixel (torch.roll wraps around; the
                    # borders are blank)
                    dx, dy = torch.randint(-1, 2, (2,), generator=generator).tolist()
                    batch = torch.roll(x[index], shifts=(dy, dx), dims=(2, 3))
                    loss = F.cross_entropy(model(batch), y[index])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


# --8<-- [end:train-classifier]


def load_classifier(
    directory: str | Path | None = None, retrain: bool = False
) -> DigitClassifier:
    """The cached digit classifier; trained and cached (safetensors) on first use.

    Args:
        directory: Cache folder (default `checkpoints/digit_classifier/` of the repository).
        retrain: Train again and overwrite the cache.

    Returns:
        The classifier in eval mode.
    """
    from snippets.checkpoint import load_state_dict_strict, load_tensors

    if directory is not None:
        check.instance("directory", directory, (str, Path))
    check.boolean("retrain", retrain)
    path = Path(directory or CLASSIFIER_DIR) / CLASSIFIER_FILE
    if retrain or not path.is_file():
        from safetensors.torch import save_file

        model = train_classifier()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp)
        tmp.replace(path)
        return model
    model = DigitClassifier()
    load_state_dict_strict(model, load_tensors(path), path)
    return model.eval()


# --8<-- [start:frechet-distance]
def frechet_distance(features_1: np.ndarray, features_2: np.ndarray) -> float:
    r"""Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, Eq. 6).

    The matrix square root is taken of the symmetric $\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}$,
    whose trace equals that of $(\Sigma_1\Sigma_2)^{1/2}$, by eigen-decomposition in float64: no
    complex round-off to discard.

    Args:
        features_1: Features, shape `(N1, D)`.
        features_2: Features, shape `(N2, D)`.

    Returns:
        $d^2 \ge 0$.
    """
    f1, f2 = np.asarray(features_1, np.float64), np.asarray(features_2, np.float64)
    check.tensor("features_1", torch.from_numpy(f1))
    check.tensor("features_2", torch.from_numpy(f2))
    if (
        f1.ndim != 2
        or f2.ndim != 2
        or f1.shape[1] != f2.shape[1]
        or min(len(f1), len(f2)) < 2
    ):
        raise ValueError(
            "features must be (N, D) arrays with the same D and N >= 2, got "
            f"{f1.shape} and {f2.shape}"
        )
    mu1, mu2 = f1.mean(0), f2.mean(0)
    sigma1, sigma2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    # Sigma_1^{1/2} by eigen-decomposition (clip tiny negative eigenvalues from
    # round-off)
    w, v = np.linalg.eigh(sigma1)
    sqrt1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    # tr (Sigma_1^{1/2} Sigma_2 Sigma_1^{1/2})^{1/2} = sum of sqrt of its eigenvalues
    m = sqrt1 @ sigma2 @ sqrt1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    d2 = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean
    return float(max(d2, 0.0))


# --8<-- [end:frechet-distance]


# --8<-- [start:digit-metrics]
@torch.no_grad()
def digit_metrics(
    samples: torch.Tensor,
    classifier: DigitClassifier | None = None,
    reference: torch.Tensor | None = None,
) -> dict[str, float]:
    r"""Digit FID, classifier confidence and class entropy of a batch of 16x16 digits.

    Args:
        samples: Images, shape `(N, 1, 16, 16)`, in `[-1, 1]` (clipped to it, as when saved).
        classifier: The feature network (default: `load_classifier()`).
        reference: Real images to compare with (default: the digits' test split).

    Returns:
        `{"fid", "confidence", "class_entropy", "n"}`.
    """
    if samples.ndim != 4 or tuple(samples.shape[1:]) != (1, 16, 16):
        raise ValueError(
            f"samples must have shape (N, 1, 16, 16), got {tuple(samples.shape)}"
        )
    if not torch.isfinite(samples).all():
        raise ValueError("samples contain NaN or infinite values")
    if classifier is not None:
        check.instance("classifier", classifier, DigitClassifier)
    if reference is not None:
        check.tensor("reference", reference, shape=(None, 1, 16, 16))
    classifier = load_classifier() if classifier is None else classifier
    reference = load_digits("test")[0] if reference is None else reference
    x = samples.float().cpu().clamp(-1, 1)
    # 1. penultimate features of both sets, and the classifier's softmax on the samples
    feats, ref_feats = (
        classifier.features(x),
        classifier.features(reference.float().cpu()),
    )
    probs = classifier.head(feats).softmax(-1)
    # 2. Frechet distance, mean top probability, entropy of the predicted-class
    # histogram
    hist = torch.bincount(probs.argmax(-1), minlength=10).double() / len(x)
    entropy = -(hist[hist > 0] * hist[hist > 0].log()).sum().item()
    return {
        "fid": frechet_distance(feats.numpy(), ref_feats.numpy()),
        "confidence": probs.max(-1).values.mean().item(),
        "class_entropy": entropy,
        "n": len(x),
    }


# --8<-- [end:digit-metrics]


def fid_floor(
    n: int, classifier: DigitClassifier | None = None, seed: int = 0
) -> dict[str, float]:
    """The metrics of `n` real train-split digits against the test split: the best a model can do.

    Args:
        n: Number of real images (use the number of samples being judged).
        classifier: The feature network (default: `load_classifier()`).
        seed: Seed of the choice of images (with replacement when `n` exceeds the train split).

    Returns:
        The same keys as `digit_metrics`.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ValueError(
            f"n must be an integer >= 2 (FID needs a covariance), got {n!r}"
        )
    x = load_digits("train")[0]
    generator = torch.Generator().manual_seed(seed)
    if n <= len(x):
        index = torch.randperm(len(x), generator=generator)[:n]
    else:
        index = torch.randint(0, len(x), (n,), generator=generator)
    return digit_metrics(x[index], classifier)


def max_class_entropy() -> float:
    """$\\log 10$, the class entropy of perfectly balanced digits."""
    return math.log(10)
