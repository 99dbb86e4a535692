r"""Data: the images a diffusion model learns from, as tensors in $[-1, 1]$.

The default is offline and real: scikit-learn's bundled handwritten digits (1,797 scans of
8x8 pixels, Alpaydin & Kaynak 1998), scaled to $[-1, 1]$ and resized to 16x16, with a fixed seeded
train/test split. scikit-learn's two bundled sample photos serve the forward-noising figures.
Two general loaders mirror Unit 1 of the Hugging Face Diffusion Models Course, which trains on
`huggan/smithsonian_butterflies_subset`: a folder of images, and a Hugging Face `datasets`
dataset by name or local path. Every loader returns a float tensor `(N, C, H, W)` in `[-1, 1]`;
`save_grid` writes a batch back to a PNG.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


# --8<-- [start:load-digits]
def load_digits(
    split: str = "train",
    image_size: int = 16,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""scikit-learn's bundled 8x8 handwritten digits, as images in $[-1, 1]$.

    The 1,797 images (pixel values 0..16) are scaled to $x = 2\,p/16 - 1$, resized with bilinear
    interpolation, and split once by a seeded permutation, so every caller sees the same split.

    Args:
        split: `"train"`, `"test"` or `"all"`.
        image_size: Output side length in pixels (16 by default; 8 keeps the originals).
        test_fraction: Share of the images held out as the test split, in `(0, 1)`.
        seed: Seed of the permutation that makes the split.

    Returns:
        `(images, labels)`: images of shape `(N, 1, image_size, image_size)` in `[-1, 1]`,
        integer labels of shape `(N,)` in `[0, 10)`.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size}")
    digits = sklearn_digits()
    # 1. pixels 0..16 -> [-1, 1], shape (N, 1, 8, 8)
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0
    y = torch.tensor(digits.target, dtype=torch.long)
    # 2. resize (bilinear); values stay in [-1, 1] because bilinear weights are convex
    if image_size != x.shape[-1]:
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bilinear", align_corners=False
        )
    # 3. a fixed, seeded split
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = round(test_fraction * len(x))
    index = {
        "test": order[:n_test],
        "train": order[n_test:],
        "all": torch.arange(len(x)),
    }[split]
    return x[index].contiguous(), y[index].contiguous()


# --8<-- [end:load-digits]


def load_sample_photos(image_size: int = 64) -> torch.Tensor:
    r"""scikit-learn's two bundled photos (a Chinese temple and a flower), in $[-1, 1]$.

    Each 427x640 photo is center-cropped to a square and resized (bilinear, antialiased); used for
    the forward-noising figures.

    Args:
        image_size: Output side length in pixels.

    Returns:
        Images of shape `(2, 3, image_size, image_size)` in `[-1, 1]`.
    """
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(image) for image in load_sample_images().images]
    return torch.stack(
        [_pil_to_tensor(_resize_center_crop(p, image_size), channels=3) for p in photos]
    )


# --8<-- [start:image-folder]
def load_image_folder(
    path: str | Path,
    image_size: int = 32,
    channels: int = 3,
) -> torch.Tensor:
    r"""Every image in a folder (recursively), resized, center-cropped and scaled to $[-1, 1]$.

    The course's preprocessing is `Resize(image_size)` then a crop to a square; the random
    horizontal flip it adds is applied per batch during training (`TrainConfig.random_flip`), so
    this function stays deterministic.

    Args:
        path: A folder holding `.png`, `.jpg`, ... files (sub-folders are searched too).
        image_size: Output side length in pixels.
        channels: 3 for RGB, 1 for grayscale.

    Returns:
        Images of shape `(N, channels, image_size, image_size)` in `[-1, 1]`, sorted by file path.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"image folder {path} does not exist or is not a directory"
        )
    files = sorted(
        p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        raise ValueError(
            f"no image files ({', '.join(IMAGE_SUFFIXES)}) found in {path}"
        )
    images = []
    for file in files:
        try:
            with warnings.catch_warnings():  # a decompression bomb is an error
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(file) as image:
                    image = _resize_center_crop(
                        _high_bit_depth_to_float(image), image_size
                    )
                    images.append(_pil_to_tensor(image, channels))
        except (
            OSError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
        ) as err:
            raise ValueError(f"cannot read image {file}: {err}") from None
    return torch.stack(images)


# --8<-- [end:image-folder]


# --8<-- [start:hf-dataset]
def load_hf_dataset(
    name_or_path: str | Path,
    image_size: int = 32,
    channels: int = 3,
    image_column: str = "image",
    label_column: str | None = None,
    split: str = "train",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""A Hugging Face `datasets` dataset of images, e.g. the course's butterflies.

    A path that exists is read with `datasets.load_from_disk` (what `Dataset.save_to_disk`
    wrote); anything else is passed to `datasets.load_dataset`, which may download from the Hub,
    e.g. `"huggan/smithsonian_butterflies_subset"`; a failure (offline, no such dataset) is a
    one-line `ValueError`.

    Args:
        name_or_path: A local dataset folder or a Hub dataset name.
        image_size: Output side length in pixels (resize + center crop).
        channels: 3 for RGB, 1 for grayscale.
        image_column: Column holding PIL images (or arrays).
        label_column: Optional column of integer class labels.
        split: Split to use when the dataset has several.

    Returns:
        `(images, labels)`: images `(N, channels, image_size, image_size)` in `[-1, 1]`;
        labels `(N,)` or `None` when `label_column` is `None`.
    """
    import datasets

    try:
        if Path(name_or_path).exists():
            dataset = datasets.load_from_disk(str(name_or_path))
        else:
            dataset = datasets.load_dataset(str(name_or_path))
    except Exception as err:  # offline, unknown name, corrupt folder: one clear line
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise ValueError(
            f"cannot load dataset {str(name_or_path)!r}: {type(err).__name__}: {reason}"
        ) from None
    if isinstance(dataset, datasets.DatasetDict):
        if split not in dataset:
            raise ValueError(
                f"dataset {name_or_path} has splits {list(dataset)}, not {split!r}"
            )
        dataset = dataset[split]
    for column in (image_column, label_column):
        if column is not None and column not in dataset.column_names:
            raise ValueError(
                f"dataset {name_or_path} has no column {column!r}; columns: "
                f"{dataset.column_names}"
            )
    images = []
    for item in dataset[image_column]:
        image = (
            _high_bit_depth_to_float(item)
            if isinstance(item, Image.Image)
            else Image.fromarray(np.asarray(item, dtype=np.uint8))
        )
        images.append(_pil_to_tensor(_resize_center_crop(image, image_size), channels))
    labels = (
        None
        if label_column is None
        else torch.tensor(dataset[label_column], dtype=torch.long)
    )
    return torch.stack(images), labels


# --8<-- [end:hf-dataset]


def load_data(
    data: str,
    image_size: int | None = None,
    channels: int | None = None,
    image_column: str = "image",
    label_column: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Resolve the command line's `--data`: `"digits"`, a local folder, or `hf:NAME`.

    Offline by default: only `hf:NAME` asks the Hugging Face Hub for anything.

    Args:
        data: `"digits"` (train split), a folder of image files, a folder written by
            `Dataset.save_to_disk`, or `"hf:NAME"` for a Hub dataset (downloads).
        image_size: Side length (default 16 for digits, 32 otherwise).
        channels: Channels, 1 or 3 (default 1 for digits, 3 otherwise).
        image_column: Image column of a `datasets` dataset.
        label_column: Label column of a `datasets` dataset (`None`: unlabelled).

    Returns:
        `(images, labels)` as the loaders above return them (`labels` may be `None`).

    Raises:
        ValueError: For a name that is none of these (e.g. a typo), or bad sizes.
    """
    if not isinstance(data, str) or not data:
        raise ValueError(f"data must be a non-empty string, got {data!r}")
    for name, value, allowed in (
        ("image_size", image_size, range(1, 1025)),
        ("channels", channels, (1, 3)),
    ):
        bad_type = isinstance(value, bool) or not isinstance(value, int)
        if value is not None and (bad_type or value not in allowed):
            raise ValueError(f"{name} must be None or in {allowed}, got {value!r}")
    if data == "digits":
        if channels not in (None, 1):
            raise ValueError(
                f"the digits are grayscale: channels must be 1, got {channels}"
            )
        return load_digits("train", image_size=16 if image_size is None else image_size)
    size = 32 if image_size is None else image_size
    ch = 3 if channels is None else channels
    if data.startswith("hf:"):
        return load_hf_dataset(data[3:], size, ch, image_column, label_column)
    path = Path(data)
    if not path.is_dir():
        raise ValueError(
            f"data {data!r} is not 'digits' nor an existing folder (of images, or written by "
            "save_to_disk); for a Hugging Face Hub dataset write hf:NAME"
        )
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        return load_hf_dataset(path, size, ch, image_column, label_column)
    return load_image_folder(path, size, ch), None


# --8<-- [start:save-grid]
def save_grid(
    images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1
) -> Path:
    r"""Tile a batch of images in $[-1, 1]$ into one PNG (values outside are clipped for display).

    The PNG is written under a temporary name and renamed, so a failure (a full disk) never
    leaves a truncated file in place of a good one.

    Args:
        images: Shape `(B, C, H, W)` with `B >= 1` and `C` 1 or 3, finite.
        path: Output `.png` path (parent folders are created).
        nrow: Images per row (default: about $\sqrt{B}$).
        scale: Integer upscaling (nearest) so that 16x16 digits are visible.

    Returns:
        The path written.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a tensor (B, C, H, W), got {images!r:.80}")
    if images.shape[0] == 0 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"images must have shape (B>=1, 1 or 3, H, W), got {tuple(images.shape)}"
        )
    if not torch.isfinite(images).all():
        raise ValueError("images hold NaN or infinity: refusing to draw them as black")
    for name, value in (("nrow", 1 if nrow is None else nrow), ("scale", scale)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    path = Path(path)
    if path.suffix.lower() != ".png" or path.is_dir():
        raise ValueError(f"path must name a .png file, got {str(path)!r}")
    b, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(b))
    ncol = math.ceil(b / nrow)
    pad = 1
    grid = torch.ones(c, ncol * (h + pad) + pad, nrow * (w + pad) + pad)
    for i, image in enumerate(images.detach().float().cpu()):
        row, col = divmod(i, nrow)
        grid[
            :,
            pad + row * (h + pad) : pad + row * (h + pad) + h,
            pad + col * (w + pad) : pad + col * (w + pad) + w,
        ] = image
    # [-1, 1] -> [0, 255]
    array = (
        ((grid.clamp(-1, 1) + 1) * 127.5)
        .round()
        .to(torch.uint8)
        .permute(1, 2, 0)
        .numpy()
    )
    image = Image.fromarray(array[..., 0] if c == 1 else array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:  # write aside, then an atomic rename over the old file
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# --8<-- [end:save-grid]


def _resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize the short side to `size` (bicubic) and crop the center square."""
    if size < 1:
        raise ValueError(f"image_size must be a positive integer, got {size}")
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize(
        (max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC
    )
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def _high_bit_depth_to_float(image: Image.Image) -> Image.Image:
    """A 16-bit greyscale image (mode `I;16*`/`I`) -> mode `F` on the 8-bit scale `[0, 255]`.

    PIL's `convert("L")` clips such values at 255 instead of rescaling them.
    """
    if image.mode.startswith("I;16") or image.mode == "I":
        array = np.asarray(image, dtype=np.float64)
        full = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        return Image.fromarray((array * (255.0 / full)).astype(np.float32))
    return image


def _pil_to_tensor(image: Image.Image, channels: int) -> torch.Tensor:
    """A PIL image -> float tensor `(C, H, W)` in `[-1, 1]`."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if image.mode == "F":  # greyscale on the 8-bit scale, not rounded (16-bit sources)
        grey = np.clip(np.asarray(image, dtype=np.float32), 0.0, 255.0)
        array = np.repeat(grey[..., None], channels, axis=-1)
        return torch.from_numpy(array.copy()).permute(2, 0, 1) / 127.5 - 1.0
    array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
    tensor = (
        torch.from_numpy(array.copy())
        .reshape(image.size[1], image.size[0], channels)
        .permute(2, 0, 1)
    )
    return tensor / 127.5 - 1.0
