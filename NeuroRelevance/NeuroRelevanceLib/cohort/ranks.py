"""Rank selection (seed 003 §3.5, Algorithm 1): train/validation errors over an (R1, R2) grid."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError
from .device import as_tensor, resolve_device
from .tucker import check_tensor, constrained_nn_tucker, init_vectors, solve_loadings


@dataclass
class RankGrid:
    """E_train and E_val (len(r1_values) × len(r2_values)) and the suggested ranks."""

    r1_values: list[int]
    r2_values: list[int]
    e_train: np.ndarray
    e_val: np.ndarray
    suggested: tuple[int, int] = (0, 0)
    seconds: float = 0.0
    iterations: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def to_rows(self) -> list[dict]:
        """One dict per (R1, R2): r1, r2, e_train, e_val, iterations."""
        return [{"r1": r1, "r2": r2, "e_train": float(self.e_train[i, j]),
                 "e_val": float(self.e_val[i, j]), "iterations": int(self.iterations[i, j])}
                for i, r1 in enumerate(self.r1_values) for j, r2 in enumerate(self.r2_values)]


def elbow(values: Sequence[float], errors: Sequence[float]) -> int:
    """Elbow of a decreasing error curve: the point farthest below the chord from first to last.

    Both axes are scaled to [0, 1] first (Thorndike's elbow, "kneedle" form). Returns the value.
    """
    x = np.asarray(values, dtype=float)
    y = np.asarray(errors, dtype=float)
    if len(x) < 3:
        return int(x[int(np.argmin(y))])
    xs = (x - x[0]) / (x[-1] - x[0])
    span = y.max() - y.min()
    if span <= 0:
        return int(x[0])
    ys = (y - y.min()) / span
    chord = ys[0] + (ys[-1] - ys[0]) * xs
    return int(x[int(np.argmax(chord - ys))])


def suggest_ranks(grid: RankGrid) -> tuple[int, int]:
    """R1 at the elbow of min over R2 of E_val(R1, ·); then R2 at the elbow of E_val(R1*, ·)."""
    r1 = elbow(grid.r1_values, np.min(grid.e_val, axis=1))
    row = grid.e_val[grid.r1_values.index(r1)]
    r2 = elbow(grid.r2_values, row) if len(grid.r2_values) > 1 else grid.r2_values[0]
    return r1, r2


def rank_grid(a_train, a_val, r1_values: Sequence[int] = range(2, 11),
              r2_values: Sequence[int] = range(2, 11), progress: Callable[[int, int, dict], None] | None = None,
              warm_start: bool = True, device: str | torch.device | None = "auto",
              dtype: torch.dtype | None = None, **fit_kwargs) -> RankGrid:
    """Algorithm 1: fit eq. (2) on ``a_train`` for every (R1, R2); E_train from the fit, E_val with
    the validation loadings solved with the training core, U2 and U3 fixed.

    The SVD start vectors are computed once for the whole grid; with ``warm_start`` each R1 row
    runs R2 upwards, each fit starting from the previous one (same R1, one more U2 column).
    ``fit_kwargs`` go to :func:`constrained_nn_tucker` (e.g. ``n_iter_max``, ``tol``, ``seed``).
    """
    import time

    r1_values, r2_values = [int(r) for r in r1_values], [int(r) for r in r2_values]
    if not r1_values or not r2_values:
        raise InputError("the rank grid is empty; give at least one R1 and one R2 value.")
    n_train = int(a_train.shape[0])
    if max(r1_values) > n_train:
        raise InputError(f"the largest R1 ({max(r1_values)}) exceeds the {n_train} training subjects; "
                         "use more subjects or smaller R1 values.")
    e_train = np.full((len(r1_values), len(r2_values)), np.nan)
    e_val = np.full_like(e_train, np.nan)
    iters = np.zeros(e_train.shape, dtype=int)
    t0 = time.perf_counter()
    dev = resolve_device(device)
    a_train, a_val = as_tensor(a_train, dev, dtype), as_tensor(a_val, dev, dtype)
    check_tensor(a_train)
    check_tensor(a_val)
    cache = init_vectors(a_train, max(r1_values), max(r2_values))
    total, done = len(r1_values) * len(r2_values), 0
    order = sorted(range(len(r2_values)), key=lambda j: r2_values[j])
    cold = fit_kwargs.pop("init", "svd")
    for i, r1 in enumerate(r1_values):
        prev = None
        for j in order:
            r2 = r2_values[j]
            init = prev if (warm_start and prev is not None) else cold
            fit = constrained_nn_tucker(a_train, (r1, r2), init=init, init_cache=cache, device=dev,
                                        **fit_kwargs)
            prev = fit
            e_train[i, j] = fit.errors[-1]
            _, e_val[i, j] = solve_loadings(a_val, fit)
            iters[i, j] = fit.n_iter
            done += 1
            if progress is not None:
                progress(done, total, {"r1": r1, "r2": r2, "e_train": e_train[i, j], "e_val": e_val[i, j]})
    grid = RankGrid(r1_values, r2_values, e_train, e_val, seconds=time.perf_counter() - t0,
                    iterations=iters)
    grid.suggested = suggest_ranks(grid)
    return grid
