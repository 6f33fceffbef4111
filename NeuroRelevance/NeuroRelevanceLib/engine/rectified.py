"""Which linear layers have a rectified output: the graph query behind the graph-aware presets.

A conv/dense layer's output is *rectified* when every path from it through the operator graph reaches
a ReLU before anything else that matters: on the way it may pass ops that keep the question open
(a folded or per-channel BatchNorm, dropout, identity, reshapes, pooling, upsampling, padding,
indexing). It is *not* rectified when a path first reaches a sum or difference (a residual add, a
shortcut), a concatenation (a U-Net skip), a product, another linear layer, any other activation, or
the model's output (a head). z⁺ and αβ assume the layer's relevance comes through a ReLU; where it
does not, they drop relevance, and the ``graph-*`` presets use ε there (``presets.GraphPreset``).
"""
from __future__ import annotations

import torch.fx as fx

from .graph import Plan
from .operators import Linear, Op

#: activations whose output is max(0, ·)-like
RECTIFIERS = {"F.relu", "torch.relu", "ReLU", "ReLU6", "F.relu6", "aten.relu", "aten.relu6", "Tensor.relu",
              "Tensor.relu_", "torch.relu_", "F.relu_", "aten.threshold", "Threshold"}
#: ops that neither rectify nor end the path (sign and location of the value pass through)
_THROUGH_LABELS = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "Identity", "F.dropout", "aten.dropout",
                   "aten.native_dropout", "aten.clone", "torch.clone", "Tensor.contiguous", "Tensor.clone",
                   "aten.alias", "aten.contiguous", "aten._to_copy", "Tensor.to", "Tensor.float", "Tensor.double"}
_CONCAT_LABELS = {"torch.cat", "torch.concat", "torch.concatenate", "torch.stack", "aten.cat", "aten.concat",
                  "aten.stack"}


def _verdict(op: Op) -> str:
    """``rectifier``, ``through`` or ``sink`` for an operator on a path downstream of a linear layer."""
    if op.label in RECTIFIERS:
        return "rectifier"
    if isinstance(op, Linear):
        return "through" if op.affine else "sink"
    if op.kind == "pass":
        return "through" if getattr(op, "folded_into", None) or op.label in _THROUGH_LABELS else "sink"
    if op.kind in ("reshape", "zrule", "tuple_get"):
        return "through"
    if op.kind == "grad":   # routing: slicing, padding, pooling, upsampling … but a concatenation ends the path
        return "sink" if op.label in _CONCAT_LABELS else "through"
    return "sink"   # sums, differences, scales, stripped outputs, pass-through products, unknown …


def output_rectified(op: Op, by_node: dict[fx.Node, Op], output_node: fx.Node) -> bool:
    """Whether every downstream path of ``op`` reaches a ReLU first (see the module docstring)."""
    stack, seen = [op.node], {op.node}
    while stack:
        node = stack.pop()
        if node is output_node or not node.users:
            return False
        for user in node.users:
            if user in seen:
                continue
            seen.add(user)
            other = by_node.get(user)
            verdict = "sink" if other is None else _verdict(other)
            if verdict == "sink":
                return False
            if verdict == "through":
                stack.append(user)
    return True


def rectified_layers(plan: Plan) -> dict[fx.Node, bool]:
    """Linear node -> whether its output is rectified, for every linear operator of ``plan``."""
    by_node = {op.node: op for op in plan.steps}
    return {op.node: output_rectified(op, by_node, plan.output_node) for op in plan.linear()}
