"""Sums, differences and products with constants.

- ``Sum`` (``a + α·b``, ``a − α·b``, ``c − α·a``): relevance shared in proportion to each term's
  contribution, ``R_a = a · R / stab(a ± α·b)`` (broadcast terms summed back to their shape); a constant
  term — a tensor or a Python number alike — absorbs its share like a bias. Equals zennit's ``Sum``
  module with its ``Norm`` rule.
- ``Scale`` (``x * c``, ``x / c`` with a number or constant tensor): ``R_in = R_out``; a product of
  two activations (also ``h * h``) and a quotient by an activation (``c / h``) have no rule (``Unknown``).
"""
from __future__ import annotations

from collections.abc import Collection
from typing import ClassVar

import torch
import torch.fx as fx

from .. import ops
from ..rules import divide
from .base import Op, Tensor, Unknown
from .routing import Pass


def _reduce_to(r: Tensor, shape: torch.Size) -> Tensor:
    """Sum ``r`` over broadcast dimensions so it has ``shape``."""
    if r.shape == shape:
        return r
    while r.dim() > len(shape):
        r = r.sum(0)
    dims = [d for d, (a, b) in enumerate(zip(r.shape, shape, strict=True)) if b == 1 and a != 1]
    return r.sum(dims, keepdim=True) if dims else r


def _operands(node: fx.Node) -> tuple:
    """The two operands of a binary ``node`` (``add``, ``sub``, ``rsub``, ``mul``, ``div``) however they were
    passed: positionally, or by keyword (``torch.add(a, other=b)``, ``torch.add(input=a, other=b)``)."""
    args, kwargs = node.args, node.kwargs
    first = args[0] if args else kwargs.get("input", kwargs.get("self"))
    second = args[1] if len(args) > 1 else kwargs.get("other")
    return first, second


class Sum(Op):
    """``a + α·b``: relevance split in proportion to each term (``R_a = a·R / stab(a + α·b)``)."""

    kind = "add"
    functions: ClassVar[Collection] = ops.ADD_FUNCS
    methods: ClassVar[Collection] = ops.ADD_METHODS
    records_total = True
    sign = 1.0

    def needs(self):
        return list(self.inputs)  # the sum itself is recomputed from its terms

    def nonnegative(self, inputs):
        return self.sign > 0 and bool(inputs) and all(inputs)

    def _signs(self, alpha: float) -> tuple[float, float]:
        """The factors of the two operands in the sum."""
        return 1.0, self.sign * alpha

    def relevance(self, r, walk):
        node = self.node
        args = list(node.args)
        alpha = node.kwargs.get("alpha", 1)
        if len(args) > 2 and not isinstance(args[2], fx.Node):
            alpha = args[2]
        terms = []
        for a, sign in zip(_operands(node), self._signs(alpha), strict=True):
            if isinstance(a, fx.Node):
                terms.append((a if a in self.inputs else None, walk.value(a), sign))
            else:
                terms.append((None, a, sign))
        z = None
        for _, value, sign in terms:
            term = value if sign == 1 else value * sign
            z = term if z is None else z + term
        s = divide(r, z, walk.stabilizer)  # a temporary of ours: the last term's share is written into it
        del z
        live = [t for t in terms if t[0] is not None]
        for k, (a, value, sign) in enumerate(live):
            last = k == len(live) - 1 and isinstance(value, Tensor) and s.shape == torch.broadcast_shapes(
                s.shape, value.shape) and s.dtype == value.dtype
            contrib = s.mul_(value) if last else s * value
            if sign != 1:
                contrib.mul_(sign)
            walk.give(a, _reduce_to(contrib, value.shape))


class Difference(Sum):
    """``a − α·b``: the split of ``a + (−α)·b``."""

    kind = "sub"
    functions = ops.SUB_FUNCS
    methods = ops.SUB_METHODS
    sign = -1.0


class ReverseDifference(Sum):
    """``aten.rsub(a, c, α) = c − α·a`` (TorchScript's ``2.0 - h``): the split of ``c + (−α)·a``."""

    kind = "rsub"
    functions = ops.RSUB_FUNCS
    methods = frozenset({"__rsub__"})

    def _signs(self, alpha):
        return -alpha, 1.0


class Scale(Op):
    """``x * c`` or ``x / c``: a pass when one operand is a constant; a product of activations has no rule."""

    kind = "scale"
    functions = ops.SCALE_FUNCS
    methods = ops.SCALE_METHODS

    def settle(self, env, value):
        op = super().settle(env, value)
        if op is not self:
            return op
        args = _operands(self.node)
        live = [k for k, a in enumerate(args) if isinstance(a, fx.Node) and a in self.tensor_inputs]
        divides = self.label.split(".")[-1].strip("_") in ("truediv", "itruediv", "div")
        if len(live) == 1 and not (divides and live[0] != 0):
            return self.become(Pass)
        return self.become(Unknown)  # h * h, a * b, c / h: no LRP rule
