"""Inclusivity coefficients (seed 001): D(a, b) = |a ∩ b| / (|b| + c) for binarised maps a, b.

D is 1 when b ⊆ a. Seed 001 uses two: *input inclusivity* D(R, x) against the input's support (a brain
mask), and *ground-truth inclusivity* D(R, y) against a lesion/atrophy mask. The relevance is binarised as
|R| / max|R| > ``threshold_a`` (relative by default, so a map's scale does not matter); the reference as
b > ``threshold_b`` (absolute by default: a 0/1 mask, or the non-zero voxels of a skull-stripped image).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError


def _array(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{what} is not numeric; pass a numpy array or torch tensor.")
    if not np.isfinite(arr.astype(np.float64, copy=False)).all():
        raise InputError(f"{what} contains NaN or infinite values; clean it before scoring.")
    return arr


def binarise(values: Any, threshold: float = 0.0, *, relative: bool = False, absolute: bool = True) -> np.ndarray:
    """Boolean map ``v > threshold`` with v = |values| (``absolute``) or values, divided by max v if ``relative``."""
    v = _array(values, "map").astype(np.float64)
    if absolute:
        v = np.abs(v)
    if relative:
        peak = v.max() if v.size else 0.0
        if peak <= 0:
            return np.zeros(v.shape, dtype=bool)
        v = v / peak
    return v > threshold


def inclusivity(a: Any, b: Any, *, threshold_a: float = 0.1, threshold_b: float = 0.0, relative_a: bool = True,
                relative_b: bool = False, smoothing: float = 0.0) -> float:
    """D(a, b) = |A ∩ B| / (|B| + smoothing) with A = binarised ``a`` (a relevance map), B = binarised ``b``.

    Defaults: A = voxels with |a| above 10 % of its peak; B = voxels where b > 0. ``smoothing`` is seed 001's
    constant added to the denominator (0: none; then an empty B is an error).
    """
    aa, bb = _array(a, "a"), _array(b, "b")
    if aa.shape != bb.shape:
        raise InputError(f"a has shape {aa.shape} but b has shape {bb.shape}; put both on the same grid (and sum "
                         f"the relevance over channels, or pick one) first.")
    if smoothing < 0:
        raise InputError(f"smoothing must be >= 0, not {smoothing}.")
    A = binarise(aa, threshold_a, relative=relative_a)
    B = binarise(bb, threshold_b, relative=relative_b, absolute=False)
    denominator = B.sum() + smoothing
    if denominator == 0:
        raise InputError("b is empty after binarisation, so D(a, b) is undefined; lower threshold_b, check the "
                         "mask, or pass smoothing > 0.")
    return float((A & B).sum() / denominator)


def input_inclusivity(relevance: Any, brain: Any, **options: Any) -> float:
    """D(R, x): share of the brain (mask, or non-zero input voxels) that the binarised relevance covers."""
    return inclusivity(relevance, brain, **options)


def ground_truth_inclusivity(relevance: Any, lesion: Any, **options: Any) -> float:
    """D(R, y): share of the ground-truth lesion/atrophy mask that the binarised relevance covers."""
    return inclusivity(relevance, lesion, **options)
