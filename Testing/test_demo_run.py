"""The README's main job at a coarse resolution: the trained AD model on a held-out subject."""
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from NeuroRelevanceLib.demo_run import run_demo

AD_REGIONS = {"entorhinal", "parahippocampal", "hippocampus", "amygdala", "temporalpole",
              "inferiortemporal", "middletemporal"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    lines = []
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, spacing=4.0, log=lines.append), lines, out


def test_demo_writes_every_file_and_reports_progress(report):
    result, lines, out = report
    for name in ("heatmap.nii.gz", "scan.nii.gz", "atrophy_mask.nii.gz", "regions.csv",
                 "regions.png", "overlay.png", "scene.mrml"):
        assert (out / name).stat().st_size > 0, name
    assert [line[:5] for line in lines if line.startswith("[")] == [f"[{i}/6]" for i in range(1, 7)]
    heat, scan = nib.load(out / "heatmap.nii.gz"), nib.load(out / "scan.nii.gz")
    assert heat.shape == scan.shape and np.allclose(heat.affine, scan.affine, atol=1e-4)
    assert "scan.nii.gz" not in (out / "scene.mrml").read_text()  # the scene has its own data folder


def test_demo_model_finds_the_ad_like_subject_and_its_regions(report):
    result, _, out = report
    assert result.prediction.startswith("AD")
    top = [name.rsplit("_", 1)[0] for name, _ in result.top_regions]
    assert len(AD_REGIONS & set(top)) >= 3, top  # the generator's AD regions lead the table
    labels = nib.load(out / "atrophy_mask.nii.gz").get_fdata()
    assert set(np.unique(labels)) <= {0, 1, 2, 3} and (labels == 1).any()
    # honest chance: the AD-like label's share of the brain, not the whole atrophy map's share of the grid
    assert result.chance["mass_accuracy"] > (labels == 1).mean()
    assert result.mass_accuracy == result.scores["mass_accuracy"] > 2 * result.chance["mass_accuracy"]
    assert result.chance["mass_accuracy"] < result.ceiling["mass_accuracy"] <= 1.0
    assert result.chance["auc_brain"] == 0.5 < result.scores["auc_brain"]
    table = pd.read_csv(out / "regions.csv")
    assert {"name", "density", "fraction_pos", "rank"} <= set(table.columns)


def test_demo_prints_every_score_beside_chance_and_ceiling(report):
    _, lines, _ = report
    text = "\n".join(lines)
    assert "AD-like atrophy, label 1" in text and "of the brain" in text
    for score in ("relevance mass accuracy", "within 1 voxel", "rank accuracy", "AUC in the brain"):
        line = next(line for line in lines if score in line)
        assert "chance" in line and "ceiling" in line, line
    assert "outside the brain" in text
