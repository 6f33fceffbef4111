"""Inclusivity coefficients D(a, b) = |a ∩ b| / (|b| + c) on hand-made masks (seed 001)."""
import numpy as np
import pytest
import torch

from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.metrics import binarise, ground_truth_inclusivity, inclusivity, input_inclusivity


def test_closed_forms():
    a = np.array([0.05, 0.5, 1.0, -0.9, 0.0])          # |a| / max|a| > 0.1 -> [F, T, T, T, F]
    b = np.array([1, 1, 0, 1, 0])
    assert binarise(a, 0.1, relative=True).tolist() == [False, True, True, True, False]
    assert inclusivity(a, b) == pytest.approx(2 / 3)
    assert inclusivity(a, b, smoothing=1.0) == pytest.approx(2 / 4)
    assert inclusivity(a, b, threshold_a=0.6) == pytest.approx(1 / 3)      # keeps 1.0 and -0.9: only -0.9 in b
    assert inclusivity(a, b, threshold_a=0.02, relative_a=False) == pytest.approx(1.0)   # b ⊆ a
    assert inclusivity(a, np.zeros(5), smoothing=0.5) == 0.0


def test_scale_invariance_and_reference_threshold():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(6, 7, 8))
    brain = rng.uniform(0, 100, size=(6, 7, 8))
    d = input_inclusivity(r, brain, threshold_b=50.0)
    assert input_inclusivity(1e6 * r, brain, threshold_b=50.0) == pytest.approx(d)
    a, b = np.abs(r) / np.abs(r).max() > 0.1, brain > 50
    assert d == pytest.approx((a & b).sum() / b.sum())
    lesion = torch.zeros(6, 7, 8)
    lesion[2:4, 2:4, 2:4] = 1
    assert ground_truth_inclusivity(torch.from_numpy(r), lesion) == pytest.approx(a[2:4, 2:4, 2:4].mean())


def test_bad_inputs():
    with pytest.raises(InputError, match="same grid"):
        inclusivity(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(InputError, match="empty after binarisation.*smoothing"):
        inclusivity(np.ones(4), np.zeros(4))
    with pytest.raises(InputError, match="NaN"):
        inclusivity(np.array([np.nan, 1.0]), np.ones(2))


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
def test_clamp_then_relative_binarisation_is_the_raw_map_at_a_lower_threshold(alpha):
    """Seed 001's clamp C[0, α] followed by the relative 0.1 binarisation keeps exactly the voxels with
    |R| > 0.1·α·max|R|: a lower threshold, not a better map (which is why compare reports inclusivity
    beside the threshold-free mass accuracy and AUC)."""
    import torch

    from NeuroRelevanceLib.explanation.filters import apply_filter

    rng = np.random.default_rng(3)
    r = rng.standard_cauchy((12, 12, 12))             # heavy tails: a few peaks, like relevance
    lesion = np.zeros(r.shape, bool)
    lesion[3:6, 3:6, 3:6] = True
    r[lesion] += 2.0
    clamped = apply_filter(torch.from_numpy(r)[None], "clamp", (0.0, alpha))[0].numpy()
    assert inclusivity(clamped, lesion) == inclusivity(r, lesion, threshold_a=0.1 * alpha)
    assert inclusivity(clamped, lesion) >= inclusivity(r, lesion)        # the "gain" of the filter
    assert binarise(clamped, 0.1, relative=True).sum() > binarise(r, 0.1, relative=True).sum()
