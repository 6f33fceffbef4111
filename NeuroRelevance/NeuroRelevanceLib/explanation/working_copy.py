"""The one private working copy of a user's model (and input) that every explanation method runs on.

``working_copy``: a deep copy in eval mode with new, frozen, normal (non-inference) parameter and buffer tensors
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
from typing import Any

import torch
from torch import nn

from ..errors import InputError

Tensor = torch.Tensor


def _is_torch_own(hook: Any) -> bool:
    """Hooks that torch installs to compute a weight (weight_norm, spectral_norm, pruning) are the model's."""
    plain = isinstance(hook, (types.FunctionType, types.MethodType))
    owner = getattr(hook, "__module__", None) if plain else type(hook).__module__
    return isinstance(owner, str) and owner.startswith("torch.")


def _hook_replacements(module: nn.Module) -> dict[int, Any]:
    """memo entries: every hook table of ``module`` -> a new table holding only torch's own hooks."""
    state = vars(module)
    tables = {k: v for k, v in state.items() if "hook" in k and isinstance(v, dict)}
    kept = {hid for k, v in tables.items() for hid, h in v.items() if callable(h) and _is_torch_own(h)}
    return {id(v): type(v)((hid, h) for hid, h in v.items() if hid in kept) for v in tables.values()}


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


def _memo(model: nn.Module, device: torch.device, dtype: torch.dtype) -> dict[int, Any]:
    """What ``copy.deepcopy`` must put in place of tensors, hook tables and TorchScript submodules."""
    memo: dict[int, Any] = {}
    pending, seen = [model], set()
    while pending:
        module = pending.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        if isinstance(module, torch.jit.ScriptModule):
            memo[id(module)] = _script_copy(module, device)
            continue
        pending.extend(m for m in module._modules.values() if m is not None)
        memo.update(_hook_replacements(module))
        for p in module._parameters.values():
            if p is not None and id(p) not in memo:
                memo[id(p)] = nn.Parameter(_frozen(p, device, dtype), requires_grad=False)
        for b in module._buffers.values():
            if b is not None and id(b) not in memo:
                memo[id(b)] = _frozen(b, device, dtype)
        for value in vars(module).values():    # plain tensor attributes (e.g. weight_norm's computed weight)
            if isinstance(value, Tensor) and id(value) not in memo:
                memo[id(value)] = value.detach().clone()
    return memo


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
    try:
        if isinstance(model, torch.jit.ScriptModule):
            work = _script_copy(model, device)
        else:
            work = copy.deepcopy(model, _memo(model, device, dtype))
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
                m.inplace = False
    return work


def private_input(x: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    """A copy of ``x`` on ``device``/``dtype`` that shares no memory with it (and is not an inference tensor)."""
    with torch.inference_mode(False):
        return x.detach().to(device=device, dtype=dtype, copy=True)
