"""Region tables out: CSV files and a bar chart of the top-k regions (matplotlib, no pyplot)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError


def write_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a region table as CSV (no index column, full float precision); returns the path."""
    path = Path(path)
    table.to_csv(path, index=False, float_format="%.17g")
    return path


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a region table written by :func:`write_csv` (labels as integers, names as text)."""
    table = pd.read_csv(path, dtype={"name": str, "labels": str, "subject": str, "group": str})
    return table


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
    top = table.assign(_value=values).dropna(subset=["_value"]).nlargest(k, "_value")
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
    axes.set_xlabel(metric)
    atlas = table.attrs.get("atlas")
    axes.set_title(title or f"Top {len(top)} regions by {metric}" + (f" ({atlas})" if atlas else ""), fontsize=10)
    if path is not None:
        figure.savefig(Path(path), format="png")
    return figure
