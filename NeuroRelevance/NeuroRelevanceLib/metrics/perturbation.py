"""Faithfulness by region perturbation (Samek et al. 2017): remove the most relevant regions first and watch
the explained score fall.

Regions are single voxels (``patch=1``) or the cells of a grid of non-overlapping patches; a region's
relevance is the sum over its voxels and all channels. After step k (k = 0..steps) the top
``round(k/steps · fraction · n_regions)`` regions are replaced by the baseline (a number, each channel's
mean, or a Gaussian blur of the input) in every channel. The curve is the target score S(x_k) (same target
weights as at the unperturbed input), and AOPC = 1/(steps+1) · Σ_k (S(x_0) − S(x_k)): higher means the map
found what the model uses. A random region order gives the reference curve. Ties in relevance are broken at
random, so flat maps score like random ones. Perturbed inputs run in batches on the chosen device.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..methods.common import fixed_batch, forward, make_target, setup

Tensor = torch.Tensor


@dataclass
class PerturbationResult:
    """Curves (N, steps+1) over the removed ``fractions`` (steps+1,), AOPC per sample, and how it was made."""

    fractions: np.ndarray
    scores: np.ndarray
    aopc: np.ndarray
    random_scores: np.ndarray | None
    aopc_random: np.ndarray | None
    settings: dict

    @property
    def aopc_gap(self) -> np.ndarray | None:
        """AOPC of the map minus AOPC of the random order (> 0: better than chance)."""
        return None if self.aopc_random is None else self.aopc - self.aopc_random


def aopc(scores: np.ndarray) -> np.ndarray:
    """Area over the perturbation curve: mean over k of S_0 − S_k, per row."""
    s = np.asarray(scores, dtype=np.float64)
    return (s[..., :1] - s).mean(-1)


def _patch(patch: int | Sequence[int], spatial: tuple[int, ...]) -> tuple[int, ...]:
    p = (patch,) * len(spatial) if isinstance(patch, int) else tuple(int(v) for v in patch)
    if len(p) != len(spatial) or any(v < 1 for v in p):
        raise InputError(f"patch must be a positive integer or one per spatial axis ({len(spatial)}), not {patch!r}.")
    return p


def region_scores(relevance: Tensor, patch: tuple[int, ...]) -> Tensor:
    """Relevance summed over channels and over each patch (grid cells, partial cells at the far edges)."""
    r = relevance.sum(1, keepdim=True).to(torch.float64)
    if all(v == 1 for v in patch):
        return r[:, 0]
    if r.dim() == 3:   # 1D: pool as 2D with a unit axis
        r, patch = r.unsqueeze(-1), (*patch, 1)
    pool = F.avg_pool2d if r.dim() == 4 else F.avg_pool3d
    cells = pool(r, patch, stride=patch, ceil_mode=True, divisor_override=1)
    if cells.dim() == 4 and len(patch) == 2 and patch[-1] == 1 and relevance.dim() == 3:
        cells = cells[..., 0]
    return cells[:, 0]


def _baseline(x: Tensor, baseline: Any, blur_sigma: float) -> Tensor:
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if baseline == "mean":
        return x.mean(dim=tuple(range(2, x.dim())), keepdim=True).expand_as(x).clone()
    if baseline == "blur":
        from scipy.ndimage import gaussian_filter

        arr = x.detach().cpu().numpy()
        sig = (0, 0) + (blur_sigma,) * (x.dim() - 2)
        return torch.from_numpy(gaussian_filter(arr, sig, mode="nearest")).to(x)
    raise InputError(f"baseline must be a number, 'mean' or 'blur', not {baseline!r}.")


def _removal_step(order: np.ndarray, counts: np.ndarray, cell_shape: tuple[int, ...], patch: tuple[int, ...],
                  spatial: tuple[int, ...]) -> np.ndarray:
    """Per voxel: the first step at which it is replaced (steps+1 = never)."""
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    step_of_cell = np.searchsorted(counts, rank, side="right").reshape(cell_shape)
    step = step_of_cell
    for axis, p in enumerate(patch):
        step = np.repeat(step, p, axis=axis)
    return step[tuple(slice(0, s) for s in spatial)]


def _curve(model: Any, x1: Tensor, base1: Tensor, weights1: Tensor, step_map: np.ndarray, steps: int,
           batch_size: int) -> np.ndarray:
    step_t = torch.from_numpy(step_map).to(x1.device)
    scores = []
    if fixed_batch(model):
        batch_size = 1
    for start in range(0, steps + 1, batch_size):
        ks = torch.arange(start, min(steps + 1, start + batch_size), device=x1.device)
        removed = (step_t.unsqueeze(0) <= ks.reshape(-1, *([1] * step_t.dim()))).unsqueeze(1)
        batch = torch.where(removed, base1, x1)
        with torch.no_grad():
            out = forward(model, batch)
        s = out * weights1
        scores.append((s.flatten(1).sum(1) if s.dim() > 1 else s).double().cpu())
    return torch.cat(scores).numpy()


def region_perturbation(model: Any, x: Tensor, relevance: Any, target: Any = None, *, mask: Any = None,
                        steps: int = 20, fraction: float = 0.5, patch: int | Sequence[int] = 1,
                        baseline: Any = 0.0, blur_sigma: float = 2.0, random_repeats: int = 1, seed: int = 0,
                        batch_size: int = 8, device: Any = "auto",
                        dtype: torch.dtype | None = None) -> PerturbationResult:
    """Most-relevant-first perturbation curve and AOPC of ``relevance`` (shaped like ``x``) for every sample.

    ``random_repeats`` random orders are averaged into the reference curve (0: none). ``batch_size`` perturbed
    inputs are scored per forward. The model is run on a private eval-mode copy.
    """
    rel = torch.as_tensor(relevance.detach() if hasattr(relevance, "detach") else relevance).cpu()
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be a positive integer, not {steps!r}; 20 is usual.")
    if not 0 < fraction <= 1:
        raise InputError(f"fraction (share of regions removed at the last step) must be in (0, 1], not {fraction}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}.")
    work, xw, dev, dt = setup(model, x, device, dtype)
    if tuple(rel.shape) != tuple(xw.shape) and tuple(rel.shape) != (xw.shape[0], *xw.shape[2:]):
        raise InputError(f"relevance of shape {tuple(rel.shape)} does not fit the input {tuple(xw.shape)}; pass the "
                         f"map of this input (shaped like x, or (N, *spatial)).")
    if rel.dim() == xw.dim() - 1:
        rel = rel.unsqueeze(1)
    if not torch.isfinite(rel).all():
        raise InputError("relevance contains NaN or infinite values; recompute or clean the map.")
    spatial = tuple(xw.shape[2:])
    p = _patch(patch, spatial)
    cells = region_scores(rel, p)
    cell_shape = tuple(cells.shape[1:])
    n_regions = int(np.prod(cell_shape))
    counts = np.rint(np.arange(steps + 1) / steps * fraction * n_regions).astype(np.int64)
    tgt = make_target(work, xw, target, mask)
    base = _baseline(xw, baseline, blur_sigma)
    rng = np.random.default_rng(seed)
    n = xw.shape[0]
    scores = np.zeros((n, steps + 1))
    rand = np.zeros((n, steps + 1)) if random_repeats > 0 else None
    for i in range(n):
        flat = cells[i].reshape(-1).numpy()
        order = np.lexsort((rng.permutation(n_regions), -flat))   # descending relevance, random tie-break
        step_map = _removal_step(order, counts, cell_shape, p, spatial)
        args = (xw[i:i + 1], base[i:i + 1], tgt.weights[i:i + 1])
        scores[i] = _curve(work, *args, step_map, steps, batch_size)
        if rand is None:
            continue
        for _ in range(random_repeats):
            step_map = _removal_step(rng.permutation(n_regions), counts, cell_shape, p, spatial)
            rand[i] += _curve(work, *args, step_map, steps, batch_size) / random_repeats
    settings = {"steps": steps, "fraction": fraction, "patch": p, "baseline": baseline, "regions": n_regions,
                "random_repeats": random_repeats, "target": tgt.description}
    return PerturbationResult(counts / n_regions, scores, aopc(scores), rand,
                              None if rand is None else aopc(rand), settings)
