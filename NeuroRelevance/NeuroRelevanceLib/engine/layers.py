"""A linear layer (convolution, transposed convolution, dense) seen as weights plus two functions.

Rules only need ``forward(x, w, b)`` (the layer with substituted parameters) and
``vjp(x, w, g)`` (the transposed layer applied to ``g``: the gradient w.r.t. the input of
``forward(x, w, ·)`` with ``g`` as upstream gradient). The vector-Jacobian product uses
``aten.convolution_backward`` with only the input gradient requested, so no weight gradient and
no autograd graph are ever built.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn.functional as F


def _channels(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-channel vector (C,) shaped to multiply a (N, C, *spatial) tensor."""
    return v.reshape(1, -1, *([1] * (like.dim() - 2)))


@dataclass
class LinearLayer:
    """Parameters and geometry of one conv / conv-transpose / dense operation.

    ``kind`` is ``"conv"``, ``"convT"``, ``"dense"`` or ``"affine"`` (a per-channel ``x * weight + bias``:
    a BatchNorm that could not be folded, ``weight`` and ``bias`` of shape (C,)); ``weight`` and ``bias``
    are our own tensors (detached, already in the run's dtype/device), never the user's parameters.
    ``pre_pad`` holds (pad, mode) for convolutions with a non-zero ``padding_mode``.
    """

    kind: str
    weight: torch.Tensor
    bias: Optional[torch.Tensor]
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    output_padding: Any = 0
    pre_pad: Optional[tuple] = None
    folded: list = field(default_factory=list)
    input_nonneg: bool = False  # the graph guarantees a non-negative input (ReLU before it)
    fused: Optional[tuple] = None  # (weight, bias, n_companions): layer and rule companions in one call

    @property
    def spatial_dims(self) -> int:
        return self.weight.dim() - 2

    def _tuple(self, value: Any) -> list:
        n = self.spatial_dims
        if isinstance(value, int):
            return [value] * n
        return list(value)

    def forward(self, x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor]) -> torch.Tensor:
        """The layer's operation on ``x`` with weight ``w`` and bias ``b`` (None: no bias)."""
        if self.kind == "affine":
            out = x * _channels(w, x)
            return out if b is None else out + _channels(b, x)
        if self.kind == "dense":
            return F.linear(x, w, b)
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad[0], mode=self.pre_pad[1])
        n = self.spatial_dims
        if self.kind == "conv":
            fn = (F.conv1d, F.conv2d, F.conv3d)[n - 1]
            return fn(x, w, b, self.stride, self.padding, self.dilation, self.groups)
        fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n - 1]
        return fn(x, w, b, self.stride, self.padding, self.output_padding, self.groups, self.dilation)

    def set_companions(self, pairs: list) -> bool:
        """Prepare one call computing the layer and ``pairs`` of modified (weight, bias) on the same input
        (stacked along output channels). Only for dense and ungrouped convolutions."""
        if not pairs or self.kind not in ("conv", "dense") or self.groups != 1:
            self.fused = None
            return False
        weights = [self.weight] + [w for w, _ in pairs]
        biases = [self.bias] + [b for _, b in pairs]
        if all(b is None for b in biases):
            bias = None
        else:
            bias = torch.cat([b if b is not None else torch.zeros(self.weight.shape[0], dtype=self.weight.dtype,
                                                                  device=self.weight.device) for b in biases])
        self.fused = (torch.cat(weights, 0), bias, len(pairs))
        return True

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """The layer's output, plus the companions' outputs when ``set_companions`` prepared them."""
        if self.fused is None:
            return self.forward(x, self.weight, self.bias), []
        w, b, n = self.fused
        out = self.forward(x, w, b)
        c = self.weight.shape[0]
        dim = -1 if self.kind == "dense" else 1
        parts = out.split(c, dim=dim)
        return parts[0], [p.contiguous() for p in parts[1:n + 1]]

    def vjp(self, x: torch.Tensor, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Gradient of ``<forward(x, w, ·), g>`` with respect to ``x`` (weights frozen)."""
        if self.kind == "affine":
            return g * _channels(w, g)
        if self.kind == "dense":
            return g.matmul(w)
        if self.pre_pad is not None or isinstance(self.padding, str):
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self.forward(xg, w, None), xg, g)
            return grad
        fast = self._fast_vjp(x, w, g)
        if fast is not None:
            return fast
        transposed = self.kind == "convT"
        grad, _, _ = torch.ops.aten.convolution_backward(
            g, x, w, None, self._tuple(self.stride), self._tuple(self.padding), self._tuple(self.dilation),
            transposed, self._tuple(self.output_padding) if transposed else [0] * self.spatial_dims,
            self.groups, [True, False, False])
        return grad

    def _fast_vjp(self, x: torch.Tensor, w: torch.Tensor, g: torch.Tensor) -> Optional[torch.Tensor]:
        """The transposed map as a forward (transposed) convolution, which CPU backends run faster
        and with less scratch memory than ``convolution_backward``; None where it does not apply."""
        n = self.spatial_dims
        stride, padding, dilation = self._tuple(self.stride), self._tuple(self.padding), self._tuple(self.dilation)
        if self.kind == "convT":  # transpose of a transposed convolution: the plain convolution
            return (F.conv1d, F.conv2d, F.conv3d)[n - 1](g, w, None, stride, padding, dilation, self.groups)
        if self.groups != 1:
            return None
        k = w.shape[2:]
        if all(s_ == 1 for s_ in stride):
            pad = [dilation[i] * (k[i] - 1) - padding[i] for i in range(n)]
            if min(pad) < 0:
                return None
            flipped = w.transpose(0, 1).flip(list(range(2, 2 + n)))
            return (F.conv1d, F.conv2d, F.conv3d)[n - 1](g, flipped, None, 1, pad, dilation)
        out_pad = [x.shape[2 + i] - ((g.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k[i] - 1) + 1)
                   for i in range(n)]
        if not all(0 <= out_pad[i] < max(stride[i], dilation[i]) for i in range(n)):
            return None
        return (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n - 1](
            g, w, None, stride, padding, out_pad, 1, dilation)

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
