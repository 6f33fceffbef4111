"""Image-grid geometry shared by Slicer, NIfTI and SimpleITK, with no MRML and no torch.

One convention is used at every public surface of NeuroRelevance (scene bridge, preprocessing,
regions, cohort, demo, metrics): a volume is ``(array_kji, Grid)``:

- arrays are **KJI**-ordered (slice, row, column), as Slicer's ``arrayFromVolume`` and
  SimpleITK's ``GetArrayFromImage`` give them;
- geometry is a :class:`Grid`: the array shape and the 4×4 **IJK→RAS** matrix, as in a Slicer
  volume node. A NIfTI affine maps nibabel's (i, j, k) array index to RAS, so it is the same
  matrix; only the array axes are reversed (``nibabel array == kji.transpose(2, 1, 0)``). Only the
  NIfTI reader and writer (``NeuroRelevanceLib.nifti``) see nibabel's order, through
  :func:`kji_to_nibabel` and :func:`nibabel_to_kji`;
- SimpleITK speaks **LPS**: origin and direction get their first two rows negated
  (:func:`sitk_geometry`, :func:`grid_from_sitk`, :func:`array_to_sitk`).

``Testing/test_array_convention.py`` checks that every public function keeps to it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: RAS <-> LPS flips the sign of the first two world axes
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Grid:
    """A 3D image grid: array shape in KJI order and the IJK→RAS matrix."""

    shape_kji: tuple[int, int, int]
    ijk_to_ras: np.ndarray

    def __post_init__(self) -> None:
        matrix = np.asarray(self.ijk_to_ras, dtype=float)
        if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
            raise ValueError("The IJK→RAS matrix must be a finite 4×4 matrix.")
        if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
            raise ValueError("The IJK→RAS matrix is singular: a voxel spacing is zero.")
        object.__setattr__(self, "ijk_to_ras", matrix)
        object.__setattr__(self, "shape_kji", tuple(int(n) for n in self.shape_kji))

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along i, j, k in mm."""
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def origin(self) -> np.ndarray:
        """RAS position of the centre of voxel (0, 0, 0)."""
        return self.ijk_to_ras[:3, 3].copy()

    @property
    def directions(self) -> np.ndarray:
        """3×3 matrix whose columns are the unit RAS directions of the i, j, k axes."""
        return self.ijk_to_ras[:3, :3] / self.spacing

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        return tuple(reversed(self.shape_kji))  # type: ignore[return-value]

    @classmethod
    def from_parts(cls, shape_kji, spacing, origin, directions=None) -> Grid:
        """Build a grid from spacing (i, j, k), RAS origin and direction columns."""
        directions = np.eye(3) if directions is None else np.asarray(directions, dtype=float)
        matrix = np.eye(4)
        matrix[:3, :3] = directions * np.asarray(spacing, dtype=float)
        matrix[:3, 3] = origin
        return cls(tuple(shape_kji), matrix)

    def ras_to_ijk(self) -> np.ndarray:
        return np.linalg.inv(self.ijk_to_ras)

    def same_as(self, other: Grid, atol: float = 1e-4) -> bool:
        """True when both grids have the same shape and (within ``atol`` mm) the same geometry."""
        return self.shape_kji == other.shape_kji and np.allclose(
            self.ijk_to_ras, other.ijk_to_ras, atol=atol)


def kji_to_nibabel(array_kji: np.ndarray) -> np.ndarray:
    """Reorder a KJI array into nibabel's (i, j, k) axis order (a view, no copy)."""
    return np.asarray(array_kji).transpose(2, 1, 0)


def nibabel_to_kji(array_ijk: np.ndarray) -> np.ndarray:
    """Reorder a nibabel (i, j, k) array into KJI order (a view, no copy)."""
    return np.asarray(array_ijk).transpose(2, 1, 0)


def sitk_geometry(grid: Grid | np.ndarray) -> tuple[tuple, tuple, tuple]:
    """SimpleITK ``(spacing, origin, direction)`` (LPS) for a grid or a 4×4 IJK→RAS matrix."""
    matrix = grid.ijk_to_ras if isinstance(grid, Grid) else np.asarray(grid, dtype=float)
    lps = RAS_TO_LPS @ matrix
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing
    return tuple(spacing.tolist()), tuple(lps[:3, 3].tolist()), tuple(direction.ravel().tolist())


def grid_from_sitk(image) -> Grid:
    """The :class:`Grid` of a SimpleITK image (its LPS geometry turned into IJK→RAS)."""
    size = image.GetSize()
    if len(size) != 3:
        raise ValueError(f"Expected a 3D image, got {len(size)}D.")
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=float)
    lps[:3, 3] = image.GetOrigin()
    return Grid(tuple(reversed(size)), RAS_TO_LPS @ lps)


def array_to_sitk(array_kji: np.ndarray, grid: Grid):
    """A SimpleITK image holding ``array_kji`` (KJI order) on ``grid``."""
    import SimpleITK as sitk

    array_kji = np.asarray(array_kji)
    if array_kji.shape != grid.shape_kji:
        raise ValueError(f"Array shape {array_kji.shape} does not match the grid {grid.shape_kji}.")
    image = sitk.GetImageFromArray(array_kji)
    spacing, origin, direction = sitk_geometry(grid)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image
