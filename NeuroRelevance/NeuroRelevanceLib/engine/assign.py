"""Give every linear step of a plan its rule (preset + per-layer overrides) and mark pass-through ops.

A BatchNorm that could not be folded is a per-channel affine layer (``graph._affine_batchnorms``); it
takes the rule of its nearest conv/dense neighbour (downstream first, through activations, pooling,
concatenation …; else upstream), unless ``rules=`` names the BatchNorm itself (its name or type).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Optional


from .graph import Plan, Step
from .presets import GRAPH_PRESETS, check_rule_keys, override_rule, preset_rule
from .rectified import rectified_layers
from .rules import Rule, ZBox


@dataclass
class RuleOptions:
    """What ``explain`` was asked for, as far as rules are concerned."""

    preset: Optional[str]
    rules: Optional[dict]
    epsilon: float
    gamma: float
    stabilizer: float
    low: Any
    high: Any
    bounds_given: bool
    pass_through: set


def _type_name(step: Step) -> str:
    return getattr(step.module_type, "__name__", None) or str(step.module_type or step.label)


def _names(step: Step) -> set:
    names = {step.label, step.label.split(".")[-1], step.name, step.module_path, _type_name(step)}
    if step.node.meta.get("inplace_of"):
        names.add(step.node.meta["inplace_of"])
    return names


def _neighbour(step: Step, by_node: dict) -> Optional[Step]:
    """The nearest conv/dense step reachable downstream (else upstream) without crossing another one."""
    for direction in ("down", "up"):
        queue, seen = deque([step.node]), {step.node}
        while queue:
            node = queue.popleft()
            nxt = list(node.users) if direction == "down" else list(by_node[node].inputs if node in by_node else [])
            for other in nxt:
                if other in seen or other not in by_node:
                    continue
                seen.add(other)
                s = by_node[other]
                if s.kind == "linear" and not s.extra.get("affine"):
                    return s
                if s.kind != "linear":
                    queue.append(other)
    return None


def _fill_bounds(rule: Rule, opts: RuleOptions) -> Rule:
    if isinstance(rule, ZBox) and (rule.low is None or rule.high is None):
        return ZBox(opts.low if rule.low is None else rule.low, opts.high if rule.high is None else rule.high,
                    rule.stabilizer)
    return rule


def assign_rules(plan: Plan, opts: RuleOptions) -> dict[str, str]:
    """Set ``step.rule`` on every linear step and mark pass-through steps; returns layer -> rule used."""
    linear = [s for s in plan.steps if s.kind == "linear"]
    names = {s.module_path or s.name for s in linear} | {s.name for s in linear}
    check_rule_keys(opts.rules, names)
    defaults = dict(epsilon=opts.epsilon, gamma=opts.gamma, stabilizer=opts.stabilizer)
    for step in plan.steps:
        if step.kind in ("unknown", "scale") and opts.pass_through & _names(step):
            step.kind = "passthrough_grad"
    used: dict[str, str] = {}
    by_node = {s.node: s for s in plan.steps}
    rectified = rectified_layers(plan) if opts.preset in GRAPH_PRESETS else {}
    for step in linear:
        if step.extra.get("affine"):
            continue
        rule = override_rule(opts.rules, step.module_path, step.name, step.module_type, step.consumes_input,
                             **defaults)
        note = ""
        if rule is None:
            rule = preset_rule(opts.preset, step.layer.kind, step.consumes_input, opts.epsilon, opts.gamma,
                               opts.low, opts.high, opts.bounds_given, opts.stabilizer,
                               rectified.get(step.node, True))
            if rectified:
                note = " (output rectified)" if rectified[step.node] else " (output feeds a sum, concatenation or output)"
        _set(step, _fill_bounds(rule, opts), used, note)
    for step in linear:
        if not step.extra.get("affine"):
            continue
        rule = override_rule(opts.rules, step.module_path, step.name, step.module_type, step.consumes_input,
                             exact_only=True, **defaults)
        how = "per-channel affine"
        if rule is None:
            near = _neighbour(step, by_node)
            if near is not None:
                rule = near.rule
                how += f", rule of '{near.module_path or near.name}'"
            else:
                rule = preset_rule(opts.preset, "conv", step.consumes_input, opts.epsilon, opts.gamma, opts.low,
                                   opts.high, opts.bounds_given, opts.stabilizer)
        _set(step, _fill_bounds(rule, opts), used, f" ({how})")
    return used


def _set(step: Step, rule: Rule, used: dict, note: str) -> None:
    step.rule = rule
    step.layer.set_companions(rule.companions(step.layer))
    label = step.module_path or step.name
    folded = f" + folded {', '.join(step.layer.folded)}" if step.layer.folded else ""
    used[label if label not in used else f"{label} ({step.name})"] = f"{_type_name(step)}{folded}{note}: " \
                                                                     f"{rule.describe()}"

