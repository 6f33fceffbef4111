"""The one layer probe: which submodules run on an input and what they output, and the default layers chosen
from it — the last convolution block (Grad-CAM, ``methods``) and the last feature map (cohort decomposition)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import InputError

Tensor = torch.Tensor
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def layer_outputs(model: nn.Module, x: Tensor, run: Callable[[Tensor], Any] | None = None
                  ) -> list[tuple[str, tuple[int, ...] | None]]:
    """(name, output shape or None for a non-tensor output) of every submodule call on ``x``, in completion
    order (a container completes after its children), without grad.

    ``run`` is the forward to use (default ``model``). A TorchScript model takes no hooks: its top-level
    children are run as a chain instead.
    """
    calls: list[tuple[str, tuple[int, ...] | None]] = []
    with torch.no_grad():
        if isinstance(model, torch.jit.ScriptModule):
            for name, child in model.named_children():
                x = child(x)
                calls.append((name, tuple(x.shape) if isinstance(x, Tensor) else None))
            return calls
        handles = []
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(
                    lambda m, i, o, name=name: calls.append((name, tuple(o.shape) if isinstance(o, Tensor) else None))))
        try:
            (run or model)(x)
        finally:
            for h in handles:
                h.remove()
    return calls


def last_conv_block(model: nn.Module, x: Tensor, run: Callable[[Tensor], Any] | None = None) -> str:
    """Grad-CAM's default layer: the parent of the last convolution run (a final pointwise head skipped), if its
    output is a spatial map of more than one voxel, else that convolution itself.

    A convolution whose output has a single voxel (1×1×1: every spatial axis below 2, as deep in a classifier fed
    a small input) is passed over: a one-voxel map upsampled is one value everywhere, which localises nothing.
    """
    calls = layer_outputs(model, x, run)
    modules = dict(model.named_modules())
    convs = [name for name, _ in calls if isinstance(modules.get(name), CONVOLUTIONS)]
    if not convs:
        raise InputError("The model has no convolution layer for Grad-CAM to default to; pass layer='<module name>' "
                         "of a layer with a spatial output.")
    if len(convs) > 1 and all(k == 1 for k in modules[convs[-1]].kernel_size):
        convs = convs[:-1]   # a pointwise classifier head (e.g. a U-Net's 1×1×1 conv): use the block before it
    shapes = dict(calls)
    resolved = [name for name in convs if spatial_map(shapes.get(name), x.dim())]
    if not resolved:
        raise InputError(f"Every convolution of the model outputs a single voxel for an input of "
                         f"{size_text(x.shape[2:])} voxels, so a Grad-CAM map would be one value everywhere: give "
                         "the network a larger input, or use another method (e.g. lrp or guided_backprop).")
    last = resolved[-1]
    parent = last.rsplit(".", 1)[0] if "." in last else ""
    if parent and spatial_map(shapes.get(parent), x.dim()):
        return parent
    return last


def spatial_map(shape: tuple[int, ...] | None, dims: int) -> bool:
    """Whether a layer output of ``shape`` is a feature map with ``dims`` axes and more than one voxel."""
    return shape is not None and len(shape) == dims and _voxels(shape) > 1


def size_text(spatial: Any) -> str:
    """A spatial size as "32×32×32"."""
    return "×".join(str(int(s)) for s in spatial)


def last_feature_map(model: nn.Module, x: Tensor) -> str:
    """The cohort decomposition's default layer: the last module (completion order) whose output is a feature
    map shaped like ``x`` with more than one voxel.

    A block container completes after its last child, so for ``features.block4`` ending with a ReLU the
    block's name is chosen: the last convolutional block's output map (§3.1 of the activation tensor-decomposition
    paper, docs/glossary.md).
    """
    maps = [name for name, shape in layer_outputs(model, x)
            if shape is not None and len(shape) == x.dim() and _voxels(shape) > 1]
    if not maps:
        raise InputError("the model has no module whose output is a 3D feature map (5-D tensor with "
                         "more than one voxel); pass layer= naming the module to decompose.")
    return maps[-1]


def _voxels(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape[2:]:
        n *= s
    return n
