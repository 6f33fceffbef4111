"""Operators that hand relevance on without a rule of their own: pass, reshape, gradient routing.

- ``Pass``: elementwise activations, dropout, identity, Instance/Group/LayerNorm, casts: ``R_in = R_out``.
- ``Clip``: ReLU6, Hardtanh, clamp/clip with constant bounds: ``R_in = R_out`` where the unit is not
  saturated, 0 where it is (the gradient's convention: a saturated unit's output does not depend on its input).
- ``PassOrStrip``: sigmoid — stripped where it produces the model output, else a pass.
- ``Strip``: softmax / log-softmax, removed where they produce the model output.
- ``Reshape``: views, flatten, squeeze: ``R_in = R_out.reshape(input shape)``.
- ``Route``: data movement, concatenation, slicing, padding, max pooling: routed like the gradient.
- ``TupleGet``: an element of a tuple-valued op (the op receives a dict index -> relevance).
- ``PassThrough`` / ``PassThroughMix`` / ``PassThroughGrad``: operators without a rule that the caller named
  in ``pass_through=``: relevance passes unchanged through an elementwise op of one tensor, by the z-rule
  through the gradient (``x ⊙ Jᵀ(R/f(x))``) through a shape-keeping op that mixes voxels (``cumsum``), and
  like the gradient (``Jᵀ R``: selections, products of activations) otherwise.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import ClassVar

import torch
import torch.fx as fx
import torch.nn as nn

from .. import ops
from ..rules import divide
from .base import Op, Tensor, Unknown, UnsupportedOperatorError, vjp

_NONNEG_LABELS = {"F.relu", "torch.relu", "ReLU", "ReLU6", "F.relu6", "aten.relu", "aten.relu6", "Tensor.relu",
                  "Tensor.relu_", "torch.relu_", "F.relu_", "Sigmoid", "F.sigmoid", "torch.sigmoid", "aten.sigmoid",
                  "Tensor.sigmoid", "Softplus", "F.softplus", "aten.softplus", "Hardsigmoid", "F.hardsigmoid"}
_INHERIT_LABELS = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "Identity", "F.dropout", "aten.dropout",
                   "aten.clone", "torch.clone", "Tensor.contiguous", "Tensor.clone", "aten.alias", "aten.contiguous"}


class Input(Op):
    """The model input: where the walk ends."""

    kind = "input"

    def relevance(self, r, walk):
        walk.relevance[self.node] = r


class Pass(Op):
    """``R_in = R_out`` (elementwise activations, dropout, identity, normalisation by the input's own
    statistics, casts; a folded BatchNorm; an op with one tensor operand and a constant)."""

    kind = "pass"
    functions: ClassVar[Collection] = ops.PASS_FUNCS
    methods: ClassVar[Collection] = ops.PASS_METHODS
    modules: ClassVar[tuple] = ops.PASS_MODULES

    def nonnegative(self, inputs):
        if self.label in _NONNEG_LABELS:
            return True
        return self.label in _INHERIT_LABELS and bool(inputs) and inputs[0]

    def relevance(self, r, walk):
        r = r.get(0) if isinstance(r, dict) else r
        if r is not None:
            walk.give(self.tensor_inputs[0], r)


class Clip(Pass):
    """ReLU6 / Hardtanh / clamp / clip: relevance passes where ``f(x) == x`` and stops at saturated units
    (like the gradient), so LRP-0 equals gradient × input through them."""

    kind = "clip"
    functions = ops.CLIP_FUNCS
    methods = ops.CLIP_METHODS
    modules = ops.CLIP_MODULES

    def needs(self):
        return self.inputs[:1]

    def settle(self, env, value):
        op = super().settle(env, value)
        if op is self and len(self.tensor_inputs) != 1:
            return self.become(Unknown)  # bounds that depend on the input: no rule
        return op

    def relevance(self, r, walk):
        x = walk.value(self.inputs[0])
        with torch.no_grad():
            kept = walk.rerun(self, self.inputs[:1])([x]) == x
        walk.give(self.inputs[0], r * kept)


class PassOrStrip(Pass):
    """Sigmoid: stripped where it produces the model output (``Plan.stripped``), else a pass."""

    kind = "pass"
    functions = frozenset(ops.SIGMOID_FUNCS)
    methods = frozenset({"sigmoid"})
    modules = (nn.Sigmoid,)
    strippable = True


class Strip(Op):
    """Softmax / log-softmax: removed where they produce the model output; no rule elsewhere."""

    kind = "strip"
    functions = ops.STRIP_FUNCS
    methods = ops.STRIP_METHODS
    modules = ops.STRIP_MODULES
    strippable = True

    def relevance(self, r, walk):
        users = ", ".join(sorted(u.name for u in self.node.users))
        raise UnsupportedOperatorError(
            f"{self.label} at node '{self.name}' is not the model's last operation (its result goes on to {users}); "
            "LRP explains logits, and removes a softmax/log-softmax/sigmoid only where it produces the output. "
            "Explain the logits: return the layer before the softmax (e.g. a wrapper or a flag that skips it), then "
            "pick the class with target=.")


class Reshape(Op):
    """View-like ops: ``R_in = R_out.reshape(input shape)``."""

    kind = "reshape"
    functions = ops.RESHAPE_FUNCS
    methods = ops.RESHAPE_METHODS
    modules = ops.RESHAPE_MODULES

    def settle(self, env, value):
        op = super().settle(env, value)
        op.in_shape = env[self.inputs[0]].shape if self.inputs and isinstance(env.get(self.inputs[0]), Tensor) \
            else None
        return op

    def nonnegative(self, inputs):
        return bool(inputs) and all(inputs)

    def relevance(self, r, walk):
        walk.give(self.inputs[0], r.reshape(self.in_shape))


class Route(Op):
    """Data movement, concatenation, slicing, padding, max pooling: relevance routed like the gradient
    (slices go back where they came from, max pooling is winner-take-all)."""

    kind = "grad"
    functions: ClassVar[Collection] = ops.GRAD_FUNCS
    methods: ClassVar[Collection] = ops.GRAD_METHODS
    modules: ClassVar[tuple] = ops.GRAD_MODULES

    def needs(self):
        return list(self.inputs)

    def nonnegative(self, inputs):
        return self.label != "F.pad" and bool(inputs) and all(inputs)

    def relevance(self, r, walk):
        tin = self.tensor_inputs
        values = [walk.value(n) for n in tin]
        grads = vjp(walk.rerun(self, tin), values, r)
        for n, v, g in zip(tin, values, grads, strict=True):
            if v.is_floating_point():
                walk.give(n, g)


TUPLE_FIELDS = {"values": 0, "indices": 1}  # fields of max/min/topk/sort/… results (torch.return_types)


class TupleGet(Op):
    """``out[i]`` (or ``out.values``) of a tuple-valued op: relevance collected per index for that op (``t[i]``
    of a tensor is a routed slice)."""

    kind = "tuple_get"

    def settle(self, env, value):
        op = super().settle(env, value)
        if op is self and not isinstance(env.get(self.node.args[0]), (tuple, list)):
            return self.become(Route)
        return op

    def nonnegative(self, inputs):
        return bool(inputs) and all(inputs)

    def relevance(self, r, walk):
        src, idx = self.node.args[0], self.node.args[1]
        idx = TUPLE_FIELDS.get(idx, idx) if isinstance(idx, str) else idx
        slot = walk.relevance.setdefault(src, {})
        slot[idx] = slot[idx] + r if idx in slot else r


class Identity(Pass):
    """A node whose value is another node's (a folded BatchNorm, element 0 of a collapsed tuple)."""

    kind = "pass"
    folded_into: str | None = None  # the layer a folded BatchNorm went into (``canonizers.py``)


class PassThroughGrad(Route):
    """An operator named in ``pass_through=``: relevance routed like the gradient."""

    kind = "passthrough_grad"

    def nonnegative(self, inputs):
        return False

    def settle(self, env, value):
        op = super().settle(env, value)
        if type(op) is PassThroughGrad and len(op.tensor_inputs) == 1 and isinstance(value, Tensor) \
                and value.shape == env[op.tensor_inputs[0]].shape:
            return op.become(PassThrough if _elementwise(op, env, value) else PassThroughMix)
        return op


def _elementwise(op: Op, env: dict, value: Tensor) -> bool:
    """Whether ``op`` (one tensor input, shape kept) acts voxel by voxel: a change of half the input's entries
    changes no other output entry (``cumsum``, ``cummax``, a voxel softmax do)."""
    node = op.tensor_inputs[0]
    x = env[node]
    if not x.is_floating_point() or x.numel() < 2:
        return True
    picked = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)).to(x.device) < 0.5
    bumped = x + picked * (1 + x.abs().max())
    with torch.no_grad():
        moved = op.run({**env, node: bumped})
    return not bool(((moved != value) & ~picked).any())


class PassThrough(Pass):
    """An operator named in ``pass_through=`` that keeps its input's shape: ``R_in = R_out``."""

    kind = "passthrough"

    def nonnegative(self, inputs):
        return False


class PassThroughMix(Route):
    """An operator named in ``pass_through=`` that keeps the shape but mixes voxels (``cumsum``, ``cummax``):
    the z-rule through its gradient, ``R_in = x ⊙ Jᵀ (R_out / f(x))`` (exact for linear and positively
    homogeneous ops, like a layer without bias)."""

    kind = "passthrough_mix"

    def nonnegative(self, inputs):
        return False

    def relevance(self, r, walk):
        node = self.tensor_inputs[0]
        x = walk.value(node)
        with torch.no_grad():
            z = walk.rerun(self, [node])([x])
        c, = vjp(walk.rerun(self, [node]), [x], divide(r, z, walk.stabilizer))
        walk.give(node, x * c)


def getitem_kind(node: fx.Node, source: Op) -> type[Op]:
    """The kind of ``source[i]``: an identity of a collapsed tuple, a tuple element, or a routed slice."""
    if getattr(source, "tuple_collapsed", False):
        return Identity
    if source.kind in ("pass", "batchnorm", "grad", "unknown", "passthrough"):
        return TupleGet if isinstance(node.args[1], int) else Route
    return Route
