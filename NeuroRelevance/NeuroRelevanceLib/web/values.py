"""The page's values, checked: the browser can send any state, not only what the widgets offer.

Every choice must be one the page listed (an atlas is a bundled name, never a path), every
number must be a finite number: anything else is an :class:`InputError` naming the field and a
valid value, shown on the page.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import panel
from ..errors import InputError
from ..vocabulary import OPTIONS

LABELS = {name: option.label for name, option in OPTIONS.items() if option.label}
EXAMPLES = {"epsilon": "1e-6", "gamma": "0.25", "alpha": "1"}


def number(value: Any, field: str, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a finite float in [low, high], or an InputError naming the field."""
    label = LABELS.get(field, field)
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{label} must be a number (got {value!r}); type e.g. "
                         f"{EXAMPLES.get(field) or _example(low, high)}.") from None
    if not math.isfinite(result) or not low <= result <= high:
        raise InputError(f"{label} = {value!r} must lie in [{low:g}, {high:g}].")
    return result


def flag(value: Any, field: str) -> bool:
    """A true boolean (the string "false" is not False-y enough to guess)."""
    if not isinstance(value, bool):
        raise InputError(f"{field} must be true or false (got {value!r}).")
    return value


def choice(value: Any, field: str, options: Sequence[str]) -> str:
    """``value`` if it is one of ``options``, else an InputError listing them."""
    if not isinstance(value, str) or value not in options:
        raise InputError(f"{field} {value!r} is not offered; choose one of {', '.join(options)}.")
    return value


def page_values(state, *, atlases: Sequence[str], targets: Sequence[str]) -> dict:
    """The checked panel values in the form :func:`panel.run_settings` takes."""
    try:
        low, high = state.filter_range
    except (TypeError, ValueError):
        raise InputError("The filter range must be two numbers, e.g. [0.2, 1.0].") from None
    bounds = OPTIONS["filter_range"].bounds
    low, high = number(low, "Filter range start", *bounds), number(high, "Filter range end", *bounds)
    if low > high:
        raise InputError(f"The filter range [{low:g}, {high:g}] is reversed; its start must not exceed its end.")
    return dict(
        method=choice(state.method, "Method", panel.METHODS),
        preset=choice(state.preset, "Preset", panel.PRESETS),
        target=choice(state.target, "Target", targets),
        filter_type=choice(state.filter_type, "Filter", panel.FILTERS),
        filter_low=low, filter_high=high,
        filter_placement=choice(state.filter_placement, "Placement", panel.PLACEMENTS),
        opacity=number(state.opacity, "opacity", *OPTIONS["opacity"].bounds),
        threshold=number(state.threshold, "threshold", *OPTIONS["threshold"].bounds),
        positive_only=flag(state.positive_only, "Positive relevance only"),
        atlas=choice(state.atlas, "Atlas", atlases),
        epsilon=number(state.epsilon, "epsilon", *OPTIONS["epsilon"].bounds),
        gamma=number(state.gamma, "gamma", *OPTIONS["gamma"].bounds),
        alpha=number(state.alpha, "alpha", *OPTIONS["alpha"].bounds),
        min_overlap=number(state.min_overlap, "min_overlap", *OPTIONS["min_overlap"].bounds))


def _example(low: float, high: float) -> str:
    if math.isfinite(low) and math.isfinite(high):
        return f"{(low + high) / 2:g}"
    return "1e-6" if low == 0.0 else "1"
