"""Checks every explanation method applies to its input tensor and run dtype."""
from __future__ import annotations

from typing import Any, Optional

import torch

from ..errors import InputError

Tensor = torch.Tensor


def check_input(x: Any) -> None:
    """Refuse anything but a finite float tensor shaped (N, C, *spatial)."""
    if not isinstance(x, Tensor):
        raise InputError(f"x must be a torch.Tensor shaped (N, C, *spatial), not {type(x).__name__}.")
    if x.dim() < 2 or x.dim() > 5:
        raise InputError(f"x must be shaped (N, C, *spatial) with 0-3 spatial dimensions, got shape "
                         f"{tuple(x.shape)}; add the batch and channel axes, e.g. x[None, None].")
    if not x.is_floating_point():
        raise InputError(f"x must be a floating-point tensor, not {x.dtype}; convert it with x.float().")
    if x.numel() == 0:
        raise InputError("x is empty; pass at least one sample.")
    if not torch.isfinite(x).all():
        raise InputError("x contains NaN or infinite values; clean or mask them before explaining.")


def check_dtype(dtype: Optional[torch.dtype]) -> torch.dtype:
    """float32 unless another floating dtype is asked for."""
    dt = dtype or torch.float32
    if dt not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise InputError(f"dtype must be a floating-point torch dtype, not {dt}; use torch.float32 or float64.")
    return dt
