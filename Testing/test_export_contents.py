"""``RelevanceLogic.export`` writes what belongs to one output and nothing else (trial 7 F7): its relevance
map (NIfTI) with the JSON sidecar and, when the logic has slice views, the labelled PNGs. Never another
volume of the scene: not the input scan, not another patient's scan, not another run's output."""
import hashlib

import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.geometry import Grid, kji_to_nibabel
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from reading_helpers import SCAN_GRID, scan_volume, tiny_card
from scene_census import census

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _two_patients(scene, tmp_path, views=None):
    """Two scans from two files (two patients, other grids) and one run on each, in one scene."""
    loaded = load_model(tiny_card(tmp_path), device="cpu")
    logic = RelevanceLogic(scene, views)
    first = scan_volume(scene, "patient-A")
    array, _ = mrml.volume_to_array(first)
    other = Grid.from_parts(SCAN_GRID.shape_kji, (2.1, 1.9, 2.0), (-25.0, -29.0, -21.0))
    second = mrml.array_to_volume(scene, (array[::-1] * 1.7 + 3.0).astype(np.float32), other, "patient-B")
    return logic, logic.run([first], loaded), logic.run([second], loaded, preset="epsilon-plus")


def _digests(folder) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("with_views", [False, True])
def test_export_writes_only_this_output(scene, views, tmp_path, with_views):
    logic, run_a, run_b = _two_patients(scene, tmp_path, views if with_views else None)
    before = census(scene)
    out = logic.export(run_b.outputs[0], tmp_path / "out")
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    expected = ["heatmap.json", "heatmap.nii.gz"]
    if with_views:
        expected += ["heatmap_Green.png", "heatmap_Red.png", "heatmap_Yellow.png"]
    assert names == sorted(expected)
    assert sorted(out.files) == sorted(["heatmap", "heatmap_json"] + (
        ["png_Red", "png_Yellow", "png_Green"] if with_views else []))
    # the map is run B's raw relevance on patient B's grid; nothing of patient A is in the folder
    image = nib.load(out.files["heatmap"])
    assert np.array_equal(np.asarray(image.dataobj), kji_to_nibabel(run_b.raw_source[0].astype(np.float32)))
    np.testing.assert_allclose(image.affine, mrml.volume_grid(run_b.node).ijk_to_ras, atol=1e-4)
    text = (tmp_path / "out" / "heatmap.json").read_text()
    assert "patient-B" in text and "patient-A" not in text
    assert census(scene) == before  # the scene is not changed by an export


def test_export_does_not_write_the_scene_or_any_input(scene, tmp_path):
    logic, run_a, run_b = _two_patients(scene, tmp_path)
    scans = {name: mrml.volume_to_array(scene.GetFirstNodeByName(name))[0] for name in ("patient-A", "patient-B")}
    logic.export(run_a.outputs[0], tmp_path / "out")
    for path in (tmp_path / "out").rglob("*"):
        assert path.suffix not in (".mrml", ".nrrd", ".mrb") and path.is_file()
        if path.name.endswith(".nii.gz"):
            data = np.asarray(nib.load(path).dataobj)
            for name, scan in scans.items():
                assert data.shape != kji_to_nibabel(scan).shape or not np.allclose(data, kji_to_nibabel(scan)), name
