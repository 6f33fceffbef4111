"""Plain gradient (saliency), gradient × input, and SmoothGrad (Smilkov et al. 2017).

All three explain the same target as LRP (see ``methods.common``) and return maps shaped like ``x``.
"""
from __future__ import annotations

import secrets
import time
from typing import Any, Optional

import torch

from . import options
from ..explanation.conservation import relative_error
from ..explanation.result import Explanation
from .common import (fixed_batch, input_gradient, make_target, package, setup,
                     target_and_gradient)
from .isolation import isolated_call

Tensor = torch.Tensor


@isolated_call
def gradient(model: Any, x: Tensor, target: Any = None, *, mask: Any = None, device: Any = "auto",
             dtype: Optional[torch.dtype] = None) -> Explanation:
    """∂S/∂x: the sensitivity of the explained output to each input voxel (signed)."""
    t0 = time.perf_counter()
    work, xw, dev, dt = setup(model, x, device, dtype)
    tgt, g = target_and_gradient(work, xw, target, mask)
    return package("gradient", g, tgt, dev, dt, t0, {})


@isolated_call
def gradient_x_input(model: Any, x: Tensor, target: Any = None, *, mask: Any = None, device: Any = "auto",
                     dtype: Optional[torch.dtype] = None) -> Explanation:
    """x ⊙ ∂S/∂x. Its sum equals S for bias-free piecewise-linear (ReLU) nets; that gap is reported."""
    t0 = time.perf_counter()
    work, xw, dev, dt = setup(model, x, device, dtype)
    tgt, g = target_and_gradient(work, xw, target, mask)
    r = g * xw
    err = relative_error(r.flatten(1).sum(1), tgt.value)
    return package("gradient_x_input", r, tgt, dev, dt, t0, {}, completeness=err)


@isolated_call
def smoothgrad(model: Any, x: Tensor, target: Any = None, *, mask: Any = None, samples: int = 25,
               sigma: float = 0.15, seed: Optional[int] = 0, batch_size: int = 4, device: Any = "auto",
               dtype: Optional[torch.dtype] = None) -> Explanation:
    """Mean gradient over ``samples`` noisy copies ``x + N(0, (σ·(max x − min x))²)`` (per sample's range).

    ``sigma`` is a fraction of each sample's intensity range (0.1-0.2 suggested by the authors);
    ``seed`` makes the noise reproducible (None: fresh noise, from the operating system rather than torch's
    global generator; the seed used is recorded in ``parameters``); ``batch_size`` noisy copies run together.
    """
    t0 = time.perf_counter()
    samples = options.positive_int("samples", samples, "25 is a common choice")
    sigma = options.non_negative("sigma", sigma, "a fraction of the intensity range, 0.1-0.2 is typical")
    seed = options.seed(seed)
    batch_size = options.positive_int("batch_size", batch_size, "the number of noisy copies run together")
    work, xw, dev, dt = setup(model, x, device, dtype)
    tgt = make_target(work, xw, target, mask)
    base_seed = int(seed) if seed is not None else secrets.randbelow(2**31)   # torch's global RNG untouched
    n, shape = xw.shape[0], xw.shape[1:]
    span = (xw.flatten(1).amax(1) - xw.flatten(1).amin(1)).reshape(n, *([1] * len(shape)))
    total = torch.zeros_like(xw)
    per = 1 if fixed_batch(work) else max(1, batch_size // n)   # noisy copies per sample in one batch
    for start in range(0, samples, per):
        k = min(per, samples - start)
        # noise j comes from its own seeded generator, so it is the same for any batch size or batch position
        noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(base_seed * 7919 + j),
                                         dtype=torch.float64) for j in range(start, start + k)]).to(dev, dt)
        noisy = (xw.unsqueeze(1) + sigma * span.unsqueeze(1) * noise.unsqueeze(0)).reshape(n * k, *shape)
        g, _ = input_gradient(work, noisy, lambda out, k=k: tgt.score_repeated(out, k))
        total += g.reshape(n, k, *shape).sum(1)
    return package("smoothgrad", total / samples, tgt, dev, dt, t0,
                   {"samples": samples, "sigma": sigma, "seed": base_seed})
