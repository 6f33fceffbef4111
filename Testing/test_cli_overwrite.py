"""No command writes over its own inputs.

(Trial 1, finding 4: ``regions h.nii.gz --png h.nii.gz`` destroyed the heatmap.)

Every sub-command that writes files is tried with an output that *is* one of its inputs — the same path, a
relative spelling, a symlink, a hard link, a symlinked folder — and with an output folder in which an input
lies where the command writes. Each must end in one line and exit code 2 before any work, with every input
byte-for-byte and time-stamp unchanged and nothing new in the output folder. A last test lists every output
option of every sub-command, so a new one cannot be added without a case here.
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import pytest

from cli_inputs import make_inputs
from NeuroRelevanceLib.cli import build_parser, main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("overwrite-inputs"))


def snapshot(paths) -> dict:
    """Content and modification time of every file (an oracle independent of the code under test)."""
    out = {}
    for path in paths:
        path = Path(path)
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        for file in files:
            out[str(file)] = (file.read_bytes(), file.stat().st_mtime_ns)
    return out


def refused(capsys, argv, fragment: str) -> str:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, (argv, captured.err)
    assert "Traceback" not in captured.err + captured.out
    assert fragment in lines[0] and "input" in lines[0] and "Nothing was written" in lines[0], lines[0]
    return lines[0]


def spellings(path: Path, work: Path) -> dict[str, str]:
    """Ways to name ``path`` again: itself, relative to ``work`` (the current folder), with ``..``, through a
    symlink, through a hard link, through a symlinked folder."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "sub").mkdir(exist_ok=True)
    link, hard, alias = work / f"link-{path.name}", work / f"hard-{path.name}", work / "alias"
    for p in (link, hard, alias):
        if p.is_symlink() or p.exists():
            p.unlink()
    link.symlink_to(path)
    os.link(path, hard)
    alias.symlink_to(path.parent, target_is_directory=True)
    relative = os.path.relpath(path, work)
    return {"same": str(path), "relative": relative, "dotdot": os.path.join("sub", "..", relative),
            "symlink": str(link), "hardlink": str(hard), "folder-symlink": str(alias / path.name)}


SPELLINGS = ("same", "relative", "dotdot", "symlink", "hardlink", "folder-symlink")


# ---- file outputs: regions and compare ---------------------------------------------------------
@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("option", ["--csv", "--png"])
@pytest.mark.parametrize("which", ["heatmap", "reference", "atlas", "names"])
def test_regions_refuses_an_output_that_is_an_input(inputs, tmp_path, monkeypatch, capsys, spelling, option, which):
    f = inputs
    heat, other = tmp_path / "h.nii.gz", tmp_path / "r.nii.gz"
    shutil.copy(f.heat, heat)
    shutil.copy(f.heat, other)
    atlas, names = tmp_path / "atlas.nii.gz", tmp_path / "atlas.csv"
    shutil.copy(f.atlas, atlas)
    shutil.copy(f.folder / "atlas.csv", names)
    victim = {"heatmap": heat, "reference": other, "atlas": atlas, "names": names}[which]
    path = spellings(victim, tmp_path / "work")[spelling]
    monkeypatch.chdir(tmp_path / "work")
    before = snapshot([heat, other, atlas, names])
    argv = ["regions", heat, "--reference", other, "--atlas", atlas, "--names", names, option, path]
    refused(capsys, argv, option)
    assert snapshot([heat, other, atlas, names]) == before


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("option", ["--csv", "--per-subject-csv", "--png"])
@pytest.mark.parametrize("which", ["scan", "channel", "card", "weights", "ground-truth", "brain-mask"])
def test_compare_refuses_an_output_that_is_an_input(inputs, tmp_path, monkeypatch, capsys, spelling, option, which):
    f = inputs
    model = tmp_path / "model"
    shutil.copytree(f.folder, model, ignore=shutil.ignore_patterns("cohort*", "a-file"))
    scan, second, mask = model / "sub0.nii.gz", model / "sub1.nii.gz", model / "sub2.nii.gz"
    card, weights = model / "classifier.json", model / "classifier.safetensors"
    victim = {"scan": scan, "channel": second, "card": card, "weights": weights, "ground-truth": mask,
              "brain-mask": model / "sub3.nii.gz"}[which]
    path = spellings(victim, tmp_path / "work")[spelling]
    monkeypatch.chdir(tmp_path / "work")
    before = snapshot([model])
    subject = f"{scan},{second}" if which == "channel" else scan
    argv = ["compare", subject, "--model", card, "--methods", "gradient", "--steps", "2", "--device", "cpu",
            "--ground-truth", mask, "--brain-masks", model / "sub3.nii.gz", option, path]
    refused(capsys, argv, option)
    assert snapshot([model]) == before


def test_two_outputs_naming_one_file_are_refused(inputs, tmp_path, capsys):
    out = tmp_path / "table.csv"
    out.write_text("keep me")
    argv = ["regions", inputs.heat, "--atlas", inputs.atlas, "--csv", out, "--png", out]
    code = main([str(a) for a in argv])
    assert code == 2 and "--csv and --png" in capsys.readouterr().err
    assert out.read_text() == "keep me"


def test_a_new_output_beside_the_inputs_is_fine(inputs, tmp_path, capsys):
    heat = tmp_path / "h.nii.gz"
    shutil.copy(inputs.heat, heat)
    assert main(["regions", str(heat), "--atlas", str(inputs.atlas), "--csv", str(tmp_path / "h.csv")]) == 0
    assert (tmp_path / "h.csv").read_text().count("\n") > 2


# ---- folder outputs: demo, cohort, explain -----------------------------------------------------
def _place(source: Path, target: Path, how: str) -> Path:
    """Put an input at ``target`` inside an output folder: a copy, or a link to ``source`` (then given as input)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if how == "copy":
        shutil.copy(source, target)
    elif how == "symlink":
        target.symlink_to(source)
    else:
        os.link(source, target)
    return target


@pytest.mark.parametrize("how", ["copy", "symlink", "hardlink"])
@pytest.mark.parametrize("name", ["scan.nii.gz", "heatmap.nii.gz", "scene-data/T1.nrrd"])
def test_demo_refuses_an_output_folder_holding_its_atlas_where_it_writes(inputs, tmp_path, capsys, how, name):
    out = tmp_path / "out"
    kept = tmp_path / "atlas.nii.gz"
    shutil.copy(inputs.atlas, kept)
    placed = _place(kept, out / name, how)
    atlas = placed if how == "copy" else kept
    before = snapshot([kept, out])
    refused(capsys, ["demo", "--output", out, "--atlas", atlas], "--output")
    assert snapshot([kept, out]) == before


@pytest.mark.parametrize("case", ["table", "volume", "card", "weights", "folder-symlink"])
def test_cohort_refuses_an_output_folder_where_it_would_write_an_input(inputs, tmp_path, capsys, case):
    import pandas as pd

    out = tmp_path / "out"
    data = tmp_path / "data"
    shutil.copytree(inputs.folder, data, ignore=shutil.ignore_patterns("a-file"))
    table = pd.read_csv(data / "targets.csv")
    table["path"] = [str(data / p) for p in table["path"]]
    card = data / "regressor.json"
    cohort, out_arg = data / "table.csv", out
    if case == "table":
        cohort = out / "loadings.csv"
    elif case == "volume":
        out.mkdir()
        (out / "rois").mkdir()
        shutil.copy(data / "sub0.nii.gz", out / "rois" / "roi_01.nii.gz")
        table.loc[0, "path"] = str(out / "rois" / "roi_01.nii.gz")
    elif case == "card":
        out.mkdir()
        card = Path(shutil.copy(card, out / "summary.json"))
        (out / "regressor.safetensors").symlink_to(data / "regressor.safetensors")
    elif case == "weights":
        out.mkdir()
        os.link(data / "regressor.safetensors", out / "scree.csv")
    elif case == "folder-symlink":
        cohort = out / "roi_regions.csv"
        (tmp_path / "alias").symlink_to(out, target_is_directory=True)
        out_arg = tmp_path / "alias"
    cohort.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(cohort, index=False)
    before = snapshot([data, out])
    refused(capsys, ["cohort", cohort, "--model", card, "--out", out_arg, "--device", "cpu", "--quiet",
                     "--rank", "2", "2", "--no-grid"], "--out")
    assert snapshot([data, out]) == before


@pytest.mark.parametrize("case", ["table", "scan", "card", "hardlink", "folder-symlink"])
def test_explain_refuses_an_output_folder_where_it_would_write_an_input(batch_inputs, tmp_path, capsys, case):
    import pandas as pd

    card, table_path = batch_inputs
    out = tmp_path / "out"
    table = pd.read_csv(table_path).head(2)
    data = tmp_path / "data"
    shutil.copytree(card.parent, data)
    card = data / card.name
    cohort, out_arg = tmp_path / "cohort.csv", out
    if case == "table":
        cohort = out / "subjects.csv"
    elif case == "scan":
        moved = out / "subjects" / "s0" / "scan.nii.gz"
        moved.parent.mkdir(parents=True)
        shutil.copy(table.loc[0, "path"], moved)
        table.loc[0, "path"] = str(moved)
    elif case == "card":
        out.mkdir()
        card = Path(shutil.copy(card, out / "batch.json"))
        shutil.copy(data / card.name.replace("batch.json", "tiny-batch.safetensors"), out / "tiny-batch.safetensors")
    elif case == "hardlink":
        out.mkdir()
        os.link(card, out / "summary.json")
    elif case == "folder-symlink":
        cohort = out / "cohort" / "list.csv"
        (tmp_path / "alias").symlink_to(out, target_is_directory=True)
        out_arg = tmp_path / "alias"
    cohort.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(cohort, index=False)
    before = snapshot([data, out, cohort])
    refused(capsys, ["explain", cohort, "--model", card, "--output", out_arg, "--device", "cpu", "--quiet",
                     "--no-png", "--atlas", "none"], "--output")
    assert snapshot([data, out, cohort]) == before


def test_the_library_batch_entry_refuses_too(batch_inputs, tmp_path):
    from NeuroRelevanceLib.batch import explain_cohort
    from NeuroRelevanceLib.errors import InputError

    card, table_path = batch_inputs
    out = tmp_path / "out"
    out.mkdir()
    table = Path(shutil.copy(table_path, out / "subjects.csv"))
    before = table.read_bytes()
    with pytest.raises(InputError, match="subjects.csv"):
        explain_cohort(str(table), card, out, atlases=(), png=False, device="cpu")
    assert table.read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["subjects.csv"]


# ---- every output option of every sub-command is covered above ----------------------------------
COVERED = {("regions", "--csv"), ("regions", "--png"), ("compare", "--csv"), ("compare", "--per-subject-csv"),
           ("compare", "--png"), ("demo", "--output"), ("cohort", "--out"), ("explain", "--output")}


def test_every_output_option_is_checked_here():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = set()
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if type(action) is not argparse._StoreAction:
                continue
            words = set(action.dest.split("_"))
            if words & {"csv", "png", "out", "output", "report", "save", "write"}:
                found.add((name, action.option_strings[-1]))
    assert found == COVERED, f"output options without an overwrite test: {found - COVERED}"
