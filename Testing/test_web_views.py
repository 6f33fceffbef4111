"""The web viewer's slice views read alone and navigate (issue 15), rendered offscreen.

Real trame-slicer slice views (Slicer's displayable managers) drawn offscreen without a browser,
on a real scene with a synthetic scan and a heatmap that is positive only on the patient's right.
Oracles: where a marker placed in RAS appears on screen, the radiological convention, the scene's
own nodes (crosshair, slice offsets, display windows).
"""
from __future__ import annotations

import numpy as np
import pytest

from reading_helpers import SCAN_GRID, right_hemisphere_map, scan_volume

slicer = pytest.importorskip("slicer")
pytest.importorskip("trame_slicer")
SIZE = 240


@pytest.fixture(scope="module")
def aids():
    import os

    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
    from trame_slicer.core import SlicerApp
    from trame_slicer.views import DirectViewFactory

    from NeuroRelevanceLib.mrml.display import show_heatmap
    from NeuroRelevanceLib.mrml.outputs import create_heatmap_volume
    from NeuroRelevanceLib.web.views import ViewAids

    app = SlicerApp()
    app.view_manager.register_factory(DirectViewFactory(do_render_offscreen=True))
    aids = ViewAids(app)
    scan = scan_volume(app.scene)
    heat = create_heatmap_volume(app.scene, scan, right_hemisphere_map(), "LRP test", target="AD")
    other = create_heatmap_volume(app.scene, scan, -right_hemisphere_map(), "LRP test", target="control")
    for node in (other, heat):
        show_heatmap(app.scene, node, opacity=0.8)
    aids.show(scan, heat, other, opacity=0.8)
    for view in aids.views.values():
        view.render_window().SetSize(SIZE, SIZE)
        view.fit_view_to_content()
    aids.app_nodes = (scan, heat, other)
    yield aids


def _pixels(view) -> np.ndarray:
    import vtk
    from vtk.util import numpy_support

    view.render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(view.render_window())
    grab.ReadFrontBufferOff()
    grab.Update()
    image = grab.GetOutput()
    width, height, _ = image.GetDimensions()
    array = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)
    return array[::-1, :, :3].astype(int)


def _red(pixels):
    return (pixels[..., 0] - pixels[..., 2] > 60) & (pixels[..., 0] > 120)


def _blue(pixels):
    return (pixels[..., 2] - pixels[..., 0] > 60) & (pixels[..., 2] > 120)


def _passes_through(view, ras) -> bool:
    """Whether a slice view's plane contains the RAS point (its offset is along its own normal)."""
    matrix = view.get_view_node().GetSliceToRAS()
    normal = np.array([matrix.GetElement(r, 2) for r in range(3)])
    return abs(float(normal @ np.asarray(ras)) - view.get_slice_value()) < 1e-6


def _event(view, name: str, x: int, y: int) -> None:
    interactor = view.interactor()
    interactor.SetEventInformation(x, y, 0, 0)
    interactor.InvokeEvent(name)


def test_letters_follow_the_view_and_the_patients_right_is_on_the_letter_r_side(aids):
    assert aids.letters("Red") == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert aids.letters("Green") == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert {aids.letters("Yellow")[e] for e in ("left", "right")} == {"A", "P"}
    aids.views["Red"].set_slice_value(0.0)
    pixels = _pixels(aids.views["Red"])
    heat = _red(pixels)
    heat[:, int(0.85 * SIZE):] = False  # leave out the colour bar
    columns = np.flatnonzero(heat.any(axis=0))
    assert columns.size and columns.mean() < SIZE / 2, "the patient's right (red map) is not on screen left"
    corner = aids.corners["Red"]
    assert [corner.GetText(i) for i in (6, 5, 7, 4)] == ["R", "L", "A", "P"]


def test_slice_position_is_written_in_mm(aids):
    view = aids.views["Red"]
    view.set_slice_value(-6.0)
    assert aids.position("Red") == "I 6.0 mm" and aids.corners["Red"].GetText(0) == "I 6.0 mm"
    view.set_slice_value(4.0)
    assert aids.corners["Red"].GetText(0) == "S 4.0 mm"


def test_colour_legend_is_drawn_beside_the_map(aids):
    pixels = _pixels(aids.views["Red"])
    right = pixels[:, int(0.8 * SIZE):]
    red_rows, blue_rows = np.flatnonzero(_red(right).any(axis=1)), np.flatnonzero(_blue(right).any(axis=1))
    assert red_rows.size > 10 and blue_rows.size > 10 and np.median(red_rows) < np.median(blue_rows)


def test_compare_shows_the_pinned_map_on_the_same_slice(aids):
    scan, heat, other = aids.app_nodes
    assert aids.views["Compare"].get_foreground_volume_id() == other.GetID()
    assert all(aids.views[s].get_foreground_volume_id() == heat.GetID() for s in ("Red", "Green", "Yellow"))
    aids.views["Red"].set_slice_value(2.0)
    assert aids.views["Compare"].get_slice_value() == pytest.approx(2.0)
    left, right = _pixels(aids.views["Red"]), _pixels(aids.views["Compare"])
    body = slice(0, int(0.8 * SIZE))
    assert _red(left[:, body]).sum() > 50 and _blue(right[:, body]).sum() > 50  # AD map vs its opposite


def test_a_click_sets_the_crosshair_and_every_view_jumps_there(aids):
    red = aids.views["Red"]
    _event(red, "MouseMoveEvent", 60, 150)
    cursor = aids.cursor()
    _event(red, "LeftButtonPressEvent", 60, 150)
    _event(red, "LeftButtonReleaseEvent", 60, 150)
    ras = np.array(aids.crosshair.GetCrosshairRAS())
    assert np.allclose(ras, cursor, atol=1e-6)
    assert ras[0] > 0, "a click left of centre in a radiological view is on the patient's right"
    assert all(_passes_through(view, ras) for view in aids.views.values())


def test_jump_moves_the_crosshair_and_the_slices(aids):
    aids.jump([10.0, -12.0, 4.0])
    assert aids.crosshair.GetCrosshairRAS() == pytest.approx((10.0, -12.0, 4.0))
    assert aids.views["Red"].get_slice_value() == pytest.approx(4.0)
    assert all(_passes_through(view, (10.0, -12.0, 4.0)) for view in aids.views.values())
    assert aids.position("Yellow") == "R 10.0 mm" and aids.position("Green") == "P 12.0 mm"


def test_a_refit_keeps_the_slice_the_reader_was_on(aids):
    aids.jump([6.0, -8.0, 10.0])
    red = aids.views["Red"]
    red.render_window().SetSize(2 * SIZE, SIZE)
    aids.refit(["Red"])
    assert red.get_slice_value() == pytest.approx(10.0)
    red.render_window().SetSize(SIZE, SIZE)
    aids.refit(["Red"])
    assert red.get_slice_value() == pytest.approx(10.0)


def test_a_drag_changes_the_scans_window_and_never_the_heatmaps(aids):
    scan, heat, _ = aids.app_nodes
    shown = scan.GetDisplayNode()
    before = (shown.GetWindow(), shown.GetLevel())
    heat_window = (heat.GetDisplayNode().GetWindowLevelMin(), heat.GetDisplayNode().GetWindowLevelMax())
    red = aids.views["Red"]
    _event(red, "MouseMoveEvent", 40, 120)  # over the red map: the heatmap layer is not editable
    _event(red, "LeftButtonPressEvent", 40, 120)
    for step in range(1, 6):
        _event(red, "MouseMoveEvent", 40 + 12 * step, 120 + 6 * step)
    _event(red, "LeftButtonReleaseEvent", 100, 150)
    assert (shown.GetWindow(), shown.GetLevel()) != pytest.approx(before)
    assert (heat.GetDisplayNode().GetWindowLevelMin(), heat.GetDisplayNode().GetWindowLevelMax()) == \
        pytest.approx(heat_window)
    assert SCAN_GRID.shape_kji == (20, 30, 24)
