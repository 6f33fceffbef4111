"""Scans into the model's input space and relevance back onto the scan's grid (SimpleITK, physical space).

The model card fixes the input grid: spatial ``shape`` (KJI), ``spacing`` (i, j, k; mm), axis
``orientation`` (e.g. ``"RAS"``: i runs to the Right, j to Anterior, k to Superior) and optionally
``origin`` (RAS of voxel 0). Without an origin the model grid is centred on the scan. Channels are
normalised as the card says with statistics from the scan's own grid, then resampled with linear
interpolation (outside the scan: a raw 0), so a scan finer than the model grid is fed like one on it.

Relevance computed on the model grid is brought back for display by linear interpolation onto the
source grid. Interpolation does not conserve sums: region statistics and conservation checks use
the model-space map, which :class:`ModelInput` keeps.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .geometry import Grid, array_to_sitk

#: the orientation a card means when it says nothing
DEFAULT_ORIENTATION = "RAS"


@dataclass
class ModelInput:
    """Channels resampled and normalised on the model grid, ready for ``torch.from_numpy``."""

    array: np.ndarray          # (C, K, J, I) float32
    grid: Grid                 # the model grid
    source_grid: Grid          # the grid of the scan(s) it came from
    support: np.ndarray | None = None   # (C, K, J, I) bool: where the scan has data (a raw value != 0)

    def to_source(self, map_kji: np.ndarray, order: str = "linear") -> np.ndarray:
        """Resample a map on the model grid (e.g. relevance of one channel) onto the source grid."""
        return resample(map_kji, self.grid, self.source_grid, order)


def orientation_directions(code: str) -> np.ndarray:
    """3×3 direction matrix (columns: RAS unit vectors of i, j, k) for an axis code like ``"LPS"``."""
    axes = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}
    code = str(code).upper()
    if len(code) != 3 or any(c not in axes for c in code) or len({axes[c][0] for c in code}) != 3:
        raise InputError(f"Orientation '{code}' is not a valid axis code; use three letters, one "
                         "from each pair R/L, A/P, S/I (e.g. 'RAS' or 'LPS').")
    directions = np.zeros((3, 3))
    for column, letter in enumerate(code):
        row, sign = axes[letter]
        directions[row, column] = sign
    return directions


def model_grid(source: Grid, shape_kji: Sequence[int], spacing: Sequence[float] | None,
               orientation: str = DEFAULT_ORIENTATION,
               origin: Sequence[float] | None = None) -> Grid:
    """The model's input grid; centred on ``source`` unless ``origin`` is given."""
    if len(shape_kji) != 3:
        raise InputError(f"The model input shape {tuple(shape_kji)} is not 3D (D, H, W).")
    spacing_mm = np.asarray(spacing if spacing is not None else source.spacing, dtype=float)
    directions = orientation_directions(orientation)
    if origin is None:
        size_ijk = np.array(list(reversed(shape_kji)), dtype=float)
        centre = source.ijk_to_ras @ np.r_[(np.array(source.shape_ijk) - 1) / 2.0, 1.0]
        origin = centre[:3] - directions @ (spacing_mm * (size_ijk - 1) / 2.0)
    return Grid.from_parts(shape_kji, spacing_mm, origin, directions)


def resample(array_kji: np.ndarray, source: Grid, target: Grid, order: str = "linear",
             default: float = 0.0) -> np.ndarray:
    """Resample ``array_kji`` from ``source`` onto ``target`` in physical space (KJI in and out).

    Onto the same grid (within 1e-6 mm) the array is returned as it is: interpolating at the very
    voxel centres would leak ~1e-15 of every neighbour into exact zeros (the background of a
    skull-stripped scan), which a ``"mask": "nonzero"`` normalisation then counts as brain.
    """
    import SimpleITK as sitk

    if source.same_as(target, atol=1e-6):
        return np.array(array_kji, dtype=np.float32)

    interpolators = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor,
                     "bspline": sitk.sitkBSpline}
    if order not in interpolators:
        raise InputError(f"Unknown interpolation '{order}'; use one of {sorted(interpolators)}.")
    moving = array_to_sitk(np.asarray(array_kji, dtype=np.float32), source)
    reference = array_to_sitk(np.zeros(target.shape_kji, np.float32), target)
    out = sitk.Resample(moving, reference, sitk.Transform(), interpolators[order], float(default),
                        sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


#: a scan whose data (non-zero voxels) reach less of the model's input grid than this is refused: it is not
#: in the model's template space (an unregistered scan), or not a brain scan at all; a skull-stripped brain
#: registered to MNI fills about 20-30 % of an MNI box, a head with its scalp nearly all of it
MIN_GRID_COVERAGE = 0.05
#: where a user reads how a scan must be placed for a model card
REGISTRATION_DOCS = "docs/pretrained.md, input.origin"


def grid_coverage(array_kji: np.ndarray, scan: Grid, model: Grid) -> float:
    """Share of the model grid's voxels that fall on a non-zero voxel of the scan (nearest neighbour)."""
    data = (np.asarray(array_kji) != 0).astype(np.float32)
    return float(resample(data, scan, model, order="nearest").mean())


def _box(grid: Grid) -> str:
    """The RAS bounding box (mm) of a grid's voxel centres, e.g. "R -80..84, A -117..87, S -78..90"."""
    corners = np.array([[i, j, k, 1.0] for i in (0, grid.shape_kji[2] - 1) for j in (0, grid.shape_kji[1] - 1)
                        for k in (0, grid.shape_kji[0] - 1)]) @ grid.ijk_to_ras.T
    low, high = corners[:, :3].min(0), corners[:, :3].max(0)
    return ", ".join(f"{axis} {lo:.0f}..{hi:.0f}" for axis, lo, hi in zip("RAS", low, high, strict=True))


def check_overlap(scan: Grid, model: Grid, array_kji: np.ndarray | None = None,
                  origin_given: bool = True) -> float:
    """Refuse a scan whose data cover less than ``MIN_GRID_COVERAGE`` of the model's input grid (not
    registered to the card's template, or not a brain); returns the covered share. Without ``array_kji``
    an all-zero scan, the scan's whole field of view counts as data (an empty scan is refused as such later)."""
    data = array_kji if array_kji is not None and np.any(array_kji) else np.ones(scan.shape_kji, np.float32)
    covered = grid_coverage(data, scan, model)
    if covered >= MIN_GRID_COVERAGE:
        return covered
    where = "does not overlap the model's input grid at all" if covered == 0 else "reaches only a small part of it"
    fix = ("register it to the model's template space (MNI for the bundled models) first" if origin_given else
           "check that the scan is a whole brain at the card's resolution")
    raise InputError(
        f"The scan's data cover {100 * covered:.2g} % of the model's input grid (RAS box {_box(model)} mm; the "
        f"scan's grid spans {_box(scan)} mm): it {where}, so the model would see no brain. Nothing was "
        f"run; {fix} (see {REGISTRATION_DOCS}).")


#: 'scale' refuses a scan with more than this share of negative data voxels (an offset or a z-scored image); fewer
#: (the edge ringing of a spline- or sinc-resampled scan) are clipped to 0 like any value below the anchor
SCALE_NEGATIVE_SHARE = 0.01


def normalizer(array: np.ndarray, spec: dict | None) -> Callable[[np.ndarray], np.ndarray]:
    """The normalisation named by a card, with its statistics taken from ``array`` (the scan on its own grid).

    The returned function applies those fixed statistics to any array (e.g. the scan, or a raw value of 0 for
    the outside of the scan); with ``"mask": "nonzero"`` every voxel that is exactly 0 stays 0.
    """
    spec = dict(spec or {"type": "none"})
    kind = spec.get("type", "none")
    array = np.asarray(array, dtype=np.float32)
    masked = spec.get("mask") == "nonzero"
    values = array[array != 0] if masked else array.ravel()
    if values.size == 0:
        raise InputError("The scan is empty where the model looks (all zeros): check the input "
                         "volume and the model grid.")
    if kind != "none" and float(values.min()) == float(values.max()):
        raise InputError(f"The scan is constant where the model looks (every voxel {float(values.min()):g}): "
                         "there is no image to explain. Check that the right volume was chosen.")
    if kind == "scale" and float((values < 0).mean()) > SCALE_NEGATIVE_SHARE:
        raise InputError(
            f"The scan has negative intensities ({100 * float((values < 0).mean()):.3g} % of its voxels, min "
            f"{float(values.min()):.4g}), but the card's 'scale' "
            "normalisation divides by the scan's high percentile and takes a raw 0 as no signal (0 means no "
            "signal, as in a magnitude MR image): an offset or a standardised image would be read as another "
            "brain. Give the scan as acquired (magnitude, background 0, no offset or z-scoring), or use a card "
            "with percentile normalisation. Nothing was run.")
    if kind == "none":
        def scale(a: np.ndarray) -> np.ndarray:
            return a.copy()
    elif kind == "zscore":
        mean, std = float(values.mean()), float(values.std())

        def scale(a: np.ndarray) -> np.ndarray:
            return (a - mean) / (std if std > 0 else 1.0)
    elif kind == "minmax":
        lo, hi = float(values.min()), float(values.max())

        def scale(a: np.ndarray) -> np.ndarray:
            return (a - lo) / ((hi - lo) or 1.0)
    elif kind == "percentile":
        plo, phi = np.percentile(values, [spec.get("low", 1.0), spec.get("high", 99.0)])

        def scale(a: np.ndarray) -> np.ndarray:
            return np.clip((a - plo) / ((phi - plo) or 1.0), 0.0, 1.0)
    elif kind == "scale":   # the low anchor is a raw 0, so no tissue's share of the scan moves it
        top = float(np.percentile(values, spec.get("high", 99.0))) or 1.0
        floor, invert = float(spec.get("floor", 0.0)), bool(spec.get("invert", False))

        def scale(a: np.ndarray) -> np.ndarray:
            out = np.clip((a / top - floor) / (1.0 - floor), 0.0, 1.0)
            return 1.0 - out if invert else out
    else:
        raise InputError(f"Unknown normalisation '{kind}'; use none, zscore, minmax, percentile or scale.")

    def apply(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        out = scale(a)
        if masked:
            out = np.where(a != 0, out, 0.0)
        return out.astype(np.float32)
    return apply


def normalize(array: np.ndarray, spec: dict | None) -> np.ndarray:
    """Intensity normalisation named by a card: none, zscore, minmax, percentile or scale.

    ``{"type": "zscore", "mask": "nonzero"}`` uses only voxels != 0 for the statistics (and keeps
    the background at 0); ``percentile`` maps ``[low, high]`` percentiles (default 1, 99) to [0, 1];
    ``scale`` maps ``[floor × high percentile, high percentile]`` (defaults 0, 99) to [0, 1], clipped: its low
    anchor is a fixed fraction of the high one, not a percentile, so a change in one tissue's share of the scan
    (more CSF with age) moves no other voxel; ``"invert": true`` gives ``1 -`` that (dark tissue bright, needs
    ``"mask": "nonzero"``). ``scale`` assumes a raw 0 means no signal: a scan with more than 1 % negative
    values is refused (fewer, the ringing of a spline-resampled scan, are clipped to 0), and an intensity
    offset cannot be detected (it changes the input). A constant scan is refused.
    """
    return normalizer(array, spec)(array)


def normalize_then_resample(array: np.ndarray, source: Grid, target: Grid, spec: dict | None) -> np.ndarray:
    """Normalise on the scan's own grid, then resample onto ``target`` (linear; outside the scan: raw 0).

    Normalising first keeps the statistics those of the scan's own voxels: after resampling, the
    interpolated rim of a skull-stripped brain would join a ``"nonzero"`` mask and shift them, so the
    same brain on an oblique or anisotropic grid would be fed differently. Outside the scan gets the
    normalised value of a raw 0 (0 under a ``"nonzero"`` mask, so the background stays exactly 0).
    """
    apply = normalizer(array, spec)
    outside = float(apply(np.zeros(1, np.float32))[0])
    return resample(apply(array), source, target, default=outside)


def box_bounds(x: np.ndarray, normalization: dict | None, *,
               support: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-voxel input box [low, high] for deep Taylor's zB rule, or None (then the input's range).

    A card whose normalisation has ``"mask": "nonzero"`` keeps every voxel that is 0 in the scan at 0
    (the background of a skull-stripped scan, the air around a head): such a voxel can take no other
    value, so its box is [0, 0] and zB gives it no relevance; every voxel where the scan has data spans
    its channel's range -- also one the normalisation clipped to 0 (``percentile``'s darkest, inverted
    ``scale``'s brightest voxels), which is tissue, not background. ``x`` is the model input,
    (N, C, *spatial); ``support`` where the scan has data, broadcastable to it (:attr:`ModelInput.support`),
    or None only for an input whose zeros are all background (made without :func:`prepare_input`).
    """
    if (normalization or {}).get("mask") != "nonzero":
        return None
    x = np.asarray(x, dtype=np.float32)
    inside = x != 0
    if support is not None:
        inside = inside | np.broadcast_to(np.asarray(support, dtype=bool), x.shape)
    axes = tuple(range(2, x.ndim))
    big = np.float32(np.finfo(np.float32).max)
    lo = np.where(inside, x, big).min(axis=axes, keepdims=True)
    hi = np.where(inside, x, -big).max(axis=axes, keepdims=True)
    lo, hi = np.where(lo == big, 0, lo), np.where(hi == -big, 0, hi)
    return (np.where(inside, np.minimum(lo, 0), 0).astype(np.float32),
            np.where(inside, np.maximum(hi, 0), 0).astype(np.float32))


def box_keywords(x: np.ndarray, normalization: dict | None, *, support: np.ndarray | None) -> dict:
    """:func:`box_bounds` as the LRP engine's ``low``/``high`` keywords (torch tensors); ``{}`` without a box
    (the zB rule then takes the input's range). What every LRP run of a card's prepared input passes."""
    box = box_bounds(x, normalization, support=support)
    if box is None:
        return {}
    import torch

    return {"low": torch.from_numpy(box[0]), "high": torch.from_numpy(box[1])}


def data_support(array: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """Where the scan ``array`` has data (a raw value != 0) on ``target``: every voxel whose linear
    interpolation reaches a data voxel, as the normalised input's own resampling does (bool, KJI)."""
    data = (np.asarray(array) != 0).astype(np.float32)
    return resample(data, source, target) > 0


def prepare_input(channels: Sequence[tuple[np.ndarray, Grid]], card) -> ModelInput:
    """Resample and normalise one volume per input channel (in the card's order) for the model."""
    spec = card.input
    if len(channels) != len(spec.channels):
        raise InputError(f"The model takes {len(spec.channels)} channel(s) {list(spec.channels)}, "
                         f"but {len(channels)} volume(s) were given.")
    first = channels[0][1]
    for name, (array, grid) in zip(spec.channels, channels, strict=True):
        if np.asarray(array).shape != grid.shape_kji:
            raise InputError(f"Channel '{name}': array shape does not match its grid.")
        if not grid.same_as(first, atol=1e-3):
            raise InputError(f"Channel '{name}' is not on the same grid as '{spec.channels[0]}': "
                             "resample the channels onto one grid (e.g. register them) first.")
        if not np.all(np.isfinite(array)):
            raise InputError(f"Channel '{name}' contains NaN/inf values; clean the volume first.")
    if spec.shape is None:
        raise InputError("The model card gives no input shape: add input.shape (D, H, W).")
    grid = model_grid(first, spec.shape, spec.spacing, spec.orientation or DEFAULT_ORIENTATION,
                      spec.origin)
    check_overlap(first, grid, channels[0][0], spec.origin is not None)
    normalised, support = [], []
    for name, (array, _) in zip(spec.channels, channels, strict=True):
        try:
            normalised.append(normalize_then_resample(array, first, grid, spec.normalization))
        except InputError as error:
            if len(channels) == 1:
                raise
            raise InputError(f"Channel '{name}': {error}") from None
        support.append(data_support(array, first, grid) | (normalised[-1] != 0))
    return ModelInput(np.stack(normalised), grid, first, np.stack(support))
