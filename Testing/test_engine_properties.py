"""Property tests: the engine on randomly built small bias-free 3D ReLU networks.

Hypothesis draws the depth, channel counts and block kinds — plain conv, residual ``a + b``,
``torch.cat`` growth, a U-Net-style down/up step (pool, conv, ``ConvTranspose3d``, concat skip),
average or max pooling — and checks closed forms that hold for every such network:
LRP-0 equals gradient × input (autograd oracle), and relevance is conserved to 1e-9 in float64
(LRP-0 everywhere, and with the flat rule at the input).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_nets_helpers import class_select, grad_times_input, own_conservation
from NeuroRelevanceLib import explain
from NeuroRelevanceLib.engine.rules import LRP0, Flat

KINDS = ("conv", "residual", "concat", "down_up", "avgpool", "maxpool")
SIDE = 8


class Block(nn.Module):
    """One randomly chosen block; every convolution is bias-free, every activation a ReLU."""

    def __init__(self, kind: str, c: int, width: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "conv":
            self.conv = nn.Conv3d(c, width, 3, padding=1, bias=False)
            self.out_channels = width
        elif kind == "residual":
            self.conv1 = nn.Conv3d(c, width, 3, padding=1, bias=False)
            self.conv2 = nn.Conv3d(width, c, 3, padding=1, bias=False)
            self.out_channels = c
        elif kind == "concat":
            self.conv = nn.Conv3d(c, width, 3, padding=1, bias=False)
            self.out_channels = c + width
        elif kind == "down_up":
            self.conv = nn.Conv3d(c, width, 3, padding=1, bias=False)
            self.up = nn.ConvTranspose3d(width, width, 2, stride=2, bias=False)
            self.out_channels = c + width
        else:
            self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "conv":
            return F.relu(self.conv(x))
        if self.kind == "residual":
            return x + self.conv2(F.relu(self.conv1(x)))
        if self.kind == "concat":
            return torch.cat([x, F.relu(self.conv(x))], dim=1)
        if self.kind == "down_up":
            y = F.relu(self.conv(F.max_pool3d(x, 2)))
            return torch.cat([x, F.relu(self.up(y))], dim=1)
        if self.kind == "avgpool":
            return F.avg_pool3d(x, 2)
        return F.max_pool3d(x, 2)


class RandomNet(nn.Module):
    """Stem conv + ReLU, the drawn blocks, global mean, bias-free linear head with 2 outputs."""

    def __init__(self, in_channels: int, stem: int, blocks: list[tuple[str, int]]) -> None:
        super().__init__()
        self.stem = nn.Conv3d(in_channels, stem, 3, padding=1, bias=False)
        layers, c = [], stem
        for kind, width in blocks:
            layers.append(Block(kind, c, width))
            c = layers[-1].out_channels
        self.blocks = nn.ModuleList(layers)
        self.head = nn.Linear(c, 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(2, 3, 4)))


@st.composite
def networks(draw):
    """A RandomNet spec whose poolings never shrink the 8³ volume below 2³."""
    blocks, side = [], SIDE
    for _ in range(draw(st.integers(1, 4))):
        allowed = [k for k in KINDS if k in ("conv", "residual", "concat") or side >= 4]
        kind = draw(st.sampled_from(allowed))
        if kind in ("avgpool", "maxpool"):
            side //= 2
        blocks.append((kind, draw(st.integers(2, 4))))
    return {"in_channels": draw(st.integers(1, 2)), "stem": draw(st.integers(2, 4)), "blocks": blocks,
            "batch": draw(st.integers(1, 2)), "seed": draw(st.integers(0, 2 ** 16)),
            "target": draw(st.integers(0, 1))}


def _build(spec):
    torch.manual_seed(spec["seed"])
    model = RandomNet(spec["in_channels"], spec["stem"], spec["blocks"]).eval()
    x = torch.randn(spec["batch"], spec["in_channels"], SIDE, SIDE, SIDE, dtype=torch.float64)
    return model, x


SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _worst(relevance: torch.Tensor, f: torch.Tensor) -> float:
    """Largest relative conservation error over samples whose target is not exactly zero."""
    good = f.abs() > 1e-12
    errors = own_conservation(relevance, f)[good]
    return float(errors.max()) if errors.numel() else 0.0


@SETTINGS
@given(spec=networks())
def test_lrp0_is_gradient_times_input_and_relevance_is_conserved(spec):
    model, x = _build(spec)
    common = {"target": spec["target"], "dtype": torch.float64, "device": "cpu", "stabilizer": 0.0}
    gxi, f = grad_times_input(model, x, class_select(spec["target"]))

    lrp0 = explain(model, x, rules={"*": LRP0(), "input": LRP0()}, **common)
    scale = float(gxi.abs().max())
    torch.testing.assert_close(lrp0.relevance, gxi, rtol=0, atol=1e-10 * max(scale, 1e-300))
    assert _worst(lrp0.relevance, f) <= 1e-9

    flat = explain(model, x, rules={"*": LRP0(), "input": Flat(stabilizer=0.0)}, **common)
    assert _worst(flat.relevance, f) <= 1e-9
