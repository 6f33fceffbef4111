"""Region tables out: CSV files with a provenance header and a captioned bar chart (matplotlib, no pyplot).

A CSV starts with ``# key: value`` lines (atlas, space, grid, minimum region size, overlap and the
run's settings record when the table has one in ``table.attrs["provenance"]``), then the table.
:func:`read_csv` reads them back into ``table.attrs``; other readers skip them with ``comment="#"``.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

#: table attributes written as header lines, in this order (then the provenance record)
HEADER_KEYS = ("atlas", "space", "grid", "statistics_on", "min_region_voxels", "min_region_mm3", "overlap", "rank_by",
               "n_subjects", "n_reference", "gain_on", "gain_floor", "gain_summary", "pooled_hemispheres", "licence")


def header_lines(table: pd.DataFrame) -> list[str]:
    """The ``# key: value`` lines that head a region table's CSV (without newlines)."""
    attrs = table.attrs
    lines = ["# NeuroRelevance region table (regions smaller than min_region_* are listed, not ranked)"]
    for key in HEADER_KEYS:
        if key in attrs:
            lines.append(f"# {key}: {' '.join(str(attrs[key]).split())}")
    record = attrs.get("provenance")
    if record:
        from ..provenance import caption_lines

        lines += [f"# {line}" for line in caption_lines(record)]
        lines.append(f"# provenance: {json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)}")
    return lines


def csv_text(table: pd.DataFrame) -> str:
    """The CSV of :func:`write_csv` as text (e.g. for a download)."""
    buffer = io.StringIO()
    buffer.write("\n".join(header_lines(table)) + "\n")
    table.to_csv(buffer, index=False, float_format="%.17g", lineterminator="\n")
    return buffer.getvalue()


def write_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a region table as CSV (header lines, no index column, full float precision)."""
    path = Path(path)
    path.write_text(csv_text(table), encoding="utf-8")
    return path


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a region table written by :func:`write_csv` (labels as integers, names as text, header → attrs)."""
    attrs: dict = {}
    skip = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            skip += 1
            key, sep, value = line[1:].strip().partition(": ")
            if sep and key in HEADER_KEYS + ("provenance",):
                attrs[key] = _value(value.strip())
    table = pd.read_csv(path, skiprows=skip, dtype={"name": str, "labels": str, "subject": str, "group": str,
                                                     "gain_note": str}, keep_default_na=True)
    if "gain_note" in table.columns:   # an empty note (gain defined) is read back as text, not NaN
        table["gain_note"] = table["gain_note"].fillna("")
    table.attrs.update(attrs)
    return table


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def plot_top_regions(table: pd.DataFrame, path: str | Path | None = None, metric: str = "density", k: int = 15,
                     title: str | None = None):
    """Horizontal bar chart of the ``k`` regions with the largest ``metric``, names on the axis.

    Draws on a standalone Agg figure (pyplot and the session's backend are left alone); writes a
    PNG when ``path`` is given. Returns the matplotlib ``Figure``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if metric not in table.columns or "name" not in table.columns:
        raise InputError(f"The table has no {metric!r} column to plot; choose one of {list(table.columns)}.")
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}.")
    values = pd.to_numeric(table[metric], errors="coerce")
    candidates = table[table["ranked"].astype(bool)] if "ranked" in table.columns else table
    top = candidates.assign(_value=values).dropna(subset=["_value"]).nlargest(k, "_value")
    if top.empty:
        raise InputError(f"The {metric!r} column holds no numbers to plot.")
    height = 1.0 + 0.32 * len(top)
    figure = Figure(figsize=(7.5, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(top))[::-1]
    colours = np.where(top["_value"].to_numpy() >= 0, "#c0392b", "#2e6da4")
    axes.barh(positions, top["_value"].to_numpy(), color=colours)
    axes.set_yticks(positions, labels=top["name"].astype(str).tolist(), fontsize=8)
    axes.axvline(0.0, color="black", linewidth=0.6)
    axes.set_xlabel(metric + (" (mean relevance per voxel)" if metric == "density" else ""))
    atlas = table.attrs.get("atlas")
    axes.set_title(title or f"Top {len(top)} regions by {metric}" + (f" ({atlas})" if atlas else ""), fontsize=10)
    from ..annotation import add_caption

    add_caption(figure, chart_caption(table))
    if path is not None:
        figure.savefig(Path(path), format="png")
    return figure


def chart_caption(table: pd.DataFrame) -> list[str]:
    """Caption of a region chart: atlas, grid and minimum size, then the run's record if known."""
    attrs = table.attrs
    lines = []
    if "atlas" in attrs:
        space = attrs.get("space")
        text = f"Atlas {attrs['atlas']}" + (f" ({space})" if space and space != "unknown" else "")
        if "grid" in attrs:
            text += f" on the heatmap grid, {attrs['grid']}"
        if attrs.get("min_region_voxels") or attrs.get("min_region_mm3"):
            text += (f"; regions under {attrs['min_region_voxels']:g} voxels or {attrs['min_region_mm3']:g} mm³ "
                     "listed in the table, not ranked")
        lines.append(text + ". Red: positive, blue: negative relevance.")
    record = attrs.get("provenance")
    if record:
        from ..provenance import caption_lines

        lines += caption_lines(record)
    return lines
