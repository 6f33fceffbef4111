"""Relevance engine: LRP on the operator graph of any traceable PyTorch model (see docs/engine.md).

``explain(model, x, preset="epsilon-plus", ...)`` returns an ``Explanation``. Rules live in
``engine.rules``; presets in ``engine.presets`` (the one registry every front end reads); operator
kinds in ``engine.operators``; canonizers in ``engine.canonizers``. A map is returned only if the
propagated graph reproduced ``model(x)`` (``engine.verify``); otherwise ``GraphMismatchError``.

Names are imported on first use, so ``engine.presets`` can be read without importing torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "explain": ".api", "Explanation": "..explanation.result", "apply_filter": "..explanation.filters",
    "UnsupportedOperatorError": ".operators", "register_operator": ".operators",
    "unregister_operator": ".operators", "PRESETS": ".presets", "Preset": ".presets",
    "register_preset": ".presets", "get_preset": ".presets",
    "Rule": ".rules", "LRP0": ".rules", "Epsilon": ".rules", "ZPlus": ".rules", "AlphaBeta": ".rules",
    "Gamma": ".rules", "WSquare": ".rules", "Flat": ".rules", "ZBox": ".rules", "make_rule": ".rules",
    "NonFiniteRelevanceError": ".validate", "InflatedRelevanceError": ".validate",
    "ConservationWarning": ".validate", "GraphMismatchError": ".verify",
    "clear_cache": ".cache",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    if name != "PRESETS":  # PRESETS follows register_preset: always read it from engine.presets
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
