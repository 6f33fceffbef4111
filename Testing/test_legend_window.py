"""The colour legend in Slicer's and the web viewer's slice views marks a saturated end (trial 2, finding 3).

The web viewer's legend (MRML's colour legend display node, drawn in the views) read the display window's
end (0.00011) while the map reached 0.00025, with no "≥" and no word that the end is the display window; the
PNG colour bars had both. The legend must say so whenever the map goes beyond the window, and only then.
"""
from __future__ import annotations

import numpy as np
import pytest

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.geometry import Grid
from NeuroRelevanceLib.mrml.display import show_heatmap
from NeuroRelevanceLib.mrml.legend import show_color_legend


@pytest.fixture
def heatmap(scene):
    values = np.zeros((6, 7, 8), np.float32)
    values[2, 3, 4], values[3, 3, 3], values[1, 2, 2] = 2.5e-4, 0.8e-4, -1.2e-4
    return mrml.array_to_volume(scene, values, Grid.from_parts((6, 7, 8), (2.0, 2.0, 2.0), (0, 0, 0), np.eye(3)),
                                "heat")


@pytest.mark.parametrize("positive_only", [False, True])
def test_a_window_below_the_map_maximum_is_marked_on_the_legend(scene, heatmap, positive_only):
    show_heatmap(scene, heatmap, window=1.1e-4, positive_only=positive_only, window_source="99.5th percentile")
    title = show_color_legend(scene, heatmap).GetTitleText()
    assert "≥" in title and "display window" in title, title
    assert "\n" not in title, title  # one line: a two-line title's layout lagged a render in the web views
    assert ("≤" in title) != positive_only, title


def test_a_window_that_holds_the_whole_map_is_not_marked(scene, heatmap):
    show_heatmap(scene, heatmap, window=3e-4)
    title = show_color_legend(scene, heatmap).GetTitleText()
    assert "≥" not in title and "window" not in title, title
