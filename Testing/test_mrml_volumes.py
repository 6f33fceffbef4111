"""Volume node <-> numpy on a real vtkMRMLScene: exact geometry, dtypes, and refused inputs."""
import numpy as np
import pytest
import vtk

from conftest import node_count
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.mrml import array_to_volume, volume_grid, volume_to_array


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_roundtrip_exact(scene, grid, dtype):
    rng = np.random.default_rng(0)
    array = (rng.random(grid.shape_kji) * 100).astype(dtype)
    node = array_to_volume(scene, array, grid, "vol")
    back, back_grid = volume_to_array(node)
    assert back.dtype == array.dtype and np.array_equal(back, array)
    assert np.array_equal(back_grid.ijk_to_ras, grid.ijk_to_ras)
    assert np.allclose(node.GetSpacing(), grid.spacing)
    assert np.allclose(node.GetOrigin(), grid.origin)


def test_bool_and_half_are_converted(scene, grid):
    node = array_to_volume(scene, np.ones(grid.shape_kji, bool), grid, "mask")
    assert volume_to_array(node)[0].dtype == np.uint8
    node = array_to_volume(scene, np.ones(grid.shape_kji, np.float16), grid, "half")
    assert volume_to_array(node)[0].dtype == np.float32


def test_kji_index_maps_to_node_ras(scene, grid):
    """Voxel [k, j, i] of the array sits where the node's own IJK→RAS puts (i, j, k)."""
    array = np.zeros(grid.shape_kji, np.float32)
    array[5, 2, 8] = 1.0
    node = array_to_volume(scene, array, grid, "vol")
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ras = matrix.MultiplyPoint((8, 2, 5, 1))
    assert np.allclose(ras[:3], (grid.ijk_to_ras @ [8, 2, 5, 1])[:3])
    assert node.GetImageData().GetScalarComponentAsDouble(8, 2, 5, 0) == 1.0


def test_grid_unchanged_by_read(scene, grid):
    node = array_to_volume(scene, np.zeros(grid.shape_kji), grid, "vol")
    assert volume_grid(node).same_as(grid, atol=0)


def test_multicomponent_refused_unless_asked(scene, grid):
    node = array_to_volume(scene, np.zeros(grid.shape_kji, np.float32), grid, "rgb")
    image = node.GetImageData()
    image.AllocateScalars(vtk.VTK_FLOAT, 3)
    with pytest.raises(InputError, match="3 components"):
        volume_to_array(node)
    array, _ = volume_to_array(node, allow_components=True)
    assert array.shape == grid.shape_kji + (3,)


@pytest.mark.parametrize("bad, match", [
    (None, "No array"),
    (np.zeros((0, 3, 3)), "empty"),
    (np.zeros((3, 3)), "must be 3D"),
    (np.zeros((2, 3, 3, 3)), "must be 3D"),
    (np.full((7, 9, 11), np.nan), "NaN"),
    (np.zeros((7, 9, 11), complex), "complex"),
    (np.zeros((9, 9, 9)), "does not match"),
])
def test_bad_arrays_add_no_node(scene, grid, bad, match):
    before = node_count(scene)
    with pytest.raises(InputError, match=match):
        array_to_volume(scene, bad, grid, "bad")
    assert node_count(scene) == before


def test_bad_nodes(scene):
    with pytest.raises(InputError, match="No volume node"):
        volume_to_array(None)
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InputError, match="no image data"):
        volume_to_array(empty)
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", "t")
    with pytest.raises(InputError, match="not a volume"):
        volume_to_array(table)
