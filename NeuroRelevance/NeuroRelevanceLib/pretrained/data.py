"""Demo-cohort subjects as model inputs: the model grid, normalisation and the train/val/test split.

The demo models live in the generator's template space. Their input grid (written into the model
cards) is the generator's RAS grid at the chosen spacing, with voxel 0 at the generator's voxel 0,
optionally padded at the far end of each axis so that every side divides by ``multiple`` (the
U-Net's poolings). Arrays here are in torch/KJI order ``(D, H, W) = (k, j, i)``; the generator
gives nibabel order ``(i, j, k)``.

Intensities are normalised with :func:`NeuroRelevanceLib.preprocessing.normalize`, the very
function that prepares a scan for a card at run time, so training and use see the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..geometry import Grid
from ..preprocessing import normalize

#: what the T1 models and the lesion model are fed (the card's ``input.normalization``)
T1_NORMALIZATION: dict[str, Any] = {"type": "percentile", "low": 1.0, "high": 99.0, "mask": "nonzero"}
LESION_NORMALIZATION: dict[str, Any] = {"type": "zscore", "mask": "nonzero"}


@dataclass(frozen=True)
class ModelGrid:
    """The demo models' input grid: KJI shape, isotropic spacing (mm) and RAS origin of voxel 0."""

    shape_kji: tuple[int, int, int]
    spacing: float
    origin: tuple[float, float, float]

    def card_input(self, channels: list[str], normalization: dict[str, Any]) -> dict[str, Any]:
        """The ``input`` entry of a model card for this grid."""
        return {"channels": list(channels), "shape": list(self.shape_kji),
                "spacing": [self.spacing] * 3, "orientation": "RAS",
                "origin": [round(float(v), 6) for v in self.origin],
                "normalization": dict(normalization)}


def model_grid_for(grid: Grid, multiple: int = 1) -> ModelGrid:
    """Model grid of a generator :class:`Grid` (RAS, axis-aligned), padded up to a multiple of ``multiple``."""
    affine = grid.ijk_to_ras
    if not np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3]))) or (np.diag(affine)[:3] <= 0).any():
        raise ValueError("the demo generator's grid must be axis-aligned RAS (positive diagonal affine)")
    padded = tuple(int(-(-n // multiple) * multiple) for n in grid.shape_kji)
    return ModelGrid(shape_kji=(padded[0], padded[1], padded[2]), spacing=float(affine[0, 0]),
                     origin=(float(affine[0, 3]), float(affine[1, 3]), float(affine[2, 3])))


def to_model_space(volume_kji: np.ndarray, grid: ModelGrid) -> np.ndarray:
    """Zero-pad a ``(..., k, j, i)`` array onto ``grid`` (the padding goes after the last voxel)."""
    kji = np.asarray(volume_kji)
    pad = [(0, 0)] * (kji.ndim - 3) + [(0, t - s) for s, t in zip(kji.shape[-3:], grid.shape_kji, strict=True)]
    if any(p[1] < 0 for p in pad):
        raise ValueError(f"volume of shape {kji.shape[-3:]} (KJI) is larger than the model grid "
                         f"{grid.shape_kji}")
    return np.pad(kji, pad)


def normalized_channels(channels_kji: np.ndarray, grid: ModelGrid,
                        normalization: dict[str, Any]) -> np.ndarray:
    """``(C, k, j, i)`` raw channels -> ``(C, D, H, W)`` float32 model input, each channel normalised."""
    kji = to_model_space(channels_kji, grid)
    return np.stack([normalize(c, normalization) for c in kji]).astype(np.float32)


@dataclass(frozen=True)
class Split:
    """Subject indices of the training, validation and held-out test sets."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]

    def as_dict(self) -> dict[str, list[int]]:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test)}


def split_indices(n: int, val_fraction: float = 0.15, test_fraction: float = 0.2) -> Split:
    """Contiguous split by subject index: the first subjects train, the last ones are held out.

    Subjects are drawn independently by index (ages and diagnoses come shuffled from the generator's
    table), so a contiguous split is a random one and is easy to regenerate.
    """
    n_test = max(1, int(round(n * test_fraction)))
    n_val = max(1, int(round(n * val_fraction)))
    if n - n_test - n_val < 2:
        raise ValueError(f"{n} subjects are too few for a train/val/test split; use at least 8")
    idx = list(range(n))
    return Split(tuple(idx[:n - n_val - n_test]), tuple(idx[n - n_val - n_test:n - n_test]),
                 tuple(idx[n - n_test:]))
