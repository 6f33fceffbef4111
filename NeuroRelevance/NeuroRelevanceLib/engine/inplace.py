"""Rewrite in-place operators of a captured graph into their out-of-place forms.

The engine keeps activations for the reverse walk, so nothing may overwrite them. Every in-place
form a graph can hold is mapped to its functional twin, and later readers of the overwritten value
are rewired to the new node (what the in-place op left in that tensor):

- torch.export / aten: ``aten.relu_``, ``aten.leaky_relu_``, ``aten.add_``, ``aten.elu_`` … (any
  OpOverload whose schema writes its first argument) -> ``aten.relu`` … with the same overload;
- torch.fx: ``x.relu_()``/``x.add_(y)`` (methods), ``torch.relu_``/``F.elu_`` (functions),
  ``F.relu(x, inplace=True)`` and ``out += residual`` (``operator.iadd`` …);
- TorchScript graphs are converted with functional ops already (``torchscript.py``).

Aliasing through views (``v = x.view(...); x.relu_(); use(v)``) is not modelled; the trace check
(``verify.py``) refuses a graph whose output then differs from the model's.
"""
from __future__ import annotations

import inspect
import operator
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F

_OUT_OF_PLACE = {operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul,
                 operator.itruediv: operator.truediv, operator.ifloordiv: operator.floordiv,
                 operator.ipow: operator.pow}


def _is_inplace_name(name: str) -> bool:
    return name.endswith("_") and not name.endswith("__") and len(name) > 1


def _aten_functional(target: torch._ops.OpOverload) -> Any | None:
    """``aten.relu_.default`` -> ``aten.relu.default`` where the schema writes its first argument."""
    args = target._schema.arguments
    if not args or args[0].alias_info is None or not args[0].alias_info.is_write:
        return None
    name = target.overloadpacket.__name__
    if not _is_inplace_name(name):
        return None
    packet = getattr(torch.ops.aten, name[:-1], None)
    return getattr(packet, target._overloadname, None) if packet is not None else None


def _python_functional(target: Any) -> Any | None:
    """``torch.relu_`` / ``F.elu_`` -> ``torch.relu`` / ``F.elu``."""
    name = getattr(target, "__name__", "")
    if not _is_inplace_name(name):
        return None
    for namespace in (F, torch):
        if getattr(namespace, name, None) is target:
            return getattr(namespace, name[:-1], None)
    return None


def _drop_inplace_flag(node: fx.Node) -> bool:
    """``F.relu(x, inplace=True)`` (keyword or positional) -> ``inplace=False``; True if it was set."""
    if node.kwargs.get("inplace") is True:
        node.kwargs = {**node.kwargs, "inplace": False}
        return True
    if not callable(node.target):
        return False
    try:
        params = list(inspect.signature(node.target).parameters)
    except (TypeError, ValueError):
        return False
    if "inplace" in params:
        k = params.index("inplace")
        if len(node.args) > k and node.args[k] is True:
            node.args = node.args[:k] + (False,) + node.args[k + 1:]
            return True
    return False


def _make_out_of_place(node: fx.Node) -> bool:
    """Turn ``node`` into its functional form in place; True if it used to overwrite its first argument."""
    if node.op == "call_method":
        name = str(node.target)
        if _is_inplace_name(name) and hasattr(torch.Tensor, name[:-1]):
            node.meta["inplace_of"] = name
            node.target = name[:-1]
            return True
        return False
    if node.op != "call_function":
        return False
    target = node.target
    if not callable(target):
        return False
    if isinstance(target, torch._ops.OpOverload):
        functional = _aten_functional(target)
        if functional is not None:
            node.meta["inplace_of"] = target.overloadpacket.__name__
            node.target = functional
            return True
        return False
    if target in _OUT_OF_PLACE:
        node.meta["inplace_of"] = target.__name__
        node.target = _OUT_OF_PLACE[target]
        return True
    functional = _python_functional(target)
    if functional is not None:
        node.meta["inplace_of"] = target.__name__
        node.target = functional
        return True
    if callable(target) and getattr(target, "__module__", "") in ("torch.nn.functional", "torch"):
        return _drop_inplace_flag(node)
    return False


def functionalise(graph: fx.Graph) -> int:
    """Rewrite every in-place node of ``graph`` (see module docstring); returns how many were rewritten."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    count = 0
    for node in list(graph.nodes):
        if not _make_out_of_place(node):
            continue
        count += 1
        src = node.args[0] if node.args else None
        if not isinstance(src, fx.Node):
            continue
        for user in list(src.users):
            if user is not node and order[user] > order[node]:
                user.replace_input_with(src, node)
    return count
