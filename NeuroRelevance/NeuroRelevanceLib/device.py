"""Choosing the torch device: ``"auto"`` means CUDA when present, else the CPU."""
from __future__ import annotations

from .errors import InputError


def resolve_device(device=None):
    """A ``torch.device`` for ``"auto"``/None, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a device object."""
    import torch

    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"Unknown device {device!r}; use 'auto', 'cpu' or 'cuda'.") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("CUDA was requested but no CUDA device is available here; use device='auto' or 'cpu'.")
    return resolved
