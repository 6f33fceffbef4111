"""Scene transactions: a run changes the scene only once it fully succeeded, and cleans up after itself.

A failed (re-)run leaves every node, node ID, subject-hierarchy item, voxel and display setting
as it was; re-runs leave no orphans and make VTK log no error; every call on a run whose nodes the
user deleted gives one clear error. Real scene, real model; failures are real (a NaN map, a
folder that cannot exist) or, where nothing real fails mid-way, injected into one MRML step.
"""
import numpy as np
import pytest

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.jobs import compute
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from reading_helpers import halves_atlas, run_scan, tiny_card
from scene_census import census, orphans, vtk_errors

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return load_model(tiny_card(tmp_path_factory.mktemp("model")), device="cpu")


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    return halves_atlas(tmp_path_factory.mktemp("atlas"))


@pytest.fixture
def scan(scene):
    return run_scan(scene)


@pytest.fixture
def logic(scene, views):
    return RelevanceLogic(scene, views)


def _poison(job, value=np.nan, channel=0):
    job.raw[channel] = job.raw[channel].copy()
    job.raw[channel][3, 4, 5] = value
    return job


# ---- a failed re-run leaves the scene exactly as it was -----------------------------------------
def _nan_map(logic, monkeypatch, job):
    return _poison(job)


def _inf_map(logic, monkeypatch, job):
    return _poison(job, -np.inf)


def _table_step_fails(logic, monkeypatch, job):
    def broken(*args, **kwargs):
        raise MemoryError("injected: no memory for the table")

    monkeypatch.setattr("NeuroRelevanceLib.mrml.results.table_from_columns", broken)
    return job


def _display_step_fails(logic, monkeypatch, job):
    real = mrml.show_heatmap

    def broken(scene, node, *args, **kwargs):
        real(scene, node, *args, **kwargs)  # half done: the views already changed
        raise RuntimeError("injected: the display failed")

    monkeypatch.setattr(mrml, "show_heatmap", broken)
    return job


def _scan_removed(logic, monkeypatch, job):
    logic.scene.RemoveNode(logic.scene.GetNodeByID(job.volume_ids[0]))
    return job


FAILURES = {"nan map": (_nan_map, InputError), "inf map": (_inf_map, InputError),
            "table step fails": (_table_step_fails, MemoryError),
            "display step fails": (_display_step_fails, RuntimeError)}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failed_rerun_leaves_the_scene_and_the_previous_run_as_they_were(logic, scene, scan, loaded,
                                                                       atlas, monkeypatch, capfd, failure):
    break_it, error = FAILURES[failure]
    first = logic.run([scan], loaded, target="AD", atlas=atlas, opacity=0.7, threshold=0.1)
    before = census(scene)
    job = compute(logic.prepare([scan], loaded, target="AD", atlas=atlas, opacity=0.2))
    assert job.key == first.job.key  # the same run again: it would replace the first
    with pytest.raises(error):
        logic.apply(break_it(logic, monkeypatch, job))
    monkeypatch.undo()
    assert census(scene) == before
    assert first.node.GetScene() is scene and first.table_node.GetScene() is scene
    logic.refilter(first, "pass", (0.2, 1.0))  # the previous run still works
    assert not vtk_errors(capfd.readouterr().err)


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failed_first_run_adds_nothing(logic, scene, scan, loaded, atlas, monkeypatch, failure):
    break_it, error = FAILURES[failure]
    before = census(scene)
    job = compute(logic.prepare([scan], loaded, atlas=atlas))
    with pytest.raises(error):
        logic.apply(break_it(logic, monkeypatch, job))
    assert census(scene) == before


def test_removed_input_refuses_apply_and_keeps_the_previous_run(logic, scene, scan, loaded):
    logic.run([scan], loaded)
    job = compute(logic.prepare([scan], loaded))
    scene.RemoveNode(scan)
    before = census(scene)
    with pytest.raises(InputError, match="removed"):
        logic.apply(job)
    assert census(scene) == before


def test_rerun_keeps_names_and_folder(logic, scene, scan, loaded, atlas):
    first = logic.run([scan], loaded, target="AD", atlas=atlas)
    names = (first.node.GetName(), first.table_node.GetName())
    folder = mrml.output_folder(scene, first.node)
    second = logic.run([scan], loaded, target="AD", atlas=atlas)
    assert (second.node.GetName(), second.table_node.GetName()) == names
    assert mrml.output_folder(scene, second.node) == folder
    assert mrml.output_folder(scene, second.table_node) == folder
    assert first.node.GetScene() is None and first.table_node.GetScene() is None


# ---- re-runs leave no orphans and no VTK errors -------------------------------------------------
def test_reruns_leave_no_orphans_and_no_vtk_errors(logic, scene, scan, loaded, atlas, capfd):
    scan.CreateDefaultDisplayNodes()  # as a loaded scan has in Slicer (else the views make one)
    baseline = census(scene)["count"]
    for _ in range(4):
        logic.run([scan], loaded, target="AD", atlas=atlas)
        logic.run([scan], loaded, target="control")
    assert not orphans(scene)
    keys = {n.GetAttribute("NeuroRelevance.runKey") for n in logic.run_nodes()}
    assert len(keys) == 2
    for key in keys:
        assert logic.remove_run(key) >= 1
    assert census(scene)["count"] == baseline and not orphans(scene)
    assert not vtk_errors(capfd.readouterr().err)


def test_node_count_is_stable_over_reruns(logic, scene, scan, loaded, atlas):
    logic.run([scan], loaded, target="AD", atlas=atlas)
    counts = []
    for _ in range(3):
        logic.run([scan], loaded, target="AD", atlas=atlas)
        logic.refilter(logic.run([scan], loaded, target="AD", atlas=atlas), "clamp", (0.1, 0.5))
        counts.append(scene.GetNumberOfNodes())
    assert len(set(counts)) == 1 and not orphans(scene)


# ---- calls on a run whose nodes the user deleted ------------------------------------------------
def _refilter(logic, run, tmp_path):
    logic.refilter(run, "pass", (0.1, 1.0))


def _display_only(logic, run, tmp_path):
    logic.refilter(run, None, opacity=0.9, threshold=0.2)


def _region_table(logic, run, tmp_path):
    labels = np.ones(mrml.volume_grid(run.job_volume).shape_kji, np.int16)
    node = mrml.array_to_volume(logic.scene, labels, mrml.volume_grid(run.job_volume), "all",
                                node_class="vtkMRMLLabelMapVolumeNode")
    run.label_node = node
    logic.add_region_table(run, node)


def _export(logic, run, tmp_path):
    logic.export(run.outputs[0], tmp_path / "export")


CALLS = {"refilter": _refilter, "display only": _display_only, "add_region_table": _region_table,
         "export": _export}


@pytest.mark.parametrize("call", list(CALLS))
def test_calls_on_a_run_whose_output_was_deleted_give_one_clear_error(logic, scene, scan, loaded,
                                                                      tmp_path, capfd, call):
    run = logic.run([scan], loaded)
    run.job_volume = scan
    scene.RemoveNode(run.node)  # the user deleted the heatmap (Data module > Delete)
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="deleted") as info:
        CALLS[call](logic, run, tmp_path)
    assert "run again" in str(info.value).lower() and "\n" not in str(info.value)
    extra = getattr(run, "label_node", None)
    assert scene.GetNumberOfNodes() == before + (extra is not None)
    assert not (tmp_path / "export").exists()
    assert not [line for line in vtk_errors(capfd.readouterr().err) if "CreateDefaultDisplayNodes" in line]


def test_deleted_table_is_made_again_by_add_region_table(logic, scene, scan, loaded, atlas):
    run = logic.run([scan], loaded, atlas=atlas)
    scene.RemoveNode(run.table_node)
    table = logic.add_region_table(run, atlas)
    assert table.GetScene() is scene and table.GetNumberOfRows() == 2
    assert mrml.output_folder(scene, table) == mrml.output_folder(scene, run.node)


def test_failed_region_table_keeps_the_old_table(logic, scene, scan, loaded, atlas, tmp_path):
    import nibabel as nib

    run = logic.run([scan], loaded, atlas=atlas)
    rows = run.table_node.GetNumberOfRows()
    far = np.ones((4, 4, 4), np.int16)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = 500.0  # no relevance inside: refused
    nib.save(nib.Nifti1Image(far, affine), tmp_path / "far.nii.gz")
    before = census(scene)
    with pytest.raises(InputError):
        logic.add_region_table(run, str(tmp_path / "far.nii.gz"))
    assert census(scene) == before and len(run.table) == rows


# ---- export is all or nothing ------------------------------------------------------------------
def test_export_to_an_impossible_folder_writes_nothing_and_changes_nothing(logic, scene, scan, loaded, tmp_path):
    run = logic.run([scan], loaded)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    before = census(scene)
    with pytest.raises(InputError, match="a-file"):
        logic.export(run.outputs[0], blocker / "out")
    assert census(scene) == before and not run.outputs[0].files


def test_export_failing_half_way_leaves_no_partial_files(logic, scene, scan, loaded, tmp_path, monkeypatch):
    run = logic.run([scan], loaded)
    before = census(scene)

    def broken(*args, **kwargs):
        raise OSError("injected: disk full")

    monkeypatch.setattr(type(logic.views), "render_png", broken)  # after the heatmap was written
    with pytest.raises(OSError):
        logic.export(run.outputs[0], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert census(scene) == before
    monkeypatch.undo()
    done = logic.export(run.outputs[0], tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["heatmap.nii.gz", "heatmap.json", "heatmap_Red.png", "heatmap_Yellow.png", "heatmap_Green.png"])
    assert all(path.exists() for path in done.files.values())
    assert "partial" not in (tmp_path / "out" / "heatmap.json").read_text()
