"""Notes and refusals of cohort runs, region gain and the Slicer logic name options the way their user typed them:
keywords (``target=``, ``gain_on='absolute'``, ``overwrite=True``) for the library, the console and the Slicer
logic, flags (``--target``, ``--gain-on absolute``, ``--overwrite``) on the command line; never the other front
end's, never both. Notes stored in output files (``summary.json``, a region CSV's header) keep one spelling: the
library's keywords. (Trial finding after ``vocabulary.OptionError``: ``explain_cohort`` users read "pass --target
(target=)", "--gain-on absolute (gain_on='absolute')", "--workers must be ...", "pass --overwrite (overwrite=True)".)
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from batch_helpers import ATLAS, MIN_OVERLAP
from NeuroRelevanceLib.batch import explain_cohort
from NeuroRelevanceLib.cli import main
from NeuroRelevanceLib.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: a command-line flag ("--target") and a keyword as the library spells it ("target=")
FLAG = re.compile(r"(?<![\w-])--[a-z]")
KEYWORD = re.compile(r"\b[a-z_]+=")


def _no_flags(texts) -> None:
    for text in texts:
        assert not FLAG.search(str(text)), text


# ---- notes -------------------------------------------------------------------------------------------------
def test_the_mixed_targets_note_says_target_as_each_front_end_spells_it(batch_inputs, tmp_path, capsys):
    card, table = batch_inputs
    cohort = pd.read_csv(table).head(2).drop(columns=["group"])
    cohort.to_csv(tmp_path / "two.csv", index=False)
    out = tmp_path / "out"
    explain_cohort(str(tmp_path / "two.csv"), card, out, atlases=(), png=False, device="cpu")
    marker = out / "subjects" / "sub-0001" / "sub-0001_done.json"
    entry = json.loads(marker.read_text())
    entry["target"] = "AD" if entry["target"] == "control" else "control"  # as a subject predicted otherwise
    marker.write_text(json.dumps(entry))
    again = explain_cohort(str(tmp_path / "two.csv"), card, out, atlases=(), png=False, device="cpu")
    note = next(n for n in again.summary["notes"] if "different classes" in n)
    assert "target=" in note, note
    _no_flags(again.summary["notes"])
    stored = json.loads((out / "summary.json").read_text())["notes"]
    assert note in stored  # the file keeps the library's spelling, whichever front end ran
    code = main(["explain", str(tmp_path / "two.csv"), "--model", str(card), "--output", str(out), "--atlas",
                 "none", "--no-png", "--quiet", "--device", "cpu"])
    printed = [line for line in capsys.readouterr().out.splitlines() if "different classes" in line]
    assert code == 0 and printed and "--target" in printed[0] and not KEYWORD.search(printed[0]), printed
    assert note in json.loads((out / "summary.json").read_text())["notes"]


def test_the_no_reference_group_note_names_reference_group_as_a_keyword(batch_inputs, tmp_path):
    card, table = batch_inputs
    cohort = pd.read_csv(table).head(4)
    result = explain_cohort(cohort, card, tmp_path / "out", atlases=(ATLAS,), min_overlap=MIN_OVERLAP, png=False,
                            device="cpu", target="AD")
    note = next(n for n in result.summary["notes"] if "no reference group" in n)
    assert "reference_group=" in note, note
    _no_flags(result.summary["notes"])


def test_the_gain_summary_says_gain_on_as_a_keyword_in_the_library_and_as_a_flag_on_the_command_line(tmp_path):
    from NeuroRelevanceLib import region_statistics
    from NeuroRelevanceLib.regions import read_csv, write_csv
    from NeuroRelevanceLib.vocabulary import spelled
    from volumes import atlas_ijk, kji

    labels = np.zeros((10, 10, 10), np.int16)
    for i in range(5):
        labels[2 * i:2 * i + 2] = i + 1
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    atlas = atlas_ijk(labels, affine, {i + 1: "ABCDE"[i] for i in range(5)}, name="toy")
    reference = np.select([labels == 1, labels == 4], [1.0, 1e-9], -1.0)  # most regions: no positive relevance
    table = region_statistics([kji(1.0 * (labels > 0), affine)], atlas, reference=[kji(reference, affine)],
                              min_region_mm3=0)
    summary = table.attrs["gain_summary"]
    assert "gain_on='absolute'" in summary and not FLAG.search(summary), summary
    flags = spelled(summary, "flag")
    assert "--gain-on absolute" in flags and not KEYWORD.search(flags), flags
    write_csv(table, tmp_path / "t.csv")
    assert read_csv(tmp_path / "t.csv").attrs["gain_summary"] == summary  # the CSV keeps the keyword


def test_the_regions_command_prints_the_gain_summary_with_flags(tmp_path, capsys):
    import nibabel as nib

    labels = np.zeros((10, 10, 10), np.int16)
    for i in range(5):
        labels[2 * i:2 * i + 2] = i + 1
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "atlas.nii.gz")
    (tmp_path / "atlas.csv").write_text("id,name\n" + "".join(f"{i + 1},{'ABCDE'[i]}\n" for i in range(5)))
    nib.save(nib.Nifti1Image(1.0 * (labels > 0), affine), tmp_path / "p.nii.gz")
    nib.save(nib.Nifti1Image(np.select([labels == 1], [1.0], -1.0), affine), tmp_path / "c.nii.gz")
    code = main(["regions", str(tmp_path / "p.nii.gz"), "--reference", str(tmp_path / "c.nii.gz"), "--atlas",
                 str(tmp_path / "atlas.nii.gz"), "--names", str(tmp_path / "atlas.csv"), "--min-region-mm3", "0",
                 "--min-overlap", "0"])
    note = [line for line in capsys.readouterr().out.splitlines() if "have no gain" in line]
    assert code == 0 and note and "--gain-on absolute" in note[0] and not KEYWORD.search(note[0]), note


# ---- refusals of explain_cohort ------------------------------------------------------------------------------
LIBRARY_REFUSALS = [  # (keywords, the keyword the refusal names)
    (dict(gain_on="signed"), "gain_on='signed'"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(workers=0), "workers=0"),
    (dict(workers=2, scheduler="tcp://127.0.0.1:1"), "workers=2"),
    (dict(reference_group="control"), "reference_group='control'"),
]


@pytest.mark.parametrize("keywords, keyword", LIBRARY_REFUSALS)
def test_explain_cohort_refusals_name_keywords_not_flags(batch_inputs, tmp_path, keywords, keyword):
    card, table = batch_inputs
    with pytest.raises(InputError) as info:
        explain_cohort(str(table), card, tmp_path / "out", atlases=(), png=False, device="cpu", target="AD",
                       **keywords)
    assert keyword in str(info.value) and not FLAG.search(str(info.value)), str(info.value)
    assert not (tmp_path / "out").exists()


def test_a_folder_of_other_settings_is_refused_with_overwrite_as_each_front_end_spells_it(batch_inputs, tmp_path,
                                                                                         capsys):
    card, table = batch_inputs
    cohort = pd.read_csv(table).head(1)
    cohort.to_csv(tmp_path / "one.csv", index=False)
    out = tmp_path / "out"
    explain_cohort(str(tmp_path / "one.csv"), card, out, atlases=(), png=False, device="cpu", target="AD")
    with pytest.raises(InputError) as info:
        explain_cohort(str(tmp_path / "one.csv"), card, out, atlases=(), png=False, device="cpu", target="control")
    assert "overwrite=True" in str(info.value) and not FLAG.search(str(info.value)), str(info.value)
    code = main(["explain", str(tmp_path / "one.csv"), "--model", str(card), "--output", str(out), "--atlas", "none",
                 "--no-png", "--quiet", "--device", "cpu", "--target", "control"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--overwrite" in err and "overwrite=" not in err, err




# ---- the Slicer logic -----------------------------------------------------------------------------------------
def test_the_logic_says_min_overlap_without_the_flag(scene, tmp_path):
    pytest.importorskip("slicer")
    from NeuroRelevanceLib.logic import RelevanceLogic
    from NeuroRelevanceLib.models import load_model
    from reading_helpers import halves_atlas, run_scan, tiny_card

    (tmp_path / "model").mkdir()
    loaded = load_model(tiny_card(tmp_path / "model"), device="cpu")
    far = halves_atlas(tmp_path, "far", shift_mm=1000.0)
    with pytest.raises(InputError) as info:
        RelevanceLogic(scene).run([run_scan(scene)], loaded, atlas=far)
    assert "min_overlap=" in str(info.value) and not FLAG.search(str(info.value)), str(info.value)
    run = RelevanceLogic(scene).run([run_scan(scene, "T1b")], loaded, atlas=far, table_required=False)
    assert "min_overlap=" in run.job.table_error and not FLAG.search(run.job.table_error), run.job.table_error


def test_explain_cohort_names_its_output_folder_as_out_dir(batch_inputs, tmp_path, capsys):
    card, table = batch_inputs
    theirs = tmp_path / "study"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(InputError) as info:
        explain_cohort(str(table), card, theirs, atlases=(), png=False, device="cpu", target="AD")
    assert f"out_dir='{theirs}'" in str(info.value) and not FLAG.search(str(info.value)), str(info.value)
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError) as info:
        explain_cohort(str(table), card, tmp_path / "file", atlases=(), png=False, device="cpu", target="AD")
    assert "out_dir=" in str(info.value) and not FLAG.search(str(info.value)), str(info.value)
    code = main(["explain", str(table), "--model", str(card), "--output", str(theirs), "--atlas", "none",
                 "--no-png", "--quiet", "--device", "cpu", "--target", "AD"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"--output {theirs}" in err and "out_dir" not in err, err


# ---- the web viewer's server, started from the console ----------------------------------------------------------
def test_the_web_server_check_names_port_and_host_as_serve_takes_them():
    import socket

    from NeuroRelevanceLib.vocabulary import spelled
    from NeuroRelevanceLib.web import check_address

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for host, value in (("127.0.0.1", port), ("127.0.0.1", 70000), ("no-such-host.invalid", 0)):
            with pytest.raises(InputError) as info:
                check_address(host, value)
            assert ("port=" in str(info.value) or "host=" in str(info.value)) and not FLAG.search(str(info.value))
            flags = spelled(info.value, "flag")
            assert ("--port" in flags or "--host" in flags) and not KEYWORD.search(flags), flags


# ---- a subject's reason (the run's min_overlap way out) ---------------------------------------------------------
def test_a_subjects_missing_table_names_min_overlap_as_each_front_end_spells_it(batch_inputs, tmp_path, capsys):
    from reading_helpers import halves_atlas

    card, table = batch_inputs
    cohort = pd.read_csv(table).head(1)
    cohort.to_csv(tmp_path / "one.csv", index=False)
    far = halves_atlas(tmp_path, "far", shift_mm=1000.0)  # no relevance inside: no table, the subject fails
    result = explain_cohort(str(tmp_path / "one.csv"), card, tmp_path / "lib", atlases=(far,), png=False,
                            device="cpu", target="AD")
    note = next(n for n in result.summary["notes"] if "overlap" in n)  # the map stays, the table is missing
    assert "min_overlap=0.5" in note and "lower min_overlap=" in note and not FLAG.search(note), note
    code = main(["explain", str(tmp_path / "one.csv"), "--model", str(card), "--output", str(tmp_path / "cli"),
                 "--atlas", far, "--no-png", "--device", "cpu", "--target", "AD"])
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if "overlap" in line]
    assert code == 0 and lines, captured
    for line in lines:
        assert "--min-overlap" in line and "min_overlap" not in line, line
