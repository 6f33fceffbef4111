"""Canonizers: rewrites of a plan into an explainable form before rules are assigned.

A canonizer changes only the plan — our own operator list and our own weight copies — never the
user's model or the captured graph, so there is nothing to undo afterwards (zennit's canonizers
patch the model and must restore it). ``build_plan`` applies ``canonizers_for(batchnorm)``.

``BatchNormCanonizer`` (Deep Taylor paper; DESIGN.md "Relevance engine"):
- ``"fold"``: a BatchNorm whose input is the output of a conv/dense layer that nothing else reads is
  folded into that layer (``w' = s·w``, ``b' = s·b + t``; exact); every other BatchNorm with running
  statistics (after a concatenation as in DenseNet, before the activation in pre-activation nets, on
  the input) becomes an exact per-channel affine layer ``x·s + t`` under a rule (``assign.py``);
- ``"pass"``: every BatchNorm passes relevance unchanged (R_i = R_j).
A BatchNorm without running statistics normalises by batch statistics and passes relevance either way.
"""
from __future__ import annotations

from typing import Protocol

from torch import Tensor

from .layers import LinearLayer
from .operators import BatchNorm, Identity, Linear, Op


class Canonizer(Protocol):
    """Rewrites ``ops`` (the plan's operators in graph order) in place."""

    def apply(self, ops: list[Op]) -> None:
        ...


class BatchNormCanonizer:
    """Fold BatchNorms into the preceding conv/dense layer, or make them per-channel affine layers."""

    def __init__(self, mode: str = "fold") -> None:
        if mode not in ("fold", "pass"):
            raise ValueError(f"batchnorm must be 'fold' or 'pass', not {mode!r}.")
        self.mode = mode

    def apply(self, ops: list[Op]) -> None:
        if self.mode == "pass":
            return
        by_node = {op.node: i for i, op in enumerate(ops)}
        for i, op in enumerate(ops):
            if not isinstance(op, BatchNorm) or op.bn is None:
                continue
            scale, shift = op.bn
            src = op.inputs[0]
            prev = ops[by_node[src]] if src in by_node else None
            if isinstance(prev, Linear) and not prev.affine and prev.layer.kind != "map" and len(src.users) == 1:
                ops[i] = self._fold(op, scale, shift, prev)
            else:
                ops[i] = self._affine(op, scale, shift)

    @staticmethod
    def _fold(bn: BatchNorm, scale: Tensor, shift: Tensor, into: Linear) -> Op:
        into.layer.fold_affine(scale, shift, bn.module_path or bn.name)
        into.folded_module = bn.module  # the BatchNorm module (None for a functional call)
        ident = bn.become(Identity)
        ident.folded_into = into.name  # ``rectified.py``: a folded BatchNorm passes the rectification through
        src = bn.inputs[0]
        ident.run = lambda env: env[src]
        return ident

    @staticmethod
    def _affine(bn: BatchNorm, scale: Tensor, shift: Tensor) -> Op:
        lin = Linear(bn.node, bn.run, bn.inputs, bn.label, bn.module)
        for key in ("module_path", "module_type", "consumes_input", "tensor_inputs"):
            setattr(lin, key, getattr(bn, key))
        lin.affine = True
        lin.attach(LinearLayer("affine", scale.detach(), shift.detach()), bn.inputs[0])
        return lin


def canonizers_for(batchnorm: str) -> list[Canonizer]:
    """The canonizers ``explain(..., batchnorm=...)`` applies."""
    return [BatchNormCanonizer(batchnorm)]
