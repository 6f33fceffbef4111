"""Slice-view layouts of the web viewer: which views a layout shows, and where.

The views are made once and stay on the page (see :mod:`.grid`); a layout only places them on a
CSS grid and hides the others, so switching keeps each view's slice, zoom and window. (Rebuilding
trame-slicer's layout grid on a switch left the previous views on the page, drawn over the new
ones.)
"""
from __future__ import annotations

DEFAULT_LAYOUT = "Three slices"
COMPARE_LAYOUT = "Compare runs"

#: name -> (grid-template-areas rows, column sizes, row sizes); an area is a view slot
_LAYOUTS = {
    "Three slices": (["Red Green Yellow"], "1fr 1fr 1fr", "1fr"),
    "Axial primary": (["Red Green", "Red Yellow"], "2fr 1fr", "1fr 1fr"),
    "Axial": (["Red"], "1fr", "1fr"),
    "Coronal": (["Green"], "1fr", "1fr"),
    "Sagittal": (["Yellow"], "1fr", "1fr"),
    COMPARE_LAYOUT: (["Red Compare"], "1fr 1fr", "1fr"),
}


#: share of a view's width given to the colour legend (its labels scale with it): ~100 px
LEGEND_WIDTH = {"Three slices": 0.2, "Axial primary": 0.13, "Axial": 0.09, "Coronal": 0.09,
                "Sagittal": 0.09, COMPARE_LAYOUT: 0.14}


def layout_names() -> list[str]:
    return list(_LAYOUTS)


def slots_of(name: str) -> list[str]:
    """The view slots a layout shows, in reading order."""
    rows = _LAYOUTS[name][0]
    seen: list[str] = []
    for row in rows:
        for slot in row.split():
            if slot not in seen:
                seen.append(slot)
    return seen


def grid_styles(name: str, slots) -> dict:
    """CSS styles of the grid container and of each slot for layout ``name``."""
    rows, columns, heights = _LAYOUTS[name]
    shown = slots_of(name)
    styles = {"container": {"display": "grid", "gridTemplateAreas": " ".join(f'"{r}"' for r in rows),
                            "gridTemplateColumns": columns, "gridTemplateRows": heights,
                            "gap": "2px", "flex": "1 1 0", "minHeight": "0", "minWidth": "0",
                            "overflow": "hidden", "backgroundColor": "black"}}
    for slot in slots:
        styles[slot] = ({"gridArea": slot, "display": "flex", "minWidth": "0", "minHeight": "0",
                         "overflow": "hidden", "position": "relative"} if slot in shown else {"display": "none"})
    return styles
