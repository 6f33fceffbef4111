"""Guided backpropagation (Springenberg et al. 2015): the gradient with every ReLU's backward pass also
zeroing negative incoming gradients, R = ReLU'(z) · max(g, 0).

The override sits at the operator level, not on modules: while the backward pass runs, a
``TorchDispatchMode`` replaces each ReLU derivative (``aten.threshold_backward`` with threshold 0, the
derivative autograd records for ``nn.ReLU``, ``F.relu``, ``torch.relu``, ``Tensor.relu`` and the in-place
``relu_``/``inplace=True`` forms alike) by its guided version. So it works for functional and in-place
activations, TorchScript modules and exported programs, on every sample of the batch, and nothing on the
model is patched (it runs on a private copy anyway).
"""
from __future__ import annotations

import time
from typing import Any, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .common import MethodExplanation, Target, package, setup, target_and_gradient

Tensor = torch.Tensor
_RELU_BACKWARD = torch.ops.aten.threshold_backward.default


class GuidedReLUBackward(TorchDispatchMode):
    """Inside this mode, ReLU derivatives pass only positive gradients; counts how many it rewrote."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # nothing is compiled inside; skipping the wrapper avoids importing torch._dynamo (seconds)
        return False

    def __init__(self) -> None:
        super().__init__()
        self.rewritten = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is _RELU_BACKWARD:
            grad, result, threshold = args
            if threshold == 0:
                self.rewritten += 1
                return func(grad.clamp(min=0), result, threshold, **kwargs)
        return func(*args, **kwargs)


def guided_gradient(model: Any, x: Tensor, target: Any, mask: Any) -> tuple[Target, Tensor, int]:
    """The target fixed at ``x``, the guided-backprop gradient of its score, and how many ReLUs were guided."""
    mode = GuidedReLUBackward()
    tgt, g = target_and_gradient(model, x, target, mask, mode)
    return tgt, g, mode.rewritten


def guided_backprop(model: Any, x: Tensor, target: Any = None, *, mask: Any = None, device: Any = "auto",
                    dtype: Optional[torch.dtype] = None) -> MethodExplanation:
    """Guided backpropagation map shaped like ``x`` (signed only through the first layer's weights)."""
    t0 = time.perf_counter()
    work, xw, dev, dt = setup(model, x, device, dtype)
    tgt, g, count = guided_gradient(work, xw, target, mask)
    return package("guided_backprop", g, tgt, dev, dt, t0, {"relu_backwards_guided": count})
