"""Relevance per brain region: atlases, resampling onto heatmap grids, statistics, tables, plots.

Entry points: :func:`available_atlases` and :func:`region_statistics`. No MRML, no torch here;
the logic module turns tables into Slicer table nodes.
"""
from __future__ import annotations

from .atlas import Atlas, load_label_map
from .bundled import available_atlases, load_bundled_atlas
from .hemispheres import split_hemisphere
from .lookup_tables import read_lookup_table
from .report import csv_text, plot_top_regions, read_csv, write_csv
from .statistics import METRICS, region_statistics, resolve_atlas

__all__ = [
    "Atlas", "METRICS", "available_atlases", "csv_text", "load_bundled_atlas", "load_label_map", "plot_top_regions",
    "read_csv", "read_lookup_table", "region_statistics", "resolve_atlas", "split_hemisphere", "write_csv",
]
