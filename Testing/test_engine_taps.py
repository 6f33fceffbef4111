"""One forward pass, not two (engine/taps.py): the model's own forward feeds the walk, and nothing the trace
check guaranteed is lost — a layer whose module computes something else, a tensor the model overwrites in
place later, or a graph wired differently is computed again (or refused), never trusted."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from engine_nets_helpers import grad_times_input
from NeuroRelevanceLib.engine import LRP0, explain

pytestmark = pytest.mark.usefixtures("one_torch_thread")
_CONVS = {torch.ops.aten.convolution.default, torch.ops.aten.mkldnn_convolution.default,
          torch.ops.aten.convolution_backward.default}


class _CountConvs(TorchDispatchMode):
    """Counts convolutions on full-size activations (the trace check's tiny probes are not counted)."""

    def __init__(self, min_voxels: int) -> None:
        super().__init__()
        self.min_voxels, self.count = min_voxels, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in _CONVS and args[0].shape[2:].numel() >= self.min_voxels:
            self.count += 1
        return func(*args, **(kwargs or {}))


class Chain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2, self.c3 = (nn.Conv3d(a, b, 3, padding=1) for a, b in ((1, 4), (4, 4), (4, 2)))

    def forward(self, x):
        return self.c3(F.relu(self.c2(F.relu(self.c1(x))))).mean((2, 3, 4))


def _x(shape=(1, 1, 10, 10, 10), seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _lrp0_matches_gradient(model, x, **kw):
    e = explain(model, x, target=1, rules={"*": LRP0()}, dtype=torch.float64, stabilizer=0.0, **kw)
    want, _ = grad_times_input(model, x, lambda out: out[:, 1])
    err = float((e.relevance - want).abs().max() / want.abs().max())
    assert err < 1e-10, err
    return e


def test_each_layer_is_convolved_once_forward_and_once_back():
    model, x = Chain().double().eval(), _x()
    with _CountConvs(min_voxels=x.shape[2:].numel()) as counter:
        e = explain(model, x, target=1, rules={"*": LRP0()}, dtype=torch.float64, stabilizer=0.0)
    # the model's own forward (3) and one transposed convolution per layer (3); the graph's own forward
    # used to convolve all three layers again
    assert counter.count == 6, counter.count
    assert "3 layers shared with the model's own forward" in e.graph_check
    _lrp0_matches_gradient(model, x)


class _Doubled(nn.Module):
    """A model whose conv module computes something else than its weights say (an instance-level forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv3d(1, 3, 3, padding=1), nn.Conv3d(3, 2, 3, padding=1)
        conv = self.c2
        conv.forward = lambda t: F.conv3d(t, 2.0 * conv.weight, conv.bias, padding=1)

    def forward(self, x):
        return self.c2(F.relu(self.c1(x))).mean((2, 3, 4))


def test_a_module_that_is_not_its_weights_is_never_tapped():
    model, x = _Doubled().double().eval(), _x()
    e = _lrp0_matches_gradient(model, x)
    assert e.graph_source.startswith("torch.export")  # the fx graph's conv is the weights' math: refused


class _Overwrites(nn.Module):
    """The model overwrites a conv's output and a BatchNorm's output in place after recording them."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.bn = nn.Conv3d(1, 3, 3, padding=1), nn.BatchNorm3d(3)
        self.c2 = nn.Conv3d(3, 3, 3, padding=1)
        self.c3 = nn.Conv3d(3, 2, 1)

    def forward(self, x):
        a = self.bn(self.c1(x))
        b = F.relu(a)
        a.mul_(1.5)                 # in place on the BatchNorm output that was folded into c1
        y = self.c2(b)
        y.mul_(0.5)                 # in place on c2's output
        return self.c3(F.relu(y + a)).mean((2, 3, 4))


def test_tensors_the_model_overwrites_later_are_not_used():
    model = _Overwrites().double()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    e = _lrp0_matches_gradient(model.eval(), _x())
    assert e.graph_source == "torch.fx"


class _Rewired(nn.Module):
    """fx records the branch taken for a Proxy: here the graph feeds c2 the pre-activation."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv3d(1, 3, 3, padding=1), nn.Conv3d(3, 2, 3, padding=1)

    def forward(self, x):
        h = self.c1(x)
        if isinstance(h, torch.Tensor):  # a real tensor in the model's own forward, a Proxy while tracing
            h = F.relu(h)
        return self.c2(h).mean((2, 3, 4))


def test_a_graph_wired_differently_is_caught_at_the_layer_input():
    model, x = _Rewired().double().eval(), _x()
    e = _lrp0_matches_gradient(model, x)
    assert e.graph_source.startswith("torch.export") and "torch.fx: output differs" in e.graph_check
