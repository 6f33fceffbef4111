"""The same network as nn.Module, TorchScript (scripted, traced, file) and torch.export (.pt2) gives the same
relevance: the engine reads each format's operator graph."""
from __future__ import annotations

import pytest
import torch

from NeuroRelevanceLib.engine import explain
from test_engine_nets import GraphNet, SegNet, make

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")]


@pytest.fixture(scope="module")
def case():
    model = make(GraphNet(bias=True, bn=True), seed=7)
    torch.manual_seed(7)
    x = torch.randn(2, 2, 8, 8, 8, dtype=torch.float64)
    ref = explain(model, x, preset="epsilon-plus", dtype=torch.float64)
    return model, x, ref


def _same(e, ref):
    assert torch.allclose(e.output, ref.output, rtol=1e-10, atol=1e-12)
    err = float((e.relevance - ref.relevance).abs().max() / ref.relevance.abs().max())
    assert err < 1e-10, err
    assert sorted(v.split(":")[1] for v in e.rules.values()) == sorted(v.split(":")[1] for v in ref.rules.values())


def test_scripted_module(case):
    model, x, ref = case
    e = explain(torch.jit.script(model), x, dtype=torch.float64)
    assert e.graph_source == "torchscript"
    _same(e, ref)
    assert any("folded" in v for v in e.rules.values())


def test_traced_module_and_file(case, tmp_path):
    model, x, ref = case
    traced = torch.jit.trace(model, x)
    _same(explain(traced, x, dtype=torch.float64), ref)
    path = tmp_path / "model.ts"
    torch.jit.save(traced, str(path))
    _same(explain(str(path), x, dtype=torch.float64), ref)


def test_exported_program_and_pt2_file(case, tmp_path):
    model, x, ref = case
    ep = torch.export.export(model, (x,))
    e = explain(ep, x, dtype=torch.float64)
    assert e.graph_source == "torch.export"
    _same(e, ref)
    path = tmp_path / "model.pt2"
    torch.export.save(ep, str(path))
    _same(explain(str(path), x, dtype=torch.float64), ref)


def test_float32_model_explained_in_float64_script():
    model = make(SegNet(), seed=8, dtype=torch.float32)
    x = torch.randn(1, 1, 8, 8, 8)
    a = explain(model, x, dtype=torch.float64)
    b = explain(torch.jit.script(model), x, dtype=torch.float64)
    assert torch.allclose(a.relevance, b.relevance, rtol=1e-10, atol=1e-12)
    assert next(model.parameters()).dtype == torch.float32


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="neither a torch.export .pt2 archive nor a TorchScript file"):
        explain(str(bad), torch.randn(1, 2, 8, 8, 8))


class InPlaceNet(torch.nn.Module):
    """In-place activations and `+=`, chunk/cat, view with sizes read from the tensor, mean."""

    def __init__(self, inplace: bool = True) -> None:
        super().__init__()
        self.ip = inplace
        self.c1 = torch.nn.Conv3d(1, 4, 3, padding=1, bias=False)
        self.r = torch.nn.ReLU(inplace=inplace)
        self.c2 = torch.nn.Conv3d(4, 4, 3, padding=1, bias=False)
        self.fc = torch.nn.Linear(4, 2, bias=False)

    def forward(self, x):
        a = self.r(self.c1(x))
        b = self.c2(a)
        b += a
        b = torch.nn.functional.relu(b, inplace=self.ip)
        b = b.relu_() if self.ip else b.relu()
        h = torch.chunk(b, 2, dim=1)
        b = torch.cat([h[1], h[0]], 1)
        return self.fc(b.view(b.size(0), b.size(1), -1).mean(-1))


def test_inplace_ops_in_every_format_equal_gradient_times_input():
    from NeuroRelevanceLib.engine import LRP0
    torch.manual_seed(9)
    model = InPlaceNet().double().eval()
    x = torch.randn(2, 1, 6, 6, 6, dtype=torch.float64)
    ref = InPlaceNet(inplace=False).double().eval()
    ref.load_state_dict(model.state_dict())
    xg = x.clone().requires_grad_(True)
    ref(xg)[:, 1].sum().backward()
    expected = xg.grad * x
    for variant in (model, torch.jit.script(model), torch.jit.trace(model, x)):
        e = explain(variant, x, preset=None, rules={"*": LRP0()}, target=1, dtype=torch.float64, stabilizer=0.0)
        assert float((e.relevance - expected).abs().max() / expected.abs().max()) < 1e-10, e.graph_source
