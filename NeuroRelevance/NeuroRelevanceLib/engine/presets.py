"""Presets (composites): the one registry of named rule choices, plus per-layer overrides.

Every front end reads ``PRESETS`` / ``PRESET_REGISTRY`` from here: the Slicer panel and its combo box
(``panel.py``), the web page, the model-card schema, provenance records and the command lines. This
module imports no torch (the Slicer module and card parsing load it before torch is installed);
rules are named (``rules.RULE_NAMES``) and built when a run asks for them.

| preset              | conv / conv-transpose | dense      | layer(s) on the input            |
|---------------------|-----------------------|------------|----------------------------------|
| ``epsilon-plus``    | ZPlus                 | Epsilon(ε) | as the layer type                |
| ``epsilon-gamma-box``| Gamma(γ)             | Epsilon(ε) | ZBox(low, high)                  |
| ``deep-taylor``     | ZPlus                 | ZPlus      | ZBox(low, high) if bounds given, else WSquare |
| ``alpha1-beta0``    | AlphaBeta(1, 0)       | AlphaBeta(1, 0) | as the layer type           |
| ``alpha2-beta1``    | AlphaBeta(2, 1)       | AlphaBeta(2, 1) | as the layer type           |
| ``epsilon``         | Epsilon(ε)            | Epsilon(ε) | as the layer type (= ``None``)   |
| ``None``            | Epsilon(ε)            | Epsilon(ε) | as the layer type                |

``epsilon`` is ``None`` with a name, so that a model card can recommend it.

Graph-aware presets (``GraphPreset``) decide per layer from the operator graph (``rectified.py``):
a conv/dense layer whose output reaches a ReLU on every path (also through a positive-scale BatchNorm or
Group/Instance/LayerNorm) gets the rule of the base preset; so does one whose relevance comes through a
pass-through norm without reaching a ReLU (ε would divide by the un-normalised output); one whose output
feeds a sum, a concatenation, a product, another layer, a non-rectifying activation or the model's output
directly (shortcuts, branch ends, upsamplers, heads) gets ``Epsilon(ε)``, which conserves there where z⁺/αβ
drop the relevance of negative pre-activations; a norm with a negative scale on the way to a ReLU is refused,
naming every such layer and one ``rules=`` dict with the base rule for them all (``GraphPreset.check``):

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

import threading
from dataclasses import dataclass
from typing import Any, overload

from ..errors import InputError


@dataclass(frozen=True)
class RuleParams:
    """The rule parameters of one run (``explain``'s options)."""

    epsilon: float = 1e-6
    gamma: float = 0.25
    stabilizer: float = 1e-6
    low: Any = None
    high: Any = None
    bounds_given: bool = False


@dataclass(frozen=True)
class Preset:
    """A named composite: the rule for each kind of layer, by rule name (``rules.RULE_NAMES``).

    ``first``: the rule of layers that consume the model input (None: as their type);
    ``first_with_bounds``: used instead when the caller gave both zB bounds (``low``/``high``).
    ``parameters``: the rule parameters a run records for this preset (α, β, ε, γ);
    ``alpha``: α of an αβ preset (the panel's α field starts there; β = α − 1).
    A subclass may look at the graph: ``prepare(plan)`` runs once per explained graph and its result is
    handed to ``choose`` and ``note`` (the text a run's ``rules`` entry adds for the layer).
    """

    name: str
    summary: str
    conv: str
    dense: str
    first: str | None = None
    first_with_bounds: str | None = None
    parameters: tuple[str, ...] = ()
    alpha: float | None = None

    def rule_name(self, layer_kind: str, consumes_input: bool, bounds_given: bool = False) -> str:
        """The rule name for a layer of ``layer_kind`` (``conv``, ``convT``, ``dense``, ``affine``)."""
        if consumes_input and bounds_given and self.first_with_bounds:
            return self.first_with_bounds
        if consumes_input and self.first:
            return self.first
        return self.dense if layer_kind in ("dense", "map") else self.conv

    def prepare(self, plan: Any) -> Any:
        """What ``choose`` needs to know about the whole graph (``graph.Plan``), computed once per run."""
        return None

    def note(self, op: Any, context: Any = None) -> str:
        """Why ``op`` got its rule, shown in ``Explanation.rules`` (empty: nothing beyond the preset)."""
        return ""

    def check(self, ops: list, params: RuleParams, context: Any = None) -> None:
        """Refuse, in one ``InputError`` naming them all, the layers among ``ops`` (those the preset chooses for:
        none named in ``rules=``) it cannot choose a rule for; nothing by default."""

    def choose(self, op: Any, params: RuleParams, context: Any = None) -> Any:
        """The rule object for the linear operator ``op`` (``op.layer.kind``, ``op.consumes_input``);
        ``context``: what ``prepare`` returned (None where the graph is not consulted)."""
        from .rules import make_rule

        return make_rule(self.rule_name(op.layer.kind, op.consumes_input, params.bounds_given), params.epsilon,
                         params.gamma, params.stabilizer)


@dataclass(frozen=True)
class GraphPreset(Preset):
    """A graph-aware preset: the rules of preset ``base`` on layers whose output is rectified (reaches a ReLU
    on every path, ``rectified.py``) or normalised (a pass-through norm on the way: ε would divide by the
    un-normalised output), ε on layers whose output feeds a sum, a concatenation, a product, another layer, a
    non-rectifying activation or the model's output, where z⁺/αβ would drop the relevance of negative
    pre-activations; an ``InputError`` for the layers whose output reaches a ReLU through a norm with a negative
    scale (``check``: all of them at once). A ``deep-taylor``
    base keeps its input rule (zB / w²) on the input layer either way."""

    base: str = "epsilon-plus"

    def prepare(self, plan: Any) -> Any:
        from .rectified import rectified_layers

        return rectified_layers(plan)

    def note(self, op: Any, context: Any = None) -> str:
        if not context or op.node not in context:
            return ""
        return f" ({context[op.node].reason})"   # a ``rectified.Verdict``

    def check(self, ops: list, params: RuleParams, context: Any = None) -> None:
        """Refuse every layer of ``ops`` whose output reaches a ReLU through a norm with a negative scale (and would
        get the base rule): one error, with one ``rules=`` dict covering them all."""
        base = get_preset(self.base)
        rules = {op: base.rule_name(op.layer.kind, op.consumes_input, params.bounds_given) for op in ops
                 if context and op.node in context and context[op.node].negative}
        refused = [op for op, rule in rules.items() if _rule_key(rule) != "epsilon"]   # ε: sign-indifferent
        if not refused:
            return
        names = {op: op.module_path or op.name for op in refused}
        fix = {names[op]: rules[op] for op in refused}
        which = "; ".join(f"'{names[op]}' (its {context[op.node].reason})" for op in refused[:8])
        raise InputError(
            f"Preset '{self.name}' cannot choose a rule for {len(refused)} layer(s) whose output reaches a ReLU "
            f"through a norm with a negative scale γ: {which}{' …' if len(refused) > 8 else ''}. In those channels "
            "the ReLU fires where the layer's output falls, so z⁺'s (and αβ's) Deep Taylor argument no longer "
            "holds: they credit the inputs that raise the output. ε is no way out: it would divide the norm's "
            "relevance by the un-normalised output. To accept the base rule anyway (it redistributes what arrives "
            f"without inflating it), call explain(..., rules={fix!r}), or use preset '{self.base}', which applies "
            "it everywhere without consulting the graph (no ε then where layers feed sums).")

    def choose(self, op: Any, params: RuleParams, context: Any = None) -> Any:
        verdict = None if context is None else context.get(op.node)
        if verdict is not None and verdict.negative:
            self.check([op], params, context)   # refuses unless the base rule is ε
        if verdict is None or verdict.rectified or verdict.normalised or (self.base == "deep-taylor" and
                                                                          op.consumes_input):
            return get_preset(self.base).choose(op, params)
        from .rules import Epsilon

        return Epsilon(params.epsilon)


_LOCK = threading.Lock()
PRESET_REGISTRY: dict[str, Preset] = {}
#: the registered preset names in display order (kept in step with ``PRESET_REGISTRY``)
PRESETS: tuple[str, ...] = ()


def register_preset(preset: Preset, *, replace: bool = False) -> Preset:
    """Add a preset; every front end offers it from then on (they read the registry on each access).
    Slicer's preset combo box is built when the module loads: register before that (e.g. in ``.slicerrc.py``)
    to see the preset there.

    Refused (ValueError, nothing registered): a name already registered, unless ``replace=True`` (runs and
    records name the preset, so a silent redefinition would make them lie); an empty name or "None" (ε by
    ``preset=None``); a rule name that ``rules.make_rule`` does not know (``rules.RULE_NAMES``, with
    ``register_rule``'s additions); a ``GraphPreset`` whose ``base`` is not registered.
    """
    _check_new_preset(preset, replace)
    _add(preset)
    return preset


def _check_new_preset(preset: Preset, replace: bool) -> None:
    if not isinstance(preset, Preset):
        raise TypeError(f"register_preset takes a Preset, not {preset!r}.")
    name = preset.name
    if not isinstance(name, str) or not name.strip() or name.strip().lower() == "none":
        raise ValueError(f"A preset needs a name (non-empty text other than 'None', which means ε by "
                         f"preset=None), not {name!r}.")
    if name in PRESET_REGISTRY and not replace:
        raise ValueError(f"Preset '{name}' is already registered ({PRESET_REGISTRY[name].summary}); runs and their "
                         "records name presets, so choose another name, or pass replace=True to redefine it.")
    known = _rule_keys()
    for field in ("conv", "dense", "first", "first_with_bounds"):
        rule = getattr(preset, field)
        if rule is None and field in ("first", "first_with_bounds"):
            continue
        if not isinstance(rule, str) or (known is not None and _rule_key(rule) not in known):
            raise ValueError(f"Preset '{name}': unknown rule {rule!r} for {field}; use one of "
                             f"{', '.join(known or ())} (or add one with rules.register_rule first).")
    base = getattr(preset, "base", None)
    if isinstance(preset, GraphPreset) and base not in PRESET_REGISTRY:
        raise ValueError(f"Graph preset '{name}': base preset {base!r} is not registered; use one of "
                         f"{', '.join(PRESET_REGISTRY)}.")


def _rule_key(name: str) -> str:
    """A rule name as ``rules.make_rule`` reads it (case, '-' and '_' ignored, 'ε' = 'epsilon')."""
    return name.lower().replace("-", "").replace("_", "").replace("ε", "epsilon")


def _rule_keys() -> tuple[str, ...] | None:
    """The rule names runs can build (``rules.RULE_NAMES``); None where torch is not installed yet (Slicer before
    its first run): the names are then checked when a run builds the rules."""
    try:
        from . import rules
    except ImportError:
        return None
    return tuple(rules.RULE_NAMES)


def _add(preset: Preset) -> None:
    global PRESETS
    with _LOCK:
        PRESET_REGISTRY[preset.name] = preset
        PRESETS = tuple(PRESET_REGISTRY)


def unregister_preset(name: str) -> None:
    """Remove a preset added with ``register_preset`` (no error if it is not registered)."""
    global PRESETS
    with _LOCK:
        PRESET_REGISTRY.pop(name, None)
        PRESETS = tuple(PRESET_REGISTRY)


@overload
def get_preset(name: str) -> Preset: ...
@overload
def get_preset(name: None) -> None: ...
@overload
def get_preset(name: str | None) -> Preset | None: ...
def get_preset(name: str | None) -> Preset | None:
    """The registered preset called ``name`` (None for ``None``); a clear error for an unknown name."""
    if name is None:
        return None
    preset = PRESET_REGISTRY.get(name) if isinstance(name, str) else None
    if preset is None:
        raise ValueError(f"Unknown preset {name!r}; use one of {', '.join(PRESET_REGISTRY)} or None.")
    return preset


def preset_alpha() -> dict[str, float]:
    """α of the αβ presets, by name."""
    return {p.name: p.alpha for p in PRESET_REGISTRY.values() if p.alpha is not None}


def preset_parameters() -> dict[str, tuple[str, ...]]:
    """The rule parameters each preset records (provenance), by name."""
    return {p.name: p.parameters for p in PRESET_REGISTRY.values()}


for _p in (
        Preset("epsilon-plus", "z⁺ on convolutions, ε on dense layers", "zplus", "epsilon",
               parameters=("epsilon",)),
        Preset("epsilon-gamma-box", "γ on convolutions, ε on dense layers, zB on the input", "gamma", "epsilon",
               first="zbox", parameters=("epsilon", "gamma")),
        Preset("deep-taylor", "z⁺ everywhere; zB on the input if bounds are given, else w² (Deep Taylor paper)",
               "zplus", "zplus", first="wsquare", first_with_bounds="zbox"),
        Preset("alpha1-beta0", "α1β0 on every layer (Böhle et al.)", "alpha1beta0", "alpha1beta0",
               parameters=("alpha", "beta"), alpha=1.0),
        Preset("alpha2-beta1", "α2β1 on every layer", "alpha2beta1", "alpha2beta1", parameters=("alpha", "beta"),
               alpha=2.0),
        GraphPreset("graph-epsilon-plus", "z⁺ where a layer's output is rectified or normalised, ε where it feeds "
                    "a sum, concatenation or the output directly", "zplus", "epsilon", parameters=("epsilon",),
                    base="epsilon-plus"),
        GraphPreset("graph-deep-taylor", "deep-taylor where a layer's output is rectified or normalised, ε where it "
                    "feeds a sum, concatenation or the output directly", "zplus", "zplus", first="wsquare",
                    first_with_bounds="zbox", parameters=("epsilon",), base="deep-taylor"),
        GraphPreset("graph-alpha1-beta0", "α1β0 where a layer's output is rectified or normalised, ε where it feeds "
                    "a sum, concatenation or the output directly", "alpha1beta0", "alpha1beta0",
                    parameters=("epsilon",), base="alpha1-beta0"),
        Preset("epsilon", "ε on every layer (= None, by name, so a card can recommend it)", "epsilon", "epsilon",
               parameters=("epsilon",))):
    _add(_p)   # the built-ins (their rule names are checked by the tests; this module loads without torch)


def preset_rule(preset: str | None, op: Any, params: RuleParams, context: Any = None) -> Any:
    """The rule ``preset`` gives the linear operator ``op`` (ε everywhere for ``None``); ``context``: what the
    preset's ``prepare`` returned for this graph."""
    found = get_preset(preset)
    if found is None:
        from .rules import Epsilon

        return Epsilon(params.epsilon)
    return found.choose(op, params, context)


def _type_matches(key: Any, module_type: Any) -> bool:
    if module_type is None or not isinstance(key, type):
        return False
    if isinstance(module_type, type):
        return issubclass(module_type, key)
    return key.__name__ == str(module_type)


def override_rule(rules: dict | None, module_path: str, node_name: str, module_type: Any,
                  consumes_input: bool, exact_only: bool = False, **defaults: float) -> Any | None:
    """The user's rule for this layer, or None when ``rules`` has no matching key.

    ``exact_only``: only the layer's own name or type count (no container, ``"input"`` or ``"*"``).
    ``defaults`` (epsilon, gamma, stabilizer) parametrise rules given by name."""
    if not rules:
        return None
    from .rules import make_rule

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


def check_rule_keys(rules: dict | None, known_names: set, shown: set | None = None) -> None:
    """Fail early on a rule key that names no layer (a typo would otherwise be silently ignored).

    ``known_names``: every accepted key; ``shown``: the names offered in the message (the user-visible layer
    names, not internal graph node names); all of ``known_names`` when not given."""
    visible = sorted(shown if shown else known_names)
    for key in rules or {}:
        if isinstance(key, str) and key not in ("*", "input") and key not in known_names and not any(
                name.startswith(key + ".") for name in known_names):
            import difflib
            close = difflib.get_close_matches(key, visible, n=3, cutoff=0.6)
            hint = f"did you mean {close}? " if close else ""
            raise InputError(f"rules key {key!r} names no conv/dense layer of the model; {hint}layer names are "
                             f"e.g. {visible[:8]}. Use a qualified module name, a module type, '*' or 'input'.")
        if not isinstance(key, (str, type)):
            raise InputError(f"rules key {key!r} must be a module name, a module type, '*' or 'input'.")
