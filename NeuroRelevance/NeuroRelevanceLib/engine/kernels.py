"""The convolutions the engine runs itself, on the fastest kernel torch offers for each shape.

PyTorch's CPU dispatcher sends a batch-1 3-D convolution to its slow im2col path whenever
N·C·D·H ≤ 20480 (a heuristic tuned for 2-D images): in a 3-D network that is every layer past the
first stage, 3–10× slower than oneDNN (mkldnn) on the same tensors. ``conv`` calls oneDNN directly
for float32/bfloat16 CPU convolutions with a spatial kernel (1×1×1 convolutions are plain matrix
products, which the native path does best) unless the user switched oneDNN off
(``torch.backends.mkldnn.enabled``); a stride-1 convolution with one or two output channels (the
input-gradient of a first layer on a one-channel scan) runs as a space-to-depth stride-2 convolution
(~3× faster). Results agree with ``F.conv3d`` to float rounding.

``conv_input_grad`` is the transposed map (the input-gradient of a convolution), run as a forward
convolution where that is exact: the flipped kernel for stride 1, a sub-pixel (phase) decomposition
for strided layers with few input channels (the first layer on a one-channel scan, where
``convolution_backward`` and ``conv_transpose3d`` are ~10× slower than the forward), else
``conv_transpose``; ``aten.convolution_backward`` (input gradient only) where none applies.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

_CONV = (F.conv1d, F.conv2d, F.conv3d)
_CONV_T = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)
_ONEDNN_MIN_OUTPUT = 64       # voxels per output channel below which the native path is as fast
_PHASE_MAX_CHANNELS = 16      # input channels × stride volume up to which the phase decomposition pays
_FEW_OUTPUTS = 2              # output channels up to which a space-to-depth stride-2 convolution pays


def _onednn(x: Tensor, w: Tensor, out_voxels: int) -> bool:
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16) and w.dtype == x.dtype
            and bool(torch.backends.mkldnn.enabled) and torch.backends.mkldnn.is_available()
            and any(k > 1 for k in w.shape[2:]) and out_voxels >= _ONEDNN_MIN_OUTPUT)


def _out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv(x: Tensor, w: Tensor, b: Tensor | None, stride: Sequence[int], padding: Sequence[int] | str,
         dilation: Sequence[int], groups: int) -> Tensor:
    """``F.convNd(x, w, b, stride, padding, dilation, groups)`` on the fastest kernel (see module doc)."""
    n = w.dim() - 2
    if not isinstance(padding, str) and x.dim() == n + 2:
        out = [_out_size(x.shape[2 + i], w.shape[2 + i], stride[i], padding[i], dilation[i]) for i in range(n)]
        if min(out) > 0 and _onednn(x, w, math.prod(out)):
            if w.shape[0] <= _FEW_OUTPUTS and groups == 1 and all(s == 1 for s in stride) \
                    and all(d == 1 for d in dilation):
                return _space_to_depth_conv(x, w, b, padding, out)
            return _onednn_conv(x, w, b, padding, stride, dilation, groups)
    return _CONV[n - 1](x, w, b, stride, padding, dilation, groups)


def _onednn_conv(x: Tensor, w: Tensor, b: Tensor | None, padding: Sequence[int], stride: Sequence[int],
                 dilation: Sequence[int], groups: int) -> Tensor:
    return torch.ops.aten.mkldnn_convolution(x.contiguous(), w.contiguous(), b, list(padding), list(stride),
                                             list(dilation), groups)


def _interleave(t: Tensor, n: int, stride: Sequence[int], channels: int) -> Tensor:
    """(N, channels·∏s, q0, q1, …) with phases (r0, r1, …) in the channels -> (N, channels, q0·s0, q1·s1, …)."""
    q = t.shape[2:]
    t = t.reshape(t.shape[0], channels, *stride, *q)
    order = [0, 1] + [v for d in range(n) for v in (2 + n + d, 2 + d)]
    return t.permute(order).reshape(t.shape[0], channels, *[q[d] * stride[d] for d in range(n)])


def _space_to_depth_conv(x: Tensor, w: Tensor, b: Tensor | None, padding: Sequence[int],
                         out: Sequence[int]) -> Tensor:
    """A stride-1 convolution with one or two output channels (oneDNN vectorises over output channels, so
    these run ~3× slower than a 16-channel one) as a stride-2 convolution whose 2^n output channels are
    the output's phases: ``y[2q + r] = Σ_b w_r[b] x[2q + b]`` with ``w_r`` the kernel shifted by ``r``."""
    n, s = w.dim() - 2, 2
    c_out, c_in, k = w.shape[0], w.shape[1], w.shape[2:]
    q = [math.ceil(out[d] / s) for d in range(n)]
    wide = [k[d] + s - 1 for d in range(n)]
    kernel = w.new_zeros(c_out, *([s] * n), c_in, *wide)
    for r in itertools.product(range(s), repeat=n):
        kernel[(slice(None),) + r + (slice(None),) + tuple(slice(r[d], r[d] + k[d]) for d in range(n))] = w
    kernel = kernel.reshape(c_out * s ** n, c_in, *wide)
    right = [s * (q[d] - 1) + wide[d] - x.shape[2 + d] - padding[d] for d in range(n)]
    xp = F.pad(x, [v for d in reversed(range(n)) for v in (padding[d], right[d])])
    y = _interleave(_onednn_conv(xp, kernel, None, [0] * n, [s] * n, [1] * n, 1), n, [s] * n, c_out)
    y = y[(slice(None), slice(None)) + tuple(slice(0, out[d]) for d in range(n))]
    return y if b is None else y + b.reshape(1, -1, *([1] * n))


def conv_transpose(x: Tensor, w: Tensor, b: Tensor | None, stride: Sequence[int], padding: Sequence[int],
                   output_padding: Sequence[int], groups: int, dilation: Sequence[int]) -> Tensor:
    """``F.conv_transposeNd`` (torch's own kernel)."""
    return _CONV_T[w.dim() - 3](x, w, b, stride, padding, output_padding, groups, dilation)


def _phase_input_grad(g: Tensor, w: Tensor, in_shape: Sequence[int], stride: Sequence[int],
                      padding: Sequence[int]) -> Tensor:
    """Input-gradient of a strided, undilated, ungrouped convolution as ONE stride-1 convolution.

    Input position ``j`` with ``j + p = s·q + r`` (phase ``r``) receives ``Σ_m w[r + s·m] g[q − m]``: per
    phase a full correlation of ``g`` with the sub-kernel of taps ≡ r (mod s). All phases are the output
    channels of one convolution (sub-kernels zero-padded to ⌈k/s⌉ taps), interleaved back afterwards.
    """
    n = w.dim() - 2
    c_out, c_in = w.shape[:2]
    k = w.shape[2:]
    taps = [math.ceil(k[d] / stride[d]) for d in range(n)]
    padded = F.pad(w, [v for d in reversed(range(n)) for v in (0, taps[d] * stride[d] - k[d])])
    split = padded.reshape([c_out, c_in] + [v for d in range(n) for v in (taps[d], stride[d])])
    # (c_out, c_in, m0, r0, m1, r1, …) -> (c_in, r0, r1, …, c_out, m0, m1, …), flipped along m
    order = [1] + [3 + 2 * d for d in range(n)] + [0] + [2 + 2 * d for d in range(n)]
    kernel = split.permute(order).flip(list(range(2 + n, 2 + 2 * n)))
    kernel = kernel.reshape(c_in * math.prod(stride), c_out, *taps)
    full = _interleave(conv(g, kernel, None, [1] * n, [t - 1 for t in taps], [1] * n, 1), n, stride, c_in)
    short = [max(0, padding[d] + in_shape[2 + d] - full.shape[2 + d]) for d in range(n)]
    if any(short):  # trailing input positions no window covers: gradient 0
        full = F.pad(full, [v for d in reversed(range(n)) for v in (0, short[d])])
    return full[(slice(None), slice(None)) + tuple(slice(padding[d], padding[d] + in_shape[2 + d])
                                                  for d in range(n))]


def conv_input_grad(g: Tensor, w: Tensor, in_shape: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                    dilation: Sequence[int], groups: int) -> Tensor:
    """Gradient w.r.t. the input (shape ``in_shape``) of ``conv(·, w)`` for upstream gradient ``g``."""
    n = w.dim() - 2
    k = w.shape[2:]
    if all(s == 1 for s in stride):
        pad = [dilation[i] * (k[i] - 1) - padding[i] for i in range(n)]
        if min(pad) >= 0:
            if groups == 1:
                flipped = w.transpose(0, 1).flip(list(range(2, 2 + n)))
            else:  # (G·o, i, k…) -> (G·i, o, k…), flipped
                o, i = w.shape[0] // groups, w.shape[1]
                flipped = w.reshape(groups, o, i, *k).transpose(1, 2).reshape(groups * i, o, *k)
                flipped = flipped.flip(list(range(2, 2 + n)))
            return conv(g, flipped, None, [1] * n, pad, dilation, groups)
    else:
        if groups == 1 and all(d == 1 for d in dilation) and w.shape[1] * math.prod(stride) <= _PHASE_MAX_CHANNELS:
            return _phase_input_grad(g, w, in_shape, stride, padding)
        out_pad = [in_shape[2 + i] - ((g.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k[i] - 1) + 1)
                   for i in range(n)]
        if all(0 <= out_pad[i] < max(stride[i], dilation[i]) for i in range(n)):
            return conv_transpose(g, w, None, stride, padding, out_pad, groups, dilation)
    grad, _, _ = torch.ops.aten.convolution_backward(
        g, torch.empty(in_shape, dtype=g.dtype, device=g.device), w, None, list(stride), list(padding),
        list(dilation), False, [0] * n, groups, [True, False, False])
    return grad
