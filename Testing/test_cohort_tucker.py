"""Constrained non-negative Tucker (seed 003, eq. 2): recovery, exact constraints, monotone error,
closed-form oracles (masked core gradient, NNLS loadings) and tensorly's plain NTD beside it."""
from __future__ import annotations

import numpy as np
import pytest
import tensorly as tl
import torch
from scipy.optimize import nnls

from NeuroRelevanceLib.cohort import constrained_nn_tucker, relative_error, solve_loadings
from NeuroRelevanceLib.cohort.synthetic import best_match_cosine, synthetic_tensor
from NeuroRelevanceLib.cohort.tucker import _core_step
from NeuroRelevanceLib.errors import InputError


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: thread start-up dominates on a shared machine
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def synth():
    return synthetic_tensor(n=60, c=12, layer_shape=(8, 10, 5), r1=4, r2=3, noise=0.05, seed=0)


@pytest.fixture(scope="module")
def fit(synth):
    return constrained_nn_tucker(synth.tensor, (4, 3), n_iter_max=150, tol=1e-7, device="cpu", seed=0)


def test_recovers_spatial_factors(synth, fit):
    cos = best_match_cosine(synth.u3, fit.factors[2].numpy())
    print(f"mean best-match cosine of spatial factors: {cos:.4f}")
    assert cos >= 0.95
    # the one-to-one pairing holds too: subject loadings match the true ones of the same component
    assert best_match_cosine(synth.u1, fit.factors[0].numpy()) >= 0.95
    noise_floor = 0.05 * synth.tensor.std() * np.sqrt(synth.tensor.size) / np.linalg.norm(synth.tensor)
    assert fit.errors[-1] <= 1.05 * noise_floor


def test_constraints_hold_exactly(fit):
    core = fit.core.numpy()
    r1, r2, _ = core.shape
    off = np.ones((r1, r2, r1), bool)
    off[np.arange(r1), :, np.arange(r1)] = False
    assert np.all(core[off] == 0.0)
    assert np.all(core >= 0.0)
    assert np.all(fit.factors[2].numpy() >= 0.0)
    assert np.all(fit.factors[0].numpy() >= 0.0) and np.all(fit.factors[1].numpy() >= 0.0)


def test_error_never_increases_and_matches_exact(synth, fit):
    e = np.asarray(fit.errors)
    assert np.all(np.diff(e) <= 1e-10), np.max(np.diff(e))
    # the cheap per-sweep error equals the explicit residual ‖A − G×U‖/‖A‖ (tensorly reconstruction)
    full = fit.to_tensor().numpy()
    exact = np.linalg.norm(synth.tensor - full) / np.linalg.norm(synth.tensor)
    assert exact == pytest.approx(e[-1], rel=1e-8)
    assert relative_error(synth.tensor, fit) == pytest.approx(exact, rel=1e-10)


def test_error_monotone_with_free_loadings_and_random_init(synth):
    f = constrained_nn_tucker(synth.tensor, (3, 2), n_iter_max=40, tol=0, device="cpu",
                              nonneg_loadings=False, init="random", seed=3)
    assert np.all(np.diff(f.errors) <= 1e-10)
    assert np.all(f.factors[2].numpy() >= 0) and np.all(f.diagonal_faces.numpy() >= 0)


def test_sparsity_makes_spatial_factors_sparser(synth, fit):
    lam = 0.05 * float(np.linalg.norm(synth.tensor, axis=(0, 1)).mean())
    sparse = constrained_nn_tucker(synth.tensor, (4, 3), n_iter_max=150, tol=1e-7, device="cpu",
                                   sparsity=lam)
    zeros = lambda f: float(np.mean(f.factors[2].numpy() <= 1e-12))  # noqa: E731
    assert zeros(sparse) > zeros(fit)
    assert len(sparse.objective) == sparse.n_iter
    assert np.all(sparse.factors[2].numpy() >= 0)


def test_core_step_equals_masked_full_core_gradient(synth, fit):
    """Oracle: the diagonal-face gradient P H Q − C equals tensorly's full-core gradient
    G ×1 U1ᵀU1 ×2 U2ᵀU2 ×3 U3ᵀU3 − A ×1 U1ᵀ ×2 U2ᵀ ×3 U3ᵀ read at G[i, :, i]."""
    a = torch.as_tensor(synth.tensor)
    u1, u2, u3 = fit.factors
    h = fit.diagonal_faces
    with tl.backend_context("pytorch", local_threadsafe=True):
        grams = [f.T @ f for f in fit.factors]
        full = tl.tenalg.multi_mode_dot(fit.core, grams) - tl.tenalg.multi_mode_dot(a, fit.factors,
                                                                                    transpose=True)
    r1 = h.shape[1]
    masked = torch.stack([full[i, :, i] for i in range(r1)], dim=1)
    m2 = torch.einsum("ncv,ni,vi->ci", a, u1, u3)
    q = (u1.T @ u1) * (u3.T @ u3)
    compact = (u2.T @ u2) @ h @ q - u2.T @ m2
    assert torch.allclose(compact, masked, rtol=1e-9, atol=1e-9 * float(masked.abs().max()))
    # and the FISTA step never raises the core sub-problem's objective
    obj = lambda x: float(0.5 * torch.sum(x * ((u2.T @ u2) @ x @ q)) - torch.sum(x * (u2.T @ m2)))  # noqa
    h0 = h * 1.7
    assert obj(_core_step(u2, m2, q, h0, 25)) <= obj(h0)


def test_validation_loadings_match_scipy_nnls(synth, fit):
    a_new = synth.tensor[:7] * 1.3
    u1, err = solve_loadings(a_new, fit)
    b = fit.factors[1] @ fit.diagonal_faces
    design = torch.einsum("ci,vi->cvi", b, fit.factors[2]).reshape(-1, b.shape[1]).numpy()
    for k in range(7):
        ref, _ = nnls(design, a_new[k].reshape(-1))
        np.testing.assert_allclose(u1[k].numpy(), ref, rtol=1e-6, atol=1e-8 * ref.max())
    assert err == pytest.approx(relative_error(a_new, fit, loadings=u1), rel=1e-8)


def test_beside_tensorly_plain_ntd(synth, fit, capsys):
    """Report our constrained error beside tensorly's unconstrained-core NTD at ranks (R1, R2, R1)."""
    a = torch.as_tensor(synth.tensor)
    with tl.backend_context("pytorch", local_threadsafe=True):
        plain = tl.decomposition.non_negative_tucker(a, rank=[4, 3, 4], n_iter_max=150, tol=0,
                                                     random_state=0)
        plain_err = float(torch.linalg.vector_norm(a - tl.tucker_to_tensor(plain)) / torch.linalg.vector_norm(a))
    print(f"relative error: constrained (ours) {fit.errors[-1]:.5f} | tensorly non_negative_tucker {plain_err:.5f}")
    assert np.isfinite(plain_err)
    # the plain model has a full core (more freedom) but tensorly's multiplicative updates converge slowly
    assert fit.errors[-1] <= 1.25 * plain_err


def test_bad_inputs():
    a = np.random.default_rng(0).random((3, 4, 20))
    with pytest.raises(InputError, match="number of subjects"):
        constrained_nn_tucker(a, (5, 2), device="cpu")
    with pytest.raises(InputError, match="channels"):
        constrained_nn_tucker(a, (2, 9), device="cpu")
    bad = a.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        constrained_nn_tucker(bad, (2, 2), device="cpu")
    with pytest.raises(InputError, match="3-way"):
        constrained_nn_tucker(a[0], (2, 2), device="cpu")
