"""Device and dtype choice for the cohort decomposition (torch backend)."""
from __future__ import annotations

import torch

from ..errors import InputError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return a torch device; ``"auto"`` (or None) picks CUDA when present, else the CPU."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {str(device)!r} was requested but CUDA is not available; "
                         "pass device='cpu' or device='auto'.")
    return dev


def as_tensor(data, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Convert an array-like to a floating torch tensor on ``device`` (float64 unless told/float32)."""
    t = torch.as_tensor(data)
    if dtype is None:
        dtype = t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float64
    return t.to(device=device, dtype=dtype)
