"""Heatmap inputs for region statistics: files, nibabel images, SimpleITK images, (array_kji, Grid) pairs.

A heatmap is checked once here (3D, finite, not all zero) and summarised with the numbers that
do not depend on the atlas (Σ R⁺ and Σ |R| over the whole map).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import InputError
from ..geometry import Grid
from .grids import PAIR_HINT, check_shape, from_sitk, volume_pair

#: how a (k, j, i) array is raveled without a copy
RavelOrder = Literal["C", "F"]

#: elements per block when summarising a heatmap: temporaries stay in cache, and each block's
#: pairwise float32 sum is accurate to ~1e-7 relative before the blocks add up in float64
_BLOCK = 1 << 16


@dataclass(eq=False)
class Heatmap:
    """A relevance map ((k, j, i) order, on ``grid``) with atlas-free summaries.

    ``total_pos`` and ``total_abs`` are Σ R⁺ and Σ |R| over the whole map; ``label`` names the
    subject in tables (a file's name), ``what`` names the map in messages ("heatmap file h.nii.gz").
    """

    values: np.ndarray
    grid: Grid
    label: str
    total_pos: float = 0.0
    total_abs: float = 0.0
    what: str = ""

    def flat(self) -> tuple[np.ndarray, RavelOrder]:
        """The values raveled without a copy, and the order ('C' or 'F') used."""
        values = self.values
        order: RavelOrder = "F" if values.flags.f_contiguous and not values.flags.c_contiguous else "C"
        return values.ravel(order=order), order

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.values.shape


def load_heatmap(heatmap: object, label: str = "heatmap", what: str | None = None) -> Heatmap:
    """Normalise one heatmap input (path, nibabel image, SimpleITK image or ``(array_kji, Grid)``).

    ``label`` names it in tables, ``what`` in messages (default: ``label``).
    """
    table_label = label
    values, grid, label = _read(heatmap, what or label)
    try:
        values = np.asarray(values)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"The {label} cannot be read as a numpy array ({exc}); pass a numpy array "
                         "(for a GPU tensor: tensor.detach().cpu().numpy()).") from exc
    if values.ndim != 3:
        raise InputError(f"The {label} is {values.ndim}D {values.shape}; region statistics need one 3D map "
                         "(pass each volume of a 4D series separately, as a list).")
    if np.iscomplexobj(values) or not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_):
        raise InputError(f"The {label} has dtype {values.dtype}; pass a real-valued map.")
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    elif values.dtype.itemsize < 4:  # float16: sum in float32
        values = values.astype(np.float32)
    if not (values.flags.c_contiguous or values.flags.f_contiguous):
        values = np.ascontiguousarray(values)
    check_shape(values.shape, grid, label)
    heatmap = Heatmap(values, grid, table_label, what=label)
    flat, _ = heatmap.flat()
    total, total_abs = _summarise(flat, flat.dtype)
    if not (np.isfinite(total) and np.isfinite(total_abs)):
        bad = int(np.count_nonzero(~np.isfinite(flat)))
        if bad == 0:  # finite values whose float32 block sums overflowed
            total, total_abs = _summarise(flat, np.float64)
        else:
            raise InputError(f"The {label} holds {bad} NaN or infinite values; replace them (e.g. "
                             "np.nan_to_num) before computing region statistics.")
    if total_abs == 0.0:
        raise InputError(f"The {label} is all zero, so there is no relevance to attribute to regions; "
                         "check that the explanation ran on the intended target.")
    heatmap.total_pos, heatmap.total_abs = max(0.5 * (total + total_abs), 0.0), total_abs
    return heatmap


def _summarise(flat: np.ndarray, dtype: np.dtype | type[np.floating]) -> tuple[float, float]:
    """Σ R and Σ |R| in one blocked pass (NaN and inf propagate into the sums)."""
    total = total_abs = 0.0
    scratch = np.empty(min(_BLOCK, flat.size), dtype=flat.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, flat.size, _BLOCK):
            block = flat[start:start + _BLOCK]
            magnitude = np.abs(block, out=scratch[:block.size])
            total += float(block.sum(dtype=dtype))
            total_abs += float(magnitude.sum(dtype=dtype))
    return total, total_abs


def load_heatmaps(heatmaps: object, what: str) -> list[Heatmap]:
    """A list input is a group (one entry per subject); anything else is one heatmap."""
    if isinstance(heatmaps, list):
        if not heatmaps:
            raise InputError(f"The {what} list is empty; pass at least one heatmap.")
        return [load_heatmap(h, *_names(h, what, f"{what} {i}")) for i, h in enumerate(heatmaps)]
    return [load_heatmap(heatmaps, *_names(heatmaps, what, what))]


def _names(heatmap: object, role: str, default: str) -> tuple[str, str]:
    """(label for tables, phrase for messages): a file's name and "heatmap file <name>", else ``default``."""
    if isinstance(heatmap, (str, Path)):
        return Path(heatmap).name, f"{role} file {Path(heatmap).name}"
    return default, default


def _read(heatmap: object, label: str) -> tuple[object, Grid, str]:
    if isinstance(heatmap, (str, Path)):
        return _read_file(Path(heatmap), label)
    if isinstance(heatmap, tuple):
        values, grid = volume_pair(heatmap, label)
        return values, grid, label
    if hasattr(heatmap, "affine") and hasattr(heatmap, "dataobj"):  # nibabel spatial image
        from ..nifti import from_nibabel

        values, grid = from_nibabel(heatmap, what=f"The {label}")
        return values, grid, label
    if hasattr(heatmap, "GetDirection") and hasattr(heatmap, "GetSpacing"):  # SimpleITK image
        values, grid = from_sitk(heatmap)
        return values, grid, label
    if isinstance(heatmap, np.ndarray):
        raise InputError(f"The {label} is a bare array without geometry, so it cannot be placed against the "
                         f"atlas; {PAIR_HINT}.")
    raise InputError(f"Cannot read the {label} from a {type(heatmap).__name__}; pass a NIfTI path, a nibabel "
                     "image, a SimpleITK image or an (array_kji, Grid) pair.")


def _read_file(path: Path, label: str) -> tuple[np.ndarray, Grid, str]:
    if not path.is_file():
        raise InputError(f"No heatmap file at {path}; check the path.")
    if path.name.lower().endswith((".nii", ".nii.gz", ".img", ".hdr")):
        from ..nifti import read_nifti

        values, grid = read_nifti(path, what=label.removesuffix(f" {path.name}"))
        return values, grid, label
    import SimpleITK as sitk

    try:
        values, grid = from_sitk(sitk.ReadImage(str(path)))
    except RuntimeError as exc:
        from ..nifti import refuse_non_volume

        refuse_non_volume(path)  # a GIFTI surface: said as every command says it
        raise InputError(f"{path} is not an image SimpleITK can read ({exc}).") from exc
    return values, grid, label
