"""The relevance seed: which output values are explained (shared by LRP and every other method).

- classifier output (N, K), K > 1: ``target`` None -> predicted class per sample; an integer or a
  per-sample integer tensor -> that class (any class, e.g. for an anti-heatmap);
- single regression output (N,) or (N, 1), or one scalar (a model ending in ``.mean()``): the output itself;
- segmentation output (N, K, *spatial): class ``target`` (default: 1 if K > 1, else 0) summed over
  ``mask`` (default: the predicted foreground — argmax == class for K > 1, logit > 0 for K == 1);
- a float tensor shaped like the output, or a callable ``output -> weights``: explicit weights.
The seed is ``output * selection``, so its sum is the target value (a logit, before any softmax).

Everything is checked: a non-integer class (``1.7``), a class name (names need the model card,
``jobs.resolve_target``), a class out of range, NaN weights, a mask or predicted foreground that
selects nothing — each is an ``InputError`` naming the cause, never a map of something else.
"""
from __future__ import annotations

import numbers
from typing import Any

import torch

from ..errors import InputError

Tensor = torch.Tensor


def _mask_tensor(mask: Any, out: Tensor) -> Tensor:
    m = torch.as_tensor(mask, device=out.device)
    if m.is_floating_point() and not bool(torch.isfinite(m).all()):
        raise InputError("mask contains NaN or infinite values; give a binary (or finite weight) mask.")
    spatial = out.shape[2:]
    if m.shape == out.shape:
        return m.to(out.dtype)
    if m.shape == (out.shape[0], *spatial):
        return m.unsqueeze(1).to(out.dtype)
    if m.shape == spatial:
        return m.reshape(1, 1, *spatial).to(out.dtype)
    raise InputError(f"mask of shape {tuple(m.shape)} does not fit the model output {tuple(out.shape)}; give it "
                     f"the spatial shape {tuple(spatial)} or (N, *spatial).")


def _class_indices(target: Any, n: int) -> Tensor:
    """An integer target (Python/numpy int or integer tensor) as a long tensor of n entries."""
    if isinstance(target, str):
        raise InputError(f"target {target!r} is a class name; the engine takes class indices. Load the model with "
                         "its model card (logic.run / jobs.resolve_target map names to indices) or pass the index.")
    if isinstance(target, bool) or (isinstance(target, Tensor) and target.dtype == torch.bool):
        raise InputError(f"target must be a class index (an integer), not the boolean {target!r}.")
    if isinstance(target, numbers.Integral):
        return torch.tensor([int(target)] * n)
    if isinstance(target, Tensor) and not target.is_floating_point() and not target.is_complex():
        cls = target.detach().reshape(-1).long().cpu()
        return cls.expand(n) if cls.numel() == 1 else cls
    if isinstance(target, (list, tuple)) and target and all(
            isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in target):
        return torch.tensor([int(t) for t in target])
    raise InputError(f"target must be None, a class index (integer), one index per sample, a float weight tensor "
                     f"shaped like the output, or a callable; {target!r} ({type(target).__name__}) is none of these.")


def _weights(w: Any, out: Tensor, what: str) -> Tensor:
    try:
        w = torch.as_tensor(w, dtype=out.dtype, device=out.device)
        w = w.expand_as(out)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"{what} must give weights broadcastable to the output shape {tuple(out.shape)} "
                         f"({exc}).") from exc
    if not bool(torch.isfinite(w).all()):
        raise InputError(f"{what} contains NaN or infinite weights; give finite weights.")
    empty = [i for i in range(out.shape[0]) if not bool((w[i] != 0).any())] if out.dim() > 1 else (
        [] if bool((w != 0).any()) else [0])
    if empty:
        raise InputError(f"{what} selects nothing (all weights are zero) for sample(s) {empty}; nothing to explain.")
    return w


def selection(out: Tensor, target: Any = None, mask: Any | None = None) -> tuple[Tensor, str]:
    """Weights shaped like ``out`` that pick the explained values, and a description."""
    if callable(target) and not isinstance(target, Tensor):
        return _weights(target(out), out, "The target callable"), "callable target"
    if isinstance(target, Tensor) and target.is_floating_point():
        if target.shape != out.shape:
            raise InputError(f"A float target tensor gives weights and must have the output's shape "
                             f"{tuple(out.shape)}, not {tuple(target.shape)}.")
        return _weights(target, out, "The target weight tensor"), "weights"
    if isinstance(target, numbers.Real) and not isinstance(target, numbers.Integral) and float(target).is_integer():
        raise InputError(f"target={target!r} is a float, not an integer class index: pass target={int(float(target))}.")
    if isinstance(target, numbers.Real) and not isinstance(target, numbers.Integral):
        raise InputError(f"target must be an integer class index, not {target!r}: a fractional class does not "
                         f"exist (round it yourself if you meant int({target!r})).")
    if out.dim() == 0:  # one scalar (``.mean()``/``.sum()`` at the end): the value itself
        if mask is not None or (target is not None and not bool((_class_indices(target, 1) == 0).all())):
            raise InputError(f"The model returns one scalar; target must be None or 0 and mask= cannot select "
                             f"anything in it (target={target!r}, mask {'given' if mask is not None else 'None'}).")
        return torch.ones_like(out), "scalar output"
    n = out.shape[0]
    if mask is not None and out.dim() <= 2:
        raise InputError(f"mask= selects voxels of a segmentation output, but this model's output has shape "
                         f"{tuple(out.shape)} (no spatial axes): drop mask=, or explain a class with target=.")
    if out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1):
        if target is not None and not bool((_class_indices(target, n) == 0).all()):
            raise InputError(f"The model has a single output; target must be None or 0, not {target!r}.")
        return torch.ones_like(out), "regression output"
    k = out.shape[1]
    if out.dim() == 2:
        if target is None:
            cls = out.argmax(dim=1)
            desc = "predicted class"
        else:
            cls = _class_indices(target, n).to(out.device)
            desc = f"class {target if not isinstance(target, Tensor) else target.tolist()}"
        if cls.numel() != n or (cls < 0).any() or (cls >= k).any():
            raise InputError(f"target {target!r} is not a class index in [0, {k - 1}] for each of the {n} samples.")
        w = torch.zeros_like(out)
        w[torch.arange(n, device=out.device), cls] = 1
        return w, desc
    # segmentation / dense output
    if target is None:
        channel = 1 if k > 1 else 0
    else:
        idx = _class_indices(target, 1)
        if idx.numel() != 1:
            raise InputError(f"A segmentation target is one output channel, not {target!r}.")
        channel = int(idx[0])
    if not 0 <= channel < k:
        raise InputError(f"target {target!r} is not an output channel in [0, {k - 1}].")
    if mask is None:
        fg = (out.argmax(dim=1, keepdim=True) == channel) if k > 1 else (out[:, :1] > 0)
        m, desc = fg.to(out.dtype), f"channel {channel} over the predicted foreground"
        rule = f"argmax == {channel}" if k > 1 else "logit > 0"
        what = f"The predicted foreground of channel {channel} (voxels where {rule})"
    else:
        m, desc = _mask_tensor(mask, out), f"channel {channel} over the given mask"
        what = "The given mask"
    w = torch.zeros_like(out)
    w[:, channel:channel + 1] = m.expand(n, 1, *out.shape[2:]) if m.shape[1] == 1 else m[:, channel:channel + 1]
    empty = [i for i in range(n) if not bool((w[i] != 0).any())]
    if empty:
        raise InputError(f"{what} is empty for sample(s) {empty}: there is nothing to explain. Pass mask= with the "
                         f"voxels to explain, or another target channel.")
    return w, desc
