"""Slice views without a GUI: the logics Slicer's app would own, and labelled PNGs of the views.

PNGs are labelled by default (see :mod:`annotation`): each view with its orientation letters (taken
from the view's own XY→RAS matrix: Slicer's radiological convention, patient right on image left)
and its position in mm, the heatmap's colour bar with values and meaning, and a caption from the
heatmap's settings record. ``annotate=False`` writes the bare view pixels.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import vtk
from vtk.util import numpy_support

from ..errors import InputError

#: Slicer's three standard views
STANDARD_VIEWS = (("Red", "Axial"), ("Yellow", "Sagittal"), ("Green", "Coronal"))


class SliceViews:
    """The application, colour and slice logics of a scene, kept alive together.

    In Slicer the app owns these; here this object does. The logics hold raw pointers to each
    other, so all of them stay referenced as long as this object lives (a collected application
    logic once crashed a later storage call). Creating it adds Slicer's default colour tables,
    the slice orientation presets, and the Red/Yellow/Green slice and composite nodes.
    """

    def __init__(self, scene, size: tuple[int, int] = (256, 256)) -> None:
        import slicer

        if scene is None:
            raise InputError("No MRML scene was given.")
        self.scene = scene
        self.color_logic = slicer.vtkMRMLColorLogic()
        self.color_logic.SetMRMLScene(scene)
        slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)
        from .legend import register_node_classes

        register_node_classes(scene)  # what Slicer's Colors module registers (colour legends)
        self.app_logic = slicer.vtkMRMLApplicationLogic()
        self.app_logic.SetMRMLScene(scene)
        self.slice_logics: dict[str, object] = {}
        collection = vtk.vtkCollection()
        for name, orientation in STANDARD_VIEWS:
            logic = slicer.vtkMRMLSliceLogic()
            logic.SetMRMLScene(scene)
            logic.SetMRMLApplicationLogic(self.app_logic)
            slice_node = logic.AddSliceNode(name)
            slice_node.SetOrientation(orientation)
            slice_node.SetDimensions(size[0], size[1], 1)
            self.slice_logics[name] = logic
            collection.AddItem(logic)
        self.app_logic.SetSliceLogics(collection)
        self._collection = collection

    def rgba(self, view: str = "Red", fit: bool = True, offset: float | None = None) -> np.ndarray:
        """The blended view (background + foreground) as an (H, W, 4) uint8 array, top row first."""
        logic = self._logic(view)
        if fit:
            logic.FitSliceToAll()
        if offset is not None:
            logic.SetSliceOffset(offset)
        connection = logic.GetImageDataConnection()
        if connection is None:  # nothing shown in this view yet: a black frame of its size
            width, height, _ = logic.GetSliceNode().GetDimensions()
            blank = np.zeros((height, width, 4), np.uint8)
            blank[..., 3] = 255
            return blank
        producer = connection.GetProducer()
        producer.Update()
        image = producer.GetOutputDataObject(connection.GetIndex())
        width, height, _ = image.GetDimensions()
        pixels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
        pixels = pixels.reshape(height, width, -1)[::-1]  # VTK's first row is the bottom one
        if pixels.shape[2] == 3:
            pixels = np.concatenate([pixels, np.full((height, width, 1), 255, pixels.dtype)], 2)
        pixels = pixels.astype(np.uint8)
        pixels[..., 3] = 255  # outside the volumes: opaque black, as in Slicer's views
        return np.ascontiguousarray(pixels)

    def tile(self, view: str = "Red", fit: bool = True, offset: float | None = None):
        """The view's pixels with its name, orientation letters and slice position (an annotation.Tile)."""
        from ..annotation import Tile, orientation_letters, position_text

        pixels = self.rgba(view, fit, offset)
        logic = self._logic(view)
        node = logic.GetSliceNode()
        xy = _matrix(node.GetXYToRAS())
        normal = _matrix(node.GetSliceToRAS())[:3, 2]
        return Tile(pixels, node.GetOrientation(), position_text(normal, logic.GetSliceOffset()),
                    orientation_letters(xy))

    def offsets_through(self, ras, views=("Red", "Yellow", "Green")) -> dict:
        """Slice offsets that make each view pass through the RAS point ``ras`` (along its own normal)."""
        point = np.asarray(ras, dtype=float)[:3]
        return {view: float(_matrix(self._logic(view).GetSliceNode().GetSliceToRAS())[:3, 2] @ point)
                for view in views}

    def annotated(self, views=("Red",), offsets: dict | None = None, heatmap=None):
        """Labelled views side by side: ``(pixels, annotation.Layout)``. ``heatmap`` defaults to the
        foreground volume of the views; its display gives the colour bar, its record the caption."""
        from ..annotation import compose
        from .legend import caption_for, colour_bar_for

        offsets = offsets or {}
        tiles = [self.tile(view, True, offsets.get(view)) for view in views]
        heatmap = heatmap or self.foreground()
        return compose(tiles, colour_bar_for(heatmap), caption_for(heatmap))

    def foreground(self):
        """The volume shown in the foreground of the first view (None if there is none)."""
        composite = self._logic(next(iter(self.slice_logics))).GetSliceCompositeNode()
        node_id = composite.GetForegroundVolumeID() if composite is not None else None
        return self.scene.GetNodeByID(node_id) if node_id else None

    def render_png(self, path: str | Path, view: str = "Red", fit: bool = True,
                   offset: float | None = None, annotate: bool = True, heatmap=None) -> Path:
        """Write the view to a PNG file (no GPU, no render window), labelled unless ``annotate=False``;
        ``heatmap`` (default: the view's foreground) gives the colour bar and caption."""
        if not annotate:
            return write_png(path, self.rgba(view, fit, offset))
        pixels, _ = self.annotated((view,), {view: offset} if offset is not None else None, heatmap)
        return write_png(path, pixels)

    def render_montage(self, path: str | Path, views=("Red", "Yellow", "Green"),
                       offsets: dict | None = None, gap: int = 4, annotate: bool = True) -> Path:
        """The given views side by side in one PNG (e.g. three orthogonal slices), labelled by default."""
        offsets = offsets or {}
        if annotate:
            return write_png(path, self.annotated(views, offsets)[0])
        tiles = [self.rgba(view, True, offsets.get(view)) for view in views]
        height = max(t.shape[0] for t in tiles)
        spacer = np.zeros((height, gap, 4), np.uint8)
        spacer[..., 3] = 255
        row = []
        for tile in tiles:
            padded = np.zeros((height, tile.shape[1], 4), np.uint8)
            padded[..., 3] = 255
            padded[:tile.shape[0]] = tile
            row += [padded, spacer]
        return write_png(path, np.concatenate(row[:-1], axis=1))

    @contextmanager
    def showing(self, background, foreground, opacity: float, views=("Red", "Yellow", "Green")) -> Iterator[None]:
        """Show ``foreground`` over ``background`` in ``views`` for the block, then put back what each
        view showed and where it was (volumes, opacity, field of view, slice position): the user's
        views are left as they were, whatever a render inside the block fitted or moved."""
        saved = [(self._logic(view), self._state(view)) for view in views]
        try:
            for logic, _ in saved:
                composite = logic.GetSliceCompositeNode()
                composite.SetBackgroundVolumeID(background.GetID() if background is not None else None)
                composite.SetForegroundVolumeID(foreground.GetID() if foreground is not None else None)
                composite.SetForegroundOpacity(float(opacity))
            yield
        finally:
            for logic, state in saved:
                _restore(logic, state)

    def _state(self, view: str) -> dict:
        logic = self._logic(view)
        composite, node = logic.GetSliceCompositeNode(), logic.GetSliceNode()
        slice_to_ras = vtk.vtkMatrix4x4()
        slice_to_ras.DeepCopy(node.GetSliceToRAS())
        return {"background": composite.GetBackgroundVolumeID(), "foreground": composite.GetForegroundVolumeID(),
                "opacity": composite.GetForegroundOpacity(), "fov": tuple(node.GetFieldOfView()),
                "origin": tuple(node.GetXYZOrigin()), "slice_to_ras": slice_to_ras}

    def _logic(self, view: str):
        if view not in self.slice_logics:
            raise InputError(f"Unknown view '{view}'; use one of {sorted(self.slice_logics)}.")
        return self.slice_logics[view]


def _matrix(vtk_matrix) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


def _restore(logic, state: dict) -> None:
    composite, node = logic.GetSliceCompositeNode(), logic.GetSliceNode()
    composite.SetBackgroundVolumeID(state["background"])
    composite.SetForegroundVolumeID(state["foreground"])
    composite.SetForegroundOpacity(state["opacity"])
    was = node.StartModify()
    node.SetFieldOfView(*state["fov"])
    node.SetXYZOrigin(*state["origin"])
    node.GetSliceToRAS().DeepCopy(state["slice_to_ras"])
    node.UpdateMatrices()
    node.EndModify(was)


def write_png(path: str | Path, pixels: np.ndarray) -> Path:
    """Write an (H, W, 3|4) uint8 array (top row first) to a PNG file with VTK."""
    path = Path(path)
    image = vtk.vtkImageData()
    image.SetDimensions(pixels.shape[1], pixels.shape[0], 1)
    flat = np.ascontiguousarray(pixels[::-1]).reshape(-1, pixels.shape[2])
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(flat, deep=True))
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputData(image)
    writer.Write()
    if not path.exists():
        raise OSError(f"Could not write {path}: check that the folder exists and is writable.")
    return path
