"""Gradient methods against closed forms: linear models, IG completeness, guided backprop's ReLU rule."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from NeuroRelevanceLib.methods import gradient, gradient_x_input, guided_backprop, integrated_gradients, smoothgrad

torch.set_num_threads(1)
D = torch.float64


class Linear3d(nn.Module):
    """S_c(x) = Σ_v W_c(v) x(v) + b_c: a linear classifier on a (C, 3, 4, 5) volume."""

    def __init__(self, classes=3, channels=2, bias=True):
        super().__init__()
        self.fc = nn.Linear(channels * 60, classes, bias=bias)

    def forward(self, x):
        return self.fc(x.flatten(1))


def _x(n=2, c=2, seed=0):
    return torch.randn(n, c, 3, 4, 5, generator=torch.Generator().manual_seed(seed), dtype=D)


@pytest.fixture
def linear():
    torch.manual_seed(0)
    return Linear3d().double()


def test_gradient_and_gradient_x_input_of_a_linear_model(linear):
    x = _x()
    w = linear.fc.weight.detach().reshape(3, 2, 3, 4, 5)
    cls = linear(x).argmax(1)
    g = gradient(linear, x, device="cpu", dtype=D)
    gi = gradient_x_input(linear, x, target=1, device="cpu", dtype=D)
    for n in range(2):
        torch.testing.assert_close(g.relevance[n], w[cls[n]], rtol=0, atol=1e-14)
        torch.testing.assert_close(gi.relevance[n], w[1] * x[n], rtol=0, atol=1e-14)
    # gradient x input sums to S - b: the reported completeness gap is exactly |b| / |S|
    s = linear(x)[:, 1].detach()
    expected = linear.fc.bias[1].abs().item() / s.abs()
    torch.testing.assert_close(gi.conservation_error, expected, rtol=1e-10, atol=0)


def test_smoothgrad_of_a_linear_model_is_its_weight(linear):
    x = _x(n=1)
    e = smoothgrad(linear, x, target=2, samples=5, sigma=0.3, device="cpu", dtype=D)
    torch.testing.assert_close(e.relevance[0], linear.fc.weight.detach()[2].reshape(2, 3, 4, 5), rtol=0, atol=1e-14)


def test_integrated_gradients_linear_closed_form_and_baseline(linear):
    x = _x()
    base = torch.full_like(x[:1], 0.5)
    e = integrated_gradients(linear, x, target=0, baseline=base, steps=3, device="cpu", dtype=D)
    w = linear.fc.weight.detach()[0].reshape(2, 3, 4, 5)
    torch.testing.assert_close(e.relevance, (x - 0.5) * w, rtol=0, atol=1e-13)
    assert e.max_conservation_error < 1e-12


class SmallReLUCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv3d(1, 4, 3, padding=1)
        self.c2 = nn.Conv3d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = F.max_pool3d(F.relu(self.c2(x)), 2)
        return self.fc(x.mean((2, 3, 4)))


@pytest.mark.parametrize("rule", ["midpoint", "gauss-legendre"])
def test_integrated_gradients_completeness_64_steps(rule):
    torch.manual_seed(0)
    net = SmallReLUCNN().double()
    with torch.no_grad():
        net.fc.weight.mul_(10)            # outputs of order 1, so the relative gap is meaningful
    x = torch.rand(2, 1, 6, 6, 6, generator=torch.Generator().manual_seed(2), dtype=D) * 2
    with torch.no_grad():
        diff_all = net(x) - net(torch.zeros_like(x))
    target = diff_all.abs().argmax(1)     # per-sample class with a clear change along the path
    diff = diff_all[range(2), target]
    e = integrated_gradients(net, x, target=target, steps=64, rule=rule, device="cpu", dtype=D)
    # independent check of the reported error: Σ R against S(x) - S(0)
    own = (e.relevance.flatten(1).sum(1) - diff).abs() / diff.abs()
    torch.testing.assert_close(e.conservation_error, own, rtol=1e-6, atol=1e-12)
    assert e.max_conservation_error <= 1e-3
    # and it can fail: with 2 steps the quadrature misses the ReLU kinks
    coarse = integrated_gradients(net, x, target=target, steps=2, rule=rule, device="cpu", dtype=D)
    assert coarse.max_conservation_error > 1e-2


# --- guided backprop -----------------------------------------------------------------------------------


class _GuidedReLU(torch.autograd.Function):
    """Oracle: a hand-written guided ReLU (forward max(z, 0); backward (z > 0) · max(g, 0))."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return z.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g.clamp(min=0) * (z > 0).to(g)


class Net(nn.Module):
    """The same network with ReLUs written four ways (and a hand-guided oracle version)."""

    def __init__(self, style):
        super().__init__()
        self.style = style
        self.c1 = nn.Conv3d(2, 3, 3, padding=1)
        self.c2 = nn.Conv3d(3, 4, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(4 * 8, 6)
        self.fc2 = nn.Linear(6, 3)
        self.act = nn.ReLU(inplace=style == "module-inplace")

    def relu(self, z):
        if self.style == "functional":
            return F.relu(z)
        if self.style == "functional-inplace":
            F.relu_(z)          # in place, result not reassigned
            return z
        if self.style == "tensor-method":
            return z.relu()
        if self.style == "oracle":
            return _GuidedReLU.apply(z)
        return self.act(z)

    def forward(self, x):
        x = self.relu(self.c1(x))
        x = self.relu(self.c2(x))
        x = self.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


STYLES = ["functional", "functional-inplace", "tensor-method", "module", "module-inplace"]


@pytest.fixture(scope="module")
def guided_nets():
    torch.manual_seed(3)
    ref = Net("module").double()
    nets = {}
    for style in STYLES + ["oracle"]:
        net = Net(style).double()
        net.load_state_dict(ref.state_dict())
        nets[style] = net
    return nets


def test_guided_backprop_same_for_every_relu_form_and_equals_oracle(guided_nets):
    x = torch.randn(3, 2, 4, 4, 4, generator=torch.Generator().manual_seed(4), dtype=D)
    xo = x.clone().requires_grad_(True)
    out = guided_nets["oracle"](xo)
    cls = out.argmax(1)
    (oracle,) = torch.autograd.grad(out[range(3), cls].sum(), xo)
    plain = gradient(guided_nets["module"], x, device="cpu", dtype=D).relevance
    assert (plain - oracle).abs().max() > 1e-6          # guided differs from the plain gradient here
    for style in STYLES:
        e = guided_backprop(guided_nets[style], x, device="cpu", dtype=D)
        torch.testing.assert_close(e.relevance, oracle, rtol=1e-12, atol=1e-14, msg=style)
        assert e.parameters["relu_backwards_guided"] == 3
    scripted = torch.jit.script(guided_nets["functional"])
    torch.testing.assert_close(guided_backprop(scripted, x, device="cpu", dtype=D).relevance, oracle,
                               rtol=1e-12, atol=1e-14)
    # the input was not modified by the in-place variants
    assert torch.equal(x, torch.randn(3, 2, 4, 4, 4, generator=torch.Generator().manual_seed(4), dtype=D))


def test_guided_backprop_passes_only_positive_gradients():
    """A net that starts with a ReLU: the guided signal reaching the input is (x > 0) · max(g, 0) >= 0."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.ReLU(), nn.Conv3d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(3 * 64, 2)).double()
    x = torch.randn(2, 1, 4, 4, 4, generator=torch.Generator().manual_seed(6), dtype=D)
    e = guided_backprop(net, x, device="cpu", dtype=D)
    plain = gradient(net, x, device="cpu", dtype=D)
    assert (e.relevance >= 0).all() and (e.relevance[x <= 0] == 0).all()
    assert (plain.relevance < 0).any()                 # the property is not trivially true for this net
