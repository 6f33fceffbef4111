"""What region numbers are computed on, and a filter that keeps nothing (trial 8 F11).

Region statistics use the run's relevance map (with an input filter: the unfiltered map; the filter
changes only the display). The CSV header must say so, not suggest that the numbers are filtered.
A display filter that keeps no voxel is noted (CLI summary, export notes, panel text), never silent."""
import json

import numpy as np
import pandas as pd
import pytest

from batch_helpers import ATLAS, MIN_OVERLAP
from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.cli import main
from NeuroRelevanceLib.logic import RelevanceLogic
from NeuroRelevanceLib.models import load_model
from NeuroRelevanceLib.regions import csv_text, read_csv
from NeuroRelevanceLib.regions.scan_tables import heatmap_region_table
from reading_helpers import halves_atlas, scan_volume, tiny_card

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _header(text: str) -> dict:
    lines = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    return dict(line.split(": ", 1) for line in lines if ": " in line)


@pytest.mark.parametrize("filter_range", [(0.3, 1.0), (0.3, 0.3)])
def test_region_header_says_the_numbers_are_on_the_unfiltered_map(scene, views, tmp_path, filter_range):
    loaded = load_model(tiny_card(tmp_path), device="cpu")
    logic = RelevanceLogic(scene, views)
    atlas = halves_atlas(tmp_path)
    run = logic.run([scan_volume(scene)], loaded, filter="pass", filter_range=filter_range, atlas=atlas,
                    min_overlap=0.1)
    header = _header(csv_text(run.table))
    low, high = filter_range
    assert header["statistics_on"].startswith("the unfiltered relevance map"), header
    assert f"pass {low:.2f}–{high:.2f}" in header["statistics_on"] and "display" in header["statistics_on"]
    # independent oracle: the same statistics on the raw map equal the table's numbers
    raw = heatmap_region_table(run.raw_source[0], run.job.channels[0][1], atlas, min_overlap=0.1)
    np.testing.assert_allclose(run.table.set_index("name")["sum"], raw.set_index("name")["sum"], rtol=1e-6)
    # and read back from a CSV
    path = tmp_path / "t.csv"
    path.write_text(csv_text(run.table))
    assert read_csv(path).attrs["statistics_on"] == header["statistics_on"]


def test_region_header_without_a_filter(scene, tmp_path):
    loaded = load_model(tiny_card(tmp_path), device="cpu")
    run = RelevanceLogic(scene).run([scan_volume(scene)], loaded, atlas=halves_atlas(tmp_path), min_overlap=0.1)
    assert _header(csv_text(run.table))["statistics_on"] == "the relevance map (no filter)"


def test_an_empty_displayed_map_is_noted_in_the_export_and_the_panel(scene, views, tmp_path):
    from NeuroRelevanceLib import panel

    loaded = load_model(tiny_card(tmp_path), device="cpu")
    logic = RelevanceLogic(scene, views)
    run = logic.run([scan_volume(scene)], loaded, filter="pass", filter_range=(0.3, 0.3))
    assert np.any(run.raw_source[0]) and not np.any(mrml.volume_to_array(run.node)[0])  # nothing displayed
    with pytest.warns(UserWarning, match="empty"):
        out = logic.export(run.outputs[0], tmp_path / "out")
    assert any("empty" in note and "pass 0.30–0.30" in note for note in out.notes)
    assert "empty" in panel.result_summary(run)
    logic.refilter(run, "pass", (0.3, 1.0))
    assert "empty" not in panel.result_summary(run)
    out = logic.export(run.outputs[0], tmp_path / "out2")
    assert out.notes == []


def test_cli_explain_with_a_filter_that_keeps_nothing(capsys, batch_inputs, tmp_path):
    card, table = batch_inputs
    scan = list(pd.read_csv(table)["path"])[0]
    out = tmp_path / "out"
    code = main(["explain", scan, "--model", str(card), "--output", str(out), "--atlas", ATLAS,
                 "--min-overlap", str(MIN_OVERLAP), "--device", "cpu", "--filter", "pass",
                 "--filter-range", "0.3", "0.3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "empty" in captured.out and "0.30–0.30" in captured.out, captured.out
    sid = scan.split("/")[-1].split(".")[0]
    text = (out / "subjects" / sid / f"{sid}_regions_{ATLAS}.csv").read_text()
    assert _header(text)["statistics_on"].startswith("the unfiltered relevance map")
    assert any("empty" in note for note in json.loads((out / "summary.json").read_text())["notes"])


def test_regions_cli_on_exported_maps_says_which_map_it_counted(scene, views, tmp_path):
    loaded = load_model(tiny_card(tmp_path), device="cpu")
    logic = RelevanceLogic(scene, views)
    run = logic.run([scan_volume(scene)], loaded, filter="pass", filter_range=(0.3, 1.0))
    out = logic.export(run.outputs[0], tmp_path / "out", displayed=True)
    atlas = halves_atlas(tmp_path)
    said = {}
    for kind in ("heatmap", "heatmap_displayed"):
        csv = tmp_path / f"{kind}.csv"
        assert main(["regions", str(out.files[kind]), "--atlas", atlas, "--min-overlap", "0.1",
                     "--csv", str(csv)]) == 0
        said[kind] = read_csv(csv).attrs["statistics_on"]
    assert said["heatmap"].startswith("the unfiltered relevance map")
    assert said["heatmap_displayed"] == "the displayed map (pass 0.30–1.00)"
