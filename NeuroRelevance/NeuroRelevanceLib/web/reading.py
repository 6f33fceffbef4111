"""What the page shows of a finished run: table rows, chart bars, region centres, values at a point.

Plain functions over a :class:`logic.RunResult` and the scan node (no web framework). Values are
read where the scene keeps them: the scan's own voxels, the run's cached raw relevance (on the
scan grid) and the heatmap node's shown voxels; region centres come from the same atlas grid the
region table was computed on.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

TABLE_COLUMNS = ["rank", "name", "voxels", "density", "fraction_pos", "sum_pos", "sum_neg"]
UNRANKED = "unranked"


def table_rows(table, limit: int = 200) -> list[dict[str, Any]]:
    """Region rows for a data table: rounded numbers, the atlas label, and ``rank`` "unranked" for
    regions below the minimum size (listed after the ranked ones, as in the table)."""
    if table is None:
        return []
    rows = []
    for record in table.head(limit).to_dict("records"):
        ranked = bool(record.get("ranked", True))
        row: dict[str, Any] = {"label": int(record["label"]), "ranked": ranked}
        for column in TABLE_COLUMNS:
            value = record.get(column)
            if column == "rank" and not ranked:
                row[column] = UNRANKED
            elif isinstance(value, str):
                row[column] = value
            else:
                row[column] = int(value) if column in ("rank", "voxels") else float(f"{value:.4g}")
        rows.append(row)
    return rows


def chart_rows(table, metric: str = "density", k: int = 12) -> list[dict[str, Any]]:
    """The ``k`` ranked regions with the largest ``metric``: name, value and bar width (% of the
    largest |value|), for a bar chart drawn by the page."""
    if table is None or table.empty or metric not in table.columns:
        return []
    ranked = table[table["ranked"].astype(bool)] if "ranked" in table.columns else table
    top = ranked.assign(_v=ranked[metric].astype(float)).dropna(subset=["_v"]).nlargest(k, "_v")
    peak = float(np.abs(top["_v"]).max()) if len(top) else 0.0
    return [{"name": str(name), "label": int(label), "value": float(value),
             "width": round(100.0 * abs(value) / peak, 2) if peak > 0 else 0.0,
             "text": f"{value:.3g}", "negative": bool(value < 0)}
            for name, label, value in zip(top["name"], top["label"], top["_v"], strict=True)]


def chart_caption(table) -> str:
    """The chart's caption: atlas, grid, minimum size and what produced the map."""
    from ..regions.report import chart_caption as lines

    return "\n".join(lines(table)) if table is not None else ""


def _label_grid(run):
    """The run's atlas on its heatmap grid (the one the table was computed on) and the atlas."""
    from ..geometry import Grid
    from ..regions.scan_tables import nifti_affine
    from ..regions.statistics import resolve_atlas

    table = run.table
    if table is None:
        raise InputError("This run has no region table: choose an atlas and run again.")
    atlas = resolve_atlas(table.attrs["atlas"])
    grid = run.job.channels[0][1]
    return atlas, atlas.on_grid(Grid(grid.shape_kji, nifti_affine(grid.ijk_to_ras))), grid


def region_centre(run, label: int) -> list[float]:
    """RAS point (mm) of the region voxel nearest to the region's centroid on the heatmap grid:
    inside the region even when the region is curved (a gyrus, a ventricle)."""
    table = run.table
    if table is None or int(label) not in set(int(v) for v in table["label"]):
        raise InputError(f"Region {label} is not in the region table of this run.")
    atlas, labels, grid = _label_grid(run)
    index = int(np.searchsorted(atlas.ids, int(label))) + 1
    kji = np.argwhere(labels.dense_kji == index)
    if kji.size == 0:
        raise InputError(f"Region {label} has no voxel on this heatmap's grid.")
    nearest = kji[np.argmin(((kji - kji.mean(axis=0)) ** 2).sum(axis=1))]
    ras = grid.ijk_to_ras @ np.r_[nearest[::-1], 1.0]
    return [float(v) for v in ras[:3]]


def region_at(run, ijk: np.ndarray) -> str:
    """Name of the atlas region at a voxel of the heatmap grid ('' outside every region)."""
    try:
        atlas, labels, _ = _label_grid(run)
    except (InputError, KeyError):
        return ""
    index = int(labels.dense_kji[ijk[2], ijk[1], ijk[0]])
    return atlas.names[index - 1] if index else ""


def _voxel(ijk_to_ras: np.ndarray, shape_kji, ras) -> tuple[list[int], bool]:
    ijk = np.rint(np.linalg.solve(ijk_to_ras, np.r_[np.asarray(ras, dtype=float)[:3], 1.0])[:3]).astype(int)
    inside = bool(np.all(ijk >= 0) and np.all(ijk < np.asarray(shape_kji)[::-1]))
    return [int(v) for v in ijk], inside


def probe(scan, run, ras) -> dict[str, Any]:
    """Values at a RAS point (nearest voxel of the scan grid, as Slicer's data probe reads them):
    the scan, the raw relevance, the relevance as shown (after a display filter) and the region."""
    from .. import mrml

    result: dict[str, Any] = {"ras": [round(float(v), 2) for v in np.asarray(ras, dtype=float)[:3]],
                              "ijk": None, "scan": None, "relevance": None, "shown": None, "region": ""}
    if scan is None or scan.GetScene() is None:
        return result
    grid = mrml.volume_grid(scan)
    ijk, inside = _voxel(grid.ijk_to_ras, grid.shape_kji, ras)
    result["ijk"] = ijk
    if not inside:
        return result
    i, j, k = ijk
    result["scan"] = float(mrml.volume_buffer(scan)[k, j, i])
    if run is None or run.node is None or run.node.GetScene() is None:
        return result
    heat = mrml.volume_grid(run.node)
    if heat.same_as(grid):  # the run's map lives on this scan's grid (always, for the current input)
        result["relevance"] = float(run.raw_source[0][k, j, i])
        result["shown"] = float(mrml.volume_buffer(run.node)[k, j, i])
        result["region"] = region_at(run, np.array(ijk))
    return result


def probe_text(values: dict | None) -> str:
    """One line for the page: position, scan value, relevance (and shown value), region."""
    if not values or values.get("ras") is None:
        return "Move the mouse over a view: values at the cursor appear here."
    text = " ".join(f"{pair[0] if v >= 0 else pair[1]} {abs(v):.1f}"  # as the slice positions read
                    for v, pair in zip(values["ras"], ("RL", "AP", "SI"), strict=True)) + " mm"
    if values.get("scan") is None:
        return text + " · outside the scan"
    text += f" · scan {values['scan']:.4g}"
    if values.get("relevance") is not None:
        text += f" · relevance {values['relevance']:.3g}"
        if values.get("shown") != values.get("relevance"):
            text += f" (shown {values['shown']:.3g})"
    if values.get("region"):
        text += f" · {values['region']}"
    return text
