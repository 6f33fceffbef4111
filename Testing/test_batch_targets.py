"""Group results use one target (trial 2, finding 1: without --target each subject was explained for its own
predicted class, then averaged per group and compared by gain, while the group files said "target AD").

A classification cohort with groups or a reference group and no target is refused before anything is
written; with a target every subject's sidecar, marker and subjects.csv row name that target; and a run
whose subjects were explained for different classes makes no cohort map that mixes them.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from batch_helpers import ATLAS, MIN_OVERLAP
from NeuroRelevanceLib.batch import explain_cohort
from NeuroRelevanceLib.cli import main
from NeuroRelevanceLib.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sidecar(path) -> dict:
    return json.loads(Path(str(path).replace(".nii.gz", ".json")).read_text())


@pytest.mark.parametrize("how", ["groups", "reference"])
def test_groups_without_a_target_are_refused_before_anything_is_written(batch_inputs, tmp_path, how):
    card, table = batch_inputs
    cohort = pd.read_csv(table).head(4)
    options = dict(atlases=(ATLAS,), min_overlap=MIN_OVERLAP, png=False, device="cpu")
    if how == "reference":
        options["reference_group"] = "control"
    out = tmp_path / "out"
    with pytest.raises(InputError, match="target") as info:
        explain_cohort(cohort, card, out, **options)
    assert "group" in str(info.value) and "AD" in str(info.value)  # names the groups' issue and the classes
    assert "target=" in str(info.value) and "--" not in str(info.value)  # the library's keywords, no flags
    assert how != "reference" or "reference_group='control'" in str(info.value), str(info.value)
    assert not out.exists()


def test_the_command_line_refuses_groups_without_target_in_one_line(batch_inputs, tmp_path, capsys):
    card, table = batch_inputs
    out = tmp_path / "out"
    code = main(["explain", str(table), "--model", str(card), "--output", str(out), "--reference-group",
                 "control", "--atlas", ATLAS, "--no-png", "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--target" in err, err
    assert "--reference-group control" in err and "target=" not in err and "reference_group" not in err, err
    assert not out.exists()


def test_with_a_target_every_record_and_row_names_that_target(batch_inputs, tmp_path):
    card, table = batch_inputs
    cohort = pd.read_csv(table).head(4)
    result = explain_cohort(cohort, card, tmp_path / "out", atlases=(ATLAS,), min_overlap=MIN_OVERLAP, png=False,
                            device="cpu", target="AD", reference_group="control")
    rows = result.subjects.set_index("id")
    assert list(rows["status"]) == ["done"] * 4
    for subject_id, row in rows.iterrows():
        assert _sidecar(row["relevance"])["record"]["target"]["label"] == "AD", subject_id
        assert row["target"] == "AD", subject_id
    written = pd.read_csv(tmp_path / "out" / "subjects.csv")
    assert list(written["target"]) == ["AD"] * 4
    for name in ("all_mean", "group-AD_mean", "group-control_mean"):
        assert _sidecar(result.maps[name])["record"]["target"]["label"] == "AD"


def test_maps_of_subjects_explained_for_different_classes_are_not_averaged(batch_inputs, tmp_path):
    card, table = batch_inputs
    cohort = pd.read_csv(table).head(3).drop(columns=["group"])  # no groups: each its predicted class
    out = tmp_path / "out"
    first = explain_cohort(cohort, card, out, atlases=(), png=False, device="cpu")
    rows = first.subjects.set_index("id")
    assert "all_mean" in first.maps
    assert rows["target"].nunique() == 1  # the tiny model predicts one class for all
    explained = rows["target"].iloc[0]
    other = "AD" if explained == "control" else "control"
    # make one subject's completed outputs say it was explained for the other class (as a subject predicted
    # differently would have been): the re-run resumes it and must not average it with the others
    marker = out / "subjects" / "sub-0001" / "sub-0001_done.json"
    entry = json.loads(marker.read_text())
    entry["target"] = other
    marker.write_text(json.dumps(entry))
    again = explain_cohort(cohort, card, out, atlases=(), png=False, device="cpu")
    assert list(again.subjects["status"]) == ["skipped"] * 3
    assert dict(again.subjects.set_index("id")["target"]) == {"sub-0000": explained, "sub-0001": other,
                                                             "sub-0002": explained}
    assert "all_mean" not in again.maps and not (out / "cohort" / "all_mean.nii.gz").exists()
    assert any("target=" in note for note in again.summary["notes"]), again.summary["notes"]  # the library's spelling
