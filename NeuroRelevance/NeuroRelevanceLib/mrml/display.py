"""Heatmap display: our own diverging colour table, symmetric window, foreground in slice views,
and MRML's colour legend (values, unit, meaning of red and blue) in the views."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..windowing import DEFAULT_THRESHOLD, ROBUST_WINDOW, robust_window
from .outputs import COLOR_TABLE_REFERENCE, SOURCE_REFERENCE
from .volumes import volume_to_array

NUMBER_OF_COLORS = 256
NEGATIVE_RGB = np.array([0.13, 0.40, 0.92])   # blue for negative relevance
POSITIVE_RGB = np.array([0.86, 0.10, 0.08])   # red for positive relevance
NEUTRAL_RGB = np.array([0.97, 0.97, 0.97])    # near zero (drawn transparent)
HOT_END_RGB = np.array([1.00, 0.90, 0.20])    # strongest end of the positive-only table


def colormap_rgba(threshold: float = 0.0, positive_only: bool = False,
                  n: int = NUMBER_OF_COLORS) -> np.ndarray:
    """RGBA rows (n × 4, in [0, 1]) of the heatmap colour table.

    Diverging: entry ``i`` stands for the value ``t = -1 + 2 i / (n - 1)`` of the window
    [-max, max]; blue below 0, red above, white near 0; entries with ``|t| <= threshold`` (and
    the one or two entries around 0) are fully transparent. Positive-only: ``t = i / (n - 1)``
    on [0, max], red to yellow, transparent at or below the threshold.
    """
    if not 0.0 <= threshold < 1.0:
        raise InputError(f"Threshold {threshold} must be a fraction of the display window in [0, 1).")
    floor = max(threshold, 1.0 / (n - 1))  # zero voxels always show the background
    if positive_only:
        t = np.linspace(0.0, 1.0, n)
        rgb = POSITIVE_RGB + t[:, None] * (HOT_END_RGB - POSITIVE_RGB)
        alpha = (t > floor).astype(float)
    else:
        t = np.linspace(-1.0, 1.0, n)
        weight = np.abs(t)[:, None]
        end = np.where(t[:, None] < 0, NEGATIVE_RGB, POSITIVE_RGB)
        rgb = NEUTRAL_RGB + weight * (end - NEUTRAL_RGB)
        alpha = (np.abs(t) > floor).astype(float)
    return np.column_stack([rgb, alpha])


def diverging_color_table(scene, threshold: float = DEFAULT_THRESHOLD, positive_only: bool = False, node=None):
    """A colour table node with these settings: ``node`` updated in place, or a new one.

    Each heatmap owns one table (see :func:`show_heatmap`), so moving the threshold slider
    rewrites that table instead of adding a node per threshold.
    """
    rgba = colormap_rgba(threshold, positive_only)  # validates the threshold first
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLColorTableNode",
                                       scene.GenerateUniqueName("NeuroRelevance colours"))
        node.SetTypeToUser()
        node.SetAttribute("Category", "NeuroRelevance")
    was_modifying = node.StartModify()  # one Modified event for the table, not one per colour
    try:
        node.SetNumberOfColors(len(rgba))
        for index, (r, g, b, a) in enumerate(rgba):
            node.SetColor(index, f"{index}", float(r), float(g), float(b), float(a))
        node.SetAttribute("NeuroRelevance.colours", f"{'positive' if positive_only else 'diverging'} "
                                                     f"threshold {threshold:.3f}")
        node.Modified()
    finally:
        node.EndModify(was_modifying)
    return node



def show_heatmap(scene, heatmap, background=None, *, opacity: float = 0.5,
                 threshold: float = DEFAULT_THRESHOLD, positive_only: bool = False,
                 window: float | None = None, in_views: bool = True, window_source: str | None = None):
    """Display ``heatmap`` over ``background`` in every slice view of ``scene``.

    ``in_views=False`` only updates the heatmap's own display (colours, window) and leaves the
    slice views as they are (for the other channels of a multi-channel run).

    The window is symmetric around 0, ``[-window, window]`` (``[0, window]`` when
    ``positive_only``), ``window`` defaulting to the 99.5th percentile of nonzero |R|.
    ``window_source`` says how a given window was chosen (for the colour bar; default: the robust
    percentile when ``window`` is None, else nothing). ``threshold`` is a fraction of the window below
    which |R| is drawn transparent (default :data:`DEFAULT_THRESHOLD`: no haze of near-zero relevance
    over the anatomy). ``background`` defaults to the heatmap's source volume.
    Returns the heatmap's display node.
    """
    if heatmap is None:
        raise InputError("No heatmap volume was given.")
    if not 0.0 <= opacity <= 1.0:
        raise InputError(f"Opacity {opacity} must lie in [0, 1].")
    if background is None:
        background = heatmap.GetNodeReference(SOURCE_REFERENCE)
    if window is None:
        values, _ = volume_to_array(heatmap)
        window = robust_window(values)
        window_source = ROBUST_WINDOW if window_source is None else window_source
    if not window > 0 or not np.isfinite(window):
        window = 1.0  # an all-zero map: any window shows nothing
    owned = heatmap.GetNodeReference(COLOR_TABLE_REFERENCE)
    table = diverging_color_table(scene, threshold, positive_only, node=owned)
    if owned is None:
        heatmap.SetNodeReferenceID(COLOR_TABLE_REFERENCE, table.GetID())
    if heatmap.GetDisplayNode() is None:
        heatmap.CreateDefaultDisplayNodes()
    display = heatmap.GetDisplayNode()
    display.SetAndObserveColorNodeID(table.GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0 if positive_only else -window, window)
    display.SetAttribute("NeuroRelevance.threshold", repr(float(threshold)))
    display.SetAttribute(WINDOW_ATTRIBUTE, window_source or "")
    display.SetAttribute(OPACITY_ATTRIBUTE, repr(float(opacity)))  # what an export of this map shows
    from .legend import show_color_legend

    show_color_legend(scene, heatmap, visible=in_views)  # Slicer's colour bar with values and title
    if not in_views:
        return display
    for composite in composite_nodes(scene):
        if background is not None:
            composite.SetBackgroundVolumeID(background.GetID())
        composite.SetForegroundVolumeID(heatmap.GetID())
        composite.SetForegroundOpacity(float(opacity))
    return display


#: display-node attribute: how the display window was chosen (e.g. the robust percentile of |R|)
WINDOW_ATTRIBUTE = "NeuroRelevance.window"
#: display-node attribute: the overlay opacity the map was last shown with
OPACITY_ATTRIBUTE = "NeuroRelevance.opacity"
#: node attributes: what the voxels hold ("raw relevance" or "displayed: ..."), and the name without it
VALUES_ATTRIBUTE = "NeuroRelevance.values"
BASE_NAME_ATTRIBUTE = "NeuroRelevance.baseName"


def values_text(filter_type, value_range=(0.0, 1.0)) -> str:
    """What a heatmap's voxels hold after a display filter: "raw relevance" or "displayed: pass ..."."""
    if filter_type is None:
        return "raw relevance"
    low, high = (float(v) for v in value_range)
    return f"displayed: {filter_type} {low:.2f}–{high:.2f}"


def shown_text(values: str) -> str:
    """A caption's words for what a heatmap's voxels hold: "shown: raw relevance" or
    "shown: display filter pass 0.30–1.00" (``values`` as :func:`values_text` writes it)."""
    if values.startswith("displayed: "):
        return f"shown: display filter {values.split(': ', 1)[1]}"
    return f"shown: {values}"


def label_values(node, filter_type, value_range=(0.0, 1.0)) -> None:
    """Say on a heatmap node whether it holds the raw map or a filtered one (attribute and name).

    A filtered node is named ``"<name> [shown: pass 0.30–1.00]"``; without a filter it gets its
    plain name back. The raw map stays in the run's cache and is what exports write by default.
    """
    base = node.GetAttribute(BASE_NAME_ATTRIBUTE) or node.GetName()
    node.SetAttribute(BASE_NAME_ATTRIBUTE, base)
    text = values_text(filter_type, value_range)
    node.SetAttribute(VALUES_ATTRIBUTE, text)
    node.SetName(base if filter_type is None else f"{base} [shown: {text.split(': ', 1)[1]}]")


def composite_nodes(scene) -> list:
    """The scene's slice composite nodes (one per slice view)."""
    return [scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
            for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))]
