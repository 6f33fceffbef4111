"""Test helper: a volume built in nibabel's (i, j, k) order (as the oracles here compute it) turned into
NeuroRelevance's public ``(array_kji, Grid)`` convention."""
from __future__ import annotations

import numpy as np

from NeuroRelevanceLib.geometry import Grid


def kji(array_ijk, affine) -> tuple[np.ndarray, Grid]:
    """``(array_ijk.transpose(2, 1, 0), Grid)`` for a nibabel-ordered array and its IJK→RAS affine.

    Arrays that are not 3D keep their axes (so input checks can refuse them) on a 3D grid of their
    first three axes reversed.
    """
    array = np.asarray(array_ijk)
    shape = tuple(reversed(array.shape[:3])) if array.ndim >= 3 else (1, 1, 1)
    values = array.transpose(2, 1, 0) if array.ndim == 3 else array
    return values, Grid(shape, np.asarray(affine, dtype=float))


def grid_ijk(shape_ijk, affine) -> Grid:
    """The :class:`Grid` of a nibabel-shaped grid (shape in i, j, k)."""
    return Grid(tuple(reversed(tuple(shape_ijk))), np.asarray(affine, dtype=float))


def atlas_ijk(labels_ijk, affine, *args, **kwargs):
    """``regions.Atlas`` of a nibabel-ordered label array."""
    from NeuroRelevanceLib.regions import Atlas

    return Atlas(*kji(labels_ijk, affine), *args, **kwargs)


def sitk_ijk(array_ijk, affine):
    """A SimpleITK image of a nibabel-ordered array (through ``geometry.array_to_sitk``)."""
    from NeuroRelevanceLib.geometry import array_to_sitk

    array_kji = np.ascontiguousarray(np.asarray(array_ijk).transpose(2, 1, 0))
    return array_to_sitk(array_kji, grid_ijk(np.shape(array_ijk), affine))
