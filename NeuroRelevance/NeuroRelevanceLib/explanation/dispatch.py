"""``explain(model, x, method=...)``: one entry point for LRP (the engine, unchanged) and every other method.

The one module that joins ``engine`` (LRP) and ``methods`` (the others); neither imports it
(``Testing/test_layering.py``). ``NeuroRelevanceLib.explain`` is this function.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..errors import InputError
from ..methods.gradcam import gradcam, gradcam_plus_plus, guided_gradcam
from ..methods.gradient import gradient, gradient_x_input, smoothgrad
from ..methods.guided_backprop import guided_backprop
from ..methods.integrated_gradients import integrated_gradients
from ..methods.options import choice, flag
from ..methods.summary import SUMMARY_NORMALISATIONS, check_weights, summary_of
from .filters import apply_filter, check_filter

Tensor = torch.Tensor

#: method name -> function (``lrp`` and ``summary`` are handled by ``explain`` itself)
FUNCTIONS: dict[str, Callable] = {
    "gradient": gradient, "gradient_x_input": gradient_x_input, "smoothgrad": smoothgrad,
    "integrated_gradients": integrated_gradients, "guided_backprop": guided_backprop, "gradcam": gradcam,
    "gradcam++": gradcam_plus_plus, "guided_gradcam": guided_gradcam,
}
METHODS = ("lrp",) + tuple(FUNCTIONS) + ("summary",)
ALIASES = {"saliency": "gradient", "input_x_gradient": "gradient_x_input", "ig": "integrated_gradients",
           "gbp": "guided_backprop", "grad_cam": "gradcam", "grad_cam++": "gradcam++", "gradcampp": "gradcam++",
           "gradcam_plus_plus": "gradcam++", "gradcam_pp": "gradcam++", "guided_grad_cam": "guided_gradcam"}
DEFAULT_SUMMARY = ("lrp", "guided_backprop", "gradcam++")   # the trio Kennedy et al. compared (docs/glossary.md)


def canonical(method: Any) -> str:
    """The canonical method name for ``method`` (case, '-' and ' ' ignored; a few aliases accepted)."""
    if not isinstance(method, str):
        raise InputError(f"method must be a string, one of {', '.join(METHODS)}; got {type(method).__name__}.")
    key = method.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise InputError(f"Unknown method {method!r}; use one of {', '.join(METHODS)}.")
    return key


def _call(func: Callable, name: str, model: Any, x: Tensor, target: Any, options: dict):
    options = dict(options)
    kind = options.pop("filter", None)
    value_range = options.pop("filter_range", (0.0, 1.0))
    placement = options.pop("filter_placement", "input")
    per_channel = flag("filter_per_channel", options.pop("filter_per_channel", False))
    accepted = [p for p in inspect.signature(func).parameters if p not in ("model", "x", "target")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(f"method {name!r} has no option {', '.join(map(repr, unknown))}; its options are "
                         f"{', '.join(accepted + ['filter', 'filter_range', 'filter_per_channel'])}.")
    try:
        check_filter(kind, value_range, placement)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if kind is not None and placement != "input":
        raise InputError(f"filter_placement='every-layer' filters LRP's propagation; method {name!r} can only be "
                         f"filtered at the input (filter_placement='input').")
    result = func(model, x, target, **options)
    if kind is not None:
        result.relevance = apply_filter(result.relevance, kind, value_range, per_channel)
        result.parameters["filter"] = f"{kind} {tuple(value_range)}{' per channel' if per_channel else ''}"
        result.rules["filter"] = result.parameters["filter"]
    return result


#: the preset of LRP (and a summary's LRP part) when none is given
DEFAULT_PRESET = "epsilon-plus"
_UNSET: Any = object()


def explain(model: Any, x: Tensor, method: str = "lrp", preset: str | None = _UNSET, target: Any = None,
            **options: Any):
    """Explain ``model`` at ``x`` with ``method``; returns an ``engine.Explanation`` (relevance shaped like x).

    ``method="lrp"``: ``engine.explain`` with ``preset`` and its options, unchanged. Other methods take their
    own options (see ``methods.<name>``); ``preset`` applies to LRP (and a summary's LRP part) only: another
    method given one refuses it (default: ``DEFAULT_PRESET`` for LRP). Tjoa et al.'s
    ``filter`` / ``filter_range`` / ``filter_per_channel`` apply to every method's map (at the input).
    ``method="summary"``: ``methods`` (default LRP, guided backprop, Grad-CAM++), ``weights``,
    ``normalisation`` ("rank" or "max-abs"), ``absolute``, ``method_options`` ({method: {option: value}}),
    and the shared ``mask``, ``device``, ``dtype``.
    """
    name = canonical(method)
    if name not in ("lrp", "summary") and preset is not _UNSET and preset is not None:
        raise InputError(f"preset={preset!r} has no effect with the method {name} (presets are compositions of "
                         "LRP rules); leave it out, or use method='lrp'.")
    preset = DEFAULT_PRESET if preset is _UNSET else preset
    if name == "lrp":
        from ..engine import explain as lrp_explain

        return lrp_explain(model, x, method="lrp", preset=preset, target=target, **options)
    if name == "summary":
        return _summary(model, x, preset, target, **options)
    return _call(FUNCTIONS[name], name, model, x, target, options)


#: the methods that read a layer through module hooks (not TorchScript or exported programs)
LAYER_METHODS = ("gradcam", "gradcam++", "guided_gradcam")


def check_format_runs(model: Any, method: str, methods: Sequence[str] | None = None) -> None:
    """Refuse, before any work, a ``method`` that ``model``'s format cannot run: the Grad-CAM family, or a summary
    (of ``methods``, default ``DEFAULT_SUMMARY``) that includes one, on TorchScript or an exported program.

    The refusal names the option as each front end spells it (``OptionError``), the methods that do run, and both
    routes to an ``nn.Module``: a card naming a NeuroRelevanceLib.nets architecture (the command line's route) and,
    for another class, loading the card as trusted from Python.
    """
    from ..methods.layers import layer_method_refusal
    from ..vocabulary import OptionError

    name = canonical(method)
    names = [canonical(m) for m in (methods or DEFAULT_SUMMARY)] if name == "summary" else [name]
    layered = [n for n in names if n in LAYER_METHODS]
    refusal = layer_method_refusal(model, layered[0]) if layered else None
    if refusal is None:
        return
    part = f" (a summary of {', '.join(names)})" if name == "summary" else ""
    raise OptionError(("method", name), f"{part}: {refusal} The command line never runs code from a model file: "
                      "there, Grad-CAM runs for a card naming a NeuroRelevanceLib.nets architecture with its "
                      "safetensors weights.")


def _summary(model: Any, x: Tensor, preset: str | None, target: Any, methods: Sequence[str] = DEFAULT_SUMMARY,
             weights: Sequence[float] | None = None, normalisation: str = "rank", absolute: bool = False,
             method_options: dict | None = None, **shared: Any):
    unknown = sorted(set(shared) - {"mask", "device", "dtype"})
    if unknown:
        raise InputError(f"method 'summary' has no option {', '.join(map(repr, unknown))}; pass per-method options "
                         f"as method_options={{'gradcam': {{'layer': ...}}}}.")
    if not isinstance(methods, (list, tuple)) or len(methods) == 0:
        raise InputError(f"methods must be a non-empty list of method names, e.g. ['lrp', 'guided_backprop', "
                         f"'gradcam++'], not {methods!r}.")
    names = [canonical(m) for m in methods]
    if "summary" in names:
        raise InputError("A summary cannot contain another summary method; list the methods themselves.")
    check_weights(weights, len(names))
    choice("normalisation", normalisation, SUMMARY_NORMALISATIONS)
    flag("absolute", absolute)
    per = _per_method(method_options, names)
    explanations = [explain(model, x, n, preset if n == "lrp" else None, target, **{**shared, **per.get(n, {})})
                    for n in names]
    return summary_of(explanations, weights, normalisation, absolute)


def _per_method(method_options: Any, names: list[str]) -> dict[str, dict]:
    """``method_options`` checked: {method in the summary: {option: value}}."""
    example = "method_options={'gradcam++': {'layer': 'features.block4'}}"
    if method_options is None:
        return {}
    if not isinstance(method_options, dict):
        raise InputError(f"method_options must be a dict of per-method options, e.g. {example}; not "
                         f"{method_options!r}.")
    per: dict[str, dict] = {}
    for key, value in method_options.items():
        name = canonical(key)
        if name not in names:
            raise InputError(f"method_options has options for method {key!r}, which is not among the summarised "
                             f"methods {names}; add it to methods or drop its options.")
        if not isinstance(value, dict):
            raise InputError(f"method_options[{key!r}] must be a dict of options, e.g. {example}; not {value!r}.")
        per[name] = dict(value)
    return per
