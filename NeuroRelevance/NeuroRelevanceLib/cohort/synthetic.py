"""Synthetic cohort tensors with known factors (tests, benchmarks, docs). Not a data set."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SyntheticTensor:
    """A = Σ_i U1[:, i] ∘ (U2 H)[:, i] ∘ U3[:, i] + noise, with the true factors."""

    tensor: np.ndarray
    u1: np.ndarray
    u2: np.ndarray
    h: np.ndarray
    u3: np.ndarray
    layer_shape: tuple[int, int, int]


def synthetic_tensor(n: int = 60, c: int = 12, layer_shape=(8, 10, 5), r1: int = 4, r2: int = 3,
                     noise: float = 0.05, seed: int = 0) -> SyntheticTensor:
    """Non-negative factors with diagonal core faces: U3 columns are Gaussian blobs at random
    centres on the layer grid (cut below 5 % of the peak), U1, U2 uniform, H uniform + 0.2;
    Gaussian noise with standard deviation ``noise`` × std(A) is added."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in layer_shape], indexing="ij"), -1).reshape(-1, 3)
    v = grid.shape[0]
    u3 = np.zeros((v, r1))
    for i in range(r1):
        centre = rng.uniform(0, 1, 3) * (np.asarray(layer_shape) - 1)
        width = 0.18 * np.asarray(layer_shape) + 0.5
        blob = np.exp(-0.5 * np.sum(((grid - centre) / width) ** 2, axis=1))
        blob[blob < 0.05] = 0.0
        u3[:, i] = blob
    u1 = rng.uniform(0.05, 1.0, (n, r1))
    u2 = rng.uniform(0.0, 1.0, (c, r2))
    h = rng.uniform(0.2, 1.2, (r2, r1))
    clean = np.einsum("ni,ci,vi->ncv", u1, u2 @ h, u3)
    tensor = clean + noise * clean.std() * rng.standard_normal(clean.shape)
    return SyntheticTensor(tensor, u1, u2, h, u3, tuple(layer_shape))


def best_match_cosine(true: np.ndarray, est: np.ndarray) -> float:
    """Mean over true columns of the best cosine with an estimated column, matched one-to-one
    (Hungarian assignment, scipy)."""
    from scipy.optimize import linear_sum_assignment

    t = true / np.maximum(np.linalg.norm(true, axis=0), 1e-300)
    e = est / np.maximum(np.linalg.norm(est, axis=0), 1e-300)
    cos = t.T @ e
    rows, cols = linear_sum_assignment(-cos)
    return float(cos[rows, cols].mean())
