"""torch.fx symbolic tracing of our private model copy without patching anything global.

``torch.fx.symbolic_trace`` replaces ``nn.Module.__call__`` and ``nn.Module.__getattr__`` for the
whole process while it runs: a forward pass in another thread meanwhile is recorded into the wrong
graph or fails, and two overlapping traces can leave the patch in place. Here each submodule of
*our own copy* gets an instance-level ``forward`` that routes the call through the tracer (leaf
modules become ``call_module`` nodes, others are traced through), and it is removed again at the
end. Nothing outside the copy changes, so concurrent traces and forwards in other threads are safe.

The graph is specialised to the forward's default arguments (``forward(x, mask=None)`` is traced
with ``mask=None``). Python checks on tensors (``isinstance``) see an ``fx.Proxy``; the caller
verifies the graph's output against the model's (``verify.py``).
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn


class TraceError(RuntimeError):
    """The model could not be traced symbolically."""


def _first_argument_name(root: nn.Module) -> str:
    try:
        params = list(inspect.signature(root.forward).parameters.values())
    except (TypeError, ValueError):
        return "x"
    return params[0].name if params and params[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) else "x"


def _collect_tensor_attrs(module: nn.Module, prefix: list[str], into: dict) -> None:
    """Plain tensor attributes (not parameters/buffers) by qualified name, as fx's tracer expects."""
    for key, value in module.__dict__.items():
        if isinstance(value, (torch.Tensor, torch.ScriptObject)):
            into[value] = ".".join(prefix + [key])
    for key, child in module.named_children():
        _collect_tensor_attrs(child, prefix + [key], into)


def trace_copy(root: nn.Module) -> fx.GraphModule:
    """An fx ``GraphModule`` of ``root`` (our private copy) traced with one placeholder input."""
    tracer = fx.Tracer()
    tracer.root = root
    tracer.root_module_name = root._get_name()
    tracer.submodule_paths = {mod: name for name, mod in root.named_modules()}
    tracer.graph = fx.Graph(tracer_cls=fx.Tracer)
    tracer.tensor_attrs = {}
    _collect_tensor_attrs(root, [], tracer.tensor_attrs)
    installed: list[tuple[nn.Module, Any]] = []
    try:
        for _, module in root.named_modules():
            if module is root or isinstance(module, torch.jit.ScriptModule):
                continue  # a scripted submodule cannot take a Proxy: the trace fails and the next graph is tried
            had = module.__dict__.get("forward", None)
            original = module.forward

            def routed(*args: Any, _m: nn.Module = module, _f: Any = original, **kwargs: Any) -> Any:
                return tracer.call_module(_m, _f, args, kwargs)

            module.__dict__["forward"] = routed
            installed.append((module, had))
        x = tracer.create_proxy("placeholder", _first_argument_name(root), (), {})
        out = root.forward(x)
        tracer.create_node("output", "output", (tracer.create_arg(out),), {})
    except Exception as exc:  # noqa: BLE001 - any failure means: no fx graph
        raise TraceError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    finally:
        for module, had in installed:
            if had is None:
                module.__dict__.pop("forward", None)
            else:
                module.__dict__["forward"] = had
    return fx.GraphModule(root, tracer.graph, root.__class__.__name__)
