"""One scan from disk: NIfTI (nibabel), NRRD and MetaImage (SimpleITK) or a DICOM series folder.

Every reader returns a float32 KJI array and its :class:`Grid` (IJK→RAS), the convention of the rest
of the library; anything that is not one 3D scalar volume is refused with the cause and the fix.
:func:`fingerprint` says whether an input changed since its outputs were written (for resuming).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..geometry import Grid

NIFTI = (".nii", ".nii.gz")
ITK = (".nrrd", ".nhdr", ".mha", ".mhd")
FORMATS = "NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd) or a folder holding one DICOM series"


def read_scan(path: str | Path) -> tuple[np.ndarray, Grid]:
    """Read one 3D scan (a file, or a folder with one DICOM series) as (float32 KJI array, Grid)."""
    path = Path(path)
    if not str(path).strip() or str(path) == ".":
        raise InputError("No scan path was given for this subject; fill in its path in the table.")
    if path.is_dir():
        return _read_dicom_folder(path)
    if not path.is_file():
        raise InputError(f"No such file or folder: {path}; check the path.")
    name = path.name.lower()
    if name.endswith(NIFTI):
        from ..nifti import read_nifti

        return read_nifti(path, dtype=np.float32, scan=True)
    if name.endswith(".dcm"):  # one file of a series: read the whole series it belongs to
        return _read_dicom_folder(path.parent, _series_of(path))
    if name.endswith(ITK):
        import SimpleITK as sitk

        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            raise InputError(f"{path} is not a readable image ({_first_line(exc)}); is the file complete?") from exc
        return _from_sitk(image, path)
    raise InputError(f"{path.name}: unsupported scan format; use {FORMATS}.")


def _series_of(path: Path) -> str:
    """The series instance UID of one DICOM file."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"{path} is not a readable DICOM file ({_first_line(exc)}).") from exc
    if not reader.HasMetaDataKey("0020|000e"):
        raise InputError(f"{path} names no DICOM series (tag 0020,000E); give its folder instead.")
    return reader.GetMetaData("0020|000e").strip()


def _read_dicom_folder(folder: Path, series: str | None = None) -> tuple[np.ndarray, Grid]:
    import SimpleITK as sitk

    found = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or ())
    if not found:
        raise InputError(f"{folder} holds no DICOM series; give a scan file or a folder of DICOM slices.")
    if series is None:
        if len(found) > 1:
            raise InputError(f"{folder} holds {len(found)} DICOM series ({', '.join(found[:3])}); put each "
                             "series in its own folder, or give one of its files.")
        series = found[0]
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"The DICOM series in {folder} could not be read ({_first_line(exc)}).") from exc
    return _from_sitk(image, folder)


def _from_sitk(image, path: Path) -> tuple[np.ndarray, Grid]:
    import SimpleITK as sitk

    from ..geometry import grid_from_sitk

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path.name} has {image.GetNumberOfComponentsPerPixel()} components per voxel "
                         "(colour or vector image); a scalar scan is needed: save one channel per file.")
    size = image.GetSize()
    if len(size) == 4 and size[3] == 1:
        image = sitk.Extract(image, (*size[:3], 0), (0, 0, 0, 0))
    elif len(size) != 3:
        raise InputError(f"{path.name} holds a {len(size)}D image {tuple(size)}; a 3D volume is needed "
                         "(extract one frame of a time series, or stack 2D slices into a volume).")
    array = np.ascontiguousarray(sitk.GetArrayFromImage(image), dtype=np.float32)
    try:
        grid = grid_from_sitk(image)
    except ValueError as exc:
        raise InputError(f"{path.name} has an unusable geometry ({exc}).") from exc
    return array, grid


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def fingerprint(source) -> str:
    """What identifies an input's current content: path, size and modification time of a file (of
    every file of a folder), or a hash of an in-memory (array, Grid) pair."""
    if isinstance(source, tuple):
        array, grid = source
        digest = hashlib.blake2b(np.ascontiguousarray(array).view(np.uint8).data, digest_size=16)
        digest.update(np.asarray(grid.ijk_to_ras, dtype=np.float64).tobytes())
        return f"array:{digest.hexdigest()}"
    path = Path(source)
    if path.is_dir():
        digest = hashlib.blake2b(digest_size=16)
        for item in sorted(p for p in path.iterdir() if p.is_file()):
            stat = item.stat()
            digest.update(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return f"folder:{path.resolve()}:{digest.hexdigest()}"
    if path.is_file():
        stat = path.stat()
        return f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return f"missing:{path}"
