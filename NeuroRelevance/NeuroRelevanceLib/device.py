"""Choosing the torch device: ``"auto"`` means CUDA when present, else the CPU."""
from __future__ import annotations

from .errors import InputError


class DeviceError(InputError):
    """A device that cannot be used: ``unknown`` (no such device name) or not available here."""

    def __init__(self, message: str, unknown: bool) -> None:
        super().__init__(message)
        self.unknown = unknown


def resolve_device(device=None):
    """A ``torch.device`` for ``"auto"``/None, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a device object."""
    import torch

    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"Unknown device {device!r}; use 'auto', 'cpu' or 'cuda'.", unknown=True) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but no CUDA device is available here; use device='auto' or 'cpu'.",
                          unknown=False)
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise DeviceError(f"{device!r} names CUDA device {resolved.index}, but this machine has "
                          f"{torch.cuda.device_count()} (cuda:0 to cuda:{torch.cuda.device_count() - 1}).",
                          unknown=False)
    return resolved
