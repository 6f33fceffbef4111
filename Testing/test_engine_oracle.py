"""Relevance engine against zennit (an independent LRP implementation), rule by rule, in float64.

Models: a sequential 3D CNN with BatchNorm (zennit merges it with SequentialMergeBatchNorm, we fold
it) and a small 3D ResNet of torchvision-style BasicBlocks (zennit's ResNetCanonizer rewrites the
residual `+` into a Sum module; we split the add in the graph). Criterion from issue 3:
max|ours - zennit| / max|zennit| <= 1e-5.

Accounted difference: zennit's MergeBatchNorm turns a merged BatchNorm into "identity" by setting
mean 0, var 1, weight 1, bias 0 but keeps its ``eps``, so every merged BatchNorm still scales by
1/sqrt(1 + eps) in the forward and the backward pass (a 1e-5 relative error per BatchNorm with the
default eps). The test models use ``eps=1e-12`` so that this zennit artefact stays far below the
tolerance; our folding itself is exact (checked against the unfolded model's output below).
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.engine import explain
from NeuroRelevanceLib.engine import rules as R
from zennit_standin import import_zennit

zennit = import_zennit()
import zennit.rules as zr  # noqa: E402
from torchvision.models.resnet import BasicBlock as StandinBasicBlock  # noqa: E402  (stand-in class)
from zennit.attribution import Gradient  # noqa: E402
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402
from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite  # noqa: E402
from zennit.layer import Sum  # noqa: E402
from zennit.torchvision import ResNetCanonizer  # noqa: E402
from zennit.types import Activation, AvgPool, Convolution, Linear  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = 1e-5
LOW, HIGH = -3.0, 3.0


def _randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.eps = 1e-12
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


def sequential_cnn() -> nn.Module:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(2, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(),
        nn.Conv3d(4, 6, 3, stride=2, padding=1), nn.BatchNorm3d(6), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(6, 6, 1), nn.ReLU(), nn.AvgPool3d(2),
        nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3),
    )
    _randomise_bn(model, gen)
    return model.double().eval()


class Block(StandinBasicBlock):
    """torchvision-style BasicBlock in 3D (subclasses the stand-in so zennit's ResNetCanonizer applies)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        nn.Module.__init__(self)
        self.conv1 = nn.Conv3d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv3d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv3d(cin, cout, 1, stride, bias=False), nn.BatchNorm3d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + identity
        return self.relu(out)


class SmallResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(1, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(4)
        self.relu = nn.ReLU()
        self.layer1 = Block(4, 4)
        self.layer2 = Block(4, 8, stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def small_resnet() -> nn.Module:
    torch.manual_seed(1)
    model = SmallResNet()
    _randomise_bn(model, torch.Generator().manual_seed(1))
    return model.double().eval()


# ours, zennit counterpart, first-layer-only (zB)
CASES = {
    "epsilon": (R.Epsilon(1e-6), zr.Epsilon(epsilon=1e-6), False),
    "epsilon-0.1": (R.Epsilon(0.1), zr.Epsilon(epsilon=0.1), False),
    "zplus": (R.ZPlus(), zr.ZPlus(zero_params="bias"), False),
    "alpha1beta0": (R.AlphaBeta(1, 0), zr.AlphaBeta(alpha=1, beta=0), False),
    "alpha2beta1": (R.AlphaBeta(2, 1), zr.AlphaBeta(alpha=2, beta=1), False),
    "gamma": (R.Gamma(0.25), zr.Gamma(gamma=0.25), False),
    "wsquare": (R.WSquare(), zr.WSquare(zero_params="bias"), False),
    "flat": (R.Flat(), zr.Flat(), False),
    "zbox": (R.ZBox(LOW, HIGH), zr.ZBox(low=LOW, high=HIGH), True),
}


def _zennit_relevance(model, x, rule, first_only, canonizers, target):
    base = [(Activation, zr.Pass()), (Sum, zr.Norm()), (AvgPool, zr.Norm())]
    if first_only:
        composite = SpecialFirstLayerMapComposite(
            layer_map=base + [(Linear, zr.Epsilon(epsilon=1e-6))], first_map=[(Convolution, rule)],
            canonizers=canonizers)
    else:
        composite = LayerMapComposite(layer_map=base + [(Linear, rule)], canonizers=canonizers)
    with Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(x, lambda out: out * nn.functional.one_hot(target, out.shape[1]).to(out))
    return relevance


def _ours(model, x, rule, first_only, target):
    rules = {"*": R.Epsilon(1e-6), "input": rule} if first_only else {"*": rule}
    return explain(model, x, preset=None, target=target, rules=rules, dtype=torch.float64, device="cpu")


def _compare(model, x, case, canonizers):
    ours_rule, z_rule, first_only = CASES[case]
    target = torch.tensor([1] * x.shape[0])
    e = _ours(copy.deepcopy(model), x, ours_rule, first_only, target)
    ref = _zennit_relevance(copy.deepcopy(model), x.clone(), z_rule, first_only, canonizers, target)
    err = float((e.relevance - ref).abs().max() / ref.abs().max())
    return err, e, ref


@pytest.mark.parametrize("case", list(CASES))
def test_sequential_cnn_matches_zennit(case):
    torch.manual_seed(2)
    x = (torch.randn(2, 2, 8, 8, 8, dtype=torch.float64)).clamp(LOW, HIGH)
    model = sequential_cnn()
    err, e, ref = _compare(model, x, case, [SequentialMergeBatchNorm()])
    assert ref.abs().max() > 0
    assert torch.allclose(e.output, model(x), rtol=1e-12, atol=1e-12)  # folding is exact
    assert err <= TOL, f"{case}: relative max error {err:.2e}"


@pytest.mark.parametrize("case", ["epsilon", "zplus", "alpha1beta0", "alpha2beta1", "gamma", "wsquare", "flat",
                                  "zbox"])
def test_small_resnet_matches_zennit(case):
    torch.manual_seed(3)
    x = torch.randn(1, 1, 8, 8, 8, dtype=torch.float64).clamp(LOW, HIGH)
    err, e, ref = _compare(small_resnet(), x, case, [ResNetCanonizer()])
    assert err <= TOL, f"{case}: relative max error {err:.2e}"


def test_oracle_detects_a_wrong_rule():
    """The comparison can fail: ε-rule against zennit's z+ is far off."""
    torch.manual_seed(2)
    x = torch.randn(1, 2, 8, 8, 8, dtype=torch.float64)
    model = sequential_cnn()
    target = torch.tensor([1])
    e = _ours(copy.deepcopy(model), x, R.Epsilon(1e-6), False, target)
    ref = _zennit_relevance(copy.deepcopy(model), x.clone(), zr.ZPlus(zero_params="bias"), False,
                            [SequentialMergeBatchNorm()], target)
    assert float((e.relevance - ref).abs().max() / ref.abs().max()) > 1e-2


def test_epsilon_plus_preset_matches_zennit_composite():
    """Our preset = zennit's EpsilonPlus layer map with z+ ignoring (folded) biases."""
    torch.manual_seed(4)
    x = torch.randn(1, 1, 8, 8, 8, dtype=torch.float64)
    model = small_resnet()
    target = torch.tensor([2])
    e = explain(copy.deepcopy(model), x, preset="epsilon-plus", target=target, dtype=torch.float64, device="cpu")
    layer_map = [(Activation, zr.Pass()), (Sum, zr.Norm()), (AvgPool, zr.Norm()),
                 (Convolution, zr.ZPlus(zero_params="bias")), (nn.Linear, zr.Epsilon(epsilon=1e-6))]
    composite = LayerMapComposite(layer_map=layer_map, canonizers=[ResNetCanonizer()])
    with Gradient(model=copy.deepcopy(model), composite=composite) as attributor:
        _, ref = attributor(x, lambda out: out * nn.functional.one_hot(target, 3).to(out))
    err = float((e.relevance - ref).abs().max() / ref.abs().max())
    assert err <= TOL, f"relative max error {err:.2e}"
