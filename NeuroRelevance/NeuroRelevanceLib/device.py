"""Choosing the torch device: ``"auto"`` means CUDA when present, else the CPU."""
from __future__ import annotations

from .errors import InputError


class DeviceError(InputError):
    """A device that cannot be used: no such device name, ``no_cuda`` (CUDA asked for, none here), or a CUDA
    index beyond the GPUs present."""

    def __init__(self, message: str, no_cuda: bool = False) -> None:
        super().__init__(message)
        self.no_cuda = no_cuda


def resolve_device(device=None):
    """A ``torch.device`` for ``"auto"``/None, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a device object."""
    import torch

    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"Unknown device {device!r}; use 'auto', 'cpu' or 'cuda'.") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but no CUDA device is available here; use device='auto' or 'cpu'.",
                          no_cuda=True)
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise DeviceError(f"{device!r} names CUDA device {resolved.index}, but this machine has "
                          f"{torch.cuda.device_count()} (cuda:0 to cuda:{torch.cuda.device_count() - 1}).")
    return resolved
