"""Output folders (trial 2, findings 2 and 7).

- A command writing into an existing, non-empty folder that is not one of its own output folders destroyed the
  user's files named like outputs (subjects.csv, summary.json, cohort/all_mean.nii.gz) with exit 0. Every
  command that writes into a folder (explain, demo, cohort) must refuse it in one line, before any work, with
  every file unchanged; its own earlier output folder stays usable (resume).
- When no subject can be explained, explain leaves nothing new behind (exit 2, the reasons printed).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from NeuroRelevanceLib.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _users_folder(folder: Path, scan: Path) -> dict:
    """A folder of the user's own files, named like outputs of the commands; returns their hashes."""
    (folder / "cohort").mkdir(parents=True)
    (folder / "subjects.csv").write_text("participant,diagnosis\nP01,AD\nP02,CN\n")
    (folder / "summary.json").write_text('{"my": "notes"}\n')
    shutil.copy(scan, folder / "cohort" / "all_mean.nii.gz")
    shutil.copy(scan, folder / "heatmap.nii.gz")
    (folder / "loadings.csv").write_text("mine\n")
    return _hashes(folder)


def _hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(capsys, argv) -> str:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, (argv, captured.err, captured.out)
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_explain_refuses_a_folder_of_the_users_own_files(batch_inputs, tmp_path, capsys):
    card, table = batch_inputs
    scans = list(pd.read_csv(table)["path"])[:2]
    mine = tmp_path / "mydata"
    before = _users_folder(mine, Path(scans[0]))
    line = _refused(capsys, ["explain", *scans, "--model", card, "--output", mine, "--no-png", "--atlas", "none",
                             "--device", "cpu", "--quiet"])
    assert "--output" in line and "not empty" in line and "empty or new folder" in line, line
    assert _hashes(mine) == before
    from NeuroRelevanceLib.batch import explain_cohort
    from NeuroRelevanceLib.errors import InputError

    with pytest.raises(InputError, match="not empty"):
        explain_cohort(scans, card, mine, atlases=(), png=False, device="cpu", overwrite=True)
    assert _hashes(mine) == before


def test_explain_resumes_in_its_own_folder_and_takes_an_empty_one(batch_inputs, tmp_path, capsys):
    card, table = batch_inputs
    scans = list(pd.read_csv(table)["path"])[:1]
    out = tmp_path / "empty"
    out.mkdir()
    argv = ["explain", *scans, "--model", card, "--output", out, "--no-png", "--atlas", "none", "--device", "cpu",
            "--quiet"]
    assert main([str(a) for a in argv]) == 0
    assert main([str(a) for a in argv]) == 0
    assert "1 already complete" in capsys.readouterr().out


def test_demo_and_cohort_refuse_a_folder_of_the_users_own_files(batch_inputs, tmp_path, capsys):
    from cli_inputs import make_inputs

    card, table = batch_inputs
    mine = tmp_path / "mydata"
    before = _users_folder(mine, Path(pd.read_csv(table)["path"][0]))
    line = _refused(capsys, ["demo", "--output", mine])
    assert "--output" in line and "not empty" in line, line
    data = make_inputs(tmp_path / "inputs")
    line = _refused(capsys, ["cohort", data.folder, "--model", data.folder / "regressor.json", "--out", mine,
                             "--device", "cpu", "--quiet", "--rank", "2", "2", "--no-grid"])
    assert "--out" in line and "not empty" in line, line
    assert _hashes(mine) == before


def test_a_folder_a_command_wrote_is_its_own_and_no_other_commands(tmp_path):
    from NeuroRelevanceLib.cli_checks import output_folder
    from NeuroRelevanceLib.errors import InputError

    out = tmp_path / "out"
    with output_folder(out, "--out", command="cohort") as folder:
        (folder / "summary.json").write_text("{}")
    with output_folder(out, "--out", command="cohort"):
        pass  # a re-run into its own folder
    with pytest.raises(InputError, match="not empty"), output_folder(out, "--output", command="demo"):
        pass


@pytest.mark.parametrize("existing", [False, True])
def test_a_run_that_explains_no_subject_leaves_nothing_new(batch_inputs, tmp_path, capsys, existing):
    card, _ = batch_inputs
    (tmp_path / "not-a-scan.json").write_text(json.dumps({"a": 1}))
    out = tmp_path / "out"
    if existing:
        out.mkdir()
    code = main(["explain", str(tmp_path / "not-a-scan.json"), str(tmp_path / "missing.nii.gz"), "--model",
                 str(card), "--output", str(out), "--no-png", "--atlas", "none", "--device", "cpu", "--quiet"])
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and "no subject could be explained" in err[0], captured.err
    assert "not-a-scan" in captured.out and "missing" in captured.out  # every reason is printed
    assert "nothing was written" in err[0].lower(), err[0]
    assert (out.is_dir() and not any(out.iterdir())) if existing else not out.exists()
