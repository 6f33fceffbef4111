"""The engine's fast paths agree with the general computation they replace (issue 14, speed).

- Rules on a per-channel affine layer (an unfoldable BatchNorm) use closed forms (one elementwise pass
  per term instead of the general modified-layer trick): checked against the same map written as a
  1×1×1 convolution with a diagonal kernel, which goes through the general path, for every rule that
  has a closed form, inputs of both signs, biases of both signs and none.
- Rules write into buffers they own (in place): the caller's ``x``, ``r`` and the layer's weights are
  unchanged, and results equal the out-of-place formulas on convolutions, transposed convolutions and
  dense layers, biased and bias-free, with negative inputs.
"""
from __future__ import annotations

import pytest
import torch

from NeuroRelevanceLib.engine.layers import LinearLayer
from NeuroRelevanceLib.engine.rules import LRP0, AlphaBeta, Epsilon, Gamma, ZPlus

DT = torch.float64
RULES = [LRP0(), Epsilon(1e-3), ZPlus(), AlphaBeta(1.0, 0.0), AlphaBeta(2.0, 1.0), Gamma(0.25)]


def _affine_and_conv(bias: str, nonneg: bool) -> tuple[LinearLayer, LinearLayer]:
    g = torch.Generator().manual_seed(3)
    c = 5
    w = torch.randn(c, generator=g, dtype=DT)
    w[0] = 0.0  # a channel the layer switches off
    biases = {"none": None, "pos": torch.rand(c, generator=g, dtype=DT), "mixed": torch.randn(c, generator=g, dtype=DT)}
    b = biases[bias]
    affine = LinearLayer("affine", w, b, input_nonneg=nonneg)
    conv = LinearLayer("conv", torch.diag(w).reshape(c, c, 1, 1, 1), None if b is None else b.clone(), 1, 0, 1, 1,
                       input_nonneg=nonneg)
    return affine, conv


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.describe())
@pytest.mark.parametrize("bias", ["none", "pos", "mixed"])
@pytest.mark.parametrize("nonneg", [False, True])
def test_affine_closed_forms_equal_the_general_path(rule, bias, nonneg):
    affine, conv = _affine_and_conv(bias, nonneg)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 5, 3, 4, 2, generator=g, dtype=DT)
    if nonneg:
        x = x.clamp(min=0)
    x[0, 1, 0, 0, 0] = 0.0
    r = torch.randn(2, 5, 3, 4, 2, generator=g, dtype=DT)
    z = affine.forward(x, affine.weight, affine.bias)
    x0, r0, z0, w0 = x.clone(), r.clone(), z.clone(), affine.weight.clone()
    got = rule.relevance(affine, x, z if rule.needs_output else None, r)
    want = rule.relevance(conv, x, conv.forward(x, conv.weight, conv.bias) if rule.needs_output else None, r)
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12), (got - want).abs().max()
    assert torch.equal(x, x0) and torch.equal(r, r0) and torch.equal(z, z0) and torch.equal(affine.weight, w0)


def _layers() -> list[tuple[str, LinearLayer, tuple]]:
    g = torch.Generator().manual_seed(5)
    conv_w = torch.randn(4, 3, 3, 3, 3, generator=g, dtype=DT)
    convt_w = torch.randn(3, 4, 2, 2, 2, generator=g, dtype=DT)
    dense_w = torch.randn(6, 7, generator=g, dtype=DT)
    return [
        ("conv+bias", LinearLayer("conv", conv_w, torch.randn(4, generator=g, dtype=DT), 1, 1), (1, 3, 5, 6, 4)),
        ("conv strided", LinearLayer("conv", conv_w, None, 2, 1), (1, 3, 7, 6, 5)),
        ("convT+bias", LinearLayer("convT", convt_w, torch.randn(4, generator=g, dtype=DT), 2, 0), (1, 3, 3, 4, 3)),
        ("dense", LinearLayer("dense", dense_w, torch.randn(6, generator=g, dtype=DT)), (3, 7)),
        ("dense no bias", LinearLayer("dense", dense_w, None), (3, 7)),
    ]


def _reference(rule, layer: LinearLayer, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The rule's formula with autograd and no in-place operation (an independent oracle)."""
    w, b = layer.weight, layer.bias

    def part(wa, wb, ba, sign):
        xp, xn = x.clamp(min=0).requires_grad_(True), x.clamp(max=0).requires_grad_(True)
        z = layer.forward(xp, wa, ba) + layer.forward(xn, wb, None)
        s = (r / (z + sign * rule.stabilizer)).detach()
        gp, gn = torch.autograd.grad((z * s).sum(), [xp, xn])
        return xp.detach() * gp + xn.detach() * gn

    if isinstance(rule, Epsilon):
        xg = x.clone().requires_grad_(True)
        z = layer.forward(xg, w, b)
        den = z + rule.epsilon * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)
        s = torch.where(den == 0, torch.zeros_like(r), r / torch.where(den == 0, torch.ones_like(den), den)).detach()
        (grad,) = torch.autograd.grad((z * s).sum(), xg)
        return x * grad
    bias = None if isinstance(rule, ZPlus) else b
    pos = part(w.clamp(min=0), w.clamp(max=0), None if bias is None else bias.clamp(min=0), +1)
    out = rule.alpha * pos
    if rule.beta:
        out = out - rule.beta * part(w.clamp(max=0), w.clamp(min=0), None if bias is None else bias.clamp(max=0), -1)
    return out


@pytest.mark.parametrize("rule", [LRP0(), Epsilon(1e-2), ZPlus(), AlphaBeta(1.0, 0.0), AlphaBeta(2.0, 1.0)],
                         ids=lambda r: r.describe())
@pytest.mark.parametrize("which", range(5))
def test_rules_write_only_their_own_buffers_and_match_the_formula(rule, which):
    name, layer, shape = _layers()[which]
    g = torch.Generator().manual_seed(6)
    x = torch.randn(shape, generator=g, dtype=DT)   # negative inputs: z⁺ assumptions must not be taken
    z = layer.forward(x, layer.weight, layer.bias)
    r = torch.randn(z.shape, generator=g, dtype=DT)
    x0, r0, z0, w0 = x.clone(), r.clone(), z.clone(), layer.weight.clone()
    got = rule.relevance(layer, x, z if rule.needs_output else None, r)
    assert torch.allclose(got, _reference(rule, layer, x, r), rtol=1e-8, atol=1e-10), name
    assert torch.equal(x, x0) and torch.equal(r, r0) and torch.equal(z, z0) and torch.equal(layer.weight, w0)


def test_tap_comparison_is_the_relative_max_difference():
    from NeuroRelevanceLib.engine.taps import _relative

    g = torch.Generator().manual_seed(7)
    b = torch.randn(2, 3, 4, 5, generator=g)
    a = b + 1e-3 * torch.randn(2, 3, 4, 5, generator=g)
    assert _relative(b, b) == 0.0 and _relative(b.view(2, 3, 20), b.view(2, 3, 20)) == 0.0
    assert _relative(a, b) == pytest.approx(float((a - b).abs().max() / b.abs().max()), rel=1e-6)
    assert _relative(b.clone(), b) == 0.0
    assert _relative(b.t() if b.dim() == 2 else b.transpose(0, 1).contiguous().transpose(0, 1), b) == 0.0
    nan = a.clone()
    nan[0, 0, 0, 0] = float("nan")
    assert _relative(nan, b) == float("inf") and _relative(a[:1], b) == float("inf")
    assert _relative(torch.zeros(3), torch.zeros(3)) == 0.0 and _relative(torch.ones(3), torch.zeros(3)) == 1.0
