"""RoI maps: layer grid against a linear-function oracle, NIfTI geometry on the input grid,
strongest-RoI label map."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib.cohort import layer_grid, roi_maps, save_rois, strongest_roi, upsample
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import Grid

INPUT_SHAPE = (16, 12, 8)
LAYER_SHAPE = (4, 3, 2)


def oblique_affine() -> np.ndarray:
    a, b = 0.3, -0.2
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ \
        np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([1.5, 2.0, 2.5])
    aff[:3, 3] = [-30.0, 12.0, 5.0]
    return aff


def world(affine: np.ndarray, shape) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    return (ijk @ affine[:3, :3].T + affine[:3, 3]).reshape(*shape, 3)


def world_kji(affine: np.ndarray, shape_kji) -> np.ndarray:
    """RAS of every voxel centre of a (k, j, i) array, computed in nibabel's (i, j, k) order."""
    return world(affine, tuple(reversed(shape_kji))).transpose(2, 1, 0, 3)


def test_upsampled_layer_map_lands_on_input_world_coordinates():
    """A map linear in world coordinates on the layer grid (via layer_grid) upsamples to the same
    linear function on the input grid wherever trilinear interpolation is not clamped at a border."""
    aff = oblique_affine()
    lay = layer_grid(Grid(INPUT_SHAPE, aff), LAYER_SHAPE)
    assert lay.shape_kji == LAYER_SHAPE
    coef, const = np.array([0.7, -1.1, 0.4]), 3.0
    coarse = world_kji(lay.ijk_to_ras, LAYER_SHAPE) @ coef + const
    fine = upsample(coarse[None], INPUT_SHAPE)[0]
    expect = world_kji(aff, INPUT_SHAPE) @ coef + const
    s = np.array(INPUT_SHAPE) // np.array(LAYER_SHAPE)
    inner = tuple(slice(si // 2, n - si // 2) for si, n in zip(s, INPUT_SHAPE, strict=True))
    np.testing.assert_allclose(fine[inner], expect[inner], rtol=1e-10, atol=1e-9)
    # layer voxel (0,0,0) is the centre of the first s×s×s input block
    centre = aff @ np.r_[(s[::-1] - 1) / 2.0, 1.0]
    np.testing.assert_allclose(lay.ijk_to_ras[:, 3], centre)


def test_saved_rois_have_the_input_geometry(tmp_path):
    aff = oblique_affine()
    rng = np.random.default_rng(0)
    u3 = rng.random((int(np.prod(LAYER_SHAPE)), 3))
    files = save_rois(tmp_path, u3, LAYER_SHAPE, Grid(INPUT_SHAPE, aff))
    assert len(files["rois"]) == 3
    fine = upsample(roi_maps(u3, LAYER_SHAPE), INPUT_SHAPE)
    for n, p in enumerate(files["rois"]):
        img = nib.load(p)
        assert img.shape == INPUT_SHAPE[::-1]                 # nibabel's (i, j, k)
        np.testing.assert_allclose(img.affine, aff, atol=1e-6)
        np.testing.assert_allclose(img.get_fdata(), fine[n].transpose(2, 1, 0), rtol=1e-6)
    coarse = nib.load(files["layer_grid"])
    assert coarse.shape == (*LAYER_SHAPE[::-1], 3)
    np.testing.assert_allclose(coarse.affine, layer_grid(Grid(INPUT_SHAPE, aff), LAYER_SHAPE).ijk_to_ras, atol=1e-6)
    np.testing.assert_allclose(coarse.get_fdata()[..., 1], u3[:, 1].reshape(LAYER_SHAPE).transpose(2, 1, 0),
                               rtol=1e-6)
    labels = nib.load(files["labels"])
    assert labels.shape == INPUT_SHAPE[::-1] and set(np.unique(labels.get_fdata())) <= {0, 1, 2, 3}
    np.testing.assert_allclose(labels.affine, aff, atol=1e-6)


def test_strongest_roi_labels():
    maps = np.zeros((2, 2, 2, 1))
    maps[0, 0, 0, 0], maps[1, 0, 0, 0] = 1.0, 0.5   # RoI 1 (max-normalised 1.0) beats RoI 2 (0.25)
    maps[1, 1, 1, 0] = 2.0                           # RoI 2 alone
    maps[0, 1, 0, 0] = 0.01                          # below the threshold of RoI 1's peak
    lab = strongest_roi(maps, threshold=0.1)
    assert lab[0, 0, 0] == 1 and lab[1, 1, 0] == 2 and lab[1, 0, 0] == 0 and lab[0, 1, 0] == 0


def test_roi_maps_reject_wrong_grid():
    with pytest.raises(InputError, match="layer grid"):
        roi_maps(np.ones((10, 2)), LAYER_SHAPE)
