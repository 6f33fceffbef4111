"""The base class of every operator kind, and what a relevance step sees of the walk.

An ``Op`` is one input-dependent node of the operator graph. Its class says which torch functions,
Tensor methods and module types it handles (``functions``/``methods``/``modules``, or ``claims``),
what it must keep from the forward pass for its relevance step (``needs``), how it settles once
its forward value is known (``settle``: e.g. ``x * 2`` is a pass, ``x * y`` has no rule), and how
it hands the relevance of its output to its inputs (``relevance``).

``Walk`` is the reverse walk's state as a step sees it: ``value(node)`` (kept forward values,
constants and sizes), ``give(node, r)`` (relevance to an input), the stabiliser of sum/pool splits.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch
import torch.fx as fx

from ...errors import InputError
from .. import ops
from ..ops import normalise_target

Tensor = torch.Tensor


class UnsupportedOperatorError(InputError):
    """An operator in the model has no relevance rule."""


def method_name(node: fx.Node) -> str:
    """A call_method node's Tensor method, in-place variants as their functional name (``relu_`` -> ``relu``)."""
    name = str(node.target)
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def is_tensorish(v: Any) -> bool:
    """A tensor, or a tuple/list holding one."""
    return isinstance(v, Tensor) or (isinstance(v, (tuple, list)) and any(isinstance(e, Tensor) for e in v))


def _carries_relevance(t: Tensor) -> bool:
    """Floating/complex tensors carry relevance; boolean and integer ones (masks, indices) do not."""
    return t.is_floating_point() or t.is_complex()


OpT = TypeVar("OpT", bound="Op")


class Op:
    """One operator of the graph: its forward function, what it keeps, its relevance step.

    Subclasses set ``kind`` (a short name for messages), the targets they handle, ``records_total``
    (its relevance total appears in ``Explanation.layer_totals``) and override ``relevance``.
    """

    kind: ClassVar[str] = "op"
    functions: ClassVar[Collection] = frozenset()
    methods: ClassVar[Collection] = frozenset()
    modules: ClassVar[tuple] = ()
    records_total: ClassVar[bool] = False

    def __init__(self, node: fx.Node, run: Callable[[dict], Any], inputs: list[fx.Node], label: str = "",
                 module: Any = None) -> None:
        self.node = node
        self.run = run                       # env (node -> value) -> this node's value
        self.inputs = inputs                 # input-dependent argument nodes (receive relevance)
        self.label = label                   # human-readable operator name
        self.module = module                 # the called submodule (call_module nodes)
        self.module_path = ""
        self.module_type: Any = None
        self.consumes_input = False          # a linear layer applied to the model input itself
        self.tensor_inputs: list[fx.Node] = list(inputs)
        self.kept: list[fx.Node] = []        # what the reverse walk reads (set before the forward pass)

    # -- identity --------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.node.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}: {self.label})"

    @classmethod
    def claims(cls, node: fx.Node, module: Any = None) -> bool:
        """Whether this kind handles ``node`` (``module``: the called submodule of a call_module node)."""
        if node.op == "call_module":
            return bool(cls.modules) and isinstance(module, cls.modules)
        if node.op == "call_method":
            return method_name(node) in cls.methods
        if node.op == "call_function":
            return normalise_target(node.target) in cls.functions
        return False

    def become(self, cls: type[OpT]) -> OpT:
        """This op as another kind (same node, forward and bookkeeping)."""
        new = cls.__new__(cls)
        new.__dict__.update(self.__dict__)
        return new

    # -- forward pass ----------------------------------------------------------------------------
    def needs(self) -> list[fx.Node]:
        """Nodes whose forward values the relevance step reads."""
        return []

    def settle(self, env: dict, value: Any) -> Op:
        """The op for this node once its forward value is known (``self`` unless the value decides)."""
        self.tensor_inputs = [n for n in self.inputs if isinstance(env.get(n), Tensor)]
        if not is_tensorish(value) or (isinstance(value, Tensor) and not _carries_relevance(value)):
            return self.become(Meta)  # sizes, and masks/indices (``a > b``, argmax): no relevance
        return self

    def nonnegative(self, inputs: list[bool]) -> bool:
        """Static sign analysis: is the output certainly ≥ 0 given which inputs certainly are."""
        return False

    # -- reverse walk ----------------------------------------------------------------------------
    def relevance(self, r: Any, walk: Walk) -> None:
        """Hand ``r`` (the relevance of this node's output) to the inputs with ``walk.give``."""
        raise UnsupportedOperatorError(f"internal: no relevance step for {self!r}")


class Meta(Op):
    """Sizes, dims, attribute reads: values that carry no relevance."""

    kind = "meta"
    methods = ops.META_METHODS
    functions = frozenset({getattr})

    def relevance(self, r, walk):
        return None


class Unknown(Op):
    """An operator without a relevance rule: refused after the trace check, naming the fix."""

    kind = "unknown"

    def relevance(self, r, walk):
        raise unsupported_error(self)


def unsupported_error(op: Op, others: Collection[Op] = ()) -> UnsupportedOperatorError:
    """The error for an operator without a relevance rule, naming the place and the ``pass_through`` fix.

    ``others``: the plan's other operators without a rule. Each suggested ``pass_through`` covers all of them
    (every operator kind, or every module holding one), so following it verbatim meets no further refusal."""
    every = [op, *[o for o in others if o is not op]]
    where = f" in module '{op.module_path}'" if op.module_path else ""
    more = ""
    if len(every) > 1:
        places = sorted({f"{o.label.split('.')[-1]} in '{o.module_path}'" if o.module_path else
                         f"{o.label.split('.')[-1]} at node '{o.name}'" for o in every[1:]})
        more = (f" (nor {'does' if len(every) == 2 else 'do'} {len(every) - 1} more: {', '.join(places[:8])}"
                f"{' …' if len(places) > 8 else ''})")
    kinds = _set_literal({o.label.split(".")[-1] for o in every})
    modules = {o.module_path for o in every}
    module_form = f" or pass_through={_set_literal(modules)}" if all(modules) else ""
    them = "them" if len(every) > 1 else "it"
    return UnsupportedOperatorError(
        f"Operator {op.label} at node '{op.name}'{where} has no relevance rule{more}; to let relevance pass "
        f"through {them} like the gradient, call explain(..., pass_through={kinds}){module_form}.")


def _set_literal(names: Collection[str]) -> str:
    """``{'a', 'b'}`` in a stable order (Python's own set repr is unordered)."""
    return "{" + ", ".join(repr(n) for n in sorted(names)) + "}"


@dataclass
class Walk:
    """The reverse walk as a relevance step sees it."""

    values: dict                                  # kept forward values by node
    consts: dict                                  # nodes that do not depend on the input
    meta: dict                                    # non-tensor values of input-dependent nodes (sizes)
    stabilizer: float
    layer_filter: Callable[[Tensor], Tensor] | None = None
    recipes: dict = field(default_factory=dict)   # node -> cheap op recomputing it from a kept value
    relevance: dict = field(default_factory=dict)  # node -> relevance received so far

    def value(self, node: Any) -> Any:
        """The forward value of ``node`` (kept activation, recomputed cheap activation, constant or size)."""
        if node in self.values:
            return self.values[node]
        if node in self.recipes:
            op = self.recipes[node]
            with torch.no_grad():
                return self.rerun(op, op.inputs)([self.value(op.inputs[0])])
        if node in self.consts:
            return self.consts[node]
        return self.meta.get(node)

    def give(self, node: fx.Node, r: Tensor) -> None:
        """Add ``r`` to the relevance of ``node`` (in place: each relevance tensor has one owner)."""
        have = self.relevance.get(node)
        if have is None:
            self.relevance[node] = r
        elif isinstance(have, Tensor) and have.shape == r.shape and have.dtype == r.dtype:
            have.add_(r)
        else:
            self.relevance[node] = have + r

    def rerun(self, op: Op, tensor_inputs: list) -> Callable:
        """``op``'s forward as a function of its tensor inputs (everything else from constants and sizes)."""
        def fn(xs):
            env = dict(self.consts)
            env.update(self.meta)
            env.update(zip(tensor_inputs, xs, strict=True))
            return op.run(env)
        return fn


def vjp(fn: Callable, inputs: list[Tensor], grads: Any) -> tuple:
    """Input-gradients of ``fn`` (a small parameter-free op) for upstream ``grads`` (a tensor, or a dict
    output index -> tensor for tuple-valued ops); zeros for inputs it does not reach and for integer or
    boolean inputs (indices, masks)."""
    with torch.enable_grad():
        xs = [t.detach().requires_grad_(True) if _carries_relevance(t) else t for t in inputs]
        out = fn(xs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if isinstance(grads, dict):
            pairs = [(o, grads[i]) for i, o in enumerate(outs) if i in grads]
        else:
            pairs = [(outs[0], grads)]
        pairs = [(o, g) for o, g in pairs if isinstance(o, Tensor) and o.requires_grad]
        if not pairs:
            return tuple(torch.zeros_like(t) for t in inputs)
        wrt = [t for t in xs if t.requires_grad]
        found = dict(zip(map(id, wrt), torch.autograd.grad([p[0] for p in pairs], wrt, [p[1] for p in pairs],
                                                            allow_unused=True), strict=True))
    res = [found.get(id(t)) for t in xs]
    return tuple(torch.zeros_like(t) if g is None else g for t, g in zip(inputs, res, strict=True))
