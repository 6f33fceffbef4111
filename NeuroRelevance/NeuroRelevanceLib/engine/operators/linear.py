"""Parametrised layers: convolutions, transposed convolutions, dense layers, BatchNorm.

``Linear`` owns a ``LinearLayer`` (our own copies of weight and bias), the rule the preset or the
caller chose for it, and what the rule needs from the forward pass: the layer input, the output for
rules that reuse it (ε, γ), and the outputs of the rule's *companions* (modified weights such as
W⁺ whose output on the layer input the rule divides by), computed in the forward pass in one call
with the layer itself. ``BatchNorm`` holds its per-channel affine map; the BatchNorm canonizer
(``canonizers.py``) folds it into the preceding layer or turns it into an affine ``Linear``.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

import torch
import torch.fx as fx
import torch.nn as nn
from torch.nn.modules.conv import _ConvNd

from .. import ops
from ..layers import LinearLayer
from .base import Op, Tensor, UnsupportedOperatorError


def batchnorm_affine(weight, bias, mean, var, eps) -> tuple[Tensor, Tensor]:
    """(scale, shift) of an eval-mode BatchNorm: ``y = scale · x + shift`` per channel."""
    scale = 1.0 / torch.sqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    return scale, shift


def layer_from_module(m: nn.Linear | _ConvNd) -> LinearLayer:
    """A ``LinearLayer`` for a Conv*/ConvTranspose*/Linear module (its weights, not copied further)."""
    w = m.weight.detach()
    b = None if m.bias is None else m.bias.detach()
    if isinstance(m, nn.Linear):
        return LinearLayer("dense", w, b)
    transposed = isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    pre_pad = None
    padding: Any = m.padding
    if not transposed and getattr(m, "padding_mode", "zeros") != "zeros":
        pre_pad, padding = (m._reversed_padding_repeated_twice, m.padding_mode), 0
    return LinearLayer("convT" if transposed else "conv", w, b, m.stride, padding, m.dilation, m.groups,
                       getattr(m, "output_padding", 0), pre_pad)


def layer_from_call(target: Any, bound: dict) -> LinearLayer:
    """A ``LinearLayer`` for a functional conv/linear call with bound (constant) arguments."""
    kind, _ = ops.LINEAR_FUNCS[target]
    w, b = bound["weight"], bound.get("bias")
    if kind == "addmm":
        return LinearLayer("dense", w.t(), b)
    if kind == "dense":
        return LinearLayer("dense", w, b)
    if kind == "convolution":
        kind = "convT" if bound.get("transposed") else "conv"
    return LinearLayer(kind, w, b, bound.get("stride", 1), bound.get("padding", 0), bound.get("dilation", 1),
                       bound.get("groups", 1), bound.get("output_padding", 0))


class Linear(Op):
    """A conv / conv-transpose / dense layer (or an unfolded BatchNorm as a per-channel affine layer)
    under an LRP rule (``rules.py``)."""

    kind = "linear"
    functions: ClassVar[Collection] = frozenset(ops.LINEAR_FUNCS)
    modules: ClassVar[tuple] = ops.LINEAR_MODULES
    records_total = True

    def __init__(self, node, run, inputs, label="", module=None) -> None:
        super().__init__(node, run, inputs, label, module)
        self._layer: LinearLayer | None = None
        self.rule: Any = None
        self.affine = False           # an unfoldable BatchNorm (takes its neighbour's rule, ``assign.py``)
        self.folded_module: Any = None  # the BatchNorm module folded into this layer (``canonizers.py``)
        self.pre: list | None = None  # the companions' outputs from the forward pass, until the walk uses them

    @property
    def layer(self) -> LinearLayer:
        """The layer's weights and geometry (``attach`` gives them; the graph builder attaches every layer)."""
        if self._layer is None:
            raise RuntimeError(f"layer {self.name} ({self.label}) has no weights attached")
        return self._layer

    def attach(self, layer: LinearLayer, x_node: fx.Node) -> None:
        """Use ``layer`` on ``x_node``: the forward computes the layer (and the rule's companions)."""
        self._layer, self.inputs = layer, [x_node]
        self.run = lambda env: self.forward(env[x_node])

    def forward(self, x: Tensor) -> Tensor:
        """The layer's output on ``x`` (the rule's companions' outputs are kept in ``pre``)."""
        out, pre = self.layer.run(x)
        self.pre = pre or None
        return out

    def set_rule(self, rule: Any) -> None:
        """Give the layer its rule; its companions are then computed with the layer in the forward pass."""
        self.rule = rule
        self.layer.set_companions(rule.companions(self.layer))

    def needs(self):
        keep = [self.inputs[0]]
        if getattr(self.rule, "needs_output", False):
            keep.append(self.node)
        return keep

    def relevance(self, r, walk):
        x = walk.value(self.inputs[0])
        z = walk.value(self.node) if getattr(self.rule, "needs_output", False) else None
        pre, self.pre = self.pre, None
        r_in = self.rule.relevance(self.layer, x, z, r, pre)
        if walk.layer_filter is not None:
            r_in = walk.layer_filter(r_in)
        walk.give(self.inputs[0], r_in)


class MatMul(Linear):
    """``h @ W``, ``W @ h``, ``torch.mm``/``bmm``/``einsum`` with one activation and one constant operand: a
    dense layer without bias (``graph.py`` gives it its ``LinearLayer``). A product of two activations
    has no rule (``Unknown``)."""

    kind = "linear"
    functions = frozenset(ops.MATMUL_FUNCS)
    methods = frozenset(ops.MATMUL_METHODS)
    modules = ()


class BatchNorm(Op):
    """A BatchNorm in eval mode (``bn``: its per-channel scale and shift; None without running
    statistics, when it normalises by batch statistics and passes relevance like Instance/GroupNorm).
    The BatchNorm canonizer folds it, turns it into an affine ``Linear``, or leaves it a pass."""

    kind = "batchnorm"
    functions = frozenset(ops.BATCHNORM_FUNCS)
    modules = ops.BATCHNORM_MODULES

    def __init__(self, node, run, inputs, label="", module=None) -> None:
        super().__init__(node, run, inputs, label, module)
        self.bn: tuple[Tensor, Tensor] | None = None
        self.tuple_collapsed = False  # the forward returns element 0 of a tuple-valued op

    def relevance(self, r, walk):
        r = r.get(0) if isinstance(r, dict) else r
        if r is not None:
            walk.give(self.tensor_inputs[0], r)


def weights_from_input(label: str, name: str) -> UnsupportedOperatorError:
    """The error for a functional layer whose weights depend on the model input."""
    return UnsupportedOperatorError(f"Operator {label} at node '{name}' computes its weights from the input; "
                                    "LRP needs fixed weights.")
