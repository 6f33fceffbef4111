"""Graph-aware presets: z⁺/αβ only where a layer's output is rectified, ε where it feeds a sum, a
concatenation or the output, decided from the operator graph; conservation they buy on residual nets."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from NeuroRelevanceLib.engine import PRESETS, explain
from NeuroRelevanceLib.models.schema import PRESETS as CARD_PRESETS
from NeuroRelevanceLib.panel import PRESETS as PANEL_PRESETS

GRAPH = ("graph-epsilon-plus", "graph-deep-taylor", "graph-alpha1-beta0")


class Residual(nn.Module):
    """stem → [relu → a → relu → b] + shortcut(stem) → relu → pool → fc (bias-free: LRP-0/ε conserve)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv3d(1, 3, 3, padding=1, bias=False)
        self.a = nn.Conv3d(3, 3, 3, padding=1, bias=False)
        self.b = nn.Conv3d(3, 3, 3, padding=1, bias=False)
        self.shortcut = nn.Conv3d(3, 3, 1, bias=False)
        self.fc = nn.Linear(3, 2, bias=False)

    def forward(self, x):
        h = self.stem(x)
        y = self.b(F.relu(self.a(F.relu(h)))) + self.shortcut(h)
        return self.fc(F.adaptive_avg_pool3d(F.relu(y), 1).flatten(1))


class TinyUNet(nn.Module):
    """enc → relu → down → up (transposed conv) → cat with enc → conv → relu → 1×1 head."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv3d(2, 3, 3, padding=1)
        self.down = nn.Conv3d(3, 4, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose3d(4, 3, 2, stride=2)
        self.dec = nn.Conv3d(6, 3, 3, padding=1)
        self.head = nn.Conv3d(3, 2, 1)

    def forward(self, x):
        e = F.relu(self.enc(x))
        u = self.up(F.relu(self.down(e)))
        return self.head(F.relu(self.dec(torch.cat([u, e], 1))))


def _init(model: nn.Module, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    for p in model.parameters():
        nn.init.normal_(p, 0.0, 0.4)
    return model.double().eval()


def _x(shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_the_graph_decides_each_layers_rule():
    e = explain(_init(Residual(), 0), _x((1, 1, 6, 6, 6)), preset="graph-epsilon-plus", target=0,
                dtype=torch.float64)
    assert "ZPlus" in e.rules["a"] and "output rectified" in e.rules["a"]
    for layer in ("b", "shortcut"):
        assert "Epsilon" in e.rules[layer] and "feeds a sum ('add')" in e.rules[layer], (layer, e.rules[layer])
    # the stem also feeds the shortcut conv directly (the record says so, not "a sum")
    assert "Epsilon" in e.rules["stem"] and "feeds another layer ('shortcut')" in e.rules["stem"], e.rules["stem"]
    assert "Epsilon" in e.rules["fc"]
    net = _init(TinyUNet(), 0)
    u = explain(net, _x((1, 2, 8, 8, 8)), preset="graph-alpha1-beta0", target=1, dtype=torch.float64)
    for layer in ("enc", "down", "dec"):
        assert "AlphaBeta" in u.rules[layer], (layer, u.rules[layer])
    assert "Epsilon" in u.rules["up"] and "Epsilon" in u.rules["head"]   # upsampler → cat, head → output
    d = explain(net, _x((1, 2, 8, 8, 8)), preset="graph-deep-taylor", target=1, dtype=torch.float64,
                low=-3.0, high=3.0)
    assert "ZBox" in d.rules["enc"] and "ZPlus" in d.rules["dec"] and "Epsilon" in d.rules["up"]


def test_a_folded_batchnorm_passes_the_rectification_through():
    """conv → BatchNorm → ReLU: the BatchNorm is folded into the conv, whose output is still rectified."""
    net = nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), nn.BatchNorm3d(3), nn.ReLU(),
                        nn.Conv3d(3, 3, 3, padding=1), nn.BatchNorm3d(3), nn.ReLU(),
                        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(3, 2))
    net = _init(net, 0)
    for bn in (net[1], net[4]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    e = explain(net, _x((1, 1, 6, 6, 6)), preset="graph-epsilon-plus", target=0, dtype=torch.float64)
    for layer in ("0", "3"):
        assert "ZPlus" in e.rules[layer] and "output rectified" in e.rules[layer], (layer, e.rules[layer])
        assert "folded" in e.rules[layer], (layer, e.rules[layer])


def test_rules_are_the_same_for_a_scripted_model():
    net, x = _init(Residual(), 0), _x((1, 1, 6, 6, 6))
    a = explain(net, x, preset="graph-epsilon-plus", target=0, dtype=torch.float64)
    b = explain(torch.jit.script(net), x, preset="graph-epsilon-plus", target=0, dtype=torch.float64)
    torch.testing.assert_close(a.relevance, b.relevance)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_graph_presets_conserve_where_zplus_on_a_sum_loses_relevance(seed):
    """Bias-free residual net: ε (≈ LRP-0) and z⁺ on rectified layers conserve; z⁺ on the layers that
    feed the sum does not."""
    net, x = _init(Residual(), seed), _x((2, 1, 6, 6, 6), seed)
    out = net(x)
    target = int(out[0].argmax())
    graph = explain(net, x, preset="graph-epsilon-plus", target=target, dtype=torch.float64, epsilon=1e-9)
    fixed = explain(net, x, preset="epsilon-plus", target=target, dtype=torch.float64, epsilon=1e-9)
    assert graph.max_conservation_error < 1e-6
    assert fixed.max_conservation_error > 100 * graph.max_conservation_error


def test_every_front_end_offers_the_engines_presets():
    assert tuple(CARD_PRESETS) == tuple(PRESETS) == tuple(PANEL_PRESETS)
    assert set(GRAPH) <= set(PRESETS)


def test_epsilon_preset_is_epsilon_everywhere_by_name():
    net, x = _init(TinyUNet(), 3), _x((1, 2, 8, 8, 8))
    named = explain(net, x, preset="epsilon", target=1, dtype=torch.float64)
    none = explain(net, x, preset=None, target=1, dtype=torch.float64)
    torch.testing.assert_close(named.relevance, none.relevance, rtol=0, atol=0)
    assert all("Epsilon" in rule for rule in named.rules.values())
