"""Reading aids in the web viewer's slice views, from 3D Slicer's own MRML machinery.

Every aid is Slicer's, driven through trame-slicer's views: the crosshair (crosshair node and its
displayable manager: Shift+move or a click sets it and every view jumps there), window/level of
the scan (Slicer's window/level widget, left-drag; the heatmap's window is never edited), the
heatmap's colour legend (colour legend displayable manager), the corner annotation
(orientation letters from the view's own XY→RAS matrix, slice position in mm, a caption) and the
cursor position (crosshair node), from which the page reads the values under the mouse.
``Compare`` is a second axial view that shows a pinned run beside the current one, on the same
slice. Nothing here knows trame's state: :mod:`.navigation` binds it to the page.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: slot name -> how its view is made (singleton tag = slot name)
SLOTS = ("Red", "Green", "Yellow", "Compare")
LETTER_RGB = (1.0, 0.835, 0.29)   # the library's PNG letters (annotation.LETTER)
CAPTION_RGB = (0.95, 0.95, 0.95)
# vtkCornerAnnotation positions
LOWER_LEFT, UPPER_LEFT = 0, 2
EDGE = {"bottom": 4, "right": 5, "left": 6, "top": 7}


def view_definitions() -> list:
    """trame-slicer view definitions of the four slots (axial, coronal, sagittal, compare)."""
    from trame_slicer.views import ViewLayoutDefinition

    return [ViewLayoutDefinition.axial_view(), ViewLayoutDefinition.coronal_view(),
            ViewLayoutDefinition.sagittal_view(),
            ViewLayoutDefinition.slice_view("Axial", label="Compare", color="#9c7bd3")]


def _matrix(vtk_matrix) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


class ViewAids:
    """Crosshair, window/level, legend and annotations on a trame-slicer app's slice views."""

    def __init__(self, slicer_app) -> None:
        import slicer

        self.app = slicer_app
        self.scene = slicer_app.scene
        self.views = {slot: slicer_app.view_manager.create_view(definition)
                      for slot, definition in zip(SLOTS, view_definitions(), strict=True)}
        self.crosshair = self.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        self.crosshair.SetCrosshairMode(slicer.vtkMRMLCrosshairNode.ShowBasic)
        self.crosshair.SetCrosshairBehavior(slicer.vtkMRMLCrosshairNode.OffsetJumpSlice)
        interaction = self.scene.GetFirstNodeByClass("vtkMRMLInteractionNode")
        interaction.SetCurrentInteractionMode(interaction.AdjustWindowLevel)  # left-drag: window/level
        self.captions = {slot: "" for slot in SLOTS}
        self.heatmaps: list = []    # what the views show (their legends follow the layout)
        self.legend_width = 0.2     # of a view's width: its labels' size follows
        self.corners: dict[str, Any] = {}
        self._syncing = False
        self.on_slice: Callable[[str], None] | None = None
        for slot, view in self.views.items():
            self._equip(slot, view)
        for slot in ("Red", "Compare"):  # the side-by-side shows the same slice
            self.views[slot].get_view_node().AddObserver("ModifiedEvent", self._sync_compare)

    # ---- set-up -------------------------------------------------------------------------------
    def _equip(self, slot: str, view) -> None:
        import vtk
        from slicer import vtkMRMLInteractionEventData
        from vtkmodules.vtkInteractionWidgets import vtkEvent

        node = view.get_view_node()  # (no ruler: it sits on the bottom letter; positions are in mm)
        node.SetOrientationMarkerType(node.OrientationMarkerTypeAxes)
        node.SetOrientationMarkerSize(node.OrientationMarkerSizeSmall)
        level = view.get_displayable_manager_by_class("vtkMRMLScalarBarDisplayableManager")
        level.GetWindowLevelWidget().ForegroundVolumeEditableOff()  # the scan only, never the heatmap
        # click to navigate: Slicer's own "set crosshair" action, on a plain left click too
        widget = view.get_displayable_manager_by_class("vtkMRMLCrosshairDisplayableManager") \
            .GetSliceIntersectionWidget()
        widget.SetEventTranslation(widget.WidgetStateIdle, vtkMRMLInteractionEventData.LeftButtonClickEvent,
                                   vtkEvent.NoModifier, widget.WidgetEventSetCrosshairPositionBackground)
        corner = vtk.vtkCornerAnnotation()
        corner.SetMaximumFontSize(16)
        corner.SetMinimumFontSize(11)
        corner.SetLinearFontScaleFactor(2)
        corner.SetNonlinearFontScaleFactor(1)
        corner.GetTextProperty().SetColor(*LETTER_RGB)
        corner.GetTextProperty().BoldOn()
        corner.GetTextProperty().ShadowOn()
        view.renderer().AddViewProp(corner)
        self.corners[slot] = corner
        view.modified.connect(lambda _view, slot=slot: self._slice_changed(slot))
        self.annotate(slot)

    def _slice_changed(self, slot: str) -> None:
        self.annotate(slot)
        if self.on_slice is not None:
            self.on_slice(slot)

    # ---- annotations ----------------------------------------------------------------------------
    def letters(self, slot: str) -> dict:
        """Orientation letters at the view's edges, from its XY→RAS matrix (radiological)."""
        from ..annotation import orientation_letters

        return orientation_letters(_matrix(self.views[slot].get_view_node().GetXYToRAS()))

    def position(self, slot: str) -> str:
        """The slice position along the view's normal, e.g. "S 12.0 mm"."""
        from ..annotation import position_text

        view = self.views[slot]
        normal = _matrix(view.get_view_node().GetSliceToRAS())[:3, 2]
        return position_text(normal, view.get_slice_value())

    def annotate(self, slot: str) -> None:
        """Write letters, position and caption into the view's corner annotation."""
        corner = self.corners[slot]
        for edge, letter in self.letters(slot).items():
            corner.SetText(EDGE[edge], letter)
        corner.SetText(LOWER_LEFT, self.position(slot))
        corner.SetText(UPPER_LEFT, self.captions[slot])
        self.views[slot].schedule_render()

    def set_caption(self, slot: str, text: str) -> None:
        self.captions[slot] = text
        self.annotate(slot)

    # ---- what each view shows ---------------------------------------------------------------
    def show(self, scan, heatmap=None, pinned=None, opacity: float = 0.5) -> None:
        """The scan in every view, ``heatmap`` over it, except in Compare, which shows ``pinned``."""
        for slot, view in self.views.items():
            view.set_background_volume_id(scan.GetID() if scan is not None else None)
            shown = pinned if slot == "Compare" else heatmap
            view.set_foreground_volume_id(shown.GetID() if shown is not None else None)
            view.set_foreground_opacity(float(opacity))
        self.heatmaps = [node for node in (heatmap, pinned) if node is not None]
        self.refresh_legends(self.heatmaps)

    def refresh_legends(self, heatmaps) -> None:
        """Show each heatmap's colour legend: its displayable manager finds its view's composite
        node on a scene batch update, then needs the legend node modified."""
        import slicer

        self.scene.StartState(self.scene.BatchProcessState)
        self.scene.EndState(self.scene.BatchProcessState)
        for heatmap in heatmaps:
            legend = slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(heatmap)
            if legend is not None:
                was = legend.StartModify()
                legend.SetPosition(0.985, 0.9)   # top right, clear of the edge letters
                legend.SetSize(self.legend_width, 0.34)  # its text scales with its width
                legend.Modified()
                legend.EndModify(was)

    def refit(self, slots=SLOTS) -> None:
        """Fit each view's field of view to its size, on the slice it shows (a plain fit would
        go back to the middle slice and lose where the reader was)."""
        for slot in slots:
            view = self.views[slot]
            offset = view.get_slice_value()
            view.fit_view_to_content()
            view.set_slice_value(offset)

    def set_visible(self, slots, legend_width: float = 0.2) -> None:
        """Render only the views a layout shows (trame-slicer blocks the others), with legends
        ``legend_width`` of a view wide (narrow views need a wider share to stay legible)."""
        self.app.view_manager.set_current_view_ids([s for s in slots if s in self.views])
        if legend_width != self.legend_width:
            self.legend_width = legend_width
            self.refresh_legends([node for node in self.heatmaps if node.GetScene() is not None])

    # ---- navigation ---------------------------------------------------------------------------
    def jump(self, ras) -> None:
        """Put the crosshair at ``ras`` and every view's slice through it (Slicer's jump)."""
        import slicer

        r, a, s = (float(v) for v in ras)
        self.crosshair.SetCrosshairRAS(r, a, s)
        slicer.vtkMRMLSliceNode.JumpAllSlices(self.scene, r, a, s, slicer.vtkMRMLSliceNode.OffsetJumpSlice)

    def cursor(self) -> list[float] | None:
        """RAS of the mouse over a slice view (None when it is over none)."""
        ras = [0.0, 0.0, 0.0]
        return [float(v) for v in ras] if self.crosshair.GetCursorPositionRAS(ras) else None

    def _sync_compare(self, node, _event) -> None:
        """Keep the Red and Compare views on the same slice, position and zoom."""
        if self._syncing:
            return
        other = self.views["Compare" if node is self.views["Red"].get_view_node() else "Red"].get_view_node()
        self._syncing = True
        try:
            was = other.StartModify()
            other.GetSliceToRAS().DeepCopy(node.GetSliceToRAS())
            other.SetFieldOfView(*node.GetFieldOfView())
            other.SetXYZOrigin(*node.GetXYZOrigin())
            other.UpdateMatrices()
            other.EndModify(was)
        finally:
            self._syncing = False
