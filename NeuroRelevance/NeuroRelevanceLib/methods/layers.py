"""Picking the layer that Grad-CAM looks at, by its module name, and capturing its output and gradient."""
from __future__ import annotations

import difflib
import weakref
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..explanation.layers import CONVOLUTIONS, last_conv_block
from .common import Target, forward, target_from_output

Tensor = torch.Tensor


def _check_hookable(model: Any) -> None:
    if isinstance(model, torch.jit.ScriptModule) or not isinstance(model, nn.Module):
        raise InputError("Grad-CAM reads a layer's output through module hooks, which TorchScript models do not "
                         "run; load the model from its card (architecture + weights) or pass the nn.Module.")


#: user's model -> {input shape: default layer}, so repeated calls skip the probing forward
_DEFAULTS: weakref.WeakKeyDictionary[Any, dict] = weakref.WeakKeyDictionary()


def resolve_layer(model: Any, x: Tensor, layer: str | None, key: Any = None) -> str:
    """Check ``layer`` names a submodule of ``model`` (or choose the default) and return its name.

    ``key``: the user's model, under which the default found for this input shape is remembered.
    """
    _check_hookable(model)
    if layer is None:
        try:
            cached = _DEFAULTS.setdefault(key, {}) if key is not None else {}
        except TypeError:   # not weak-referenceable (e.g. a path)
            cached = {}
        shape = tuple(x.shape[1:])
        if shape not in cached:
            cached[shape] = last_conv_block(model, x, lambda t: forward(model, t))
        return cached[shape]
    names = [n for n, _ in model.named_modules() if n]
    if not isinstance(layer, str) or layer not in names:
        close = difflib.get_close_matches(str(layer), names, n=3)
        convs = [n for n, m in model.named_modules() if isinstance(m, CONVOLUTIONS)][-3:]
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise InputError(f"The model has no layer named {layer!r}; {hint}pass the name of a submodule as listed by "
                         f"model.named_modules(), e.g. {', '.join(repr(c) for c in convs) or 'a convolution'}.")
    return layer


def capture(model: nn.Module, x: Tensor, layer: str, target: Any, mask: Any) -> tuple[Tensor, Tensor, Target, Tensor,
                                                                                    Tensor]:
    """One forward of ``x``: the layer's output A, ∂ΣS/∂A, the target (fixed from this output), the summed score
    and the leaf input — graph kept, so a second gradient (guided backprop) needs no second forward.

    The hook hands a copy of A downstream, so in-place operations after the layer cannot alter A.
    """
    store: dict[str, Tensor] = {}

    def hook(module, inputs, output):
        if not isinstance(output, Tensor):
            return None
        store["a"] = output
        return output.clone()

    handle = dict(model.named_modules())[layer].register_forward_hook(hook)
    xi = x.detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            out = forward(model, xi)
    finally:
        handle.remove()
    if "a" not in store:
        raise InputError(f"Layer {layer!r} did not run or does not return a tensor; choose a layer on the path from "
                         f"the input to the output.")
    a = store["a"]
    if a.dim() != x.dim() or a.shape[0] != x.shape[0]:
        raise InputError(f"Layer {layer!r} outputs shape {tuple(a.shape)}, which has no spatial axes like the input "
                         f"{tuple(x.shape)}; choose a convolutional layer or block (the default is the last one).")
    tgt = target_from_output(out, target, mask)
    with torch.enable_grad():
        s = tgt.score(out).sum()
        (g,) = torch.autograd.grad(s, a, retain_graph=True, allow_unused=True)
    if g is None:
        g = torch.zeros_like(a)
    return a.detach(), g.detach(), tgt, s, xi
