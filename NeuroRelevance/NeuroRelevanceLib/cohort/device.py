"""Device and dtype choice for the cohort decomposition (torch backend)."""
from __future__ import annotations

import torch

from ..device import resolve_device  # noqa: F401  (re-exported for the cohort modules)


def as_tensor(data, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Convert an array-like to a floating torch tensor on ``device`` (float64 unless told/float32)."""
    t = torch.as_tensor(data)
    if dtype is None:
        dtype = t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float64
    return t.to(device=device, dtype=dtype)
