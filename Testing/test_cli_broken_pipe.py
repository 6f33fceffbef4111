"""``neurorelevance regions ... | head -2`` (trial 3): the reader closes the pipe, the next print raised
BrokenPipeError, reported as an unexpected failure ("please report it"), and the CSV, written after the
printing, was never written. Files come first; a closed pipe ends the command quietly (every command)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _run_with_closed_stdout(argv: list[str], tmp_path: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "NeuroRelevance"), "NEURORELEVANCE_LOG_DIR": str(tmp_path / "logs"),
           "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "NeuroRelevanceLib", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    process.stdout.close()          # the reader is gone before the command prints anything (| head -0)
    err = process.stderr.read().decode()
    return process.wait(timeout=120), err


def test_regions_into_a_closed_pipe_writes_the_csv_and_exits_quietly(tmp_path):
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[:4], labels[4:] = 1, 2
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "atlas.nii.gz")
    (tmp_path / "atlas.csv").write_text("id,name\n1,Insula_L\n2,Insula_R\n")
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), tmp_path / "h.nii.gz")
    code, err = _run_with_closed_stdout(["regions", str(tmp_path / "h.nii.gz"),
                                         "--atlas", str(tmp_path / "atlas.nii.gz"),
                                         "--names", str(tmp_path / "atlas.csv"), "--min-region-mm3", "0",
                                         "--csv", str(tmp_path / "t.csv")], tmp_path)
    assert (tmp_path / "t.csv").is_file() and "Insula_L" in (tmp_path / "t.csv").read_text()
    assert err == "" and code == 0, (code, err)
    assert not (tmp_path / "logs").exists()


def test_any_command_into_a_closed_pipe_exits_quietly(tmp_path):
    code, err = _run_with_closed_stdout(["regions", "--list-atlases"], tmp_path)
    assert err == "" and code == 0, (code, err)
