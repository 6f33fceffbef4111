"""Non-LRP methods leave everything of the caller's alone (issue 13, items 4, 5, 8).

- ``x`` is never modified, also when the model works in place on its input (``nn.ReLU(inplace=True)`` first,
  ``x.mul_()`` in ``forward``), and the map equals that of the same network written without in-place ops;
- the user's module hooks and parameter hooks never fire, stay registered, and flags/requires_grad/.grad stay;
- the same map inside ``torch.no_grad()`` and ``torch.inference_mode()`` (also for inference tensors as x or
  as the model's parameters) as outside;
- concurrent calls give the serial maps, and no global torch state (grad mode, dispatch-mode flags, the JIT
  executor mode, the global RNG, global hooks) is left changed — also when two calls interleave.
"""
import threading

import pytest
import torch
import torch.nn as nn
from torch.utils._python_dispatch import is_in_any_mode_without_ignore_compile_internals, is_in_torch_dispatch_mode

from NeuroRelevanceLib.explanation.dispatch import METHODS, explain

torch.set_num_threads(1)
D = torch.float64
OTHERS = [m for m in METHODS if m != "lrp"]
FAST = {"smoothgrad": {"samples": 3}, "integrated_gradients": {"steps": 6},
        "summary": {"methods": ["gradient", "guided_backprop", "gradcam++"]}}


class Net(nn.Module):
    """conv → ReLU → conv → ReLU → pool → linear, with the input handled in place or not."""

    def __init__(self, how: str = "plain"):
        super().__init__()
        self.how = how
        self.first = nn.ReLU(inplace=how == "relu_")
        self.features = nn.Sequential(nn.Conv3d(1, 3, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv3d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        if self.how == "mul_":
            x.mul_(2.0).sub_(0.25)
        elif self.how == "mul":
            x = x * 2.0 - 0.25
        if self.how in ("relu_", "relu"):
            x = self.first(x)
        return self.head(self.features(x).mean((2, 3, 4)))


def _net(how: str) -> Net:
    torch.manual_seed(0)
    return Net(how).double().eval()


def _x() -> torch.Tensor:
    return torch.randn(2, 1, 5, 4, 6, generator=torch.Generator().manual_seed(1), dtype=D)


def _run(model, x, method, **kw):
    return explain(model, x, method, target=1, device="cpu", dtype=D, **{**FAST.get(method, {}), **kw})


# --- item 8: x is never modified --------------------------------------------------------------------------------

@pytest.mark.parametrize("inplace, reference", [("relu_", "relu"), ("mul_", "mul")])
@pytest.mark.parametrize("method", OTHERS)
def test_in_place_model_leaves_x_alone_and_explains_the_right_map(method, inplace, reference):
    x = _x()
    before = x.clone()
    got = _run(_net(inplace), x, method)
    assert torch.equal(x, before), "the caller's x was modified"
    ref = _run(_net(reference), _x(), method)
    torch.testing.assert_close(got.relevance, ref.relevance, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.target_value, ref.target_value)


# --- item 8: the user's hooks never fire, the module is left exactly as it was ---------------------------------

class _Recorder:
    """A hook holder that cannot be deep-copied (it owns a lock), like a logger or a profiler would."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []

    def hook(self, *args, **kwargs):
        self.calls.append(args[0].__class__.__name__ if args else "tensor")


@pytest.mark.parametrize("method", OTHERS)
def test_user_hooks_never_fire_and_module_is_untouched(method):
    net = _net("plain")
    net.train()
    net.features[2].weight.requires_grad_(False)
    rec = _Recorder()
    for m in net.modules():
        m.register_forward_pre_hook(rec.hook)
        m.register_forward_hook(rec.hook)
        m.register_forward_hook(rec.hook, with_kwargs=True)
        m.register_full_backward_pre_hook(rec.hook)
        m.register_full_backward_hook(rec.hook)
    net.features[0].weight.register_hook(rec.hook)
    hooks = [(dict(m._forward_pre_hooks), dict(m._forward_hooks), dict(m._backward_pre_hooks),
              dict(m._backward_hooks)) for m in net.modules()]
    grads = [p.requires_grad for p in net.parameters()]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    _run(net, _x(), method)
    assert rec.calls == []
    assert hooks == [(dict(m._forward_pre_hooks), dict(m._forward_hooks), dict(m._backward_pre_hooks),
                      dict(m._backward_hooks)) for m in net.modules()]
    assert [p.requires_grad for p in net.parameters()] == grads and all(p.grad is None for p in net.parameters())
    assert all(m.training for m in net.modules())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_torch_own_hooks_still_work():
    """weight_norm computes its weight in a forward pre-hook; that hook is part of the model and must run."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 27, 2)).double()
    with pytest.warns(FutureWarning):
        nn.utils.weight_norm(net[0])
    with torch.no_grad():
        net[0].weight_g.mul_(3.0)     # the stored weight is now stale; only the pre-hook gives the real one
    x = torch.randn(1, 1, 3, 3, 3, dtype=D)
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(xi)[0, 1], xi)
    torch.testing.assert_close(explain(net, x, "gradient", target=1, device="cpu", dtype=D).relevance, g)


# --- item 4: grad mode does not matter ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", OTHERS)
def test_same_map_under_no_grad_and_inference_mode(method):
    net, x = _net("relu_"), _x()
    ref = _run(net, x, method).relevance
    with torch.no_grad():
        a = _run(net, x, method).relevance
        assert not torch.is_grad_enabled()
    with torch.inference_mode():
        xi = x.clone()                       # an inference tensor
        b = _run(net, xi, method).relevance
        assert torch.is_inference_mode_enabled()
    with torch.inference_mode():
        built = _net("relu_")                 # parameters are inference tensors
    c = _run(built, x, method).relevance
    for other in (a, b, c):
        torch.testing.assert_close(other, ref, rtol=0, atol=0)
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()


# --- item 5: threads -------------------------------------------------------------------------------------------

def torch_state() -> dict:
    """Process-wide torch state that a method must never leave changed."""
    mod = torch.nn.modules.module
    return {
        "grad": torch.is_grad_enabled(), "inference": torch.is_inference_mode_enabled(),
        "dispatch_mode": is_in_torch_dispatch_mode(), "dispatch_mode_non_infra": is_in_torch_dispatch_mode(False),
        "mode_without_ignore": is_in_any_mode_without_ignore_compile_internals(),
        "dispatch_stack": torch._C._len_torch_dispatch_stack(), "jit_optimize": torch._C._get_graph_executor_optimize(),
        "rng": torch.get_rng_state().clone(), "default_dtype": torch.get_default_dtype(),
        "global_hooks": {n: dict(v) for n, v in vars(mod).items() if n.startswith("_global_") and isinstance(v, dict)},
    }


def _same_state(a: dict, b: dict) -> None:
    assert torch.equal(a.pop("rng"), b.pop("rng")), "the global RNG was used"
    assert a == b


def test_smoothgrad_without_seed_leaves_the_global_rng_alone():
    before = torch_state()
    e = _run(_net("plain"), _x(), "smoothgrad", seed=None)
    _same_state(before, torch_state())
    again = _run(_net("plain"), _x(), "smoothgrad", seed=e.parameters["seed"])   # the seed used is recorded
    torch.testing.assert_close(again.relevance, e.relevance, rtol=0, atol=0)


def test_concurrent_calls_give_serial_maps_and_leave_no_global_state():
    shared, x = _net("relu_"), _x()
    own = [_net("mul_"), _net("plain")]
    serial = {(i, m): (_run(shared, x, m).relevance, _run(own[i], _x(), m).relevance)
              for i in range(2) for m in OTHERS}
    before = torch_state()
    results, errors, start = {}, [], threading.Barrier(2)

    def work(i):
        try:
            start.wait(timeout=30)
            for m in OTHERS[i:] + OTHERS[:i]:      # different methods at the same time
                results[(i, m)] = (_run(shared, x, m).relevance, _run(own[i], _x(), m).relevance)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    _same_state(before, torch_state())
    for key, (a, b) in serial.items():
        torch.testing.assert_close(results[key][0], a, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(results[key][1], b, rtol=1e-12, atol=1e-14)


class _Gate(torch.autograd.Function):
    """Identity whose backward signals ``arrived`` and then waits for ``proceed``: forces an interleaving."""

    @staticmethod
    def forward(ctx, t, arrived, proceed):
        ctx.events = (arrived, proceed)
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        arrived, proceed = ctx.events
        arrived.set()
        proceed.wait(timeout=30)
        return g, None, None


class _Gated(nn.Module):
    def __init__(self, arrived, proceed):
        super().__init__()
        self.net = _net("plain")
        self.events = (arrived, proceed)

    def forward(self, x):
        return self.net(_Gate.apply(x, *self.events))

    def __deepcopy__(self, memo):             # the events are shared by the copy, the network is copied
        new = _Gated(*self.events)
        new.net.load_state_dict(self.net.state_dict())
        return new


@pytest.mark.parametrize("method", ["guided_backprop", "guided_gradcam"])
def test_interleaved_calls_leave_no_global_state(method):
    """A enters its backward, then B enters; A finishes while B is still inside; then B finishes."""
    a_in, b_in, a_done, never = (threading.Event() for _ in range(4))
    never.set()
    model_a, model_b = _Gated(a_in, b_in), _Gated(b_in, a_done)
    before = torch_state()
    out, errors = {}, []

    def run(name, model, after=None):
        try:
            out[name] = _run(model, _x(), method).relevance
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            if after is not None:
                after.set()

    ta = threading.Thread(target=run, args=("a", model_a, a_done))
    ta.start()
    assert a_in.wait(timeout=30)
    tb = threading.Thread(target=run, args=("b", model_b))
    tb.start()
    ta.join(timeout=60)
    tb.join(timeout=60)
    assert not errors, errors
    _same_state(before, torch_state())
    assert not is_in_torch_dispatch_mode(), "a dispatch mode is still flagged as active"
    ref = _run(_net("plain"), _x(), method).relevance
    torch.testing.assert_close(out["a"], ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(out["b"], ref, rtol=1e-12, atol=1e-14)


def test_torchscript_already_run_by_the_user_is_guided_everywhere():
    """A scripted model the user has run (and TorchScript has optimised into fused graphs) is explained from a
    fresh copy: guided backprop sees every ReLU, as in the nn.Module; also as a submodule of an nn.Module."""
    net, x = _net("plain"), _x()
    scripted = torch.jit.script(_net("plain"))
    outer = nn.Sequential(nn.Identity(), torch.jit.script(_net("plain")))
    for model in (scripted, outer):
        for _ in range(3):
            model(x.clone().requires_grad_(True)).sum().backward()
    ref = _run(net, x, "guided_backprop")
    for model in (scripted, outer):
        e = _run(model, x, "guided_backprop")
        assert e.parameters["relu_backwards_guided"] == ref.parameters["relu_backwards_guided"] == 2
        torch.testing.assert_close(e.relevance, ref.relevance, rtol=1e-12, atol=1e-14)


def test_tied_weights_stay_tied_in_the_copy():
    torch.manual_seed(0)
    a, b = nn.Conv3d(1, 1, 3, padding=1, bias=False), nn.Conv3d(1, 1, 3, padding=1, bias=False)
    b.weight = a.weight
    net = nn.Sequential(a, nn.ReLU(), b, nn.Flatten(), nn.Linear(27, 2)).double()
    x = torch.randn(1, 1, 3, 3, 3, dtype=D)
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(xi)[0, 1], xi)
    torch.testing.assert_close(explain(net, x, "gradient", target=1, device="cpu", dtype=D).relevance, g)
