"""``neurorelevance explain`` and the fast CLI: lazy imports, --version, one-line user errors, a real run."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from batch_helpers import ATLAS, MIN_OVERLAP
from NeuroRelevanceLib.cli import main

HEAVY = ("torch", "vtk", "slicer", "distributed", "dask", "SimpleITK", "matplotlib")
PROBE = """
import sys
from NeuroRelevanceLib.cli import main
try:
    code = main({argv!r})
except SystemExit as exc:
    code = exc.code
print("LOADED", sorted(m for m in {heavy!r} if m in sys.modules), "CODE", code)
"""


@pytest.fixture(scope="module")
def inputs(batch_inputs):
    return batch_inputs


def _probe(argv: list[str], heavy=HEAVY) -> tuple[list[str], str]:
    result = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=heavy)],
                            capture_output=True, text=True, encoding="utf-8", timeout=120,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    line = [x for x in result.stdout.splitlines() if x.startswith("LOADED")][-1]
    return eval(line.split("LOADED", 1)[1].split("CODE")[0]), result.stdout + result.stderr


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["explain", "--help"], ["explain"],
                                  ["explain", "scan.nii.gz", "--model"], ["explain", "--workers", "two"],
                                  ["cohort", "--help"], ["compare", "--help"], ["web", "--help"],
                                  ["demo", "--help"], ["regions", "--help"]])
def test_help_and_argument_errors_import_no_heavy_package(argv):
    loaded, output = _probe(argv)
    assert loaded == [], output


def test_version_names_the_project_torch_and_slicer_core(capsys):
    from importlib.metadata import version

    from NeuroRelevanceLib import __version__

    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert f"neurorelevance {__version__}" in out
    assert f"torch {version('torch')}" in out and f"slicer-core {version('slicer-core')}" in out


def _user_error(capsys, argv, *words):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, (argv, err)


def test_user_errors_are_one_line_naming_the_argument_and_exit_2(capsys, inputs, tmp_path):
    card, table = inputs
    out = str(tmp_path / "out")
    _user_error(capsys, ["explain", str(table), "--model", str(tmp_path / "nope.json"), "--output", out],
                "nope.json")
    _user_error(capsys, ["explain", str(tmp_path / "none.csv"), "--model", str(card), "--output", out],
                "none.csv")
    _user_error(capsys, ["explain", str(table), "--model", str(card), "--output", out, "--workers", "0"],
                "--workers")
    _user_error(capsys, ["explain", str(table), "--model", str(card), "--output", out, "--workers", "2",
                         "--scheduler", "tcp://127.0.0.1:1"], "--workers", "--scheduler")
    _user_error(capsys, ["explain", str(table), "--model", str(card), "--output", out, "--atlas", "Nowhere"],
                "Nowhere")
    _user_error(capsys, ["explain", str(table), "--model", str(card), "--output", out, "--filter", "pass",
                         "--filter-range", "0.9", "0.1"], "filter")
    _user_error(capsys, ["explain", str(table), "--model", str(card), "--output", out, "--target", "tumour"],
                "tumour")
    _user_error(capsys, ["explain", str(table), "--model", str(card), "--output", out, "--batch-size", "0"],
                "--batch-size")
    _user_error(capsys, ["explain", str(table), "--model", str(card), "--output", str(table)], "--output")
    _user_error(capsys, ["explain", str(table), "--model", str(card), "--output", out,
                         "--target", "AD", "--scheduler", "tcp://127.0.0.1:1"], "127.0.0.1:1")
    assert not (tmp_path / "out").exists()  # nothing was written by a refused command


def test_explain_writes_every_output_and_a_summary(capsys, inputs, tmp_path):
    card, table = inputs
    scans = list(pd.read_csv(table)["path"])[:3]
    out = tmp_path / "out"
    code = main(["explain", *scans, str(tmp_path / "missing.nii.gz"), "--model", str(card), "--output", str(out),
                 "--atlas", ATLAS, "--min-overlap", str(MIN_OVERLAP), "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 3, captured.err  # some subjects failed: named in the summary, the rest written
    assert "3 done" in captured.out and "1 failed" in captured.out and "missing" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": 3, "skipped": 0, "failed": 1}
    for scan in scans:
        sid = scan.split("/")[-1].split(".")[0]
        folder = out / "subjects" / sid
        for name in (f"{sid}_relevance.nii.gz", f"{sid}_relevance.json", f"{sid}_regions_{ATLAS}.csv",
                     f"{sid}_overview.png", f"{sid}_done.json"):
            assert (folder / name).is_file(), name
    assert (out / "cohort" / "all_mean.nii.gz").is_file() and (out / "subjects.csv").is_file()
    from NeuroRelevanceLib.batch.outputs import WRITES
    from NeuroRelevanceLib.cli_checks import is_written

    unlisted = [p for p in out.rglob("*") if p.is_file() and not is_written(p.relative_to(out).as_posix(), WRITES)]
    assert not unlisted, f"batch.outputs.WRITES (inputs there are refused) misses {unlisted}"
    # the same command again resumes: nothing is recomputed
    assert main(["explain", *scans, "--model", str(card), "--output", str(out), "--atlas", ATLAS,
                 "--min-overlap", str(MIN_OVERLAP), "--device", "cpu"]) == 0
    assert "3 already complete" in capsys.readouterr().out


def test_progress_is_a_bar_with_eta_on_a_terminal_and_a_line_per_subject_otherwise():
    from NeuroRelevanceLib.batch.progress import ProgressReporter

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, tty in ((Terminal(), True), (io.StringIO(), False)):
        reporter = ProgressReporter(3, stream=stream)
        reporter({"id": "a", "status": "done", "seconds": 0.5, "reason": ""})
        reporter({"id": "b", "status": "failed", "seconds": 0.1, "reason": "NaN voxels"})
        reporter({"id": "c", "status": "done", "seconds": 0.5, "reason": ""})
        reporter.close()
        text = stream.getvalue()
        if tty:
            assert "\r" in text and "ETA" in text and "3/3" in text
        else:
            lines = text.strip().splitlines()
            assert len(lines) == 3 and "b" in lines[1] and "NaN voxels" in lines[1] and "\r" not in text


def test_the_command_list_says_what_each_command_says_of_itself():
    import argparse

    from NeuroRelevanceLib.cli import PLUGINS, build_parser

    full = build_parser()  # without argv every command is built in full
    commands = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    own = {action.dest: action.help for action in commands._choices_actions}
    for command, (_, summary) in PLUGINS.items():
        assert own[command] == summary, command
    listed = build_parser(["--help"])
    stubs = next(a for a in listed._actions if isinstance(a, argparse._SubParsersAction))
    assert list(stubs.choices) == list(commands.choices)
