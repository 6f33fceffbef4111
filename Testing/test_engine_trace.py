"""The trace check: a map only comes from a graph that reproduced model(x); otherwise a fallback or a refusal.

torch.fx records one branch of Python checks (``isinstance(h, torch.Tensor)`` is False for a Proxy), and
in-place ops on tensors that have views alias in ways a graph rewrite can miss. Each case here must give
the map of the real network (LRP-0 == gradient × input on a piecewise-linear net, float64) or a refusal.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine_nets_helpers import grad_times_input
from NeuroRelevanceLib.engine import LRP0, explain
from NeuroRelevanceLib.engine.verify import GraphMismatchError

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]


class IsinstanceModule(nn.Module):
    """A ReLU module applied behind an isinstance check (what fx evaluates as False)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv3d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.c2 = nn.Conv3d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = self.c1(x)
        if isinstance(h, torch.Tensor):
            h = self.act(h)
        return self.fc(F.relu(self.c2(h)).mean((2, 3, 4)))


class IsinstanceFunctional(IsinstanceModule):
    def forward(self, x):
        h = self.c1(x)
        if isinstance(h, torch.Tensor):
            h = torch.relu(h)
        return self.fc(F.relu(self.c2(h)).mean((2, 3, 4)))


class OptionalSkip(nn.Module):
    """BasicUNet's pattern: a skip connection concatenated only if ``isinstance(skip, torch.Tensor)``."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv3d(1, 4, 3, padding=1)
        self.mid = nn.Conv3d(4, 4, 3, padding=1)
        self.dec = nn.Conv3d(8, 2, 1)

    def merge(self, h, skip):
        if skip is not None and torch.jit.isinstance(skip, torch.Tensor):
            return torch.cat([skip, h], 1)
        return torch.cat([h, h], 1)

    def forward(self, x):
        e = F.relu(self.enc(x))
        return self.dec(self.merge(F.relu(self.mid(e)), e))


class ViewThenInplace(nn.Module):
    """A view taken before an in-place ReLU sees the ReLU's result (aliasing)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv3d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6 * 6, 3)

    def forward(self, x):
        h = self.c1(x)
        flat = h.view(h.shape[0], -1)
        h.relu_()
        return self.fc(flat)


def _made(cls, seed=0):
    torch.manual_seed(seed)
    return cls().double().eval()


def _x(shape=(2, 1, 6, 6, 6), seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _lrp0(model, x, **kw):
    return explain(model, x, preset=None, rules={"*": LRP0()}, dtype=torch.float64, stabilizer=0.0, **kw)


def _relative(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("cls", [IsinstanceModule, IsinstanceFunctional, ViewThenInplace])
def test_map_is_of_the_real_network(cls):
    model, x = _made(cls), _x()
    e = _lrp0(model, x, target=1)
    expected, value = grad_times_input(model, x, lambda out: out[:, 1])
    assert torch.allclose(e.output, model(x), rtol=1e-12, atol=1e-12)
    assert _relative(e.relevance, expected) < 1e-10
    assert torch.allclose(e.target_value, value)
    assert "reproduced model(x)" in e.graph_check
    assert "torch.fx: output differs" in e.graph_check  # the fx graph was tried, found wrong and left


def test_missing_branch_falls_back_and_says_where_fx_failed():
    model, x = _made(OptionalSkip), _x((1, 1, 6, 6, 6))
    mask = torch.ones(6, 6, 6)
    e = _lrp0(model, x, target=1, mask=mask)
    expected, _ = grad_times_input(model, x, lambda out: out[:, 1].flatten(1).sum(1))
    assert _relative(e.relevance, expected) < 1e-10
    assert e.graph_source.startswith("torch.export")
    # fx took the other branch (no skip): the first module whose output differs is named
    assert "first diverging node 'dec'" in e.graph_check


class Noisy(nn.Module):
    """Not a function of x: every call adds new noise. No graph can reproduce it."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv3d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        h = F.relu(self.c(x)) + torch.rand_like(x)
        return self.fc(h.mean((2, 3, 4)))


class Counting(nn.Module):
    """Its output depends on how often it was called (Python state baked into every trace)."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv3d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(F.relu(self.c(x)).mean((2, 3, 4))) * self.calls


@pytest.mark.parametrize("cls", [Noisy, Counting])
def test_refused_when_no_graph_reproduces_the_model(cls):
    model, x = _made(cls), _x((1, 1, 6, 6, 6))
    with pytest.raises(GraphMismatchError) as info:
        explain(model, x, dtype=torch.float64)
    msg = str(info.value)
    assert "no relevance map was computed" in msg
    for name in ("torch.fx", "torch.export", "torchscript (traced)"):
        assert name in msg
    assert "differs from model(x)" in msg and "node '" in msg


def test_refusal_names_the_first_diverging_module():
    """The fx graph of IsinstanceModule lacks the ReLU: the diagnosis names c2 (first module that differs)
    and the module the model ran that the graph lacks."""
    from NeuroRelevanceLib.engine.capture import prepare
    from NeuroRelevanceLib.engine.verify import _diagnose, build_plan, difference

    model, x = _made(IsinstanceModule), _x()
    source = prepare(model, x, torch.device("cpu"), torch.float64)
    fx_candidate = source.candidates[0]
    plan = build_plan(fx_candidate.build())
    from NeuroRelevanceLib.engine.propagate import forward

    _, _, full = forward(plan, x)
    assert difference(full, model(x)) > 1e-3
    text = _diagnose(fx_candidate, plan, x, 1e-9)
    assert "first diverging node 'c2'" in text and "module 'c2'" in text and "act" in text


def test_float32_runs_are_checked_with_a_float32_tolerance():
    model, x = _made(IsinstanceModule).float(), _x().float()
    e = explain(model, x, target=0)
    assert "≤ 1e-04" in e.graph_check and e.graph_source.startswith("torch.export")


@pytest.mark.parametrize("fmt", ["exported", "scripted"])
def test_refused_in_every_format_naming_the_node(fmt):
    model, x = _made(Noisy), _x((1, 1, 6, 6, 6))
    obj = torch.export.export(model, (x,)) if fmt == "exported" else torch.jit.script(model)
    with pytest.raises(GraphMismatchError) as info:
        explain(obj, x, dtype=torch.float64)
    msg = str(info.value)
    assert "departs from the captured graph at node 'rand_like'" in msg, msg


class WithScriptedPart(nn.Module):
    """A scripted submodule inside an nn.Module: a black box to fx, operators to torch.jit.trace."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.jit.script(nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), nn.ReLU()))
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3, 4)))


def test_scripted_submodule_is_explained_through_its_operators():
    model, x = _made(WithScriptedPart), _x()
    e = _lrp0(model, x, target=1)
    expected, _ = grad_times_input(model, x, lambda out: out[:, 1])
    assert _relative(e.relevance, expected) < 1e-10
    assert e.graph_source == "torchscript (traced)" and "opaque call" in e.graph_check


def test_tolerance_by_dtype_and_tf32():
    from NeuroRelevanceLib.engine.verify import tolerance

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert tolerance(torch.float64, cpu) == 1e-9 and tolerance(torch.float64, gpu) == 1e-9
    assert tolerance(torch.float32, cpu) == 1e-4
    assert tolerance(torch.float32, gpu) == (1e-2 if torch.backends.cudnn.allow_tf32 else 1e-4)
