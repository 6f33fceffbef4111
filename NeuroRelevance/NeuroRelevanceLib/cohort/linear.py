"""Linear model from the decomposition to the target (seed 003 §3.6, Algorithm 2).

Features: the reconstruction Â = G ×1 U1 ×2 U2 ×3 U3 averaged over voxels (n × c). For
validation/test subjects U1 is solved with the training core and U2, U3 fixed (as in
Algorithm 1). For every ℓ1 weight λ on U3 the decomposition is refitted, a ridge model
(scikit-learn) is fitted on the training features for every ridge α, and the pair with the
smallest validation MAE wins. Features are standardised (training mean/std) before the ridge.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import InputError
from .tucker import ConstrainedTucker, constrained_nn_tucker, solve_loadings


def global_average_features(fit: ConstrainedTucker, loadings: torch.Tensor | None = None) -> np.ndarray:
    """(1/v) Σ_voxels Â[n, c, :] without forming Â: Σ_i U1[n,i] B[c,i] mean(U3[:, i])."""
    u1, u2, u3 = fit.factors
    if loadings is not None:
        u1 = loadings
    b = u2 @ fit.diagonal_faces
    feats = (u1 * u3.mean(dim=0)[None, :]) @ b.T
    return feats.detach().cpu().double().numpy()


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(target, float))))


@dataclass
class LinearResult:
    """Chosen (λ, α), the fitted ridge model and the decomposition it was fitted on."""

    sparsity: float                     # absolute ℓ1 weight on U3
    sparsity_fraction: float            # λ as a fraction of the mean voxel norm
    alpha: float
    model: Pipeline                    # StandardScaler → Ridge (scikit-learn)
    fit: ConstrainedTucker
    mae: dict[str, float]               # train / val / test
    predictions: dict[str, np.ndarray]
    loadings: dict[str, np.ndarray]     # U1 per split
    table: list[dict] = field(default_factory=list)   # every (λ, α) tried with its MAEs


def voxel_scale(a: torch.Tensor) -> float:
    """Mean over voxels of ‖A[:, :, v]‖: the unit of the ℓ1 weight fraction."""
    return float(torch.linalg.vector_norm(a, dim=(0, 1), dtype=torch.float64).mean())


def fit_linear_model(a_train, y_train, a_val, y_val, rank: Sequence[int],
                     sparsity_fractions: Sequence[float] = (0.0, 0.01, 0.03, 0.1),
                     alphas: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0),
                     a_test=None, y_test=None,
                     progress: Callable[[str], None] | None = None, **fit_kwargs) -> LinearResult:
    """Algorithm 2: pick (λ, α) by validation MAE; report train/val/test MAE of the chosen model."""
    for name, values in (("sparsity_fractions", sparsity_fractions), ("alphas", alphas)):
        if len(values) == 0:
            raise InputError(f"{name} is empty; give at least one value to search over.")
    y_train, y_val = np.asarray(y_train, float), np.asarray(y_val, float)
    if len(y_train) != a_train.shape[0] or len(y_val) != a_val.shape[0]:
        raise InputError("the number of targets differs from the number of subjects in a split; "
                         "give one target per subject.")
    if not (np.isfinite(y_train).all() and np.isfinite(y_val).all()):
        raise InputError("some targets are NaN or infinite; give a finite target for every subject.")
    scale = voxel_scale(torch.as_tensor(a_train))
    best, table = None, []
    for frac in sparsity_fractions:
        fit = constrained_nn_tucker(a_train, rank, sparsity=float(frac) * scale, **fit_kwargs)
        x_tr = global_average_features(fit)
        u1_val, _ = solve_loadings(a_val, fit)
        x_val = global_average_features(fit, u1_val)
        for alpha in alphas:
            model = make_pipeline(StandardScaler(), Ridge(alpha=float(alpha))).fit(x_tr, y_train)
            row = {"sparsity_fraction": float(frac), "alpha": float(alpha),
                   "mae_train": mae(model.predict(x_tr), y_train),
                   "mae_val": mae(model.predict(x_val), y_val)}
            table.append(row)
            if best is None or row["mae_val"] < best[0]["mae_val"]:
                best = (row, model, fit, u1_val)
        if progress is not None and best is not None:
            progress(f"λ fraction {frac:g}: best validation MAE so far {best[0]['mae_val']:.4g}")
    if best is None:  # unreachable: both searches are non-empty
        raise InputError("no (λ, α) pair was tried.")
    row, model, fit, u1_val = best
    preds = {"train": model.predict(global_average_features(fit)),
             "val": model.predict(global_average_features(fit, u1_val))}
    loads = {"train": fit.factors[0].cpu().numpy(), "val": u1_val.cpu().numpy()}
    maes = {"train": row["mae_train"], "val": row["mae_val"]}
    if a_test is not None and y_test is not None:
        u1_test, _ = solve_loadings(a_test, fit)
        preds["test"] = model.predict(global_average_features(fit, u1_test))
        loads["test"] = u1_test.cpu().numpy()
        maes["test"] = mae(preds["test"], y_test)
    return LinearResult(row["sparsity_fraction"] * scale, row["sparsity_fraction"], row["alpha"], model,
                        fit, maes, preds, loads, table)
