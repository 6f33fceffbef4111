"""Tjoa et al.'s fraction filters on max-|R|-normalised relevance: one spec for torch and numpy.

The relevance of each sample (or of each sample's channel) is divided by its maximum absolute
value, filtered, and multiplied back:
- pass P[α1, α2]: keep values with |r| in [α1, α2], zero the rest;
- clamp C[α1, α2]: clamp |r| into [α1, α2], keeping the sign (zeros stay zero).
With [0, 1] both are the identity. :func:`filter_magnitudes` is the one implementation; it runs on a
torch tensor (the engine, the methods) or a numpy array (:class:`FilterCache`, the Slicer/web re-filtering).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

FILTER_TYPES = (None, "pass", "clamp")
PLACEMENTS = ("input", "every-layer")


def check_filter(filter_type: str | None, value_range: tuple, placement: str) -> None:
    """Validate the filter options with a message that names the fix: a ``vocabulary.OptionError`` (an InputError,
    so a ValueError, as every option refusal), which each front end spells as its users type options."""
    from ..vocabulary import OptionError

    if filter_type not in FILTER_TYPES:
        raise OptionError(("filter", filter_type), " is not a filter; use pass or clamp (or none: no filter).")
    lo, hi = (float(v) for v in value_range)
    if not (0.0 <= lo <= hi <= 1.0):
        swapped = (min(lo, hi), max(lo, hi))
        example = swapped if swapped[0] >= 0.0 and swapped[1] <= 1.0 else (0.1, 1.0)
        raise OptionError(("filter_range", (lo, hi)), " is not a filter range: α1 and α2 are fractions of max |R| "
                          "with 0 <= α1 <= α2 <= 1, e.g. ", ("filter_range", example), ".")
    if placement not in PLACEMENTS:
        raise OptionError(("filter_placement", placement), " is not a placement; use input or every-layer.")


def filter_magnitudes(values: Any, magnitude: Any, sign: Any, filter_type: str, lo: Any, hi: Any,
                      out: np.ndarray | None = None) -> Any:
    """Pass or clamp ``values`` given their |value| and sign, with absolute bounds ``lo``/``hi`` (scalars or
    arrays broadcasting against ``values``); torch tensors or numpy arrays (``out`` for numpy only)."""
    numpy = isinstance(values, np.ndarray)
    if filter_type == "pass":
        keep = (magnitude >= lo) & (magnitude <= hi)
        return np.multiply(values, keep, out=out) if numpy else values * keep
    if numpy:
        clipped = np.clip(magnitude, lo, hi, out=out)
        return np.multiply(clipped, sign, out=clipped)
    return sign * magnitude.clamp(min=lo, max=hi)


def apply_filter(r: Any, filter_type: str, value_range: tuple, per_channel: bool = False) -> Any:
    """Filter relevance ``r`` (batch first, torch tensor) as described in the module docstring."""
    torch = _torch()
    lo, hi = (float(v) for v in value_range)
    dims = tuple(range(2, r.dim())) if per_channel and r.dim() > 2 else tuple(range(1, r.dim()))
    if not dims:
        return r
    mag = r.abs()
    scale = mag.amax(dim=dims, keepdim=True)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return filter_magnitudes(r, mag, torch.sign(r), filter_type, lo * safe, hi * safe)


def make_filter(filter_type: str | None, value_range: tuple,
                per_channel: bool) -> Callable[[Any], Any] | None:
    """A one-argument filter function, or None for no filter."""
    if filter_type is None:
        return None
    return lambda r: apply_filter(r, filter_type, value_range, per_channel)


class FilterCache:
    """One raw map prepared for fast re-filtering: |R|, sign and max|R| computed once.

    :meth:`apply` is :func:`apply_filter` on a numpy array (same :func:`filter_magnitudes`) and can write
    straight into a volume's voxel buffer. ``peak`` is the normaliser: give the maximum over all channels
    of a run so the channels are filtered alike, as the engine does on the model grid (the maps here are
    resampled onto the scan grid, so the numbers differ from the model-space filter by the interpolation).
    """

    def __init__(self, raw: np.ndarray, peak: float | None = None) -> None:
        self.raw = np.ascontiguousarray(raw, dtype=np.float32)
        self.magnitude = np.abs(self.raw)
        self.sign = np.sign(self.raw)
        own = float(self.magnitude.max()) if self.raw.size else 0.0
        self.peak = own if peak is None else float(peak)
        self._window: float | None = None

    @property
    def window(self) -> float:
        """The display window of this map (robust: 99.5th percentile of nonzero |R|), cached."""
        if self._window is None:
            from ..windowing import robust_window

            self._window = robust_window(self.magnitude) or 1.0
        return self._window

    def apply(self, filter_type: str | None, value_range=(0.0, 1.0),
              out: np.ndarray | None = None) -> np.ndarray:
        """The filtered map (written into ``out`` when given)."""
        check_filter(filter_type, value_range, "input")
        out = np.empty_like(self.raw) if out is None else out.reshape(self.raw.shape)
        if filter_type is None:
            np.copyto(out, self.raw)
            return out
        scale = self.peak if self.peak > 0 else 1.0
        lo, hi = float(value_range[0]) * scale, float(value_range[1]) * scale
        return filter_magnitudes(self.raw, self.magnitude, self.sign, filter_type, lo, hi, out=out)


def _torch():
    import torch

    return torch
