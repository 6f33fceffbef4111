"""A scan that is not where the model looks is refused, before and after running, on every entry point.

An unregistered scan (the demo brain shifted 150 mm) or a tiny non-brain cube used to be explained as a
subject: the model's bias gave a prediction (AD, p = 0.505) and the map was ~1e-12 everywhere. The shared
prepare step (``preprocessing.prepare_input``: Slicer, web, batch/explain, compare, cohort) now refuses a scan
whose data cover too little of the card's input grid, and ``jobs.compute`` refuses a map with no substance.
"""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.preprocessing import prepare_input
from NeuroRelevanceLib.pretrained import model_card_path

CARD = model_card_path("ad_cnn")


@pytest.fixture(scope="module")
def loaded():
    from NeuroRelevanceLib.models import load_model

    return load_model(CARD, device="cpu")


@pytest.fixture(scope="module")
def brain():
    """A held-out AD subject of ad_cnn's cohort at 4 mm, made like the training data (skull-stripped)."""
    from NeuroRelevanceLib.demo import synthesize_subject
    from NeuroRelevanceLib.pretrained.heldout import generator_options

    options = {**generator_options(CARD), "spacing": 4.0}
    s = synthesize_subject(150, 75.0, "AD", **options)
    return s.image.astype(np.float32), s.grid


def _shifted(grid: Grid, mm: float) -> Grid:
    affine = grid.ijk_to_ras.copy()
    affine[:3, 3] += mm
    return Grid(grid.shape_kji, affine)


def _noise_cube() -> tuple[np.ndarray, Grid]:
    rng = np.random.default_rng(0)
    return rng.uniform(0.01, 1.0, (8, 8, 8)).astype(np.float32), Grid((8, 8, 8), np.eye(4))


def test_coverage_is_the_share_of_the_model_grid_the_scan_data_reach(loaded, brain):
    from NeuroRelevanceLib.preprocessing import grid_coverage, model_grid

    image, grid = brain
    spec = loaded.card.input
    target = model_grid(grid, spec.shape, spec.spacing, spec.orientation, spec.origin)
    inside = grid_coverage(np.ones_like(image), grid, target)     # a full field of view on the same box
    assert inside > 0.9
    # independent oracle: the brain's voxel share on its own grid (the demo grid is the model grid here)
    assert grid_coverage(image, grid, target) == pytest.approx(float((image != 0).mean()), abs=0.05)
    assert grid_coverage(image, _shifted(grid, 150.0), target) < 0.01


@pytest.mark.parametrize("case", ["shifted 150 mm", "8 mm noise cube"])
def test_the_shared_prepare_step_refuses_a_scan_outside_the_model_grid(loaded, brain, case):
    array, grid = (brain[0], _shifted(brain[1], 150.0)) if case.startswith("shifted") else _noise_cube()
    with pytest.raises(InputError) as info:
        prepare_input([(array, grid)], loaded.card)
    message = str(info.value)
    assert "% of the model's input grid" in message and "register" in message and "RAS" in message
    assert "docs/" in message


def test_a_registered_scan_still_prepares(loaded, brain):
    prepared = prepare_input([brain], loaded.card)
    assert (prepared.array != 0).mean() > 0.1


def test_a_run_whose_map_has_no_substance_is_refused(loaded, brain):
    """Past the input check, a map that is zero everywhere (here: a model whose weights are all zero gives
    relevance 0) is refused by the one compute step every front end uses, not returned as a result."""
    import copy

    from NeuroRelevanceLib.jobs import Job, Settings, compute

    dead = copy.copy(loaded)
    dead.model = copy.deepcopy(loaded.model)
    with torch.no_grad():
        for p in dead.model.parameters():
            p.zero_()
    job = Job(dead, [brain], ["scan"], Settings(preset="epsilon-plus", target="AD"), ["scan"])
    with pytest.raises(InputError, match="no relevance"):
        compute(job)
    ok = compute(Job(loaded, [brain], ["scan"], Settings(preset="epsilon-plus", target="AD"), ["scan"]))
    assert float(np.abs(ok.raw[0]).max()) > 0


@pytest.mark.parametrize("case", ["shifted", "cube"])
def test_explain_cli_refuses_the_subject_and_writes_nothing_for_it(tmp_path, brain, case, capsys):
    from NeuroRelevanceLib.cli import main
    if case == "shifted":
        array, grid = brain[0], _shifted(brain[1], 150.0)
    else:
        array, grid = _noise_cube()
    scan, good = tmp_path / f"{case}.nii.gz", tmp_path / "registered.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), grid.ijk_to_ras), scan)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(brain[0].transpose(2, 1, 0)), brain[1].ijk_to_ras), good)
    out = tmp_path / "out"
    code = main(["explain", str(scan), str(good), "--model", str(CARD), "--output", str(out), "--atlas", "none",
                 "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 3, captured.out + captured.err      # some subjects failed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["done"] == 1 and summary["counts"]["failed"] == 1
    assert "% of the model's input grid" in json.dumps(summary["failed"])
    assert not (out / "subjects" / case).exists() or not any((out / "subjects" / case).iterdir())
    assert (out / "subjects" / "registered" / "registered_relevance.nii.gz").is_file()
