"""Voxel grids for region statistics: checks of NeuroRelevance's ``(array_kji, Grid)`` convention.

The regions package speaks the convention of the whole library (``NeuroRelevanceLib.geometry``):
an array indexed ``[k, j, i]`` (as Slicer's ``arrayFromVolume`` and SimpleITK give it) and a
:class:`~NeuroRelevanceLib.geometry.Grid` holding its IJK→RAS matrix. NIfTI files and nibabel images
are read by ``NeuroRelevanceLib.nifti``, SimpleITK images by :func:`from_sitk`; ``geometry`` does
every conversion to SimpleITK's LPS.
"""
from __future__ import annotations

import numpy as np

from .. import geometry
from ..errors import InputError
from ..geometry import Grid

#: how a caller passes an in-memory volume (quoted in messages)
PAIR_HINT = ("pass (array_kji, Grid): the array in Slicer's (k, j, i) order and a NeuroRelevanceLib.geometry.Grid "
             "(e.g. Grid(array_kji.shape, ijk_to_ras)); a nibabel array is array_ijk.transpose(2, 1, 0), or pass "
             "the nibabel image itself")


def check_affine(value: object, what: str) -> np.ndarray:
    """Return ``value`` as a float 4×4 affine (IJK→RAS or RAS→RAS) matrix, or raise :class:`InputError`."""
    try:
        matrix = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"The {what} affine is not numeric ({exc}); pass a 4×4 IJK→RAS matrix.") from exc
    if matrix.shape != (4, 4):
        raise InputError(f"The {what} affine has shape {matrix.shape}; pass a 4×4 IJK→RAS matrix.")
    if not np.all(np.isfinite(matrix)):
        raise InputError(f"The {what} affine holds NaN or infinite values; pass a finite 4×4 matrix.")
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        raise InputError(f"The {what} affine's last row is {matrix[3].tolist()}, not [0, 0, 0, 1]; "
                         "pass an affine (not a projective) matrix.")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        raise InputError(f"The {what} affine is singular (a voxel size is zero); check its geometry.")
    return matrix


def check_grid(grid: object, what: str) -> Grid:
    """``grid`` if it is a usable :class:`Grid` (an affine, not projective, IJK→RAS), else :class:`InputError`."""
    if not isinstance(grid, Grid):
        raise InputError(f"The {what} geometry is a {type(grid).__name__}, not a Grid; {PAIR_HINT}.")
    check_affine(grid.ijk_to_ras, what)
    return grid


def volume_pair(pair: tuple, what: str) -> tuple[np.ndarray, Grid]:
    """Check an in-memory ``(array_kji, Grid)`` pair: two items, the second a Grid (the caller checks the
    array's dimensions, then :func:`check_shape`)."""
    if len(pair) != 2:
        raise InputError(f"The {what} tuple has {len(pair)} items; {PAIR_HINT}.")
    array, grid = pair
    return array, check_grid(grid, what)


def check_shape(shape: tuple, grid: Grid, what: str) -> None:
    """Refuse an array whose shape is not its grid's (k, j, i) shape (e.g. a nibabel-ordered array)."""
    if tuple(shape) != grid.shape_kji:
        raise InputError(f"The {what} array has shape {tuple(shape)} but its Grid is {grid.shape_kji} (k, j, i); "
                         f"{PAIR_HINT}.")


def voxel_volume(grid: Grid) -> float:
    """Volume of one voxel in mm³ (|det| of the IJK→RAS matrix's 3×3 part)."""
    return float(abs(np.linalg.det(grid.ijk_to_ras[:3, :3])))


def from_sitk(image) -> tuple[np.ndarray, Grid]:
    """``(array_kji, Grid)`` of a 3D scalar SimpleITK image."""
    import SimpleITK as sitk

    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"Expected a 3D scalar image, got a {image.GetDimension()}D image with "
                         f"{image.GetNumberOfComponentsPerPixel()} components per voxel.")
    return sitk.GetArrayFromImage(image), geometry.grid_from_sitk(image)
