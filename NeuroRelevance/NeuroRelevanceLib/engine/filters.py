"""Tjoa et al.'s fraction filters (seed 001) on max-|R|-normalised relevance.

The relevance of each sample (or of each sample's channel) is divided by its maximum absolute
value, filtered, and multiplied back:
- pass P[α1, α2]: keep values with |r| in [α1, α2], zero the rest;
- clamp C[α1, α2]: clamp |r| into [α1, α2], keeping the sign (zeros stay zero).
With [0, 1] both are the identity.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

Tensor = torch.Tensor


def check_filter(kind: Optional[str], value_range: tuple, placement: str) -> None:
    """Validate the filter options with a message that names the fix."""
    if kind not in (None, "pass", "clamp"):
        raise ValueError(f"filter must be None, 'pass' or 'clamp', not {kind!r}.")
    lo, hi = (float(v) for v in value_range)
    if not (0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"filter_range must satisfy 0 <= a1 <= a2 <= 1 (got {value_range}).")
    if placement not in ("input", "every-layer"):
        raise ValueError(f"filter_placement must be 'input' or 'every-layer', not {placement!r}.")


def apply_filter(r: Tensor, kind: str, value_range: tuple, per_channel: bool = False) -> Tensor:
    """Filter relevance ``r`` (batch first) as described in the module docstring."""
    lo, hi = (float(v) for v in value_range)
    dims = tuple(range(2, r.dim())) if per_channel and r.dim() > 2 else tuple(range(1, r.dim()))
    if not dims:
        return r
    scale = r.abs().amax(dim=dims, keepdim=True)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    n = r / safe
    mag = n.abs()
    if kind == "pass":
        n = torch.where((mag >= lo) & (mag <= hi), n, torch.zeros_like(n))
    else:
        n = torch.sign(n) * mag.clamp(min=lo, max=hi)
    return n * safe


def make_filter(kind: Optional[str], value_range: tuple, per_channel: bool) -> Optional[Callable[[Tensor], Tensor]]:
    """A one-argument filter function, or None for no filter."""
    if kind is None:
        return None
    return lambda r: apply_filter(r, kind, value_range, per_channel)
