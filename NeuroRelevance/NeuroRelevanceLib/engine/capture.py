"""Turn whatever the user passes as a model into fx graphs we own, plus the model's own forward.

``prepare`` returns a ``Source``: ``reference(x)`` runs the model itself (a private copy in eval mode,
in the run's dtype/device) and ``candidates`` build operator graphs, most faithful last:

- ``nn.Module``: the shared working copy (``explanation.working_copy``; in-place activations off)
  traced with our own fx tracer (``fxtrace.py``, nothing patched globally), then ``torch.export``
  (as is, then functionalised: views of overwritten tensors), then ``torch.jit.trace`` on this very
  input (rebuilt by ``torchscript.script_to_fx``);
- ``torch.export.ExportedProgram`` or a ``.pt2`` file: its unlifted graph, then the functionalised one;
- ``torch.jit.ScriptModule`` or a TorchScript file: the TorchScript graph walked with this input.
The caller keeps the first graph that reproduces ``reference(x)`` (``verify.py``). The user's model,
its tensors, hooks and train/eval flags are never modified or run.
"""
from __future__ import annotations

import copy
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from ..explanation.working_copy import working_copy
from .cache import Entry, entry_for
from .fxtrace import trace_copy
from .quiet import quiet_capture
from .torchscript import script_to_fx

# torch.export and torch.jit.trace patch dynamo/jit configuration while they run: our own calls take turns
_TRACE_LOCK = threading.RLock()


@dataclass
class Captured:
    """An fx graph module plus where it came from and the module types by qualified name."""

    gm: fx.GraphModule
    source: str
    module_types: dict[str, Any] = field(default_factory=dict)


def _prepare_copy(model: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """The shared working copy (``explanation.working_copy``) with in-place activations off."""
    return working_copy(model, device, dtype, inplace=False)


def _types_of(root: nn.Module) -> dict[str, Any]:
    return {name: type(m) for name, m in root.named_modules()}


_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _export_module(ep: Any, device: torch.device, dtype: torch.dtype) -> fx.GraphModule:
    """Our own copy of the program's module in the run's dtype/device. (``ep.module()`` shares the program's
    tensors, which may be the user's parameters: only a deep copy may be cast.) torch's own deprecation notice
    about its pytree specs (``isinstance(treespec, LeafSpec)``), raised by copying them, is silenced here only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
        gm = copy.deepcopy(ep.module())
    gm.requires_grad_(False)
    _run_in(gm, dtype)
    return gm.to(device=device, dtype=dtype)


def _from_export(ep: Any, device: torch.device, dtype: torch.dtype, source: str) -> Captured:
    gm = _export_module(ep, device, dtype)
    types: dict[str, Any] = {}
    for node in gm.graph.nodes:
        for path, type_name in (node.meta.get("nn_module_stack") or {}).values():
            types.setdefault(path, str(type_name).rsplit(".", 1)[-1])
    return Captured(gm, source, types)


def _run_in(gm: fx.GraphModule, dtype: torch.dtype) -> None:
    """Let an exported graph run in ``dtype``: drop export's guard call and dtype assertions, and make the
    floating dtypes baked into ops (``aten.to(..., dtype=float64)``, factories) the run's dtype. The
    input-spec hook still checks the shapes the program was exported for."""
    def retarget(v: Any) -> Any:
        return dtype if isinstance(v, torch.dtype) and v in _FLOATS else v

    for node in list(gm.graph.nodes):
        guard = node.op == "call_module" and str(node.target).startswith("_guards")
        assertion = node.op == "call_function" and "_assert_tensor_metadata" in str(node.target)
        if (guard or assertion) and not node.users:
            gm.graph.erase_node(node)
        elif node.op == "call_function":
            node.args = tuple(retarget(a) for a in node.args)
            node.kwargs = {k: retarget(v) for k, v in node.kwargs.items()}
    gm.graph.lint()
    gm.recompile()


def _load_path(path: str) -> Any:
    """Open a model file with the library's one loader, which runs no code from an untrusted file."""
    if not os.path.exists(path):
        raise ValueError(f"Model file {path!r} does not exist; pass an existing .pt2 (torch.export) or "
                         "TorchScript file, or the nn.Module itself.")
    from ..models import open_model

    return open_model(path)



@dataclass
class Candidate:
    """One way to obtain an operator graph: ``build`` (possibly cached, then already functionalised by
    ``build_plan``) and ``fresh`` (a new, unmodified graph, for diagnosis)."""

    name: str
    build: Callable[[], Captured]
    hooks_root: nn.Module | None = None   # a module whose submodules match the graph's call_module nodes
    fresh: Callable[[], Captured] | None = None  # an uncached build (``build`` may return a cached graph)


@dataclass
class Source:
    """The model as the engine sees it: its own forward (``reference``) and graph candidates in order."""

    kind: str
    reference: Callable[[torch.Tensor], Any]
    candidates: list[Candidate]
    tensors: Callable[[], list[tuple[str, torch.Tensor]]]   # named parameters/buffers (to name a NaN)
    tap_root: nn.Module | None = None   # the private copy ``reference`` runs (its layer calls can be recorded)
    entry: Entry | None = None          # the cache entry this source was built from (``cache.py``)
    refresh: Callable[[], Source] | None = None  # the same source with the entry's graphs captured afresh


def _named_tensors(module: Any) -> list[tuple[str, torch.Tensor]]:
    out = list(module.named_parameters()) + list(module.named_buffers())
    return [(k, v) for k, v in out if isinstance(v, torch.Tensor)]


def _module_source(model: nn.Module, x: torch.Tensor, device: torch.device, dtype: torch.dtype,
                   entry: Entry | None = None) -> Source:
    """The Source of an nn.Module: our structural copy (``entry``'s when cached, see ``cache.py``) and its graphs."""
    work = entry.work if entry is not None else _prepare_copy(model, device, dtype)
    assert work is not None, "entry_for builds the entry's copy before handing it out"
    shape = tuple(x.shape)

    def kept(name: str, build: Callable[[], Any], per_shape: bool = True) -> Callable[[], Any]:
        """``build`` memoised in the cache entry (per input shape unless the graph is shape-free)."""
        if entry is None:
            return build
        key = (name, shape if per_shape else None)

        def get() -> Any:
            if key not in entry.graphs:
                entry.graphs[key] = build()
            return entry.graphs[key]
        return get

    def fx_graph() -> Captured:
        return Captured(trace_copy(work), "torch.fx", _types_of(work))

    def export_program() -> Any:
        with _TRACE_LOCK, quiet_capture():
            return torch.export.export(work, (x.clone(),))

    program = kept("program", export_program)

    def exported() -> Captured:
        return _from_export(program(), device, dtype, "torch.export")

    def functionalised() -> Captured:
        with _TRACE_LOCK, quiet_capture():
            flat = program().run_decompositions({})
        return _from_export(flat, device, dtype, "torch.export (functionalised)")

    def jit_traced() -> Captured:
        with _TRACE_LOCK, quiet_capture():
            traced = torch.jit.trace(work, (x.clone(),), check_trace=False)
        gm, types = script_to_fx(traced, x.clone(), device, dtype)
        return Captured(gm, "torchscript (traced)", {**_types_of(work), **types})

    candidates = [Candidate("torch.fx", kept("torch.fx", fx_graph, per_shape=False), work, fx_graph),
                  Candidate("torch.export", kept("torch.export", exported), fresh=exported),
                  Candidate("torch.export (functionalised)", kept("functionalised", functionalised),
                            fresh=functionalised),
                  Candidate("torchscript (traced)", kept("torchscript (traced)", jit_traced), fresh=jit_traced)]
    winner = entry.winner.get(shape) if entry is not None else None
    candidates.sort(key=lambda c: c.name != winner)  # last time's graph first (stable otherwise)
    refresh = None if entry is None else partial(_refreshed, model, x, device, dtype, entry)
    return Source("nn.Module", work, candidates, lambda: _named_tensors(work), tap_root=work, entry=entry,
                  refresh=refresh)


def _refreshed(model: nn.Module, x: torch.Tensor, device: torch.device, dtype: torch.dtype, entry: Entry) -> Source:
    """The Source of ``model`` with ``entry``'s graphs captured afresh."""
    entry.graphs.clear()
    entry.winner.clear()
    return _module_source(model, x, device, dtype, entry)


def _export_source(ep: Any, device: torch.device, dtype: torch.dtype) -> Source:
    def reference(x: torch.Tensor) -> Any:
        return _export_module(ep, device, dtype)(x)

    def functional() -> Captured:
        with _TRACE_LOCK, quiet_capture():
            flat = ep.run_decompositions({})
        return _from_export(flat, device, dtype, "torch.export (functionalised)")

    return Source("ExportedProgram", reference,
                  [Candidate("torch.export", lambda: _from_export(ep, device, dtype, "torch.export")),
                   Candidate("torch.export (functionalised)", functional)],
                  lambda: [(k, v) for k, v in ep.state_dict.items() if isinstance(v, torch.Tensor)])


def _script_source(model: torch.jit.ScriptModule, x: torch.Tensor, device: torch.device,
                   dtype: torch.dtype) -> Source:
    def reference(xx: torch.Tensor) -> Any:
        with torch.no_grad():  # a private copy in eval mode and the run's dtype; the user's module is not run
            run = copy.deepcopy(model)
        run.eval()
        return run.to(device=device, dtype=dtype)(xx)

    def converted() -> Captured:
        gm, types = script_to_fx(model, x.clone(), device, dtype)  # a forward may write x
        return Captured(gm, "torchscript", types)

    return Source("TorchScript", reference, [Candidate("torchscript", converted)], lambda: _named_tensors(model))


@contextmanager
def prepared(model: Any, x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> Iterator[Source]:
    """``prepare``, reusing a cached copy and its graphs for an unchanged ``nn.Module`` (``cache.py``)."""
    if isinstance(model, nn.Module) and not isinstance(model, torch.jit.ScriptModule):
        with entry_for(model, device, dtype, lambda m: _prepare_copy(m, device, dtype)) as entry:
            yield _module_source(model, x, device, dtype, entry)
        return
    yield prepare(model, x, device, dtype)


def prepare(model: Any, x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> Source:
    """The ``Source`` of whatever the user passed as a model (module, scripted module, program or path)."""
    if isinstance(model, (str, os.PathLike)):
        model = _load_path(os.fspath(model))
    if isinstance(model, torch.export.ExportedProgram):
        return _export_source(model, device, dtype)
    if isinstance(model, torch.jit.ScriptModule):
        return _script_source(model, x, device, dtype)
    if not isinstance(model, nn.Module):
        raise ValueError(f"explain() needs an nn.Module, a ScriptModule, an ExportedProgram or a path to a "
                         f".pt2/TorchScript file, not {type(model).__name__}.")
    return _module_source(model, x, device, dtype)
