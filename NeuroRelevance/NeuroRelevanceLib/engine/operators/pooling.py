"""Pooling: the z-rule for positive linear maps without parameters, winner-take-all for max pooling.

``ZRule`` (average pooling, upsampling, means and sums): ``R_in = x · Pᵀ(R / stab(z))`` with
``z = P(x)`` (``P`` the op itself, its transpose taken by autograd w.r.t. the input only); equals
zennit's ``Norm`` rule on ``AvgPool``. ``MaxPool``: relevance to the window's maximum, as the gradient.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from .. import ops
from ..ops import normalise_target
from ..rules import divide
from .base import Op, Tensor, vjp
from .routing import Route


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


_A = torch.ops.aten
WITH_INDICES = {1: _A.max_pool1d_with_indices, 2: _A.max_pool2d_with_indices, 3: _A.max_pool3d_with_indices}
_DIMS = {F.max_pool1d: 1, F.max_pool2d: 2, F.max_pool3d: 3, _A.max_pool1d: 1, _A.max_pool2d: 2, _A.max_pool3d: 3,
         nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}
_F_ARGS = ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"]


class MaxPool(Route):
    """Max pooling: winner-take-all, as the gradient. The forward pass keeps the winners' indices (a
    quarter of the input's bytes for 2×2×2 windows) instead of the input, so the reverse walk scatters
    relevance back without pooling again."""

    functions = frozenset({F.max_pool1d, F.max_pool2d, F.max_pool3d, _A.max_pool1d, _A.max_pool2d,
                           _A.max_pool3d})
    modules = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
    methods: ClassVar[Collection] = frozenset()

    @classmethod
    def claims(cls, node, module=None):
        if not super().claims(node, module):
            return False
        if module is not None:
            return not module.return_indices
        return not node.kwargs.get("return_indices", False) and not (len(node.args) > 6 and node.args[6])

    def __init__(self, node, run, inputs, label="", module=None) -> None:
        super().__init__(node, run, inputs, label, module)
        target = type(module) if module is not None else normalise_target(node.target)
        self.dims = _DIMS[target]
        self.indices: Tensor | None = None
        self.in_shape: Any = None
        self.run = self._pool

    def _params(self, env: dict) -> tuple:
        m = self.module
        if m is not None:
            return m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode
        args = fx.node.map_arg((self.node.args, self.node.kwargs), lambda n: env[n])
        bound = dict(zip(_F_ARGS, args[0], strict=False))  # trailing arguments may be defaulted
        bound.update(args[1])
        if "self" in bound:
            bound["input"] = bound.pop("self")
        stride = bound.get("stride")
        return (bound["kernel_size"], [] if stride is None else stride, bound.get("padding", 0),
                bound.get("dilation", 1), bool(bound.get("ceil_mode", False)))

    def _pool(self, env: dict) -> Tensor:
        x = env[self.inputs[0]]
        k, s, p, d, ceil = self._params(env)
        n = self.dims

        def as_list(v: Any) -> list:
            return [v] * n if isinstance(v, int) else list(v)

        out, self.indices = WITH_INDICES[n](x, as_list(k), [] if s in ([], None) else as_list(s), as_list(p),
                                             as_list(d), ceil)
        self.in_shape = x.shape
        return out

    def needs(self):
        return []

    def relevance(self, r, walk):
        n = self.dims
        grad = r.new_zeros(self.in_shape).flatten(-n)
        grad.scatter_add_(-1, self.indices.flatten(-n), r.flatten(-n))
        self.indices = None
        walk.give(self.inputs[0], grad.view(self.in_shape))
