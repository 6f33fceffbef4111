"""One recording forward pass over the plan, then a reverse walk that propagates relevance.

Only the values an operator's relevance step reads later (``Op.needs``: a linear layer's input, its
output for rules that reuse it, the operands of a sum) are kept; everything else is freed as soon as
the forward pass no longer needs it, and kept values are freed as the reverse walk passes their
last reader. No autograd graph is built except for small, parameter-free ops (pooling, slicing,
upsampling), whose transposes are taken w.r.t. their inputs only.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx

from .graph import Plan
from .operators import (
    Identity,
    Input,
    Linear,
    Meta,
    Op,
    Pass,
    PassOrStrip,
    Reshape,
    Unknown,
    Walk,
    unsupported_error,
    vjp,
)

Tensor = torch.Tensor


@dataclass
class Recording:
    """What the forward pass leaves for the reverse walk."""

    values: dict            # node -> kept forward value
    counts: dict            # node -> relevance steps that still read it
    consts: dict            # nodes that do not depend on the input
    meta: dict              # non-tensor values of input-dependent nodes (sizes, dims)
    input: Tensor
    recipes: dict           # node -> the cheap op that recomputes it in the walk (not kept)


class GraphRunError(RuntimeError):
    """A step of our graph failed in the forward pass (``step``: where; ``reason``: the first line)."""

    def __init__(self, step: Op, exc: BaseException) -> None:
        self.step, self.reason = step, (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        super().__init__(f"node '{step.name}' ({step.label}): {self.reason}")


def check_supported(plan: Plan) -> None:
    """Raise ``UnsupportedOperatorError`` for the first operator without a rule (after the trace check), naming
    the fix for all of them."""
    unknown = [op for op in plan.steps if isinstance(op, Unknown)]
    if unknown:
        raise unsupported_error(unknown[0], unknown)


class ValueChanged(RuntimeError):
    """A value handed to the graph from outside (the model's own forward) was overwritten in place later."""


class ForwardRun:
    """The graph's forward pass, resumable: ``advance`` runs operators in order until one that ``stop``
    selects (returned: it waits for its value from ``feed``) or to the end; ``finish`` gives the recording.

    ``record``: if given, every node value is stored there by node name (and nothing is freed early).
    ``recompute``: cheap activations of kept values are recomputed in the walk, not kept (``_recompute_plan``).
    Operators settle on their values (``Op.settle``) and replace themselves in ``plan.steps``.
    """

    def __init__(self, plan: Plan, x: Tensor, record: dict | None = None, recompute: bool = True) -> None:
        self.plan, self.x, self.record = plan, x, record
        steps = plan.steps
        self.last_use: dict[fx.Node, int] = {}
        for i, op in enumerate(steps):
            for a in op.node.all_input_nodes:
                self.last_use[a] = i
        for a in (plan.graph_output.all_input_nodes if plan.graph_output is not None else []):
            self.last_use[a] = len(steps)
        for op in steps:
            op.kept = op.needs()
        self.recipes = _recompute_plan(steps, plan.output_node) if record is None and recompute else {}
        self.counts: dict[fx.Node, int] = {}
        for op in steps:
            for n in op.kept:
                self.counts[n] = self.counts.get(n, 0) + 1
        self.counts[plan.output_node] = self.counts.get(plan.output_node, 0) + 1
        self.env: dict = dict(plan.consts)
        self.env[plan.input_node] = x
        self.meta: dict = {}
        self.guarded: dict[fx.Node, tuple] = {}   # fed values that must not change: node -> (tensor, version)
        self.i = 0

    def input_of(self, op: Op) -> Any:
        """The graph's value of ``op``'s first input."""
        return self.env[op.inputs[0]]

    def _check_guarded(self, nodes: Any) -> None:
        for a in nodes:
            if a in self.guarded and self.guarded[a][0]._version != self.guarded[a][1]:
                raise ValueChanged(f"the value of node '{a.name}' was overwritten after it was handed over")

    def _store(self, op: Op, value: Any) -> None:
        i, steps, env = self.i, self.plan.steps, self.env
        env[op.node] = value
        if self.record is not None:
            self.record[op.name] = value
        op = steps[i] = _constant_operands(op, self.meta).settle(env, value)
        if isinstance(op, Meta):
            self.meta[op.node] = value
        if self.record is None:
            for a in op.node.all_input_nodes:
                if self.last_use.get(a) == i and a not in self.plan.consts and self.counts.get(a, 0) == 0:
                    env.pop(a, None)
                    self.guarded.pop(a, None)
        self.i += 1

    def advance(self, stop: Callable[[Op], bool] | None = None) -> Op | None:
        """Run operators until ``stop(op)`` (that op is returned, not run) or the end (None).
        Raises ``GraphRunError`` naming the step that failed."""
        steps = self.plan.steps
        with torch.no_grad():
            while self.i < len(steps):
                op = steps[self.i]
                if isinstance(op, Input):
                    self.i += 1
                    continue
                if stop is not None and stop(op):
                    return op
                self._check_guarded(op.node.all_input_nodes)
                try:
                    value = op.run(self.env)
                except Exception as exc:  # noqa: BLE001 - re-raised with the place it happened
                    raise GraphRunError(op, exc) from exc
                self._store(op, value)
        return None

    def feed(self, op: Op, value: Any, guard: bool = False) -> None:
        """The value of the op ``advance`` stopped at; ``guard``: it belongs to someone who may overwrite it later
        (``finish`` and every later reader check its version)."""
        with torch.no_grad():
            self._store(op, value)
        if guard and isinstance(value, Tensor):
            self.guarded[op.node] = (value, value._version)

    def finish(self) -> tuple[Recording, Any, Any]:
        """Run what is left; the recording, the effective output and the graph's whole output."""
        self.advance()
        env, plan = self.env, self.plan
        self._check_guarded([n for n in self.counts if n in env])
        out = apply_post(plan, env[plan.output_node], {**plan.consts, **self.meta})
        full = fx.node.map_arg(plan.graph_output.args[0], lambda n: env[n]) if plan.graph_output is not None \
            else out
        kept = {n: env[n] for n in self.counts if n in env}
        return Recording(kept, self.counts, plan.consts, self.meta, self.x, self.recipes), out, full


def _constant_operands(op: Op, meta: dict) -> Op:
    """``op`` without the operands that carry no relevance (masks, indices, sizes and whatever is computed only
    from them, e.g. ``(x > 0.2).float()`` and its sum): they are constants for the relevance step (a product
    with a mask is a constant gate, a division by a mask's size a constant scale); an op made only of them
    carries no relevance itself (``Meta``)."""
    if isinstance(op, (Meta, Input)) or not any(a in meta for a in op.inputs):
        return op
    live = [a for a in op.inputs if a not in meta]
    if not live:
        return op.become(Meta)
    op = op.become(type(op))
    op.inputs = live
    return op


def apply_post(plan: Plan, value: Any, env: dict) -> Any:
    """The effective output through the shape-only ops that followed a stripped softmax/sigmoid (``Plan.post``)."""
    for op in plan.post:
        value = op.run({**env, op.inputs[0]: value})
    return value


def forward(plan: Plan, x: Tensor, record: dict | None = None, recompute: bool = True
            ) -> tuple[Recording, Any, Any]:
    """Run the whole graph on ``x`` (see ``ForwardRun``): the recording, the effective output, the whole output."""
    return ForwardRun(plan, x, record, recompute).finish()


def _cheap(op: Op) -> bool:
    """Elementwise/affine/view ops of one tensor: recomputing them costs one pass over memory."""
    cheap = type(op) in (Pass, PassOrStrip, Identity, Reshape) or (isinstance(op, Linear) and op.affine)
    return cheap and len(op.inputs) == 1


def _recompute_plan(steps: list[Op], output: fx.Node) -> dict:
    """Kept values a cheap op makes from another kept value (a ReLU output whose input a sum or a BatchNorm
    keeps anyway, …): recomputed in the walk instead of kept. Their readers keep the root value instead
    (``op.kept`` rewritten). Returns node -> the op that recomputes it."""
    readers: dict[fx.Node, int] = {}
    for op in steps:
        for n in op.kept:
            readers[n] = readers.get(n, 0) + 1
    recipes: dict[fx.Node, Op] = {}
    root: dict[fx.Node, fx.Node] = {}
    for op in steps:  # graph order: an op's input is decided before the op
        n = op.node
        if n is output or not _cheap(op):
            continue
        m = op.inputs[0]
        if m in root or readers.get(m):  # made from a kept value, possibly through other cheap ops
            recipes[n], root[n] = op, root.get(m, m)
    for op in steps:
        op.kept = list(dict.fromkeys(root.get(n, n) for n in op.kept))
    return recipes


def backward(plan: Plan, rec: Recording, seed: Tensor, stabilizer: float,
             layer_filter: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, OrderedDict[str, Tensor]]:
    """Propagate ``seed`` (relevance of the effective output) to the input; returns it and layer totals."""
    walk = Walk(rec.values, rec.consts, rec.meta, stabilizer, layer_filter, rec.recipes)
    if plan.post:  # relevance of the re-applied shape ops, back on the effective output (their transpose)
        seed = vjp(lambda xs: apply_post(plan, xs[0], {**rec.consts, **rec.meta}), [rec.values[plan.output_node]],
                   seed)[0]
    walk.relevance[plan.output_node] = seed
    totals: OrderedDict[str, Tensor] = OrderedDict()
    counts = rec.counts
    start = next(i for i, op in enumerate(plan.steps) if op.node is plan.output_node)

    def release(op: Op) -> None:
        for n in op.kept:
            counts[n] -= 1
            if counts[n] == 0:
                rec.values.pop(n, None)

    for op in reversed(plan.steps[:start + 1]):
        node = op.node
        if node not in walk.relevance:
            release(op)
            continue
        r = walk.relevance.pop(node)
        if isinstance(op, Meta):
            continue
        if isinstance(r, Tensor) and op.records_total or node is plan.output_node:
            totals[node.name] = r.reshape(r.shape[0], -1).sum(1) if r.dim() else r.reshape(1)
        if isinstance(op, Input):
            walk.relevance[node] = r
            break
        op.relevance(r, walk)
        release(op)
    r_input = walk.relevance.get(plan.input_node)
    if r_input is None:
        r_input = torch.zeros_like(rec.input)
    return r_input, totals
