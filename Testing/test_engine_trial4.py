"""Trial-4 engine findings: output nonlinearity followed by shape ops, scalar outputs, ``.values`` of
max/topk/sort, pass_through of voxel-mixing ops, mask-derived constants, ConservationWarning wording,
and no FutureWarnings from exported programs.

Oracle: LRP-0 (preset None, ε 0, stabilizer 0, float64) equals gradient × input (autograd) on these
piecewise-linear, bias-free nets."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from NeuroRelevanceLib import explain
from NeuroRelevanceLib.engine import ConservationWarning

D = torch.float64
LRP0 = dict(preset=None, rules={"*": "lrp0"}, epsilon=0.0, stabilizer=0.0, dtype=D)
X = (torch.rand(1, 1, 8, 8, 8, generator=torch.Generator().manual_seed(3)) - 0.3).to(D)


def _gxi(f, x):
    xg = x.clone().requires_grad_(True)
    g, = torch.autograd.grad(f(xg), xg)
    return (g * x).detach()


def _close(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300)) < 1e-9


def _fmt(m, fmt):
    if fmt == "export":
        return torch.export.export(m, (X,))
    return torch.jit.script(m) if fmt == "script" else m


class Tiny(nn.Module):
    """conv (1 -> 4, no bias) -> ... -> dense (4 -> k, no bias); ``how`` picks the variant."""

    def __init__(self, how: str = "", k: int = 1) -> None:
        super().__init__()
        self.how = how
        self.c = nn.Conv3d(1, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4, k, bias=False)


class Head(nn.Module):
    """conv -> relu -> mean -> fc (2 outputs), then an output nonlinearity and shape-only ops."""

    def __init__(self, kind: str, k: int = 1) -> None:
        super().__init__()
        self.kind = kind
        self.c = nn.Conv3d(1, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4, k, bias=False)

    def logits(self, x):
        return self.fc(F.relu(self.c(x)).mean((2, 3, 4)))

    def forward(self, x):
        z = self.logits(x)
        k = self.kind
        if k == "sig":
            return torch.sigmoid(z)
        if k == "sig.squeeze":
            return torch.sigmoid(z).squeeze(1)
        if k == "sig.slice":
            return torch.sigmoid(z)[:, 0]
        if k == "sig.view":
            return torch.sigmoid(z).view(-1)
        if k == "sig.flatten":
            return torch.sigmoid(z).flatten()
        if k == "softmax.slice":
            return torch.softmax(z, 1)[:, 1]
        return torch.softmax(z, 1).select(1, 1)


@pytest.mark.parametrize("fmt", ["module", "export", "script"])
@pytest.mark.parametrize("kind", ["sig.squeeze", "sig.slice", "sig.view", "sig.flatten", "softmax.slice",
                                  "softmax.select"])
def test_output_nonlinearity_then_shape_ops_is_stripped(kind, fmt):
    torch.manual_seed(2)
    m = Head(kind, 1 if kind.startswith("sig") else 3).to(D).eval()
    with torch.no_grad():
        m.fc.weight.mul_(-3)
    cls = 0 if kind.startswith("sig") else 1
    logit = float(m.logits(X)[0, cls])
    e = explain(_fmt(m, fmt), X, **LRP0)
    assert e.stripped, "the output sigmoid/softmax must be stripped"
    assert float(e.target_value[0]) == pytest.approx(logit, rel=1e-12)
    assert _close(e.relevance, _gxi(lambda x: m.logits(x)[0, cls], X))


class Scalar(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.c = nn.Conv3d(1, 4, 3, padding=1, bias=False)
        self.o = nn.Conv3d(4, 1, 1, bias=False)

    def forward(self, x):
        y = self.o(F.relu(self.c(x)))
        return y.mean() if self.how == "mean" else y.sum()


@pytest.mark.parametrize("fmt", ["module", "export", "script"])
@pytest.mark.parametrize("how", ["mean", "sum"])
def test_scalar_output_is_explained(how, fmt):
    torch.manual_seed(0)
    m = Scalar(how).to(D).eval()
    e = explain(_fmt(m, fmt), X, **LRP0)
    assert float(e.target_value.reshape(-1)[0]) == pytest.approx(float(m(X)), rel=1e-12)
    assert _close(e.relevance, _gxi(m, X))


class Values(Tiny):
    def forward(self, x):
        h = F.relu(self.c(x)).flatten(2)
        k = self.how
        if k == "max":
            v = torch.max(h, 2).values
        elif k == "min":
            v = -torch.min(-h, 2).values
        elif k == "topk":
            v = h.topk(5, dim=2).values.mean(2)
        else:
            v = h.sort(dim=2, descending=True).values[..., :5].mean(2)
        return self.fc(v)


@pytest.mark.parametrize("fmt", ["module", "export", "script"])
@pytest.mark.parametrize("how,name", [("max", "max"), ("min", "min"), ("topk", "topk"), ("sort", "sort")])
def test_values_attribute_routes_like_index_0(how, name, fmt):
    torch.manual_seed(0)
    m = Values(how).to(D).eval()
    e = explain(_fmt(m, fmt), X, pass_through={name}, **LRP0)
    g = _gxi(m, X)
    assert float(g.abs().sum()) > 0
    assert _close(e.relevance, g)


class Mixer(Tiny):
    def forward(self, x):
        h = F.relu(self.c(x))
        h = torch.cumsum(h, 2) if self.how == "cumsum" else torch.cummax(h, 2).values
        return self.fc(h.mean((2, 3, 4)))


@pytest.mark.parametrize("fmt", ["module", "export", "script"])
@pytest.mark.parametrize("how", ["cumsum", "cummax"])
def test_pass_through_of_shape_keeping_mixing_op_routes_like_gradient(how, fmt):
    torch.manual_seed(0)
    m = Mixer(how).to(D).eval()
    e = explain(_fmt(m, fmt), X, pass_through={how}, **LRP0)
    assert _close(e.relevance, _gxi(m, X))


class MaskMean(Tiny):
    def __init__(self) -> None:
        super().__init__("", 2)

    def forward(self, x):
        brain = (x > 0.2).to(x.dtype)
        h = F.relu(self.c(x)) * brain
        return self.fc(h.sum((2, 3, 4)) / brain.sum((2, 3, 4)).clamp_min(1))


@pytest.mark.parametrize("fmt", ["module", "export", "script"])
def test_mask_derived_factors_are_constants(fmt):
    torch.manual_seed(0)
    m = MaskMean().to(D).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConservationWarning)
        e = explain(_fmt(m, fmt), X, target=1, **LRP0)
    assert _close(e.relevance, _gxi(lambda x: m(x)[0, 1], X))


class Lossy(nn.Module):
    """A big negative bias absorbs nearly all relevance (the map keeps ~0.05 %)."""

    def __init__(self, bias: float) -> None:
        super().__init__()
        self.c = nn.Conv3d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 1)
        with torch.no_grad():
            self.c.weight.fill_(0.01)
            self.c.bias.fill_(0.0)
            self.fc.weight.fill_(1.0)
            self.fc.bias.fill_(bias)

    def forward(self, x):
        return self.fc(F.relu(self.c(x)).mean((2, 3, 4)))


def test_conservation_warning_on_near_total_loss_names_direction_and_caller():
    m = Lossy(100.0).to(D).eval()
    with pytest.warns(ConservationWarning, match="absorbed") as rec:
        explain(m, X.abs(), **LRP0)
    assert rec[0].filename == __file__


def test_conservation_warning_on_inflation():
    f0 = float(Lossy(0.0).to(D)(X.abs()))
    m = Lossy(-0.95 * f0).to(D).eval()  # relevance ≈ 20x the value
    with pytest.warns(ConservationWarning, match="inflated"):
        explain(m, X.abs(), **LRP0)


class BiasedBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv3d(1, 8, 3, padding=1), nn.BatchNorm3d(8)
        self.c2, self.b2 = nn.Conv3d(8, 8, 3, padding=1), nn.BatchNorm3d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        h = F.relu(self.b2(self.c2(F.max_pool3d(h, 2))))
        return self.fc(h.mean((2, 3, 4)))


class Typical(nn.Module):
    """The trial's ordinary biased CNN with BatchNorm (3 of 16 runs warned with the old threshold)."""

    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Conv3d(1, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(), nn.MaxPool3d(2),
                               nn.Conv3d(8, 16, 3, padding=1), nn.BatchNorm3d(16), nn.ReLU(), nn.AdaptiveAvgPool3d(1),
                               nn.Flatten(), nn.Linear(16, 2))

    def forward(self, x):
        return self.f(x)


@pytest.mark.parametrize("seed", range(4))
def test_no_conservation_warning_on_the_trial_typical_cnn(seed):
    torch.manual_seed(seed)
    m = Typical().eval()
    x = torch.randn(1, 1, 16, 16, 16)
    for preset in ("epsilon-plus", "alpha1-beta0", "graph-epsilon-plus", None):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConservationWarning)
            explain(m, x, preset=preset)


@pytest.mark.parametrize("seed", range(4))
def test_no_conservation_warning_on_an_ordinary_biased_cnn(seed):
    torch.manual_seed(seed)
    m = BiasedBN().eval()
    with torch.no_grad():
        for b in (m.b1, m.b2):
            b.running_mean.uniform_(-0.2, 0.2)
            b.running_var.uniform_(0.5, 1.5)
    x = torch.rand(2, 1, 8, 8, 8, generator=torch.Generator().manual_seed(seed))
    for preset in ("epsilon-plus", "epsilon-gamma-box", "alpha2-beta1", None):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConservationWarning)
            explain(m, x, preset=preset)


def test_exported_program_gives_no_future_warning():
    torch.manual_seed(0)
    ep = torch.export.export(Mixer("cumsum").to(D).eval(), (X,))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        explain(ep, X, pass_through={"cumsum"}, **LRP0)
    assert not [w for w in rec if issubclass(w.category, FutureWarning)], [str(w.message) for w in rec]


def test_scalar_output_of_a_batch_is_one_clear_error():
    from NeuroRelevanceLib.errors import InputError
    torch.manual_seed(0)
    with pytest.raises(InputError, match="one sample at a time"):
        explain(Scalar("mean").to(D).eval(), X.expand(2, -1, -1, -1, -1), **LRP0)
    with pytest.raises(InputError, match="scalar"):
        explain(Scalar("mean").to(D).eval(), X, target=1, **LRP0)


class AsOps(Tiny):
    def forward(self, x):
        h = F.relu(self.c(x))
        if self.how == "view_as":
            h = h.flatten(2).view_as(h)
        elif self.how == "reshape_as":
            h = h.flatten(2).reshape_as(h)
        else:
            h = h.mean((2, 3, 4), keepdim=True).expand_as(h) * 0.5 + h * 0.5
        return self.fc(h.mean((2, 3, 4)))


@pytest.mark.parametrize("fmt", ["module", "export", "script"])
@pytest.mark.parametrize("how", ["view_as", "reshape_as", "expand_as"])
def test_view_as_and_expand_as_route_in_every_format(how, fmt):
    torch.manual_seed(0)
    m = AsOps(how).to(D).eval()
    e = explain(_fmt(m, fmt), X, **LRP0)
    assert _close(e.relevance, _gxi(m, X))


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv3d(1, 4, 3, padding=1, bias=False)
        self.q = nn.Linear(4, 4, bias=False)
        self.fc = nn.Linear(4, 1, bias=False)

    def forward(self, x):
        t = F.relu(self.c(x)).flatten(2).transpose(1, 2)          # (N, L, C)
        a = torch.softmax(self.q(t) @ t.transpose(1, 2), dim=-1)  # (N, L, L)
        return self.fc((a @ t).mean(1))


@pytest.mark.parametrize("fmt", ["module", "export", "script"])
def test_attention_softmax_can_be_passed_through(fmt):
    torch.manual_seed(0)
    m = Attention().to(D).eval()
    e = explain(_fmt(m, fmt), X, pass_through={"softmax", "matmul"}, **LRP0)
    assert torch.isfinite(e.relevance).all() and float(e.relevance.abs().sum()) > 0


class Ratio(Tiny):
    def __init__(self) -> None:
        super().__init__("", 1)

    def forward(self, x):
        h = F.relu(self.c(x)).mean((2, 3, 4))
        return self.fc(h / (h.sum(1, keepdim=True) + 1))


@pytest.mark.parametrize("fmt", ["module", "export", "script"])
@pytest.mark.parametrize("name", ["div", "truediv"])
def test_pass_through_names_accept_aliases_of_one_op(name, fmt):
    torch.manual_seed(0)
    m = Ratio().to(D).eval()
    ref = explain(m, X, pass_through={"truediv"}, **LRP0)
    e = explain(_fmt(m, fmt), X, pass_through={name}, **LRP0)
    assert torch.allclose(e.relevance, ref.relevance, rtol=1e-9, atol=1e-15)
