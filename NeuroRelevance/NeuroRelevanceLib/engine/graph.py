"""Lower a captured fx graph into a plan: one operator object (``operators/``) per input-dependent node.

``build_plan`` classifies every node (``operators.classify``), gives parametrised layers a
``LinearLayer`` (our own copies of weight and bias), evaluates nodes that do not depend on the input
(weights, constants) once, applies the canonizers (BatchNorm folding, ``canonizers.py``), marks layers
whose input is certainly non-negative, and strips a softmax/sigmoid that produces the output.
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx

from ..errors import one_tensor_error
from . import ops
from .canonizers import canonizers_for
from .capture import Captured
from .inplace import functionalise
from .layers import LinearLayer
from .operators import (
    BatchNorm,
    Identity,
    Input,
    Linear,
    MatMul,
    Op,
    TupleGet,
    Unknown,
    UnsupportedOperatorError,
    classify,
    getitem_kind,
)
from .operators.linear import batchnorm_affine, layer_from_call, layer_from_module, weights_from_input
from .operators.routing import TUPLE_FIELDS

__all__ = ["Plan", "build_plan", "UnsupportedOperatorError"]


@dataclass
class Plan:
    """The operators of one graph in execution order, and where relevance starts and ends."""

    steps: list[Op]
    input_node: fx.Node
    output_node: fx.Node                      # effective output (after stripping softmax/sigmoid)
    stripped: list[str]
    consts: dict[fx.Node, Any]
    captured: Captured
    graph_output: fx.Node | None = None     # the graph's own output node (all of the model's outputs)
    post: list[Op] = field(default_factory=list)  # shape-only ops after a stripped softmax/sigmoid, re-applied

    def linear(self) -> list[Linear]:
        """The conv/dense (and affine BatchNorm) layers, in graph order."""
        return [s for s in self.steps if isinstance(s, Linear)]


def _nodes_in(args: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(args, lambda n: found.append(n))
    return found


def _bind(names: list[str], args: tuple, kwargs: dict) -> dict:
    bound = dict(zip(names, args, strict=False))  # trailing parameters may be defaulted
    bound.update({k: v for k, v in kwargs.items() if k in names})
    return bound


def _value(arg: Any, consts: dict) -> Any:
    return fx.node.map_arg(arg, lambda n: consts[n])


def _module_path(node: fx.Node, qualified: str | None = None) -> str:
    if node.op == "call_module":
        return str(node.target)
    if qualified:
        return qualified
    stack = node.meta.get("nn_module_stack")
    if stack:
        path = list(stack.values())[-1]
        return str(path[0]) if isinstance(path, tuple) else str(path)
    return ""


def _attr_name(node: Any) -> str | None:
    if isinstance(node, fx.Node) and node.op == "get_attr":
        return node.meta.get("qualified_name", str(node.target))
    return None


def _generic_run(node: fx.Node, gm: fx.GraphModule) -> Callable[[dict], Any]:
    args, kwargs = node.args, node.kwargs
    if node.op == "call_module":
        module = gm.get_submodule(str(node.target))
        return lambda env: module(*_value(args, env), **_value(kwargs, env))
    if node.op == "call_method":
        name = str(node.target)
        return lambda env: getattr(_value(args[0], env), name)(*_value(args[1:], env), **_value(kwargs, env))
    target = node.target
    if not callable(target):
        raise TypeError(f"node {node.name} ({node.op}) has no callable target: {target!r}")
    return lambda env: target(*_value(args, env), **_value(kwargs, env))


def _reads(src: Any) -> Callable[[dict], Any]:
    """A forward that hands on ``src``'s value."""
    return lambda env: env[src]


def _const(node: fx.Node, gm: fx.GraphModule, consts: dict) -> Any:
    if node.op == "get_attr":
        obj: Any = gm
        for part in str(node.target).split("."):
            obj = getattr(obj, part)
        return obj.detach() if isinstance(obj, torch.Tensor) else obj
    with torch.no_grad():
        return _generic_run(node, gm)(consts)


def _make_linear(op: Linear, module: Any, dep: dict, consts: dict) -> str | None:
    """Attach the layer of a conv/dense node; returns the weight's qualified name for functional calls."""
    node = op.node
    if module is not None:
        op.attach(layer_from_module(module), op.inputs[0])
        return None
    target = ops.normalise_target(node.target)
    bound = _bind(ops.LINEAR_FUNCS[target][1], node.args, node.kwargs)
    if any(isinstance(bound.get(k), fx.Node) and dep.get(bound[k], False) for k in ("weight", "bias")):
        raise weights_from_input(op.label, node.name)
    qualified = _attr_name(bound.get("weight"))
    if qualified is None and isinstance(bound.get("weight"), fx.Node):
        qualified = _attr_name(bound["weight"].args[0]) if bound["weight"].args else None
    x_arg = bound["input"]
    params = {k: _value(v, consts) for k, v in bound.items() if k != "input"}
    op.attach(layer_from_call(target, params), x_arg)
    return qualified


def _matmul_operands(node: fx.Node, dep: dict, consts: dict) -> tuple[fx.Node, fx.Node] | None:
    """(activation, constant) operands of a matmul/einsum node with exactly one of each, else None."""
    operands = [n for n in _nodes_in((node.args, node.kwargs))]
    live = [n for n in operands if dep.get(n, False)]
    fixed = [n for n in operands if not dep.get(n, False) and isinstance(consts.get(n), torch.Tensor)]
    if len(live) != 1 or len(fixed) != 1 or len(operands) != 2:
        return None
    return live[0], fixed[0]


def _make_matmul(op: MatMul, dep: dict, consts: dict, gm: fx.GraphModule) -> str | None:
    """Attach a matmul/einsum with one constant operand as a dense layer without bias (``LinearLayer``)."""
    node = op.node
    operands = _matmul_operands(node, dep, consts)
    assert operands is not None, "the graph builder classifies a product of two activations as Unknown"
    x_node, w_node = operands
    weight = consts[w_node]
    name = ops.normalise_target(node.target) if node.op == "call_function" else node.target
    simple = name in (operator.matmul, torch.matmul, torch.mm, torch.ops.aten.matmul, torch.ops.aten.mm,
                      "matmul", "mm", "__matmul__")
    if simple and node.args[:2] == (x_node, w_node) and weight.dim() == 2:
        layer = LinearLayer("dense", weight.t().contiguous(), None)  # h @ M = linear(h, Mᵀ)
    else:
        run = _generic_run(node, gm)

        def fn(x: torch.Tensor, w: torch.Tensor) -> Any:
            env = dict(consts)
            env[x_node], env[w_node] = x, w
            return run(env)
        layer = LinearLayer("map", weight, None, fn=fn)
    op.attach(layer, x_node)
    qualified = _attr_name(w_node)
    if qualified is None and w_node.args and isinstance(w_node.args[0], fx.Node):
        qualified = _attr_name(w_node.args[0])
    return qualified


def _make_batchnorm(op: BatchNorm, module: Any, consts: dict) -> str | None:
    """Read a BatchNorm's running statistics; returns the weight's qualified name for functional calls."""
    node = op.node
    if module is not None:
        if module.running_mean is not None and module.running_var is not None:
            op.bn = batchnorm_affine(module.weight, module.bias, module.running_mean, module.running_var,
                                     module.eps)
        return None
    target = ops.normalise_target(node.target)
    bound = {k: _value(v, consts) for k, v in _bind(ops.BATCHNORM_FUNCS[target], node.args, node.kwargs).items()
             if k != "input"}
    if target is torch.ops.aten._native_batch_norm_legit_no_training:
        op.tuple_collapsed = True
        run = op.run
        op.run = lambda env: run(env)[0]
    if not bound.get("training", False) and bound.get("running_mean") is not None:
        op.bn = batchnorm_affine(bound.get("weight"), bound.get("bias"), bound["running_mean"],
                                 bound["running_var"], bound.get("eps", 1e-5))
    x_node = node.args[0]
    assert isinstance(x_node, fx.Node), "a BatchNorm in the graph depends on the input"
    op.inputs = [x_node]
    return _attr_name(node.args[1]) if len(node.args) > 1 else None


def build_plan(captured: Captured, batchnorm: str = "fold") -> Plan:
    """The plan of ``captured.gm``: an operator per input-dependent node, canonized for ``batchnorm``."""
    gm = captured.gm
    functionalise(gm.graph)  # never overwrite a recorded activation (idempotent)
    nodes = list(gm.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError(f"The model takes {len(placeholders)} inputs; the relevance engine explains models with "
                         "exactly one input tensor (wrap the model so that it takes one).")
    dep: dict[fx.Node, bool] = {}
    consts: dict[fx.Node, Any] = {}
    steps: list[Op] = []
    from_input: dict[fx.Node, bool] = {}
    op_of: dict[fx.Node, Op] = {}
    output_node = None
    for node in nodes:
        if node.op == "output":
            output_node = node
            continue
        arg_nodes = _nodes_in((node.args, node.kwargs))
        dep[node] = node.op == "placeholder" or any(dep.get(a, False) for a in arg_nodes)
        if not dep[node]:
            consts[node] = _const(node, gm, consts)
            continue
        module = gm.get_submodule(node.target) if node.op == "call_module" else None
        kind = classify(node, module)
        if kind is MatMul and _matmul_operands(node, dep, consts) is None:
            kind = Unknown  # a product of two activations
        inputs = [a for a in dict.fromkeys(arg_nodes) if dep.get(a, False)]
        if node.op == "call_function" and node.target is operator.getitem and isinstance(node.args[0], fx.Node) \
                and node.args[0] in op_of:
            kind = getitem_kind(node, op_of[node.args[0]])
        elif node.op == "call_function" and node.target is getattr and node.args[0] in op_of \
                and node.args[1] in TUPLE_FIELDS:  # ``torch.max(h, 1).values``: element 0, like ``[0]``
            kind = Identity if getitem_kind(node, op_of[node.args[0]]) is Identity else TupleGet
        run: Callable[[dict], Any] = (lambda env: None) if kind is Input else _generic_run(node, gm)
        op = kind(node, run, inputs,
                  label=ops.op_label(node, module) if node.op != "placeholder" else "", module=module)
        if kind is Identity:
            src = node.args[0]
            op.run = _reads(src)
        qualified = None
        if isinstance(op, MatMul):
            qualified = _make_matmul(op, dep, consts, gm)
            op.consumes_input = from_input.get(op.inputs[0], False)
            from_input[node] = False
        elif isinstance(op, Linear):
            qualified = _make_linear(op, module, dep, consts)
            op.consumes_input = from_input.get(op.inputs[0], False)
            from_input[node] = False
        else:
            from_input[node] = node.op == "placeholder" or any(from_input.get(a, False) for a in inputs)
        if isinstance(op, BatchNorm):
            op.consumes_input = bool(inputs) and from_input.get(inputs[0], False)
            qualified = _make_batchnorm(op, module, consts)
        if qualified:
            qualified = qualified.rsplit(".", 1)[0] if "." in qualified else ""
        op.module_path = _module_path(node, qualified) if node.op != "placeholder" else ""
        op.module_type = module.__class__ if module is not None else captured.module_types.get(op.module_path)
        steps.append(op)
        op_of[node] = op
    for canonizer in canonizers_for(batchnorm):
        canonizer.apply(steps)
    _mark_nonnegative_inputs(steps)
    assert output_node is not None, "an fx graph ends in its output node"
    out_nodes = [n for n in _nodes_in(output_node.args) if dep.get(n, False)]
    if len(out_nodes) != 1:
        raise one_tensor_error(tuple(out_nodes), f"{len(out_nodes)} tensors that depend on its input")
    effective, stripped, post = _strip_output(out_nodes[0], {op.node: op for op in steps})
    return Plan(steps, placeholders[0], effective, stripped, consts, captured, output_node, post)


_SELECT_TARGETS = {operator.getitem, torch.select, torch.narrow, torch.ops.aten.select, torch.ops.aten.slice,
                   torch.ops.aten.narrow}


def _shape_only(op: Op) -> bool:
    """A view/reshape, or a slice/select/index of one tensor: moves values, never mixes them."""
    if op.kind == "reshape":
        return len(op.inputs) == 1
    if op.kind not in ("grad", "tuple_get") or len(op.inputs) != 1:
        return False
    node = op.node
    if node.op == "call_method":
        return node.target in ("select", "narrow", "__getitem__")
    return node.op == "call_function" and ops.normalise_target(node.target) in _SELECT_TARGETS


def _strip_output(out: fx.Node, op_of: dict) -> tuple[fx.Node, list[str], list[Op]]:
    """Strip softmax/sigmoid ops that produce the output, also behind shape-only ops (``sigmoid(z).squeeze(1)``,
    ``softmax(z)[:, 1]``): the effective output, the stripped labels, and the shape ops to re-apply to it."""
    effective, node = out, out
    stripped: list[str] = []
    post: list[Op] = []
    chain: list[Op] = []
    while node in op_of and len(node.users) == 1:
        op = op_of[node]
        if getattr(op, "strippable", False):
            stripped.append(op.label)
            post = chain + post
            effective, chain = op.inputs[0], []
        elif not _shape_only(op):
            break
        else:
            chain = [op] + chain
        node = op.inputs[0]
    return effective, stripped, post


def _mark_nonnegative_inputs(steps: list[Op]) -> None:
    """Static sign analysis: which linear layers certainly see a non-negative input (after a ReLU)."""
    nonneg: dict[fx.Node, bool] = {}
    for op in steps:
        ins = [nonneg.get(a, False) for a in op.inputs]
        if isinstance(op, Linear):
            op.layer.input_nonneg = bool(ins) and ins[0]
        nonneg[op.node] = op.nonnegative(ins)
