"""The web viewer's session (no web framework): inputs, model, runs, refilter, downloads.

Real parts only: a real vtkMRMLScene, NIfTI files written by nibabel on an oblique, anisotropic
grid, the bundled demo network and a real run (``prepare`` → ``jobs.compute`` → ``finish``) on the
demo subject at 4 mm. Oracles: nibabel's reading of the same files, numpy recomputation of the
filters from the raw map (and the engine's ``apply_filter``), pandas' reading of the CSV, and a
fresh scene importing the downloaded bundle.
"""
from __future__ import annotations

import collections
import io
import json
import os
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from conftest import oblique_grid
from NeuroRelevanceLib import jobs, mrml, panel
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import nibabel_to_kji
from NeuroRelevanceLib.logic import RUN_KEY
from NeuroRelevanceLib.web.files import FileGate
from NeuroRelevanceLib.web.session import TABLE_COLUMNS, WebSession

slicer = pytest.importorskip("slicer")

ATLAS = "DesikanKilliany"
SHAPE_KJI = (9, 10, 12)


def panel_values(**changes) -> dict:
    """The values the page sends (the same keys as ``RelevanceWebApp.values``)."""
    values = dict(method="lrp", preset="alpha1-beta0", target="AD", filter_type="none",
                  filter_low=0.0, filter_high=1.0, filter_placement="input", opacity=0.6,
                  threshold=0.05, positive_only=False, atlas=ATLAS, epsilon=1e-6, gamma=0.25,
                  alpha=1.0, min_overlap=0.2)
    values.update(changes)
    return values


def write_oblique_nifti(path: Path, dtype=np.float32, seed: int = 0):
    """An oblique, anisotropic NIfTI written by nibabel; returns (affine, voxels in KJI order)."""
    grid = oblique_grid(shape_kji=SHAPE_KJI)
    rng = np.random.default_rng(seed)
    data = (rng.normal(100, 30, size=grid.shape_ijk)).astype(dtype)
    image = nib.Nifti1Image(data, grid.ijk_to_ras)
    nib.save(image, str(path))
    reread = nib.load(str(path))
    return reread.affine, nibabel_to_kji(np.asanyarray(reread.dataobj))


def upload_item(path: Path, name: str | None = None) -> dict:
    content = path.read_bytes()
    return {"name": name or path.name, "content": content, "size": len(content)}


def run_nodes(scene) -> list:
    found = []
    for i in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(i)
        if node.GetAttribute(RUN_KEY):
            found.append(node)
    return found


def census(scene) -> collections.Counter:
    return collections.Counter(scene.GetNthNode(i).GetClassName()
                               for i in range(scene.GetNumberOfNodes()))


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def session(scene, root):
    web = WebSession(scene, FileGate([root], max_upload=64 * 1024))
    yield web
    web.close()


# ---- inputs -----------------------------------------------------------------------------------
def test_upload_of_an_oblique_anisotropic_nifti_keeps_geometry_and_voxels(session, scene, tmp_path):
    affine, voxels = write_oblique_nifti(tmp_path / "scan.nii.gz")
    assert np.ptp(np.linalg.norm(affine[:3, :3], axis=0)) > 1.0           # anisotropic
    assert np.abs(affine[:3, :3] - np.diag(np.diag(affine[:3, :3]))).max() > 0.1  # oblique
    node = session.load_upload(upload_item(tmp_path / "scan.nii.gz", "../../scan.nii.gz"))
    assert session.scan is node and node.GetScene() is scene and node.GetName() == "scan"
    values, grid = mrml.volume_to_array(node)
    assert np.allclose(grid.ijk_to_ras, affine, atol=1e-4)
    assert values.shape == SHAPE_KJI and np.array_equal(values, voxels)


def test_upload_keeps_integer_voxels(session, tmp_path):
    _, voxels = write_oblique_nifti(tmp_path / "int.nii", dtype=np.int16)
    values, _ = mrml.volume_to_array(session.load_upload(upload_item(tmp_path / "int.nii")))
    assert np.array_equal(values, voxels)


@pytest.mark.parametrize("name", ["SCAN.NII.GZ", "SCAN.NRRD"])
def test_upper_case_suffixes_are_read(session, tmp_path, name):
    affine, voxels = write_oblique_nifti(tmp_path / "scan.nii.gz")
    source = tmp_path / "scan.nii.gz"
    if name.endswith("NRRD"):
        source = mrml.write_volume(session.load_upload(upload_item(source)), tmp_path / "scan.nrrd")
    values, grid = mrml.volume_to_array(session.load_upload(upload_item(source, name)))
    assert np.array_equal(values, voxels) and np.allclose(grid.ijk_to_ras, affine, atol=1e-4)


@pytest.mark.parametrize("name", ["scan.MHA", "scan.Nii.gz"])
def test_mixed_case_suffixes_are_read(session, tmp_path, name):
    affine, voxels = write_oblique_nifti(tmp_path / "scan.nii.gz")
    source = tmp_path / "scan.nii.gz"
    if name.lower().endswith(".mha"):
        source = mrml.write_volume(session.load_upload(upload_item(source)), tmp_path / "scan.mha")
    values, grid = mrml.volume_to_array(session.load_upload(upload_item(source, name)))
    assert np.array_equal(values, voxels) and np.allclose(grid.ijk_to_ras, affine, atol=1e-4)


def test_server_file_is_read_from_the_root(session, root):
    affine, voxels = write_oblique_nifti(root / "subject.nii.gz", seed=3)
    values, grid = mrml.volume_to_array(session.load_server_file("subject.nii.gz"))
    assert np.array_equal(values, voxels) and np.allclose(grid.ijk_to_ras, affine, atol=1e-4)


def test_server_file_outside_the_roots_is_refused_and_changes_nothing(session, scene, tmp_path):
    write_oblique_nifti(tmp_path / "outside.nii.gz")
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="--data"):
        session.load_server_file(str(tmp_path / "outside.nii.gz"))
    assert scene.GetNumberOfNodes() == before and session.scan is None


def _bad_uploads(tmp_path: Path) -> list:
    flat = tmp_path / "flat.nii"
    nib.save(nib.Nifti1Image(np.ones((20, 20), np.float32), np.eye(4)), str(flat))
    thin = tmp_path / "thin.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((20, 20, 3), np.float32), np.eye(4)), str(thin))
    sheared = tmp_path / "sheared.nii.gz"
    shear = np.array([[1.0, 0.4, 0, 0], [0, 1.0, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(np.ones((12, 12, 12), np.float32), shear), str(sheared))
    return [({"name": "scan.nii.gz", "content": b""}, "is empty"),
            ({"name": "big.nii.gz", "content": b"\0" * (64 * 1024 + 1)}, "limited"),
            ({"name": "scan.png", "content": b"\x89PNG"}, "not a volume file"),
            ({"name": "scan.nhdr", "content": b"NRRD0004\ntype: float\n"}, "header"),
            ({"name": "junk.nii.gz", "content": b"garbage bytes " * 40}, "Could not read"),
            ({"name": "junk.nrrd", "content": b"NRRD0004\nnot a field\n"}, "Could not read"),
            ({"name": "scan.nii"}, "choose the file again"),
            (upload_item(sheared), "not orthogonal"),
            (upload_item(flat), "3D scan is needed"),
            (upload_item(thin), "3D scan is needed")]


def test_bad_uploads_leave_the_scene_and_the_input_unchanged(session, scene, tmp_path):
    write_oblique_nifti(tmp_path / "good.nii.gz")
    good = session.load_upload(upload_item(tmp_path / "good.nii.gz"))
    before, nodes = census(scene), scene.GetNumberOfNodes()
    for item, message in _bad_uploads(tmp_path):
        with pytest.raises(InputError, match=message):
            session.load_upload(item)
        assert scene.GetNumberOfNodes() == nodes and census(scene) == before, item["name"]
        assert session.scan is good and good.GetScene() is scene
    values, _ = mrml.volume_to_array(session.scan)  # still readable, still the same voxels
    assert values.shape == SHAPE_KJI


def test_unreadable_upload_message_names_the_users_file(session):
    with pytest.raises(InputError) as info:
        session.load_upload({"name": "mine.nii.gz", "content": b"garbage bytes " * 40})
    assert "mine.nii.gz" in str(info.value) and session._tmp.name not in str(info.value)


def test_four_d_upload_is_refused_not_cut_to_its_first_frame(session, scene, tmp_path):
    frames = np.stack([np.full((12, 12, 12), k + 1.0, np.float32) for k in range(3)], axis=-1)
    nib.save(nib.Nifti1Image(frames, np.diag([2.0, 2.0, 2.0, 1.0])), str(tmp_path / "f.nii.gz"))
    before = scene.GetNumberOfNodes()
    try:
        session.load_upload(upload_item(tmp_path / "f.nii.gz"))
        error = None
    except InputError as exc:
        error = str(exc)
    assert error is not None and "f.nii.gz" in error
    assert scene.GetNumberOfNodes() == before and session.scan is None


def test_demo_arguments_are_checked_before_the_scene_changes(session, scene):
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="AD or CN"):
        session.load_demo(diagnosis="MCI")
    with pytest.raises(InputError, match="40 to 95"):
        session.load_demo(age=30)
    assert scene.GetNumberOfNodes() == before and session.scan is None


# ---- model ------------------------------------------------------------------------------------
def test_bundled_models_are_the_one_channel_cards():
    from NeuroRelevanceLib.pretrained import available_models, model_card_path

    one_channel = {name for name in available_models()
                   if len(json.loads(Path(model_card_path(name)).read_text())["input"]["channels"]) == 1}
    offered = {item["value"] for item in WebSession.bundled_models()}
    assert offered == {f"bundled:{name}" for name in one_channel}
    assert "bundled:ad_cnn" in offered and "bundled:lesion_unet" not in offered


def test_select_model_and_targets(session):
    assert session.targets() == [panel.PREDICTED]
    loaded = session.select_model("bundled:ad_cnn")
    assert session.model is loaded and loaded.card.name == "ad_cnn"
    assert session.targets() == [panel.PREDICTED, "control", "AD"]


def test_multi_channel_model_is_refused_and_the_model_kept(session):
    session.select_model("bundled:ad_cnn")
    with pytest.raises(InputError, match="4 channels"):
        session.select_model("bundled:lesion_unet")
    assert session.model.card.name == "ad_cnn" and session.model_choice == "bundled:ad_cnn"


def test_card_in_a_root_with_weights_beside_it_loads(session, root):
    import shutil

    from NeuroRelevanceLib.pretrained import model_card_path

    card = Path(model_card_path("ad_cnn"))
    shutil.copy(card, root / card.name)
    shutil.copy(card.with_suffix(".safetensors"), root / card.with_suffix(".safetensors").name)
    assert session.select_model(card.name).card.path == root / card.name


def test_card_naming_weights_outside_the_roots_is_refused(session, root):
    from NeuroRelevanceLib.pretrained import model_card_path

    card = json.loads(Path(model_card_path("ad_cnn")).read_text())
    card["weights"] = str(Path(model_card_path("ad_cnn")).with_suffix(".safetensors"))
    (root / "card.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="outside the allowed folders"):
        session.select_model("card.json")
    assert session.model is None


class _Tripwire:
    """Unpickling this creates ``marker``: proof that a file was (or was not) unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_pickled_modules_are_refused_and_never_unpickled(session, root, tmp_path):
    import torch

    torch.save(torch.nn.Sequential(torch.nn.Conv3d(1, 1, 3)), root / "full.pt")
    with pytest.raises(InputError, match="pickled Python object"):
        session.select_model("full.pt")
    marker = tmp_path / "unpickled"
    torch.save({"model": _Tripwire(marker)}, root / "trap.pth")
    with pytest.raises(InputError, match="pickled Python object"):
        session.select_model("trap.pth")
    assert not marker.exists() and session.model is None
    torch.load(root / "trap.pth", weights_only=False)  # the trap is real: unpickling springs it
    assert marker.is_dir()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_without_a_card_is_refused(session, root):
    import torch

    torch.jit.save(torch.jit.script(torch.nn.Conv3d(1, 2, 3)), str(root / "net.ts"))
    with pytest.raises(InputError, match="no model card"):
        session.select_model("net.ts")
    assert session.model is None


# ---- runs: refusals -------------------------------------------------------------------------
def test_prepare_needs_a_scan_and_a_model(session, tmp_path):
    with pytest.raises(InputError, match="Load a scan first"):
        session.prepare(panel_values())
    write_oblique_nifti(tmp_path / "s.nii.gz")
    session.load_upload(upload_item(tmp_path / "s.nii.gz"))
    with pytest.raises(InputError, match="Choose a model first"):
        session.prepare(panel_values())
    assert session.runs_started == 0


def test_nothing_to_show_or_download_before_a_run(session):
    assert session.table_rows() == [] and session.chart_png() == b"" and session.summary() == ""
    assert session.refilter(panel_values()) is False
    for download in (session.download_heatmap, session.download_table, session.download_scene):
        with pytest.raises(InputError, match="Run an explanation first"):
            download()


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
    assert all(list(row) == TABLE_COLUMNS for row in rows)
    assert [r["name"] for r in rows] == list(table["name"][:len(rows)])
    assert all(isinstance(r["name"], str) and r["name"] for r in rows)
    from NeuroRelevanceLib.regions.bundled import load_bundled_atlas

    atlas_names = set(load_bundled_atlas(ATLAS).names)
    assert {r["name"] for r in rows} <= atlas_names  # real region names, not label numbers
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    for row, record in zip(rows, table.to_dict("records")):
        assert row["voxels"] == int(record["voxels"])
        for column in ("density", "fraction_pos", "sum_pos", "sum_neg"):
            assert row[column] == pytest.approx(record[column], rel=1e-3, abs=1e-12)
    assert len(demo.session.table_rows(limit=5)) == 5


def test_chart_is_a_png(demo):
    import matplotlib.image
    import matplotlib.pyplot as plt

    figures = len(plt.get_fignums())
    png = demo.session.chart_png(k=6)
    assert demo.session.chart_png(k=6)[:8] == png[:8]
    assert len(plt.get_fignums()) == figures  # a long-running server must not pile up figures
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 50 and np.ptp(pixels) > 0


def _pass_oracle(raw: np.ndarray, low: float, high: float):
    """Pass filter from its definition: keep voxels whose |r| / max|r| lies in [low, high]."""
    r = raw.astype(np.float64)
    normalised = np.abs(r) / np.abs(r).max()
    keep = (normalised >= low) & (normalised <= high)
    borderline = (np.abs(normalised - low) < 1e-6) | (np.abs(normalised - high) < 1e-6)
    return np.where(keep, r, 0.0), borderline


def test_refilter_changes_voxels_from_the_cache_without_a_run(demo):
    import torch

    from NeuroRelevanceLib.engine.filters import apply_filter

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
    table = pd.read_csv(io.BytesIO(download.content))
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
        write_oblique_nifti(tmp_path / "first.nii.gz", seed=1)
        write_oblique_nifti(tmp_path / "second.nii.gz", seed=2)
        first = web.load_upload(upload_item(tmp_path / "first.nii.gz"))
        only_upload = census(scene)
        web.select_model("bundled:ad_cnn")
        settings = panel_values(atlas="none", target="predicted")
        web.finish(jobs.compute(web.prepare(settings)))
        keys = {n.GetAttribute(RUN_KEY) for n in run_nodes(scene)}
        assert len(run_nodes(scene)) == 1 and web.run.table is None  # no atlas: no table
        assert web.table_rows() == [] and web.chart_png() == b""
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
