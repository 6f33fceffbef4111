"""A linear layer (convolution, transposed convolution, dense) seen as weights plus two functions.

Rules only need ``forward(x, w, b)`` (the layer with substituted parameters) and
``vjp(x, w, g)`` (the transposed layer applied to ``g``: the gradient w.r.t. the input of
``forward(x, w, ·)`` with ``g`` as upstream gradient). Both run on ``kernels.py`` (the fastest
torch kernel per shape; the input-gradient as a forward convolution where that is exact), so no
weight gradient and no autograd graph are ever built.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from . import kernels


def _channels(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-channel vector (C,) shaped to multiply a (N, C, *spatial) tensor."""
    return v.reshape(1, -1, *([1] * (like.dim() - 2)))


@dataclass
class LinearLayer:
    """Parameters and geometry of one conv / conv-transpose / dense operation.

    ``kind`` is ``"conv"``, ``"convT"``, ``"dense"``, ``"affine"`` (a per-channel ``x * weight + bias``:
    a BatchNorm that could not be folded, ``weight`` and ``bias`` of shape (C,)) or ``"map"`` (any map
    linear in the input and in ``weight``, ``fn(x, weight)``: a matmul or einsum with a constant operand,
    under the dense rule; no bias); ``weight`` and ``bias``
    are our own tensors (detached, already in the run's dtype/device), never the user's parameters.
    ``pre_pad`` holds (pad, mode) for convolutions with a non-zero ``padding_mode``.
    """

    kind: str
    weight: torch.Tensor
    bias: torch.Tensor | None
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    output_padding: Any = 0
    pre_pad: tuple | None = None
    folded: list = field(default_factory=list)
    input_nonneg: bool = False  # the graph guarantees a non-negative input (ReLU before it)
    companions: list = field(default_factory=list)  # the rule's (weight, bias) pairs computed on the input too
    fused: tuple | None = None  # (weight, bias) of the layer and its companions stacked, built on first use
    fn: Any = None  # kind "map": fn(x, weight)

    @property
    def spatial_dims(self) -> int:
        return self.weight.dim() - 2

    def _tuple(self, value: Any) -> list:
        n = self.spatial_dims
        if isinstance(value, int):
            return [value] * n
        return list(value)

    def forward(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        """The layer's operation on ``x`` with weight ``w`` and bias ``b`` (None: no bias)."""
        if self.kind == "affine":
            out = x * _channels(w, x)
            return out if b is None else out + _channels(b, x)
        if self.kind == "dense":
            return F.linear(x, w, b)
        if self.kind == "map":
            out = self.fn(x, w)
            return out if b is None else out + b
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad[0], mode=self.pre_pad[1])
        if self.kind == "conv":
            padding = self.padding if isinstance(self.padding, str) else self._tuple(self.padding)
            return kernels.conv(x, w, b, self._tuple(self.stride), padding, self._tuple(self.dilation), self.groups)
        return kernels.conv_transpose(x, w, b, self._tuple(self.stride), self._tuple(self.padding),
                                      self._tuple(self.output_padding), self.groups, self._tuple(self.dilation))

    def set_companions(self, pairs: list) -> bool:
        """Let ``run`` compute ``pairs`` of modified (weight, bias) on the layer's input too, in one call with
        the layer (stacked along output channels). Only for dense and ungrouped convolutions."""
        self.fused = None
        self.companions = list(pairs) if pairs and self.kind in ("conv", "dense") and self.groups == 1 else []
        return bool(self.companions)

    def _stacked(self, pairs: list) -> tuple[torch.Tensor, torch.Tensor | None]:
        biases = [b for _, b in pairs]
        if all(b is None for b in biases):
            bias = None
        else:
            bias = torch.cat([b if b is not None else torch.zeros(self.weight.shape[0], dtype=self.weight.dtype,
                                                                  device=self.weight.device) for b in biases])
        return torch.cat([w for w, _ in pairs], 0), bias

    def _split(self, out: torch.Tensor) -> list:
        """Stacked outputs back into one tensor per weight."""
        parts = out.split(self.weight.shape[0], dim=-1 if self.kind == "dense" else 1)
        return [out] if len(parts) == 1 else [p.contiguous() for p in parts]

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """The layer's output, plus the companions' outputs when ``set_companions`` prepared them."""
        if not self.companions:
            return self.forward(x, self.weight, self.bias), []
        if self.fused is None:
            self.fused = self._stacked([(self.weight, self.bias)] + self.companions)
        parts = self._split(self.forward(x, *self.fused))
        return parts[0], parts[1:]

    def vjp(self, x: torch.Tensor, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Gradient of ``<forward(x, w, ·), g>`` with respect to ``x`` (weights frozen)."""
        if self.kind == "affine":
            return g * _channels(w, g)
        if self.kind == "dense":
            return g.matmul(w)
        if self.kind == "map" or self.pre_pad is not None or isinstance(self.padding, str):
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self.forward(xg, w, None), xg, g)
            return grad
        stride, padding, dilation = self._tuple(self.stride), self._tuple(self.padding), self._tuple(self.dilation)
        if self.kind == "convT":  # transpose of a transposed convolution: the plain convolution
            return kernels.conv(g, w, None, stride, padding, dilation, self.groups)
        return kernels.conv_input_grad(g, w, x.shape, stride, padding, dilation, self.groups)

    def out_channel_view(self, scale: torch.Tensor) -> torch.Tensor:
        """Reshape a per-output-channel vector so it multiplies ``weight`` channel-wise."""
        w = self.weight
        if self.kind == "convT":
            g = self.groups
            per = w.shape[1]
            return scale.reshape(g, 1, per, *([1] * (w.dim() - 2))).expand(
                g, w.shape[0] // g, per, *([1] * (w.dim() - 2))).reshape(w.shape[0], per, *([1] * (w.dim() - 2)))
        return scale.reshape(-1, *([1] * (w.dim() - 1)))

    def fold_affine(self, scale: torch.Tensor, shift: torch.Tensor, source: str) -> None:
        """Fold ``y = scale * z + shift`` (per output channel) into this layer's weight and bias."""
        bias = self.bias if self.bias is not None else torch.zeros_like(scale)
        self.weight = self.weight * self.out_channel_view(scale)
        self.bias = bias * scale + shift
        self.folded.append(source)
