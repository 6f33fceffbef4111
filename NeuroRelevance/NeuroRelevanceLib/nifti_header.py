"""Checks of a NIfTI header that decide where and what its voxels are, before any voxel is used.

A NIfTI file can carry two voxel-to-world matrices, the qform and the sform. nibabel (and every tool
built on it: this package's command line, FSL, nilearn) reads the sform when it is set; ITK, and so 3D
Slicer, read the qform. When both are set and disagree, the same file lies at two places: a map made by
one reader would sit beside the scan shown by the other. :func:`check_qform_sform` refuses such a file
with the size of the disagreement and the fix.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError

#: the largest distance (mm) between where the qform and the sform put a corner voxel that is accepted:
#: well below any visible misalignment, well above the float32 rounding of a quaternion
QFORM_SFORM_TOLERANCE_MM = 0.1

_CODES = {0: "unknown", 1: "scanner", 2: "aligned", 3: "talairach", 4: "mni", 5: "template"}


class AmbiguousGeometryError(InputError):
    """A NIfTI file whose qform and sform put its voxels at different places."""


def check_qform_sform(header, shape, path: str | Path) -> None:
    """Refuse a header whose qform and sform are both set and disagree by more than the tolerance."""
    if not (hasattr(header, "get_qform") and hasattr(header, "get_sform")):
        return  # ANALYZE and other formats without the two matrices
    qcode, scode = int(header["qform_code"]), int(header["sform_code"])
    if scode > 0 and qcode <= 0:
        _check_sform_pixdim(header, shape, path)
    if qcode <= 0 or scode <= 0:
        return  # one matrix only: every reader uses it (an sform's voxel sizes checked against pixdim above)
    qform, sform = np.asarray(header.get_qform(), float), np.asarray(header.get_sform(), float)
    apart = _corner_distance(qform, sform, shape)
    if apart <= QFORM_SFORM_TOLERANCE_MM:
        return
    name = Path(path).name
    raise AmbiguousGeometryError(
        f"{name} has a qform (code {qcode}, {_CODES.get(qcode, '?')}) and an sform (code {scode}, "
        f"{_CODES.get(scode, '?')}) that disagree: {_difference(qform, sform)}, so its voxels lie up to "
        f"{apart:.3g} mm apart depending on the reader (nibabel and this package's command line read the "
        "sform; ITK and 3D Slicer read the qform): a heatmap of it would not sit on the scan shown in Slicer. "
        f"Nothing was run and the file was not changed. {_fix(sform)}")


def _check_sform_pixdim(header, shape, path: str | Path) -> None:
    """Refuse an sform-only header whose pixdim gives other voxel sizes than its sform: nibabel takes the sizes
    from the sform, ITK (3D Slicer) takes the sform's directions and origin but the sizes from pixdim."""
    sform = np.asarray(header.get_sform(), float)
    sizes = np.linalg.norm(sform[:3, :3], axis=0)
    pixdim = np.abs(np.asarray(header["pixdim"][1:4], float))   # three sizes even for a 2D or 4D image
    if np.any(sizes == 0) or np.any(pixdim == 0):
        return
    itk = sform.copy()
    itk[:3, :3] = sform[:3, :3] / sizes * pixdim
    apart = _corner_distance(sform, itk, shape)
    if apart <= QFORM_SFORM_TOLERANCE_MM:
        return
    raise AmbiguousGeometryError(
        f"{Path(path).name} has only an sform (code {int(header['sform_code'])}), whose voxel sizes "
        f"{_xyz(sizes, 'x')} mm differ from the header's pixdim {_xyz(pixdim, 'x')} mm, so its voxels lie up to "
        f"{apart:.3g} mm apart depending on the reader (nibabel and this package's command line take the sizes "
        "from the sform; ITK and 3D Slicer from pixdim): a heatmap of it would not sit on the scan shown in Slicer. "
        "Nothing was run and the file was not changed. Write the sform into the qform too, which sets pixdim from "
        "it, e.g. with nibabel: img = nib.load(path); img.set_qform(img.get_sform()); nib.save(img, new_path).")


def _fix(sform: np.ndarray) -> str:
    """How to make the two agree: a sheared sform cannot be copied into a qform (a rotation, sizes and a flip)."""
    if is_sheared(sform):
        return ("Its sform is sheared (its voxel axes are not orthogonal), which a qform cannot hold, so copying it "
                "to the qform (nibabel's set_qform, fslorient -copysform2qform) leaves them disagreeing. Resample the "
                "scan onto an orthogonal grid (e.g. nibabel.processing.resample_from_to), or keep the qform, e.g. "
                "with nibabel: img = nib.load(path); img.set_sform(img.get_qform()); nib.save(img, new_path).")
    return ("Make the two agree first, e.g. with nibabel: img = nib.load(path); img.set_qform(img.get_sform()); "
            "nib.save(img, new_path) (the sform usually holds a registration; keep the qform instead with "
            "img.set_sform(img.get_qform())), or with FSL: fslorient -copysform2qform file.")


def is_sheared(affine, tolerance: float = 1e-4) -> bool:
    """Whether the voxel axes of a voxel-to-world matrix are not orthogonal (a shear: no qform, and no ITK image
    direction, can hold it)."""
    matrix = np.asarray(affine, float)[:3, :3]
    axes = matrix / np.linalg.norm(matrix, axis=0)
    return bool(np.abs(axes.T @ axes - np.eye(3)).max() > tolerance)


def _corner_distance(a: np.ndarray, b: np.ndarray, shape) -> float:
    """The largest distance (mm) between where ``a`` and ``b`` put the corner voxels of a volume."""
    last = [max(int(n) - 1, 0) for n in tuple(shape)[:3]] + [0] * (3 - len(tuple(shape)[:3]))
    corners = np.array([[i, j, k, 1.0] for i in (0, last[0]) for j in (0, last[1]) for k in (0, last[2])])
    return float(np.linalg.norm((corners @ a.T - corners @ b.T)[:, :3], axis=1).max())


def _difference(qform: np.ndarray, sform: np.ndarray) -> str:
    """The disagreement in words: origin shift (mm), rotation of the axes (degrees), voxel sizes (mm)."""
    shift = float(np.linalg.norm(qform[:3, 3] - sform[:3, 3]))
    qsize, ssize = np.linalg.norm(qform[:3, :3], axis=0), np.linalg.norm(sform[:3, :3], axis=0)
    qaxes, saxes = qform[:3, :3] / qsize, sform[:3, :3] / ssize
    cosine = np.clip((np.trace(qaxes.T @ saxes) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.degrees(np.arccos(cosine)))
    parts = [f"origin {shift:.3g} mm apart (qform {_xyz(qform[:3, 3])}, sform {_xyz(sform[:3, 3])} mm)",
             f"axes rotated by {angle:.3g}°" if angle >= 0.01 else "same axis directions"]
    if not np.allclose(qsize, ssize, atol=1e-3):
        parts.append(f"voxel sizes {_xyz(qsize, 'x')} vs {_xyz(ssize, 'x')} mm")
    return ", ".join(parts)


def _xyz(values, sep: str = ", ") -> str:
    return sep.join(f"{float(v):.4g}" for v in values)
