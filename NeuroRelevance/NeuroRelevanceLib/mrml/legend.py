"""What a heatmap's display means, for Slicer's colour legend and for our own labelled PNGs.

:func:`show_color_legend` adds (once) and updates MRML's colour legend display node of a heatmap
(``vtkMRMLColorLegendDisplayNode``, created the way Slicer's Colors module does it), so Slicer's
slice views show the colour bar with values and its title. :func:`colour_bar_for` and
:func:`caption_for` give the same information to :mod:`annotation` for PNGs.
"""
from __future__ import annotations

import numpy as np

from ..provenance import CONVENTION, caption_lines, read_attributes

LEGEND_CLASS = "vtkMRMLColorLegendDisplayNode"


def legend_title(heatmap) -> str:
    """Short title of a heatmap's colour bar in Slicer's views: the quantity and what red means
    ("Relevance (red: for AD)"); blue, below zero, is evidence against."""
    record = read_attributes(heatmap) or {}
    target = (record.get("target") or {}).get("label") or heatmap.GetAttribute("NeuroRelevance.target")
    return f"Relevance (red: for {target})" if target else "Relevance (a.u.)"


def window_lines(heatmap) -> list[str]:
    """Under the legend's title when the map goes beyond the display window: its ends are marked "≥" / "≤"
    and named as the display window (the PNG colour bars also give the map's maximum); else nothing.
    On the title's line: a second title line made the legend's layout lag one render in the web views."""
    bar = colour_bar_for(heatmap)
    if bar is None or not bar.saturated:
        return []
    return ["· top ≥ display window" if bar.low >= 0 else "· ends ≥/≤ display window"]


def meanings(heatmap) -> tuple[str, str]:
    """What the top (red) and bottom (blue) of the colour bar mean for this heatmap's target."""
    record = read_attributes(heatmap) or {}
    target = (record.get("target") or {}).get("label") or (
        heatmap.GetAttribute("NeuroRelevance.target") if heatmap is not None else None)
    positive_only = _positive_only(heatmap)
    if target:
        return f"red: raises the {target} score", "" if positive_only else "blue: lowers it"
    return "red: positive", "" if positive_only else "blue: negative"


def _positive_only(heatmap) -> bool:
    display = heatmap.GetDisplayNode() if heatmap is not None else None
    return display is not None and display.GetWindowLevelMin() >= 0.0


def register_node_classes(scene) -> None:
    """Register the node classes our scenes use that Slicer's modules register (the colour legend
    display node, registered by the Colors module). Call it on a bare ``slicer-core`` scene before
    ``Import()`` of a scene NeuroRelevance saved; inside Slicer it is already done."""
    import slicer

    if not scene.IsNodeClassRegistered(LEGEND_CLASS):
        scene.RegisterNodeClass(slicer.vtkMRMLColorLegendDisplayNode())


def show_color_legend(scene, heatmap, visible: bool = True):
    """Add or update the colour legend of ``heatmap`` in every view; returns the legend node."""
    import slicer

    display = heatmap.GetDisplayNode()
    register_node_classes(scene)
    legend = slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(heatmap)
    if legend is None:
        legend = slicer.vtkSlicerColorLogic.AddDefaultColorLegendDisplayNode(heatmap)
    if legend is None:
        return None
    low, high = display.GetWindowLevelMin(), display.GetWindowLevelMax()
    was = legend.StartModify()
    legend.SetTitleText(" ".join([legend_title(heatmap), *window_lines(heatmap)]))
    legend.SetLabelFormat("%.2g")
    legend.SetNumberOfLabels(5)
    legend.SetScalarRangeFlag(legend.UseManualScalarRange)
    legend.SetScalarRange(low, high)
    legend.SetVisibility(bool(visible))
    legend.EndModify(was)
    return legend


def colour_bar_for(heatmap):
    """The :class:`annotation.ColourBar` of a displayed heatmap (None without one)."""
    from ..annotation import ColourBar
    from .display import WINDOW_ATTRIBUTE, colormap_rgba
    from .volumes import volume_to_array

    display = heatmap.GetDisplayNode() if heatmap is not None else None
    if display is None:
        return None
    low, high = display.GetWindowLevelMin(), display.GetWindowLevelMax()
    threshold = float(display.GetAttribute("NeuroRelevance.threshold") or 0.0)
    top, bottom = meanings(heatmap)
    note = f"|R| under {threshold:.0%} of the window is hidden" if threshold > 0 else ""
    values, _ = volume_to_array(heatmap)
    shown = values if low < 0 else np.clip(values, 0, None)  # positive-only: the negative part is not drawn
    peak = float(np.abs(shown).max()) if shown.size else None
    return ColourBar(_table_rgba(display) if display.GetColorNode() is not None else
                     colormap_rgba(threshold, low >= 0.0), low, high, _unit(heatmap), top, bottom, note,
                     peak=peak, window=display.GetAttribute(WINDOW_ATTRIBUTE) or "")


def _table_rgba(display) -> np.ndarray:
    table = display.GetColorNode()
    rows = []
    for index in range(table.GetNumberOfColors()):
        colour = [0.0, 0.0, 0.0, 0.0]
        table.GetColor(index, colour)
        rows.append(colour)
    return np.asarray(rows, dtype=float)


def _unit(heatmap) -> str:
    record = read_attributes(heatmap) or {}
    method = record.get("method", "lrp")
    return "relevance (a.u.)" if method == "lrp" else f"{method} attribution (a.u.)"


def caption_for(heatmap) -> list[str]:
    """Caption lines of an image showing ``heatmap``: its record (or a note that it has none)."""
    from .display import shown_text

    lines: list[str] = []
    if heatmap is not None:
        record = read_attributes(heatmap)
        values = heatmap.GetAttribute("NeuroRelevance.values") or ""
        if record:
            lines += caption_lines(record, values=shown_text(values) if values else "")
        else:
            lines.append(f"{heatmap.GetName()} (no NeuroRelevance settings record on this volume)")
    lines.append(f"{CONVENTION[0].upper()}{CONVENTION[1:]}; yellow letters mark the patient's sides, "
                 "positions are slice offsets in RAS mm.")
    return lines
