"""The torch targets each operator kind handles: one table per kind (``operators/`` holds the kinds).

A target is a torch function, a ``torch.ops.aten`` packet (overloads are normalised to their
packet), a Tensor method name or an nn.Module type. Tables, by the kind that reads them:

``PASS_*`` (``Pass``)        elementwise / normalisation / dropout: ``R_in = R_out``
``CLIP_*`` (``Clip``)        ReLU6 / Hardtanh / clamp: ``R_in = R_out`` where the unit is not saturated, else 0
``RESHAPE_*`` (``Reshape``)  view-like: ``R_in = R_out.reshape(input shape)``
``GRAD_*`` (``Route``)       data movement, max pooling, concatenation: routed like the gradient
``ZRULE_*`` (``ZRule``)      positive linear maps without parameters (avg pool, upsampling, mean)
``ADD_*``/``SUB_*`` (``Sum``)  sums of tensors: split in proportion to each operand
``SCALE_*`` (``Scale``)      products/quotients with a constant: ``R_in = R_out``
``STRIP_*`` (``Strip``)      softmax / log-softmax, removed when they produce the model output
``LINEAR_*``/``BATCHNORM_*`` (``Linear``/``BatchNorm``)  parametrised layers
"""
from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

_A = torch.ops.aten


def _aten(*names: str) -> set:
    out = set()
    for name in names:
        packet = getattr(_A, name, None)
        if packet is not None:
            out.add(packet)
    return out


PASS_FUNCS = {
    F.relu, torch.relu, F.leaky_relu, F.prelu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish, F.softplus,
    F.hardswish, F.hardsigmoid, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
    F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
    F.instance_norm, F.group_norm, F.layer_norm, F.local_response_norm, torch.clone, operator.neg, torch.neg,
    operator.pos, torch.relu_, F.relu_, F.leaky_relu_, F.elu_, torch.sigmoid_, torch.tanh_, torch.as_tensor,
} | _aten("relu", "leaky_relu", "prelu", "_prelu_kernel", "elu", "selu", "celu", "gelu", "silu", "mish",
          "softplus", "hardswish", "hardsigmoid", "sigmoid", "tanh", "dropout", "native_dropout",
          "feature_dropout", "alpha_dropout", "feature_alpha_dropout", "clone", "alias", "contiguous", "detach",
          "instance_norm", "group_norm", "native_group_norm", "layer_norm", "native_layer_norm", "_to_copy", "to",
          "lift_fresh_copy", "type_as", "neg", "threshold", "as_tensor")
PASS_METHODS = {"relu", "sigmoid", "tanh", "clone", "contiguous", "detach", "to", "float", "double", "type_as",
                "neg", "leaky_relu", "gelu", "elu", "silu"}
PASS_MODULES = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Softplus, nn.Hardswish,
    nn.Hardsigmoid, nn.Tanh, nn.Sigmoid, nn.Threshold, nn.RReLU,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout, nn.Identity,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
)

CLIP_FUNCS = {F.hardtanh, F.relu6, F.hardtanh_, torch.clamp, torch.clip, torch.clamp_min, torch.clamp_max,
              torch.clamp_, torch.clip_} | _aten("hardtanh", "relu6", "clamp", "clip", "clamp_min", "clamp_max")
CLIP_METHODS = {"clamp", "clip", "clamp_min", "clamp_max"}
CLIP_MODULES = (nn.ReLU6, nn.Hardtanh)

RESHAPE_FUNCS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze} | _aten(
    "view", "_unsafe_view", "reshape", "flatten", "squeeze", "unsqueeze", "unflatten", "view_as", "reshape_as")
RESHAPE_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "view_as", "reshape_as", "unflatten"}
RESHAPE_MODULES = (nn.Flatten, nn.Unflatten)

GRAD_FUNCS = {
    torch.permute, torch.transpose, torch.movedim, F.pad, torch.cat, torch.concat, torch.concatenate, torch.stack,
    torch.split, torch.chunk, torch.unbind, torch.narrow, torch.flip, torch.roll, F.max_pool1d, F.max_pool2d,
    F.max_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d, F.pixel_shuffle,
    F.pixel_unshuffle, operator.getitem, torch.t, torch.swapaxes, torch.swapdims, F.max_unpool1d, F.max_unpool2d,
    F.max_unpool3d, torch.where,
} | _aten("permute", "transpose", "t", "cat", "concat", "stack", "split", "split_with_sizes", "chunk", "unbind",
          "narrow", "slice", "select", "constant_pad_nd", "pad", "reflection_pad1d", "reflection_pad2d",
          "reflection_pad3d", "replication_pad1d", "replication_pad2d", "replication_pad3d", "max_pool1d",
          "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices", "adaptive_max_pool1d",
          "adaptive_max_pool2d", "adaptive_max_pool3d", "expand", "repeat", "flip", "roll", "pixel_shuffle",
          "pixel_unshuffle", "movedim", "__getitem__", "max_unpool2d", "max_unpool3d", "where", "expand_as")
GRAD_METHODS = {"permute", "transpose", "t", "swapaxes", "swapdims", "split", "chunk", "unbind", "narrow", "expand",
                "expand_as", "repeat", "where", "flip", "roll", "select", "movedim", "__getitem__"}
GRAD_MODULES = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d,
    nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d, nn.ReplicationPad1d, nn.ReplicationPad2d,
    nn.ReplicationPad3d, nn.PixelShuffle, nn.PixelUnshuffle, nn.ChannelShuffle, nn.MaxUnpool1d, nn.MaxUnpool2d,
    nn.MaxUnpool3d,
)

ZRULE_FUNCS = {
    F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
    F.interpolate, F.upsample, F.upsample_nearest, F.upsample_bilinear, torch.mean, torch.sum,
} | _aten("avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
          "adaptive_avg_pool3d", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "mean", "sum", "upsample_nearest1d",
          "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d", "upsample_bilinear2d",
          "upsample_trilinear3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d",
          "_upsample_nearest_exact3d")
ZRULE_METHODS = {"mean", "sum"}
ZRULE_MODULES = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                 nn.AdaptiveAvgPool3d, nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d)

ADD_FUNCS = {operator.add, operator.iadd, torch.add} | _aten("add")
ADD_METHODS = {"add", "add_", "__add__", "__radd__", "__iadd__"}
SUB_FUNCS = {operator.sub, operator.isub, torch.sub} | _aten("sub")
SUB_METHODS = {"sub", "sub_", "__sub__", "__isub__"}
RSUB_FUNCS = {torch.rsub} | _aten("rsub")
SCALE_FUNCS = {operator.mul, operator.imul, torch.mul, operator.truediv, operator.itruediv, torch.div} | _aten(
    "mul", "div")
SCALE_METHODS = {"mul", "mul_", "div", "div_", "__mul__", "__rmul__", "__truediv__"}
MATMUL_FUNCS = {operator.matmul, operator.imatmul, torch.matmul, torch.mm, torch.bmm, torch.einsum} | _aten(
    "matmul", "mm", "bmm", "einsum")
MATMUL_METHODS = {"matmul", "mm", "bmm", "__matmul__", "__rmatmul__"}

STRIP_FUNCS = {F.softmax, torch.softmax, F.log_softmax, torch.log_softmax, torch.sigmoid, F.sigmoid} | _aten(
    "softmax", "_softmax", "log_softmax", "_log_softmax", "sigmoid")
STRIP_METHODS = {"softmax", "log_softmax", "sigmoid"}
STRIP_MODULES = (nn.Softmax, nn.LogSoftmax, nn.Softmax2d, nn.Sigmoid)

META_METHODS = {"size", "dim", "numel", "type", "__len__"}
SIGMOID_FUNCS = {torch.sigmoid, F.sigmoid, _A.sigmoid}

LINEAR_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                  nn.Linear)
BATCHNORM_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)

# functional linear layers: target -> (kind, argument names in order)
_CONV = ["input", "weight", "bias", "stride", "padding", "dilation", "groups"]
_CONVT = ["input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"]
_CONVOLUTION = ["input", "weight", "bias", "stride", "padding", "dilation", "transposed", "output_padding", "groups"]
LINEAR_FUNCS: dict[Any, tuple[str, list[str]]] = {
    F.conv1d: ("conv", _CONV), F.conv2d: ("conv", _CONV), F.conv3d: ("conv", _CONV),
    F.conv_transpose1d: ("convT", _CONVT), F.conv_transpose2d: ("convT", _CONVT),
    F.conv_transpose3d: ("convT", _CONVT), F.linear: ("dense", ["input", "weight", "bias"]),
}
for _name in ("conv1d", "conv2d", "conv3d"):
    if hasattr(_A, _name):
        LINEAR_FUNCS[getattr(_A, _name)] = ("conv", _CONV)
for _name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
    if hasattr(_A, _name):
        LINEAR_FUNCS[getattr(_A, _name)] = ("convT", _CONVT)
for _name in ("convolution", "_convolution"):
    LINEAR_FUNCS[getattr(_A, _name)] = ("convolution", _CONVOLUTION)
LINEAR_FUNCS[_A.linear] = ("dense", ["input", "weight", "bias"])
LINEAR_FUNCS[_A.addmm] = ("addmm", ["bias", "input", "weight"])

BATCHNORM_FUNCS: dict[Any, list[str]] = {
    F.batch_norm: ["input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"],
    _A.batch_norm: ["input", "weight", "bias", "running_mean", "running_var", "training", "momentum", "eps"],
    _A._native_batch_norm_legit_no_training: ["input", "weight", "bias", "running_mean", "running_var", "momentum",
                                              "eps"],
}


def normalise_target(target: Any) -> Any:
    """``torch.ops.aten.x.overload`` -> ``torch.ops.aten.x`` so tables can list packets."""
    if isinstance(target, torch._ops.OpOverload):
        return target.overloadpacket
    return target


def op_label(node: Any, module: Any = None) -> str:
    """Human-readable operator name of an fx node (``torch.matmul``, ``aten.mul``, ``Tensor.mul``, ``Bilinear``)."""
    if node.op == "call_module":
        return type(module).__name__ if module is not None else str(node.target)
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = normalise_target(node.target)
    if isinstance(target, torch._ops.OpOverloadPacket):
        return f"aten.{target.__name__}" if hasattr(target, "__name__") else str(target)
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    prefix = {"torch.nn.functional": "F", "_operator": "operator", "torch._C._VariableFunctions": "torch"}.get(mod, mod)
    return f"{prefix}.{name}" if prefix else name
