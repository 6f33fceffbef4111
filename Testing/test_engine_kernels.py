"""The engine's own convolution kernels (engine/kernels.py) against torch autograd, the independent oracle:
every stride, padding, dilation, group count and odd size in 1-D/2-D/3-D, float32 and float64."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from NeuroRelevanceLib.engine.kernels import conv, conv_input_grad

_CONV = (F.conv1d, F.conv2d, F.conv3d)

CASES = [  # n, c_in, c_out, kernel, stride, padding, dilation, groups, size
    (3, 1, 8, 7, 2, 3, 1, 1, 13), (3, 1, 4, 3, 2, 1, 1, 1, 9), (3, 2, 4, 3, 2, 0, 1, 1, 10),
    (3, 1, 4, 4, 3, 1, 1, 1, 11), (3, 3, 6, 3, 1, 1, 1, 1, 7), (3, 4, 4, 3, 1, 1, 1, 2, 7),
    (3, 4, 8, 3, 1, 2, 2, 4, 9), (3, 8, 4, 1, 1, 0, 1, 1, 6), (3, 4, 8, 3, 2, 1, 1, 1, 9),
    (3, 6, 6, 3, 2, 1, 1, 3, 9), (3, 2, 4, 2, 2, 0, 1, 1, 8), (3, 2, 4, 3, 2, 1, 2, 1, 11),
    (2, 1, 4, 5, 2, 2, 1, 1, 12), (2, 3, 4, 3, 1, 0, 1, 1, 7), (1, 1, 4, 3, 2, 1, 1, 1, 15),
    (1, 2, 2, 3, 1, 1, 3, 2, 12), (3, 1, 16, 3, 1, 1, 1, 1, 16), (3, 4, 2, 3, 1, 1, 1, 1, 9),
    (3, 2, 1, 2, 1, 0, 1, 1, 9), (3, 3, 1, 4, 1, 2, 1, 1, 10), (2, 2, 1, 3, 1, 1, 1, 1, 11),
    (3, 1, 8, 5, 1, 0, 1, 1, 12),
]


def _grad(x, w, g, stride, padding, dilation, groups):
    xg = x.detach().requires_grad_(True)
    out = _CONV[w.dim() - 3](xg, w, None, stride, padding, dilation, groups)
    (grad,) = torch.autograd.grad(out, xg, g)
    return out.detach(), grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}d-ci{c[1]}-co{c[2]}-k{c[3]}-s{c[4]}-p{c[5]}-d{c[6]}-g{c[7]}"
                                             for c in CASES])
def test_conv_and_its_input_gradient_match_autograd(case, dtype):
    n, ci, co, k, s, p, d, groups, size = case
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, ci, *([size] * n), generator=gen, dtype=dtype)
    w = torch.randn(co, ci // groups, *([k] * n), generator=gen, dtype=dtype)
    b = torch.randn(co, generator=gen, dtype=dtype)
    stride, padding, dilation = [s] * n, [p] * n, [d] * n
    want = _CONV[n - 1](x, w, b, stride, padding, dilation, groups)
    got = conv(x, w, b, stride, padding, dilation, groups)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert got.shape == want.shape
    assert float((got - want).abs().max() / want.abs().max()) < tol
    g = torch.randn(want.shape, generator=gen, dtype=dtype)
    _, grad = _grad(x, w, g, stride, padding, dilation, groups)
    mine = conv_input_grad(g, w, x.shape, stride, padding, dilation, groups)
    assert mine.shape == x.shape
    assert float((mine - grad).abs().max() / grad.abs().max()) < tol


def test_odd_sizes_and_uncovered_borders():
    """Input sizes where the last positions fall in no window (stride > kernel reach): gradient 0 there."""
    for size, k, s, p in itertools.product((9, 10, 11, 12), (1, 2, 3), (2, 3), (0, 1)):
        if p >= k:
            continue
        x = torch.randn(1, 1, size, size + 1, size + 2, dtype=torch.float64)
        w = torch.randn(3, 1, k, k, k, dtype=torch.float64)
        out = F.conv3d(x, w, None, s, p)
        g = torch.randn(out.shape, dtype=torch.float64)
        _, grad = _grad(x, w, g, [s] * 3, [p] * 3, [1] * 3, 1)
        mine = conv_input_grad(g, w, x.shape, [s] * 3, [p] * 3, [1] * 3, 1)
        assert torch.allclose(mine, grad, atol=1e-12), (size, k, s, p)
