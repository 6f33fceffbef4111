"""One forward pass, not two: the graph's forward pass follows the model's own forward step by step.

The model's own forward on our private copy is the trace check's reference. While it runs, ``Lockstep``
runs the graph's forward pass (``propagate.ForwardRun``) alongside: at each conv/dense module call the
graph is advanced to its operator for that call, the graph's input to it is compared with what the model
fed the module (within the trace-check tolerance), and the module's output (with a folded BatchNorm
applied) becomes the graph's value instead of being convolved again. Max-pooling modules hand over their
winners' indices too (our copy's pooling computes them in the same call, the same output). So:

- nothing is convolved twice and nothing is buffered between the passes: the graph keeps what the walk
  needs, the model frees what it no longer needs;
- the graph's wiring is checked at every shared layer, and its output against ``model(x)`` as before;
- a layer is shared only if the graph's operator calls that very module of our copy, and the layer we
  propagate through equals the module: on a small random probe covering every kernel tap
  and the bias, ``LinearLayer`` (with any folded BatchNorm) reproduces ``module`` (and ``bn(module)``)
  — a module that computes something else (an instance-level ``forward`` …) is computed, not shared;
- a value the model overwrites in place after handing it over is detected (version counters);
- any mismatch (``TapMismatch``) makes the caller run the whole graph itself, so a graph that does not
  reproduce the model is found, diagnosed and refused exactly as without sharing. Calls in another order
  than the graph's stop the sharing; the rest of the graph is then computed after the model's forward.

Hooks and pooling forwards live on our private copy only, for the duration of one call (a cached copy is
used by one call at a time), and act only for the thread that installed them.
"""
from __future__ import annotations

import threading
from typing import Any

import torch
import torch.nn as nn

from .operators import Linear
from .operators.pooling import WITH_INDICES, MaxPool
from .propagate import ForwardRun, GraphRunError, ValueChanged

Tensor = torch.Tensor


class TapMismatch(RuntimeError):
    """The graph fed a shared layer something else than the model did (the caller reruns without sharing)."""


def _max_abs(t: Tensor) -> Tensor:
    """max |t| in one read of ``t`` (``aminmax``; NaN propagates)."""
    lo, hi = torch.aminmax(t)
    return torch.maximum(-lo, hi)


def _relative(a: Tensor, b: Tensor) -> float:
    """max |a − b| / max |b| (inf for other shapes or a NaN); 0 at once for the very same tensor."""
    if a.shape != b.shape:
        return float("inf")
    if a is b or (a.data_ptr() == b.data_ptr() and a.stride() == b.stride() and a.dtype == b.dtype):
        return 0.0
    if torch.equal(a, b):  # the common case: the graph computed the model's very values
        return 0.0
    scale, diff = float(_max_abs(b)), float(_max_abs(a - b))
    if diff != diff:
        return float("inf")
    return diff / scale if scale > 0 else diff


def _probe_input(op: Linear, like: Tensor) -> Tensor | None:
    """A random input touching every kernel tap of ``op``'s layer (None where we cannot size one)."""
    layer, module = op.layer, op.module
    gen = torch.Generator().manual_seed(0)
    if layer.kind == "dense":
        shape: tuple = (2, layer.weight.shape[1])
    elif layer.kind in ("conv", "convT"):
        n = layer.spatial_dims
        k, s, d = layer.weight.shape[2:], layer._tuple(layer.stride), layer._tuple(layer.dilation)
        pad = [0] * n if isinstance(module.padding, str) else list(module.padding)
        shape = (1, module.in_channels, *[max(d[i] * (k[i] - 1) + s[i], pad[i] + 1) for i in range(n)])
    else:
        return None
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(device=like.device, dtype=like.dtype)


def layer_matches_module(op: Linear, like: Tensor, tol: float, memo: dict) -> bool:
    """``op.layer`` (with its folded BatchNorm) equals ``bn(module(·))`` on a random probe (memoised)."""
    bn = op.folded_module
    key = (str(op.node.target), id(op.module), id(bn), like.dtype, str(like.device), tol)
    if key not in memo:
        ok = False
        probe = _probe_input(op, like)
        if probe is not None and not (op.layer.folded and bn is None):
            try:
                with torch.no_grad():
                    want = op.module(probe)
                    if bn is not None:
                        want = bn(want)
                    got = op.layer.forward(probe, op.layer.weight, op.layer.bias)
                ok = _relative(got, want) <= tol
            except Exception:  # noqa: BLE001 - a module we cannot probe is computed, not shared
                ok = False
        memo[key] = ok
    return memo[key]


def _poolable(module: nn.Module) -> bool:
    return type(module) in (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d) and not module.return_indices \
        and "forward" not in module.__dict__


#: spatial dimensions of the max-pooling modules whose forward the lockstep replaces
_POOL_DIMS: dict[type[nn.Module], int] = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}

class Lockstep:
    """Context manager around the model's own forward on ``root``: ``run`` (the graph) follows it."""

    def __init__(self, root: nn.Module, run: ForwardRun, tol: float, probes: dict | None = None) -> None:
        self.root, self.run, self.tol = root, run, tol
        probes = {} if probes is None else probes
        x = run.x
        modules = dict(root.named_modules())
        owned = {id(m) for m in modules.values()}

        def ours(op: Any) -> bool:  # the graph's op calls the very module whose call it would take over
            return op.node.op == "call_module" and modules.get(str(op.node.target)) is op.module \
                and (getattr(op, "folded_module", None) is None or id(op.folded_module) in owned)

        self.shared = {id(op) for op in run.plan.steps
                       if isinstance(op, Linear) and op.module is not None and ours(op)
                       and layer_matches_module(op, x, tol, probes)}
        self.shared |= {id(op) for op in run.plan.steps
                        if isinstance(op, MaxPool) and op.module is not None and ours(op) and _poolable(op.module)}
        self.waiting: Any | None = None
        self.error: BaseException | None = None
        self.detached = False
        self.used = 0
        self._thread = threading.get_ident()
        self._undo: list = []

    # -- the model's side ------------------------------------------------------------------------
    def __enter__(self) -> Lockstep:
        for path, module in self.root.named_modules():
            if isinstance(module, torch.jit.ScriptModule):
                continue
            if isinstance(module, Linear.modules):
                self._undo.append(module.register_forward_hook(self._linear_hook(path)).remove)
            elif _poolable(module):
                module.__dict__["forward"] = self._pooling_forward(path, module)
                self._undo.append(lambda m=module: m.__dict__.pop("forward", None))
        self.waiting = self._advance()
        return self

    def __exit__(self, *exc: Any) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _mine(self) -> bool:
        return threading.get_ident() == self._thread and not self.detached and self.waiting is not None

    def _linear_hook(self, path: str):
        def hook(module: nn.Module, args: tuple, out: Any) -> None:
            if self._mine() and args and isinstance(out, Tensor):
                self._take(path, args[0], out, None)
        return hook

    def _pooling_forward(self, path: str, module: nn.Module):
        n = _POOL_DIMS[type(module)]

        def forward(x: Tensor) -> Tensor:
            def as_list(v: Any) -> list:
                return [v] * n if isinstance(v, int) else list(v)
            out, indices = WITH_INDICES[n](x, as_list(module.kernel_size), as_list(module.stride),
                                           as_list(module.padding), as_list(module.dilation), module.ceil_mode)
            if self._mine():
                self._take(path, x, out, indices)
            return out
        return forward

    # -- the graph's side ------------------------------------------------------------------------
    def _advance(self) -> Any | None:
        try:
            return self.run.advance(lambda op: id(op) in self.shared)
        except (GraphRunError, ValueChanged) as exc:  # raised after the model's forward, never inside it
            self.error, self.detached = exc, True
            return None

    def _take(self, path: str, x_model: Tensor, out: Tensor, indices: Tensor | None) -> None:
        op = self.waiting
        if op is None:  # the hooks call this only while a layer is waiting (``_mine``)
            return
        try:
            if str(op.node.target) != path:
                self.detached = True  # the model called another module first: compute the rest afterwards
                return
            if _relative(self.run.input_of(op), x_model) > self.tol:
                raise TapMismatch(f"node '{op.name}' ({op.label}): the graph's input differs from the model's")
            if isinstance(op, MaxPool):
                op.indices, op.in_shape = indices, x_model.shape
                self.run.feed(op, out, guard=True)
            elif op.folded_module is not None:
                with torch.no_grad():
                    self.run.feed(op, op.folded_module(out))
            else:
                self.run.feed(op, out, guard=True)
            op.pre = None  # the rule computes its companions (W⁺x …) in the walk: same cost, nothing kept
            self.used += 1
        except Exception as exc:  # noqa: BLE001 - never raise into the model's forward
            self.error, self.detached = exc, True
            return
        self.waiting = self._advance()

    def finish(self) -> tuple:
        """After the model's forward: compute what is left of the graph; (recording, output, whole output).
        Raises ``TapMismatch`` (rerun the graph without sharing) or the graph's own ``GraphRunError``."""
        if isinstance(self.error, GraphRunError):
            raise self.error
        if self.error is not None:
            raise TapMismatch(str(self.error))
        try:
            return self.run.finish()
        except ValueChanged as exc:
            raise TapMismatch(str(exc)) from exc
