"""An atlas: an integer label map on a voxel grid plus the names of its regions.

The label map is kept as a compact *dense* index (0 = background, 1..n = the n regions in
ascending label-id order), which is what gets resampled and counted; the original ids and
names sit beside it. Resampled copies on heatmap grids are cached on the atlas object.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..geometry import Grid
from .grids import check_grid, check_shape, from_sitk
from .lookup_tables import as_names, read_lookup_table
from .resample import LabelGrid, resample_dense, transform_key

#: how many resampled grids one atlas keeps (each is one byte or two per heatmap voxel)
GRID_CACHE_SIZE = 4
_SIDECAR_SUFFIXES = (".txt", ".ctbl", ".csv", ".tsv")


class Atlas:
    """Integer label map in (k, j, i) order on a :class:`~NeuroRelevanceLib.geometry.Grid`, and ``{id: name}``.

    ``Atlas(labels_kji, grid)`` takes a label array as Slicer's ``arrayFromVolume`` gives it (a labelmap
    node) and the grid of its IJK→RAS matrix. ``licence`` and ``space`` are free-text notes carried into
    result tables.
    """

    def __init__(self, labels_kji: np.ndarray, grid: Grid, names: Mapping | str | Path | None = None,
                 name: str = "custom", space: str = "unknown", licence: str = "") -> None:
        labels = _integer_labels(labels_kji, name)
        self.grid = check_grid(grid, f"atlas '{name}'")
        check_shape(labels.shape, self.grid, f"atlas '{name}' label map")
        self.name, self.space, self.licence = name, space, licence
        counts = np.bincount(labels.ravel()) if labels.max() < 2**22 else None
        ids = np.flatnonzero(counts) if counts is not None else np.unique(labels)
        ids = ids[ids != 0].astype(np.int64)
        if ids.size == 0:
            raise InputError(f"The atlas '{name}' holds only background (0); pass a label map with regions.")
        table = as_names(names) or {}
        #: region label ids present in the label map, ascending
        self.ids = ids
        #: region names, aligned with ``ids`` ("label <id>" where the table has none)
        self.names = [table.get(int(i), f"label {int(i)}") for i in ids]
        #: ids named in the lookup table but absent from the label map
        self.unused_names = sorted(set(table) - set(int(i) for i in ids))
        dense_type = np.uint8 if ids.size < 255 else np.uint16 if ids.size < 65535 else np.uint32
        if counts is not None:
            lut = np.zeros(counts.size, dtype=dense_type)
            lut[ids] = np.arange(1, ids.size + 1, dtype=dense_type)
            self.dense = lut[labels]
        else:
            self.dense = (np.searchsorted(ids, labels) + 1).astype(dense_type)
            self.dense[labels == 0] = 0
        self.dense.flags.writeable = False
        self.shape = self.dense.shape
        self._dense_image = None
        self._grids: OrderedDict[tuple, LabelGrid] = OrderedDict()

    @property
    def n_regions(self) -> int:
        return int(self.ids.size)

    def label_map(self) -> np.ndarray:
        """The label map with the original ids ((k, j, i) order, on :attr:`grid`)."""
        return np.concatenate([[0], self.ids])[self.dense]

    def on_grid(self, grid: Grid, transform=None) -> LabelGrid:
        """This atlas resampled (nearest neighbour, physical space) onto a heatmap's :class:`Grid`; cached.

        ``transform`` (a 4×4 RAS matrix or a SimpleITK transform) maps heatmap-space points to atlas space.
        """
        grid = check_grid(grid, "heatmap")
        key = (grid.shape_kji, np.round(grid.ijk_to_ras, 6).tobytes(), transform_key(transform))
        found = self._grids.get(key)
        if found is None:
            if self._dense_image is None:
                from ..geometry import array_to_sitk
                self._dense_image = array_to_sitk(self.dense, self.grid)
            found = LabelGrid(resample_dense(self._dense_image, grid, transform), grid, self.n_regions)
            self._grids[key] = found
            while len(self._grids) > GRID_CACHE_SIZE:
                self._grids.popitem(last=False)
        else:
            self._grids.move_to_end(key)
        return found

    def __repr__(self) -> str:
        return (f"Atlas({self.name!r}, {self.n_regions} regions, shape {self.shape}, "
                f"space {self.space!r})")


def load_label_map(path: str | Path, names: Mapping | str | Path | None = None, name: str | None = None,
                   space: str = "unknown", licence: str = "") -> Atlas:
    """Read a NIfTI (``nifti.read_nifti``) or NRRD/MHA (SimpleITK) label map; names from ``names`` or a sidecar.

    Without ``names``, a lookup table next to the file with the same stem (``.txt``, ``.ctbl``,
    ``.csv``, ``.tsv``) is used when present; otherwise regions are called "label <id>".
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No atlas label map at {path}; check the path or use a bundled atlas name.")
    lower = path.name.lower()
    if lower.endswith((".nii", ".nii.gz", ".img", ".hdr")):
        from ..nifti import read_nifti

        labels, grid = read_nifti(path, what="label map")
    else:
        import SimpleITK as sitk

        try:
            labels, grid = from_sitk(sitk.ReadImage(str(path)))
        except RuntimeError as exc:
            from ..nifti import refuse_non_volume

            refuse_non_volume(path)  # a GIFTI surface: said as every command says it
            raise InputError(f"{path} is not a label map SimpleITK can read ({exc}).") from exc
    if names is None:
        names = _sidecar_table(path)
    stem = lower.split(".")[0]
    return Atlas(labels, grid, names, name=name or path.name[:len(stem)], space=space, licence=licence)


def _sidecar_table(path: Path) -> dict[int, str] | None:
    stem = path.name.split(".")[0]
    for suffix in _SIDECAR_SUFFIXES:
        candidate = path.with_name(stem + suffix)
        if candidate.is_file() and candidate != path:
            return read_lookup_table(candidate)
    return None


def _integer_labels(labels: object, name: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 3:
        raise InputError(f"The atlas '{name}' label map is {array.ndim}D {array.shape}; a 3D label map is needed "
                         "(export a multi-layer segmentation as one labelmap first).")
    if array.size == 0:
        raise InputError(f"The atlas '{name}' label map is empty {array.shape}; pass a label map with voxels.")
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise InputError(f"The atlas '{name}' label map holds NaN or infinite values; "
                             "a label map must hold integer region ids.")
        rounded = np.rint(array)
        bad = np.count_nonzero(rounded != array)
        if bad:
            raise InputError(f"The atlas '{name}' label map holds {bad} non-integer values (e.g. "
                             f"{array[rounded != array].flat[0]!r}); it looks like an intensity image, "
                             "not a label map. Pass an integer label map.")
        array = rounded.astype(np.int64)
    elif not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"The atlas '{name}' label map has dtype {array.dtype}; pass integer labels.")
    if array.size and array.min() < 0:
        raise InputError(f"The atlas '{name}' label map holds negative labels (min {array.min()}); "
                         "region ids must be >= 0 with 0 as background.")
    return array
