"""Every option, target and result is validated: one clear InputError (a ValueError) per bad number, name or
target, a non-finite map is an error, and ``stabilizer=`` reaches every rule that has a constant."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from NeuroRelevanceLib.engine import PRESETS, AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus, explain
from NeuroRelevanceLib.engine.validate import NonFiniteRelevanceError
from NeuroRelevanceLib.errors import InputError
from test_engine_nets import GraphNet, SegNet, make

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")]

NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def net():
    return make(GraphNet(bias=True, bn=True), seed=5)


def _x(shape=(1, 2, 8, 8, 8), seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("options, name", [
    (dict(epsilon=-1.0), "epsilon"), (dict(epsilon=NAN), "epsilon"), (dict(epsilon=INF), "epsilon"),
    (dict(epsilon="small"), "epsilon"), (dict(gamma=-0.25, preset="epsilon-gamma-box"), "gamma"),
    (dict(gamma=NAN), "gamma"), (dict(stabilizer=-1e-6), "stabilizer"), (dict(stabilizer=NAN), "stabilizer"),
    (dict(low=1.0, high=-1.0, preset="epsilon-gamma-box"), "low must not exceed high"),
    (dict(low=NAN, high=1.0), "low"), (dict(low=torch.tensor([0.0, 5.0]), high=1.0), "low must not exceed high"),
    (dict(low=10.0), "low must not exceed high"),  # high taken from the data (max < 10)
    (dict(target=1.7), "integer class index"), (dict(target=np.float64(2.0)), "integer class index"),
    (dict(target=True), "boolean"), (dict(target="AD"), "class name"), (dict(target=[0.5]), "target"),
    (dict(target=torch.full((1, 3), NAN, dtype=torch.float64)), "NaN"),
    (dict(target=lambda out: out * NAN), "NaN"), (dict(target=torch.zeros(1, 3, dtype=torch.float64)), "nothing"),
    (dict(pass_through=[1, 2]), "pass_through"),
])
def test_each_bad_option_is_one_clear_input_error(net, options, name):
    with pytest.raises(InputError, match=name):
        explain(net, _x(), dtype=torch.float64, **options)


@pytest.mark.parametrize("make_rule, name", [
    (lambda: Epsilon(-1), "epsilon"), (lambda: Epsilon(NAN), "epsilon"), (lambda: Gamma(-1), "gamma"),
    (lambda: ZPlus(stabilizer=-1), "stabilizer"), (lambda: AlphaBeta(NAN, 0), "alpha"),
    (lambda: AlphaBeta(3, 1), "alpha - beta = 1"), (lambda: WSquare(INF), "stabilizer"),
    (lambda: Flat(-1), "stabilizer"), (lambda: ZBox(1.0, -1.0), "low must not exceed high"),
    (lambda: ZBox(NAN, 1.0), "low"),
])
def test_rule_objects_validate_their_numbers(make_rule, name):
    with pytest.raises(InputError, match=name):
        make_rule()


def test_nan_in_the_weights_is_named(net):
    broken = make(GraphNet(bias=True, bn=True), seed=5)
    with torch.no_grad():
        broken.res.weight[0, 0, 0, 0, 0] = NAN
    with pytest.raises(InputError, match=r"res\.weight.*NaN|NaN.*res\.weight"):
        explain(broken, _x(), dtype=torch.float64)
    with pytest.raises(InputError, match="res.weight"):
        explain(torch.jit.script(broken), _x(), dtype=torch.float64)


def test_empty_segmentation_targets_name_the_mask():
    model = make(SegNet(), seed=2)
    x = _x((1, 1, 8, 8, 8))
    with torch.no_grad():
        model.out.bias.copy_(torch.tensor([100.0, -100.0], dtype=torch.float64))  # nothing predicted as class 1
    with pytest.raises(InputError, match=r"predicted foreground of channel 1.*empty"):
        explain(model, x, dtype=torch.float64)
    with pytest.raises(InputError, match="given mask is empty"):
        explain(model, x, dtype=torch.float64, target=0, mask=torch.zeros(8, 8, 8))
    with pytest.raises(InputError, match="mask contains NaN"):
        explain(model, x, dtype=torch.float64, target=0, mask=torch.full((8, 8, 8), NAN))
    e = explain(model, x, dtype=torch.float64, target=0)     # channel 0 is predicted everywhere
    assert torch.isfinite(e.relevance).all()


class Tiny(nn.Module):
    """A dense net whose z⁺ denominator is subnormal in float32 (1e-40) while its relevance is not."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(2, 1, bias=False)
        self.l2 = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.l1.weight.copy_(torch.tensor([[1e-20, -1.0]]))
            self.l2.weight.copy_(torch.tensor([[-1.0], [1.0]]))

    def forward(self, x):
        return self.l2(self.l1(x))


def test_a_non_finite_map_is_an_error_not_a_result():
    x = torch.tensor([[1e-20, 1.0]])
    with pytest.raises(NonFiniteRelevanceError, match="NaN or infinite"):
        explain(Tiny(), x, preset=None, rules={"*": ZPlus(stabilizer=0.0)}, target=0, stabilizer=0.0)


def test_a_non_finite_output_is_an_error():
    x = _x()
    x[0, 0, 0, 0, 0] = 1e308
    with pytest.raises(InputError, match="NaN or infinite"):
        explain(make(GraphNet(bias=True, bn=True), seed=5), x, dtype=torch.float64)


class Plain(nn.Module):
    """Conv/ReLU/dense only: no pooling or residual sum, so the explain-level stabilizer acts only in rules."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv3d(1, 3, 3)
        self.c2 = nn.Conv3d(3, 3, 3)
        self.fc = nn.Linear(3 * 2 * 2 * 2, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.c2(torch.relu(self.c1(x)))).flatten(1))


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "epsilon"])   # ε everywhere has no such constant
def test_stabilizer_reaches_every_rule_with_a_constant(preset):
    model = make(Plain(), seed=3)
    x = _x((1, 1, 6, 6, 6), 3)
    small = explain(model, x, preset=preset, target=0, dtype=torch.float64, stabilizer=1e-6)
    large = explain(model, x, preset=preset, target=0, dtype=torch.float64, stabilizer=10.0)
    described = " ".join(large.rules.values())
    assert "stabilizer=10.0" in described and "stabilizer=1e-06" not in described, described
    if preset != "epsilon-plus":   # epsilon-plus: z⁺ on convs (below), ε on the dense head
        assert not torch.allclose(small.relevance, large.relevance)


def test_changing_the_stabilizer_changes_the_zplus_result():
    model = make(Plain(), seed=3)
    x = _x((1, 1, 6, 6, 6), 3)
    small = explain(model, x, preset=None, rules={"*": "zplus"}, target=0, dtype=torch.float64, stabilizer=1e-6)
    large = explain(model, x, preset=None, rules={"*": "zplus"}, target=0, dtype=torch.float64, stabilizer=10.0)
    assert not torch.allclose(small.relevance, large.relevance)
    assert all("ZPlus(stabilizer=10.0)" in v for v in large.rules.values())
    by_object = explain(model, x, preset=None, rules={"*": ZPlus(stabilizer=0.5)}, target=0, dtype=torch.float64,
                        stabilizer=10.0)
    assert all("ZPlus(stabilizer=0.5)" in v for v in by_object.rules.values())  # a rule object keeps its own


def test_per_channel_bounds_compare_per_channel(net):
    x = _x()
    x[:, 1] *= 10
    low = torch.tensor([float(x[:, 0].min()), float(x[:, 1].max()) - 0.01])   # low[1] > max of channel 0 only
    e = explain(net, x, preset="epsilon-gamma-box", dtype=torch.float64, low=low)
    assert torch.isfinite(e.relevance).all()


def test_number_checks_accept_numpy_and_zero(net):
    e = explain(net, _x(), dtype=torch.float64, epsilon=np.float32(0.0), stabilizer=0, target=np.int64(1))
    assert e.target == "class 1" and math.isfinite(e.max_conservation_error)
