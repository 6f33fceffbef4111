"""MRML storage nodes and nibabel agree on data and geometry (oblique, anisotropic volumes)."""
import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.mrml import array_to_volume, read_volume, volume_to_array, write_volume
from NeuroRelevanceLib.nifti import read_nifti, write_nifti


def _data(grid):
    rng = np.random.default_rng(1)
    return rng.normal(size=grid.shape_kji).astype(np.float32)


def test_storage_node_nifti_read_by_nibabel(scene, grid, tmp_path):
    array = _data(grid)
    write_volume(array_to_volume(scene, array, grid, "v"), tmp_path / "v.nii.gz")
    image = nib.load(tmp_path / "v.nii.gz")
    assert np.allclose(image.affine, grid.ijk_to_ras, atol=1e-4)
    assert np.array_equal(np.asanyarray(image.dataobj).transpose(2, 1, 0), array)


def test_nibabel_nifti_read_by_storage_node(scene, grid, tmp_path):
    array = _data(grid)
    write_nifti(tmp_path / "n.nii.gz", array, grid)
    node = read_volume(scene, tmp_path / "n.nii.gz")
    back, back_grid = volume_to_array(node)
    assert np.array_equal(back, array)
    assert np.allclose(back_grid.ijk_to_ras, grid.ijk_to_ras, atol=1e-4)
    assert node.GetName() == "n"


@pytest.mark.parametrize("suffix", [".nrrd", ".nii"])
def test_storage_roundtrip(scene, grid, tmp_path, suffix):
    array = _data(grid)
    write_volume(array_to_volume(scene, array, grid, "v"), tmp_path / f"v{suffix}")
    back, back_grid = volume_to_array(read_volume(scene, tmp_path / f"v{suffix}"))
    assert np.array_equal(back, array)
    assert np.allclose(back_grid.ijk_to_ras, grid.ijk_to_ras, atol=1e-4)


def test_nibabel_roundtrip(grid, tmp_path):
    array = _data(grid)
    back, back_grid = read_nifti(write_nifti(tmp_path / "x.nii", array, grid))
    assert np.array_equal(back, array) and back_grid.same_as(grid, atol=1e-5)


def test_bad_files_add_no_node(scene, tmp_path):
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="No such file"):
        read_volume(scene, tmp_path / "missing.nii")
    (tmp_path / "junk.nii").write_bytes(b"not an image")
    with pytest.raises(InputError, match="Could not read"):
        read_volume(scene, tmp_path / "junk.nii")
    with pytest.raises(InputError, match="unsupported"):
        read_volume(scene, tmp_path / "x.png")
    with pytest.raises(InputError, match="not a readable NIfTI"):
        read_nifti(tmp_path / "junk.nii")
    assert scene.GetNumberOfNodes() == before


def _values_at_world_points(array, grid, points_ras):
    ijk = (np.linalg.inv(grid.ijk_to_ras) @ np.c_[points_ras, np.ones(len(points_ras))].T)[:3].T
    index = np.rint(ijk).astype(int)
    assert np.allclose(ijk, index, atol=1e-3), "grids are not the same set of voxel centres"
    return array[index[:, 2], index[:, 1], index[:, 0]]


def test_left_handed_file_keeps_physical_placement(scene, tmp_path):
    """A left-handed affine (det < 0, common in NIfTI) may be re-indexed by Slicer's reader;
    every voxel value must still sit at the same RAS position."""
    from conftest import oblique_grid

    grid = oblique_grid()
    flipped = grid.ijk_to_ras @ np.diag([1.0, 1.0, -1.0, 1.0])
    from NeuroRelevanceLib.geometry import Grid
    left = Grid(grid.shape_kji, flipped)
    assert np.linalg.det(left.ijk_to_ras[:3, :3]) < 0
    array = _data(left)
    write_nifti(tmp_path / "left.nii.gz", array, left)
    back, back_grid = volume_to_array(read_volume(scene, tmp_path / "left.nii.gz"))
    k, j, i = [a.ravel() for a in np.mgrid[:7, :9, :11]]
    points = (left.ijk_to_ras @ np.c_[i, j, k, np.ones(len(i))].T)[:3].T
    assert np.array_equal(_values_at_world_points(back, back_grid, points), array[k, j, i])


def test_save_scene_is_an_export_that_leaves_file_names_alone(scene, grid, tmp_path):
    from NeuroRelevanceLib.mrml import save_scene

    original = tmp_path / "original.nrrd"
    write_volume(array_to_volume(scene, _data(grid), grid, "v"), original)
    node = read_volume(scene, original)
    save_scene(scene, tmp_path / "export" / "scene.mrml")
    assert (tmp_path / "export" / "scene-data").is_dir()
    assert node.GetStorageNode().GetFileName() == str(original)
    assert not scene.GetURL()


def test_transformed_volumes_are_refused(scene, grid):
    node = array_to_volume(scene, _data(grid), grid, "v")
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    node.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(InputError, match="harden the transform"):
        volume_to_array(node)
