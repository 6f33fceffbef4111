"""``RelevanceLogic.export`` of an earlier run renders that run's own picture (trial 8 F2).

After run B on another patient the slice views show B; exporting run A must still write PNGs of A's
scan under A's map, captioned with A's settings (never another run's picture), and leave the views
as the user had them. Oracle: the same export in a scene holding only patient A and run A."""
import numpy as np
import pytest
from PIL import Image

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from test_export_contents import _two_patients

pytestmark = pytest.mark.usefixtures("one_torch_thread")
VIEWS = ("Red", "Yellow", "Green")


def _view_state(scene, views) -> list:
    """What the user sees: each view's background, foreground, opacity, field of view and slice offset."""
    state = []
    for name in VIEWS:
        logic = views.slice_logics[name]
        comp, node = logic.GetSliceCompositeNode(), logic.GetSliceNode()
        state.append((comp.GetBackgroundVolumeID(), comp.GetForegroundVolumeID(),
                      round(comp.GetForegroundOpacity(), 6), tuple(round(v, 4) for v in node.GetFieldOfView()),
                      round(logic.GetSliceOffset(), 4)))
    return state


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_export_of_an_earlier_run_renders_that_run_not_what_the_views_show(scene, views, tmp_path):
    import slicer

    from reading_helpers import scan_volume
    logic, run_a, run_b = _two_patients(scene, tmp_path, views)
    assert views.foreground() is run_b.node  # run B is what the views show now
    views.slice_logics["Red"].SetSliceOffset(3.0)  # the user moved a view
    views.slice_logics["Red"].GetSliceCompositeNode().SetForegroundOpacity(0.8)
    before = _view_state(scene, views)
    out = logic.export(run_a.outputs[0], tmp_path / "A")
    assert _view_state(scene, views) == before  # the views are left as the user had them
    # oracle: run A alone in its own scene, exported the same way
    alone_scene = slicer.vtkMRMLScene()
    alone_views = mrml.SliceViews(alone_scene, size=(96, 96))
    alone = RelevanceLogic(alone_scene, alone_views)
    run = alone.run([scan_volume(alone_scene, "patient-A")], load_model(tmp_path / "tiny.json", device="cpu"))
    expected = alone.export(run.outputs[0], tmp_path / "alone")
    for view in VIEWS:
        got, want = _pixels(out.files[f"png_{view}"]), _pixels(expected.files[f"png_{view}"])
        assert got.shape == want.shape, view
        assert np.abs(got - want).max() <= 1, view  # A's scan, A's map, A's caption and colour bar
        # and not B's picture: B's own export differs
    b_out = logic.export(run_b.outputs[0], tmp_path / "B")
    assert not np.array_equal(_pixels(b_out.files["png_Red"]), _pixels(out.files["png_Red"]))
    assert _view_state(scene, views) == before


def test_export_without_the_scan_writes_no_png_and_says_why(scene, views, tmp_path):
    logic, run_a, run_b = _two_patients(scene, tmp_path, views)
    scene.RemoveNode(scene.GetFirstNodeByName("patient-A"))
    before = _view_state(scene, views)
    with pytest.warns(UserWarning, match="patient-A|scan"):
        out = logic.export(run_a.outputs[0], tmp_path / "A")
    assert not any(kind.startswith("png") for kind in out.files)
    assert not list((tmp_path / "A").glob("*.png"))
    assert out.notes and "PNG" in out.notes[0]
    assert _view_state(scene, views) == before
