"""Region tables out: CSV round trip and a non-blank bar chart with region names on the axis."""
from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd

from NeuroRelevanceLib import region_statistics
from NeuroRelevanceLib.regions import Atlas, plot_top_regions, read_csv, write_csv

AFFINE = np.diag([1.5, 1.5, 1.5, 1.0])


def table(per_subject: bool = False, pool: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 9, size=(4, 4, 4)).repeat(3, 0).repeat(3, 1).repeat(3, 2)
    names = {i: f"Region {i}_{'L' if i % 2 else 'R'}" for i in range(1, 9)}
    atlas = Atlas(labels, AFFINE, names, name="blocks")
    group = [(rng.gamma(2.0, size=labels.shape), AFFINE) for _ in range(3)]
    reference = [(rng.gamma(1.0, size=labels.shape), AFFINE) for _ in range(2)]
    return region_statistics(group, atlas, reference=reference, per_subject=per_subject,
                             pool_hemispheres=pool, min_overlap=0)


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
    top_down = [name for _, name in sorted(zip(axes.get_yticks(), names), reverse=True)]
    assert top_down == stats.nlargest(5, "gain")["name"].tolist()  # largest at the top
    assert axes.get_xlabel() == "gain"


def test_plotting_leaves_pyplot_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    plot_top_regions(table(), tmp_path / "a.png", k=3)
    assert matplotlib.get_backend() == backend
