"""Labelled PNGs stay readable at any size (trial 1, findings 15, 16, 17, 19).

- Colour-bar titles ran off the image ("red: raises the healthy contro") and tick labels overlapped the rotated
  unit label in 480-px exports: every text's box (matplotlib's own extents) must lie inside the image and overlap
  no other text, the bar or a view — for long target names and small and large renders — and the image's outer
  frame must be background on the pixels.
- The bar's ends looked like the map's maximum but were a robust window: when the map goes beyond the window the
  ends read "≥ +w" / "≤ -w" and a note names the window and the maximum.
- Near-zero relevance painted a white haze over the anatomy (threshold 0 by default): with the default display
  threshold, pixels where |R| is a few per cent of the window show the scan alone, in add_heatmap, runs and exports.
- The caption read "shown: displayed: pass 0.30–1.00".
"""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from NeuroRelevanceLib import mrml
from NeuroRelevanceLib.annotation import ColourBar, Tile, compose
from NeuroRelevanceLib.mrml.display import colormap_rgba, show_heatmap
from NeuroRelevanceLib.mrml.outputs import create_heatmap_volume
from reading_helpers import SCAN_GRID, right_hemisphere_map, scan_volume

LONG = "healthy control subjects of the validation cohort (pooled)"
LETTERS = dict(left="R", right="L", top="S", bottom="I")


def _overlap(a, b, tolerance: float = 0.5) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > tolerance and min(a[3], b[3]) - max(a[1], b[1]) > tolerance


def check_readable(pixels: np.ndarray, layout) -> None:
    """No text cut off at an edge or drawn over another text, the colour bar or a view."""
    height, width = pixels.shape[:2]
    assert layout.texts, "no text measured"
    for text, box in layout.texts:
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height, (text, box, (width, height))
    for (t1, b1), (t2, b2) in itertools.combinations(layout.texts, 2):
        assert not _overlap(b1, b2), f"{t1!r} {b1} overlaps {t2!r} {b2}"
    for text, box in layout.texts:
        for other in [layout.colour_bar, *layout.tiles]:
            assert other is None or not _overlap(box, other), f"{text!r} {box} is drawn over {other}"
    frame = np.concatenate([pixels[:2].reshape(-1, 4), pixels[-2:].reshape(-1, 4),
                            pixels[:, :2].reshape(-1, 4), pixels[:, -2:].reshape(-1, 4)])
    assert (frame[:, :3].max(-1) < 40).all(), "something is drawn at the image's edge (cut off)"


def bar(target: str, peak=None, window="99.5th percentile of nonzero |R|", note="|R| under 5% of the window is hidden",
        label="relevance (a.u.)") -> ColourBar:
    return ColourBar(colormap_rgba(0.05), -0.417, 0.417, label, f"red: raises the {target} score", "blue: lowers it",
                     note, peak=peak, window=window)


@pytest.mark.parametrize("size", [40, 64, 96, 256, 480])
@pytest.mark.parametrize("target", ["AD", "healthy control", LONG, "x" * 90])
@pytest.mark.parametrize("tiles", [1, 3])
def test_texts_stay_inside_and_apart_at_every_size(size, target, tiles):
    rng = np.random.default_rng(size)
    views = [Tile((rng.random((size, int(size * 1.2), 3)) * 255).astype(np.uint8), "Coronal", "P 16.0 mm", LETTERS)
             for _ in range(tiles)]
    caption = [f"Model ad_cnn (weights sha256 5c379bf351aa…) · LRP αβ (α=3, β=2); target {target}; filter: none · "
               "shown: raw relevance", "⚠ Model card 'ad_cnn' states no intended use and no limitations."]
    pixels, layout = compose(views, bar(target, peak=0.97), caption)
    check_readable(pixels, layout)


@pytest.mark.parametrize("label", ["relevance (a.u.)", "guided_gradcam attribution (a.u.)"])
def test_the_unit_label_fits_beside_the_bar_on_a_tiny_view(label):
    tile = Tile(np.zeros((32, 32, 3), np.uint8), "Axial", "S 0.0 mm", LETTERS)
    pixels, layout = compose([tile], bar("AD", label=label), [])
    check_readable(pixels, layout)
    unit = next(box for text, box in layout.texts if text == label)
    x0, y0, x1, y1 = layout.colour_bar
    assert unit[1] >= y0 - 1 and unit[3] <= y1 + 1, "the rotated unit label is longer than the bar"


def test_saturated_ends_say_so_and_the_note_names_the_window():
    tile = Tile(np.zeros((96, 96, 3), np.uint8), "Axial", "S 0.0 mm", LETTERS)
    _, layout = compose([tile], bar("AD", peak=0.97), [])
    texts = [text for text, _ in layout.texts]
    assert "≥ +0.417" in texts and "≤ -0.417" in texts
    note = " ".join(texts)
    assert "99.5th percentile" in note and "max 0.97" in note
    _, plain = compose([tile], bar("AD", peak=0.417), [])  # the window is the maximum: plain ends, no note
    texts = [text for text, _ in plain.texts]
    assert "+0.417" in texts and not any(t.startswith(("≥", "≤")) for t in texts)
    assert not any("max " in t for t in texts)


@pytest.fixture
def shown(scene, views):
    scan = scan_volume(scene)
    values = right_hemisphere_map()
    values.flat[np.argsort(values, axis=None)[-3:]] = 25.0  # three voxels far beyond the robust window
    heat = create_heatmap_volume(scene, scan, values, "LRP test", parameters={"preset": "alpha1-beta0"}, target=LONG)
    show_heatmap(scene, heat, opacity=1.0)
    return scan, heat


def test_a_real_view_with_a_long_target_reads_alone(scene, views, shown):
    _, heat = shown
    for names in (("Red",), ("Red", "Yellow", "Green")):
        pixels, layout = views.annotated(names)
        check_readable(pixels, layout)
    texts = [text for text, _ in layout.texts]
    window = heat.GetDisplayNode().GetWindowLevelMax()
    assert window < 25.0 and f"≥ +{window:.3g}" in texts, texts
    assert any("percentile" in t for t in texts) and any("max 25" in t for t in texts)


# ---- the default threshold: no haze over the anatomy ---------------------------------------------
def _haze_map(grid=SCAN_GRID) -> np.ndarray:
    """A strong blob on the patient's right and, everywhere else, a faint 2 % of it (what LRP leaves)."""
    values = np.clip(right_hemisphere_map(grid), 0, None)
    values[values == 0] = 0.02 * values.max()
    return values


def _tinted(pixels: np.ndarray, plain: np.ndarray, where: np.ndarray) -> float:
    """Share of ``where`` pixels whose colour differs from the scan alone."""
    diff = np.abs(pixels[..., :3].astype(int) - plain[..., :3].astype(int)).max(-1)
    return float((diff[where] > 8).mean())


def test_default_threshold_shows_the_anatomy_where_relevance_is_near_zero(scene, views):
    from NeuroRelevanceLib.logic import RelevanceLogic
    from NeuroRelevanceLib.windowing import DEFAULT_THRESHOLD

    scan = scan_volume(scene)
    for composite in mrml.display.composite_nodes(scene):
        composite.SetBackgroundVolumeID(scan.GetID())
    plain = views.rgba("Red")  # the scan alone
    brain = plain[..., :3].max(-1) > 30
    output = RelevanceLogic(scene, views).add_heatmap(scan, _haze_map(), "haze test", opacity=0.8)
    pixels = views.rgba("Red")
    assert float(output.node.GetDisplayNode().GetAttribute("NeuroRelevance.threshold")) == DEFAULT_THRESHOLD
    strong = np.zeros_like(brain)
    strong[:, : brain.shape[1] // 2 - 8] = True  # image left = patient right: the blob
    faint = brain & ~strong
    faint[:, : brain.shape[1] // 2 + 8] = False  # the patient's left: only the faint 2 %
    assert faint.sum() > 100 and _tinted(pixels, plain, faint) < 0.02, "near-zero relevance hazes the anatomy"
    assert _tinted(pixels, plain, strong & brain) > 0.3  # the blob itself is drawn


def test_runs_and_settings_start_from_the_same_threshold():
    import inspect

    from NeuroRelevanceLib import panel
    from NeuroRelevanceLib.jobs import Settings
    from NeuroRelevanceLib.logic import RelevanceLogic
    from NeuroRelevanceLib.windowing import DEFAULT_THRESHOLD

    assert 0 < DEFAULT_THRESHOLD < 0.2 and panel.DEFAULT_THRESHOLD == DEFAULT_THRESHOLD
    assert Settings().threshold == DEFAULT_THRESHOLD
    for function in (RelevanceLogic.add_heatmap, RelevanceLogic.refilter, show_heatmap,
                     mrml.display.diverging_color_table):
        assert inspect.signature(function).parameters["threshold"].default == DEFAULT_THRESHOLD, function


# ---- caption wording ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from NeuroRelevanceLib.models import load_model
    from reading_helpers import tiny_card

    return load_model(tiny_card(tmp_path_factory.mktemp("model")), device="cpu")


@pytest.mark.parametrize("kind", [None, "pass", "clamp"])
def test_the_caption_says_what_is_shown_once(scene, views, loaded, kind):
    from NeuroRelevanceLib.logic import RelevanceLogic

    logic = RelevanceLogic(scene, views)
    run = logic.run([scan_volume(scene)], loaded)
    logic.refilter(run, kind, (0.3, 1.0))
    lines = mrml.legend.caption_for(run.node)
    text = " ".join(lines)
    assert not re.search(r"\b\w+: \w+: ", text), text  # "shown: displayed: pass …"
    expected = "shown: raw relevance" if kind is None else f"shown: display filter {kind} 0.30–1.00"
    assert expected in text, text
