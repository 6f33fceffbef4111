"""Give every linear operator of a plan its rule (preset + per-layer overrides) and mark pass-through ops.

A BatchNorm that could not be folded is a per-channel affine layer (``canonizers.py``); it takes the
rule of its nearest conv/dense neighbour (downstream first, through activations, pooling,
concatenation …; else upstream), unless ``rules=`` names the BatchNorm itself (its name or type).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .graph import Plan
from .operators import Linear, Op, PassThroughGrad, Scale, Strip, Unknown
from .presets import RuleParams, check_rule_keys, get_preset, override_rule, preset_rule
from .rules import Rule, ZBox


@dataclass
class RuleOptions:
    """What ``explain`` was asked for, as far as rules are concerned."""

    preset: str | None
    rules: dict | None
    epsilon: float
    gamma: float
    stabilizer: float
    low: Any
    high: Any
    bounds_given: bool
    pass_through: set

    @property
    def params(self) -> RuleParams:
        return RuleParams(self.epsilon, self.gamma, self.stabilizer, self.low, self.high, self.bounds_given)


def _type_name(op: Op) -> str:
    return getattr(op.module_type, "__name__", None) or str(op.module_type or op.label)


#: names of one operation that differ by graph format (``operator.truediv`` in fx, ``aten.div`` exported)
_ALIASES = [{"truediv", "div", "__truediv__"}, {"matmul", "mm", "bmm", "__matmul__"}, {"cat", "concat", "concatenate"},
            {"mul", "__mul__"}, {"add", "__add__"}, {"sub", "__sub__"}]


def _names(op: Op) -> set:
    names = {op.label, op.label.split(".")[-1], op.name, op.module_path, _type_name(op)}
    if op.node.meta.get("inplace_of"):
        names.add(op.node.meta["inplace_of"])
    for group in _ALIASES:
        if names & group:
            names |= group
    return names


def check_pass_through_matched(plan: Plan, names: set) -> None:
    """Refuse ``pass_through`` names that match no operator of the explained graph (a typo would be ignored)."""
    known: set = set()
    for op in plan.steps:
        known |= {n for n in _names(op) if n}
    unknown = sorted(n for n in names if n not in known and not (n.endswith("_") and n[:-1] in known))
    if unknown:
        import difflib
        close = sorted({c for n in unknown for c in difflib.get_close_matches(n, sorted(known), n=3, cutoff=0.6)})
        hint = f" Close matches: {close}." if close else ""
        raise InputError(f"pass_through name(s) {unknown} match no operator or module of the model.{hint} Names "
                         "are operator names as in the engine's error messages (e.g. 'mul'), module names or types.")


def _neighbour(op: Linear, by_node: dict) -> Linear | None:
    """The nearest conv/dense operator reachable downstream (else upstream) without crossing another one."""
    for direction in ("down", "up"):
        queue, seen = deque([op.node]), {op.node}
        while queue:
            node = queue.popleft()
            nxt = list(node.users) if direction == "down" else list(by_node[node].inputs if node in by_node else [])
            for other in nxt:
                if other in seen or other not in by_node:
                    continue
                seen.add(other)
                s = by_node[other]
                if isinstance(s, Linear) and not s.affine:
                    return s
                if not isinstance(s, Linear):
                    queue.append(other)
    return None


def _fill_bounds(rule: Rule, opts: RuleOptions) -> Rule:
    if isinstance(rule, ZBox) and (rule.low is None or rule.high is None):
        return ZBox(opts.low if rule.low is None else rule.low, opts.high if rule.high is None else rule.high,
                    rule.stabilizer)
    return rule


def assign_rules(plan: Plan, opts: RuleOptions) -> dict[str, str]:
    """Give every linear operator its rule and mark pass-through operators; returns layer -> rule used."""
    linear = plan.linear()
    shown = {s.module_path or s.name for s in linear}
    check_rule_keys(opts.rules, shown | {s.name for s in linear}, shown)
    defaults = dict(epsilon=opts.epsilon, gamma=opts.gamma, stabilizer=opts.stabilizer)
    for i, op in enumerate(plan.steps):
        if type(op) in (Unknown, Scale, Strip) and opts.pass_through & _names(op):
            plan.steps[i] = op.become(PassThroughGrad)
    used: dict[str, str] = {}
    by_node = {s.node: s for s in plan.steps}
    params = opts.params
    preset = get_preset(opts.preset)
    context = preset.prepare(plan) if preset is not None else None
    layers = [op for op in linear if not op.affine]
    overrides = [override_rule(opts.rules, op.module_path, op.name, op.module_type, op.consumes_input, False,
                               **defaults) for op in layers]
    if preset is not None:   # one refusal for every layer the preset cannot choose for
        preset.check([op for op, rule in zip(layers, overrides, strict=True) if rule is None], params, context)
    for op, rule in zip(layers, overrides, strict=True):
        note = ""
        if rule is None:
            rule = preset_rule(opts.preset, op, params, context)
            note = preset.note(op, context) if preset is not None else ""
        _set(op, _fill_bounds(rule, opts), used, note)
    for op in linear:
        if not op.affine:
            continue
        rule = override_rule(opts.rules, op.module_path, op.name, op.module_type, op.consumes_input,
                             exact_only=True, **defaults)
        how = "per-channel affine"
        if rule is None:
            near = _neighbour(op, by_node)
            if near is not None:
                rule = near.rule
                how += f", rule of '{near.module_path or near.name}'"
            else:
                rule = preset_rule(opts.preset, op, params)
        _set(op, _fill_bounds(rule, opts), used, f" ({how})")
    return used


def _set(op: Linear, rule: Rule, used: dict, note: str) -> None:
    op.set_rule(rule)
    label = op.module_path or op.name
    folded = f" + folded {', '.join(op.layer.folded)}" if op.layer.folded else ""
    used[label if label not in used else f"{label} ({op.name})"] = f"{_type_name(op)}{folded}{note}: " \
                                                                   f"{rule.describe()}"
