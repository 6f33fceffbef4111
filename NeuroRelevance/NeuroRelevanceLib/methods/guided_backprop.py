"""Guided backpropagation (Springenberg et al. 2015): the gradient with every ReLU's backward pass also
zeroing negative incoming gradients, R = ReLU'(z) · max(g, 0).

The override sits on the autograd graph of our own forward pass, not on modules: before the backward pass,
every ReLU node of that graph (``ReluBackward`` — what autograd records for ``nn.ReLU``, ``F.relu``,
``torch.relu``, ``Tensor.relu`` and the in-place ``relu_``/``inplace=True`` forms alike — and ``F.threshold``
at 0) gets a pre-hook that clamps its incoming gradient at 0. So functional and in-place activations,
TorchScript modules (run unoptimised, see ``isolation``) and exported programs are all covered, on every
sample of the batch. The hooks live on a graph that only this call owns: nothing process-wide is switched
(a ``TorchDispatchMode`` would flip torch's global dispatch-mode flags, which two threads can leave set).
"""
from __future__ import annotations

import time
from typing import Any, Optional

import torch

from ..errors import InputError
from ..explanation.result import Explanation
from .common import Target, package, setup, target_and_score
from .isolation import isolated_call

Tensor = torch.Tensor
#: autograd nodes whose graph we cannot see into (TorchScript's fused differentiable graphs)
_OPAQUE = ("CppFunction", "DifferentiableGraphBackward")


def _positive(grad_outputs: tuple) -> tuple:
    return tuple(None if g is None else g.clamp(min=0) for g in grad_outputs)


def _is_relu(node: Any) -> bool:
    name = type(node).__name__
    return name.startswith("ReluBackward") or (
        name.startswith("ThresholdBackward") and getattr(node, "_saved_threshold", None) == 0)


def guide_relus(score: Tensor) -> int:
    """Make every ReLU on the autograd graph of ``score`` guided (for the next backward); returns their number."""
    if score.grad_fn is None:
        return 0
    pending, seen, count = [score.grad_fn], set(), 0
    while pending:
        node = pending.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if _is_relu(node):
            node.register_prehook(_positive)
            count += 1
        elif type(node).__name__ in _OPAQUE:
            raise InputError("Guided backprop cannot look inside a fused autograd node (an optimised TorchScript "
                             "graph or a C++ extension function), so it cannot guide ReLUs there; pass the nn.Module "
                             "(or load the model from its card).")
        pending.extend(n for n, _ in node.next_functions)
    return count


def guided_gradient(model: Any, x: Tensor, target: Any, mask: Any) -> tuple[Target, Tensor, int]:
    """The target fixed at ``x``, the guided-backprop gradient of its score, and how many ReLUs were guided."""
    tgt, s, xi = target_and_score(model, x, target, mask)
    count = guide_relus(s)
    (g,) = torch.autograd.grad(s, xi)
    return tgt, g, count


@isolated_call
def guided_backprop(model: Any, x: Tensor, target: Any = None, *, mask: Any = None, device: Any = "auto",
                    dtype: Optional[torch.dtype] = None) -> Explanation:
    """Guided backpropagation map shaped like ``x`` (signed only through the first layer's weights)."""
    t0 = time.perf_counter()
    work, xw, dev, dt = setup(model, x, device, dtype)
    tgt, g, count = guided_gradient(work, xw, target, mask)
    return package("guided_backprop", g, tgt, dev, dt, t0, {"relu_backwards_guided": count})
