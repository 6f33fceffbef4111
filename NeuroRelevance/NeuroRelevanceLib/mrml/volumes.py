"""Scalar volume nodes <-> numpy arrays (KJI order) with their IJK→RAS geometry, exactly."""
from __future__ import annotations

import numpy as np
import vtk
from vtk.util import numpy_support

from ..errors import InputError
from ..geometry import Grid

#: numpy dtypes a volume node can hold as they are; others are converted (see ``_storable``)
_SUPPORTED = {np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.uint32,
                                    np.int32, np.int64, np.uint64, np.float32, np.float64)}


def volume_grid(node) -> Grid:
    """The :class:`Grid` (shape in KJI order, IJK→RAS matrix) of a volume node."""
    image = _image_of(node)
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    return Grid(tuple(reversed(image.GetDimensions())), ijk_to_ras)


def volume_to_array(node, allow_components: bool = False) -> tuple[np.ndarray, Grid]:
    """Copy a volume node's voxels into a KJI-ordered numpy array and return it with its grid.

    Multi-component volumes (RGB, vectors) are refused unless ``allow_components`` is set, in
    which case the array is shaped (K, J, I, C).
    """
    image = _image_of(node)
    scalars = image.GetPointData().GetScalars()
    components = scalars.GetNumberOfComponents()
    if components != 1 and not allow_components:
        raise InputError(
            f"Volume '{node.GetName()}' has {components} components per voxel; relevance needs a "
            "scalar volume. Extract one component first (Vector to Scalar Volume module), or pass "
            "allow_components=True to get a (K, J, I, C) array.")
    dims = image.GetDimensions()
    array = numpy_support.vtk_to_numpy(scalars).copy()
    shape = tuple(reversed(dims)) + ((components,) if components != 1 else ())
    return array.reshape(shape), volume_grid(node)


def check_array(array: np.ndarray, what: str = "array") -> np.ndarray:
    """Validate a 3D scalar array for a volume node and return it in a storable dtype."""
    if array is None:
        raise InputError(f"No {what} was given: pass a 3D numpy array in KJI order.")
    array = np.asarray(array)
    if array.ndim != 3:
        raise InputError(
            f"The {what} must be 3D (K, J, I); got {array.ndim}D with shape {array.shape}. "
            "Squeeze batch/channel axes, or pass one channel at a time.")
    if array.size == 0:
        raise InputError(f"The {what} is empty (shape {array.shape}).")
    if array.dtype.kind == "c":
        raise InputError(f"The {what} is complex-valued; take its magnitude or real part first.")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise InputError(
            f"The {what} contains {bad} NaN/inf values; replace them (e.g. np.nan_to_num) first.")
    return _storable(array)


def array_to_volume(scene, array_kji: np.ndarray, grid: Grid, name: str,
                    node=None, node_class: str = "vtkMRMLScalarVolumeNode"):
    """Write a KJI array and its geometry into ``node``, or into a new node added to ``scene``.

    All checks run before anything is added, so bad input leaves the scene untouched.
    """
    if scene is None:
        raise InputError("No MRML scene was given: pass the vtkMRMLScene to add the volume to.")
    array = check_array(array_kji)
    if tuple(array.shape) != tuple(grid.shape_kji):
        raise InputError(f"Array shape {array.shape} does not match the grid {grid.shape_kji}.")
    image = vtk.vtkImageData()
    image.SetDimensions(*grid.shape_ijk)
    flat = np.ascontiguousarray(array).ravel()
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(flat, deep=True))
    if node is None:
        node = scene.AddNewNodeByClass(node_class, scene.GenerateUniqueName(name))
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(grid.ijk_to_ras[r, c]))
    node.SetIJKToRASMatrix(matrix)
    node.SetAndObserveImageData(image)
    return node


def volume_buffer(node) -> np.ndarray:
    """A writable KJI view of a scalar volume's own voxels (no copy); call :func:`mark_modified` after writing."""
    image = _image_of(node)
    scalars = image.GetPointData().GetScalars()
    if scalars.GetNumberOfComponents() != 1:
        raise InputError(f"Volume '{node.GetName()}' is not a scalar volume.")
    return numpy_support.vtk_to_numpy(scalars).reshape(tuple(reversed(image.GetDimensions())))


def mark_modified(node) -> None:
    """Tell VTK and MRML that a volume's voxels changed (after writing into :func:`volume_buffer`)."""
    image = node.GetImageData()
    image.GetPointData().GetScalars().Modified()
    image.Modified()
    node.Modified()


def _image_of(node):
    if node is None:
        raise InputError("No volume node was given: select an input volume.")
    if not node.IsA("vtkMRMLVolumeNode"):
        raise InputError(f"Node '{node.GetName()}' is a {node.GetClassName()}, not a volume.")
    image = node.GetImageData()
    if image is None or image.GetNumberOfPoints() == 0:
        raise InputError(f"Volume '{node.GetName()}' has no image data: load or create it first.")
    if node.GetParentTransformNode() is not None:
        raise InputError(f"Volume '{node.GetName()}' is under the transform "
                         f"'{node.GetParentTransformNode().GetName()}': harden the transform "
                         "(Data module: right-click > Harden transform) so its voxels and geometry "
                         "are where they are shown.")
    return image


def _storable(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.dtype not in _SUPPORTED:
        raise InputError(f"Arrays of dtype {array.dtype} cannot be stored in a volume node.")
    return array
