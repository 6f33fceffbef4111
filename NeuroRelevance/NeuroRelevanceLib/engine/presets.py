"""Presets (composites): which rule each linear layer gets, plus per-layer overrides.

| preset              | conv / conv-transpose | dense      | layer(s) on the input            |
|---------------------|-----------------------|------------|----------------------------------|
| ``epsilon-plus``    | ZPlus                 | Epsilon(ε) | as the layer type                |
| ``epsilon-gamma-box``| Gamma(γ)             | Epsilon(ε) | ZBox(low, high)                  |
| ``deep-taylor``     | ZPlus                 | ZPlus      | ZBox(low, high) if bounds given, else WSquare |
| ``alpha1-beta0``    | AlphaBeta(1, 0)       | AlphaBeta(1, 0) | as the layer type           |
| ``alpha2-beta1``    | AlphaBeta(2, 1)       | AlphaBeta(2, 1) | as the layer type           |
| ``epsilon``         | Epsilon(ε)            | Epsilon(ε) | as the layer type (= ``None``, by name, so a card can recommend it) |
| ``None``            | Epsilon(ε)            | Epsilon(ε) | as the layer type                |

Graph-aware presets (``GRAPH_PRESETS``) decide per layer from the operator graph (``rectified.py``):
a conv/dense layer whose output reaches a ReLU on every path gets the rule of the base preset; one
whose output feeds a sum, a concatenation, a product, another layer or the model's output directly
(shortcuts, branch ends, upsamplers, heads) gets ``Epsilon(ε)``, which conserves there where z⁺/αβ
drop the relevance of negative pre-activations:

| preset                  | output rectified               | output not rectified | input layer |
|-------------------------|--------------------------------|----------------------|-------------|
| ``graph-epsilon-plus``  | ZPlus (dense: Epsilon(ε))      | Epsilon(ε)           | as its output |
| ``graph-deep-taylor``   | ZPlus                          | Epsilon(ε)           | ZBox / WSquare as ``deep-taylor`` |
| ``graph-alpha1-beta0``  | AlphaBeta(1, 0)                | Epsilon(ε)           | as its output |

Override keys in ``rules=``, most specific first: qualified module name (``"features.3"``), a
container's name (``"layer4"``: every layer inside it), ``"input"`` (layers consuming the model
input), module type (``nn.Conv3d``), ``"*"`` (every layer).
"""
from __future__ import annotations

from typing import Any, Optional

from ..errors import InputError
from .rules import AlphaBeta, Epsilon, Gamma, Rule, WSquare, ZBox, ZPlus, make_rule

#: graph-aware preset -> the base preset used on layers with a rectified output
GRAPH_PRESETS = {"graph-epsilon-plus": "epsilon-plus", "graph-deep-taylor": "deep-taylor",
                 "graph-alpha1-beta0": "alpha1-beta0"}
PRESETS = ("epsilon-plus", "epsilon-gamma-box", "deep-taylor", "alpha1-beta0", "alpha2-beta1",
           *GRAPH_PRESETS, "epsilon")


def preset_rule(preset: Optional[str], layer_kind: str, consumes_input: bool, epsilon: float, gamma: float,
                low: Any, high: Any, bounds_given: bool, stabilizer: float = 1e-6,
                rectified: bool = True) -> Rule:
    """The rule ``preset`` assigns to a layer of ``layer_kind`` (``conv``, ``convT`` or ``dense``).

    ``stabilizer`` is the constant of every rule that has one other than ε (z⁺, αβ, γ, w², zB).
    ``rectified``: whether the layer's output reaches a ReLU on every path (graph-aware presets only)."""
    dense = layer_kind == "dense"
    st = stabilizer
    if preset in GRAPH_PRESETS:
        base = GRAPH_PRESETS[preset]
        if rectified or (base == "deep-taylor" and consumes_input):
            return preset_rule(base, layer_kind, consumes_input, epsilon, gamma, low, high, bounds_given, st)
        return Epsilon(epsilon)
    if preset is None or preset == "epsilon":
        return Epsilon(epsilon)
    if preset == "epsilon-plus":
        return Epsilon(epsilon) if dense else ZPlus(st)
    if preset == "epsilon-gamma-box":
        if consumes_input:
            return ZBox(low, high, st)
        return Epsilon(epsilon) if dense else Gamma(gamma, st)
    if preset == "deep-taylor":
        if consumes_input:
            return ZBox(low, high, st) if bounds_given else WSquare(st)
        return ZPlus(st)
    if preset == "alpha1-beta0":
        return AlphaBeta(1.0, 0.0, st)
    if preset == "alpha2-beta1":
        return AlphaBeta(2.0, 1.0, st)
    raise ValueError(f"Unknown preset {preset!r}; use one of {', '.join(PRESETS)} or None.")


def _type_matches(key: Any, module_type: Any) -> bool:
    if module_type is None or not isinstance(key, type):
        return False
    if isinstance(module_type, type):
        return issubclass(module_type, key)
    return key.__name__ == str(module_type)


def override_rule(rules: Optional[dict], module_path: str, node_name: str, module_type: Any,
                  consumes_input: bool, exact_only: bool = False, **defaults: float) -> Optional[Rule]:
    """The user's rule for this layer, or None when ``rules`` has no matching key.

    ``exact_only``: only the layer's own name or type count (no container, ``"input"`` or ``"*"``).
    ``defaults`` (epsilon, gamma, stabilizer) parametrise rules given by name."""
    if not rules:
        return None
    for key in (module_path, node_name):
        if key and key in rules:
            return make_rule(rules[key], **defaults)
    prefixes = [k for k in rules if isinstance(k, str) and module_path.startswith(k + ".")]
    if prefixes and not exact_only:  # a container ("layer4") covers every layer inside it; the deepest one wins
        return make_rule(rules[max(prefixes, key=len)], **defaults)
    if consumes_input and "input" in rules and not exact_only:
        return make_rule(rules["input"], **defaults)
    for key, value in rules.items():
        if _type_matches(key, module_type):
            return make_rule(value, **defaults)
    if "*" in rules and not exact_only:
        return make_rule(rules["*"], **defaults)
    return None


def check_rule_keys(rules: Optional[dict], known_names: set) -> None:
    """Fail early on a rule key that names no layer (a typo would otherwise be silently ignored)."""
    for key in rules or {}:
        if isinstance(key, str) and key not in ("*", "input") and key not in known_names and not any(
                name.startswith(key + ".") for name in known_names):
            close = sorted(known_names)[:8]
            raise InputError(f"rules key {key!r} names no conv/dense layer of the model; layer names are e.g. "
                             f"{close}. Use a qualified module name, a module type, '*' or 'input'.")
        if not isinstance(key, (str, type)):
            raise InputError(f"rules key {key!r} must be a module name, a module type, '*' or 'input'.")
