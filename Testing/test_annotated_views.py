"""Images we render read alone: letters on the right sides, positions in mm, a colour bar, a caption;
and Slicer's own colour legend on the heatmap. Checked on the pixels, with an asymmetric map."""
import numpy as np
import pytest

from NeuroRelevanceLib import annotation, mrml
from NeuroRelevanceLib.mrml.display import show_heatmap
from NeuroRelevanceLib.mrml.outputs import create_heatmap_volume
from reading_helpers import SCAN_GRID, right_hemisphere_map, scan_volume

#: Slicer's views in radiological convention: the letter at each edge of the image
SLICER_LETTERS = {"Red": dict(left="R", right="L", top="A", bottom="P"),
                  "Yellow": dict(left="A", right="P", top="S", bottom="I"),
                  "Green": dict(left="R", right="L", top="S", bottom="I")}


def _glyph(letter: str) -> np.ndarray:
    """The letter drawn alone the way a caption font draws it (an independent template)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(0.22, 0.22), dpi=100, facecolor="black")
    FigureCanvasAgg(figure)
    figure.text(0.5, 0.5, letter, ha="center", va="center", fontsize=12, fontweight="bold", color="white")
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].mean(-1)


def _read_letter(pixels: np.ndarray, box) -> str:
    x0, y0, x1, y1 = box
    crop = pixels[y0:y1, x0:x1, :3].mean(-1)
    scores = {}
    for letter in "RLAPSI":
        template = _glyph(letter)[:crop.shape[0], :crop.shape[1]]
        a, b = crop - crop.mean(), template - template.mean()
        scores[letter] = float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
    return max(scores, key=scores.get)


@pytest.fixture
def shown(scene, views):
    scan = scan_volume(scene)
    heat = create_heatmap_volume(scene, scan, right_hemisphere_map(), "LRP test",
                                 parameters={"preset": "alpha1-beta0"}, target="AD")
    show_heatmap(scene, heat, opacity=1.0, threshold=0.05)
    return scan, heat


def test_letters_come_from_each_views_geometry(views):
    for view, expected in SLICER_LETTERS.items():
        assert views.tile(view).letters == expected, view


def test_right_hemisphere_is_drawn_on_the_side_lettered_R(scene, views, shown):
    centre = SCAN_GRID.ijk_to_ras @ np.array([11.5, 14.5, 9.5, 1.0])
    pixels, layout = views.annotated(("Red", "Yellow", "Green"), views.offsets_through(centre[:3] + [20, 0, 0]))
    for (view, expected), box in zip(SLICER_LETTERS.items(), layout.tiles, strict=True):
        letters = [(text, b) for text, b in layout.letters if box[0] - 30 < b[0] < box[2] + 30]
        assert sorted(text for text, _ in letters) == sorted(expected.values()), view  # all four, no neighbour's
        for text, letter_box in letters:
            assert _read_letter(pixels, letter_box) == text, (view, text)  # what is drawn is what we meant
        x0, y0, x1, y1 = box
        tile = pixels[y0:y1, x0:x1, :3].astype(int)
        red = (tile[..., 0] > 150) & (tile[..., 1] < 120) & (tile[..., 2] < 120)
        if view == "Yellow":  # the sagittal slice passes through x = +19 mm: inside the red region
            assert red.sum() > 30, "the sagittal view is not at x = +19 mm (right)"
            continue
        columns = np.nonzero(red)[1]
        assert columns.size > 30 and columns.mean() < (x1 - x0) / 2, view  # image left = patient right
        assert next(t for t, b in letters if b[2] <= x0 + 2) == "R"
    titles = [text for text, _ in layout.positions]
    assert titles[0].startswith("Axial · ") and titles[0].endswith(" mm")
    assert titles[1] == f"Sagittal · R {centre[0] + 20:.1f} mm"  # through the right hemisphere (x = +19)


def test_colour_bar_shows_red_at_the_top_blue_at_the_bottom_with_values(scene, views, shown):
    _, heat = shown
    pixels, layout = views.annotated(("Red",))
    x0, y0, x1, y1 = layout.colour_bar
    middle = (x0 + x1) // 2
    top, bottom = pixels[y0 + 2, middle, :3].astype(int), pixels[y1 - 3, middle, :3].astype(int)
    assert top[0] > 150 and top[2] < 100, top      # +window: red
    assert bottom[2] > 150 and bottom[0] < 100, bottom  # -window: blue
    centre = pixels[(y0 + y1) // 2, middle, :3].astype(int)
    assert abs(centre[0] - centre[2]) < 20  # around zero: hidden (grey), neither red nor blue
    labels = pixels[y0:y1, x1 + 4:x1 + 50, :3]
    assert (labels.max(-1) > 150).sum() > 50  # tick values are written beside the bar
    bar = mrml.legend.colour_bar_for(heat)
    window = heat.GetDisplayNode().GetWindowLevelMax()
    assert (bar.low, bar.high) == (-window, window)
    assert bar.top_meaning == "red: raises the AD score" and "hidden" in bar.note


def test_caption_states_the_convention_and_is_drawn(scene, views, shown):
    pixels, layout = views.annotated(("Red",))
    lines = mrml.legend.caption_for(shown[1])
    assert any("radiological" in line.lower() and "patient right on image left" in line for line in lines)
    x0, y0, x1, y1 = layout.caption
    assert (pixels[y0:y1, x0:x1, :3].max(-1) > 150).sum() > 200  # caption text is there


def test_slicer_colour_legend_is_added_once_and_follows_the_display(scene, views, shown):
    _, heat = shown
    legend = mrml.legend.show_color_legend(scene, heat)
    assert legend is not None and legend.IsA("vtkMRMLColorLegendDisplayNode")
    assert legend.GetVisibility() and legend.GetPrimaryDisplayNode() is heat.GetDisplayNode()
    assert legend.GetTitleText().splitlines()[0] == "Relevance (red: for AD)"
    window = heat.GetDisplayNode().GetWindowLevelMax()
    assert legend.GetScalarRange() == pytest.approx((-window, window))
    assert legend.GetLabelFormat() == "%.2g"
    show_heatmap(scene, heat, threshold=0.2, in_views=False)
    assert scene.GetNumberOfNodesByClass("vtkMRMLColorLegendDisplayNode") == 1
    assert not legend.GetVisibility()
    mrml.outputs.remove_with_companions(scene, heat)
    assert scene.GetNumberOfNodesByClass("vtkMRMLColorLegendDisplayNode") == 0


def test_position_text_and_letters_for_oblique_views():
    assert annotation.position_text((0, 0, 1), -3.25) == "I 3.2 mm"
    assert annotation.position_text((-1, 0, 0), 10.0) == "L 10.0 mm"  # Slicer's sagittal normal points left
    rotated = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # screen x along +A
    assert annotation.orientation_letters(rotated) == dict(left="P", right="A", top="L", bottom="R")


def test_slicer_colour_legend_is_drawn_in_a_real_mrml_slice_view(tmp_path):
    """The legend as Slicer draws it: a slice view with Slicer's displayable managers (trame-slicer),
    rendered offscreen; the bar's red top and blue bottom appear on the right of the view."""
    import os

    pytest.importorskip("trame_slicer")
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
    from vtk.util.numpy_support import vtk_to_numpy

    from reading_helpers import render_slicer_view

    try:
        image = render_slicer_view(size=300)
    except Exception as exc:  # no offscreen OpenGL on this machine
        pytest.skip(f"offscreen rendering unavailable: {exc}")
    width, height, _ = image.GetDimensions()
    pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)[::-1, :, :3].astype(int)
    right = pixels[:, int(width * 0.75):]
    red = (right[..., 0] > 180) & (right[..., 1] < 90) & (right[..., 2] < 90)
    blue = (right[..., 2] > 180) & (right[..., 0] < 90)
    assert red.sum() > 20 and blue.sum() > 20
    assert np.nonzero(red)[0].mean() < np.nonzero(blue)[0].mean()  # red above blue
    left = pixels[:, : int(width * 0.25)]
    assert ((left[..., 2] > 180) & (left[..., 0] < 90)).sum() == 0  # only the legend is blue here
