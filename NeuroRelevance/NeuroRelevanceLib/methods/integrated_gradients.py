"""Integrated gradients (Sundararajan et al. 2017): (x − x′) ⊙ ∫₀¹ ∂S/∂x(x′ + t(x − x′)) dt.

Completeness: Σ attributions = S(x) − S(x′). The relative gap |Σ R − (S(x) − S(x′))| / |S(x) − S(x′)| is
reported per sample in ``conservation_error`` (the same slot LRP uses for conservation); it measures the
quadrature error of the path integral.
"""
from __future__ import annotations

import numbers
import time
from typing import Any, Optional

import numpy as np
import torch

from ..errors import InputError
from . import options
from ..explanation.conservation import relative_error
from ..explanation.result import Explanation
from .common import (fixed_batch, forward, input_gradient, make_target, package,
                     setup)
from .isolation import isolated_call

Tensor = torch.Tensor

RULES = ("midpoint", "trapezoid", "gauss-legendre")


def path_nodes(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes t ∈ [0, 1] and weights (summing to 1) for the path integral."""
    if rule == "midpoint":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    if rule == "trapezoid":
        if steps < 2:
            raise InputError("The trapezoid rule needs steps >= 2 (both ends of the path); pass steps=2 or more.")
        w = np.full(steps, 1.0 / (steps - 1))
        w[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, steps), w
    if rule == "gauss-legendre":
        t, w = np.polynomial.legendre.leggauss(steps)
        return (t + 1) / 2, w / 2
    raise InputError(f"Unknown integration rule {rule!r}; use one of {', '.join(RULES)}.")


@isolated_call
def integrated_gradients(model: Any, x: Tensor, target: Any = None, *, mask: Any = None, baseline: Any = None,
                         steps: int = 64, rule: str = "midpoint", batch_size: int = 4, device: Any = "auto",
                         dtype: Optional[torch.dtype] = None) -> Explanation:
    """Integrated gradients from ``baseline`` (None = zeros, a number, or a tensor) to ``x``.

    ``steps`` path points integrated with ``rule`` (midpoint, trapezoid, gauss-legendre); ``batch_size`` path
    points run per forward/backward. The target weights are fixed at ``x`` (e.g. the class predicted at x).
    """
    t0 = time.perf_counter()
    steps = options.positive_int("steps", steps, "64 is a good default")
    rule = options.choice("rule", rule, RULES)
    batch_size = options.positive_int("batch_size", batch_size, "the number of path points run together")
    nodes, weights = path_nodes(steps, rule)
    work, xw, dev, dt = setup(model, x, device, dtype)
    base = options.baseline_tensor(baseline, xw)
    tgt = make_target(work, xw, target, mask)
    with torch.no_grad():
        s_base = tgt.score(forward(work, base))
    if not torch.isfinite(s_base).all():
        raise InputError("The model's output at the baseline is not finite, so integrated gradients has no "
                         "defined total; pass another baseline (e.g. the image minimum or a blurred copy).")
    delta = xw - base
    n, shape = xw.shape[0], xw.shape[1:]
    total = torch.zeros_like(xw)
    per = 1 if fixed_batch(work) else max(1, batch_size // n)
    for start in range(0, steps, per):
        t = torch.as_tensor(nodes[start:start + per], dtype=dt, device=dev)
        w = torch.as_tensor(weights[start:start + per], dtype=dt, device=dev)
        k = t.numel()
        view = (1, k) + (1,) * len(shape)
        points = (base.unsqueeze(1) + t.reshape(view) * delta.unsqueeze(1)).reshape(n * k, *shape)
        g, _ = input_gradient(work, points, lambda out, k=k: tgt.score_repeated(out, k))
        total += (g.reshape(n, k, *shape) * w.reshape(view)).sum(1)
    attr = delta * total
    err = relative_error(attr.flatten(1).sum(1), tgt.value - s_base)
    return package("integrated_gradients", attr, tgt, dev, dt, t0,
                   {"steps": steps, "rule": rule, "baseline": "zeros" if baseline is None else
                    (float(baseline) if isinstance(baseline, numbers.Real) else "tensor")}, completeness=err)
