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
