"""Pieces shared by the reference architectures: the recorded config and argument checks.

Every architecture in :mod:`NeuroRelevanceLib.nets` stores the keyword arguments it was built with
in ``model.config`` (JSON-ready: tuples become lists), so a model card can write them out and
``nets.build(name, **config)`` rebuilds the same architecture.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn


def jsonable(value: Any) -> Any:
    """Return ``value`` with tuples turned into lists (recursively), as JSON would store it."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def positive_int(name: str, value: Any, cls: str) -> int:
    """Check that ``value`` is an int >= 1 and return it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{cls}: {name} must be a positive integer, got {value!r}; pass e.g. {name}=1.")
    return value


def int_tuple(name: str, value: Any, cls: str, length: int | None = None) -> tuple[int, ...]:
    """Check that ``value`` is a non-empty sequence of positive ints (of ``length`` if given)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ValueError(f"{cls}: {name} must be a non-empty list of positive integers, got {value!r}.")
    out = tuple(positive_int(f"{name}[{i}]", v, cls) for i, v in enumerate(value))
    if length is not None and len(out) != length:
        raise ValueError(f"{cls}: {name} needs {length} entries (one per stage), got {len(out)}: {value!r}.")
    return out


def choice(name: str, value: Any, allowed: Sequence[Any], cls: str) -> Any:
    """Check that ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{cls}: {name} must be one of {list(allowed)}, got {value!r}.")
    return value


def is_concrete(x: Any) -> bool:
    """True when ``x`` is a real tensor (not an fx Proxy during symbolic tracing, not TorchScript)."""
    return isinstance(x, torch.Tensor) and not torch.jit.is_scripting() and not torch.jit.is_tracing()


class ConfigMixin:
    """Adds ``config`` (the constructor's keyword arguments, JSON-ready) to an ``nn.Module``."""

    __jit_unused_properties__ = ["config", "architecture"]  # keep torch.jit.script away from them

    def _record(self, **kwargs: Any) -> None:
        self._config = {k: jsonable(v) for k, v in kwargs.items()}

    @property
    def config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this architecture: ``type(model)(**model.config)``."""
        return dict(self._config)

    @property
    def architecture(self) -> str:
        """The registry name of this architecture (its class name)."""
        return type(self).__name__


def parameter_count(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def check_batch(x: torch.Tensor, in_channels: int, name: str, min_size: int = 1,
                divisor: Sequence[int] | None = None) -> None:
    """Raise one clear error when ``x`` is not a ``(N, in_channels, D, H, W)`` batch the net can take.

    ``min_size``: smallest allowed spatial side; ``divisor``: per-axis factor every side must divide by.
    """
    if x.dim() != 5:
        raise ValueError(f"{name} expects a 5D batch (N, C, D, H, W), got shape {tuple(x.shape)}; "
                         "add the batch/channel axes, e.g. x[None, None] for one single-channel volume.")
    if x.shape[1] != in_channels:
        raise ValueError(f"{name} was built with in_channels={in_channels} but the input has {x.shape[1]} "
                         "channels; pass a matching input or rebuild the net with that in_channels.")
    spatial = tuple(int(s) for s in x.shape[2:])
    if min(spatial) < min_size:
        raise ValueError(f"{name} needs every spatial side >= {min_size} (one halving per level), got "
                         f"{spatial}; resample the volume larger or build the net with fewer levels.")
    if divisor is not None and any(s % d for s, d in zip(spatial, divisor, strict=True)):
        raise ValueError(f"{name} needs spatial sides divisible by {tuple(divisor)} (its poolings), got "
                         f"{spatial}; pad or crop the volume to a multiple, or build the net with fewer levels or "
                         "another pool_size.")
