"""In-place operators in every graph format: `inplace=True` activations (MONAI's default), `out += residual`,
`x.add_(y)`, `torch.relu_`, `F.relu(x, inplace=True)` — exported programs hold them as aten.relu_/add_/…

Oracle: LRP-0 == gradient × input (float64, stabilizer 0) of the same network written out of place.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine_nets_helpers import grad_times_input
from NeuroRelevanceLib.engine import LRP0, UnsupportedOperatorError, explain

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]


class InPlaceEverywhere(nn.Module):
    """Every in-place spelling of the supported elementwise ops (piecewise linear: LeakyReLU/ReLU/ReLU6)."""

    def __init__(self, inplace: bool = True) -> None:
        super().__init__()
        self.ip = inplace
        self.c1 = nn.Conv3d(1, 4, 3, padding=1)
        self.a1 = nn.LeakyReLU(0.1, inplace=inplace)
        self.c2 = nn.Conv3d(4, 4, 3, padding=1)
        self.a2 = nn.ReLU(inplace=inplace)
        self.c3 = nn.Conv3d(4, 4, 3, padding=1)
        self.a3 = nn.Hardtanh(-5.0, 5.0, inplace=inplace)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        a = self.a1(self.c1(x))
        out = self.c2(a)
        if self.ip:
            out += a                      # aten.add_ / operator.iadd
            out = self.a2(out)            # aten.relu_
            b = self.c3(out)
            b.add_(out)                   # Tensor.add_
            torch.relu_(b)                # torch.relu_, result unused: later reads of b see it
            b = F.leaky_relu(b, 0.2, inplace=True)
            b = self.a3(b)
        else:
            out = self.a2(out + a)
            b = self.c3(out)
            b = torch.relu(b + out)
            b = self.a3(F.leaky_relu(b, 0.2))
        return self.fc(b.mean((2, 3, 4)))


def _pair(seed=0):
    torch.manual_seed(seed)
    model = InPlaceEverywhere().double().eval()
    ref = InPlaceEverywhere(inplace=False).double().eval()
    ref.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 6, 6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return model, ref, x


def _formats(model, x):
    yield "module", model
    yield "exported", torch.export.export(model, (x,))
    yield "scripted", torch.jit.script(model)
    yield "traced", torch.jit.trace(model, x)


def test_exported_program_holds_inplace_aten_ops():
    model, _, x = _pair()
    ops = {str(n.target) for n in torch.export.export(model, (x,)).module().graph.nodes}
    assert {"aten.relu_.default", "aten.add_.Tensor", "aten.leaky_relu_.default"} <= ops


def test_every_format_equals_gradient_times_input_of_the_out_of_place_net():
    model, ref, x = _pair()
    expected, _ = grad_times_input(ref, x, lambda out: out[:, 2])
    for name, variant in _formats(model, x):
        e = explain(variant, x, preset=None, rules={"*": LRP0()}, target=2, dtype=torch.float64, stabilizer=0.0)
        err = float((e.relevance - expected).abs().max() / expected.abs().max())
        assert err < 1e-10, (name, err, e.graph_check)


@pytest.mark.parametrize("preset", ["epsilon-plus", "alpha2-beta1"])
def test_exported_program_gives_the_modules_map(preset):
    model, _, x = _pair(1)
    ep = torch.export.export(model, (x,))
    a = explain(model, x, preset=preset, dtype=torch.float64)
    b = explain(ep, x, preset=preset, dtype=torch.float64)
    assert b.graph_source == "torch.export"
    assert float((a.relevance - b.relevance).abs().max() / a.relevance.abs().max()) < 1e-10


def test_pass_through_names_of_inplace_ops_do_not_crash():
    """The old refusal suggested pass_through={'relu_'} / {'add_'}; with them the program now runs unchanged."""
    model, _, x = _pair(2)
    ep = torch.export.export(model, (x,))
    plain = explain(ep, x, dtype=torch.float64)
    for names in ({"add_"}, {"relu_"}, {"relu_", "add_", "leaky_relu_"}):
        e = explain(ep, x, dtype=torch.float64, pass_through=names)
        assert torch.equal(e.relevance, plain.relevance), names


class InPlaceGate(nn.Module):
    """A gating product written in place: no rule, so pass_through under either name."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(1, 2, 3, padding=1)
        self.b = nn.Conv3d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        h = self.a(x)
        h.mul_(torch.sigmoid(self.b(x)))
        return self.fc(h.mean((2, 3, 4)))


@pytest.mark.parametrize("fmt", ["module", "exported"])
def test_inplace_product_is_refused_then_passes_through_by_either_name(fmt):
    torch.manual_seed(4)
    model = InPlaceGate().double().eval()
    x = torch.randn(1, 1, 6, 6, 6, dtype=torch.float64)
    obj = model if fmt == "module" else torch.export.export(model, (x,))
    with pytest.raises(UnsupportedOperatorError, match="mul"):
        explain(obj, x, dtype=torch.float64)
    a = explain(obj, x, dtype=torch.float64, pass_through={"mul"})
    b = explain(obj, x, dtype=torch.float64, pass_through={"mul_"})
    c = explain(obj, x, dtype=torch.float64, pass_through="mul")  # one name, not the letters m, u, l
    assert torch.isfinite(a.relevance).all() and torch.equal(a.relevance, b.relevance)
    assert torch.equal(a.relevance, c.relevance)
