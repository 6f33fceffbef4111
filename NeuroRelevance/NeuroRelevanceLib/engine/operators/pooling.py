"""Positive linear maps without parameters: average pooling, upsampling, means and sums.

The z-rule ``R_in = x · Pᵀ(R / stab(z))`` with ``z = P(x)`` (``P`` the op itself, its transpose
taken by autograd w.r.t. the input only). Equals zennit's ``Norm`` rule on ``AvgPool``.
"""
from __future__ import annotations

from .. import ops
from ..rules import divide
from .base import Op, vjp


class ZRule(Op):
    """Average pooling, adaptive average pooling, mean/sum, nearest/linear upsampling: the z-rule."""

    kind = "zrule"
    functions = ops.ZRULE_FUNCS
    methods = ops.ZRULE_METHODS
    modules = ops.ZRULE_MODULES
    records_total = True

    def needs(self):
        return list(self.inputs) + [self.node]

    def nonnegative(self, inputs):
        return bool(inputs) and all(inputs)

    def relevance(self, r, walk):
        x_node = self.inputs[0]
        x, z = walk.value(x_node), walk.value(self.node)
        s = divide(r, z, walk.stabilizer)
        (g,) = vjp(walk.rerun(self, [x_node]), [x], s)
        walk.give(x_node, x * g)
