"""NIfTI files through nibabel, in NeuroRelevance's KJI + IJK→RAS convention (no MRML needed)."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from .errors import InputError
from .geometry import Grid, kji_to_nibabel, nibabel_to_kji


def read_nifti(path: str | Path, dtype=None) -> tuple[np.ndarray, Grid]:
    """Read a 3D NIfTI file into a KJI array and its :class:`Grid` (the file's affine)."""
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise InputError(f"No such file: {path}. Check the path.")
    try:
        image = nib.load(str(path))
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise InputError(f"{path} is not a readable NIfTI file ({exc}).") from exc
    try:
        data = np.asanyarray(image.dataobj)
    except (EOFError, OSError, ValueError, zlib.error) as exc:  # a truncated or corrupted file
        raise InputError(f"{path} is damaged or incomplete: its voxels could not be read ({exc}); copy or "
                         "download the file again.") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{path} holds a {data.ndim}D image {data.shape}; a 3D volume is needed.")
    if dtype is not None:
        data = data.astype(dtype)
    array = np.ascontiguousarray(nibabel_to_kji(data))
    return array, Grid(array.shape, image.affine)


def write_nifti(path: str | Path, array_kji: np.ndarray, grid: Grid, *, description: str = "",
                intent_name: str = "") -> Path:
    """Write a KJI array on ``grid`` as NIfTI (qform and sform both set to the grid, code 1).

    ``description`` goes to the header's ``descrip`` (at most 79 ASCII characters), ``intent_name``
    to ``intent_name`` (at most 15).
    """
    import nibabel as nib

    array_kji = np.asarray(array_kji)
    if array_kji.shape != grid.shape_kji:
        raise InputError(f"Array shape {array_kji.shape} does not match the grid {grid.shape_kji}.")
    if array_kji.dtype == np.bool_:
        array_kji = array_kji.astype(np.uint8)
    image = nib.Nifti1Image(np.ascontiguousarray(kji_to_nibabel(array_kji)), grid.ijk_to_ras)
    image.set_qform(grid.ijk_to_ras, code=1)
    image.set_sform(grid.ijk_to_ras, code=1)
    image.header.set_xyzt_units("mm")
    if description:
        image.header["descrip"] = description.encode("ascii", "replace")[:79]
    if intent_name:
        image.header["intent_name"] = intent_name.encode("ascii", "replace")[:15]
    path = Path(path)
    nib.save(image, str(path))
    return path
