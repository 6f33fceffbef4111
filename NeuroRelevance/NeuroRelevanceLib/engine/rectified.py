"""Which linear layers have a rectified output: the graph query behind the graph-aware presets.

A conv/dense layer's output is *rectified* when every path from it through the operator graph reaches
a ReLU before anything else that matters. On the way it may pass ops that keep the question open:
dropout, identity, reshapes, pooling, upsampling, padding, indexing, and the per-channel affine maps
with a **positive** scale that the engine passes relevance through unchanged — a folded or affine
BatchNorm, and Group/Instance/LayerNorm (at one input their statistics are fixed numbers, so the layer
is ``γ·(x − μ)/σ + β``: conv → GroupNorm → ReLU is as rectified as conv → BatchNorm → ReLU). A norm
whose scale γ is negative somewhere is walked through too, but flips the sign that z⁺ relies on *if the path
then reaches a ReLU*: such a layer is ``negative`` (its preset refuses it) unless it gets ε anyway (not
rectified, no norm on the way), ε being indifferent to the sign. On a path that reaches no ReLU the sign
changes nothing (the verdict is the same for either sign). A folded BatchNorm is different: folding moved its
sign into the conv's weights.

A path that first reaches a sum or difference (a residual add, a shortcut), a concatenation (a U-Net
skip), a product, another linear layer, the model's output (a head) or an activation other than ReLU
(LeakyReLU, PReLU, ELU, GELU, SiLU … pass negative values on, so relevance does not arrive through a
ReLU) ends as *not rectified*. z⁺ and αβ assume the layer's relevance comes through a ReLU; the
``graph-*`` presets use ε where it does not (``presets.GraphPreset``) — unless a pass-through norm lies on the
way (*normalised*): its relevance is then not proportional to the layer's own output and ε would divide by an
unrelated, possibly near-zero value, so the base rule stays. ``Verdict.reason`` says why (docs/engine.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
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
#: normalisation by the input's own statistics (a pass for relevance): label -> position of the scale γ
#: among the call's arguments (module calls read ``module.weight``)
_NORMS = {"F.group_norm": (2, "weight"), "aten.group_norm": (2, "weight"), "aten.native_group_norm": (1, "weight"),
          "F.instance_norm": (3, "weight"), "aten.instance_norm": (1, "weight"), "F.layer_norm": (2, "weight"),
          "aten.layer_norm": (2, "weight"), "aten.native_layer_norm": (2, "weight")}
_NORM_MODULES = {"GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LayerNorm", "BatchNorm1d",
                 "BatchNorm2d", "BatchNorm3d"}


@dataclass(frozen=True)
class Verdict:
    """What the graph says about a layer's output: ``rectified`` (reaches a ReLU on every path), ``normalised``
    (not rectified, but a norm lies on a path: its relevance is not proportional to the layer's own output, so ε
    would divide by an unrelated, possibly near-zero value), ``negative`` (a norm with a negative scale lies on a
    path that reaches a ReLU, and the layer would get the base rule) or plain not rectified; ``reason``: the text
    ``Explanation.rules`` shows."""

    rectified: bool
    reason: str
    normalised: bool = False
    negative: bool = False

    def __bool__(self) -> bool:
        return self.rectified


def _scale(op: Op, consts: dict) -> Any:
    """The scale γ of a norm op (None: no affine scale, i.e. 1); ``False`` when it cannot be read."""
    if op.module is not None:
        return getattr(op.module, "weight", None)
    index, name = _NORMS[op.label]
    node = op.node
    arg = node.kwargs.get(name, node.args[index] if len(node.args) > index else None)
    if arg is None:
        return None
    if isinstance(arg, fx.Node):
        return consts.get(arg, False)
    return arg if isinstance(arg, torch.Tensor) else False


def _norm_step(op: Op, consts: dict) -> tuple[str, str]:
    """A norm op on the path: ``through`` when its scale is positive everywhere, else ``sink`` with why."""
    gamma = _scale(op, consts)
    if gamma is False:
        return "sink", f"feeds {op.label} ('{op.name}') whose scale could not be read"
    if gamma is not None and bool((gamma.detach() < 0).any()):
        count = int((gamma.detach() < 0).sum())
        return "negative", f"feeds {op.label} ('{op.name}') with a negative scale γ in {count} channel(s)"
    return "norm", op.label


def _step(op: Op, consts: dict) -> tuple[str, str]:
    """``(rectifier|through|norm|sink|negative, text)`` for an operator on a path downstream of a linear layer:
    ``norm`` is a pass-through normalisation (relevance handed back unchanged), ``through`` any other op that keeps
    the question open (a folded or affine BatchNorm: its text, else empty); ``sink``/``negative``: why the path
    ends there."""
    label, where = op.label, f"('{op.name}')"
    if label in RECTIFIERS:
        return "rectifier", ""
    if isinstance(op, Linear):
        if not op.affine:
            return "sink", f"feeds another layer {where}"
        if bool((op.layer.weight.detach() < 0).any()):
            return "negative", f"feeds a BatchNorm {where} with a negative scale γ/σ"
        return "through", "BatchNorm"
    if getattr(op, "folded_into", None):   # folding moved the BatchNorm's scale, and its sign, into the layer
        return "through", "BatchNorm"
    if label in _NORMS or (op.module is not None and label in _NORM_MODULES):
        return _norm_step(op, consts)
    if op.kind == "pass":
        if label in _THROUGH_LABELS:
            return "through", ""
        return "sink", f"feeds {label} {where}, which is not a rectifier (negative values pass)"
    if op.kind in ("reshape", "zrule", "tuple_get"):
        return "through", ""
    if op.kind == "grad":   # routing: slicing, padding, pooling, upsampling … but a concatenation ends the path
        return ("sink", f"feeds a concatenation {where}") if label in _CONCAT_LABELS else ("through", "")
    kinds = {"add": "a sum", "sub": "a difference", "rsub": "a difference", "scale": "a product or quotient"}
    return "sink", f"feeds {kinds.get(op.kind, label)} {where}"


def output_rectified(op: Op, by_node: dict[fx.Node, Op], output_node: fx.Node, consts: dict | None = None) -> Verdict:
    """Whether every downstream path of ``op`` reaches a ReLU first (see the module docstring), and why.

    The walk carries, per path, the first op with a negative scale met on it (``flip``): a ReLU reached with one
    makes the verdict ``negative`` where the layer would get the base rule (rectified or normalised)."""
    start = (op.node, "")
    stack, seen, norms, ends, flips, normalised = [start], {start}, [], [], [], False
    while stack:
        node, flip = stack.pop()
        if node is output_node or not node.users:
            ends.append("feeds the model's output")
            continue
        for user in node.users:
            other = by_node.get(user)
            verdict, text = ("sink", f"feeds '{user.name}'") if other is None else _step(other, consts or {})
            if verdict == "rectifier":
                if flip and flip not in flips:
                    flips.append(flip)
                continue
            if verdict == "sink":
                ends.append(text)
                continue
            label, on = text, flip            # through, norm or negative: the path goes on
            if verdict == "negative" and other is not None:   # a norm (or an unfolded BatchNorm) whose γ < 0 somewhere
                label = "BatchNorm" if isinstance(other, Linear) else other.label
                on = flip or text
            normalised |= verdict == "norm" or (verdict == "negative" and not isinstance(other, Linear))
            if label and label not in norms:
                norms.append(label)
            if (user, on) not in seen:
                seen.add((user, on))
                stack.append((user, on))
    through = f" through {', '.join(norms)}" if norms else ""
    if flips and (not ends or normalised):
        return Verdict(False, f"output would be {'rectified' if not ends else 'normalised'}{through}, but on the way "
                              f"to a ReLU it {flips[0]}", normalised=normalised, negative=True)
    if not ends:
        return Verdict(True, f"output rectified{through}")
    if normalised:
        return Verdict(False, f"output normalised{through}, not rectified: {ends[0]}; ε would divide by the "
                              "un-normalised output", normalised=True)
    return Verdict(False, f"output not rectified: {ends[0]}")


def rectified_layers(plan: Plan) -> dict[fx.Node, Verdict]:
    """Linear node -> whether (and why) its output is rectified, for every linear operator of ``plan``."""
    by_node = {op.node: op for op in plan.steps}
    return {op.node: output_rectified(op, by_node, plan.output_node, plan.consts) for op in plan.linear()}
