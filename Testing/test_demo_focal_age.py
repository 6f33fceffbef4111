"""Focal age pattern of the synthetic T1 cohort: a small prefrontal ball per hemisphere plus ventricle growth.

The brain-age demo network is trained on it so that its ground-truth mask is a few per cent of the brain
(5x chance reachable); these tests check the documented shares by counting, and that the AD-like effect
(what the AD network was trained on) does not change with the age pattern.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from NeuroRelevanceLib.demo.anatomy import load_anatomy
from NeuroRelevanceLib.demo.atrophy import AD_LABEL, AGE_GM_LABEL, VENTRICLE_LABEL, AtrophyParams
from NeuroRelevanceLib.demo.cohort import synthesize_subject
from NeuroRelevanceLib.demo.compact import COMPACT_GROUPS, FOCAL_AGE_SHARE, compact_map, focal_age_map

FOCAL = AtrophyParams(pattern="compact", age_pattern="focal")
ATLAS = "desikan-killiany"


def test_focal_balls_hold_the_documented_share_of_the_template_brain():
    anat = load_anatomy(ATLAS)
    focal = focal_age_map(ATLAS)
    n_brain = int(anat.brain.sum())
    per_ball = round(FOCAL_AGE_SHARE * n_brain)
    parts, n = ndi.label(focal)
    assert n == 2                                          # one solid ball per hemisphere
    sizes = np.bincount(parts.ravel())[1:]
    assert (sizes >= per_ball).all() and (sizes <= per_ball * 1.02).all(), (sizes, per_ball)  # ties only
    assert not (focal & ~anat.brain).any()
    # in the prefrontal group (superior, rostral and caudal middle frontal), one per side, away from the AD balls
    group = COMPACT_GROUPS[ATLAS][AGE_GM_LABEL][0]
    frontal = np.isin(anat.labels, anat.region_ids(group))
    m = anat.grid.ijk_to_ras
    for k in (1, 2):
        ball = parts == k
        assert frontal[ball].mean() > 0.3                 # mostly frontal cortex and its white matter
        x, y, _ = m[:3, :3] @ np.asarray(ndi.center_of_mass(ball))[::-1] + m[:3, 3]   # (k, j, i) -> RAS
        assert abs(x) > 10 and y > 0                      # off the midline, anterior to the central sulcus
    assert not (focal & (compact_map(ATLAS) == AD_LABEL)).any()


@pytest.fixture(scope="module")
def subjects():
    kw = dict(spacing=4.0, seed=0, skull_strip=True)
    return {"focal": synthesize_subject(5, 90.0, "AD", params=FOCAL, **kw),
            "twin": synthesize_subject(5, 90.0, "AD", params=FOCAL, effects=False, **kw),
            "default": synthesize_subject(5, 90.0, "AD", params=AtrophyParams(pattern="compact"), **kw)}


def test_focal_age_mask_share_on_a_small_grid(subjects):
    s = subjects["focal"]
    brain = s.brain
    age_gm = (s.atrophy == AGE_GM_LABEL) & brain
    # two balls of FOCAL_AGE_SHARE each, sampled at 4 mm through the subject's deformation
    assert age_gm.sum() / brain.sum() == pytest.approx(2 * FOCAL_AGE_SHARE, rel=0.25)
    assert ndi.label(age_gm)[1] == 2
    # the whole age mask (grey matter + ventricle shell) at the oldest age: a few per cent of the brain,
    # against 16 % (controls >= 50) to 20 % (age 90) for the frontoparietal default
    age_mask = np.isin(s.atrophy, (AGE_GM_LABEL, VENTRICLE_LABEL)) & brain
    default_mask = np.isin(subjects["default"].atrophy, (AGE_GM_LABEL, VENTRICLE_LABEL)) & brain
    assert 0.03 < age_mask.sum() / brain.sum() < 0.07
    assert default_mask.sum() > 2.5 * age_mask.sum()


def test_focal_age_changes_only_its_mask_and_keeps_the_ad_effect(subjects):
    s, twin, default = subjects["focal"], subjects["twin"], subjects["default"]
    changed = s.image != twin.image
    assert not (changed & (s.atrophy == 0)).any()          # outside the labels: the effect-free twin
    assert (s.image <= twin.image + 1e-6).all()            # atrophy only darkens
    ad = s.atrophy == AD_LABEL
    np.testing.assert_array_equal(ad, default.atrophy == AD_LABEL)
    np.testing.assert_array_equal(s.image[ad], default.image[ad])   # the AD-like effect is untouched
    assert np.array_equal(s.info["age_gm_loss"], default.info["age_gm_loss"])


def test_unknown_age_pattern_refused():
    with pytest.raises(ValueError, match="age_pattern='diffuse'"):
        AtrophyParams(age_pattern="diffuse")
