"""Deformations and grids: separable spline = scipy spline, size, smoothness, identity."""
from __future__ import annotations

import numpy as np
import pytest

from NeuroRelevanceLib.demo.deform import make_grid, random_deformation, smooth_for_spacing, world_points


def test_grid_geometry():
    for spacing in (1.0, 2.0, 3.0):
        g = make_grid(spacing)
        np.testing.assert_allclose(g.ijk_to_ras[:3, :3], np.eye(3) * spacing)
        corner_lo = g.ijk_to_ras[:3, 3]
        corner_hi = corner_lo + spacing * (np.array(g.shape_ijk) - 1)
        assert (corner_lo <= [-80, -116, -78]).all() and (corner_hi >= [80, 82, 90]).all()
        pts = world_points(g)
        np.testing.assert_allclose(pts[:, 0], corner_lo)
        np.testing.assert_allclose(pts[:, -1], corner_hi, atol=1e-4)
    with pytest.raises(ValueError, match="spacing"):
        make_grid(-3.0)


def test_separable_grid_evaluation_equals_scipy_spline():
    g = make_grid(6.0)
    pts = world_points(g)
    phi = random_deformation(np.random.default_rng(4))
    np.testing.assert_allclose(phi.apply_grid(g, pts), phi.apply(pts), atol=1e-3)


def test_displacement_size_and_smoothness():
    g = make_grid(3.0)
    pts = world_points(g)
    sds = []
    for seed in range(4):
        phi = random_deformation(np.random.default_rng(seed), scale_sd=0, rotation_sd_deg=0,
                                 translation_sd_mm=0)
        mapped = phi.apply_grid(g, pts).reshape((3,) + g.shape_ijk)
        u = mapped - pts.reshape((3,) + g.shape_ijk)
        sds.append(u.std(axis=(1, 2, 3)).mean())
        # smooth and fold-free: the Jacobian determinant stays well away from 0 everywhere
        jac = np.stack([np.stack(np.gradient(mapped[a], 3.0), axis=0) for a in range(3)])
        det = np.linalg.det(np.moveaxis(jac, (0, 1), (-2, -1)))
        assert det.min() > 0.3 and det.max() < 2.0, (det.min(), det.max())
    assert 1.5 < np.mean(sds) < 4.0, sds


def test_disabled_deformation_is_identity_and_draws_the_same_numbers():
    g = make_grid(3.0)
    pts = world_points(g)
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    phi = random_deformation(r1, enabled=False)
    random_deformation(r2)
    np.testing.assert_array_equal(phi.apply_grid(g, pts), pts)
    assert r1.random() == r2.random()


def test_smoothing_only_for_coarser_grids():
    vol = np.zeros((9, 9, 9), dtype=np.float32)
    vol[4, 4, 4] = 1.0
    assert smooth_for_spacing(vol, 1.0) is vol
    out = smooth_for_spacing(vol, 3.0)
    assert out.sum() == pytest.approx(1.0, rel=1e-3) and out.max() < 0.2
