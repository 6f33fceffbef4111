"""Slice-view layouts offered by the web viewer (trame-slicer layout definitions)."""
from __future__ import annotations

DEFAULT_LAYOUT = "Three slices"


def layouts() -> dict:
    """Layout name -> trame-slicer ``Layout`` of red (axial), green (coronal), yellow (sagittal)."""
    from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

    axial = ViewLayoutDefinition.axial_view()
    coronal = ViewLayoutDefinition.coronal_view()
    sagittal = ViewLayoutDefinition.sagittal_view()
    return {
        "Three slices": Layout(LayoutDirection.Horizontal, [axial, coronal, sagittal]),
        "Axial primary": Layout(LayoutDirection.Horizontal,
                                [axial, Layout(LayoutDirection.Vertical, [coronal, sagittal])],
                                flex_sizes=["2", "1"]),
        "Axial": Layout(LayoutDirection.Vertical, [axial]),
        "Coronal": Layout(LayoutDirection.Vertical, [coronal]),
        "Sagittal": Layout(LayoutDirection.Vertical, [sagittal]),
    }
