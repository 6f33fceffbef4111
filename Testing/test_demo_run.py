"""The README's main job at a coarse resolution: the trained AD model on a generated subject no network saw."""
import nibabel as nib
import numpy as np
import pytest

from NeuroRelevanceLib.demo_run import run_demo

AD_REGIONS = {"entorhinal", "parahippocampal", "hippocampus", "amygdala", "temporalpole",
              "inferiortemporal", "middletemporal"}


def _recommended() -> str:
    from NeuroRelevanceLib.models import read_card
    from NeuroRelevanceLib.pretrained import model_card_path

    return read_card(model_card_path("ad_cnn")).recommended_preset


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
    from NeuroRelevanceLib.cli import DEMO_WRITES
    from NeuroRelevanceLib.cli_checks import is_written

    unlisted = [p for p in out.rglob("*") if p.is_file() and not is_written(p.relative_to(out).as_posix(), DEMO_WRITES)]
    assert not unlisted, f"cli.DEMO_WRITES (inputs there are refused) misses {unlisted}"


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
    from NeuroRelevanceLib.regions import read_csv

    table = read_csv(out / "regions.csv")
    assert {"name", "density", "fraction_pos", "rank"} <= set(table.columns)


def test_demo_prints_every_score_beside_chance_and_ceiling(report):
    _, lines, _ = report
    text = "\n".join(lines)
    assert "AD-like atrophy, label 1" in text and "of the brain" in text
    for score in ("relevance mass accuracy", "within 1 voxel", "rank accuracy", "AUC in the brain"):
        line = next(line for line in lines if score in line)
        assert "chance" in line and "ceiling" in line, line
    assert "outside the brain" in text
    assert "Recommended preset" in text and "a random map would put there" in text   # why the card's preset was used


def test_demo_region_table_equals_the_cli_on_the_demo_heatmap(report, tmp_path):
    from NeuroRelevanceLib.cli import main
    from NeuroRelevanceLib.demo_run import DEMO_ATLAS, DEMO_SETTINGS
    from NeuroRelevanceLib.regions import read_csv

    _, _, out = report
    assert main(["regions", str(out / "heatmap.nii.gz"), "--atlas", DEMO_ATLAS, "--min-overlap",
                 str(DEMO_SETTINGS["min_overlap"]), "--csv", str(tmp_path / "cli.csv")]) == 0
    demo, cli = read_csv(out / "regions.csv"), read_csv(tmp_path / "cli.csv")
    assert demo["name"].tolist() == cli["name"].tolist()  # same order, so the same ranks
    for column in ("label", "voxels", "rank", "ranked"):
        assert demo[column].tolist() == cli[column].tolist(), column
    for column in ("sum", "sum_pos", "density", "fraction_pos"):
        np.testing.assert_allclose(demo[column], cli[column], rtol=1e-9, atol=1e-12, err_msg=column)
    assert demo.attrs["grid"] == cli.attrs["grid"]  # the scan's grid, not the model's 4 mm one
    scan = nib.load(out / "scan.nii.gz")
    assert demo.attrs["grid"].startswith("×".join(map(str, scan.shape)))
    record = demo.attrs["provenance"]
    assert record["regions"]["atlas"] == DEMO_ATLAS and record["preset"] == _recommended()


def test_demo_files_say_what_produced_them_and_what_the_model_is_for(report):
    import json

    result, lines, out = report
    text = "\n".join(lines)
    assert "not for clinical use" in text.lower() and "synthetic" in text.lower()
    sidecar = json.loads((out / "heatmap.json").read_text())
    assert sidecar["values"] == "raw relevance" and sidecar["record"]["model"]["name"] == "ad_cnn"
    assert "raw" in nib.load(out / "heatmap.nii.gz").header["descrip"].item().decode()
    header = [line for line in (out / "regions.csv").read_text().splitlines() if line.startswith("#")]
    assert any("not for clinical use" in line.lower() for line in header)
    import matplotlib.image as mpimg

    overlay = (mpimg.imread(out / "overlay.png")[..., :3] * 255).astype(int)
    yellow = (overlay[..., 0] > 220) & (overlay[..., 1] > 180) & (overlay[..., 2] < 120)
    amber = (overlay[..., 0] > 220) & (overlay[..., 1] > 140) & (overlay[..., 1] < 200) & (overlay[..., 2] < 60)
    assert yellow.sum() > 200 and amber.sum() > 50  # orientation letters; the intended-use caption


def test_demo_log_names_its_subject_without_calling_it_held_out(report):
    _, lines, _ = report  # "held-out" means only a card's fresh cohort (training.held_out_cohort)
    generating = next(line for line in lines if "Generating" in line)
    assert "held-out" not in generating and "no network saw" in generating and "9001" in generating, generating
