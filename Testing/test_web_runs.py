"""The web viewer's session (no web framework): runs, refilter, downloads, scene bundles, replacing.

Real parts only: a real vtkMRMLScene, NIfTI files written by nibabel on an oblique, anisotropic
grid, the bundled demo network and a real run (``prepare`` → ``jobs.compute`` → ``finish``) on the
demo subject at 4 mm. Oracles: nibabel's reading of the same files, numpy recomputation of the
filters from the raw map (and the engine's ``apply_filter``), pandas' reading of the CSV, and a
fresh scene importing the downloaded bundle.
"""

import io
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from conftest import oblique_grid
from NeuroRelevanceLib import jobs, mrml
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import nibabel_to_kji
from NeuroRelevanceLib.logic import RUN_KEY
from NeuroRelevanceLib.web.files import FileGate
from NeuroRelevanceLib.web.session import TABLE_COLUMNS, WebSession
from web_session_helpers import (  # noqa: F401  (fixtures, registered by import)
    ATLAS,
    SHAPE_KJI,
    census,
    panel_values,
    root_fixture,
    run_nodes,
    session_fixture,
    upload_item,
    write_brain_nifti,
    write_oblique_nifti,
)

slicer = pytest.importorskip("slicer")


# ---- one real run shared by the tests below --------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory, one_torch_thread):
    """The demo subject at 4 mm explained by the bundled AD network, on its own scene."""
    root = tmp_path_factory.mktemp("web-data")
    scene = slicer.vtkMRMLScene()
    web = WebSession(scene, FileGate([root]))
    scan = web.load_demo(spacing=4.0)
    web.select_model("bundled:ad_cnn")
    job = web.prepare(panel_values())
    assert web.runs_started == 1
    run = web.finish(jobs.compute(job))
    yield SimpleNamespace(session=web, scene=scene, scan=scan, run=run, job=job,
                          tmp=tmp_path_factory.mktemp("web-out"))
    web.close()


def session_summary_ok(text: str) -> bool:
    return text.startswith("Prediction: ") and "conservation error" in text


def _node_voxels(node) -> np.ndarray:
    return mrml.volume_to_array(node)[0]


def test_run_adds_a_heatmap_of_the_raw_map_on_the_scan_grid(demo):
    run, scene = demo.run, demo.scene
    assert run.node.GetScene() is scene and run.node.GetAttribute(RUN_KEY) == demo.job.key
    assert "LRP alpha1-beta0" in run.node.GetName() and "AD" in run.node.GetName()
    _, scan_grid = mrml.volume_to_array(demo.scan)
    heat, heat_grid = mrml.volume_to_array(run.node)
    assert heat_grid.same_as(scan_grid)
    assert np.array_equal(heat, np.asarray(demo.job.raw[0], dtype=heat.dtype))  # no filter chosen
    assert np.abs(heat).max() > 0
    assert {n.GetClassName() for n in run_nodes(scene)} == {"vtkMRMLScalarVolumeNode",
                                                            "vtkMRMLTableNode"}
    assert session_summary_ok(demo.session.summary())


def test_table_rows_follow_the_region_table(demo):
    table = demo.run.table
    rows = demo.session.table_rows()
    assert len(rows) == min(200, len(table)) > 0
    assert all(list(row) == ["label", "ranked", *TABLE_COLUMNS] for row in rows)
    assert [r["name"] for r in rows] == list(table["name"][:len(rows)])
    assert all(isinstance(r["name"], str) and r["name"] for r in rows)
    from NeuroRelevanceLib.regions.bundled import load_bundled_atlas

    atlas_names = set(load_bundled_atlas(ATLAS).names)
    assert {r["name"] for r in rows} <= atlas_names  # real region names, not label numbers
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    for row, record in zip(rows, table.to_dict("records")[:len(rows)], strict=True):
        assert row["voxels"] == int(record["voxels"])
        for column in ("density", "fraction_pos", "sum_pos", "sum_neg"):
            assert row[column] == pytest.approx(record[column], rel=1e-3, abs=1e-12)
    assert len(demo.session.table_rows(limit=5)) == 5


def test_chart_bars_are_the_top_ranked_densities_to_scale(demo):
    table = demo.run.table
    bars = demo.session.chart_rows(k=6)
    top = table[table["ranked"]].nlargest(6, "density")
    assert [b["name"] for b in bars] == list(top["name"])
    assert [b["value"] for b in bars] == pytest.approx(list(top["density"]))
    peak = max(abs(b["value"]) for b in bars)
    assert [b["width"] for b in bars] == pytest.approx([100 * abs(b["value"]) / peak for b in bars], abs=0.01)
    assert demo.session.chart_caption().startswith(f"Atlas {ATLAS}")


def _pass_oracle(raw: np.ndarray, low: float, high: float):
    """Pass filter from its definition: keep voxels whose |r| / max|r| lies in [low, high]."""
    r = raw.astype(np.float64)
    normalised = np.abs(r) / np.abs(r).max()
    keep = (normalised >= low) & (normalised <= high)
    borderline = (np.abs(normalised - low) < 1e-6) | (np.abs(normalised - high) < 1e-6)
    return np.where(keep, r, 0.0), borderline


def test_refilter_changes_voxels_from_the_cache_without_a_run(demo):
    import torch

    from NeuroRelevanceLib.explanation.filters import apply_filter

    web, run = demo.session, demo.run
    raw = np.asarray(demo.job.raw[0])
    started, node = web.runs_started, run.node
    try:
        assert web.refilter(panel_values(filter_type="pass", filter_low=0.2, filter_high=0.9,
                                         threshold=0.1, opacity=0.3)) is True
        shown = _node_voxels(node)
        expected, borderline = _pass_oracle(raw, 0.2, 0.9)
        assert borderline.sum() <= 4  # the exclusion below leaves (almost) every voxel checked
        assert np.allclose(shown[~borderline], expected[~borderline], rtol=0, atol=1e-12)
        assert not np.array_equal(shown, raw) and np.count_nonzero(shown) < np.count_nonzero(raw)
        engine = apply_filter(torch.from_numpy(raw[None].astype(np.float64)), "pass", (0.2, 0.9))
        assert np.allclose(shown[~borderline], engine[0].numpy()[~borderline], atol=1e-9)
        assert np.array_equal(shown, run.filter_caches()[0].apply("pass", (0.2, 0.9)))
        display = node.GetDisplayNode()
        assert float(display.GetAttribute("NeuroRelevance.threshold")) == pytest.approx(0.1)

        assert web.refilter(panel_values(filter_type="clamp", filter_low=0.1, filter_high=0.5))
        clamped = _node_voxels(node)
        peak = np.abs(raw).max()
        oracle = np.sign(raw) * np.clip(np.abs(raw), 0.1 * peak, 0.5 * peak)
        assert np.allclose(clamped, oracle, rtol=1e-6, atol=1e-6 * peak)
        assert np.abs(clamped).max() <= 0.5 * peak * (1 + 1e-6)

        assert web.refilter(panel_values())  # back to no filter: the raw map again
        assert np.array_equal(_node_voxels(node), raw.astype(np.float32))
        assert web.runs_started == started and run.node is node and len(run_nodes(demo.scene)) == 2
    finally:
        web.refilter(panel_values())


def test_refilter_refuses_a_bad_range_and_keeps_the_map(demo):
    before = _node_voxels(demo.run.node).copy()
    with pytest.raises((InputError, ValueError)):
        demo.session.refilter(panel_values(filter_type="pass", filter_low=0.8, filter_high=0.2))
    assert np.array_equal(_node_voxels(demo.run.node), before)


def test_download_heatmap_is_the_node_on_the_scan_grid(demo):
    download = demo.session.download_heatmap()
    assert download.name.endswith("-relevance.nii.gz") and download.mime == "application/gzip"
    path = demo.tmp / download.name
    path.write_bytes(download.content)
    image = nib.load(str(path))
    _, scan_grid = mrml.volume_to_array(demo.scan)
    assert np.allclose(image.affine, scan_grid.ijk_to_ras, atol=1e-4)
    data = nibabel_to_kji(np.asanyarray(image.dataobj))
    assert np.array_equal(data, _node_voxels(demo.run.node))


def test_download_table_is_the_run_table(demo):
    import pandas as pd

    download = demo.session.download_table()
    assert download.name.endswith("-regions.csv") and download.mime == "text/csv"
    table = pd.read_csv(io.BytesIO(download.content), comment="#")  # '#' lines: what produced it
    pd.testing.assert_frame_equal(table, demo.run.table.reset_index(drop=True),
                                  check_dtype=False, check_exact=False, rtol=1e-12)


def test_download_scene_is_a_bundle_that_a_fresh_scene_imports(demo):
    scene = demo.scene
    url = scene.GetURL()
    storage = demo.scan.GetStorageNode()
    storage_name = storage.GetFileName() if storage is not None else None
    download = demo.session.download_scene()
    assert download.name.endswith("-scene.mrb") and download.mime == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as bundle:
        names = bundle.namelist()
        scenes = [n for n in names if n.endswith(".mrml")]
        assert len(scenes) == 1
        assert not any(n.startswith("/") or ".." in Path(n).parts for n in names)
        target = demo.tmp / "unzipped"
        bundle.extractall(target)
    fresh = slicer.vtkMRMLScene()
    mrml.register_node_classes(fresh)  # as Slicer's Colors module does (the heatmap's colour legend)
    fresh.SetURL(str(target / scenes[0]))
    assert fresh.Import()
    heat = fresh.GetFirstNodeByName(demo.run.node.GetName())
    assert heat is not None and heat.IsA("vtkMRMLScalarVolumeNode")
    values, grid = mrml.volume_to_array(heat)
    assert np.array_equal(values, _node_voxels(demo.run.node))
    assert grid.same_as(mrml.volume_to_array(demo.run.node)[1])
    assert fresh.GetFirstNodeByName(demo.scan.GetName()) is not None
    assert fresh.GetNumberOfNodesByClass("vtkMRMLTableNode") == 1
    # an export: the live scene still points where it did
    assert scene.GetURL() == url
    if storage is not None:
        assert storage.GetFileName() == storage_name
    assert not list(Path(demo.session._tmp.name).glob("*.partial"))


# ---- the scene bundle on its own ------------------------------------------------------------
def test_save_scene_bundle_round_trip_leaves_the_live_scene_alone(scene, tmp_path):
    grid = oblique_grid(shape_kji=SHAPE_KJI)
    voxels = np.random.default_rng(5).normal(size=SHAPE_KJI).astype(np.float32)
    node = mrml.array_to_volume(scene, voxels, grid, "oblique scan")
    mrml.write_volume(node, tmp_path / "own.nrrd")
    if node.GetStorageNode() is None:
        node.AddDefaultStorageNode()
    own = node.GetStorageNode()
    own.SetFileName(str(tmp_path / "own.nrrd"))
    scene.SetURL(str(tmp_path / "live.mrml"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.mrb").write_bytes(b"an older bundle")
    assert mrml.save_scene_bundle(scene, out / "b.mrb") == (out / "b.mrb").resolve()
    assert sorted(p.name for p in out.iterdir()) == ["b.mrb"]  # no .mrml, data or .partial beside
    assert scene.GetURL() == str(tmp_path / "live.mrml")
    assert own.GetFileName() == str(tmp_path / "own.nrrd")
    with zipfile.ZipFile(out / "b.mrb") as bundle:
        scenes = [n for n in bundle.namelist() if n.endswith(".mrml")]
        assert scenes == ["b/b.mrml"]
        bundle.extractall(tmp_path / "x")
    fresh = slicer.vtkMRMLScene()
    fresh.SetURL(str(tmp_path / "x" / scenes[0]))
    assert fresh.Import()
    values, back = mrml.volume_to_array(fresh.GetFirstNodeByName("oblique scan"))
    assert np.array_equal(values, voxels) and back.same_as(grid)


def test_save_scene_bundle_refuses_other_suffixes(scene, tmp_path):
    with pytest.raises(InputError, match=r"\.mrb"):
        mrml.save_scene_bundle(scene, tmp_path / "scene.zip")
    assert list(tmp_path.iterdir()) == []


# ---- replacing runs and inputs --------------------------------------------------------------
def test_new_runs_and_new_inputs_remove_the_old_run(scene, root, tmp_path, one_torch_thread):
    web = WebSession(scene, FileGate([root]))
    try:
        write_brain_nifti(tmp_path / "first.nii.gz", seed=1)   # a run refuses a scan outside the model grid
        write_brain_nifti(tmp_path / "second.nii.gz", seed=2)
        first = web.load_upload(upload_item(tmp_path / "first.nii.gz"))
        only_upload = census(scene)
        web.select_model("bundled:ad_cnn")
        settings = panel_values(atlas="none", target="predicted")
        web.finish(jobs.compute(web.prepare(settings)))
        keys = {n.GetAttribute(RUN_KEY) for n in run_nodes(scene)}
        assert len(run_nodes(scene)) == 1 and web.run.table is None  # no atlas: no table
        assert web.table_rows() == [] and web.chart_rows() == []
        with pytest.raises(InputError, match="no region table"):
            web.download_table()

        web.finish(jobs.compute(web.prepare(dict(settings, preset="epsilon-plus"))))
        assert len(run_nodes(scene)) == 1 and {n.GetAttribute(RUN_KEY) for n in run_nodes(scene)} != keys
        assert web.runs_started == 2

        stale = jobs.compute(web.prepare(dict(settings, preset="deep-taylor")))
        second = web.load_upload(upload_item(tmp_path / "second.nii.gz"))
        assert run_nodes(scene) == [] and web.run is None
        with pytest.raises(InputError, match="removed from the scene during the run"):
            web.finish(stale)  # a run on the replaced input must not land on the new one
        assert run_nodes(scene) == [] and web.run is None
        assert first.GetScene() is None and second.GetScene() is scene
        left = census(scene)
        left.pop("vtkMRMLSubjectHierarchyNode", None)
        assert left == only_upload  # nothing of the old input or its run is left behind

        web.load_demo(spacing=4.0)
        assert second.GetScene() is None and web.scan.GetScene() is scene
        assert len(web.extra_nodes) == 1 and web.extra_nodes[0].GetScene() is scene
        with pytest.raises(InputError, match="Run an explanation first"):
            web.download_heatmap()
    finally:
        web.close()


def test_a_failed_run_keeps_the_previous_run_of_other_settings(demo):
    """A run whose map is not finite is refused and the run on screen stays, node for node."""
    from scene_census import census as full_census

    web, scene = demo.session, demo.scene
    shown = web.run
    job = jobs.compute(web.prepare(panel_values(preset="epsilon-plus")))
    assert job.key != shown.job.key  # other settings: a success would replace the shown run
    job.raw[0] = job.raw[0].copy()
    job.raw[0][1, 2, 3] = np.nan
    before = full_census(scene)
    with pytest.raises(InputError, match="NaN"):
        web.finish(job)
    assert full_census(scene) == before and web.run is shown and shown.node.GetScene() is scene
