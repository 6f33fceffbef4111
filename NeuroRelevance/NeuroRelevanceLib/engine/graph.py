"""Lower a captured fx graph into a list of steps, each with a relevance handler kind.

A ``Step`` knows how to compute its node's value in the forward pass and which of its inputs
receive relevance. Linear layers get a ``LinearLayer`` (our own copies of weight and bias);
batch norms are folded into the preceding conv/dense layer where it is their only user.
Nodes that do not depend on the model input (weights, constants) are evaluated once here.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.fx as fx
import torch.nn as nn

from . import ops
from .capture import Captured
from .inplace import functionalise
from .layers import LinearLayer


class UnsupportedOperatorError(ValueError):
    """An operator in the model has no relevance rule."""


@dataclass
class Step:
    """One fx node with its forward function and relevance handler kind."""

    node: fx.Node
    kind: str
    run: Callable[[dict], Any]
    inputs: list[fx.Node]                     # input-dependent argument nodes (receive relevance)
    module_path: str = ""
    module_type: Any = None
    label: str = ""
    layer: Optional[LinearLayer] = None
    rule: Any = None
    consumes_input: bool = False
    bn: Optional[tuple] = None               # (scale, shift) of a batch norm
    tuple_collapsed: bool = False            # forward returns element 0 of a tuple-valued op
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.name


@dataclass
class Plan:
    steps: list[Step]
    input_node: fx.Node
    output_node: fx.Node                      # effective output (after stripping softmax/sigmoid)
    stripped: list[str]
    consts: dict[fx.Node, Any]
    captured: Captured
    graph_output: Optional[fx.Node] = None     # the graph's own output node (all of the model's outputs)


def _nodes_in(args: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(args, lambda n: found.append(n))
    return found


def _bind(names: list[str], args: tuple, kwargs: dict) -> dict:
    bound = dict(zip(names, args))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    return bound


def _value(arg: Any, consts: dict) -> Any:
    return fx.node.map_arg(arg, lambda n: consts[n])


def _module_path(node: fx.Node, qualified: Optional[str] = None) -> str:
    if node.op == "call_module":
        return str(node.target)
    if qualified:
        return qualified
    stack = node.meta.get("nn_module_stack")
    if stack:
        path = list(stack.values())[-1]
        return str(path[0]) if isinstance(path, tuple) else str(path)
    return ""


def _attr_name(node: Any) -> Optional[str]:
    if isinstance(node, fx.Node) and node.op == "get_attr":
        return node.meta.get("qualified_name", str(node.target))
    return None


def _linear_from_module(m: nn.Module) -> LinearLayer:
    w = m.weight.detach()
    b = None if m.bias is None else m.bias.detach()
    if isinstance(m, nn.Linear):
        return LinearLayer("dense", w, b)
    transposed = isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    pre_pad = None
    padding = m.padding
    if not transposed and getattr(m, "padding_mode", "zeros") != "zeros":
        pre_pad, padding = (m._reversed_padding_repeated_twice, m.padding_mode), 0
    return LinearLayer("convT" if transposed else "conv", w, b, m.stride, padding, m.dilation, m.groups,
                       getattr(m, "output_padding", 0), pre_pad)


def _linear_from_call(target: Any, bound: dict) -> LinearLayer:
    kind, _ = ops.LINEAR_FUNCS[target]
    w, b = bound["weight"], bound.get("bias")
    if kind == "addmm":
        return LinearLayer("dense", w.t(), b)
    if kind == "dense":
        return LinearLayer("dense", w, b)
    if kind == "convolution":
        kind = "convT" if bound.get("transposed") else "conv"
    return LinearLayer(kind, w, b, bound.get("stride", 1), bound.get("padding", 0), bound.get("dilation", 1),
                       bound.get("groups", 1), bound.get("output_padding", 0))


def _run_linear(step: Step, layer: LinearLayer, x: torch.Tensor) -> torch.Tensor:
    out, pre = layer.run(x)
    if pre:
        step.extra["pre"] = pre  # rule companions, kept for the reverse walk
    return out


def _bn_affine(weight, bias, mean, var, eps) -> tuple[torch.Tensor, torch.Tensor]:
    scale = 1.0 / torch.sqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    return scale, shift


def _generic_run(node: fx.Node, gm: fx.GraphModule) -> Callable[[dict], Any]:
    args, kwargs = node.args, node.kwargs
    if node.op == "call_module":
        module = gm.get_submodule(node.target)
        return lambda env: module(*_value(args, env), **_value(kwargs, env))
    if node.op == "call_method":
        name = node.target
        return lambda env: getattr(_value(args[0], env), name)(*_value(args[1:], env), **_value(kwargs, env))
    target = node.target
    return lambda env: target(*_value(args, env), **_value(kwargs, env))


def build_plan(captured: Captured, batchnorm: str = "fold") -> Plan:
    """Classify every node of ``captured.gm``; fold batch norms when ``batchnorm == "fold"``."""
    gm = captured.gm
    functionalise(gm.graph)  # never overwrite a recorded activation
    nodes = list(gm.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError(f"The model takes {len(placeholders)} inputs; the relevance engine explains models with "
                         "exactly one input tensor (wrap the model so that it takes one).")
    dep: dict[fx.Node, bool] = {}
    consts: dict[fx.Node, Any] = {}
    steps: list[Step] = []
    from_input: dict[fx.Node, bool] = {}
    step_of: dict[fx.Node, Step] = {}
    output_node = None
    for node in nodes:
        if node.op == "placeholder":
            dep[node], from_input[node] = True, True
            step = Step(node, "input", lambda env: None, [])
            steps.append(step)
            step_of[node] = step
            continue
        if node.op == "output":
            output_node = node
            continue
        arg_nodes = _nodes_in((node.args, node.kwargs))
        dep[node] = any(dep.get(a, False) for a in arg_nodes)
        if not dep[node]:
            if node.op == "get_attr":
                obj = gm
                for part in str(node.target).split("."):
                    obj = getattr(obj, part)
                consts[node] = obj.detach() if isinstance(obj, torch.Tensor) else obj
            else:
                with torch.no_grad():
                    consts[node] = _generic_run(node, gm)(consts)
            continue
        module = gm.get_submodule(node.target) if node.op == "call_module" else None
        kind = ops.classify(node, module)
        inputs = [a for a in dict.fromkeys(arg_nodes) if dep.get(a, False)]
        target = ops.normalise_target(node.target) if node.op == "call_function" else None
        qualified = None
        step = Step(node, kind, _generic_run(node, gm), inputs, label=ops.op_label(node, module))
        if kind == "linear":
            if module is not None:
                layer = _linear_from_module(module)
            else:
                names = ops.LINEAR_FUNCS[target][1]
                bound = _bind(names, node.args, node.kwargs)
                if any(isinstance(bound.get(k), fx.Node) and dep.get(bound[k], False) for k in ("weight", "bias")):
                    raise UnsupportedOperatorError(
                        f"Operator {step.label} at node '{node.name}' computes its weights from the input; "
                        "LRP needs fixed weights.")
                qualified = _attr_name(bound.get("weight"))
                if qualified is None and isinstance(bound.get("weight"), fx.Node):
                    qualified = _attr_name(bound["weight"].args[0]) if bound["weight"].args else None
                x_arg = bound["input"]
                bound = {k: _value(v, consts) for k, v in bound.items() if k != "input"}
                layer = _linear_from_call(target, bound)
                inputs = [x_arg]
            step.layer = layer
            x_node = inputs[0]
            step.run = (lambda st, lay, xn: (lambda env: _run_linear(st, lay, env[xn])))(step, layer, x_node)
            step.consumes_input = from_input.get(x_node, False)
            from_input[node] = False
        else:
            from_input[node] = any(from_input.get(a, False) for a in inputs)
        if kind == "batchnorm":
            step.consumes_input = bool(inputs) and from_input.get(inputs[0], False)
            if module is not None:
                ok = module.running_mean is not None and module.running_var is not None
                if ok:
                    step.bn = _bn_affine(module.weight, module.bias, module.running_mean, module.running_var,
                                         module.eps)
            else:
                bound = {k: _value(v, consts) for k, v in
                         _bind(ops.BATCHNORM_FUNCS[target], node.args, node.kwargs).items() if k != "input"}
                if target is torch.ops.aten._native_batch_norm_legit_no_training:
                    step.tuple_collapsed = True
                    step.run = (lambda r: (lambda env: r(env)[0]))(step.run)
                if not bound.get("training", False) and bound.get("running_mean") is not None:
                    step.bn = _bn_affine(bound.get("weight"), bound.get("bias"), bound["running_mean"],
                                         bound["running_var"], bound.get("eps", 1e-5))
                qualified = _attr_name(node.args[1]) if len(node.args) > 1 else None
                inputs = [node.args[0]]
        if qualified:
            qualified = qualified.rsplit(".", 1)[0] if "." in qualified else ""
        step.module_path = _module_path(node, qualified)
        step.module_type = module.__class__ if module is not None else captured.module_types.get(step.module_path)
        if node.op == "call_function" and node.target is operator.getitem:
            src = node.args[0]
            if isinstance(src, fx.Node) and src in step_of and step_of[src].tuple_collapsed:
                step.kind, step.run = "pass", (lambda s: (lambda env: env[s]))(src)
            elif isinstance(src, fx.Node) and src in step_of and step_of[src].kind in (
                    "pass", "batchnorm", "grad", "unknown", "passthrough"):
                step.kind = "tuple_get" if isinstance(node.args[1], int) else "grad"
        steps.append(step)
        step_of[node] = step
    if batchnorm == "fold":
        _fold_batchnorms(steps, step_of)
        _affine_batchnorms(steps)
    _mark_nonnegative_inputs(steps)
    out_nodes = [n for n in _nodes_in(output_node.args) if dep.get(n, False)]
    if len(out_nodes) != 1:
        raise ValueError(f"The model returns {len(out_nodes)} tensors that depend on its input; wrap it so that it "
                         "returns the one output to explain.")
    effective, stripped = out_nodes[0], []
    while effective in step_of and step_of[effective].kind in ("strip", "pass_or_strip") \
            and len(effective.users) == 1:
        stripped.append(step_of[effective].label)
        effective = step_of[effective].inputs[0]
    for step in steps:
        if step.kind == "pass_or_strip":
            step.kind = "pass"
    return Plan(steps, placeholders[0], effective, stripped, consts, captured, output_node)


_NONNEG_LABELS = {"F.relu", "torch.relu", "ReLU", "ReLU6", "F.relu6", "aten.relu", "aten.relu6", "Tensor.relu",
                  "Tensor.relu_", "torch.relu_", "F.relu_", "Sigmoid", "F.sigmoid", "torch.sigmoid", "aten.sigmoid",
                  "Tensor.sigmoid", "Softplus", "F.softplus", "aten.softplus", "Hardsigmoid", "F.hardsigmoid"}
_INHERIT_LABELS = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "Identity", "F.dropout", "aten.dropout",
                   "aten.clone", "torch.clone", "Tensor.contiguous", "Tensor.clone", "aten.alias", "aten.contiguous"}


def _mark_nonnegative_inputs(steps: list[Step]) -> None:
    """Static sign analysis: which linear layers certainly see a non-negative input (after a ReLU)."""
    nonneg: dict[fx.Node, bool] = {}
    for s in steps:
        ins = [nonneg.get(a, False) for a in s.inputs]
        if s.kind == "linear":
            s.layer.input_nonneg = bool(ins) and ins[0]
            value = False
        elif s.kind in ("pass", "pass_or_strip"):
            if s.label in _NONNEG_LABELS:
                value = True
            elif s.label in _INHERIT_LABELS:
                value = bool(ins) and ins[0]
            else:
                value = False
        elif s.kind in ("grad", "zrule", "reshape", "add", "tuple_get") and s.label not in ("F.pad",):
            value = bool(ins) and all(ins)
        else:
            value = False
        nonneg[s.node] = value


def _fold_batchnorms(steps: list[Step], step_of: dict) -> None:
    for step in steps:
        if step.kind != "batchnorm" or step.bn is None:
            continue
        src = step.inputs[0]
        prev = step_of.get(src)
        if prev is None or prev.kind != "linear" or len(src.users) != 1:
            continue
        scale, shift = step.bn
        prev.layer.fold_affine(scale, shift, step.module_path or step.name)
        step.kind = "pass"
        step.extra["folded_into"] = prev.name
        step.run = (lambda s: (lambda env: env[s]))(src)


def _affine_batchnorms(steps: list[Step]) -> None:
    """A BatchNorm that could not be folded becomes a per-channel affine layer (``x * scale + shift``)
    that takes a rule like any linear layer (``assign.py`` gives it its neighbour's)."""
    for step in steps:
        if step.kind != "batchnorm" or step.bn is None:
            continue
        scale, shift = step.bn
        layer = LinearLayer("affine", scale.detach(), shift.detach())
        x_node = step.inputs[0]
        step.kind, step.layer, step.inputs = "linear", layer, [x_node]
        step.extra["affine"] = True
        step.run = (lambda st, lay, xn: (lambda env: _run_linear(st, lay, env[xn])))(step, layer, x_node)
