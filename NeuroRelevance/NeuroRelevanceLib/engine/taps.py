"""One forward pass, not two: the model's own forward (the trace check's reference) also feeds the walk.

While the model's own forward runs on our private copy, ``TapRecorder`` records each conv/dense module
call's input and output (and the output of a BatchNorm applied directly to it). The graph's forward
pass then takes a layer's output from there instead of convolving again (``Taps.value``), after
checking that the graph fed the layer what the model fed it (within the trace-check tolerance), so:

- the graph's wiring is checked at every conv/dense layer, and its output against ``model(x)`` as before;
- a rule's companions (``W⁺x`` for z⁺ …) are left to the reverse walk (one convolution either way,
  but nothing to keep between the passes);
- the layer we propagate through equals the module: on a small random probe covering every kernel tap
  and the bias, ``LinearLayer`` (with any folded BatchNorm) reproduces ``module`` (and ``bn(module)``)
  — a subclass that changes ``forward`` (weight standardisation …) fails it and is computed, not tapped;
- any mismatch raises ``TapMismatch`` and the caller reruns the whole graph itself (the old way), so a
  graph that does not reproduce the model is still found, diagnosed and refused exactly as before.

Hooks live on our private copy only; each records only calls from the thread that installed it.
"""
from __future__ import annotations

import threading
from typing import Any, Optional

import torch
import torch.nn as nn

from . import ops
from .operators import Linear

Tensor = torch.Tensor


class TapMismatch(RuntimeError):
    """The graph fed a tapped layer something else than the model did (the caller reruns without taps)."""


class TapRecorder:
    """Context manager: records conv/dense calls (input, output[, BatchNorm output]) of ``root``'s forward,
    with the tensors' version counters (a tensor the model later overwrites in place is not used)."""

    def __init__(self, root: nn.Module) -> None:
        self.root = root
        self.calls: dict[str, list[list]] = {}
        self._last: Optional[list] = None
        self._handles: list = []
        self._thread = threading.get_ident()

    def __enter__(self) -> "TapRecorder":
        for path, module in self.root.named_modules():
            if isinstance(module, torch.jit.ScriptModule):
                continue
            if isinstance(module, ops.LINEAR_MODULES):
                self._handles.append(module.register_forward_hook(self._linear_hook(path)))
            elif isinstance(module, ops.BATCHNORM_MODULES):
                self._handles.append(module.register_forward_hook(self._batchnorm_hook))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._last = None

    def _linear_hook(self, path: str):
        def hook(module: nn.Module, args: tuple, out: Any) -> None:
            if threading.get_ident() != self._thread:
                return
            x = args[0] if args else None
            if not (isinstance(x, Tensor) and isinstance(out, Tensor)):
                return
            self._last = [x, out, None, None, (x._version, out._version)]
            self.calls.setdefault(path, []).append(self._last)
        return hook

    def _batchnorm_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        if threading.get_ident() != self._thread or self._last is None:
            return
        if args and args[0] is self._last[1] and isinstance(out, Tensor):
            self._last[2], self._last[3] = module, out
            self._last[4] += (out._version,)

    def taps(self, tol: float, probes: Optional[dict] = None) -> "Taps":
        """The recorded calls for one graph; ``probes`` memoises module checks (a cache entry's)."""
        return Taps(self.calls, tol, probes)


def _probe_input(op: Linear, like: Tensor) -> Optional[Tensor]:
    """A random input touching every kernel tap of ``op``'s layer (None where we cannot size one)."""
    layer, module = op.layer, op.module
    gen = torch.Generator().manual_seed(0)
    if layer.kind == "dense":
        shape = (2, layer.weight.shape[1])
    elif layer.kind in ("conv", "convT"):
        n = layer.spatial_dims
        k, s, d = layer.weight.shape[2:], layer._tuple(layer.stride), layer._tuple(layer.dilation)
        pad = [0] * n if isinstance(module.padding, str) else list(module.padding)
        size = [max(d[i] * (k[i] - 1) + s[i], pad[i] + 1) for i in range(n)]
        channels = module.in_channels
        shape = (1, channels, *size)
    else:
        return None
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(device=like.device, dtype=like.dtype)


def _relative(a: Tensor, b: Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    if torch.equal(a, b):
        return 0.0
    scale = float(b.abs().max())
    diff = float((a - b).abs().max())
    if diff != diff:
        return float("inf")
    return diff / scale if scale > 0 else diff


class Taps:
    """Recorded module calls, handed out to the graph's linear operators in call order."""

    def __init__(self, calls: dict[str, list[list]], tol: float, probes: Optional[dict] = None) -> None:
        self.calls, self.tol = calls, tol
        self._next: dict[str, int] = {}
        self._probed: dict = {} if probes is None else probes
        self.used = 0

    def _matches_module(self, op: Linear, bn: Optional[nn.Module], like: Tensor) -> bool:
        """``op.layer`` (with its folded BatchNorm) equals ``bn(module(·))`` on a random probe."""
        key = (str(op.node.target), id(op.module), id(bn), like.dtype, str(like.device), self.tol)
        if key not in self._probed:
            ok = False
            probe = _probe_input(op, like)
            if probe is not None:
                try:
                    with torch.no_grad():
                        want = op.module(probe)
                        if bn is not None:
                            want = bn(want)
                        got = op.layer.forward(probe, op.layer.weight, op.layer.bias)
                    ok = _relative(got, want) <= self.tol
                except Exception:  # noqa: BLE001 - a module we cannot probe is computed, not tapped
                    ok = False
            self._probed[key] = ok
        return self._probed[key]

    def value(self, op: Any, env: dict) -> Any:
        """``op``'s output from the model's own forward, or ``NotImplemented`` (compute it yourself)."""
        if not isinstance(op, Linear) or op.module is None or op.node.op != "call_module":
            return NotImplemented
        path = str(op.node.target)
        k = self._next.get(path, 0)
        self._next[path] = k + 1
        calls = self.calls.get(path)
        if calls is None or k >= len(calls) or calls[k] is None:
            return NotImplemented
        x_model, out, bn, bn_out, versions = calls[k]
        folded = op.folded_module
        if op.layer.folded and (folded is None or bn is not folded):
            return NotImplemented  # the graph folded a BatchNorm the model did not apply right here
        if (x_model._version, out._version) != versions[:2]:
            return NotImplemented  # the model overwrote a recorded tensor in place later on
        if bn_out is not None and bn_out._version != versions[2]:
            bn_out = None  # overwritten by the model (``out += residual``): apply the BatchNorm again below
        x = env[op.inputs[0]]
        if not self._matches_module(op, folded, x):
            return NotImplemented
        if _relative(x, x_model) > self.tol:
            raise TapMismatch(f"node '{op.name}' ({op.label}): the graph's input differs from the model's")
        calls[k] = None  # hand each recorded call out once; free it as the walk goes
        self.used += 1
        op.pre = None  # the rule computes its companions (W⁺x …) in the walk: same cost, nothing kept
        if folded is None:
            return out
        if bn_out is None:
            with torch.no_grad():
                bn_out = folded(out)
        return bn_out
