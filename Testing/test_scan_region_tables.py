"""Region statistics of a run: on the overlay's own scan grid, several atlases per run, clear errors."""
import numpy as np
import pytest

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from NeuroRelevanceLib.regions import read_csv, write_csv
from reading_helpers import SCAN_GRID, scan_volume, tiny_card


@pytest.fixture
def loaded(tmp_path):
    return load_model(tiny_card(tmp_path), device="cpu")


def _labelmap(scene, name, split_i):
    labels = np.zeros(SCAN_GRID.shape_kji, np.int16)
    labels[:, :, :split_i], labels[:, :, split_i:] = 1, 2
    labels[:2] = 0  # the lowest slices lie outside the atlas
    node = mrml.array_to_volume(scene, labels, SCAN_GRID, name, node_class="vtkMRMLLabelMapVolumeNode")
    return node, labels


def test_statistics_use_the_overlay_grid_not_the_model_grid(scene, loaded, one_torch_thread, tmp_path):
    atlas, labels = _labelmap(scene, "halves", 12)
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, atlas=atlas, min_overlap=0.0,
                                    min_region_voxels=0, min_region_mm3=0)
    raw = run.raw_source[0]  # the overlay's values, on the scan grid
    table = run.table.set_index("label")
    for label in (1, 2):
        assert table.loc[label, "voxels"] == np.count_nonzero(labels == label)  # scan voxels, not 4 mm ones
        assert table.loc[label, "volume_mm3"] == pytest.approx(8.0 * np.count_nonzero(labels == label))
        assert table.loc[label, "sum"] == pytest.approx(float(raw[labels == label].sum(dtype=np.float64)),
                                                        rel=1e-6, abs=1e-9)
    assert table.attrs["grid"] == "24×30×20 voxels of 2×2×2 mm"
    assert table.attrs["provenance"]["regions"] == {"atlas": "halves", "min_overlap": 0.0, "min_region_voxels": 0.0,
                                                    "min_region_mm3": 0.0, "grid": "scan"}
    header = write_csv(run.table, tmp_path / "t.csv").read_text()
    assert "# grid: 24×30×20 voxels of 2×2×2 mm" in header and "# atlas: halves" in header
    assert read_csv(tmp_path / "t.csv").attrs["provenance"]["run_key"] == run.job.key
    assert "scan grid" in run.table_node.GetName() or "halves" in run.table_node.GetName()
    assert run.table_node.GetAttribute("NeuroRelevance.record")


def test_a_second_atlas_adds_a_table_and_the_same_atlas_replaces_its_own(scene, loaded, one_torch_thread):
    first, _ = _labelmap(scene, "halves", 12)
    second, _ = _labelmap(scene, "thirds", 8)
    logic = RelevanceLogic(scene)
    run = logic.run([scan_volume(scene)], loaded, atlas=first, min_overlap=0.0)
    first_node = run.table_node
    rows = first_node.GetNumberOfRows()
    second_node = logic.add_region_table(run, second, min_overlap=0.0)
    assert second_node is not first_node and first_node.GetScene() is scene
    assert first_node.GetNumberOfRows() == rows and set(run.tables) == {"halves", "thirds"}
    assert run.table_nodes["halves"] is first_node and run.table_nodes["thirds"] is second_node
    assert mrml.output_folder(scene, second_node) == mrml.output_folder(scene, run.node)
    count = scene.GetNumberOfNodes()
    assert logic.add_region_table(run, second, min_overlap=0.0) is second_node
    assert scene.GetNumberOfNodes() == count
    assert len(logic.run_nodes(run.job.key)) == 3  # the overlay and both tables belong to the run


def test_an_unknown_atlas_is_refused_before_anything_is_added(scene, loaded, one_torch_thread):
    logic = RelevanceLogic(scene)
    volume = scan_volume(scene)
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="DesikanKiliany.*available_atlases|neither a bundled atlas"):
        logic.run([volume], loaded, atlas="DesikanKiliany")
    assert scene.GetNumberOfNodes() == before
    run = logic.run([volume], loaded)
    with pytest.raises(InputError, match="AAL33"):
        logic.add_region_table(run, "AAL33")
    assert run.table is None and run.tables == {}
