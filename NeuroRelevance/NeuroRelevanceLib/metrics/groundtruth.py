"""Ground-truth scores of a heatmap against a mask of where the evidence truly is, with chance levels.

All scores are computed inside a *domain*: the brain mask when one is given (the voxels where a
map could sensibly put relevance), else the whole grid. With ``R+ = max(R, 0)``, mask ``M`` and
``M1`` = ``M`` grown by a ball of ``tolerance`` voxels (default 1), all restricted to the domain ``B``:

==================== =================================================== ==========================
score                definition                                          chance (map blind to M)
==================== =================================================== ==========================
mass_accuracy        ``sum_M R+ / sum_B R+``                             ``|M| / |B|``
mass_accuracy_1vox   ``sum_M1 R+ / sum_B R+``                            ``|M1| / |B|``
rank_accuracy        share of the ``|M|`` highest voxels that lie in M   ``|M| / |B|``
auc_brain            ROC AUC of R separating M from B \\ M (ties: 1/2)   0.5
pointing_1vox        the highest voxel lies in M1                        ``|M1| / |B|``
region_precision     share of the k densest atlas regions that are true  ``k / n_regions``
==================== =================================================== ==========================

Ties are shared out: voxels (or regions) tied at a cut-off count with the fraction of them that
fits, the expected score under a random tie-break, so a constant map scores chance exactly.
``region_precision`` pools R over atlas regions (density: mean R of the region's domain voxels,
as Böhle et al.), calls a region *true* when at least ``min_coverage`` (0.5) of its domain voxels
lie in M, and uses ``k`` = the number of true regions (R-precision). ``outside_share`` is the
share of R+ outside the domain (e.g. on the scalp), reported beside the scores, never hidden.

Inputs: numpy arrays, torch tensors (any device) or anything ``np.asarray`` reads; never modified.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi
from scipy import stats

#: score names in report order
SCORES = ("mass_accuracy", "mass_accuracy_1vox", "rank_accuracy", "auc_brain", "pointing_1vox",
          "region_precision")


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


def _binary(x: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    m = _to_numpy(x, what)
    if m.shape != shape:
        raise ValueError(f"{what} shape {m.shape} does not match the heatmap's {shape}; resample "
                         f"both onto the same grid first")
    if m.dtype != bool:
        values = np.unique(m)
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"{what} must be binary (0/1 or bool) but holds {values[:6].tolist()}; "
                             f"pass e.g. (labels == k) for one label of a label map")
        m = m.astype(bool)
    return m


def heatmap_array(heatmap: Any, channel_axis: int | None = None) -> np.ndarray:
    """The heatmap as finite float64 numbers, summed over ``channel_axis`` if given."""
    r = _to_numpy(heatmap, "heatmap")
    if not (np.issubdtype(r.dtype, np.number) or r.dtype == bool):
        raise TypeError(f"heatmap has dtype {r.dtype}; pass numeric relevance values")
    r = r.astype(np.float64, copy=False)
    if channel_axis is not None:
        if not -r.ndim <= channel_axis < r.ndim:
            raise ValueError(f"channel_axis={channel_axis} does not exist in a heatmap with "
                             f"{r.ndim} dimensions; pass a valid axis or None")
        r = r.sum(axis=channel_axis)
    if not np.isfinite(r).all():
        raise ValueError("heatmap contains NaN or infinite values; fix or drop them before scoring")
    return r


def euclidean_ball(ndim: int, radius: int) -> np.ndarray:
    """Structuring element: the voxels within ``radius`` of the centre."""
    grid = np.indices((2 * radius + 1,) * ndim) - radius
    return (grid**2).sum(axis=0) <= radius**2


def top_k_hits(values: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Expected number of ``truth`` items among the ``k`` largest ``values`` (random tie-break)."""
    if k <= 0:
        return 0.0
    cut = np.partition(values, values.size - k)[values.size - k]
    above, tied = values > cut, values == cut
    share = (k - int(above.sum())) / int(tied.sum())
    return float((above & truth).sum() + share * (tied & truth).sum())


class GroundTruth:
    """One subject's ground truth, prepared once and used to score many heatmaps.

    ``mask``: where the evidence is; ``brain``: the scoring domain (None: every voxel);
    ``atlas``: integer label map for ``region_precision`` (None: that score is left out);
    ``tolerance``: voxels the mask grows by for the ``_<tolerance>vox`` scores (default 1: the
    ``mass_accuracy_1vox`` and ``pointing_1vox`` of :data:`SCORES`).
    """

    def __init__(self, mask: Any, *, brain: Any = None, atlas: Any = None, tolerance: int = 1,
                 min_coverage: float = 0.5) -> None:
        m = _to_numpy(mask, "mask")
        self.shape = m.shape
        m = _binary(m, "mask", self.shape)
        b = np.ones(self.shape, bool) if brain is None else _binary(brain, "brain mask", self.shape)
        if isinstance(tolerance, bool) or int(tolerance) != tolerance or tolerance < 0:
            raise ValueError(f"tolerance={tolerance!r} must be a whole number of voxels >= 0")
        if not b.any():
            raise ValueError("the brain mask is empty; pass the brain (domain) mask of this subject")
        if not (m & b).any():
            raise ValueError("mask is empty inside the brain, so there is no ground truth to score "
                             "against; pass a mask with voxels in the brain (e.g. an AD-like subject's "
                             "atrophy label)")
        grown = ndi.binary_dilation(m, euclidean_ball(m.ndim, int(tolerance))) if tolerance else m
        self.tolerance = int(tolerance)
        self.suffix = f"_{self.tolerance}vox"
        self.brain = b
        self.inside = m[b]
        self.inside_grown = grown[b]
        self.regions = None if atlas is None else self._regions(atlas, b, m, min_coverage)

    def _regions(self, atlas: Any, b: np.ndarray, m: np.ndarray,
                 min_coverage: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        labels = _to_numpy(atlas, "atlas label map")
        if labels.shape != self.shape or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"the atlas must be an integer label map of shape {self.shape}, not "
                             f"{labels.dtype} {labels.shape}")
        lab = labels[b]
        ids, index = np.unique(lab[lab > 0], return_inverse=True)
        if ids.size == 0:
            raise ValueError("no atlas region lies inside the brain mask; check atlas and grid")
        sizes = np.bincount(index, minlength=ids.size)
        covered = np.bincount(index, weights=m[b][lab > 0], minlength=ids.size)
        return lab, ids, (covered / sizes >= min_coverage)

    @property
    def mask_share(self) -> float:
        """|M| / |B|: the mask's share of the domain (chance of mass and rank accuracy)."""
        return float(self.inside.mean())

    def chance(self) -> dict[str, float]:
        """Expected score of each metric for a map that knows nothing about the mask."""
        grown = float(self.inside_grown.mean())
        out = {"mass_accuracy": self.mask_share, "mass_accuracy" + self.suffix: grown,
               "rank_accuracy": self.mask_share, "auc_brain": 0.5, "pointing" + self.suffix: grown}
        if self.regions is not None:
            true = self.regions[2]
            out["region_precision"] = float(true.mean()) if true.any() else float("nan")
        return out

    def score(self, heatmap: Any, channel_axis: int | None = None) -> dict[str, float]:
        """Every score of ``heatmap`` (see the module table), plus ``outside_share``."""
        r = heatmap_array(heatmap, channel_axis)
        if r.shape != self.shape:
            hint = (" (a multi-channel heatmap: pass channel_axis to sum its channels)"
                    if r.ndim == len(self.shape) + 1 and channel_axis is None else "")
            raise ValueError(f"heatmap shape {r.shape} does not match mask shape {self.shape}{hint}; "
                             f"resample both onto the same grid first")
        pos_all = np.clip(r, 0.0, None)
        v = r[self.brain]
        pos = pos_all[self.brain]
        total = pos.sum()
        out: dict[str, float] = {}
        if total > 0:
            out["mass_accuracy"] = float(pos[self.inside].sum() / total)
            out["mass_accuracy" + self.suffix] = float(pos[self.inside_grown].sum() / total)
        else:
            out["mass_accuracy"] = out["mass_accuracy" + self.suffix] = float("nan")
        k = int(self.inside.sum())
        out["rank_accuracy"] = top_k_hits(v, self.inside, k) / k
        out["auc_brain"] = auc(v, self.inside)
        out["pointing" + self.suffix] = top_k_hits(v, self.inside_grown, 1)
        if self.regions is not None:
            out["region_precision"] = self._region_precision(v, self.regions)
        everywhere = pos_all.sum()
        out["outside_share"] = float(pos_all[~self.brain].sum() / everywhere) if everywhere > 0 else float("nan")
        return out

    def _region_precision(self, v: np.ndarray, regions: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
        lab, ids, true = regions
        if not true.any():
            return float("nan")
        index = np.searchsorted(ids, lab[lab > 0])
        density = (np.bincount(index, weights=v[lab > 0], minlength=ids.size)
                   / np.bincount(index, minlength=ids.size))
        k = int(true.sum())
        return top_k_hits(density, true, k) / k


def auc(values: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of ``values`` for ``positive`` against the rest (Mann-Whitney, ties count 1/2)."""
    n1 = int(positive.sum())
    n0 = positive.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(values)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def oracle_maps(change: Any, sigmas: tuple[float, ...] = (0.0, 1.0, 2.0), *,
                channel_axis: int | None = None) -> dict[float, np.ndarray]:
    """The ideal heatmaps: ``|change|`` (summed over channels), Gaussian-blurred by each sigma (voxels).

    ``change`` is the true change map (a subject minus its effect-free twin); sigma 0 is the change
    itself, the best a map can do; larger sigmas show what a slightly blurred right answer scores.
    """
    c = np.abs(heatmap_array(change, channel_axis))
    if not c.any():
        raise ValueError("the change map is all zero: the subject equals its twin, so there is no "
                         "change to score against (a control subject, or the wrong twin)")
    out = {}
    for s in sigmas:
        if not np.isfinite(s) or s < 0:
            raise ValueError(f"blur sigma {s!r} must be a finite number >= 0 (voxels)")
        out[float(s)] = c if s == 0 else ndi.gaussian_filter(c, float(s), mode="constant")
    return out


def relevance_mass_accuracy(heatmap: Any, mask: Any, *, channel_axis: int | None = None,
                            tolerance: int = 0, brain: Any = None) -> float:
    """Share of the positive relevance (inside ``brain``, if given) that falls inside ``mask``."""
    r = heatmap_array(heatmap, channel_axis)
    s = GroundTruth(mask, brain=brain, tolerance=tolerance).score(r)
    if s["mass_accuracy"] != s["mass_accuracy"]:
        raise ValueError("heatmap has no positive relevance, so its mass accuracy is undefined; "
                         "check the target class or pass the heatmap before thresholding")
    return s["mass_accuracy" + (f"_{tolerance}vox" if tolerance else "")]


def rank_accuracy(heatmap: Any, mask: Any, *, channel_axis: int | None = None,
                  tolerance: int = 0, brain: Any = None) -> float:
    """Fraction of the ``|M|`` highest-relevance voxels inside ``mask`` (ties shared out)."""
    r = heatmap_array(heatmap, channel_axis)
    truth = GroundTruth(mask, brain=brain, tolerance=tolerance)
    if not r.any():
        raise ValueError("heatmap is all zero, so it ranks no voxel above another; check that "
                         "the relevance was computed for the right target")
    v = r[truth.brain]
    hits = truth.inside_grown if tolerance else truth.inside
    k = int(hits.sum())
    return top_k_hits(v, hits, k) / k


def ground_truth_scores(heatmap: Any, mask: Any, *, channel_axis: int | None = None,
                        tolerance: int = 0, brain: Any = None) -> dict[str, float]:
    """Mass and rank accuracy plus the (grown) mask's share of the domain: their chance level."""
    r = heatmap_array(heatmap, channel_axis)
    truth = GroundTruth(mask, brain=brain, tolerance=tolerance)
    return {"mass_accuracy": relevance_mass_accuracy(r, mask, tolerance=tolerance, brain=brain),
            "rank_accuracy": rank_accuracy(r, mask, tolerance=tolerance, brain=brain),
            "mask_fraction": float((truth.inside_grown if tolerance else truth.inside).mean())}
