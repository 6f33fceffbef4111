"""Turn whatever the user passes as a model into a torch.fx graph we own.

- ``nn.Module``: a deep copy (eval mode, run dtype/device, in-place activations switched off) traced
  with ``torch.fx.symbolic_trace``; if Python control flow defeats fx, ``torch.export`` is used.
- ``torch.export.ExportedProgram`` or a ``.pt2`` file: its unlifted graph module (copied).
- ``torch.jit.ScriptModule`` or a TorchScript file: rebuilt as an fx graph of aten ops
  (``torchscript.script_to_fx``).
The user's model, its parameters and its train/eval flags are never modified.
"""
from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from .torchscript import script_to_fx


@dataclass
class Captured:
    """An fx graph module plus where it came from and the module types by qualified name."""

    gm: fx.GraphModule
    source: str
    module_types: dict[str, Any] = field(default_factory=dict)


def _cast(t: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    t = t.detach()
    return t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device=device)


def _structural_copy(module: nn.Module, device: torch.device, dtype: torch.dtype, memo: dict) -> nn.Module:
    """A copy of the module tree with new (cast, frozen) parameter and buffer tensors, eval mode, no
    hooks and no in-place activations. Much cheaper than ``copy.deepcopy``: other attributes are
    shared (they are only read)."""
    if id(module) in memo:
        return memo[id(module)]
    new = module.__class__.__new__(module.__class__)
    new.__dict__ = module.__dict__.copy()
    memo[id(module)] = new
    new._parameters = {k: (None if v is None else memo.setdefault(
        id(v), nn.Parameter(_cast(v, device, dtype), requires_grad=False))) for k, v in module._parameters.items()}
    new._buffers = {k: (None if v is None else _cast(v, device, dtype)) for k, v in module._buffers.items()}
    new._modules = {k: (None if v is None else _structural_copy(v, device, dtype, memo))
                    for k, v in module._modules.items()}
    for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                 "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs",
                 "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                 "_load_state_dict_post_hooks"):
        if name in new.__dict__:
            new.__dict__[name] = type(module.__dict__[name])()
    new.training = False
    if new.__dict__.get("inplace") is True:
        new.inplace = False
    return new


def _prepare_copy(model: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    if isinstance(model, torch.jit.ScriptModule) or any(
            isinstance(m, torch.jit.ScriptModule) for m in model.modules()):
        work = copy.deepcopy(model)
        work.eval()
        work.requires_grad_(False)
        for m in work.modules():
            if getattr(m, "inplace", False) is True:
                m.inplace = False
            m._forward_hooks.clear()
            m._forward_pre_hooks.clear()
        return work.to(device=device, dtype=dtype)
    return _structural_copy(model, device, dtype, {})


def _defaults_after_first(model: nn.Module) -> dict[str, Any]:
    """Optional forward arguments (``forward(x, mask=None)``) are traced at their defaults."""
    import inspect
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params[1:]
            if p.default is not inspect.Parameter.empty and p.kind is not inspect.Parameter.VAR_KEYWORD}


def _types_of(root: nn.Module) -> dict[str, Any]:
    return {name: type(m) for name, m in root.named_modules()}


def _from_export(ep: Any, device: torch.device, dtype: torch.dtype, source: str) -> Captured:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pytree deprecation noise inside torch
        gm = copy.deepcopy(ep.module())
    gm.requires_grad_(False)
    gm = gm.to(device=device, dtype=dtype)
    types: dict[str, Any] = {}
    for node in gm.graph.nodes:
        for path, type_name in (node.meta.get("nn_module_stack") or {}).values():
            types.setdefault(path, str(type_name).rsplit(".", 1)[-1])
    _drop_guards(gm)
    return Captured(gm, source, types)


def _drop_guards(gm: fx.GraphModule) -> None:
    """Remove export's shape-guard call (``_guards_fn``); it checks nothing we rely on."""
    for node in list(gm.graph.nodes):
        if node.op == "call_module" and str(node.target).startswith("_guards") and not node.users:
            gm.graph.erase_node(node)
    gm.graph.lint()


def _load_path(path: str) -> Any:
    """Open a model file with the library's one loader, which runs no code from an untrusted file."""
    if not os.path.exists(path):
        raise ValueError(f"Model file {path!r} does not exist; pass an existing .pt2 (torch.export) or "
                         "TorchScript file, or the nn.Module itself.")
    from ..models import open_model

    return open_model(path)


def capture(model: Any, x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> Captured:
    """Our own fx graph of ``model`` (never the user's objects), in ``dtype`` on ``device``."""
    if isinstance(model, (str, os.PathLike)):
        model = _load_path(os.fspath(model))
    if isinstance(model, torch.export.ExportedProgram):
        return _from_export(model, device, dtype, "torch.export")
    if isinstance(model, torch.jit.ScriptModule):
        flags = {name: m.training for name, m in model.named_modules()}
        try:
            model.eval()
            gm, types = script_to_fx(model, x, device, dtype)
        finally:
            for name, m in model.named_modules():
                m.training = flags.get(name, m.training)
        return Captured(gm, "torchscript", types)
    if not isinstance(model, nn.Module):
        raise ValueError(f"explain() needs an nn.Module, a ScriptModule, an ExportedProgram or a path to a "
                         f".pt2/TorchScript file, not {type(model).__name__}.")
    work = _prepare_copy(model, device, dtype)
    try:
        gm = fx.symbolic_trace(work, concrete_args=_defaults_after_first(work) or None)
        return Captured(gm, "torch.fx", _types_of(work))
    except Exception as fx_error:  # noqa: BLE001 - fall back to torch.export
        try:
            ep = torch.export.export(work, (x,))
        except Exception as export_error:  # noqa: BLE001
            raise ValueError(
                f"Could not build the operator graph of {type(model).__name__}: torch.fx failed "
                f"({fx_error.__class__.__name__}: {str(fx_error).splitlines()[0][:200]}) and torch.export failed "
                f"({export_error.__class__.__name__}: {str(export_error).splitlines()[0][:200]}). Make the forward "
                "traceable (no Python branching on tensor values) or pass a TorchScript/.pt2 file.") from export_error
        return _from_export(ep, device, dtype, "torch.export")
