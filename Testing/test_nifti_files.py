"""``nifti.read_nifti`` / ``read_nifti_grid`` refuse files nibabel reads as something other than a volume."""
import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.nifti import read_nifti, read_nifti_grid


@pytest.fixture
def surface(tmp_path):
    """A real GIFTI surface file: nibabel loads it, but it has no voxel grid (no shape, no affine)."""
    image = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.zeros(5, np.float32))])
    path = tmp_path / "lh.thickness.gii"
    nib.save(image, str(path))
    return path


@pytest.mark.parametrize("read", [read_nifti, read_nifti_grid])
def test_a_surface_file_is_refused_with_what_it_is(surface, read):
    with pytest.raises(InputError, match=r"lh\.thickness\.gii is a GiftiImage, not a volume"):
        read(surface)


def test_a_volume_still_reads(tmp_path):
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), np.diag([2.0, 2.0, 2.0, 1.0])), str(path))
    array, grid = read_nifti(path)
    assert array.shape == (6, 5, 4) and read_nifti_grid(path).shape_kji == (6, 5, 4) == grid.shape_kji
