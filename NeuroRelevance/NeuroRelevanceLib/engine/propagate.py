"""One recording forward pass over the plan, then a reverse walk that propagates relevance.

Only the activations a handler needs later are kept (e.g. a linear layer's input, and its output
for rules that reuse it); everything else is freed as soon as the forward pass no longer needs it,
and kept values are freed as the reverse walk passes them. No autograd graph is built except for
small, parameter-free ops (pooling, slicing, upsampling), whose transposes are taken w.r.t. their
inputs only.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Optional

import torch
import torch.fx as fx

from .graph import Plan, Step, UnsupportedOperatorError
from .rules import divide

Tensor = torch.Tensor


def _needs(step: Step) -> list[fx.Node]:
    """Nodes whose values the handler of ``step`` reads in the reverse walk."""
    if step.kind == "linear":
        keep = [step.inputs[0]]
        if getattr(step.rule, "needs_output", False):
            keep.append(step.node)
        return keep
    if step.kind == "zrule":
        return list(step.inputs) + [step.node]
    if step.kind in ("add", "sub"):
        return list(step.inputs)  # the sum itself is recomputed from its terms
    if step.kind in ("grad", "passthrough_grad"):
        return list(step.inputs)
    return []


class GraphRunError(RuntimeError):
    """A step of our graph failed in the forward pass (``step``: where; ``reason``: the first line)."""

    def __init__(self, step: Step, exc: BaseException) -> None:
        self.step, self.reason = step, (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        super().__init__(f"node '{step.name}' ({step.label}): {self.reason}")


def unsupported_error(step: Step) -> UnsupportedOperatorError:
    """The error for an operator without a relevance rule, naming the place and the ``pass_through`` fix."""
    where = f" in module '{step.module_path}'" if step.module_path else ""
    key = step.label.split(".")[-1]
    return UnsupportedOperatorError(
        f"Operator {step.label} at node '{step.name}'{where} has no relevance rule; to let relevance pass "
        f"through it like the gradient, call explain(..., pass_through={{'{key}'}})"
        + (f" or pass_through={{'{step.module_path}'}}" if step.module_path else "") + ".")


def check_supported(plan: Plan) -> None:
    """Raise ``UnsupportedOperatorError`` for the first operator without a rule (after the trace check)."""
    for step in plan.steps:
        if step.kind == "unknown":
            raise unsupported_error(step)


def _is_tensorish(v: Any) -> bool:
    return isinstance(v, Tensor) or (isinstance(v, (tuple, list)) and any(isinstance(e, Tensor) for e in v))


def _refine(step: Step, env: dict, value: Any) -> None:
    """Settle kinds that depend on values: scalar arithmetic, pass-through variants, non-tensor results."""
    tensor_inputs = [n for n in step.inputs if isinstance(env.get(n), Tensor)]
    step.extra["tensor_inputs"] = tensor_inputs
    if not _is_tensorish(value):
        step.kind = "meta"
        return
    if step.kind == "scale":
        step.kind = "pass" if len(tensor_inputs) == 1 else "unknown"
    elif step.kind in ("add", "sub"):
        tensors = [a for a in step.node.args[:2] if isinstance(a, fx.Node) and isinstance(env.get(a), Tensor)]
        if len(tensors) == 1 and tensors[0] in tensor_inputs:
            step.kind = "pass"
    elif step.kind == "passthrough_grad":
        if len(tensor_inputs) == 1 and isinstance(value, Tensor) and value.shape == env[tensor_inputs[0]].shape:
            step.kind = "passthrough"


def forward(plan: Plan, x: Tensor, record: Optional[dict] = None) -> tuple[dict, Any, Any]:
    """Run the graph on ``x``; returns the kept values, the effective output and the graph's whole output.

    ``record``: if given, every node value is stored there by node name (and nothing is freed early).
    Raises ``GraphRunError`` naming the step that failed.
    """
    steps = plan.steps
    last_use: dict[fx.Node, int] = {}
    for i, s in enumerate(steps):
        for a in s.node.all_input_nodes:
            last_use[a] = i
    out_args = plan.graph_output.all_input_nodes if plan.graph_output is not None else []
    for a in out_args:
        last_use[a] = len(steps)
    keep_count: dict[fx.Node, int] = {}
    for s in steps:
        s.extra["needs"] = _needs(s)
        for n in s.extra["needs"]:
            keep_count[n] = keep_count.get(n, 0) + 1
    keep_count[plan.output_node] = keep_count.get(plan.output_node, 0) + 1
    env: dict = dict(plan.consts)
    env[plan.input_node] = x
    meta: dict = {}
    with torch.no_grad():
        for i, s in enumerate(steps):
            if s.kind == "input":
                continue
            try:
                value = s.run(env)
            except Exception as exc:  # noqa: BLE001 - re-raised with the place it happened
                raise GraphRunError(s, exc) from exc
            env[s.node] = value
            if record is not None:
                record[s.name] = value
            _refine(s, env, value)
            if s.kind == "meta":
                meta[s.node] = value
            if s.kind == "reshape":
                s.extra["in_shape"] = env[s.inputs[0]].shape
            for a in s.node.all_input_nodes:
                if last_use.get(a) == i and a not in plan.consts and keep_count.get(a, 0) == 0 and record is None:
                    env.pop(a, None)
    out = env[plan.output_node]
    full = fx.node.map_arg(plan.graph_output.args[0], lambda n: env[n]) if plan.graph_output is not None else out
    kept = {n: env[n] for n in keep_count if n in env}
    kept["__count__"] = keep_count
    kept["__consts__"] = plan.consts
    kept["__meta__"] = meta
    kept["__input__"] = x
    return kept, out, full


def _reduce_to(r: Tensor, shape: torch.Size) -> Tensor:
    """Sum ``r`` over broadcast dimensions so it has ``shape``."""
    if r.shape == shape:
        return r
    while r.dim() > len(shape):
        r = r.sum(0)
    dims = [d for d, (a, b) in enumerate(zip(r.shape, shape)) if b == 1 and a != 1]
    return r.sum(dims, keepdim=True) if dims else r


def _vjp(fn: Callable, inputs: list[Tensor], grads: Any) -> tuple:
    with torch.enable_grad():
        xs = [t.detach().requires_grad_(True) for t in inputs]
        out = fn(xs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if isinstance(grads, dict):
            pairs = [(o, grads[i]) for i, o in enumerate(outs) if i in grads]
        else:
            pairs = [(outs[0], grads)]
        pairs = [(o, g) for o, g in pairs if isinstance(o, Tensor) and o.requires_grad]
        if not pairs:
            return tuple(torch.zeros_like(t) for t in inputs)
        res = torch.autograd.grad([p[0] for p in pairs], xs, [p[1] for p in pairs], allow_unused=True)
    return tuple(torch.zeros_like(t) if g is None else g for t, g in zip(inputs, res))


def _rerun(step: Step, kept: dict, tensor_inputs: list) -> Callable:
    """The step's forward as a function of its tensor inputs (others from constants and sizes)."""
    def fn(xs):
        env = dict(kept["__consts__"])
        env.update(kept["__meta__"])
        env.update(zip(tensor_inputs, xs))
        return step.run(env)
    return fn


def backward(plan: Plan, kept: dict, seed: Tensor, stabilizer: float,
             layer_filter: Optional[Callable[[Tensor], Tensor]] = None) -> tuple[Tensor, "OrderedDict[str, Tensor]"]:
    """Propagate ``seed`` (relevance of the effective output) to the input; returns it and layer totals."""
    counts: dict = kept.pop("__count__")
    rel: dict[fx.Node, Any] = {plan.output_node: seed}
    totals: "OrderedDict[str, Tensor]" = OrderedDict()
    start = next(i for i, s in enumerate(plan.steps) if s.node is plan.output_node)

    def release(step):
        for n in step.extra.get("needs", ()):
            counts[n] -= 1
            if counts[n] == 0:
                kept.pop(n, None)

    def give(node: fx.Node, r: Tensor) -> None:
        # every relevance tensor has exactly one owner (the entry it was given to), so sums accumulate in place
        have = rel.get(node)
        if have is None:
            rel[node] = r
        elif isinstance(have, Tensor) and have.shape == r.shape and have.dtype == r.dtype:
            have.add_(r)
        else:
            rel[node] = have + r

    for step in reversed(plan.steps[:start + 1]):
        node = step.node
        if node not in rel:
            release(step)
            continue
        r = rel.pop(node)
        kind = step.kind
        if kind == "meta":
            continue
        if isinstance(r, Tensor) and kind in ("linear", "add", "sub", "zrule") or node is plan.output_node:
            totals[node.name] = r.flatten(1).sum(1)
        if kind == "input":
            rel[node] = r
            break
        if kind == "linear":
            x = kept[step.inputs[0]]
            z = kept.get(node) if getattr(step.rule, "needs_output", False) else None
            r_in = step.rule.relevance(step.layer, x, z, r, step.extra.pop("pre", None))
            if layer_filter is not None:
                r_in = layer_filter(r_in)
            give(step.inputs[0], r_in)
        elif kind in ("pass", "batchnorm", "passthrough"):
            r = r.get(0) if isinstance(r, dict) else r
            if r is not None:
                give(step.extra["tensor_inputs"][0], r)
        elif kind == "reshape":
            give(step.inputs[0], r.reshape(step.extra["in_shape"]))
        elif kind == "tuple_get":
            src, idx = step.node.args[0], step.node.args[1]
            slot = rel.setdefault(src, {})
            slot[idx] = slot[idx] + r if idx in slot else r
        elif kind in ("grad", "passthrough_grad"):
            tin = step.extra["tensor_inputs"]
            xs = [kept[n] for n in tin]
            grads = _vjp(_rerun(step, kept, tin), xs, r)
            for n, g in zip(tin, grads):
                give(n, g)
        elif kind == "zrule":
            x, z = kept[step.inputs[0]], kept[node]
            s = divide(r, z, stabilizer)
            (g,) = _vjp(_rerun(step, kept, [step.inputs[0]]), [x], s)
            give(step.inputs[0], x * g)
        elif kind in ("add", "sub"):
            _split_sum(step, kept, r, stabilizer, give)
        else:
            raise UnsupportedOperatorError(f"internal: no handler for kind {kind!r} at node '{node.name}'")
        release(step)
    r_input = rel.get(plan.input_node)
    if r_input is None:
        r_input = torch.zeros_like(kept["__input__"])
    return r_input, totals


def _split_sum(step: Step, kept: dict, r: Tensor, stabilizer: float, give: Callable) -> None:
    """Relevance of ``a + alpha * b`` (or ``a - alpha * b``) shared in proportion to each term."""
    node = step.node
    args = list(node.args)
    alpha = node.kwargs.get("alpha", 1)
    if len(args) > 2 and not isinstance(args[2], (fx.Node,)):
        alpha = args[2]
    terms = []
    for k, a in enumerate(args[:2]):
        sign = 1.0 if k == 0 else (-alpha if step.kind == "sub" else alpha)
        if isinstance(a, fx.Node) and a in kept:
            terms.append((a, kept[a], sign))
        elif isinstance(a, fx.Node):
            terms.append((None, kept["__consts__"].get(a, kept["__meta__"].get(a)), sign))
        else:
            terms.append((None, a, sign))
    z = None
    for _, value, sign in terms:
        term = value if sign == 1 else value * sign
        z = term if z is None else z + term
    s = divide(r, z, stabilizer)
    del z
    for a, value, sign in terms:
        if a is None:
            continue
        contrib = s * value
        if sign != 1:
            contrib.mul_(sign)
        give(a, _reduce_to(contrib, value.shape))
