"""Reading and writing volumes and scenes with MRML storage nodes (NIfTI, NRRD, .mrml)."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..nifti import load_volume
from ..nifti_header import AmbiguousGeometryError, is_sheared
from ..scan_kind import refuse_label_intent

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def _check_suffix(path: Path) -> None:
    name = path.name.lower()
    if not name.endswith(VOLUME_SUFFIXES):
        raise InputError(f"{path.name}: unsupported volume format; use one of {VOLUME_SUFFIXES}.")


def read_volume(scene, path: str | Path, name: str | None = None):
    """Read a volume file into a new scalar volume node (through an archetype storage node)."""
    import slicer

    path = Path(path)
    if scene is None:
        raise InputError("No MRML scene was given.")
    _check_suffix(path)
    if not path.is_file():
        raise InputError(f"No such file: {path}. Check the path.")
    _refuse_unusable_nifti(path)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    node = slicer.vtkMRMLScalarVolumeNode()
    if not storage.ReadData(node):
        raise InputError(_unreadable(path))
    stem = path.name.split(".")[0]
    node.SetName(scene.GenerateUniqueName(name or stem))
    scene.AddNode(node)
    scene.AddNode(storage)
    node.SetAndObserveStorageNodeID(storage.GetID())
    return node


def _refuse_unusable_nifti(path: Path) -> None:
    """A 4D NIfTI would be read as its first frame without a word, one whose qform and sform disagree at another
    place than nibabel reads it, and one whose header declares labels as a scan: refuse all three instead (every
    volume read here is a scan: atlases and label maps are read by :mod:`..regions`)."""
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        return
    try:
        image = load_volume(path, "file")
    except AmbiguousGeometryError:  # ITK would read the qform, nibabel-based tools the sform: refuse
        raise
    except InputError:  # unreadable: the volume reader reports it
        return
    refuse_label_intent(image.header, path)
    shape = image.shape
    if len(shape) > 3 and any(n > 1 for n in shape[3:]):
        raise InputError(f"{path.name} holds {int(np.prod(shape[3:]))} volumes (shape {shape}); "
                         "a 3D scan is needed: extract one frame first (e.g. nibabel's slicer, "
                         "image.slicer[..., 0]).")


def _unreadable(path: Path) -> str:
    """Why ITK could not read ``path``: a sheared NIfTI is named as such, anything else is invalid."""
    if path.name.lower().endswith((".nii", ".nii.gz")):
        try:
            if is_sheared(load_volume(path, "file").affine):
                return (f"Could not read {path.name}: its voxel axes are not orthogonal (a sheared "
                        "affine), which ITK and Slicer cannot represent; resample it onto an "
                        "orthogonal grid first (e.g. nibabel.processing.resample_from_to).")
        except Exception:  # not even nibabel can read it: the generic message below fits
            pass
    return f"Could not read {path.name} as a volume: is it a valid, complete image file?"


def write_volume(node, path: str | Path, compress: bool = True) -> Path:
    """Write a volume node to NIfTI/NRRD through an archetype storage node."""
    import slicer

    path = Path(path)
    _check_suffix(path)
    if node is None or node.GetImageData() is None:
        raise InputError("No volume with image data was given to write.")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    storage.SetUseCompression(bool(compress))
    if not storage.WriteData(node):
        raise OSError(f"Could not write {path}: check that the folder exists and is writable.")
    return path


def save_scene(scene, path: str | Path) -> Path:
    """Save ``scene`` as a ``.mrml`` file with every volume and table written beside it.

    Data files go to ``<name>-data/`` next to the scene file and are referenced relatively, so
    the folder can be moved and opened in Slicer (File > Add Data). This is an export: afterwards
    every storage node's file name and the scene's own URL are what they were before, so a live
    Slicer session keeps saving where it did.
    """
    path = Path(path).resolve()
    if path.suffix != ".mrml":
        raise InputError(f"{path.name}: a scene file must end in .mrml.")
    data_dir = path.parent / f"{path.stem}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    restore: list[tuple[Any, str | None]] = []
    added: list[Any] = []
    url, root = scene.GetURL(), scene.GetRootDirectory()
    try:
        for index in range(scene.GetNumberOfNodesByClass("vtkMRMLStorableNode")):
            node = scene.GetNthNodeByClass(index, "vtkMRMLStorableNode")
            if node.GetHideFromEditors() and not node.IsA("vtkMRMLColorTableNode"):
                continue
            if node.IsA("vtkMRMLColorTableNode") and node.GetType() != node.User:
                continue  # Slicer's built-in tables are recreated by Slicer itself
            storage = node.GetStorageNode()
            if storage is None:
                if not node.AddDefaultStorageNode():
                    continue
                storage = node.GetStorageNode()
                added.append(storage)
            else:
                restore.append((storage, storage.GetFileName()))
            extension = storage.GetDefaultWriteFileExtension()
            stem = _safe_stem(node.GetName(), used)
            storage.SetFileName(str(data_dir / f"{stem}.{extension}"))
            if not storage.WriteData(node):
                raise OSError(f"Could not write the data of node '{node.GetName()}' to {data_dir}.")
        scene.SetRootDirectory(str(path.parent))
        scene.SetURL(str(path))
        if not scene.Commit():
            raise OSError(f"Could not write the scene file {path}.")
    finally:
        for storage, file_name in restore:
            storage.SetFileName(file_name or "")
        for storage in added:
            storage.SetFileName("")
        scene.SetURL(url or "")
        scene.SetRootDirectory(root or "")
    return path


def save_scene_bundle(scene, path: str | Path) -> Path:
    """Save ``scene`` as one ``.mrb`` file (Slicer's bundle: a zip of the ``.mrml`` and its data).

    The ``.mrml`` is written by :func:`save_scene` into a temporary folder, so nothing in the
    scene or on disk beside ``path`` changes; File > Add Data in 3D Slicer opens the bundle.
    """
    import tempfile
    import zipfile

    path = Path(path).resolve()
    if path.suffix != ".mrb":
        raise InputError(f"{path.name}: a scene bundle must end in .mrb.")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / path.stem
        save_scene(scene, folder / f"{path.stem}.mrml")
        partial = path.with_name(path.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as bundle:
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    bundle.write(file, file.relative_to(Path(tmp)).as_posix())
        partial.replace(path)
    return path


def _safe_stem(name: str, used: set[str]) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "node"
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}_{n}"
    used.add(candidate)
    return candidate


@contextmanager
def staged_folder(folder: str | Path, stem: str = "export") -> Iterator[tuple[Path, Path]]:
    """Write files into a private folder inside ``folder``; move them into place only on success.

    Yields ``(staging, final)``. When the block raises, the staging folder and every folder this
    call created are removed, so a failed export leaves nothing behind; a folder that cannot be
    made or written is an :class:`InputError` naming it.
    """
    final = Path(folder).expanduser()
    created = [p for p in [final, *final.parents] if not p.exists()]
    try:
        final.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{stem}-partial-", dir=final))
    except OSError as exc:
        _remove_folders(created)
        raise InputError(f"Cannot write to the folder {final} ({exc.strerror or exc}); choose a "
                         "folder you can write to.") from None
    try:
        yield staging, final
        for entry in sorted(staging.iterdir()):
            target = final / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_folders(created)
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _remove_folders(folders: list[Path]) -> None:
    """Remove folders this process created (innermost first) if they are empty."""
    for path in folders:
        with suppress(OSError):
            path.rmdir()
