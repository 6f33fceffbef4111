"""Batch explanation findings of new-user trial 2: resume and provenance, options that do not apply, ids,
and messages that name the file and the cause.

- Resume counted a subject complete although its provenance sidecar was deleted or corrupted (F4).
- ``--method gradient --preset epsilon-plus`` ran, ignored the preset and recorded it (F6).
- Two scans with one stem (``a.nii.gz``, ``a.nrrd``) were refused with advice the command line cannot follow (F8).
- A scan 1 m away from the model grid was called "empty (all zeros)"; a truncated .nii.gz gave a raw
  "unexpected EOFError" without the file's name, with a traceback in summary.json (F10).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from NeuroRelevanceLib.batch import explain_cohort
from NeuroRelevanceLib.cli import main
from NeuroRelevanceLib.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUICK = dict(atlases=(), png=False, device="cpu")


# ---- F4: every output of a subject counts for resume -------------------------------------------
@pytest.mark.parametrize("damage", ["deleted", "corrupted", "truncated-map"])
def test_a_subject_whose_sidecar_or_map_is_damaged_is_recomputed(batch_inputs, tmp_path, damage):
    card, table = batch_inputs
    cohort = pd.read_csv(table).head(2).drop(columns=["group"])
    out = tmp_path / "out"
    explain_cohort(cohort, card, out, **QUICK)
    folder = out / "subjects" / "sub-0001"
    sidecar, relevance = folder / "sub-0001_relevance.json", folder / "sub-0001_relevance.nii.gz"
    good = json.loads(sidecar.read_text())
    if damage == "deleted":
        sidecar.unlink()
    elif damage == "corrupted":
        sidecar.write_text("garbage\n" + " " * (len(sidecar.read_bytes()) - 8))  # same size, not JSON
    else:
        data = relevance.read_bytes()
        relevance.write_bytes(data[: len(data) // 2] + b"\x00" * (len(data) - len(data) // 2))  # same size
    again = explain_cohort(cohort, card, out, **QUICK)
    assert dict(again.subjects.set_index("id")["status"]) == {"sub-0000": "skipped", "sub-0001": "done"}
    assert json.loads(sidecar.read_text())["record"]["target"] == good["record"]["target"]
    import nibabel as nib

    assert np.isfinite(nib.load(str(relevance)).get_fdata()).all()


# ---- F6: options that belong to another method are refused ------------------------------------
@pytest.mark.parametrize("option, value", [("preset", "epsilon-plus"), ("alpha", 2.0), ("epsilon", 0.1),
                                           ("gamma", 0.25), ("filter_placement", "every-layer")])
def test_lrp_options_with_another_method_are_refused_before_writing(batch_inputs, tmp_path, option, value):
    card, table = batch_inputs
    with pytest.raises(InputError) as info:
        explain_cohort(str(table), card, tmp_path / "out", method="gradient", target="AD",
                       **{**QUICK, option: value})
    message = str(info.value)
    assert option.split("_")[0] in message and "gradient" in message, message
    assert not (tmp_path / "out").exists()


def test_the_command_lines_refuse_a_preset_for_methods_without_lrp(batch_inputs, tmp_path, capsys):
    card, table = batch_inputs
    scan = pd.read_csv(table)["path"][0]
    for argv in (["explain", scan, "--model", card, "--output", tmp_path / "x16", "--method", "gradient",
                  "--preset", "epsilon-plus"],
                 ["explain", scan, "--model", card, "--output", tmp_path / "x17", "--method", "gradcam",
                  "--alpha", "2"],
                 ["compare", scan, "--model", card, "--methods", "gradient", "gradient_x_input", "--preset",
                  "alpha1-beta0", "--csv", tmp_path / "c.csv"]):
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and ("--preset" in err or "--alpha" in err), (argv, err)
        assert "lrp" in err.lower(), err
    assert not list(tmp_path.iterdir())


def test_lrp_options_with_lrp_still_run(batch_inputs, tmp_path):
    card, table = batch_inputs
    cohort = pd.read_csv(table).head(1)
    result = explain_cohort(cohort, card, tmp_path / "out", preset="alpha1-beta0", alpha=2.0, target="AD", **QUICK)
    assert list(result.subjects["status"]) == ["done"]


# ---- F8: ids of same-stem scans -----------------------------------------------------------------
def test_scans_with_one_stem_get_distinct_ids_from_their_format(batch_inputs, tmp_path):
    from NeuroRelevanceLib.batch.subjects import read_subjects
    card, table = batch_inputs
    import SimpleITK as sitk

    (tmp_path / "scans").mkdir()
    Path(tmp_path / "scans" / "oblique.nii.gz").write_bytes(Path(pd.read_csv(table)["path"][0]).read_bytes())
    image = sitk.ReadImage(str(tmp_path / "scans" / "oblique.nii.gz"))
    sitk.WriteImage(image, str(tmp_path / "scans" / "oblique.nrrd"))
    subjects = read_subjects([tmp_path / "scans" / "oblique.nii.gz", tmp_path / "scans" / "oblique.nrrd"], ("T1",))
    ids = [s.id for s in subjects]
    assert len(set(ids)) == 2 and all("oblique" in i for i in ids), ids
    assert any("nrrd" in i for i in ids), ids


def test_a_duplicate_id_message_says_how_to_fix_it_from_the_command_line(tmp_path):
    from NeuroRelevanceLib.batch.subjects import Subject, read_subjects

    with pytest.raises(InputError) as info:
        read_subjects([Subject("a", [tmp_path / "x.nii.gz"]), Subject("a", [tmp_path / "y.nii.gz"])], ("T1",))
    message = str(info.value)
    assert "id column" in message and "rename" in message, message


# ---- F10: messages name the file and the cause --------------------------------------------------
def test_a_scan_outside_the_model_grid_and_a_truncated_file_are_named_as_such(batch_inputs, tmp_path):
    card, table = batch_inputs
    from NeuroRelevanceLib.geometry import Grid
    from NeuroRelevanceLib.nifti import read_nifti, write_nifti

    source = pd.read_csv(table)["path"][0]
    array, grid = read_nifti(source)
    far = grid.ijk_to_ras.copy()
    far[:3, 3] += 1000.0
    write_nifti(tmp_path / "far.nii.gz", array, Grid(grid.shape_kji, far))
    data = Path(source).read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    subjects = pd.DataFrame({"id": ["far", "cut"], "path": [str(tmp_path / "far.nii.gz"),
                                                            str(tmp_path / "cut.nii.gz")]})
    result = explain_cohort(subjects, card, tmp_path / "out", target="AD", **QUICK)
    reasons = result.subjects.set_index("id")["reason"]
    assert "does not overlap the model's input grid" in reasons["far"], reasons["far"]
    assert "empty" not in reasons["far"], reasons["far"]
    assert "cut.nii.gz" in reasons["cut"] and "damaged or incomplete" in reasons["cut"], reasons["cut"]
    assert "unexpected" not in reasons["cut"] and "EOFError" not in reasons["cut"], reasons["cut"]
    assert all("traceback" not in failure for failure in result.summary["failed"])


def test_an_empty_scan_inside_the_grid_is_still_called_empty(batch_inputs, tmp_path):
    card, table = batch_inputs
    from NeuroRelevanceLib.nifti import read_nifti, write_nifti

    array, grid = read_nifti(pd.read_csv(table)["path"][0])
    write_nifti(tmp_path / "zeros.nii.gz", np.zeros_like(array), grid)
    result = explain_cohort([tmp_path / "zeros.nii.gz"], card, tmp_path / "out", target="AD", **QUICK)
    assert "empty" in result.subjects["reason"][0] and "overlap" not in result.subjects["reason"][0]
