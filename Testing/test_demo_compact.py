"""Compact-atrophy variant and skull stripping of the synthetic T1 cohort."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from NeuroRelevanceLib.demo.atrophy import AD_LABEL, AGE_GM_LABEL, AtrophyParams
from NeuroRelevanceLib.demo.cohort import generate_cohort, load_cohort, synthesize_subject
from NeuroRelevanceLib.demo.compact import equal_volume_ball

COMPACT = AtrophyParams(pattern="compact")


def _boundary_share(mask: np.ndarray) -> float:
    """Share of the mask's voxels with a face neighbour outside it."""
    return float((mask & ~ndi.binary_erosion(mask)).sum() / mask.sum())


@pytest.fixture(scope="module")
def pair():
    ribbon = synthesize_subject(3, 80.0, "AD", spacing=3.0, seed=1)
    compact = synthesize_subject(3, 80.0, "AD", spacing=3.0, seed=1, params=COMPACT)
    return ribbon, compact


def test_compact_keeps_the_volume_and_the_place_but_not_the_shape(pair):
    ribbon, compact = pair
    for label in (AD_LABEL, AGE_GM_LABEL):
        r, c = label == ribbon.atrophy.T, label == compact.atrophy.T   # (i, j, k): axis 0 runs left-right
        assert 0.75 < c.sum() / r.sum() < 1.3, (label, c.sum(), r.sum())
        # the same lobes: centroids within 15 mm per hemisphere
        for side in (slice(None, r.shape[0] // 2), slice(r.shape[0] // 2, None)):
            cr, cc = (np.array(ndi.center_of_mass(m[side])) for m in (r, c))
            assert np.linalg.norm((cr - cc) * 3.0) < 15.0
        # solid: most ribbon voxels touch the outside (0.89-0.95 at 3 mm), few ball voxels do
        assert _boundary_share(r) > 0.8 and _boundary_share(c) < 0.5 * _boundary_share(r)
        assert ndi.label(c)[1] < ndi.label(r)[1]


def test_compact_changes_only_inside_its_mask_and_darkens(pair):
    _, compact = pair
    twin = synthesize_subject(3, 80.0, "control", spacing=3.0, seed=1, params=COMPACT)
    diff = compact.image - twin.image
    ad = compact.atrophy == AD_LABEL
    assert np.count_nonzero(diff[~ad]) == 0
    assert diff[ad].max() <= 1e-6 and diff[ad].mean() < -0.15
    assert np.count_nonzero(diff[ad]) > 0.9 * ad.sum()  # all tissue changes, not only grey matter


def test_skull_strip_zeroes_outside_the_brain_only():
    kept = synthesize_subject(2, 60.0, "AD", spacing=4.0, seed=0)
    stripped = synthesize_subject(2, 60.0, "AD", spacing=4.0, seed=0, skull_strip=True)
    assert (np.abs(kept.image[~kept.brain]) > 0.05).sum() > 1000   # the default keeps the scalp
    assert not stripped.image[~stripped.brain].any()
    np.testing.assert_array_equal(stripped.image[stripped.brain], kept.image[kept.brain])


def test_equal_volume_ball_closed_form():
    brain = np.ones((21, 21, 21), bool)
    ball = equal_volume_ball(brain, np.array([10.0, 10.0, 10.0]), 7)
    assert ball.sum() == 7 and ball[10, 10, 10] and ball[9, 10, 10] and ball[10, 10, 11]
    brain[:, :, :10] = False   # only brain voxels count
    half = equal_volume_ball(brain, np.array([10.0, 10.0, 10.0]), 5)   # ties at the radius kept
    assert half.sum() == 6 and not half[:, :, :10].any()


def test_unknown_pattern_refused():
    with pytest.raises(ValueError, match="pattern='blob'"):
        AtrophyParams(pattern="blob")


def test_held_out_indices_and_twins_on_disk(tmp_path):
    table = generate_cohort(tmp_path, 10, spacing=4.0, seed=0, indices=[8, 9], twins="ad",
                            params=COMPACT, skull_strip=True)
    assert list(table["index"]) == [8, 9]
    files = load_cohort(tmp_path)
    import nibabel as nib

    for row in files.itertuples():
        s = synthesize_subject(row.index, row.age, row.diagnosis, spacing=4.0, seed=0,
                               params=COMPACT, skull_strip=True)
        img = np.asanyarray(nib.load(row.image).dataobj)
        twin = np.asanyarray(nib.load(row.twin).dataobj)
        np.testing.assert_array_equal(img, s.image.transpose(2, 1, 0))
        changed = img != twin
        assert (changed <= (s.atrophy.T == AD_LABEL)).all()
        assert changed.any() == (row.diagnosis == "AD")
    with pytest.raises(ValueError, match="outside the cohort"):
        generate_cohort(tmp_path / "x", 10, indices=[10])
