"""Region statistics of a heatmap on its own grid: the one path for the module, console, demo and CLI.

A run's table is computed on the overlay's scan grid (never silently on the model's coarser grid),
with the grid as a NIfTI file stores it (float32 affine), so the table equals the one
``neurorelevance regions`` computes from the exported ``heatmap.nii.gz``. The table carries the
run's settings record in ``table.attrs["provenance"]`` (written to the CSV header).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..geometry import Grid
from .statistics import DEFAULT_MIN_REGION_MM3, DEFAULT_MIN_REGION_VOXELS, region_statistics


def nifti_affine(ijk_to_ras: np.ndarray) -> np.ndarray:
    """The affine as a NIfTI header stores it (sform rows in float32) and nibabel reads it back."""
    return np.asarray(ijk_to_ras, dtype=np.float32).astype(np.float64)


def heatmap_region_table(values_kji: np.ndarray, grid: Grid, atlas: Any, *,
                         min_overlap: float = 0.5, min_region_voxels: float = DEFAULT_MIN_REGION_VOXELS,
                         min_region_mm3: float = DEFAULT_MIN_REGION_MM3,
                         record: Mapping | None = None) -> pd.DataFrame:
    """Region statistics of a KJI heatmap on its ``grid`` against ``atlas``."""
    values = np.ascontiguousarray(np.asarray(values_kji, dtype=np.float32))
    table = region_statistics((values, Grid(grid.shape_kji, nifti_affine(grid.ijk_to_ras))), atlas,
                              min_overlap=min_overlap, min_region_voxels=min_region_voxels,
                              min_region_mm3=min_region_mm3)
    if record:
        table.attrs["statistics_on"] = statistics_text(record)
        table.attrs["provenance"] = dict(record)
    return table


def statistics_text(record: Mapping, values: str = "raw relevance") -> str:
    """What a run's region numbers are computed on, for the CSV header: the run's relevance map, which
    an input (display) filter does not change, an every-layer filter does; ``values`` is what the map
    file read holds (a heatmap sidecar's ``values``: "raw relevance" or "displayed: ...")."""
    from ..provenance import filter_text

    if values.startswith("displayed"):
        return f"the displayed map ({values[len('displayed: '):] if values.startswith('displayed: ') else values})"
    flt = record.get("filter") or {}
    if not flt.get("type"):
        return "the relevance map (no filter)"
    if flt.get("placement") == "every-layer":
        return f"the relevance map as propagated with the filter {filter_text(flt)} after every layer"
    return (f"the unfiltered relevance map (the filter {filter_text(flt)} changes only the displayed map, "
            "not these numbers)")


def attach_sidecar_record(table: pd.DataFrame, heatmap_path, options) -> None:
    """Put the settings record of a heatmap's JSON sidecar (if any) into ``table.attrs``, with the
    region settings of this table (``options``: min_overlap, min_region_voxels, min_region_mm3)."""
    import json

    from ..heatmap_files import sidecar_path
    from ..provenance import regions_entry

    sidecar = sidecar_path(heatmap_path)
    try:
        content = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    except (ValueError, OSError):
        content = {}
    record = content.get("record") if isinstance(content, dict) else None
    if record:
        table.attrs["statistics_on"] = statistics_text(record, str(content.get("values") or "raw relevance"))
        table.attrs["provenance"] = {**record, "regions": regions_entry(
            table.attrs["atlas"], options.min_overlap, options.min_region_voxels, options.min_region_mm3)}
