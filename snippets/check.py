r"""Argument checks: one line per argument, an error that names the argument and its value.

Every public function of `snippets/` checks what it is given where it is given it, so that a
mistake fails at once with a message such as `eta must be a finite number in [0, 1], got nan`
instead of a NaN three functions later or an error from deep inside torch. The checks are written
as one line each, so that the lines a page embeds stay the lines that compute:

```python
check.integer("num_inference_steps", num_inference_steps, ge=1)
check.real("eta", eta, ge=0, le=1)
check.tensor("x0", x0, dtype="float", ndim=4)
```

Bounds use the names of comparisons: `gt` ($>$), `ge` ($\ge$), `lt` ($<$), `le` ($\le$).
A wrong type or dtype raises `ArgumentTypeError`, which is both a `TypeError` and a `ValueError`
(so `except ValueError` still catches every bad argument); a wrong value, shape or range raises
`ValueError`. Nothing is clipped, rounded or converted: a check returns its value unchanged.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch

DTYPE_KINDS = ("float", "int", "bool", "real")
_KIND_NAMES = {
    "float": "a floating-point",
    "int": "an integer",
    "bool": "a bool",
    "real": "a real (integer or floating-point)",
}


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type or dtype (a `TypeError`, and a `ValueError` for callers
    that catch every bad argument with `except ValueError`)."""


def _bounds(
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> str:
    """`in [0, 1]`, `in (0, 1]`, `>= 0`, ... for the bounds that are set ('' for none)."""
    low = f"({gt}" if gt is not None else f"[{ge}" if ge is not None else None
    high = f"{lt})" if lt is not None else f"{le}]" if le is not None else None
    if low and high:
        return f" in {low}, {high}"
    if low:
        return f" {'>' if gt is not None else '>='} {low[1:]}"
    if high:
        return f" {'<' if lt is not None else '<='} {high[:-1]}"
    return ""


def _inside(
    value,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> bool:
    return (
        (gt is None or value > gt)
        and (ge is None or value >= ge)
        and (lt is None or value < lt)
        and (le is None or value <= le)
    )


def integer(
    name: str,
    value: Any,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> int:
    """Check that `value` is an integer (not a bool, not a float such as `10.0`) within bounds.

    Args:
        name: The argument's name, for the message.
        value: A Python or NumPy integer.
        gt: Optional bound: `value > gt`.
        ge: Optional bound: `value >= ge`.
        lt: Optional bound: `value < lt`.
        le: Optional bound: `value <= le`.

    Returns:
        `value`, unchanged.

    Raises:
        ArgumentTypeError: If `value` is not an integer.
        ValueError: If it is out of bounds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"{name} must be an integer{_bounds(gt, ge, lt, le)}, got {value!r}"
        )
    if not _inside(value, gt, ge, lt, le):
        raise ValueError(
            f"{name} must be an integer{_bounds(gt, ge, lt, le)}, got {value}"
        )
    return value


def integers(
    name: str,
    values: Any,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> list[int]:
    """Check that `values` is a list or tuple of integers within bounds (e.g. channel counts).

    Returns:
        The values as a list of Python `int` (so that it survives a JSON round trip).

    Raises:
        ArgumentTypeError: If `values` is not a list or tuple, or an entry is not an integer
            (`32.9` is refused, not truncated to 32).
        ValueError: If an entry is out of bounds.
    """
    if not isinstance(values, (list, tuple)):
        raise ArgumentTypeError(
            f"{name} must be a list or tuple of integers, got {values!r:.80}"
        )
    return [
        int(integer(f"{name}[{i}]", v, gt=gt, ge=ge, lt=lt, le=le))
        for i, v in enumerate(values)
    ]


def real(
    name: str,
    value: Any,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    finite: bool = True,
) -> Any:
    """Check that `value` is a real number (never NaN; finite unless `finite=False`) within bounds.

    Python and NumPy numbers are accepted, and so is a one-element real tensor.

    Args:
        name: The argument's name, for the message.
        value: The number.
        gt: Optional bound: `value > gt`.
        ge: Optional bound: `value >= ge`.
        lt: Optional bound: `value < lt`.
        le: Optional bound: `value <= le`.
        finite: Reject ±inf too (NaN is always rejected).

    Returns:
        `value`, unchanged.

    Raises:
        ArgumentTypeError: If `value` is not a real number.
        ValueError: If it is NaN, infinite (when `finite`) or out of bounds.
    """
    kind = "a finite number" if finite else "a number"
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        number = value.item() if _kind_ok(value.dtype, "real") else None
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        number = None
    if number is None:
        raise ArgumentTypeError(
            f"{name} must be {kind}{_bounds(gt, ge, lt, le)}, got {value!r:.80}"
        )
    if math.isnan(number) or (finite and math.isinf(number)):
        raise ValueError(
            f"{name} must be {kind}{_bounds(gt, ge, lt, le)}, got {number}"
        )
    if not _inside(number, gt, ge, lt, le):
        raise ValueError(
            f"{name} must be {kind}{_bounds(gt, ge, lt, le)}, got {number}"
        )
    return value


def one_of(name: str, value: Any, choices: Sequence[str]) -> Any:
    """Check that `value` is one of `choices` (e.g. a prediction type).

    Raises:
        ValueError: Naming `name`, the value and the choices.
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r:.80}"
        )
    return value


def boolean(name: str, value: Any) -> bool:
    """Check that `value` is a `bool` (not `0`, `1` or a string such as `"false"`).

    Raises:
        ArgumentTypeError: Naming `name` and the value.
    """
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be True or False, got {value!r:.80}")
    return value


def instance(name: str, value: Any, cls: type | tuple[type, ...]) -> Any:
    """Check that `value` is an instance of `cls`.

    Raises:
        ArgumentTypeError: Naming `name`, the expected and the actual type.
    """
    if not isinstance(value, cls):
        expected = " or ".join(
            c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,))
        )
        raise ArgumentTypeError(
            f"{name} must be a {expected}, got {type(value).__name__}"
        )
    return value


def generator(name: str, value: Any) -> Any:
    """Check that `value` is `None` or a `torch.Generator` (not a seed such as `0`).

    Raises:
        ArgumentTypeError: Naming `name` and the type given.
    """
    if value is not None and not isinstance(value, torch.Generator):
        raise ArgumentTypeError(
            f"{name} must be a torch.Generator or None, got {type(value).__name__}"
        )
    return value


def _kind_ok(dtype: torch.dtype, kind: str) -> bool:
    is_int = (
        not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool
    )
    return {
        "float": dtype.is_floating_point,
        "int": is_int,
        "bool": dtype == torch.bool,
        "real": dtype.is_floating_point or is_int,
    }[kind]


def tensor(
    name: str,
    value: Any,
    *,
    dtype: str | torch.dtype | None = "float",
    ndim: int | None = None,
    shape: Sequence[int | None] | None = None,
    finite: bool = True,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> torch.Tensor:
    """Check a tensor's type, dtype kind, shape, finiteness and value range.

    Args:
        name: The argument's name, for the message.
        value: The tensor.
        dtype: `"float"`, `"int"` (no bool), `"bool"`, `"real"` (float or int), an exact
            `torch.dtype` (e.g. the dtype of a layer's weights) or `None` (any).
        ndim: Required number of dimensions.
        shape: Required shape; `None` entries match any size.
        finite: Reject NaN and ±inf (floating tensors only).
        gt: Optional bound every element must satisfy: `> gt`.
        ge: Optional bound: `>= ge`.
        lt: Optional bound: `< lt`.
        le: Optional bound: `<= le`.

    Returns:
        `value`, unchanged.

    Raises:
        ArgumentTypeError: If `value` is not a tensor or has the wrong dtype.
        ValueError: For a wrong shape, a non-finite value or a value out of bounds.
    """
    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(
            f"{name} must be a torch.Tensor, got {type(value).__name__}"
        )
    if isinstance(dtype, torch.dtype):
        if value.dtype != dtype:
            raise ArgumentTypeError(
                f"{name} must be a {dtype} tensor, got dtype {value.dtype}"
            )
    elif dtype is not None and not _kind_ok(value.dtype, dtype):
        raise ArgumentTypeError(
            f"{name} must be {_KIND_NAMES[dtype]} tensor, got dtype {value.dtype}"
        )
    if ndim is not None and value.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions, got shape {tuple(value.shape)}"
        )
    if shape is not None and (
        value.ndim != len(shape)
        or any(s is not None and s != v for s, v in zip(shape, value.shape))
    ):
        wanted = ", ".join("any" if s is None else str(s) for s in shape)
        wanted += "," if len(shape) == 1 else ""
        raise ValueError(f"{name} must have shape ({wanted}), got {tuple(value.shape)}")
    if value.numel() == 0:
        return value
    if finite and value.is_floating_point() and not bool(value.isfinite().all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    if (gt, ge, lt, le) != (None, None, None, None):
        low, high = (float(v) for v in torch.aminmax(value.detach().double()))
        if math.isnan(low) or not (
            _inside(low, gt, ge) and _inside(high, lt=lt, le=le)
        ):
            bounds = _bounds(gt, ge, lt, le)
            raise ValueError(
                f"{name} must {'lie' if bounds.startswith(' in') else 'be'}{bounds}, "
                f"got values from {low:.6g} to {high:.6g}"
            )
    return value


def timesteps(
    name: str, value: Any, batch: int, device: torch.device | None = None
) -> torch.Tensor:
    """Check the timesteps of a batch: one number for all, or a real tensor of shape `(batch,)`.

    Returns:
        The timesteps as a tensor of shape `(batch,)` on `device` (a number is expanded).

    Raises:
        ArgumentTypeError: If `value` is neither a real number nor a real tensor.
        ValueError: If it is NaN or infinite, or a tensor of another shape.
    """
    if not isinstance(value, torch.Tensor):
        real(name, value)
    value = tensor(name, torch.as_tensor(value, device=device), dtype="real")
    value = value.expand(batch) if value.ndim == 0 else value
    if value.shape != (batch,):
        raise ValueError(
            f"{name} must be a number or have shape (B,) = ({batch},), "
            f"got {tuple(value.shape)}"
        )
    return value


def feature_maps(
    name: str, value: Any, channels: int, dtype: torch.dtype
) -> torch.Tensor:
    """Check the input of a network's building block: a `(B, channels, H, W)` tensor of `dtype`.

    Finiteness is left to the network, which checks its own input once.

    Raises:
        ArgumentTypeError: If `value` is not a tensor of `dtype`.
        ValueError: If its shape is not `(B, channels, H, W)`.
    """
    return tensor(
        name, value, dtype=dtype, shape=(None, channels, None, None), finite=False
    )


def same_shape(
    name: str, value: torch.Tensor, other_name: str, other: torch.Tensor
) -> None:
    """Check that `value` has the shape of `other`.

    Raises:
        ValueError: Naming both arguments and their shapes.
    """
    if value.shape != other.shape:
        raise ValueError(
            f"{name} has shape {tuple(value.shape)} but {other_name} has shape "
            f"{tuple(other.shape)}; they must match"
        )
