"""Voxel grids for region statistics: nibabel (i, j, k) arrays with an IJK→RAS affine.

The regions package speaks the NIfTI convention at its surface: an array indexed ``[i, j, k]``
(as ``nibabel`` returns it) and a 4×4 affine mapping ``(i, j, k, 1)`` to RAS millimetres.
SimpleITK works in LPS with arrays indexed ``[k, j, i]``; the helpers here adapt the package's
NIfTI-style calls to ``NeuroRelevanceLib.geometry``, which does every conversion.
"""
from __future__ import annotations

import numpy as np

from .. import geometry
from ..errors import InputError

#: RAS <-> LPS: negate the first two world axes (its own inverse)
FLIP_XY = geometry.RAS_TO_LPS


def check_affine(affine: object, what: str) -> np.ndarray:
    """Return ``affine`` as a float 4×4 IJK→RAS matrix, or raise :class:`InputError`."""
    try:
        matrix = np.asarray(affine, dtype=float)
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


def voxel_volume(affine: np.ndarray) -> float:
    """Volume of one voxel in mm³ (|det| of the affine's 3×3 part)."""
    return float(abs(np.linalg.det(np.asarray(affine, dtype=float)[:3, :3])))


def sitk_geometry(affine: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """SimpleITK ``(origin, spacing, direction)`` in LPS for an IJK→RAS affine."""
    spacing, origin, direction = geometry.sitk_geometry(affine)
    return origin, spacing, direction


def affine_from_sitk(image) -> np.ndarray:
    """The IJK→RAS affine of a SimpleITK image (its LPS geometry with x and y negated)."""
    return geometry.grid_from_sitk(image).ijk_to_ras


def sitk_from_ijk(array_ijk: np.ndarray, affine: np.ndarray):
    """A SimpleITK image holding a nibabel-ordered array on the grid of ``affine``."""
    array_kji = np.ascontiguousarray(geometry.nibabel_to_kji(array_ijk))
    return geometry.array_to_sitk(array_kji, geometry.Grid(array_kji.shape, affine))


def ijk_from_sitk(image) -> tuple[np.ndarray, np.ndarray]:
    """``(array in i, j, k order, IJK→RAS affine)`` of a 3D scalar SimpleITK image."""
    import SimpleITK as sitk

    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"Expected a 3D scalar image, got a {image.GetDimension()}D image with "
                         f"{image.GetNumberOfComponentsPerPixel()} components per voxel.")
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0), affine_from_sitk(image)
