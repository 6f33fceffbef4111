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


#: the methods that run on any model format (they need the forward and its gradient only)
ANY_FORMAT = "lrp, gradient, gradient_x_input, smoothgrad, integrated_gradients, guided_backprop"


def hookless_format(model: Any) -> str | None:
    """What ``model`` is when module hooks cannot read its layers — "a TorchScript model", "an exported program
    (.pt2)" — or None for an ``nn.Module`` whose layers run as submodules."""
    if isinstance(model, torch.jit.ScriptModule):
        return "a TorchScript model"
    if isinstance(model, torch.export.ExportedProgram):
        return "an exported program (.pt2)"
    if not isinstance(model, nn.Module):
        return f"a {type(model).__name__}"
    if isinstance(model, torch.fx.GraphModule) and not any(isinstance(m, CONVOLUTIONS) for m in model.modules()):
        return "an exported program (.pt2)"   # its graph calls no submodules
    return None


def layer_method_refusal(model: Any, method: str = "Grad-CAM") -> str | None:
    """Why ``method`` (one of the Grad-CAM family) cannot run on ``model``, with the fix; None when it can."""
    form = hookless_format(model)
    if form is None:
        return None
    return (f"{method} reads a layer's output through module hooks, which {form} does not run, so it cannot be "
            f"computed for this model. Methods that run on it: {ANY_FORMAT}. For {method}, give the network as a "
            "Python nn.Module: build it and load its weights, or a model card naming its architecture and "
            "state-dict weights (.safetensors); a class outside NeuroRelevanceLib.nets loads only when trusted "
            "(models.load_model(card, trusted=True), batch.explain_cohort(..., trusted=True), the Slicer module's "
            "'I trust this file').")


def _check_hookable(model: Any) -> None:
    refusal = layer_method_refusal(model)
    if refusal is not None:
        raise InputError(refusal)


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
    check_layer_name(model, layer)
    return layer


def check_layer_name(model: Any, layer: Any) -> None:
    """Refuse ``layer`` unless it names a submodule of ``model``: a ``vocabulary.OptionError`` with the closest
    names, and how to find them (``model.named_modules()`` in Python; on the command line, which has no Python at
    hand, every convolution's name)."""
    from ..vocabulary import OptionError

    names = [n for n, _ in model.named_modules() if n]
    if isinstance(layer, str) and layer in names:
        return
    close = difflib.get_close_matches(str(layer), names, n=3)
    convs = [n for n, m in model.named_modules() if isinstance(m, CONVOLUTIONS)]
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    listed = ", ".join(repr(c) for c in convs)
    raise OptionError(f"The model has no layer named {layer!r}; {hint}", {
        "keyword": f"pass the name of a submodule as listed by model.named_modules(), e.g. "
                   f"{', '.join(repr(c) for c in convs[-3:]) or 'a convolution'}.",
        "flag": f"give --layer the name of one of its submodules: its convolutions are {listed}." if convs
                else "give --layer the name of one of its submodules."})


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
