"""Checks of the methods' own options: each bad value is one ``InputError`` naming the option and the fix."""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InputError

Tensor = torch.Tensor
_INTEGERS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value: Any, hint: str = "") -> int:
    """An integer ≥ 1 (numpy integers accepted; bools, floats and strings refused)."""
    if not _is_int(value) or value < 1:
        raise InputError(f"{name} must be a positive integer, not {value!r}{'; ' + hint if hint else ''}.")
    return int(value)


def non_negative(name: str, value: Any, hint: str = "") -> float:
    """A finite real number ≥ 0."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and float(value) >= 0
    if not ok:
        raise InputError(f"{name} must be a finite number >= 0, not {value!r}{'; ' + hint if hint else ''}.")
    return float(value)


def flag(name: str, value: Any) -> bool:
    """``True`` or ``False`` (numpy bools accepted), nothing that merely looks truthy."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, not {value!r}.")
    return bool(value)


def seed(value: Any) -> int | None:
    """``None`` (fresh noise) or an integer in [0, 2**32)."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value < 2 ** 32:
        raise InputError(f"seed must be None (fresh noise) or an integer in [0, 2**32), not {value!r}.")
    return int(value)


def choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """One of ``choices`` (exact spelling)."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"Unknown {name} {value!r}; use one of {', '.join(choices)}.")
    return value


def baseline_tensor(baseline: Any, x: Tensor) -> Tensor:
    """The integrated-gradients baseline shaped like ``x``: None (zeros), a finite number, or finite real values
    shaped like ``x``, like one sample (C, *spatial) or (1, C, *spatial)."""
    fix = (f"pass None (zeros), a finite number, or a real tensor shaped like x {tuple(x.shape)} or like one "
           f"sample {tuple(x.shape[1:])}")
    if baseline is None:
        return torch.zeros_like(x)
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        if not math.isfinite(baseline):
            raise InputError(f"baseline must be finite, not {baseline!r}; {fix}.")
        return torch.full_like(x, float(baseline))
    try:
        b = torch.as_tensor(baseline)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"baseline {baseline!r} is not a number or an array; {fix}.") from exc
    if not (b.is_floating_point() or b.dtype in _INTEGERS):
        raise InputError(f"baseline must hold real numbers, not {b.dtype}; {fix}.")
    if tuple(b.shape) not in (tuple(x.shape), tuple(x.shape[1:]), (1, *x.shape[1:])):
        raise InputError(f"baseline of shape {tuple(b.shape)} does not fit the input {tuple(x.shape)}; {fix}.")
    b = b.to(device=x.device, dtype=x.dtype)
    if not torch.isfinite(b).all():
        raise InputError(f"baseline contains NaN or infinite values; {fix}.")
    return b.expand_as(x).clone()


def check_finite(method: str, relevance: Tensor) -> None:
    """A map with NaN or ±inf is an error, never a result."""
    bad = int((~torch.isfinite(relevance)).sum())
    if bad:
        raise InputError(f"The {method} map has {bad} non-finite value(s) (NaN or inf): the model's gradient is not "
                         f"finite at this input (e.g. a square root or logarithm at 0, or an overflow); nothing was "
                         f"returned. Try dtype=torch.float64, another method, or a layer/baseline where the model is "
                         f"differentiable.")
