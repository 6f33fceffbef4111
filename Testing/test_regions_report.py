"""Region tables out: CSV round trip and a non-blank bar chart with region names on the axis."""
from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd

from NeuroRelevanceLib import region_statistics
from NeuroRelevanceLib.regions import plot_top_regions, read_csv, write_csv
from volumes import atlas_ijk, kji

AFFINE = np.diag([1.5, 1.5, 1.5, 1.0])


def table(per_subject: bool = False, pool: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 9, size=(4, 4, 4)).repeat(3, 0).repeat(3, 1).repeat(3, 2)
    names = {i: f"Region {i}_{'L' if i % 2 else 'R'}" for i in range(1, 9)}
    atlas = atlas_ijk(labels, AFFINE, names, name="blocks")
    group = [kji(rng.gamma(2.0, size=labels.shape), AFFINE) for _ in range(3)]
    reference = [kji(rng.gamma(1.0, size=labels.shape), AFFINE) for _ in range(2)]
    return region_statistics(group, atlas, reference=reference, per_subject=per_subject,
                             pool_hemispheres=pool, min_overlap=0, min_region_voxels=0, min_region_mm3=0)


def test_csv_round_trip_is_exact(tmp_path):
    for original in (table(), table(per_subject=True), table(pool=True)):
        path = write_csv(original, tmp_path / "regions.csv")
        back = read_csv(path)
        pd.testing.assert_frame_equal(back, original, check_dtype=False, check_exact=True)


def test_bar_chart_png_shows_the_top_regions_by_name(tmp_path):
    stats = table()
    path = tmp_path / "top.png"
    figure = plot_top_regions(stats, path, metric="gain", k=5)
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 300
    assert np.ptp(pixels[..., :3]) > 0.5 and (pixels[..., :3] < 0.9).mean() > 0.02  # not blank
    axes = figure.axes[0]
    names = [label.get_text() for label in axes.get_yticklabels()]
    top_down = [name for _, name in sorted(zip(axes.get_yticks(), names, strict=True), reverse=True)]
    assert top_down == stats.nlargest(5, "gain")["name"].tolist()  # largest at the top
    assert axes.get_xlabel() == "gain"


def test_plotting_leaves_pyplot_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    plot_top_regions(table(), tmp_path / "a.png", k=3)
    assert matplotlib.get_backend() == backend


RECORD = {"software": "NeuroRelevance 0.1.0", "label": "LRP αβ (α=3, β=2)", "method": "lrp",
          "preset": "alpha1-beta0", "rule_parameters": {"alpha": 3.0, "beta": 2.0},
          "target": {"requested": "AD", "index": 1, "label": "AD"}, "prediction": "AD (p = 0.9)",
          "filter": {"type": None, "range": [0.0, 1.0], "placement": "input"},
          "regions": {"atlas": "blocks", "grid": "scan"},
          "grid": {"scan": {"shape_kji": [12, 12, 12], "spacing_mm": [1.5, 1.5, 1.5]}},
          "model": {"name": "tiny", "weights_sha256": "ab" * 32, "intended_use": "Unit tests.",
                    "limitations": "Synthetic-data demo, not for clinical use.", "use_warning": ""}}


def test_csv_header_names_atlas_grid_minimum_size_and_provenance(tmp_path):
    stats = table()
    stats.attrs["provenance"] = RECORD
    path = write_csv(stats, tmp_path / "regions.csv")
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    text = "\n".join(header)
    for word in ("atlas: blocks", "grid: 12×12×12 voxels of 1.5×1.5×1.5 mm", "min_region_voxels: 0",
                 "LRP αβ (α=3, β=2)", "target AD", "not for clinical use", "NeuroRelevance 0.1.0"):
        assert word in text, word
    back = read_csv(path)
    pd.testing.assert_frame_equal(back, stats, check_dtype=False, check_exact=True)
    assert back.attrs["provenance"] == RECORD and back.attrs["atlas"] == "blocks"
    assert pd.read_csv(path, comment="#").shape == stats.shape  # any CSV reader that skips '#' lines
    from NeuroRelevanceLib.regions import csv_text

    assert csv_text(stats) == path.read_text()


def test_bar_chart_caption_names_the_run_and_skips_unranked_regions(tmp_path):
    stats = table()
    stats.attrs["provenance"] = RECORD
    stats.loc[0, "ranked"] = False  # the densest region, too small to rank
    figure = plot_top_regions(stats, tmp_path / "top.png", k=5)
    names = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert stats.loc[0, "name"] not in names and len(names) == 5
    texts = " ".join(t.get_text() for t in figure.texts) + figure.axes[0].get_title()
    for word in ("tiny", "α=3", "target AD", "blocks", "12×12×12", "not for clinical use"):
        assert word in texts, word
    pixels = mpimg.imread(tmp_path / "top.png")
    axes_bottom = figure.axes[0].get_position().y0  # figure fraction; the caption lies below the axes
    caption_rows = pixels[int((1 - axes_bottom / 2) * pixels.shape[0]):]
    assert (caption_rows[..., :3] < 0.5).any()  # dark caption text is drawn there
