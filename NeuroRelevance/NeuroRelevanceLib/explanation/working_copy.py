"""The one private working copy of a user's model (and input) that every explanation method runs on.

``working_copy``: a structural copy in eval mode with new, frozen, normal (non-inference) parameter and buffer tensors
on the run device/dtype and without the user's module hooks (torch's own hooks such as ``weight_norm`` and
pruning, which compute a weight, are kept); TorchScript modules are re-loaded from their serialised form, so
they get executors of their own (deep-copied where they cannot be serialised). ``inplace=False`` also turns off
the in-place flag of activations (the LRP engine records every operator's input). ``private_input``: a normal
tensor that shares no memory with the caller's ``x``. Nothing of the caller's model or ``x`` is modified.
"""
from __future__ import annotations

import copy
import io
import types
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ..errors import InputError

Tensor = torch.Tensor


def _is_torch_own(hook: Any) -> bool:
    """Hooks that torch installs to compute a weight (weight_norm, spectral_norm, pruning) are the model's."""
    plain = isinstance(hook, (types.FunctionType, types.MethodType))
    owner = getattr(hook, "__module__", None) if plain else type(hook).__module__
    return isinstance(owner, str) and owner.startswith("torch.")


def _hook_tables(module: nn.Module) -> dict[str, Any]:
    """Every hook table of ``module`` (attribute name -> a new table holding only torch's own hooks)."""
    tables = {k: v for k, v in vars(module).items() if "hook" in k and isinstance(v, dict)}
    kept = {hid for v in tables.values() for hid, h in v.items() if callable(h) and _is_torch_own(h)}
    return {k: type(v)((hid, h) for hid, h in v.items() if hid in kept) for k, v in tables.items()}


def _frozen(t: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    t = t.detach()
    return t.to(device=device, dtype=dtype, copy=True) if t.is_floating_point() else t.to(device=device, copy=True)


def _script_copy(script: torch.jit.ScriptModule, device: torch.device) -> torch.jit.ScriptModule:
    """A TorchScript module re-loaded from the serialised form of ``script`` (new tensors, flags and executors);
    a deep copy (new tensors and flags, shared executors) where it cannot be serialised (calls into Python)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # "torch.jit.save/load is deprecated" (torch 2.13)
        try:
            torch.jit.save(script, buffer)
        except RuntimeError:
            with torch.no_grad():   # made under grad mode, a TorchScript deep copy has non-leaf parameters
                return copy.deepcopy(script)
        buffer.seek(0)
        return torch.jit.load(buffer, map_location=device)


def _structural_copy(module: nn.Module, device: torch.device, dtype: torch.dtype, memo: dict[int, Any]) -> nn.Module:
    """A copy of the module tree with new (cast, frozen) parameters and buffers, cloned tensor attributes (e.g.
    weight_norm's computed weight), hook tables holding only torch's own hooks, and re-loaded TorchScript
    submodules. Other attributes are shared (they are only read), so a model holding locks or files copies."""
    if id(module) in memo:
        return memo[id(module)]
    if isinstance(module, torch.jit.ScriptModule):
        memo[id(module)] = _script_copy(module, device)
        return memo[id(module)]
    new = object.__new__(module.__class__)   # not cls.__new__: a GraphModule's would make a class without forward
    new.__dict__ = module.__dict__.copy()
    memo[id(module)] = new
    for key, value in module.__dict__.items():   # plain tensor attributes (e.g. weight_norm's computed weight)
        if isinstance(value, Tensor):
            new.__dict__[key] = memo[id(value)] if id(value) in memo else value.detach().clone()
    new.__dict__.update({k: v for k, v in _hook_tables(module).items()})
    new._parameters = {k: None if v is None else _tensor(v, device, dtype, memo, parameter=True)
                       for k, v in module._parameters.items()}
    new._buffers = {k: None if v is None else _tensor(v, device, dtype, memo) for k, v in module._buffers.items()}
    new._modules = {k: None if v is None else _structural_copy(v, device, dtype, memo)
                    for k, v in module._modules.items()}
    return new


def _tensor(t: Tensor, device: torch.device, dtype: torch.dtype, memo: dict[int, Any], parameter: bool = False) -> Any:
    """The copy of a parameter or buffer, once per tensor (tied weights stay tied)."""
    if id(t) not in memo:
        frozen = _frozen(t, device, dtype)
        memo[id(t)] = nn.Parameter(frozen, requires_grad=False) if parameter else frozen
    return memo[id(t)]


def working_copy(model: Any, device: torch.device, dtype: torch.dtype, inplace: bool = True) -> Any:
    """The caller's model as a private, frozen, eval-mode copy on ``device``/``dtype`` (see module docstring).

    ``model`` may also be an ``ExportedProgram`` or a path to a model card, TorchScript file or ``.pt2``.
    """
    if isinstance(model, (str, Path)):
        from ..models import load_model

        model = load_model(model, device="cpu").model
    if isinstance(model, torch.export.ExportedProgram):
        model = model.module()
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch nn.Module (or a path to a model file), not {type(model).__name__}.")
    work: nn.Module
    try:
        if isinstance(model, torch.jit.ScriptModule):
            work = _script_copy(model, device)
        else:
            work = _structural_copy(model, device, dtype, {})
    except Exception as exc:  # noqa: BLE001 - exotic modules; re-raised with the fix
        raise InputError(f"The model could not be copied ({exc}); pass a plain nn.Module or TorchScript module "
                         f"(a model keeps its data in parameters, buffers and submodules).") from exc
    if not isinstance(work, torch.fx.GraphModule):
        work.eval()
    with torch.no_grad():
        work = work.to(device=device, dtype=dtype)
    for p in work.parameters():
        p.requires_grad_(False)
    if not inplace:
        for m in work.modules():
            if getattr(m, "inplace", None) is True:
                cast(Any, m).inplace = False  # a plain flag (ReLU, Dropout, ...), not a tensor or submodule
    return work


def private_input(x: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    """A copy of ``x`` on ``device``/``dtype`` that shares no memory with it (and is not an inference tensor)."""
    with torch.inference_mode(False):
        return x.detach().to(device=device, dtype=dtype, copy=True)
