"""Heatmap display on a real scene: colour table, window, overlay on every view, PNG rendering."""
import numpy as np
import pytest
import vtk

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.mrml import array_to_volume, create_heatmap_volume, diverging_color_table, show_heatmap
from NeuroRelevanceLib.mrml.display import colormap_rgba


def test_colormap_symmetric_around_zero():
    rgba = colormap_rgba(threshold=0.2)
    n = len(rgba)
    assert np.array_equal(rgba[:, 3], rgba[::-1, 3])  # same transparency for ±t
    t = np.linspace(-1, 1, n)
    assert np.all(rgba[np.abs(t) <= 0.2, 3] == 0) and np.all(rgba[np.abs(t) > 0.2, 3] == 1)
    assert rgba[-1, 0] > 0.8 > rgba[-1, 2]      # strongest positive: red
    assert rgba[0, 2] > 0.8 > rgba[0, 0]        # strongest negative: blue
    weight = np.linalg.norm(rgba[:, :3] - [0.97, 0.97, 0.97], axis=1)
    assert np.all(np.diff(weight[t > 0]) > 0) and np.all(np.diff(weight[t < 0]) < 0)


def test_zero_is_always_transparent():
    for positive_only in (False, True):
        rgba = colormap_rgba(0.0, positive_only)
        centre = 0 if positive_only else len(rgba) // 2
        assert rgba[centre, 3] == 0


def test_color_table_node_content_and_update_in_place(scene):
    node = diverging_color_table(scene, 0.1)
    assert node.GetNumberOfColors() == 256
    rgba = np.zeros(4)
    node.GetColor(255, rgba)
    assert np.allclose(rgba, colormap_rgba(0.1)[255], atol=1 / 255)
    assert diverging_color_table(scene, 0.5, node=node) is node
    node.GetColor(200, rgba)  # t ≈ 0.57 > 0.5: still drawn; t of entry 150 ≈ 0.18: now hidden
    assert rgba[3] == 1.0
    node.GetColor(150, rgba)
    assert rgba[3] == 0.0
    with pytest.raises(InputError, match="Threshold"):
        diverging_color_table(scene, 1.5)


def test_threshold_changes_add_no_colour_tables(scene, views):
    _, heat = _source_and_heatmap(scene)
    show_heatmap(scene, heat, threshold=0.1)
    count = scene.GetNumberOfNodesByClass("vtkMRMLColorTableNode")
    for threshold in (0.2, 0.3, 0.4):
        show_heatmap(scene, heat, threshold=threshold)
    assert scene.GetNumberOfNodesByClass("vtkMRMLColorTableNode") == count


def _source_and_heatmap(scene):
    grid = Grid.from_parts((20, 40, 40), (2.0, 2.0, 2.0), (-40, -40, -20))
    k, j, i = np.mgrid[:20, :40, :40]
    t1 = array_to_volume(scene, (100 + i).astype(np.float32), grid, "T1")
    relevance = np.zeros(grid.shape_kji, np.float32)
    relevance[8:12, 5:15, 5:15] = 2.0    # positive blob
    relevance[8:12, 25:35, 25:35] = -2.0  # negative blob
    return t1, create_heatmap_volume(scene, t1, relevance, "LRP")


def test_overlay_on_every_composite_node(scene, views):
    t1, heat = _source_and_heatmap(scene)
    display = show_heatmap(scene, heat, opacity=0.7, threshold=0.05)
    lo, hi = display.GetWindowLevelMin(), display.GetWindowLevelMax()
    assert (lo, hi) == (-2.0, 2.0)
    composites = [scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode") for i in range(3)]
    assert scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode") == 3
    for composite in composites:
        assert composite.GetForegroundVolumeID() == heat.GetID()
        assert composite.GetBackgroundVolumeID() == t1.GetID()
        assert composite.GetForegroundOpacity() == pytest.approx(0.7)
    positive = show_heatmap(scene, heat, positive_only=True)
    assert (positive.GetWindowLevelMin(), positive.GetWindowLevelMax()) == (0.0, 2.0)


def test_rendered_png_shows_overlay(scene, views, tmp_path):
    t1, heat = _source_and_heatmap(scene)
    show_heatmap(scene, heat, opacity=1.0)
    pixels = views.rgba("Red", offset=0.0)
    assert pixels.std() > 0  # not blank
    reds = (pixels[..., 0] > 150) & (pixels[..., 2] < 100)
    blues = (pixels[..., 2] > 150) & (pixels[..., 0] < 100)
    assert reds.sum() > 20 and blues.sum() > 20
    path = views.render_png(tmp_path / "red.png", "Red", offset=0.0, annotate=False)  # the bare view
    reader = vtk.vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    assert reader.GetOutput().GetDimensions()[:2] == (96, 96)
    reader.SetFileName(str(views.render_png(tmp_path / "labelled.png", "Red", offset=0.0)))
    reader.Update()  # labelled by default: letters, colour bar and caption around the view
    width, height = reader.GetOutput().GetDimensions()[:2]
    assert width > 96 + 100 and height > 96 + 40
    # with the overlay off the same view has neither red nor blue blobs
    for i in range(3):
        scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode").SetForegroundOpacity(0.0)
    plain = views.rgba("Red", offset=0.0)
    assert ((plain[..., 0] > 150) & (plain[..., 2] < 100)).sum() == 0


def test_bad_display_inputs(scene, views):
    _, heat = _source_and_heatmap(scene)
    with pytest.raises(InputError, match="Opacity"):
        show_heatmap(scene, heat, opacity=2.0)
    with pytest.raises(InputError, match="No heatmap"):
        show_heatmap(scene, None)
    with pytest.raises(InputError, match="Unknown view"):
        views.rgba("Blue")


def test_montage_puts_three_views_side_by_side(scene, views, tmp_path):
    empty = views.rgba("Yellow")
    assert empty.shape == (96, 96, 4) and empty[..., :3].max() == 0
    _, heat = _source_and_heatmap(scene)
    show_heatmap(scene, heat)
    path = views.render_montage(tmp_path / "three.png", gap=4, annotate=False)
    reader = vtk.vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    width, height, _ = reader.GetOutput().GetDimensions()
    assert (width, height) == (3 * 96 + 2 * 4, 96)
