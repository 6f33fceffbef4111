"""Ground-truth scores: closed-form cases, an argsort oracle, torch/numpy agreement, bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from NeuroRelevanceLib.metrics.groundtruth import ground_truth_scores, rank_accuracy, relevance_mass_accuracy


def _half_mask(shape=(4, 5, 6)) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[: shape[0] // 2] = True
    return m


def test_heatmap_equal_to_mask_scores_one():
    m = _half_mask()
    assert relevance_mass_accuracy(m.astype(float), m) == 1.0
    assert rank_accuracy(m.astype(float), m) == 1.0


def test_disjoint_heatmap_scores_zero():
    m = _half_mask()
    r = (~m).astype(float) * np.linspace(1, 2, m.size).reshape(m.shape)
    assert relevance_mass_accuracy(r, m) == 0.0
    assert rank_accuracy(r, m) == 0.0


def test_partial_fractions_by_hand():
    # 10 voxels, mask = first 4; positive mass 5+4 inside, 4.5 outside; -100 outside is ignored
    r = np.array([5.0, 4.0, 0.0, 0.0, 4.5, 0.0, 0.0, 0.0, 0.0, -100.0])
    m = np.arange(10) < 4
    assert relevance_mass_accuracy(r, m) == pytest.approx(9.0 / 13.5)
    # top 4: 5, 4.5, 4 and one of the six voxels tied at 0 (two of them in the mask):
    # expected hits = 2 + 1 * 2/6
    assert rank_accuracy(r, m) == pytest.approx((2 + 2 / 6) / 4)


def test_constant_heatmap_ranks_like_chance():
    m = np.zeros((3, 4, 5), dtype=bool)
    m.flat[[1, 7, 8, 30, 59]] = True
    assert rank_accuracy(np.full(m.shape, 0.3), m) == pytest.approx(5 / 60)
    assert relevance_mass_accuracy(np.full(m.shape, 0.3), m) == pytest.approx(5 / 60)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 59))
def test_rank_accuracy_matches_argsort_without_ties(seed, k):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=60)
    m = np.zeros(60, dtype=bool)
    m[rng.choice(60, size=k, replace=False)] = True
    top = np.argsort(-r)[:k]
    assert rank_accuracy(r, m) == pytest.approx(m[top].mean())
    pos = np.clip(r, 0, None)
    if pos.sum() > 0:
        assert relevance_mass_accuracy(r, m) == pytest.approx(pos[m].sum() / pos.sum())


def test_torch_and_numpy_agree_and_inputs_untouched():
    rng = np.random.default_rng(1)
    r = rng.normal(size=(2, 6, 7, 8)).astype(np.float32)
    m = rng.random((6, 7, 8)) < 0.2
    r_copy, m_copy = r.copy(), m.copy()
    a = ground_truth_scores(r, m, channel_axis=0)
    b = ground_truth_scores(torch.from_numpy(r), torch.from_numpy(m), channel_axis=0)
    assert a == pytest.approx(b)
    assert a["mask_fraction"] == pytest.approx(m.mean())
    assert a["mass_accuracy"] == pytest.approx(relevance_mass_accuracy(r.sum(0), m))
    np.testing.assert_array_equal(r, r_copy)
    np.testing.assert_array_equal(m, m_copy)
    # 0/1 integer masks are accepted like booleans
    assert rank_accuracy(r.sum(0), m.astype(np.uint8)) == pytest.approx(a["rank_accuracy"])


@pytest.mark.parametrize("heatmap, mask, match", [
    (np.ones((4, 4)), np.ones((4, 5), bool), "shape"),
    (np.ones((2, 4, 4)), np.ones((4, 4), bool), "channel_axis"),
    (np.ones((4, 4)), np.zeros((4, 4), bool), "mask is empty"),
    (np.ones((4, 4)), np.full((4, 4), 2), "binary"),
    (np.full((4, 4), np.nan), np.ones((4, 4), bool), "NaN"),
])
def test_bad_inputs_raise_clear_errors(heatmap, mask, match):
    with pytest.raises(ValueError, match=match):
        ground_truth_scores(heatmap, mask)


def test_all_zero_or_negative_heatmaps_raise():
    m = _half_mask()
    with pytest.raises(ValueError, match="all zero"):
        rank_accuracy(np.zeros(m.shape), m)
    with pytest.raises(ValueError, match="no positive relevance"):
        relevance_mass_accuracy(-np.ones(m.shape), m)
    with pytest.raises(ValueError, match="channel_axis"):
        rank_accuracy(np.ones((2,) + m.shape), m, channel_axis=5)


def test_tolerance_grows_the_mask_by_a_ball():
    m = np.zeros((9, 9, 9), dtype=bool)
    m[3:6, 3:6, 3:6] = True
    shifted = np.roll(m, 1, axis=0).astype(float)     # right shape, one voxel off
    assert relevance_mass_accuracy(shifted, m) == pytest.approx(2 / 3)
    assert relevance_mass_accuracy(shifted, m, tolerance=1) == 1.0
    # grown mask: 81 voxels; top 81 = the 27 ones (all inside) + 54 of the 702 tied zeros,
    # of which 54 lie inside the grown mask
    assert rank_accuracy(shifted, m, tolerance=1) == pytest.approx((27 + 54 * 54 / 702) / 81)
    scores = ground_truth_scores(shifted, m, tolerance=1)
    assert scores["mask_fraction"] == pytest.approx((27 + 6 * 9) / 729)  # cube + 6 faces
    with pytest.raises(ValueError, match="tolerance"):
        ground_truth_scores(shifted, m, tolerance=-1)
