"""Closed forms the engine must reproduce exactly (float64), on graphs with add, cat, convT, upsampling."""
from __future__ import annotations

import pytest
import torch

from NeuroRelevanceLib.engine import LRP0, Epsilon, Flat, WSquare, ZPlus, explain
from test_engine_nets import GraphNet, make

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _x(seed=0, shape=(2, 2, 8, 8, 8)):
    torch.manual_seed(seed)
    return torch.randn(*shape, dtype=torch.float64)


def test_lrp0_equals_gradient_times_input():
    model = make(GraphNet(bias=False))
    x = _x()
    e = explain(model, x, preset=None, rules={"*": LRP0()}, target=1, dtype=torch.float64, stabilizer=0.0)
    xg = x.clone().requires_grad_(True)
    model(xg)[:, 1].sum().backward()
    expected = (xg.grad * x).detach()
    err = float((e.relevance - expected).abs().max() / expected.abs().max())
    assert err < 1e-10, err


def test_gradient_times_input_check_can_fail():
    """A large epsilon is no longer gradient x input: the comparison above has teeth."""
    model = make(GraphNet(bias=False))
    x = _x()
    e = explain(model, x, preset=None, rules={"*": Epsilon(0.5)}, target=1, dtype=torch.float64, stabilizer=0.0)
    xg = x.clone().requires_grad_(True)
    model(xg)[:, 1].sum().backward()
    expected = (xg.grad * x).detach()
    assert float((e.relevance - expected).abs().max() / expected.abs().max()) > 1e-6


CONSERVING = {
    "lrp0": {"*": LRP0()},
    "epsilon->0": {"*": Epsilon(1e-13)},
    "zplus": {"*": ZPlus(stabilizer=0.0)},
    "wsquare-input": {"*": ZPlus(stabilizer=0.0), "input": WSquare(stabilizer=0.0)},
    "flat-input": {"*": ZPlus(stabilizer=0.0), "input": Flat(stabilizer=0.0)},
}


@pytest.mark.parametrize("name", list(CONSERVING))
def test_conservation_bias_free(name):
    model = make(GraphNet(bias=False), seed=1)
    x = _x(1)
    e = explain(model, x, preset=None, rules=CONSERVING[name], dtype=torch.float64, stabilizer=0.0)
    assert e.max_conservation_error <= 1e-9, (name, e.conservation_error)
    # layers every path passes through (graph cuts) carry the whole target as well
    for node in ("head", "fuse", "add", "stem", "x"):
        assert torch.allclose(e.layer_totals[node], e.target_value, rtol=1e-9, atol=0), (name, node)


def test_conservation_float32_default():
    model = make(GraphNet(bias=False), seed=1, dtype=torch.float32)
    x = _x(1).float()
    e = explain(model, x, preset=None, rules={"*": ZPlus(stabilizer=0.0)}, stabilizer=0.0)
    assert e.dtype == torch.float32 and e.relevance.dtype == torch.float32
    assert e.max_conservation_error <= 1e-4


def test_biases_break_conservation_and_it_is_reported():
    model = make(GraphNet(bias=True), seed=1)
    e = explain(model, _x(1), preset=None, rules={"*": LRP0()}, dtype=torch.float64, stabilizer=0.0)
    assert e.max_conservation_error > 1e-6


def test_zplus_is_non_negative_for_positive_target():
    model = make(GraphNet(bias=True), seed=2)
    x = _x(2)
    e = explain(model, x, preset="epsilon-plus", rules={"*": ZPlus()},
                target=lambda out: out.sign() * (out == out.max(1, keepdim=True).values).to(out),  # seed |logit|
                dtype=torch.float64)
    assert (e.target_value > 0).all()
    assert (e.relevance >= 0).all()
    assert (e.relevance > 0).any()


def test_deep_taylor_preset_conserves_on_bias_free_net():
    model = make(GraphNet(bias=False), seed=3)
    e = explain(model, _x(3), preset="deep-taylor", dtype=torch.float64)
    assert "WSquare" in next(iter(e.rules.values()))
    assert e.max_conservation_error <= 1e-5  # stabiliser 1e-6 only


class OddConvs(torch.nn.Module):
    """Grouped, dilated, strided (odd sizes), padded-'same', reflect-padded and output-padded transposed convs."""

    def __init__(self, dims: int = 3) -> None:
        super().__init__()
        conv = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)[dims - 1]
        convt = (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)[dims - 1]
        self.a = conv(2, 4, 3, stride=2, padding=1, bias=False)
        self.b = conv(4, 4, 3, padding=2, dilation=2, groups=2, bias=False)
        self.c = convt(4, 4, 3, stride=2, padding=1, output_padding=1, bias=False)
        self.d = conv(4, 4, 3, padding="same", bias=False)
        self.e = conv(4, 2, 3, padding=1, padding_mode="reflect", bias=False)
        self.f = convt(2, 2, 3, stride=2, groups=2, bias=False)

    def forward(self, x):
        y = torch.relu(self.a(x))
        y = torch.relu(self.b(y))
        y = torch.relu(self.c(y))
        y = torch.relu(self.d(y))
        y = self.f(torch.relu(self.e(y)))
        return y.flatten(1).sum(1, keepdim=True)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_lrp0_gradient_times_input_on_unusual_convolutions(dims):
    torch.manual_seed(dims)
    model = make(OddConvs(dims), seed=dims)
    x = torch.randn(1, 2, *([9] * dims), dtype=torch.float64)
    e = explain(model, x, preset=None, rules={"*": LRP0()}, dtype=torch.float64, stabilizer=0.0)
    xg = x.clone().requires_grad_(True)
    model(xg).sum().backward()
    expected = xg.grad * x
    assert float((e.relevance - expected).abs().max() / expected.abs().max()) < 1e-10


class ManyOps(torch.nn.Module):
    """MONAI-style pieces: InstanceNorm/GroupNorm/LayerNorm, PReLU/ELU/GELU, dropout, nearest upsampling,
    adaptive max pooling, split/cat, permute, padding, subtraction, scalar arithmetic — bias-free convs."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.c1 = nn.Conv3d(1, 4, 3, padding=1, bias=False)
        self.n1 = nn.InstanceNorm3d(4, affine=True)
        self.a1 = nn.PReLU()
        self.c2 = nn.Conv3d(4, 4, 3, stride=2, padding=1, bias=False)
        self.n2 = nn.GroupNorm(2, 4)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.c3 = nn.Conv3d(8, 4, 1, bias=False)
        self.drop = nn.Dropout3d(0.3)
        self.pool = nn.AdaptiveMaxPool3d(2)
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 2, bias=False)

    def forward(self, x):
        a = self.a1(self.n1(self.c1(x)))
        b = torch.nn.functional.elu(self.n2(self.c2(a)))
        b = self.up(b)
        p, q = torch.split(torch.cat([a, b], 1), 4, dim=1)
        y = self.c3(torch.cat([q, p], 1).permute(0, 1, 4, 3, 2)) * 2.0 - 0.0
        y = torch.nn.functional.pad(self.drop(torch.nn.functional.gelu(y)), (1, 1, 1, 1, 1, 1))
        y = self.pool(y).flatten(1)
        y = self.ln(torch.cat([y[:, :4], y[:, 4:8] - y[:, 8:12]], 1))
        return self.fc(y)


def test_every_handler_kind_conserves_under_lrp0():
    model = make(ManyOps(), seed=11)
    x = _x(11, (2, 1, 8, 8, 8))
    e = explain(model, x, preset=None, rules={"*": LRP0()}, dtype=torch.float64, stabilizer=0.0)
    assert e.max_conservation_error <= 1e-9, e.conservation_error
    assert torch.allclose(e.output, model(x))
