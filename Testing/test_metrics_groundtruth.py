"""Ground-truth scores against closed forms, an independent AUC, and chance by Monte Carlo."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from NeuroRelevanceLib.metrics.groundtruth import GroundTruth, oracle_maps
from NeuroRelevanceLib.metrics.groundtruth_report import fraction_of_ceiling, ground_truth_report, oracle_name


def _scene(seed: int = 0):
    """A 20³ grid: a brain ball, a 3×3×4 mask inside it, a 4-region atlas (two regions all mask)."""
    g = np.indices((20, 20, 20)) - 9.5
    brain = (g**2).sum(0) < 9.0**2
    mask = np.zeros(brain.shape, bool)
    mask[8:11, 8:11, 6:10] = True
    atlas = np.zeros(brain.shape, np.int16)
    atlas[8:11, 8:11, 6:8], atlas[8:11, 8:11, 8:10] = 1, 2   # true regions (inside the mask)
    atlas[2:6, 8:12, 8:12], atlas[14:18, 8:12, 8:12] = 3, 4  # false regions
    return mask, brain, atlas


def test_the_mask_itself_scores_one_on_every_score():
    mask, brain, atlas = _scene()
    s = GroundTruth(mask, brain=brain, atlas=atlas).score(mask.astype(float))
    for key in ("mass_accuracy", "mass_accuracy_1vox", "rank_accuracy", "auc_brain", "pointing_1vox",
                "region_precision"):
        assert s[key] == pytest.approx(1.0), key
    assert s["outside_share"] == 0.0


def test_a_constant_map_scores_chance_exactly():
    mask, brain, atlas = _scene()
    truth = GroundTruth(mask, brain=brain, atlas=atlas)
    s, chance = truth.score(np.ones(mask.shape)), truth.chance()
    n_brain = brain.sum()
    assert chance["mass_accuracy"] == pytest.approx(mask.sum() / n_brain)   # share of the brain,
    assert chance["mass_accuracy"] > mask.sum() / mask.size                 # not of the grid
    assert chance["region_precision"] == 0.5 and chance["auc_brain"] == 0.5
    for key in ("mass_accuracy", "mass_accuracy_1vox", "rank_accuracy", "auc_brain", "pointing_1vox",
                "region_precision"):
        assert s[key] == pytest.approx(chance[key]), key


def test_chance_is_what_random_maps_score_on_average():
    """Finding: the README printed the mask's share of the grid as chance; random maps in the brain
    score its share of the brain."""
    mask, brain, atlas = _scene()
    truth = GroundTruth(mask, brain=brain, atlas=atlas)
    rng = np.random.default_rng(0)
    draws = pd.DataFrame([truth.score(rng.random(mask.shape) * brain) for _ in range(300)])
    chance = truth.chance()
    for key in ("mass_accuracy", "mass_accuracy_1vox", "rank_accuracy", "auc_brain", "pointing_1vox",
                "region_precision"):   # within 4 standard errors of the Monte-Carlo mean
        tolerance = 4 * draws[key].std() / np.sqrt(len(draws)) + 1e-3
        assert draws[key].mean() == pytest.approx(chance[key], abs=tolerance), key
    assert chance["mass_accuracy"] > 1.5 * mask.mean()   # the brain's share, far from the grid's


def test_auc_matches_scikit_learn_inside_the_brain():
    mask, brain, _ = _scene()
    rng = np.random.default_rng(1)
    heat = rng.normal(size=mask.shape) + 0.7 * mask
    heat[::3] = np.round(heat[::3], 1)   # ties
    s = GroundTruth(mask, brain=brain).score(heat)
    assert s["auc_brain"] == pytest.approx(roc_auc_score(mask[brain], heat[brain]), abs=1e-12)


def test_blurred_single_voxel_closed_form():
    """Oracle sigma=1 of a one-voxel mask: mass = k0³, within one voxel k0³ + 6 k0² k1, where
    k is scipy's normalised Gaussian kernel truncated at 4 sigma."""
    mask = np.zeros((15, 15, 15), bool)
    mask[7, 7, 7] = True
    x = np.arange(-4, 5)
    k = np.exp(-x**2 / 2) / np.exp(-x**2 / 2).sum()
    k0, k1 = k[4], k[5]
    blurred = oracle_maps(mask.astype(float), (1.0,))[1.0]
    s = GroundTruth(mask).score(blurred)
    assert s["mass_accuracy"] == pytest.approx(k0**3, rel=1e-9)
    assert s["mass_accuracy_1vox"] == pytest.approx(k0**3 + 6 * k0**2 * k1, rel=1e-9)
    assert s["pointing_1vox"] == 1.0 and s["rank_accuracy"] == 1.0


def test_pointing_shares_tied_maxima_and_region_precision_by_hand():
    mask, brain, atlas = _scene()
    heat = np.zeros(mask.shape)
    heat[9, 9, 7] = heat[3, 9, 9] = 5.0            # one peak in the mask, one far from it
    truth = GroundTruth(mask, brain=brain, atlas=atlas)
    assert truth.score(heat)["pointing_1vox"] == 0.5
    heat = np.zeros(mask.shape)
    heat[atlas == 1], heat[atlas == 3], heat[atlas == 4] = 1.0, 3.0, 0.5   # densest: 3, 1, 4, 2
    assert truth.score(heat)["region_precision"] == 0.5   # top 2 = {3, 1}: one of two is true


def test_relevance_outside_the_brain_is_reported_not_hidden():
    mask, brain, _ = _scene()
    heat = mask.astype(float)
    heat[0, 0, 0] = 3.0                     # the scalp corner
    s = GroundTruth(mask, brain=brain).score(heat)
    assert s["mass_accuracy"] == 1.0 and s["outside_share"] == pytest.approx(3.0 / (mask.sum() + 3))
    whole = GroundTruth(mask).score(heat)   # no brain mask: the whole grid is the domain
    assert whole["mass_accuracy"] == pytest.approx(mask.sum() / (mask.sum() + 3.0))


def test_report_puts_methods_beside_oracle_and_chance():
    mask, brain, atlas = _scene()
    rng = np.random.default_rng(2)
    change = -0.3 * mask * rng.uniform(0.5, 1.0, mask.shape)   # the subject minus its twin
    maps = {"good": [np.abs(change) + 0.01 * rng.random(mask.shape)] * 2,
            "noise": [rng.random(mask.shape), rng.random(mask.shape)]}
    report = ground_truth_report(maps, [mask, mask], brains=[brain, brain], changes=[change, change],
                                 atlases=[atlas, atlas])
    t = report.table
    assert list(t.index) == ["good", "noise", oracle_name(0), oracle_name(1), oracle_name(2), "chance"]
    assert t.loc[oracle_name(0), "mass_accuracy"] == pytest.approx(1.0)
    scores = [c for c in t.columns if c != "outside_share"]
    assert (t.loc[oracle_name(0), scores] >= t.loc[oracle_name(2), scores] - 1e-12).all()  # blur: no help
    assert t.loc["chance", "auc_brain"] == 0.5
    frac = fraction_of_ceiling(t, 1.0)
    assert frac.loc["good", "mass_accuracy"] == pytest.approx(
        t.loc["good", "mass_accuracy"] / t.loc[oracle_name(1), "mass_accuracy"])
    assert t.loc["noise", "auc_brain"] == pytest.approx(0.5, abs=0.1)
    assert "| good |" in report.markdown() and not report.notes
    no_change = ground_truth_report(maps, [mask, mask])
    assert "mask itself" in no_change.notes[0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(mask=np.zeros((4, 4), bool)), "mask is empty"),
    (dict(brain=np.zeros((4, 4), bool)), "brain mask is empty"),
    (dict(atlas=np.ones((4, 4), float)), "integer label map"),
    (dict(tolerance=-1), "tolerance"),
])
def test_bad_ground_truth_refused(kwargs, match):
    args = dict(mask=np.eye(4, dtype=bool))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        GroundTruth(args.pop("mask"), **args)
    with pytest.raises(ValueError, match="all zero"):
        oracle_maps(np.zeros((3, 3)))
