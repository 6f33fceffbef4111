"""The relevance seed: which output values are explained.

- classifier output (N, K), K > 1: ``target`` None -> predicted class per sample; int or a
  per-sample integer tensor -> that class (any class, e.g. for an anti-heatmap);
- single regression output (N,) or (N, 1): the output itself;
- segmentation output (N, K, *spatial): class ``target`` (default: 1 if K > 1, else 0) summed over
  ``mask`` (default: the predicted foreground — argmax == class for K > 1, logit > 0 for K == 1);
- a float tensor shaped like the output, or a callable ``output -> weights``: explicit weights.
The seed is ``output * selection``, so its sum is the target value (a logit, before any softmax).
"""
from __future__ import annotations

from typing import Any, Optional

import torch

Tensor = torch.Tensor


def _mask_tensor(mask: Any, out: Tensor) -> Tensor:
    m = torch.as_tensor(mask, device=out.device)
    spatial = out.shape[2:]
    if m.shape == out.shape:
        return m.to(out.dtype)
    if m.shape == (out.shape[0], *spatial):
        return m.unsqueeze(1).to(out.dtype)
    if m.shape == spatial:
        return m.reshape(1, 1, *spatial).to(out.dtype)
    raise ValueError(f"mask of shape {tuple(m.shape)} does not fit the model output {tuple(out.shape)}; give it "
                     f"the spatial shape {tuple(spatial)} or (N, *spatial).")


def selection(out: Tensor, target: Any = None, mask: Optional[Any] = None) -> tuple[Tensor, str]:
    """Weights shaped like ``out`` that pick the explained values, and a description."""
    if callable(target) and not isinstance(target, Tensor):
        w = torch.as_tensor(target(out), dtype=out.dtype, device=out.device)
        return w.expand_as(out), "callable target"
    if isinstance(target, Tensor) and target.is_floating_point():
        if target.shape != out.shape:
            raise ValueError(f"A float target tensor gives weights and must have the output's shape "
                             f"{tuple(out.shape)}, not {tuple(target.shape)}.")
        return target.to(out), "weights"
    n = out.shape[0]
    if out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1):
        if target not in (None, 0):
            raise ValueError(f"The model has a single output; target must be None or 0, not {target!r}.")
        return torch.ones_like(out), "regression output"
    k = out.shape[1]
    if out.dim() == 2:
        if target is None:
            cls = out.argmax(dim=1)
            desc = "predicted class"
        else:
            cls = torch.as_tensor(target, device=out.device).long().reshape(-1)
            if cls.numel() == 1:
                cls = cls.expand(n)
            desc = f"class {target if not isinstance(target, Tensor) else target.tolist()}"
        if cls.numel() != n or (cls < 0).any() or (cls >= k).any():
            raise ValueError(f"target {target!r} is not a class index in [0, {k - 1}] for each of the {n} samples.")
        w = torch.zeros_like(out)
        w[torch.arange(n, device=out.device), cls] = 1
        return w, desc
    # segmentation / dense output
    cls = (1 if k > 1 else 0) if target is None else int(target)
    if not 0 <= cls < k:
        raise ValueError(f"target {target!r} is not an output channel in [0, {k - 1}].")
    if mask is None:
        fg = (out.argmax(dim=1, keepdim=True) == cls) if k > 1 else (out[:, :1] > 0)
        m, desc = fg.to(out.dtype), f"channel {cls} over the predicted foreground"
    else:
        m, desc = _mask_tensor(mask, out), f"channel {cls} over the given mask"
    w = torch.zeros_like(out)
    w[:, cls:cls + 1] = m.expand(n, 1, *out.shape[2:]) if m.shape[1] == 1 else m[:, cls:cls + 1]
    return w, desc
