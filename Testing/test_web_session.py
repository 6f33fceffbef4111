"""The web viewer's session, inputs and model: uploads, server files, demo, model choice and refusals.

Real parts only: a real vtkMRMLScene, NIfTI files written by nibabel on an oblique, anisotropic
grid, the bundled demo network. Oracles: nibabel's reading of the same files.
"""

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib import mrml, panel
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.web.session import WebSession
from web_session_helpers import (  # noqa: F401  (fixtures, registered by import)
    SHAPE_KJI,
    census,
    panel_values,
    root_fixture,
    session_fixture,
    upload_item,
    write_oblique_nifti,
)

slicer = pytest.importorskip("slicer")


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
    assert session.table_rows() == [] and session.chart_rows() == [] and session.summary() == ""
    assert session.refilter(panel_values()) is False
    for download in (session.download_heatmap, session.download_table, session.download_scene):
        with pytest.raises(InputError, match="Run an explanation first"):
            download()


def test_detached_header_with_upper_case_suffix_is_refused_not_relinked(session, root):
    """Reading through a lower-case link elsewhere would move where its relative data path leads."""
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "H.raw").write_bytes(bytes(8))
    (deep / "H.NHDR").write_text("NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\n"
                                 "encoding: raw\ndata file: H.raw\n")
    with pytest.raises(InputError, match="lower-case suffix"):
        session.load_server_file("a/b/H.NHDR")
    assert session.scan is None


def test_app_without_demo_still_loads_the_model_its_selector_shows(tmp_path):
    """--no-demo: no scan, but the model in the selector is loaded (re-picking it sends no event)."""
    from NeuroRelevanceLib.web.app import DEMO_MODEL, RelevanceWebApp

    app = RelevanceWebApp(server="neurorelevance-test-no-demo", roots=[tmp_path], demo=False,
                          autorun=False)
    try:
        assert app.session.scan is None and app.session.model is not None
        assert app.state.model_choice == DEMO_MODEL == app.session.model_choice
        assert app.state.model_info.startswith("ad_cnn") and app.state.error == ""
        app.state.atlas_items = ["none", "/etc/passwd"]   # the page cannot widen the choices
        app.state.atlas = "/etc/passwd"
        with pytest.raises(InputError, match="not offered"):
            app.values()
    finally:
        app.session.close()
