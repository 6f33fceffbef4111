"""Output grids and smooth random deformations (scipy) for the synthetic subjects.

A subject is the template seen through a random smooth map: every output voxel at world position
``x`` (mm, RAS) takes the template value at ``phi(x) = A (x - c) + c + u(x)``, where ``A`` is a
small random affine about the brain centre ``c`` and ``u`` a smooth displacement interpolated
(cubic B-spline) from random vectors on a coarse control grid fixed in world space. Because the
control grid lives in mm, the same seed gives the same anatomy at 1 mm and at 3 mm.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..geometry import Grid
from .anatomy import BRAIN_BOX_MM


def world_points(grid: Grid) -> np.ndarray:
    """RAS coordinates (mm) of every voxel centre, shape (3, n_voxels), voxels in (i, j, k) C order
    (the generator's sampling order; reshape to ``grid.shape_ijk`` and transpose for a KJI array)."""
    ijk = np.indices(grid.shape_ijk, dtype=np.float32).reshape(3, -1)
    return (grid.ijk_to_ras[:3, :3].astype(np.float32) @ ijk
            + grid.ijk_to_ras[:3, 3:].astype(np.float32))


def make_grid(spacing: float) -> Grid:
    """Isotropic RAS :class:`~NeuroRelevanceLib.geometry.Grid` with ``spacing`` mm voxels covering the template
    brain."""
    if not np.isfinite(spacing) or not 0.5 <= spacing <= 8.0:
        raise ValueError(f"spacing={spacing!r} mm is outside 0.5..8 mm; use e.g. 3.0 for CPU "
                         f"training or 1.0 for display")
    lo = np.array([b[0] for b in BRAIN_BOX_MM])
    hi = np.array([b[1] for b in BRAIN_BOX_MM])
    ni, nj, nk = (int(np.ceil((h - low) / spacing)) + 1 for low, h in zip(lo, hi, strict=True))
    shape = (ni, nj, nk)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    # centre the grid on the box so that coarse grids stay symmetric about the midline
    affine[:3, 3] = (lo + hi) / 2 - spacing * (np.array(shape) - 1) / 2
    return Grid((nk, nj, ni), affine)


@dataclass(frozen=True)
class Deformation:
    """One subject's map ``phi``: affine part about ``centre`` plus a cubic B-spline displacement.

    The displacement is ``u(x) = sum_abc C[:, a, b, c] b3(t_x - a) b3(t_y - b) b3(t_z - c)``
    with ``t = (x - control_origin) / control_step``: random coefficients smoothed by the spline.
    """

    matrix: np.ndarray          # 3x3
    translation: np.ndarray     # 3, mm
    centre: np.ndarray          # 3, mm
    control: np.ndarray         # (3, nx, ny, nz) B-spline coefficients of the displacement, mm
    control_origin: np.ndarray  # 3, mm
    control_step: float         # mm

    def _affine_part(self, points: np.ndarray) -> np.ndarray:
        c = self.centre[:, None].astype(np.float32)
        return (self.matrix.astype(np.float32) @ (points - c) + c
                + self.translation[:, None].astype(np.float32))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map world points (3, n) of the subject into template world coordinates."""
        out = self._affine_part(points)
        idx = (points - self.control_origin[:, None]) / self.control_step
        for axis in range(3):
            out[axis] += ndi.map_coordinates(self.control[axis], idx, order=3, mode="nearest",
                                             prefilter=False)
        return out.astype(np.float32)

    def apply_grid(self, grid: Grid, points: np.ndarray) -> np.ndarray:
        """Same as ``apply(points)`` for ``points = world_points(grid)`` (an axis-aligned grid), evaluated separably."""
        out = self._affine_part(points)
        matrix, shape = grid.ijk_to_ras, grid.shape_ijk
        basis = [_bspline_matrix((matrix[a, 3] + matrix[a, a] * np.arange(shape[a])
                                  - self.control_origin[a]) / self.control_step,
                                 self.control.shape[1 + a]) for a in range(3)]
        field = np.einsum("ia,jb,kc,dabc->dijk", *basis, self.control, optimize=True)
        out += field.reshape(3, -1).astype(np.float32)
        return out


def _bspline_matrix(t: np.ndarray, n: int) -> np.ndarray:
    """Weights (len(t), n) of the cubic B-spline at positions ``t`` (control-index units)."""
    d = np.abs(t[:, None] - np.arange(n)[None, :])
    w = np.where(d < 1, 2 / 3 - d**2 + d**3 / 2, np.where(d < 2, (2 - d) ** 3 / 6, 0.0))
    return w.astype(np.float32)


#: sd of a cubic B-spline sum of iid unit coefficients in 3D (average over positions), so that
#: ``displacement_mm`` is the typical sd of one displacement component.
_BSPLINE_GAIN_3D = 0.48 ** 1.5


def random_deformation(rng: np.random.Generator, *, displacement_mm: float = 2.0,
                       control_step_mm: float = 32.0, scale_sd: float = 0.02,
                       rotation_sd_deg: float = 1.5, translation_sd_mm: float = 1.0,
                       enabled: bool = True) -> Deformation:
    """Draw a smooth random map; ``enabled=False`` draws the same numbers but returns identity."""
    lo = np.array([b[0] for b in BRAIN_BOX_MM]) - 2 * control_step_mm
    hi = np.array([b[1] for b in BRAIN_BOX_MM]) + 2 * control_step_mm
    n = tuple(int(np.ceil((h - low) / control_step_mm)) + 1 for low, h in zip(lo, hi, strict=True))
    control = rng.normal(0.0, displacement_mm / _BSPLINE_GAIN_3D, size=(3,) + n)
    scale = 1.0 + rng.normal(0.0, scale_sd) + rng.normal(0.0, scale_sd / 2, size=3)
    angles = np.deg2rad(rng.normal(0.0, rotation_sd_deg, size=3))
    translation = rng.normal(0.0, translation_sd_mm, size=3)
    matrix = _rotation(angles) @ np.diag(scale)
    if not enabled:
        matrix, translation, control = np.eye(3), np.zeros(3), np.zeros_like(control)
    return Deformation(matrix=matrix, translation=translation, centre=np.array([0.0, -22.0, 10.0]),
                       control=control.astype(np.float32), control_origin=lo,
                       control_step=control_step_mm)


def _rotation(angles: np.ndarray) -> np.ndarray:
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def world_to_voxel(points: np.ndarray, voxel_to_ras: np.ndarray) -> np.ndarray:
    """Continuous voxel indices (3, n) of world points (3, n) in an image with the 4×4 ``voxel_to_ras``."""
    inv = np.linalg.inv(voxel_to_ras).astype(np.float32)
    return inv[:3, :3] @ points + inv[:3, 3:]


def sample(volume: np.ndarray, voxel_coords: np.ndarray, shape: tuple[int, ...],
           order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Interpolate ``volume`` at voxel coordinates (3, n) and reshape to ``shape``."""
    out = ndi.map_coordinates(volume, voxel_coords, order=order, mode="constant", cval=cval,
                              prefilter=False)
    return out.reshape(shape)


def smooth_for_spacing(volume: np.ndarray, spacing: float,
                       source_spacing: float = 1.0) -> np.ndarray:
    """Gaussian anti-aliasing before sampling a 1 mm map onto a coarser grid (FWHM = spacing)."""
    if spacing <= source_spacing * 1.01:
        return volume
    sigma_mm = np.sqrt(spacing**2 - source_spacing**2) / 2.3548
    return ndi.gaussian_filter(volume, sigma=sigma_mm / source_spacing, mode="constant")
