"""NIfTI files through nibabel, in NeuroRelevance's KJI + IJK→RAS convention (no MRML needed)."""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError
from .geometry import Grid, kji_to_nibabel, nibabel_to_kji
from .nifti_header import check_qform_sform

if TYPE_CHECKING:
    from nibabel.spatialimages import SpatialImage


def read_nifti(path: str | Path, dtype=None, *, what: str = "file", scan: bool = False) -> tuple[np.ndarray, Grid]:
    """Read a 3D NIfTI file into a KJI array and its :class:`Grid` (the file's affine).

    ``what`` names the file's role in messages ("heatmap file" → "The heatmap file h.nii.gz holds …");
    ``scan``: the file must be an image, and one whose header declares a label map is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No such file: {path}. Check the path.")
    image = load_volume(path, what)
    if scan:
        from .scan_kind import refuse_label_intent

        refuse_label_intent(image.header, path)
    return from_nibabel(image, dtype, what=str(path) if what == "file" else f"The {what} {path.name}")


def read_nifti_grid(path: str | Path) -> Grid:
    """The :class:`Grid` of a 3D NIfTI file from its header alone (no voxels read)."""
    path = Path(path)
    image = load_volume(path, "file")
    shape = tuple(image.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise InputError(f"{path} holds a {len(shape)}D image {shape}; a 3D volume is needed.")
    try:
        return Grid(shape[::-1], np.asarray(image.affine, dtype=float))
    except ValueError as exc:
        raise InputError(f"{path} has an unusable affine ({exc}); fix its header (sform/qform).") from exc


def load_volume(path: Path, what: str) -> SpatialImage:
    """``nibabel.load`` with its failures, files that are not volumes (a GIFTI surface) and files whose qform and
    sform disagree (:func:`nifti_header.check_qform_sform`) as InputError."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise InputError(f"{path} is not a readable NIfTI {what} ({exc}).") from exc
    if not isinstance(image, nib.spatialimages.SpatialImage):
        raise _not_a_volume(path, image)
    check_qform_sform(image.header, image.shape, path)
    return image


def _not_a_volume(path: Path, image: object) -> InputError:
    return InputError(f"{path} is a {type(image).__name__}, not a volume: give a NIfTI image (.nii or .nii.gz).")


def refuse_non_volume(path: Path) -> None:
    """Raise the :func:`load_volume` error for a file nibabel reads as something other than a volume (a GIFTI
    surface); call it where another reader (SimpleITK) failed, so every command says the same."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except Exception:  # noqa: BLE001 - not a file nibabel knows: the caller's own message stands
        return
    if not isinstance(image, nib.spatialimages.SpatialImage):
        raise _not_a_volume(path, image)


def from_nibabel(image, dtype=None, what: str = "The NIfTI image") -> tuple[np.ndarray, Grid]:
    """A nibabel image (or anything with ``dataobj`` and ``affine``) as a KJI array and its :class:`Grid`.

    The one place where nibabel's (i, j, k) array order is turned into NeuroRelevance's (k, j, i):
    a 4D image with one volume counts as 3D; voxels are read (scaled) as nibabel gives them. An image whose
    qform and sform disagree is refused (:func:`nifti_header.check_qform_sform`).
    """
    if hasattr(image, "header"):
        check_qform_sform(image.header, image.shape, what)
    try:
        data = np.asanyarray(image.dataobj)
    except (EOFError, OSError, ValueError, zlib.error) as exc:  # a truncated or corrupted file
        raise InputError(f"{what} is damaged or incomplete: its voxels could not be read ({exc}); copy or "
                         "download the file again.") from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{what} holds a {data.ndim}D image {data.shape}; a 3D volume is needed "
                         "(pass each volume of a 4D series separately).")
    if dtype is not None:
        data = data.astype(dtype)
    array = np.ascontiguousarray(nibabel_to_kji(data))
    try:
        return array, Grid(array.shape, np.asarray(image.affine, dtype=float))
    except ValueError as exc:
        raise InputError(f"{what} has an unusable affine ({exc}); fix its header (sform/qform).") from exc


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


def write_nifti_series(path: str | Path, volumes_kji: np.ndarray, grid: Grid) -> Path:
    """Write ``n`` KJI volumes on ``grid``, stacked as ``(n, k, j, i)``, as one 4D NIfTI (volume axis last)."""
    import nibabel as nib

    volumes_kji = np.asarray(volumes_kji)
    if volumes_kji.ndim != 4 or volumes_kji.shape[1:] != grid.shape_kji:
        raise InputError(f"Volumes of shape {volumes_kji.shape} do not match (n, *{grid.shape_kji}).")
    image = nib.Nifti1Image(np.ascontiguousarray(volumes_kji.transpose(3, 2, 1, 0)), grid.ijk_to_ras)
    image.set_qform(grid.ijk_to_ras, code=1)
    image.set_sform(grid.ijk_to_ras, code=1)
    image.header.set_xyzt_units("mm")
    path = Path(path)
    nib.save(image, str(path))
    return path
