"""Raw relevance and the displayed (filtered) map are different outputs with different names."""
import json

import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.geometry import kji_to_nibabel
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from reading_helpers import scan_volume, tiny_card


def test_export_writes_the_raw_map_by_default_and_the_displayed_one_only_when_asked(
        scene, views, tmp_path, one_torch_thread):
    loaded = load_model(tiny_card(tmp_path), device="cpu")
    logic = RelevanceLogic(scene, views)
    run = logic.run([scan_volume(scene)], loaded, filter="pass", filter_range=(0.3, 1.0))
    raw = run.raw_source[0]
    shown, grid = mrml.volume_to_array(run.node)
    assert np.count_nonzero(shown) < np.count_nonzero(raw)  # the node shows the filtered map
    out = logic.export(run.outputs[0], tmp_path / "out")
    image = nib.load(out.files["heatmap"])
    assert out.files["heatmap"].name == "heatmap.nii.gz"
    assert np.array_equal(np.asarray(image.dataobj), kji_to_nibabel(raw))  # raw, bit for bit
    np.testing.assert_allclose(image.affine, grid.ijk_to_ras, atol=1e-4)
    description = image.header["descrip"].item().decode()
    assert "raw" in description and "alpha1-beta0" in description and "target" in description
    sidecar = json.loads(out.files["heatmap_json"].read_text())
    assert sidecar["values"].startswith("raw relevance") and sidecar["record"] == run.record
    # the displayed map only on request, under a name that says so
    logic.refilter(run, "clamp", (0.0, 0.2))
    shown = mrml.volume_to_array(run.node)[0]
    displayed = logic.export(run.outputs[0], tmp_path / "out", displayed=True)
    path = displayed.files["heatmap_displayed"]
    assert path.name == "heatmap-displayed.nii.gz"
    assert np.array_equal(np.asarray(nib.load(path).dataobj), kji_to_nibabel(shown))
    info = json.loads(displayed.files["heatmap_displayed_json"].read_text())
    assert "clamp" in info["values"] and "0.00–0.20" in info["values"]
    assert "displayed" in nib.load(path).header["descrip"].item().decode()
    assert np.array_equal(np.asarray(nib.load(out.files["heatmap"]).dataobj), kji_to_nibabel(raw))


def test_a_refiltered_node_says_it_holds_the_displayed_map(scene, tmp_path, one_torch_thread):
    loaded = load_model(tiny_card(tmp_path), device="cpu")
    logic = RelevanceLogic(scene)
    run = logic.run([scan_volume(scene)], loaded)
    plain = run.node.GetName()
    logic.refilter(run, "pass", (0.3, 1.0))
    assert run.node.GetName() != plain and "pass 0.30–1.00" in run.node.GetName()
    assert run.node.GetAttribute("NeuroRelevance.values").startswith("displayed")
    logic.refilter(run, None)
    assert run.node.GetName() == plain and run.node.GetAttribute("NeuroRelevance.values") == "raw relevance"


def test_write_heatmap_refuses_a_wrong_shape(tmp_path):
    from NeuroRelevanceLib.errors import InputError
    from NeuroRelevanceLib.heatmap_files import write_heatmap
    from reading_helpers import SCAN_GRID

    with pytest.raises(InputError, match="shape"):
        write_heatmap(tmp_path / "h.nii.gz", np.zeros((3, 3, 3), np.float32), SCAN_GRID, None)
    assert not (tmp_path / "h.nii.gz").exists()


def test_displayed_export_adds_the_filtered_map_to_the_raw_one_and_files_list_only_this_export(
        scene, views, tmp_path, one_torch_thread):
    loaded = load_model(tiny_card(tmp_path), device="cpu")
    logic = RelevanceLogic(scene, views)
    run = logic.run([scan_volume(scene)], loaded, filter="pass", filter_range=(0.3, 1.0))
    out = logic.export(run.outputs[0], tmp_path / "first", displayed=True)
    names = sorted(p.name for p in (tmp_path / "first").iterdir())
    assert names == ["heatmap-displayed.json", "heatmap-displayed.nii.gz", "heatmap.json", "heatmap.nii.gz",
                     "heatmap_Green.png", "heatmap_Red.png", "heatmap_Yellow.png"]
    assert np.array_equal(np.asarray(nib.load(out.files["heatmap"]).dataobj), kji_to_nibabel(run.raw_source[0]))
    assert sorted(out.files) == sorted(["heatmap", "heatmap_json", "heatmap_displayed", "heatmap_displayed_json",
                                        "png_Red", "png_Yellow", "png_Green"])
    # a second export to another folder: the record lists that export's files only
    second = logic.export(run.outputs[0], tmp_path / "second")
    assert sorted(second.files) == sorted(["heatmap", "heatmap_json", "png_Red", "png_Yellow", "png_Green"])
    assert all(path.parent == tmp_path / "second" and path.exists() for path in second.files.values())
