"""explain(): inputs, targets, filters, rule resolution, errors, and the user's model left untouched."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from NeuroRelevanceLib.engine import (
    AlphaBeta,
    Epsilon,
    Explanation,
    UnsupportedOperatorError,
    ZBox,
    ZPlus,
    apply_filter,
    explain,
)
from test_engine_nets import GraphNet, Regressor, SegNet, make

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _x(shape=(1, 2, 8, 8, 8), seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return torch.randn(*shape, dtype=dtype)


@pytest.fixture(scope="module")
def net():
    return make(GraphNet(bias=True, bn=True), seed=5)


def test_result_fields(net):
    x = _x()
    e = explain(net, x, dtype=torch.float64)
    assert isinstance(e, Explanation)
    assert e.relevance.shape == x.shape and e.relevance.device.type == "cpu"
    assert e.output.shape == (1, 3) and torch.allclose(e.output, net(x))
    assert e.target_value.shape == (1,) and torch.isclose(e.target_value[0], net(x).max())
    assert e.conservation_error.shape == (1,) and isinstance(e.max_conservation_error, float)
    assert list(e.layer_totals)[-1] == "x" and torch.allclose(e.layer_totals["x"], e.relevance.sum())
    assert e.device.type == "cpu" and e.dtype == torch.float64 and e.seconds > 0
    assert e.method == "lrp" and e.preset == "epsilon-plus"
    assert e.rules["stem"].startswith("Conv3d + folded bn: ZPlus")
    assert e.rules["head"].startswith("Linear: Epsilon")
    assert e.graph_source == "torch.fx"


def test_model_and_input_untouched(net):
    x = _x()
    x_before = x.clone()
    net.train()
    net.stem.weight.requires_grad_(False)
    handle = net.register_forward_hook(lambda *a: None)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    flags = {k: p.requires_grad for k, p in net.named_parameters()}
    explain(net, x, filter="clamp", filter_range=(0.0, 0.5), filter_placement="every-layer")
    assert net.training and all(m.training for m in net.modules())
    assert {k: p.requires_grad for k, p in net.named_parameters()} == flags
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert len(net._forward_hooks) == 1 and net.stem.weight.dtype == torch.float64
    assert torch.equal(x, x_before) and not x.requires_grad
    handle.remove()
    net.stem.weight.requires_grad_(True)
    net.eval()


def test_anti_heatmap_and_target_forms(net):
    x = _x((2, 2, 8, 8, 8))
    out = net(x)
    e1 = explain(net, x, target=0, dtype=torch.float64)
    assert torch.allclose(e1.target_value, out[:, 0])
    e2 = explain(net, x, target=torch.tensor([0, 2]), dtype=torch.float64)
    assert torch.allclose(e2.target_value, out[torch.arange(2), torch.tensor([0, 2])])
    assert torch.allclose(e2.relevance[0], e1.relevance[0])
    with pytest.raises(ValueError, match="class index"):
        explain(net, x, target=7)


def test_regression_output():
    model = make(Regressor(), seed=1)
    x = _x((2, 1, 6, 6, 6))
    e = explain(model, x, dtype=torch.float64)
    assert torch.allclose(e.target_value, model(x)[:, 0])
    assert e.target == "regression output"


def test_segmentation_mask_and_default_foreground():
    model = make(SegNet(), seed=2)
    x = _x((1, 1, 8, 8, 8))
    out = model(x)
    e = explain(model, x, dtype=torch.float64)
    fg = out.argmax(1) == 1
    assert torch.allclose(e.target_value, (out[:, 1] * fg).sum())
    mask = torch.zeros(8, 8, 8, dtype=torch.bool)
    mask[2:5, 2:5, 2:5] = True
    e2 = explain(model, x, target=0, mask=mask, dtype=torch.float64)
    assert torch.allclose(e2.target_value, out[0, 0][mask].sum())


def test_softmax_and_sigmoid_at_output_are_stripped(net):
    x = _x()
    with_softmax = nn.Sequential(net, nn.Softmax(dim=1)).eval()
    a = explain(net, x, dtype=torch.float64)
    b = explain(with_softmax, x, dtype=torch.float64)
    assert b.stripped == ["Softmax"] and torch.allclose(a.relevance, b.relevance)
    assert torch.allclose(b.output, net(x))


def test_filters_identity_and_effect(net):
    x = _x()
    base = explain(net, x, dtype=torch.float64)
    for kind in ("pass", "clamp"):
        for placement in ("input", "every-layer"):
            e = explain(net, x, dtype=torch.float64, filter=kind, filter_range=(0.0, 1.0),
                        filter_placement=placement)
            assert torch.allclose(e.relevance, base.relevance, rtol=1e-12, atol=1e-15), (kind, placement)
    r = base.relevance
    m = r.abs().max()
    p = explain(net, x, dtype=torch.float64, filter="pass", filter_range=(0.0, 0.2)).relevance
    assert torch.equal(p != 0, (r != 0) & (r.abs() <= 0.2 * m))
    c = explain(net, x, dtype=torch.float64, filter="clamp", filter_range=(0.0, 0.2)).relevance
    assert torch.allclose(c, r.clamp(-0.2 * m, 0.2 * m))
    per_channel = apply_filter(r, "clamp", (0.0, 0.5), per_channel=True)
    for ch in range(r.shape[1]):
        assert torch.isclose(per_channel[0, ch].abs().max(), 0.5 * r[0, ch].abs().max())


def test_rule_resolution_by_name_type_input_and_strings(net):
    x = _x()
    e = explain(net, x, preset="alpha2-beta1", dtype=torch.float64,
                rules={nn.Linear: "epsilon", "down": AlphaBeta(1, 0), "input": ZBox(-4.0, 4.0), "*": ZPlus()})
    assert "ZBox(low=-4.0, high=4.0" in e.rules["stem"]
    assert "AlphaBeta(alpha=1.0, beta=0.0" in e.rules["down"]
    assert "Epsilon" in e.rules["head"]
    assert "ZPlus" in e.rules["res"]
    g = explain(net, x, preset="epsilon-gamma-box", dtype=torch.float64)
    assert "ZBox" in g.rules["stem"] and "Gamma" in g.rules["res"] and "Epsilon" in g.rules["head"]
    class Wrapped(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.body = inner

        def forward(self, x):
            return self.body(x)

    w = explain(Wrapped(net), x, dtype=torch.float64, rules={"body": "alpha1beta0", "body.head": "epsilon"})
    assert "AlphaBeta" in w.rules["body.res"] and "Epsilon" in w.rules["body.head"]
    with pytest.raises(ValueError, match="names no conv/dense layer"):
        explain(net, x, rules={"stme": "zplus"})
    with pytest.raises(ValueError, match="Unknown LRP rule"):
        explain(net, x, rules={"*": "zplusplus"})


def test_batchnorm_pass_versus_fold():
    model = make(GraphNet(bias=True, bn=True), seed=6)
    x = _x()
    fold = explain(model, x, dtype=torch.float64, rules={"*": Epsilon(1e-9)})
    keep = explain(model, x, dtype=torch.float64, rules={"*": Epsilon(1e-9)}, batchnorm="pass")
    assert "folded" in fold.rules["stem"] and "folded" not in keep.rules["stem"]
    assert torch.allclose(fold.output, keep.output)
    assert not torch.allclose(fold.relevance, keep.relevance)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv3d(1, 2, 3, padding=1)
        self.b = nn.Conv3d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        g = self.a(x) * torch.sigmoid(self.b(x))  # gating: product of two activations
        return self.fc(g.mean((2, 3, 4)))


def test_unsupported_operator_error_names_op_place_and_fix():
    model = make(Gated(), seed=3)
    x = _x((1, 1, 6, 6, 6))
    with pytest.raises(UnsupportedOperatorError) as info:
        explain(model, x)
    msg = str(info.value)
    assert "operator.mul" in msg and "node 'mul'" in msg and "pass_through={'mul'}" in msg
    e = explain(model, x, pass_through={"mul"}, dtype=torch.float64)
    assert torch.isfinite(e.relevance).all()


def test_bad_inputs(net):
    with pytest.raises(ValueError, match=r"\(N, C, \*spatial\)"):
        explain(net, torch.randn(8, 8, 8, 8, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        x = _x()
        x[0, 0, 1, 1, 1] = float("nan")
        explain(net, x)
    with pytest.raises(ValueError, match="input of shape .*channels"):
        explain(net, _x((1, 3, 8, 8, 8)))
    with pytest.raises(ValueError, match="Unknown preset"):
        explain(net, _x(), preset="epsilon-pluss")
    with pytest.raises(ValueError, match="filter_range"):
        explain(net, _x(), filter="pass", filter_range=(0.5, 0.2))
    with pytest.raises(ValueError, match="floating-point"):
        explain(net, torch.ones(1, 2, 8, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="does not exist"):
        explain("/nonexistent/model.pt2", _x())


def test_2d_and_functional_models():
    class Net2d(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 1, 3, 3))
            self.fc = nn.Linear(4, 2, bias=False)

        def forward(self, x):
            y = F.leaky_relu(F.conv2d(x, self.w, padding=1), 0.01)
            y = F.instance_norm(y)
            return self.fc(F.avg_pool2d(y, 8).flatten(1))

    model = make(Net2d(), seed=4)
    e = explain(model, _x((2, 1, 8, 8)), dtype=torch.float64)
    assert e.relevance.shape == (2, 1, 8, 8) and "conv2d" in next(iter(e.rules))


def test_auto_device_is_cpu_without_cuda(net):
    e = explain(net, _x(dtype=torch.float32))
    assert e.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert e.dtype == torch.float32
