"""Ground-truth scores of a heatmap against a mask of where the evidence truly is.

- relevance mass accuracy  ``sum_{v in M} R+(v) / sum_v R+(v)``  (R+ = max(R, 0));
- rank accuracy            fraction of the ``|M|`` highest-relevance voxels that lie in ``M``.

Ties at the rank cut-off are shared out: the voxels tied with the ``|M|``-th largest value count
with the fraction of them that fits into the top ``|M|``, which is the expected score under a
random tie-break (so a constant heatmap scores ``|M| / N``, as a random ranking would).

``tolerance`` (voxels, default 0) grows the mask by a ball of that radius before scoring, so a
heatmap that lands next to a thin structure (a cortical ribbon at 3 mm) is not scored as missing
it; report it with the score. Both accept numpy arrays, torch tensors (any device) or anything
``np.asarray`` reads. They never modify their inputs.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi


def _to_numpy(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{what} of type {type(x).__name__} cannot be read as an array; pass a "
                        f"numpy array or torch tensor") from exc
    if arr.dtype == object:
        raise TypeError(f"{what} is not numeric; pass a numpy array or torch tensor")
    return arr


def _prepare(heatmap: Any, mask: Any, channel_axis: int | None,
             tolerance: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r = _to_numpy(heatmap, "heatmap")
    m = _to_numpy(mask, "mask")
    if not (np.issubdtype(r.dtype, np.number) or r.dtype == bool):
        raise TypeError(f"heatmap has dtype {r.dtype}; pass numeric relevance values")
    r = r.astype(np.float64, copy=False)
    if channel_axis is not None:
        if not -r.ndim <= channel_axis < r.ndim:
            raise ValueError(f"channel_axis={channel_axis} does not exist in a heatmap with "
                             f"{r.ndim} dimensions; pass a valid axis or None")
        r = r.sum(axis=channel_axis)
    if r.shape != m.shape:
        hint = (" (a multi-channel heatmap: pass channel_axis to sum its channels)"
                if r.ndim == m.ndim + 1 and channel_axis is None else "")
        raise ValueError(f"heatmap shape {r.shape} does not match mask shape {m.shape}{hint}; "
                         f"resample both onto the same grid first")
    if m.dtype != bool:
        values = np.unique(m)
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"mask must be binary (0/1 or bool) but holds {values[:6].tolist()}"
                             f"; pass e.g. (labels == k) for one label of a label map")
        m = m.astype(bool)
    if not np.isfinite(r).all():
        raise ValueError("heatmap contains NaN or infinite values; fix or drop them before scoring")
    if not m.any():
        raise ValueError("mask is empty, so there is no ground truth to score against; pass a "
                         "mask with at least one voxel (e.g. an AD-like subject's atrophy mask)")
    if int(tolerance) != tolerance or tolerance < 0:
        raise ValueError(f"tolerance={tolerance!r} must be a whole number of voxels >= 0")
    if tolerance:
        ball = _euclidean_ball(m.ndim, int(tolerance))
        m = ndi.binary_dilation(m, structure=ball)
    return r, m


def _euclidean_ball(ndim: int, radius: int) -> np.ndarray:
    grid = np.indices((2 * radius + 1,) * ndim) - radius
    return (grid**2).sum(axis=0) <= radius**2


def relevance_mass_accuracy(heatmap: Any, mask: Any, *, channel_axis: int | None = None,
                            tolerance: int = 0) -> float:
    """Share of the positive relevance that falls inside ``mask`` (1.0 = all of it)."""
    r, m = _prepare(heatmap, mask, channel_axis, tolerance)
    pos = np.clip(r, 0.0, None)
    total = pos.sum()
    if total <= 0:
        raise ValueError("heatmap has no positive relevance, so its mass accuracy is undefined; "
                         "check the target class or pass the heatmap before thresholding")
    return float(pos[m].sum() / total)


def rank_accuracy(heatmap: Any, mask: Any, *, channel_axis: int | None = None,
                  tolerance: int = 0) -> float:
    """Fraction of the ``|M|`` highest-relevance voxels inside ``mask`` (ties shared out)."""
    r, m = _prepare(heatmap, mask, channel_axis, tolerance)
    if not r.any():
        raise ValueError("heatmap is all zero, so it ranks no voxel above another; check that "
                         "the relevance was computed for the right target")
    flat, inside = r.ravel(), m.ravel()
    k = int(inside.sum())
    # the k-th largest value: everything above it is in the top k, ties at it are shared
    cut = np.partition(flat, flat.size - k)[flat.size - k]
    above = flat > cut
    tied = flat == cut
    n_above, n_tied = int(above.sum()), int(tied.sum())
    share = (k - n_above) / n_tied
    hits = (above & inside).sum() + share * (tied & inside).sum()
    return float(hits / k)


def ground_truth_scores(heatmap: Any, mask: Any, *, channel_axis: int | None = None,
                        tolerance: int = 0) -> dict[str, float]:
    """Both scores plus the (grown) mask's share of the volume: the chance level of both."""
    r, m = _prepare(heatmap, mask, channel_axis, tolerance)
    return {"mass_accuracy": relevance_mass_accuracy(r, m),
            "rank_accuracy": rank_accuracy(r, m),
            "mask_fraction": float(m.mean())}
