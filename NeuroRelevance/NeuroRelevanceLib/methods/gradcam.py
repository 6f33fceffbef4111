"""Grad-CAM (Selvaraju et al. 2017), Grad-CAM++ (Chattopadhay et al. 2018) and Guided Grad-CAM, in 1-3D.

For a layer output A (N, K, *spatial) and g = ∂S/∂A:
- Grad-CAM weights  w_k = mean over all spatial axes of g_k;
- Grad-CAM++ weights w_k = Σ_v α_kv · ReLU(g_kv) with α_kv = g_kv² / (2 g_kv² + (Σ_u A_ku) g_kv³)
  (0 where the denominator is 0) — the sums run over *all* spatial axes (3D: depth, height, width); the
  paper's exp(S) factor multiplies every weight by the same positive number and is dropped;
- map = ReLU(Σ_k w_k A_k), upsampled to the input grid by (tri)linear interpolation with
  ``align_corners=False``: voxel centres are aligned as for a stride-s pooling, i.e. layer voxel j spans input
  voxels [s·j, s·(j+1)) and sits at input coordinate s·j + (s − 1)/2.
The map is the same for every input channel and is repeated across them, so it has the input's shape.
"""
from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..explanation.layers import last_conv_block, layer_outputs, size_text
from ..explanation.result import Explanation
from . import options
from .common import forward, package, setup
from .guided_backprop import guide_relus
from .isolation import isolated_call
from .layers import capture, resolve_layer

Tensor = torch.Tensor
_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def gradcam_weights(gradients: Tensor) -> Tensor:
    """Grad-CAM channel weights (N, K): spatial mean of the gradients."""
    return gradients.flatten(2).mean(2)


def check_weights_defined(gradients: Tensor, layer: str) -> None:
    """Refuse Grad-CAM where the spatial mean of ∂S/∂A vanishes in every channel of a sample although the gradient
    does not (a per-channel normalisation right after the layer removes each channel's mean): the weights, and so
    the map, would be rounding noise."""
    g = gradients.flatten(2)
    scale = g.abs().mean(2)
    tol = 1e4 * torch.finfo(g.dtype).eps
    vanished = ((g.mean(2).abs() <= tol * scale).all(1) & (scale > 0).any(1))
    if vanished.any():
        raise InputError(
            f"Grad-CAM's channel weights vanish at layer {layer!r} (sample(s) "
            f"{vanished.nonzero().flatten().tolist()}): "
            f"the spatial mean of the gradient is zero in every channel, as it is right before an InstanceNorm or a "
            f"one-channel-per-group GroupNorm, so the map would be rounding noise. Pass another layer (e.g. the "
            f"activation after that normalisation) or use method='gradcam++'.")


def check_resolution(model: Any, x: Tensor, layer: str, activations: Tensor) -> None:
    """Refuse a layer whose output has a single voxel (every spatial axis below 2): upsampled, its map is one value
    everywhere and localises nothing. The message names the default layer for this input as the fix."""
    if activations[0, 0].numel() > 1:
        return
    try:
        fix = last_conv_block(model, x, lambda t: forward(model, t))
        shape = dict(layer_outputs(model, x, lambda t: forward(model, t))).get(fix) or ()
        earlier = (f"layer={fix!r} (output {size_text(shape[2:])}, the last convolution block with more than "
                   "one voxel for this input: the default)")
    except InputError as exc:   # no convolution resolves this input
        raise InputError(f"Grad-CAM at layer {layer!r} would be one value everywhere: {exc}") from None
    raise InputError(
        f"Grad-CAM at layer {layer!r} would be one value everywhere: the layer's output has a single voxel "
        f"({size_text(activations.shape[2:])}) for an input of {size_text(x.shape[2:])} voxels, so the upsampled "
        f"map cannot localise anything. Choose an earlier layer whose output has more than one voxel: {earlier}; "
        "in a summary, method_options={'gradcam++': {'layer': ...}}.")


def gradcampp_weights(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM++ channel weights (N, K) with the sums over every spatial axis."""
    a, g = activations.flatten(2), gradients.flatten(2)
    g2 = g * g
    denom = 2 * g2 + a.sum(2, keepdim=True) * g2 * g
    alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)),
                        torch.zeros_like(denom))
    return (alpha * g.clamp(min=0)).sum(2)


def class_activation_map(activations: Tensor, weights: Tensor, relu: bool = True) -> Tensor:
    """Σ_k w_k A_k (N, 1, *spatial), rectified unless ``relu`` is False."""
    view = weights.shape + (1,) * (activations.dim() - 2)
    cam = (weights.reshape(view) * activations).sum(1, keepdim=True)
    return cam.clamp(min=0) if relu else cam


def upsample(cam: Tensor, size: tuple[int, ...]) -> Tensor:
    """(Bi/tri)linear interpolation onto the input grid, ``align_corners=False`` (see module docstring)."""
    if tuple(cam.shape[2:]) == tuple(size):
        return cam
    return F.interpolate(cam, size=tuple(size), mode=_MODES[cam.dim() - 2], align_corners=False)


def _cam(model: Any, x: Tensor, target: Any, mask: Any, layer: str | None, plus: bool, relu: bool,
         device: Any, dtype: torch.dtype | None, guided: bool = False):
    t0 = time.perf_counter()
    plus, relu = options.flag("plus", plus), options.flag("relu", relu)
    work, xw, dev, dt = setup(model, x, device, dtype)
    name = resolve_layer(work, xw, layer, key=model)
    a, g, tgt, s, xi = capture(work, xw, name, target, mask)
    check_resolution(work, xw, name, a)
    if not plus:
        check_weights_defined(g, name)
    weights = gradcampp_weights(a, g) if plus else gradcam_weights(g)
    cam = upsample(class_activation_map(a, weights, relu), tuple(xw.shape[2:]))
    params = {"layer": name, "layer_shape": tuple(a.shape[1:]), "relu": relu, "align_corners": False}
    rel = cam.expand(-1, xw.shape[1], *cam.shape[2:])
    if guided:   # guided backprop through the same forward graph
        params["relu_backwards_guided"] = guide_relus(s)
        (gb,) = torch.autograd.grad(s, xi)
        rel = gb * cam
    return rel.contiguous(), tgt, dev, dt, t0, params


@isolated_call
def gradcam(model: Any, x: Tensor, target: Any = None, *, mask: Any = None, layer: str | None = None,
            relu: bool = True, device: Any = "auto", dtype: torch.dtype | None = None) -> Explanation:
    """Grad-CAM at ``layer`` (a module name; default: the last convolution block), upsampled to ``x``'s grid."""
    rel, tgt, dev, dt, t0, params = _cam(model, x, target, mask, layer, False, relu, device, dtype)
    return package("gradcam", rel, tgt, dev, dt, t0, params)


@isolated_call
def gradcam_plus_plus(model: Any, x: Tensor, target: Any = None, *, mask: Any = None, layer: str | None = None,
                      relu: bool = True, device: Any = "auto",
                      dtype: torch.dtype | None = None) -> Explanation:
    """Grad-CAM++ at ``layer`` with its weights summed over all spatial axes, upsampled to ``x``'s grid."""
    rel, tgt, dev, dt, t0, params = _cam(model, x, target, mask, layer, True, relu, device, dtype)
    return package("gradcam++", rel, tgt, dev, dt, t0, params)


@isolated_call
def guided_gradcam(model: Any, x: Tensor, target: Any = None, *, mask: Any = None, layer: str | None = None,
                   plus: bool = False, device: Any = "auto",
                   dtype: torch.dtype | None = None) -> Explanation:
    """Guided backprop ⊙ upsampled Grad-CAM (Grad-CAM++ when ``plus``), per input channel."""
    rel, tgt, dev, dt, t0, params = _cam(model, x, target, mask, layer, plus, True, device, dtype, guided=True)
    params["cam"] = "gradcam++" if plus else "gradcam"
    return package("guided_gradcam", rel, tgt, dev, dt, t0, params)
