"""Grid conventions checked against SimpleITK's own index→physical mapping (LPS)."""
import numpy as np
import pytest
import SimpleITK as sitk

from conftest import oblique_grid
from NeuroRelevanceLib.geometry import Grid, array_to_sitk, grid_from_sitk, kji_to_nibabel, nibabel_to_kji


def test_parts_roundtrip(grid):
    assert np.allclose(grid.spacing, (0.8, 1.3, 2.9))
    assert np.allclose(grid.origin, (-31.5, 17.25, 40.0))
    assert np.allclose(grid.directions.T @ grid.directions, np.eye(3))
    rebuilt = Grid.from_parts(grid.shape_kji, grid.spacing, grid.origin, grid.directions)
    assert rebuilt.same_as(grid, atol=1e-12)


def test_sitk_physical_points_match_ras(grid):
    image = array_to_sitk(np.zeros(grid.shape_kji, np.float32), grid)
    for ijk in [(0, 0, 0), (10, 0, 0), (3, 8, 6), (10, 8, 6)]:
        lps = np.array(image.TransformIndexToPhysicalPoint(ijk))
        ras = grid.ijk_to_ras @ np.array([*ijk, 1.0])
        assert np.allclose(lps, ras[:3] * [-1, -1, 1], atol=1e-9)
    assert grid_from_sitk(image).same_as(grid, atol=1e-12)


def test_sitk_array_order_is_kji(grid):
    array = np.arange(np.prod(grid.shape_kji), dtype=np.float32).reshape(grid.shape_kji)
    image = array_to_sitk(array, grid)
    assert image.GetSize() == grid.shape_ijk
    assert image.GetPixel(4, 2, 1) == array[1, 2, 4]
    assert np.array_equal(sitk.GetArrayFromImage(image), array)


def test_nibabel_axis_order_is_a_view():
    array = np.arange(24).reshape(2, 3, 4)
    assert kji_to_nibabel(array)[3, 1, 0] == array[0, 1, 3]
    assert np.shares_memory(kji_to_nibabel(array), array)
    assert np.array_equal(nibabel_to_kji(kji_to_nibabel(array)), array)


def test_bad_matrices_rejected():
    with pytest.raises(ValueError, match="singular"):
        Grid((2, 2, 2), np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="4×4"):
        Grid((2, 2, 2), np.eye(3))
    with pytest.raises(ValueError, match="does not match"):
        array_to_sitk(np.zeros((2, 2, 2)), oblique_grid())
