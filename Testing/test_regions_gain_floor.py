"""Region gain with a noise floor on the reference sum (issue 18, trial 3): controls explained for "AD" have almost
no positive relevance, and a region whose reference Σ R⁺ is 1e-8 ranked first with a gain of 3e4. Such a region
gets no gain and a reason; when most regions have no gain the table says so (attrs, CSV header, CLI, summary)."""
from __future__ import annotations

import argparse
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from NeuroRelevanceLib import region_statistics
from NeuroRelevanceLib.regions import read_csv
from NeuroRelevanceLib.regions.cli import register
from NeuroRelevanceLib.regions.statistics import DEFAULT_GAIN_FLOOR
from volumes import atlas_ijk, kji

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
NAMES = {1: "A", 2: "B", 3: "C", 4: "D", 5: "E"}


def _labels() -> np.ndarray:
    labels = np.zeros((10, 10, 10), np.int16)
    for i, label in enumerate(NAMES):
        labels[2 * i:2 * i + 2] = label
    return labels


@pytest.fixture(scope="module")
def atlas():
    return atlas_ijk(_labels(), AFFINE, NAMES, name="toy")


def _reference(levels: dict) -> np.ndarray:
    labels = _labels()
    heat = np.zeros(labels.shape)
    for label, level in levels.items():
        heat[labels == label] = level
    return heat


def test_a_reference_sum_below_the_floor_gets_no_gain_and_a_reason(atlas):
    labels = _labels()
    patients = [kji(1.0 * (labels > 0), AFFINE)]
    ref = _reference({1: 1.0, 2: 1e-8, 3: 0.5, 4: 0.0, 5: 2 * DEFAULT_GAIN_FLOOR})
    table = region_statistics(patients, atlas, reference=[kji(ref, AFFINE)], rank_by="gain",
                              min_region_mm3=0).set_index("label")
    assert table.loc[1, "gain"] == pytest.approx(1.0) and table.loc[3, "gain"] == pytest.approx(2.0)
    assert table.loc[5, "gain"] == pytest.approx(1 / (2 * DEFAULT_GAIN_FLOOR))    # above the floor: kept
    assert np.isnan(table.loc[2, "gain"]) and "below" in table.loc[2, "gain_note"] and not table.loc[2, "ranked"]
    assert np.isnan(table.loc[4, "gain"]) and "no positive relevance" in table.loc[4, "gain_note"]
    assert table.attrs["gain_floor"] == DEFAULT_GAIN_FLOOR
    assert "gain_summary" not in table.attrs          # 3 of 5 regions have a gain
    # the floor is relative: scaling the reference does not change which regions have a gain
    scaled = region_statistics(patients, atlas, reference=[kji(ref * 1e-6, AFFINE)], min_region_mm3=0)
    assert scaled.set_index("label")["gain"].notna().sort_index().tolist() == \
        table["gain"].notna().sort_index().tolist()
    # gain_floor=0 keeps the old behaviour (any positive reference sum divides)
    raw = region_statistics(patients, atlas, reference=[kji(ref, AFFINE)], gain_floor=0.0,
                            min_region_mm3=0).set_index("label")
    assert raw.loc[2, "gain"] == pytest.approx(1e8)
    with pytest.raises(ValueError, match="gain_floor"):
        region_statistics(patients, atlas, reference=[kji(ref, AFFINE)], gain_floor=1.5)


def test_a_summary_says_when_most_regions_have_no_gain(atlas, tmp_path):
    labels = _labels()
    patients = [kji(1.0 * (labels > 0), AFFINE)]
    ref = _reference({1: 1.0, 2: -1.0, 3: -1.0, 4: 1e-9, 5: 0.0})   # controls explained for the patients' class
    table = region_statistics(patients, atlas, reference=[kji(ref, AFFINE)], min_region_mm3=0)
    summary = table.attrs["gain_summary"]
    assert "4 of 5" in summary and "gain_on='absolute'" in summary  # the library's spelling (the CLI: --gain-on)
    from NeuroRelevanceLib.regions import write_csv

    write_csv(table, tmp_path / "t.csv")
    assert f"# gain_summary: {summary}" in (tmp_path / "t.csv").read_text()
    assert read_csv(tmp_path / "t.csv").attrs["gain_summary"] == summary


def _parse(argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["regions", *argv])


@pytest.fixture
def cli_files(tmp_path):
    labels = _labels().astype(np.uint8)
    nib.save(nib.Nifti1Image(labels, AFFINE), tmp_path / "atlas.nii.gz")
    (tmp_path / "atlas.csv").write_text("id,name\n" + "".join(f"{k},{v}\n" for k, v in NAMES.items()))
    nib.save(nib.Nifti1Image((labels > 0).astype(np.float32), AFFINE), tmp_path / "p.nii.gz")
    ref = _reference({1: 1.0, 2: -1.0, 3: -1.0, 4: 1e-9, 5: 0.0}).astype(np.float32)
    nib.save(nib.Nifti1Image(ref, AFFINE), tmp_path / "c.nii.gz")
    return tmp_path


def test_the_regions_command_prints_the_summary_and_takes_gain_on(cli_files, capsys):
    f = cli_files
    common = [str(f / "p.nii.gz"), "--reference", str(f / "c.nii.gz"), "--atlas", str(f / "atlas.nii.gz"),
              "--names", str(f / "atlas.csv"), "--min-region-mm3", "0", "--min-overlap", "0"]
    args = _parse([*common, "--csv", str(f / "pos.csv")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "4 of 5 regions have no gain" in out
    assert read_csv(f / "pos.csv").attrs["gain_on"] == "positive relevance (R+)"
    args = _parse([*common, "--gain-on", "absolute", "--csv", str(f / "abs.csv")])
    assert args.func(args) == 0
    table = read_csv(f / "abs.csv")
    assert table.attrs["gain_on"] == "absolute relevance (|R|)"
    assert table.set_index("name").loc["B", "gain"] == pytest.approx(1.0)   # |R| of -1 divides
    with pytest.raises(SystemExit):
        _parse([*common, "--gain-on", "signed"])


def test_explain_takes_gain_on_and_the_summary_reaches_summary_json(batch_inputs, tmp_path):
    from batch_helpers import ATLAS, MIN_OVERLAP
    from NeuroRelevanceLib.batch import explain_cohort
    from NeuroRelevanceLib.batch.cli import register as register_explain

    parser = argparse.ArgumentParser()
    register_explain(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["explain", "t.csv", "--model", "m.json", "--gain-on", "absolute"]).gain_on == "absolute"
    card, table = batch_inputs
    cohort = pd.read_csv(table).head(4)
    result = explain_cohort(cohort, card, tmp_path / "out", atlases=(ATLAS,), min_overlap=MIN_OVERLAP, png=False,
                            device="cpu", target="AD", reference_group="control", gain_on="absolute")
    gain = next(iter(result.gain.values()))
    assert gain.attrs["gain_on"] == "absolute relevance (|R|)"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["options"]["gain_on"] == "absolute"
    if "gain_summary" in gain.attrs:
        assert any(gain.attrs["gain_summary"] in note for note in summary["notes"])
