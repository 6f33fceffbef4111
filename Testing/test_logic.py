"""The scene workflow: volume nodes -> model grid -> LRP -> output volumes, on a real scene and model."""
import json

import numpy as np
import pytest
import torch

from NeuroRelevanceLib import explain, mrml
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model, save_weights
from NeuroRelevanceLib.nets import build, spec
from NeuroRelevanceLib.preprocessing import prepare_input


@pytest.fixture
def loaded(tmp_path):
    net = build("DeepTaylorCNN", seed=1, in_channels=2, n_outputs=2, channels=(4, 8))
    save_weights(net, tmp_path / "w.safetensors")
    card = {"name": "tiny2", "architecture": spec(net), "weights": "w.safetensors",
            "input": {"channels": ["T1", "FLAIR"], "shape": [16, 16, 16], "spacing": [3, 3, 3],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["control", "AD"]}}
    (tmp_path / "card.json").write_text(json.dumps(card))
    return load_model(tmp_path / "card.json", device="cpu")


@pytest.fixture
def volumes(scene):
    grid = Grid.from_parts((20, 22, 24), (2.0, 2.5, 2.2), (-25, -20, -18))
    rng = np.random.default_rng(0)
    k, j, i = np.mgrid[:20, :22, :24]
    t1 = (100 + 50 * np.sin(i / 3.0) * np.cos(j / 4.0) + rng.normal(0, 5, grid.shape_kji))
    flair = 80 + 30 * np.cos(k / 2.5) + rng.normal(0, 5, grid.shape_kji)
    return [mrml.array_to_volume(scene, t1.astype(np.float32), grid, "T1"),
            mrml.array_to_volume(scene, flair.astype(np.float32), grid, "FLAIR")]


def test_explain_volumes_adds_one_output_per_channel(scene, views, loaded, volumes):
    run = RelevanceLogic(scene, views).run(volumes, loaded, preset="epsilon-plus",
                                                       opacity=0.4, threshold=0.05)
    assert len(run.outputs) == 2
    label = run.prediction.split(" ")[0]
    assert [o.node.GetName() for o in run.outputs] == [f"T1 · LRP epsilon-plus · {label}",
                                                      f"FLAIR · LRP epsilon-plus · {label}"]
    assert run.outputs[1].node.GetNodeReference("NeuroRelevance.source") is volumes[1]
    folders = {mrml.output_folder(scene, o.node) for o in run.outputs}
    assert len(folders) == 1
    source_grid = mrml.volume_grid(volumes[0])
    for out in run.outputs:
        values, grid = mrml.volume_to_array(out.node)
        assert grid.same_as(source_grid) and np.abs(values).max() > 0
    assert run.prediction.split(" ")[0] in {"control", "AD"}
    # the engine's own run on the same model input gives the same model-space relevance
    x = torch.from_numpy(prepare_input([mrml.volume_to_array(v) for v in volumes],
                                       loaded.card).array[None])
    direct = explain(loaded.model, x, preset="epsilon-plus")
    assert torch.allclose(direct.relevance, run.explanation.relevance, atol=1e-6)
    error = float(run.node.GetAttribute("NeuroRelevance.conservationError"))
    assert error == pytest.approx(direct.max_conservation_error, rel=1e-5)
    composite = scene.GetNthNodeByClass(0, "vtkMRMLSliceCompositeNode")
    assert composite.GetForegroundVolumeID() == run.node.GetID()


def test_refilter_uses_the_cache(scene, views, loaded, volumes):
    logic = RelevanceLogic(scene, views)
    run = logic.run(volumes, loaded, preset="alpha1-beta0")
    raw = run.raw_source[0]
    logic.refilter(run, "pass", (0.5, 1.0), opacity=0.8)
    shown, _ = mrml.volume_to_array(run.node)
    peak = np.abs(raw).max()
    keep = np.abs(raw) >= 0.5 * peak
    assert np.allclose(shown[keep], raw[keep], atol=1e-6) and np.all(shown[~keep] == 0)
    logic.refilter(run, None)
    assert np.allclose(mrml.volume_to_array(run.node)[0], raw, atol=1e-6)
    logic.refilter(run, "clamp", (0.0, 0.2))
    assert np.abs(mrml.volume_to_array(run.node)[0]).max() <= 0.2 * peak + 1e-5


def test_bad_runs_add_no_node(scene, loaded, volumes):
    logic = RelevanceLogic(scene)
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="one input volume per model channel"):
        logic.run([volumes[0], None], loaded)
    with pytest.raises(InputError, match="takes 2 channel"):
        logic.run([volumes[0]], loaded)
    with pytest.raises(InputError, match="Opacity"):
        logic.run(volumes, loaded, opacity=1.5)
    loaded.card = None
    with pytest.raises(InputError, match="model card"):
        logic.run(volumes, loaded)
    with pytest.raises(InputError, match="No such model file"):
        logic.run(volumes, "missing.json")
    assert scene.GetNumberOfNodes() == before


def test_target_by_name_rerun_replaces_and_region_table(scene, loaded, volumes, tmp_path):
    import nibabel as nib

    logic = RelevanceLogic(scene)
    labels = np.zeros((8, 8, 8), np.int16)
    labels[:, :, :4], labels[:, :, 4:] = 1, 2  # two halves along i of a label map covering the scan
    affine = np.diag([8.0, 8.0, 8.0, 1.0])
    affine[:3, 3] = (-30, -30, -30)
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "halves.nii.gz")
    (tmp_path / "halves.csv").write_text("id,name\n1,Left half\n2,Right half\n")
    first = logic.run(volumes, loaded, target="AD", atlas=str(tmp_path / "halves.nii.gz"))
    assert first.node.GetName().endswith("· AD")
    assert set(first.table["name"]) == {"Left half", "Right half"}
    # statistics run on the overlay's scan grid: each scan voxel takes the label of the nearest
    # atlas voxel (computed here from the RAS positions), summed over both channels' maps
    grid = mrml.volume_grid(volumes[0])
    k, j, i = np.indices(grid.shape_kji)
    ras = (grid.ijk_to_ras @ np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)]))[:3]
    index = np.round((ras - affine[:3, 3:4]) / 8.0).astype(int)
    inside = np.all((index >= 0) & (index < 8), axis=0)
    label = np.where(inside, np.where(index[2] < 4, 1, 2), 0).reshape(grid.shape_kji)  # halves along k
    heat = first.raw_source[0] + first.raw_source[1]
    table = first.table.set_index("label")
    for value in (1, 2):
        assert table.loc[value, "voxels"] == np.count_nonzero(label == value)
        assert table.loc[value, "sum"] == pytest.approx(float(heat[label == value].sum(dtype=np.float64)),
                                                        rel=1e-5, abs=1e-7)
    assert first.table_node.GetNumberOfRows() == 2
    count = scene.GetNumberOfNodes()
    second = logic.run(volumes, loaded, target="AD", atlas=str(tmp_path / "halves.nii.gz"))
    assert scene.GetNumberOfNodes() == count  # replaced, not added
    assert scene.GetNodeByID(first.node.GetID()) is None and volumes[0].GetScene() is scene
    # the replacement is the live run: in the scene under the same name, with the same (deterministic) numbers
    assert scene.GetNodeByID(second.node.GetID()) is second.node and second.node.GetName() == first.node.GetName()
    assert scene.GetNodeByID(second.table_node.GetID()) is second.table_node
    assert second.table_node.GetNumberOfRows() == 2
    again = second.table.set_index("label")
    for value in (1, 2):
        assert again.loc[value, "voxels"] == table.loc[value, "voxels"]
        assert again.loc[value, "sum"] == pytest.approx(table.loc[value, "sum"], rel=1e-6, abs=1e-9)
    other = logic.run(volumes, loaded, target="control")
    assert other.node.GetName().endswith("· control") and scene.GetNumberOfNodes() > count
    with pytest.raises(InputError, match="Unknown target class"):
        logic.run(volumes, loaded, target="banana")


def test_compute_reports_progress_and_cancel_adds_nothing(scene, loaded, volumes):
    from NeuroRelevanceLib.jobs import Cancelled, compute

    logic = RelevanceLogic(scene)
    job = logic.prepare(volumes, loaded, preset="epsilon-plus")
    seen = []

    def progress(message, fraction):
        seen.append(fraction)
        if fraction >= 0.2:
            job.cancel()

    before = scene.GetNumberOfNodes()
    with pytest.raises(Cancelled):
        compute(job, progress)
    assert seen == sorted(seen) and seen[0] < 0.2 and scene.GetNumberOfNodes() == before
    done = compute(logic.prepare(volumes, loaded), lambda m, f: seen.append(f))
    assert seen[-1] == 1.0 and len(done.raw) == 2


def test_scene_labelmap_as_atlas_after_the_run(scene, views, loaded, volumes):
    logic = RelevanceLogic(scene, views)
    run = logic.run(volumes, loaded)
    grid = mrml.volume_grid(volumes[0])
    labels = np.zeros(grid.shape_kji, np.int16)
    labels[:, :, :12], labels[:, :, 12:] = 1, 2
    node = mrml.array_to_volume(scene, labels, grid, "halves", node_class="vtkMRMLLabelMapVolumeNode")
    node.CreateDefaultDisplayNodes()
    table_node = logic.add_region_table(run, node)
    assert table_node.GetNumberOfRows() == 2
    assert mrml.output_folder(scene, table_node) == mrml.output_folder(scene, run.node)
    # the scan is covered by the label map, so the regions hold all the model-space relevance
    # that falls inside the scan
    assert run.table["voxels"].sum() > 0
    again = logic.add_region_table(run, node)
    assert again is table_node


def test_alpha_setting_becomes_an_alpha_beta_rule(scene, loaded, volumes):
    logic = RelevanceLogic(scene)
    preset_run = logic.run(volumes, loaded, preset="alpha2-beta1")
    custom = logic.run(volumes, loaded, preset="alpha1-beta0", alpha=2.0)
    assert torch.allclose(custom.explanation.relevance, preset_run.explanation.relevance, atol=1e-6)
    assert custom.node is not preset_run.node
    with pytest.raises(InputError, match="at least 1"):
        logic.run(volumes, loaded, preset="alpha1-beta0", alpha=0.5)


@pytest.mark.parametrize("kind, value_range", [(None, (0, 1)), ("pass", (0.0, 1.0)), ("pass", (0.25, 0.8)),
                                               ("clamp", (0.0, 1.0)), ("clamp", (0.1, 0.4))])
def test_fast_filter_equals_the_engine_filter(kind, value_range):
    from NeuroRelevanceLib.explanation.filters import FilterCache, apply_filter

    raw = np.random.default_rng(3).normal(size=(9, 10, 11)).astype(np.float32)
    raw[0, 0, :4] = 0.0
    expected = raw if kind is None else apply_filter(torch.from_numpy(raw)[None], kind, value_range).numpy()[0]
    assert np.allclose(FilterCache(raw).apply(kind, value_range), expected, atol=1e-6)


def test_other_methods_through_the_same_run(scene, loaded, volumes):
    logic = RelevanceLogic(scene)
    run = logic.run(volumes, loaded, method="gradient_x_input", target="AD")
    assert run.node.GetName() == "T1 · gradient_x_input · AD"
    assert run.node.GetAttribute("NeuroRelevance.parameters").count('"method": "gradient_x_input"') == 1
    cam = logic.run(volumes, loaded, method="gradcam", target="AD")
    # model space: captum's LayerGradCam (an independent implementation) on the same prepared input and layer
    captum_attr = pytest.importorskip("captum.attr")
    from NeuroRelevanceLib.explanation.layers import last_conv_block

    x = torch.from_numpy(prepare_input([mrml.volume_to_array(v) for v in volumes], loaded.card).array[None])
    model = loaded.model.eval()
    layer = dict(model.named_modules())[last_conv_block(model, x)]
    target = 1  # "AD" in the card's classes ["control", "AD"]
    ref = captum_attr.LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True).detach()
    ref = captum_attr.LayerAttribution.interpolate(ref, tuple(x.shape[2:]), interpolate_mode="trilinear")[:, 0]
    mine = cam.explanation.relevance.to(ref.dtype)
    assert ref.abs().max() > 0 and mine.shape[1] == 2
    for channel in range(2):   # one Grad-CAM map, shown on each input channel
        assert float((mine[:, channel] - ref).abs().max() / ref.abs().max()) <= 1e-4
    # scan space: the overlay is the model-space map brought onto the scan, finite, ≥ 0 (ReLU), not blank
    shown, grid = mrml.volume_to_array(cam.node)
    assert grid.same_as(mrml.volume_grid(volumes[0])) and np.all(np.isfinite(shown))
    assert shown.min() >= -1e-6 and shown.max() > 0.05 * float(ref.max())
    assert np.allclose(shown, cam.raw_source[0], atol=1e-6)
    with pytest.raises(InputError, match="LRP only"):
        logic.run(volumes, loaded, method="gradient", filter="pass", filter_placement="every-layer")


def test_region_table_failure_fails_the_run(scene, loaded, volumes, tmp_path):
    """A run that asked for a table and cannot make it adds nothing (trial 1, finding 11: it used to "succeed"
    without the table, replacing the earlier run); the map alone is one run without the atlas away."""
    import nibabel as nib

    labels = np.ones((4, 4, 4), np.int16)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = 500.0  # far from the scan: no relevance inside
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "far.nii.gz")
    count = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="not in the atlas' space"):
        RelevanceLogic(scene).run(volumes, loaded, atlas=str(tmp_path / "far.nii.gz"))
    assert scene.GetNumberOfNodes() == count
    run = RelevanceLogic(scene).run(volumes, loaded)
    assert run.table is None and np.abs(mrml.volume_to_array(run.node)[0]).max() > 0
