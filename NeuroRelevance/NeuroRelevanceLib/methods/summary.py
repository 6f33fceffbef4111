"""Summary map (seed 002): several methods' maps, each normalised per sample, combined as a weighted mean.

Normalisations (per sample, over all channels and voxels):
- ``"rank"``: each value replaced by its rank, scaled to [0, 1] (ties share their mean rank) — insensitive to
  the very different value ranges and tails of LRP, gradients and CAMs;
- ``"max-abs"``: divided by the largest |value| (a zero map stays zero), keeping signs and proportions.
With ``absolute=True`` the magnitudes |R| are normalised instead of the signed values.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..explanation.result import Explanation

Tensor = torch.Tensor
SUMMARY_NORMALISATIONS = ("rank", "max-abs")


def normalise(relevance: Tensor, how: str = "rank", absolute: bool = False) -> Tensor:
    """Per-sample normalisation of a map (N, ...) — see the module docstring."""
    if how not in SUMMARY_NORMALISATIONS:
        raise InputError(f"Unknown normalisation {how!r}; use one of {', '.join(SUMMARY_NORMALISATIONS)}.")
    r = relevance.detach().to(torch.float64).cpu()
    if absolute:
        r = r.abs()
    flat = r.flatten(1)
    if how == "max-abs":
        peak = flat.abs().amax(1, keepdim=True)
        return (flat / torch.where(peak > 0, peak, torch.ones_like(peak))).reshape(r.shape)
    from scipy.stats import rankdata

    m = flat.shape[1]
    ranks = rankdata(flat.numpy(), method="average", axis=1)
    scaled = (ranks - 1.0) / (m - 1) if m > 1 else np.ones_like(ranks)
    return torch.from_numpy(scaled).reshape(r.shape)


def check_weights(weights: Optional[Sequence[float]], k: int) -> np.ndarray:
    """The summary weights scaled to sum to 1 (equal weights for None); anything else is an ``InputError``."""
    if weights is None:
        return np.full(k, 1.0 / k)
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        w = None
    if w is None or w.shape != (k,) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise InputError(f"weights must be {k} finite non-negative numbers with a positive sum (one per method), "
                         f"not {weights!r}.")
    return w / w.sum()


def combine(maps: Sequence[Tensor], weights: Optional[Sequence[float]] = None, normalisation: str = "rank",
            absolute: bool = False) -> Tensor:
    """Σ_i w_i · normalise(map_i) with the weights scaled to sum to 1 (equal weights by default)."""
    if len(maps) == 0:
        raise InputError("combine needs at least one map; pass the maps of the methods to summarise.")
    shapes = {tuple(m.shape) for m in maps}
    if len(shapes) != 1:
        raise InputError(f"All maps must have the same shape to be combined, got {sorted(shapes)}.")
    w = check_weights(weights, len(maps))
    return sum(float(wi) * normalise(m, normalisation, absolute) for wi, m in zip(w, maps))


def summary_of(explanations: Sequence[Any], weights: Optional[Sequence[float]] = None, normalisation: str = "rank",
               absolute: bool = False) -> Explanation:
    """A summary ``Explanation`` from existing explanations of the same input and target."""
    if len(explanations) == 0:
        raise InputError("A summary needs at least one explanation; pass e.g. methods=['lrp', 'gradcam++'].")
    t0 = time.perf_counter()
    first = explanations[0]
    w = check_weights(weights, len(explanations))
    rel = combine([e.relevance for e in explanations], w, normalisation, absolute)
    names = [e.method if e.method != "lrp" else f"lrp:{e.preset}" for e in explanations]
    params = {"methods": names, "weights": [round(float(v), 6) for v in w], "normalisation": normalisation,
              "absolute": absolute}
    n = rel.shape[0]
    return Explanation(
        relevance=rel, output=first.output, target_value=first.target_value,
        layer_totals=OrderedDict([("input", rel.flatten(1).sum(1))]),
        conservation_error=torch.full((n,), float("nan"), dtype=torch.float64), max_conservation_error=float("nan"),
        device=first.device, dtype=torch.float64,
        seconds=sum(e.seconds for e in explanations) + time.perf_counter() - t0, method="summary", preset=None,
        rules={name: f"weight {wi:.4g}, {normalisation}" for name, wi in zip(names, w)}, target=first.target,
        parameters=params)
