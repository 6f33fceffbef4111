"""Checks of the cohort pipeline's options, and how signed activations are made decomposable.

Every option is checked before any volume is read, so a typo fails at once with one sentence
naming the option. The constrained Tucker model (seed 003, eq. 2) has a non-negative core and
non-negative RoI maps U3; with non-negative subject/channel loadings (the default) it can only
rebuild A ≥ 0. Post-ReLU maps are non-negative, but some networks have no ReLU *module* after
their last feature map (the pre-activation ResNet ends with ``BN → F.relu``, so its last hooked
map, ``bn_final``, is about two-thirds negative). ``signed`` says what to do then:

- ``"split"`` (default): decompose [A⁺, A⁻] (2c non-negative channels, A = A⁺ − A⁻), so the
  model rebuilds both signs; U2 then has 2c rows (first c: positive parts, last c: negative);
- ``"rectify"``: decompose max(A, 0), what a ReLU after the layer would pass on;
- ``"refuse"``: raise, naming the layer and the share of negative entries.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InputError

SIGNED_MODES = ("split", "rectify", "refuse")


def _listlike(values: Any) -> bool:
    return not isinstance(values, (str, bytes)) and isinstance(values, (Sequence, np.ndarray))


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _finite_numbers(values: Any, name: str, minimum: float = 0.0) -> list[float]:
    """A non-empty sequence of finite numbers >= ``minimum``."""
    if not _listlike(values) or len(values) == 0:
        raise InputError(f"{name} must be a non-empty list of numbers >= {minimum:g}, got {values!r}.")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)) \
                or float(v) < minimum:
            raise InputError(f"{name} must be finite numbers >= {minimum:g}; {v!r} is not.")
        out.append(float(v))
    return out


def positive_int(value: Any, name: str) -> int:
    if not _is_int(value) or int(value) < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_rank(rank: Any) -> tuple[int, int]:
    """``(R1, R2)``: two positive integers (2.5 is refused, not truncated)."""
    if not _listlike(rank) or len(rank) != 2 \
            or not all(_is_int(r) and int(r) >= 1 for r in rank):
        raise InputError(f"rank must be a pair of positive integers (R1, R2), got {rank!r}.")
    return int(rank[0]), int(rank[1])


def check_rank_values(values: Any, name: str) -> list[int]:
    """A rank grid axis: a non-empty list of positive integers (returned sorted, without repeats)."""
    if not _listlike(values) or len(values) == 0:
        raise InputError(f"the {name} values of the rank grid are empty ({values!r}); give at least "
                         f"one {name} (e.g. 2 to 10).")
    bad = [v for v in values if not (_is_int(v) and int(v) >= 1)]
    if bad:
        raise InputError(f"the {name} values of the rank grid must be positive integers; {bad[0]!r} is not.")
    return sorted({int(v) for v in values})


def check_options(*, sparsity_fractions, alphas, rank, grid, r1_values, r2_values, n_iter_max,
                  grid_iter_max, tol, batch_size, output_index, signed, atlas) -> dict:
    """Check every option of :func:`decompose_cohort`; returns the normalised values."""
    out = {"sparsity_fractions": _finite_numbers(sparsity_fractions, "sparsity (the ℓ1 fractions)"),
           "alphas": _finite_numbers(alphas, "ridge alphas"),
           "rank": None if rank is None else check_rank(rank),
           "r1_values": check_rank_values(r1_values, "R1") if grid else list(r1_values or []),
           "r2_values": check_rank_values(r2_values, "R2") if grid else list(r2_values or []),
           "n_iter_max": positive_int(n_iter_max, "n_iter_max"),
           "grid_iter_max": positive_int(grid_iter_max, "grid_iter_max"),
           "batch_size": positive_int(batch_size, "batch_size")}
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not math.isfinite(float(tol)) \
            or tol < 0:
        raise InputError(f"tol must be a finite number >= 0, got {tol!r}.")
    if not _is_int(output_index) or output_index < 0:
        raise InputError(f"output_index must be a non-negative integer, got {output_index!r}.")
    if signed not in SIGNED_MODES:
        raise InputError(f"signed must be one of {SIGNED_MODES}, got {signed!r}.")
    if atlas is not None:
        from ..regions.statistics import resolve_atlas

        resolve_atlas(atlas)  # unknown names and missing packages fail now, not after the run
    return out


def decomposable(a: torch.Tensor, mode: str, layer: str) -> tuple[torch.Tensor, float]:
    """The tensor to decompose for activations ``a`` (n × c × v) and their share of negative entries."""
    negative = float((a < 0).float().mean())
    if negative == 0.0:
        return a, 0.0
    if mode == "refuse":
        raise InputError(f"layer {layer!r} has {negative:.0%} negative activations, but the "
                         "non-negative Tucker model needs A >= 0: choose a layer after a ReLU module, "
                         "or pass signed='split' (positive and negative parts) or 'rectify'.")
    if mode == "rectify":
        return a.clamp(min=0), negative
    return torch.cat([a.clamp(min=0), (-a).clamp(min=0)], dim=1), negative
