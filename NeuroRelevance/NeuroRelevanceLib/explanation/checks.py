"""Checks every explanation method applies to its input tensor and run dtype."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..errors import InputError

Tensor = torch.Tensor


def check_input(x: Any) -> None:
    """Refuse anything but a finite float tensor shaped (N, C, *spatial)."""
    if not isinstance(x, Tensor):
        raise InputError(f"x must be a torch.Tensor shaped (N, C, *spatial), not {type(x).__name__}.")
    if x.dim() < 2:
        raise InputError(f"x must be shaped (N, C, *spatial) with 0-3 spatial dimensions, got shape "
                         f"{tuple(x.shape)}; add the batch and channel axes, e.g. x[None, None].")
    if x.dim() > 5:
        raise InputError(f"x must be shaped (N, C, *spatial) with 0-3 spatial dimensions, got {x.dim()} axes "
                         f"{tuple(x.shape)}; remove the extra axes (e.g. x.squeeze(2) for a singleton one).")
    if x.device.type == "meta":
        raise InputError("x is on the 'meta' device: it has a shape but no values; create or load the image on "
                         "'cpu' or 'cuda'.")
    if not x.is_floating_point():
        raise InputError(f"x must be a floating-point tensor, not {x.dtype}; convert it with x.float().")
    if x.numel() == 0:
        raise InputError("x is empty; pass at least one sample.")
    if not torch.isfinite(x).all():
        raise InputError("x contains NaN or infinite values; clean or mask them before explaining.")


def check_dtype(dtype: torch.dtype | None) -> torch.dtype:
    """float32 unless another floating dtype is asked for."""
    dt = dtype or torch.float32
    if dt not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise InputError(f"dtype must be a floating-point torch dtype, not {dt}; use torch.float32 or float64.")
    return dt


def check_model_device(model: Any) -> None:
    """Refuse a model whose weights are on the 'meta' device (a shape-only model: no weights loaded)."""
    tensors = []
    if isinstance(model, torch.nn.Module):
        tensors = [t for _, t in model.named_parameters()] + [t for _, t in model.named_buffers()]
    elif isinstance(model, torch.export.ExportedProgram):
        tensors = [t for t in model.state_dict.values() if isinstance(t, Tensor)]
    if any(t.device.type == "meta" for t in tensors):
        raise InputError("The model's weights are on the 'meta' device (shapes only, no values): load its "
                         "weights first, e.g. model.to_empty(device='cpu') then model.load_state_dict(...).")


def check_rules_mapping(rules: Any) -> None:
    """``rules=`` is a mapping of layer keys to rules (a bare rule name is a common slip)."""
    if rules is None or isinstance(rules, Mapping):
        return
    example = f"rules={{'*': {rules!r}}}" if isinstance(rules, str) else "rules={'*': 'zplus'}"
    raise InputError(f"rules must be a dict from layer names or types to rules, not {type(rules).__name__} "
                     f"{rules!r}; for one rule on every conv/dense layer pass {example}, for a composite pass "
                     "preset=... .")
