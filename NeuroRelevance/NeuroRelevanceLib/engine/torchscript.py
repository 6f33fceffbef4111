"""Rebuild a TorchScript module as a torch.fx graph of aten operators.

The TorchScript graph is walked once with the concrete input (a tracing interpreter): values that
depend on the input become fx nodes calling ``torch.ops.aten.*``; everything else (sizes, flags,
branches of ``prim::If``, loop counts) is evaluated on the spot, so scripted control flow that only
checks shapes or flags is resolved. Parameters become ``get_attr`` nodes named by their module path
(e.g. ``layer1.0.conv1.weight``), so rules keyed by module name work as for ``nn.Module``.
"""
from __future__ import annotations

import math
import operator
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn


class _Traced:
    """An input-dependent value: the fx node that computes it and its concrete value."""

    __slots__ = ("node", "value")

    def __init__(self, node: fx.Node, value: Any) -> None:
        self.node, self.value = node, value


def _map_traced(v: Any, pick) -> Any:
    """``v`` with every traced value (also inside lists and tuples) replaced by ``pick(value)``."""
    if isinstance(v, _Traced):
        return pick(v)
    if isinstance(v, list):
        return [_map_traced(e, pick) for e in v]
    if isinstance(v, tuple):
        return tuple(_map_traced(e, pick) for e in v)
    return v


def _concrete(v: Any) -> Any:
    return _map_traced(v, lambda t: t.value)


def _symbolic(v: Any) -> Any:
    return _map_traced(v, lambda t: t.node)


def _is_traced(v: Any) -> bool:
    if isinstance(v, _Traced):
        return True
    if isinstance(v, (list, tuple)):
        return any(_is_traced(e) for e in v)
    return False


def _append(lst: list, el: Any) -> list:
    lst.append(el)
    return lst


def _setitem(lst: list, i: int, el: Any) -> list:
    lst[i] = el
    return lst


# python meanings of TorchScript's scalar/list operators (used when the dispatcher cannot take them)
_PY_OPS: dict[str, Any] = {
    "append": _append, "_set_item": _setitem, "len": len, "__getitem__": operator.getitem,
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
    "floordiv": operator.floordiv, "remainder": operator.mod, "neg": operator.neg, "pow": operator.pow,
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "gt": operator.gt, "le": operator.le, "ge": operator.ge,
    "__not__": operator.not_, "__and__": operator.and_, "__or__": operator.or_, "__is__": operator.is_,
    "__isnot__": operator.is_not, "__contains__": lambda c, v: v in c, "Int": int, "Float": float, "Bool": bool,
    "str": str, "format": lambda f, *a: f.format(*a), "warn": lambda *a, **k: None, "list": list,
    "floor": math.floor, "ceil": math.ceil, "extend": lambda a, b: a.extend(b),
    "dim": lambda t: t.dim(), "size": lambda t, d=None: list(t.shape) if d is None else t.shape[d],
    "slice": lambda seq, start=None, end=None, step=1: seq[start:end:step],
    "reverse": lambda lst: lst.reverse(), "insert": lambda lst, i, el: lst.insert(i, el),
    "pop": lambda lst, i=-1: lst.pop(i), "clear": lambda lst: lst.clear(),
}


def _call_aten(packet: Any, name: str, args: list, kwargs: dict) -> Any:
    if name in _PY_OPS and not _has_tensor(list(args[1:]) + list(kwargs.values())) and (
            not isinstance(args[0], torch.Tensor) or name in ("dim", "size", "len", "__is__", "__isnot__")):
        return _PY_OPS[name](*args, *kwargs.values())
    return packet(*args, **kwargs)


def _has_tensor(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return True
    if isinstance(v, (list, tuple)):
        return any(_has_tensor(e) for e in v)
    return False


class _Converter:
    def __init__(self, module: torch.jit.ScriptModule, device: torch.device, dtype: torch.dtype) -> None:
        self.graph = fx.Graph()
        self.root = nn.Module()
        self.device, self.dtype = device, dtype
        self.module_types: dict[str, str] = {"": getattr(module, "original_name", type(module).__name__)}
        self.attr_nodes: dict[str, _Traced] = {}
        self.env: dict[Any, Any] = {}
        self.counter = 0
        self.assigned: dict[tuple[int, str], Any] = {}  # prim::SetAttr, kept here: the module is never written

    # -- values -------------------------------------------------------------------------------
    def _tensor_attr(self, path: str, tensor: torch.Tensor) -> _Traced:
        if path not in self.attr_nodes:
            t = tensor.detach().clone()
            if t.is_floating_point():
                t = t.to(self.dtype)
            t = t.to(self.device)
            target = path.replace(".", "__")
            self.root.register_buffer(target, t)
            node = self.graph.get_attr(target)
            node.meta["qualified_name"] = path
            self.attr_nodes[path] = _Traced(node, t)
        return self.attr_nodes[path]

    def _get_attr(self, owner: Any, name: str) -> Any:
        kind, obj, path = owner
        full = f"{path}.{name}" if path else name
        if name == "training":
            return False  # explained in eval mode, without touching the module's own flag
        value = getattr(obj, name)
        if isinstance(value, torch.Tensor):
            return self._tensor_attr(full, value)
        if isinstance(value, (nn.Module, torch.jit.ScriptModule, torch._C.ScriptModule)):
            self.module_types[full] = getattr(value, "original_name", type(value).__name__)
            return ("module", value, full)
        return value

    # -- nodes --------------------------------------------------------------------------------
    def run_block(self, block: Any) -> None:
        for node in block.nodes():
            self.run_node(node)

    def _outputs(self, node: Any, values: list) -> None:
        # not strict: in-place list ops without outputs (``aten::reverse``, ``append``) hand back their None
        for out, v in zip(node.outputs(), values, strict=False):
            self.env[out] = v

    def run_node(self, node: Any) -> None:
        kind = node.kind()
        ins = [self.env[i] for i in node.inputs()]
        if kind == "prim::Constant":
            out = node.output()
            value = out.toIValue()
            if isinstance(value, torch.Tensor):
                self.counter += 1
                value = self._tensor_attr(f"_const{self.counter}", value)
            self.env[out] = value
        elif kind == "prim::GetAttr":
            key = (id(ins[0][1]), node.s("name")) if isinstance(ins[0], tuple) and len(ins[0]) == 3 else None
            self.env[node.output()] = self.assigned[key] if key in self.assigned else \
                self._get_attr(ins[0], node.s("name"))
        elif kind == "prim::SetAttr":
            self.assigned[(id(ins[0][1]), node.s("name"))] = ins[1]
        elif kind == "prim::ListConstruct":
            self.env[node.output()] = list(ins)
        elif kind == "prim::TupleConstruct":
            self.env[node.output()] = tuple(ins)
        elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            seq = ins[0]
            if isinstance(seq, _Traced):
                seq = [self._emit(operator.getitem, (seq, i)) for i in range(len(seq.value))]
            self._outputs(node, list(seq))
        elif kind == "prim::TupleIndex":
            self.env[node.output()] = ins[0][ins[1]]
        elif kind == "prim::If":
            cond = ins[0]
            if _is_traced(cond):
                raise ValueError("The TorchScript model branches on its input's values (prim::If on a tensor); "
                                 "export it with torch.export or pass the nn.Module instead.")
            block = list(node.blocks())[0 if cond else 1]
            self.run_block(block)
            self._outputs(node, [self.env[v] for v in block.outputs()])
        elif kind == "prim::Loop":
            self._loop(node, ins)
        elif kind == "prim::RaiseException":
            raise ValueError(f"The TorchScript model raised an exception for this input: {ins[0]}")
        elif kind in ("prim::unchecked_cast", "aten::detach", "prim::data"):
            self.env[node.output()] = ins[0]
        elif kind == "prim::Uninitialized":
            self.env[node.output()] = None
        elif kind == "prim::device":
            self.env[node.output()] = _concrete(ins[0]).device
        elif kind == "prim::dtype":
            self.env[node.output()] = _concrete(ins[0]).dtype
        elif kind == "prim::NumToTensor":
            self.env[node.output()] = torch.tensor(_concrete(ins[0]))
        elif kind in ("prim::min", "prim::max"):
            fn = min if kind == "prim::min" else max
            vals = _concrete(ins)
            self.env[node.output()] = fn(*vals) if len(vals) > 1 else fn(vals[0])
        elif kind == "prim::CallMethod" or kind == "prim::CallFunction":
            raise ValueError(f"TorchScript call {kind} could not be inlined; pass the nn.Module instead.")
        elif kind.startswith("aten::"):
            self._aten(node, kind[len("aten::"):], ins)
        else:
            raise ValueError(f"TorchScript operator {kind} is not supported by the relevance engine; "
                             "pass the nn.Module or an exported program (.pt2) instead.")

    def _loop(self, node: Any, ins: list) -> None:
        trip, cond, carried = _concrete(ins[0]), ins[1], list(ins[2:])
        body = list(node.blocks())[0]
        body_inputs = list(body.inputs())
        i = 0
        while cond and i < trip:
            if _is_traced(cond):
                raise ValueError("The TorchScript model loops on its input's values; pass the nn.Module instead.")
            self.env[body_inputs[0]] = i
            for v, c in zip(body_inputs[1:], carried, strict=True):
                self.env[v] = c
            self.run_block(body)
            outs = [self.env[v] for v in body.outputs()]
            cond, carried = outs[0], outs[1:]
            i += 1
        self._outputs(node, carried)

    def _emit(self, target: Any, args: tuple, kwargs: dict | None = None, value: Any = None) -> _Traced:
        kwargs = kwargs or {}
        if value is None:
            value = target(*_concrete(args), **_concrete(kwargs))
        fx_node = self.graph.call_function(target, _symbolic(args), _symbolic(kwargs))
        return _Traced(fx_node, value)

    def _aten(self, node: Any, name: str, ins: list) -> None:
        inplace = name.endswith("_") and not name.endswith("__")
        base = name[:-1] if inplace else name
        schema = node.schema()
        if schema == "(no schema)":
            raise ValueError(f"TorchScript operator aten::{name} has no schema; pass the nn.Module instead.")
        parsed = torch._C.parse_schema(schema)
        args, kwargs = [], {}
        for arg, v in zip(parsed.arguments, ins, strict=True):
            if arg.kwarg_only:
                kwargs[arg.name] = v
            else:
                args.append(v)
        packet = getattr(torch.ops.aten, base, None) or getattr(torch.ops.aten, name)
        if name == "__getitem__" and isinstance(ins[0], (list, tuple)):
            self._outputs(node, [ins[0][_concrete(ins[1])]])
            return
        if name == "__getitem__" and isinstance(ins[0], _Traced) and isinstance(ins[0].value, (list, tuple)):
            self._outputs(node, [self._emit(operator.getitem, (ins[0], _concrete(ins[1])))])
            return
        if name == "len" and isinstance(ins[0], _Traced):
            self._outputs(node, [len(ins[0].value)])
            return
        if name in ("append", "_set_item", "extend", "reverse", "insert", "pop", "clear") and isinstance(ins[0], list):
            self._outputs(node, [_PY_OPS[name](*ins)])  # mutate our list (may hold traced tensors)
            return
        if _is_traced(args) or _is_traced(kwargs):
            value = _call_aten(packet, base, _concrete(args), _concrete(kwargs))
            if not _has_tensor(value):  # sizes, dims, flags: specialised to this input
                outs = list(node.outputs())
                self._outputs(node, list(value) if len(outs) > 1 else [value])
                return
            result = self._emit(packet, tuple(args), kwargs, value)
            outs = list(node.outputs())
            if len(outs) > 1:
                values = [self._emit(operator.getitem, (result, i)) for i in range(len(outs))]
            else:
                values = [result]
            self._outputs(node, values)
            if inplace and isinstance(ins[0], _Traced):
                self._rebind(node, ins[0], values[0])
        else:
            value = _call_aten(packet, name, _concrete(args), _concrete(kwargs))
            outs = list(node.outputs())
            self._outputs(node, list(value) if len(outs) > 1 else [value])

    def _rebind(self, node: Any, old: _Traced, new: _Traced) -> None:
        """After an in-place op, later uses of the mutated value must see the result."""
        for key, v in list(self.env.items()):
            if v is old:
                self.env[key] = new


def script_to_fx(module: torch.jit.ScriptModule, x: torch.Tensor, device: torch.device,
                 dtype: torch.dtype) -> tuple[fx.GraphModule, dict[str, str]]:
    """Convert a TorchScript module to an fx ``GraphModule`` of aten ops, walking it with input ``x``."""
    conv = _Converter(module, device, dtype)
    graph = module.inlined_graph.copy()
    torch._C._jit_pass_constant_propagation(graph)
    inputs = list(graph.inputs())
    conv.env[inputs[0]] = ("module", module, "")
    if len(inputs) != 2:
        raise ValueError(f"The TorchScript model takes {len(inputs) - 1} inputs; the relevance engine explains "
                         "models with exactly one input tensor.")
    placeholder = conv.graph.placeholder("x")
    conv.env[inputs[1]] = _Traced(placeholder, x)
    with torch.no_grad():
        conv.run_block(graph)
    outputs = [conv.env[v] for v in graph.outputs()]
    result = outputs[0] if len(outputs) == 1 else tuple(outputs)
    if not _is_traced(result):
        raise ValueError("The TorchScript model's output does not depend on its input; nothing to explain.")
    conv.graph.output(_symbolic(result))
    return fx.GraphModule(conv.root, conv.graph), conv.module_types
