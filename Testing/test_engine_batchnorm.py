"""A BatchNorm that cannot be folded into the layer before it (after a concatenation as in DenseNet, after a
layer with two users, on the input, or functional) is handled exactly as a per-channel affine layer.

Oracle: LRP-0 == gradient × input (float64, stabilizer 0) with real BatchNorm statistics and biases; on main
such a BatchNorm passed relevance through unchanged (relative error up to 1e10 on DenseNet121).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine_nets_helpers import grad_times_input, randomise_batchnorm
from NeuroRelevanceLib.engine import LRP0, PRESETS, explain

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]


class DenseLayer(nn.Module):
    """DenseNet's pattern: cat -> BN -> ReLU -> conv, and a BN on a conv output that is also reused."""

    def __init__(self) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm3d(1)             # on the model input
        self.c0 = nn.Conv3d(1, 4, 3, padding=1)
        self.c1 = nn.Conv3d(4, 4, 3, padding=1)
        self.bn_cat = nn.BatchNorm3d(8)             # after a concatenation
        self.c2 = nn.Conv3d(8, 4, 1)
        self.bn_shared = nn.BatchNorm3d(4)          # c2's output has two users
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        a = F.relu(self.c0(self.bn_in(x)))
        b = F.relu(self.c1(a))
        h = F.relu(self.bn_cat(torch.cat([a, b], 1)))
        c = self.c2(h)
        d = F.relu(self.bn_shared(c))
        return self.fc(torch.cat([d, F.relu(c)], 1).mean((2, 3, 4)))


class FunctionalBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv3d(1, 4, 3, padding=1)
        self.register_buffer("mean", torch.randn(4) * 0.3)
        self.register_buffer("var", torch.rand(4) + 0.5)
        self.w = nn.Parameter(torch.rand(4) + 0.5)
        self.b = nn.Parameter(torch.randn(4) * 0.1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        c = self.c(x)
        h = F.batch_norm(c, self.mean, self.var, self.w, self.b, False, 0.1, 1e-5)  # c has a second user below
        return self.fc(torch.cat([F.relu(h), F.relu(c)], 1).mean((2, 3, 4)))


def _dense(seed=0):
    torch.manual_seed(seed)
    return randomise_batchnorm(DenseLayer().double(), seed, shape=(2, 1, 6, 6, 6))


def _x(seed=1, n=2):
    return torch.randn(n, 1, 6, 6, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _formats(model, x):
    yield "module", model
    yield "exported", torch.export.export(model, (x,))
    yield "scripted", torch.jit.script(model)


@pytest.mark.parametrize("cls", ["dense", "functional"])
def test_lrp0_equals_gradient_times_input_with_unfoldable_batchnorms(cls):
    torch.manual_seed(2)
    model = _dense() if cls == "dense" else FunctionalBN().double().eval()
    x = _x()
    expected, _ = grad_times_input(model, x, lambda out: out[:, 1])
    for name, variant in _formats(model, x):
        e = explain(variant, x, preset=None, rules={"*": LRP0()}, target=1, dtype=torch.float64, stabilizer=0.0)
        err = float((e.relevance - expected).abs().max() / expected.abs().max())
        assert err < 1e-10, (name, err)


def test_affine_batchnorms_take_their_neighbours_rule():
    e = explain(_dense(), _x(), preset="epsilon-plus", dtype=torch.float64)
    assert "per-channel affine, rule of 'c2'" in e.rules["bn_cat"] and "ZPlus" in e.rules["bn_cat"]
    assert "per-channel affine, rule of 'c0'" in e.rules["bn_in"]
    assert "per-channel affine" in e.rules["bn_shared"]
    assert "folded" not in e.rules["c2"]
    own = explain(_dense(), _x(), preset="epsilon-plus", dtype=torch.float64, rules={"bn_cat": "epsilon"})
    assert "Epsilon" in own.rules["bn_cat"] and "ZPlus" in own.rules["c2"]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs_and_conserves_like_its_rules(preset):
    e = explain(_dense(), _x(), preset=preset, target=1, dtype=torch.float64)
    assert torch.isfinite(e.relevance).all() and e.relevance.shape == (2, 1, 6, 6, 6)


def test_batchnorm_pass_is_seed_000s_option():
    model, x = _dense(), _x()
    fold = explain(model, x, preset=None, rules={"*": LRP0()}, target=1, dtype=torch.float64, stabilizer=0.0)
    keep = explain(model, x, preset=None, rules={"*": LRP0()}, target=1, dtype=torch.float64, stabilizer=0.0,
                   batchnorm="pass")
    assert not any("affine" in v for v in keep.rules.values())
    assert not torch.allclose(fold.relevance, keep.relevance)
    assert torch.allclose(fold.output, keep.output)
