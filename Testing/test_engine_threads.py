"""Concurrency and isolation: explain() from several threads gives the serial maps, never changes torch's
global state (fx's tracer patches nn.Module.__call__ process-wide; ours patches nothing), and never touches
the user's module, its train/eval flags (TorchScript too) or its tensors."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from NeuroRelevanceLib.engine import explain
from test_engine_nets import GraphNet, SegNet, make

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                         "ignore::UserWarning")]


def _x(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_concurrent_calls_equal_serial_calls():
    jobs = []
    for seed in range(2):
        jobs.append((make(GraphNet(bias=True, bn=True), seed=seed), _x((1, 2, 8, 8, 8), seed), {}))
        jobs.append((make(SegNet(), seed=seed), _x((1, 1, 8, 8, 8), seed), {"mask": torch.ones(8, 8, 8)}))
    shared = jobs[0][0]
    jobs += [(shared, _x((1, 2, 8, 8, 8), 10 + k), {}) for k in range(2)]  # the same model from several threads
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m, _, _ in jobs]

    def run(job):
        model, x, kw = job
        return explain(model, x, dtype=torch.float64, **kw).relevance

    serial = [run(j) for j in jobs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(run, jobs * 2))
    for k, r in enumerate(parallel):
        assert torch.equal(r, serial[k % len(jobs)]), k
    for (m, _, _), state in zip(jobs, before, strict=True):
        assert all(torch.equal(v, m.state_dict()[k]) for k, v in state.items())


class Waits(nn.Module):
    """A forward that, while being traced (its input is not a real tensor), lets the test thread run a
    forward pass of another module in the middle of the trace."""

    def __init__(self, started: threading.Event, proceed: threading.Event) -> None:
        super().__init__()
        self.c = nn.Conv3d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)
        self.started, self.proceed = started, proceed

    def forward(self, x):
        if not isinstance(x, torch.Tensor):   # fx Proxy: we are inside symbolic tracing
            self.started.set()
            self.proceed.wait(10)
        return self.fc(F.relu(self.c(x)).mean((2, 3, 4)))


def test_other_threads_forward_normally_while_we_trace():
    started, proceed = threading.Event(), threading.Event()
    model = Waits(started, proceed).double().eval()
    other = nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU()).double().eval()
    x = _x((1, 1, 6, 6, 6), 0)
    expected = other(x)
    call, getattr_ = nn.Module.__call__, nn.Module.__getattr__
    result = {}

    def worker():
        result["e"] = explain(model, x, dtype=torch.float64)

    t = threading.Thread(target=worker)
    t.start()
    assert started.wait(10), "the model was never traced"
    try:
        during = other(x)                      # on main: routed into the other thread's fx trace and failed
        patched = nn.Module.__call__ is not call or nn.Module.__getattr__ is not getattr_
    finally:
        proceed.set()
        t.join(30)
    assert not patched
    assert isinstance(during, torch.Tensor) and torch.equal(during, expected)
    assert result["e"].graph_source == "torch.fx"
    assert nn.Module.__call__ is call and nn.Module.__getattr__ is getattr_


def test_torchscript_flags_never_flip():
    """On main the engine set the scripted module to eval and back: another thread saw it flip."""
    scripted = torch.jit.script(make(GraphNet(bias=True, bn=True), seed=1))
    scripted.train()
    x = _x((1, 2, 8, 8, 8), 1)
    flips, done = [], threading.Event()

    def poll():
        while not done.is_set():
            if not all(m.training for m in scripted.modules()):
                flips.append(1)
            time.sleep(0.0002)

    watcher = threading.Thread(target=poll)
    watcher.start()
    try:
        e = explain(scripted, x, dtype=torch.float64)
    finally:
        done.set()
        watcher.join()
    assert not flips and scripted.training
    ref = explain(make(GraphNet(bias=True, bn=True), seed=1), x, dtype=torch.float64)  # explained in eval mode
    assert torch.allclose(e.relevance, ref.relevance, rtol=1e-10, atol=1e-14)


class CountsCalls(nn.Module):
    """A forward that updates a buffer in place (like a call counter or running statistics)."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv3d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.fc(F.relu(self.c(x)).mean((2, 3, 4)))


def test_users_tensors_are_never_written():
    torch.manual_seed(0)
    model = CountsCalls().eval()                 # float32: a same-dtype copy used to share the user's storage
    x = torch.randn(1, 1, 6, 6, 6)
    explain(model, x)
    assert float(model.calls) == 0.0
    scripted = torch.jit.script(model)
    explain(scripted, x)
    assert float(scripted.calls) == 0.0 and float(model.calls) == 0.0


def test_no_global_torch_state_changes():
    state = (torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled(),
             torch.are_deterministic_algorithms_enabled(), nn.Module.__call__, nn.Module.__getattr__)
    model = make(GraphNet(bias=True, bn=True), seed=4)
    x = _x((1, 2, 8, 8, 8), 4)
    explain(model, x, dtype=torch.float64)
    explain(torch.jit.script(model), x, dtype=torch.float64)
    assert state == (torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled(),
                     torch.are_deterministic_algorithms_enabled(), nn.Module.__call__, nn.Module.__getattr__)


def test_exported_program_cast_to_the_run_dtype_leaves_program_and_model_alone():
    """ep.module() shares the program's tensors, which are the exported model's parameters."""
    model = make(GraphNet(bias=True, bn=True), seed=6)             # float64
    x = _x((1, 2, 8, 8, 8), 6)
    ep = torch.export.export(model, (x,))
    e = explain(ep, x.float())                                     # float32 run
    assert e.dtype == torch.float32 and torch.isfinite(e.relevance).all()
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert all(v.dtype == torch.float64 for v in ep.state_dict.values() if v.is_floating_point())
