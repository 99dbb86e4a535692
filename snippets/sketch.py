r"""Hand-drawn-style digit sketches: pen strokes rasterised into 16x16 images, the guides of SDEdit.

SDEdit (Meng et al. 2022) turns a rough guide, a "stroke painting", into a realistic image. For the
digits model a guide is a few polylines per digit (`DIGIT_STROKES`, coordinates in the unit square,
$x$ to the right, $y$ down), drawn with a round pen of constant width by `rasterise_strokes`:
a pixel's ink is 1 within half a pen width of a stroke and falls linearly to 0 over one pixel, so
the sketches are clean, uniform and unlike the blurry, varying strokes of the training digits.
`sketch_digits` draws a batch of them, each stroke jittered by a small random affine map.
"""

from __future__ import annotations

import math

import torch

from snippets import check

__all__ = ["DIGIT_STROKES", "rasterise_strokes", "sketch_digits"]


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 16) -> list:
    """A closed polyline around an ellipse."""
    return [
        (
            cx + rx * math.sin(2 * math.pi * k / n),
            cy - ry * math.cos(2 * math.pi * k / n),
        )
        for k in range(n + 1)
    ]


# One list of strokes (polylines of (x, y) points in [0, 1]^2) per digit 0-9.
DIGIT_STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_ellipse(0.5, 0.5, 0.24, 0.36)],
    1: [[(0.36, 0.28), (0.52, 0.12), (0.52, 0.88)]],
    2: [
        [(0.28, 0.3), (0.36, 0.16), (0.5, 0.12), (0.65, 0.16), (0.72, 0.3)]
        + [(0.66, 0.46), (0.28, 0.86), (0.76, 0.86)]
    ],
    3: [
        [(0.28, 0.18), (0.5, 0.12), (0.7, 0.2), (0.7, 0.38), (0.48, 0.5)]
        + [(0.72, 0.62), (0.72, 0.8), (0.5, 0.88), (0.28, 0.82)]
    ],
    4: [[(0.62, 0.88), (0.62, 0.12), (0.24, 0.62), (0.78, 0.62)]],
    5: [
        [(0.72, 0.12), (0.34, 0.12), (0.3, 0.46), (0.55, 0.4), (0.72, 0.55)]
        + [(0.7, 0.78), (0.5, 0.88), (0.28, 0.82)]
    ],
    6: [
        [(0.66, 0.12), (0.42, 0.3), (0.3, 0.56), (0.32, 0.8), (0.5, 0.88)]
        + [(0.68, 0.78), (0.7, 0.6), (0.5, 0.5), (0.32, 0.6)]
    ],
    7: [[(0.24, 0.12), (0.76, 0.12), (0.44, 0.88)]],
    8: [_ellipse(0.5, 0.3, 0.18, 0.18), _ellipse(0.5, 0.68, 0.22, 0.2)],
    9: [_ellipse(0.5, 0.32, 0.2, 0.2), [(0.7, 0.32), (0.64, 0.88)]],
}


def rasterise_strokes(
    strokes: list[torch.Tensor], size: int = 16, pen_width: float = 2.2
) -> torch.Tensor:
    r"""Draw polylines with a round pen into one image in $[-1, 1]$ (background $-1$, ink $+1$).

    Args:
        strokes: Polylines, each a float tensor of shape `(P, 2)` ($P \ge 2$ points, `(x, y)` in
            the unit square).
        size: Image side in pixels.
        pen_width: Pen width in pixels.

    Returns:
        The image, shape `(1, size, size)`.

    Raises:
        ValueError: For an empty `strokes`, a stroke of the wrong shape, or a bad `size` or
            `pen_width`.
    """
    check.instance("strokes", strokes, (list, tuple))
    if len(strokes) == 0:
        raise ValueError("strokes must hold at least one polyline, got none")
    for stroke in strokes:
        check.tensor("strokes", stroke, shape=(None, 2))
        if stroke.shape[0] < 2:
            raise ValueError(
                f"strokes must have >= 2 points each, got {stroke.shape[0]}"
            )
    check.integer("size", size, ge=2)
    check.real("pen_width", pen_width, gt=0)
    # pixel centres in unit coordinates, shape (size * size, 2)
    centres = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), -1).reshape(
        -1, 2
    )
    distance = torch.full((size * size,), math.inf, dtype=torch.float64)
    for stroke in strokes:
        a, b = stroke[:-1].double(), stroke[1:].double()  # segments a -> b
        ab = b - a
        # 1. the closest point of each segment to each pixel centre
        u = ((grid[:, None] - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12)
        closest = a + u.clamp(0, 1)[..., None] * ab
        distance = torch.minimum(
            distance, (grid[:, None] - closest).norm(dim=-1).amin(1)
        )
    # 2. ink 1 within half a pen width, falling linearly to 0 over one pixel
    ink = (0.5 + pen_width / 2 - distance * size).clamp(0, 1)
    return (2 * ink - 1).reshape(1, size, size).float()


def sketch_digits(
    labels: torch.Tensor,
    size: int = 16,
    pen_width: float = 2.2,
    jitter: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Sketches of the digits `labels`, each drawn with `rasterise_strokes`.

    With `jitter` $> 0$ every sketch's strokes go through their own random affine map about the
    centre: rotation by up to $\pm 10\,\mathrm{jitter}$ degrees, scaling by $1 \pm 0.1\,\mathrm{jitter}$
    per axis, a shift of up to $\pm 0.05\,\mathrm{jitter}$, and each point moves by up to
    $\pm 0.02\,\mathrm{jitter}$.

    Args:
        labels: Digits to draw, integer tensor of shape `(B,)`, values in `[0, 10)`.
        size: Image side in pixels.
        pen_width: Pen width in pixels.
        jitter: Amount of random deformation, in `[0, 1]`; 0 draws every digit the same way.
        generator: Random number generator for the jitter.

    Returns:
        Images of shape `(B, 1, size, size)` in `[-1, 1]`.
    """
    check.tensor("labels", labels, dtype="int", ndim=1, ge=0, le=9)
    check.real("jitter", jitter, ge=0, le=1)
    check.generator("generator", generator)
    images = []
    for label in labels.tolist():
        u = torch.rand(6, generator=generator, dtype=torch.float64) * 2 - 1
        angle = math.radians(10 * jitter * u[0].item())
        sx, sy = 1 + 0.1 * jitter * u[1].item(), 1 + 0.1 * jitter * u[2].item()
        shift = 0.05 * jitter * u[3:5]
        rotation = torch.tensor(
            [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
            dtype=torch.float64,
        ) * torch.tensor([sx, sy], dtype=torch.float64)
        strokes = []
        for polyline in DIGIT_STROKES[label]:
            points = torch.tensor(polyline, dtype=torch.float64)
            wobble = torch.rand(points.shape, generator=generator, dtype=torch.float64)
            points = points + 0.02 * jitter * (2 * wobble - 1)
            strokes.append((points - 0.5) @ rotation.T + 0.5 + shift)
        images.append(rasterise_strokes(strokes, size, pen_width))
    return torch.stack(images)
