"""Atlas → heatmap grid: nearest-neighbour resampling in physical space with SimpleITK.

A voxel of the heatmap grid takes the label found at its centre's physical position in the
atlas (after an optional transform), never the label at the same array index.

Transform convention (both forms map *heatmap-space points to atlas-space points*):

- a 4×4 numpy matrix acting on RAS millimetres: ``x_atlas = T @ x_heatmap``;
- a ``SimpleITK.Transform``, used as-is in ITK's resampling convention (LPS points of the
  output/heatmap grid → LPS points of the input/atlas), e.g. the result of a registration with
  the heatmap's image as fixed and the atlas template as moving image.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..geometry import RAS_TO_LPS, Grid, sitk_geometry
from .grids import check_affine, voxel_volume
from .heatmaps import RavelOrder


class LabelGrid:
    """An atlas' dense region index on one heatmap grid, with what the counting step needs."""

    def __init__(self, dense_kji: np.ndarray, grid: Grid, n_regions: int) -> None:
        #: dense region index (0 = outside every region), array in (k, j, i) order on ``grid``
        self.dense_kji = dense_kji
        self.dense_kji.flags.writeable = False
        self.grid = grid
        self.n_regions = n_regions
        self.voxel_volume = voxel_volume(grid)
        #: voxels per region on this grid (index 0 = outside the atlas)
        self.counts = np.bincount(dense_kji.ravel(), minlength=n_regions + 1)
        self._envelope: dict[str, np.ndarray] = {}
        self._inside: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape in (k, j, i) order."""
        return self.dense_kji.shape

    def envelope(self, order: RavelOrder) -> np.ndarray:
        """Flat indices (ravel ``order``) of the atlas' brain outline on this grid.

        The outline is the labelled voxels closed (2 voxels) and hole-filled, so the white matter
        and ventricles that a cortical/subcortical parcellation leaves unlabelled count as inside
        the atlas. It decides whether a heatmap lies in the atlas' space at all.
        """
        found = self._envelope.get(order)
        if found is None:
            from scipy import ndimage

            mask = ndimage.binary_closing(self.dense_kji > 0, iterations=2, border_value=0)
            mask = ndimage.binary_fill_holes(mask | (self.dense_kji > 0))
            flat = mask.ravel(order=order)
            found = np.flatnonzero(flat)
            self._envelope[order] = found
        return found

    def inside(self, order: RavelOrder) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """In-atlas voxels of a (k, j, i) heatmap raveled in ``order`` ('C' or 'F'), grouped by region.

        Returns ``(flat index, start, region)``: the flat indices of all in-atlas voxels sorted by
        region (ascending within a region), the offset where each non-empty region's run starts,
        and that region's 0-based number. Built once per grid and order, then reused.
        """
        found = self._inside.get(order)
        if found is None:
            flat = self.dense_kji.ravel(order=order)
            index = np.flatnonzero(flat)
            region = flat[index]
            by_region = np.argsort(region, kind="stable")
            index, region = index[by_region], region[by_region]
            start = np.flatnonzero(np.r_[True, region[1:] != region[:-1]]) if index.size else np.zeros(0, int)
            found = (index, start, region[start].astype(np.intp) - 1)
            self._inside[order] = found
        return found


def transform_key(transform) -> tuple | None:
    """A hashable key describing a transform (for the resampling cache)."""
    if transform is None:
        return None
    if isinstance(transform, (np.ndarray, list, tuple)):
        return ("ras", np.round(check_affine(transform, "transform"), 9).tobytes())
    if not hasattr(transform, "GetParameters"):
        raise InputError(f"transform must be a 4×4 RAS matrix or a SimpleITK transform, "
                         f"not {type(transform).__name__}.")
    params = np.asarray(transform.GetParameters(), dtype=float)
    fixed = np.asarray(transform.GetFixedParameters(), dtype=float)
    return ("sitk", transform.GetName(), params.tobytes(), fixed.tobytes())


def to_sitk_transform(transform):
    """A SimpleITK transform (heatmap LPS → atlas LPS) from a RAS 4×4 matrix or a SimpleITK transform."""
    import SimpleITK as sitk

    if transform is None:
        return sitk.Transform(3, sitk.sitkIdentity)
    if isinstance(transform, sitk.Transform):
        if transform.GetDimension() != 3:
            raise InputError(f"The transform is {transform.GetDimension()}D; a 3D transform is needed.")
        return transform
    matrix = RAS_TO_LPS @ check_affine(transform, "transform") @ RAS_TO_LPS
    affine = sitk.AffineTransform(3)
    affine.SetMatrix(matrix[:3, :3].ravel().tolist())
    affine.SetTranslation(matrix[:3, 3].tolist())
    return affine


def resample_dense(dense_image, grid: Grid, transform=None) -> np.ndarray:
    """Resample a dense-index atlas image onto ``grid``.

    Returns the resampled dense index in (k, j, i) order; voxels whose centre falls outside the
    atlas get 0.
    """
    import SimpleITK as sitk

    spacing, origin, direction = sitk_geometry(grid)
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(s) for s in grid.shape_ijk])
    resampler.SetOutputOrigin(origin)
    resampler.SetOutputSpacing(spacing)
    resampler.SetOutputDirection(direction)
    resampler.SetInterpolator(sitk.sitkNearestNeighbor)
    resampler.SetDefaultPixelValue(0)
    resampler.SetOutputPixelType(dense_image.GetPixelID())
    resampler.SetTransform(to_sitk_transform(transform))
    return sitk.GetArrayFromImage(resampler.Execute(dense_image))
