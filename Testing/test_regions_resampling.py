"""Atlas → heatmap grid in physical space, checked against an independent numpy oracle.

The oracle maps every heatmap voxel centre through the affines (and transform) to the atlas'
continuous index and rounds it (half up, as ITK's nearest-neighbour does); it never touches
SimpleITK, so axis-order or RAS/LPS mistakes in the resampling show up as wrong counts.
"""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from NeuroRelevanceLib import region_statistics
from NeuroRelevanceLib.geometry import RAS_TO_LPS as FLIP_XY
from NeuroRelevanceLib.regions import load_label_map
from volumes import atlas_ijk, grid_ijk, kji, sitk_ijk


def rotation(a: float, b: float, c: float) -> np.ndarray:
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def affine(spacing, origin, rot=None, flip=(1, 1, 1)) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = (np.eye(3) if rot is None else rot) @ np.diag(np.asarray(spacing) * np.asarray(flip))
    matrix[:3, 3] = origin
    return matrix


def translation(offset) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = offset
    return matrix


def oracle_labels(atlas_labels, atlas_affine, heat_shape, heat_affine, transform=None) -> np.ndarray:
    """Label at each heatmap voxel centre by pure affine arithmetic (nibabel i, j, k order)."""
    transform = np.eye(4) if transform is None else transform
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in heat_shape], indexing="ij"), axis=-1).reshape(-1, 3)
    points = np.c_[ijk, np.ones(len(ijk))] @ (np.linalg.inv(atlas_affine) @ transform @ heat_affine).T
    index = np.floor(points[:, :3] + 0.5).astype(int)
    inside = np.all((index >= 0) & (index < np.array(atlas_labels.shape)), axis=1)
    labels = np.zeros(len(ijk), dtype=atlas_labels.dtype)
    labels[inside] = atlas_labels[tuple(index[inside].T)]
    return labels.reshape(heat_shape)


@pytest.fixture(scope="module")
def atlas_data():
    """An asymmetric label map (ids 1..40 in uneven blocks) on an oblique, anisotropic, flipped grid."""
    rng = np.random.default_rng(11)
    shape = (23, 19, 15)
    coarse = rng.integers(0, 41, size=(6, 5, 4))
    labels = np.kron(coarse, np.ones((4, 4, 4), dtype=int))[:shape[0], :shape[1], :shape[2]].astype(np.uint16)
    labels[labels == 0] = 0
    atlas_affine = affine((1.1, 0.9, 1.7), (-10.3, 5.2, -8.9), rotation(0.12, -0.07, 0.2), flip=(-1, 1, 1))
    return labels, atlas_affine


def centred(shape, spacing, shift, rot=None, flip=(1, 1, 1)):
    """A grid whose centre lies ``shift`` mm from the test atlas' centre (about (-23, 13.5, 3.5))."""
    matrix = affine(spacing, (0.0, 0.0, 0.0), rot, flip)
    centre = np.array([-23.0, 13.5, 3.5]) + np.asarray(shift)
    matrix[:3, 3] = centre - matrix[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return shape, matrix


GRIDS = {
    "same-grid": None,
    "anisotropic-shifted": centred((17, 21, 30), (1.3, 0.8, 0.55), (3.07, -2.31, 1.93)),
    "oblique": centred((20, 20, 12), (0.95, 1.25, 1.6), (-1.7, 2.1, -0.2), rotation(0.5, 0.3, -0.4)),
    "oblique-flipped": centred((18, 16, 19), (1.05, 0.7, 1.2), (2.4, 1.1, 0.3), rotation(-0.3, 0.6, 1.1),
                               flip=(-1, -1, 1)),
}


@pytest.mark.parametrize("name", list(GRIDS))
def test_counts_and_sums_match_the_affine_oracle(atlas_data, name):
    labels, atlas_affine = atlas_data
    heat_shape, heat_affine = GRIDS[name] or (labels.shape, atlas_affine)
    expected = oracle_labels(labels, atlas_affine, heat_shape, heat_affine)
    assert np.count_nonzero(expected) > 500  # the grids do overlap substantially
    heat = np.random.default_rng(1).normal(size=heat_shape)
    table = region_statistics(kji(heat, heat_affine), atlas_ijk(labels, atlas_affine), min_overlap=0).set_index("label")
    ids = table.index.to_numpy()
    np.testing.assert_array_equal(table["voxels"].to_numpy(), np.bincount(expected.ravel(), minlength=41)[ids])
    sums = np.bincount(expected.ravel(), weights=heat.ravel(), minlength=41)[ids]
    np.testing.assert_allclose(table["sum"].to_numpy(), sums, rtol=1e-10, atol=1e-10)
    voxel_volume = abs(np.linalg.det(heat_affine[:3, :3]))
    np.testing.assert_allclose(table["volume_mm3"], table["voxels"] * voxel_volume)


def test_resampled_grid_matches_the_oracle_voxel_by_voxel(atlas_data):
    labels, atlas_affine = atlas_data
    heat_shape, heat_affine = GRIDS["oblique-flipped"]
    atlas = atlas_ijk(labels, atlas_affine)
    grid = atlas.on_grid(grid_ijk(heat_shape, heat_affine))
    resampled_ids = np.concatenate([[0], atlas.ids])[grid.dense_kji.T]
    np.testing.assert_array_equal(resampled_ids, oracle_labels(labels, atlas_affine, heat_shape, heat_affine))


def test_index_based_lookup_would_fail_this_test(atlas_data):
    """Guard: on these grids a same-index copy of the labels disagrees with the oracle."""
    labels, atlas_affine = atlas_data
    heat_shape, heat_affine = GRIDS["anisotropic-shifted"]
    expected = oracle_labels(labels, atlas_affine, heat_shape, heat_affine)
    by_index = np.zeros(heat_shape, dtype=labels.dtype)
    common = tuple(slice(0, min(a, b)) for a, b in zip(heat_shape, labels.shape, strict=True))
    by_index[common] = labels[common]
    assert np.mean(by_index == expected) < 0.5


def test_numpy_and_simpleitk_transforms_map_heatmap_space_into_atlas_space(atlas_data):
    labels, atlas_affine = atlas_data
    heat_shape, heat_affine = GRIDS["oblique"]
    offset = np.array([31.4, -12.6, 7.9])
    moved = translation(offset) @ atlas_affine          # the same atlas, 31 mm to the right etc.
    turn = np.eye(4)
    turn[:3, :3] = rotation(0.05, 0.1, -0.08)
    transform = translation(offset) @ turn               # heatmap RAS -> moved-atlas RAS
    expected = oracle_labels(labels, moved, heat_shape, heat_affine, transform)
    assert np.count_nonzero(expected) > 500
    heat = np.random.default_rng(4).normal(size=heat_shape)
    atlas = atlas_ijk(labels, moved)
    with_matrix = region_statistics(kji(heat, heat_affine), atlas, transform=transform, min_overlap=0)
    ids = with_matrix["label"].to_numpy()
    np.testing.assert_array_equal(with_matrix["voxels"], np.bincount(expected.ravel(), minlength=41)[ids])
    lps = FLIP_XY @ transform @ FLIP_XY
    itk = sitk.AffineTransform(3)
    itk.SetMatrix(lps[:3, :3].ravel().tolist())
    itk.SetTranslation(lps[:3, 3].tolist())
    with_itk = region_statistics(kji(heat, heat_affine), atlas, transform=itk, min_overlap=0)
    np.testing.assert_array_equal(with_itk["voxels"], with_matrix["voxels"])
    np.testing.assert_allclose(with_itk["sum"], with_matrix["sum"])


def test_nifti_and_nrrd_label_maps_read_to_the_same_atlas(atlas_data, tmp_path):
    labels, atlas_affine = atlas_data
    nib.save(nib.Nifti1Image(labels, atlas_affine), tmp_path / "atlas.nii.gz")
    sitk.WriteImage(sitk_ijk(labels, atlas_affine), str(tmp_path / "atlas.nrrd"))
    heat_shape, heat_affine = GRIDS["oblique"]
    expected = oracle_labels(labels, atlas_affine, heat_shape, heat_affine)
    for path in (tmp_path / "atlas.nii.gz", tmp_path / "atlas.nrrd"):
        atlas = load_label_map(path)
        np.testing.assert_allclose(atlas.grid.ijk_to_ras, atlas_affine, atol=1e-5)
        np.testing.assert_array_equal(atlas.label_map().T, labels)
        grid = atlas.on_grid(grid_ijk(heat_shape, heat_affine))
        np.testing.assert_array_equal(np.concatenate([[0], atlas.ids])[grid.dense_kji.T], expected)


def test_resampled_grids_are_cached_per_grid_and_transform(atlas_data):
    labels, atlas_affine = atlas_data
    atlas = atlas_ijk(labels, atlas_affine)
    shape, heat_affine = GRIDS["oblique"]
    first = atlas.on_grid(grid_ijk(shape, heat_affine))
    assert atlas.on_grid(grid_ijk(shape, heat_affine.copy())) is first
    assert atlas.on_grid(grid_ijk(shape, heat_affine), transform=translation((1.0, 0, 0))) is not first
    assert atlas.on_grid(grid_ijk((shape[0] + 1, *shape[1:]), heat_affine)) is not first


def test_array_atlases_are_cached_by_content_so_repeat_calls_reuse_the_grid(atlas_data):
    from NeuroRelevanceLib.regions import resolve_atlas

    labels, atlas_affine = atlas_data
    first = resolve_atlas(kji(labels, atlas_affine), {1: "one"})
    assert resolve_atlas(kji(labels.copy(), atlas_affine.copy()), {1: "one"}) is first
    changed = labels.copy()
    changed[0, 0, 0] += 1
    assert resolve_atlas(kji(changed, atlas_affine), {1: "one"}) is not first
    assert resolve_atlas(kji(labels, atlas_affine), {1: "uno"}) is not first
    assert resolve_atlas(sitk_ijk(labels, atlas_affine), {1: "one"}).n_regions == first.n_regions


def test_sheared_heatmap_grid_still_matches_the_oracle(atlas_data):
    labels, atlas_affine = atlas_data
    heat_shape, heat_affine = GRIDS["oblique"]
    shear = np.eye(4)
    shear[0, 1], shear[2, 0] = 0.25, -0.15
    heat_affine = heat_affine @ shear
    expected = oracle_labels(labels, atlas_affine, heat_shape, heat_affine)
    assert np.count_nonzero(expected) > 500
    grid = atlas_ijk(labels, atlas_affine).on_grid(grid_ijk(heat_shape, heat_affine))
    resampled = np.concatenate([[0], np.unique(labels[labels > 0])])[grid.dense_kji.T]
    np.testing.assert_array_equal(resampled, expected)


def test_slicer_ordered_label_arrays(atlas_data):
    from NeuroRelevanceLib.regions import Atlas

    labels, atlas_affine = atlas_data
    atlas = Atlas(np.ascontiguousarray(labels.transpose(2, 1, 0)), grid_ijk(labels.shape, atlas_affine), {1: "one"})
    np.testing.assert_array_equal(atlas.label_map().T, labels)
    assert atlas.names[0] == "one"
