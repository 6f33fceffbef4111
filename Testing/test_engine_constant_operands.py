"""Constant operands are handled the same however they are spelled, in every graph format.

Oracle: LRP-0 (float64, stabilizer 0) equals gradient × input on piecewise-linear networks with any
biases — a constant added to an activation is a bias. A product of an activation with itself, or a
dense head written as ``h @ W.t()`` / ``torch.mm`` / ``torch.einsum``, is never silently wrong: it is
explained exactly (dense head) or refused without a hint that would give a wrong map.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from engine_nets_helpers import grad_times_input, graph_formats, lrp0, relative_error
from NeuroRelevanceLib.engine import UnsupportedOperatorError, explain

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]
D = torch.float64
OFFSETS = ["add", "sub", "rsub", "torch.add", "method.add", "iadd", "add_alpha"]


class Offset(nn.Module):
    """conv → ReLU → (constant offset written one way) → ReLU → mean → dense."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.conv = nn.Conv3d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        if self.how == "add":
            h = h + 1.0
        elif self.how == "sub":
            h = h - 0.5
        elif self.how == "rsub":
            h = 2.0 - h
        elif self.how == "torch.add":
            h = torch.add(h, 0.75)
        elif self.how == "method.add":
            h = h.add(0.75)
        elif self.how == "iadd":
            h = h.clone()
            h += 1.5
        elif self.how == "add_alpha":
            h = torch.add(h, 0.5, alpha=2.0)
        h = torch.relu(h)
        return self.fc(h.mean((2, 3, 4)))


@pytest.mark.parametrize("how", OFFSETS)
def test_python_number_offset_is_a_bias(how):
    torch.manual_seed(3)
    model = Offset(how).to(D).eval()
    x = torch.randn(1, 1, 6, 6, 6, dtype=D)
    gxi, _ = grad_times_input(model, x, lambda out: out[:, 1])
    for fmt, m in graph_formats(model, x).items():
        e = lrp0(m, x, 1)
        assert relative_error(e.relevance, gxi) < 1e-9, (how, fmt, relative_error(e.relevance, gxi))


def test_number_and_buffer_offsets_agree_under_every_preset():
    class Buf(Offset):
        def __init__(self):
            super().__init__("none")
            self.register_buffer("c", torch.tensor(1.0, dtype=D))

        def forward(self, x):
            return self.fc(torch.relu(torch.relu(self.conv(x)) + self.c).mean((2, 3, 4)))

    torch.manual_seed(4)
    a = Offset("add").to(D).eval()
    b = Buf().to(D).eval()
    b.load_state_dict(a.state_dict(), strict=False)
    x = torch.randn(1, 1, 6, 6, 6, dtype=D)
    for preset in ("epsilon-plus", "alpha1-beta0", None):
        ea = explain(a, x, preset=preset, target=0, dtype=D)
        eb = explain(b, x, preset=preset, target=0, dtype=D)
        assert relative_error(ea.relevance, eb.relevance) < 1e-10, preset


class Square(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.conv = nn.Conv3d(1, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        if self.how == "mul":
            h = h * h
        elif self.how == "torch.mul":
            h = torch.mul(h, h)
        elif self.how == "method":
            h = h.mul(h)
        elif self.how == "div":
            h = h / (h + 1.0)
        return self.fc(h.mean((2, 3, 4)))


@pytest.mark.parametrize("how", ["mul", "torch.mul", "method", "div"])
def test_product_of_an_activation_with_itself_is_refused(how):
    torch.manual_seed(5)
    model = Square(how).to(D).eval()
    x = torch.randn(1, 1, 6, 6, 6, dtype=D)
    for m in graph_formats(model, x).values():
        with pytest.raises(UnsupportedOperatorError, match="pass_through"):
            lrp0(m, x, 1)


class Head(nn.Module):
    """A dense head written functionally, with a Parameter as the constant operand."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.conv = nn.Conv3d(1, 4, 3, padding=1)
        self.W = nn.Parameter(torch.randn(3, 4))
        self.b = nn.Parameter(torch.randn(3))

    def forward(self, x):
        h = torch.relu(self.conv(x)).mean((2, 3, 4))
        if self.how == "matmul":
            return h @ self.W.t()
        if self.how == "matmul+b":
            return h @ self.W.t() + self.b
        if self.how == "torch.matmul":
            return torch.matmul(h, self.W.t())
        if self.how == "mm":
            return torch.mm(h, self.W.t())
        if self.how == "einsum":
            return torch.einsum("nc,kc->nk", h, self.W)
        if self.how == "left":  # W @ hᵀ, transposed back
            return (self.W @ h.t()).t()
        raise AssertionError(self.how)


@pytest.mark.parametrize("how", ["matmul", "matmul+b", "torch.matmul", "mm", "einsum", "left"])
def test_functional_dense_head_is_exact_or_refused_without_a_wrong_hint(how):
    torch.manual_seed(6)
    model = Head(how).to(D).eval()
    x = torch.randn(1, 1, 6, 6, 6, dtype=D)
    gxi, _ = grad_times_input(model, x, lambda out: out[:, 1])
    for fmt, m in graph_formats(model, x).items():
        try:
            e = lrp0(m, x, 1)
        except UnsupportedOperatorError as refused:
            assert "pass_through" not in str(refused), (how, fmt, str(refused))
            continue
        assert relative_error(e.relevance, gxi) < 1e-9, (how, fmt, relative_error(e.relevance, gxi))
        for preset in ("epsilon-plus", "alpha1-beta0"):
            ep = explain(m, x, preset=preset, target=1, dtype=D)
            assert torch.isfinite(ep.relevance).all()


def test_matmul_head_is_a_dense_layer_under_the_preset():
    """``h @ W.t()`` gets the dense rule like ``nn.Linear`` (same map as the same weights in F.linear)."""
    torch.manual_seed(7)
    model = Head("matmul").to(D).eval()
    x = torch.randn(1, 1, 6, 6, 6, dtype=D)

    class AsLinear(nn.Module):
        def __init__(self, src):
            super().__init__()
            self.conv, self.fc = src.conv, nn.Linear(4, 3, bias=False)
            self.fc.weight = src.W

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean((2, 3, 4)))

    ref = AsLinear(model).eval()
    for preset in ("epsilon-plus", "alpha1-beta0", "deep-taylor"):
        a = explain(model, x, preset=preset, target=2, dtype=D)
        b = explain(ref, x, preset=preset, target=2, dtype=D)
        assert relative_error(a.relevance, b.relevance) < 1e-10, preset
