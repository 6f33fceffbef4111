"""Rank selection (seed 003 Algorithm 1): scree data against numpy's SVD, elbow, true R1 found."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from NeuroRelevanceLib.cohort import elbow, rank_grid, scree
from NeuroRelevanceLib.cohort.scree import singular_values
from NeuroRelevanceLib.cohort.synthetic import synthetic_tensor
from NeuroRelevanceLib.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_scree_equals_numpy_svd_of_unfoldings():
    a = np.random.default_rng(1).random((9, 5, 40))
    s = scree(torch.as_tensor(a), k=4)
    for mode in range(3):
        unf = np.moveaxis(a, mode, 0).reshape(a.shape[mode], -1)
        ref = np.linalg.svd(unf, compute_uv=False)[:4]
        np.testing.assert_allclose(s[f"mode{mode + 1}"], ref, rtol=1e-8)
    # the randomized path (large modes) agrees on the leading values of a low-rank tensor
    syn = synthetic_tensor(n=20, c=6, layer_shape=(10, 10, 12), r1=3, r2=2, noise=0.0, seed=2).tensor
    unf = np.moveaxis(syn, 2, 0).reshape(syn.shape[2], -1)
    ref = np.linalg.svd(unf, compute_uv=False)[:3]
    got = singular_values(torch.as_tensor(syn), 2, k=3, gram_limit=100).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_elbow_of_hand_made_curves():
    assert elbow([2, 3, 4, 5, 6, 7], [1.0, 0.6, 0.2, 0.18, 0.17, 0.16]) == 4
    assert elbow([1, 2, 3, 4, 5], [0.9, 0.3, 0.25, 0.24, 0.23]) == 2


def test_algorithm_1_picks_true_r1():
    syn = synthetic_tensor(n=60, c=12, layer_shape=(8, 10, 5), r1=4, r2=3, noise=0.05, seed=0)
    grid = rank_grid(syn.tensor[:40], syn.tensor[40:], r1_values=range(2, 7), r2_values=[3],
                     n_iter_max=50, tol=1e-6, device="cpu")
    print("E_val:\n", np.round(grid.e_val, 4), "\nsuggested:", grid.suggested)
    assert grid.suggested[0] == 4
    assert grid.e_val.shape == (5, 1) and np.all(np.isfinite(grid.e_val))
    # validation error at the true rank sits at the noise level, far below R1 = 2
    assert grid.e_val[2, 0] < 0.5 * grid.e_val[0, 0]
    assert len(grid.to_rows()) == 5


def test_grid_rejects_r1_above_training_subjects():
    a = np.random.default_rng(0).random((4, 3, 10))
    with pytest.raises(InputError, match="training subjects"):
        rank_grid(a, a, r1_values=[2, 6], r2_values=[2], device="cpu")


def test_randomized_scree_uses_its_own_generator_and_matches_numpy(monkeypatch):
    """Trial 2: the randomized path seeded torch's global generator (torch.manual_seed), which changes the
    user's process state and is not safe beside other threads. It must use a local torch.Generator."""
    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("the global torch RNG was seeded")

    monkeypatch.setattr(torch, "manual_seed", refuse)
    monkeypatch.setattr(torch.random, "manual_seed", refuse)
    rng = np.random.default_rng(3)
    low_rank = rng.random((60, 6)) @ rng.random((6, 40))  # rank 6 < 14 probes: the range finder is exact
    a = torch.as_tensor(low_rank.reshape(12, 5, 40), dtype=torch.float64)
    before = torch.get_rng_state().clone()
    values = singular_values(a, 2, k=4, seed=7, gram_limit=1)  # force the randomized path
    assert torch.equal(torch.get_rng_state(), before)
    expected = np.linalg.svd(np.moveaxis(a.numpy(), 2, 0).reshape(40, -1), compute_uv=False)[:4]
    assert np.allclose(values.numpy(), expected, rtol=1e-8)
    assert torch.equal(values, singular_values(a, 2, k=4, seed=7, gram_limit=1))  # seeded: repeatable
