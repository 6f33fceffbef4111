"""Relevance engine: LRP on the operator graph of any traceable PyTorch model (see docs/engine.md).

``explain(model, x, preset="epsilon-plus", ...)`` returns an ``Explanation``. Rules live in
``engine.rules``; presets in ``engine.presets``. A map is returned only if the propagated graph
reproduced ``model(x)`` (``engine.verify``); otherwise ``GraphMismatchError``.
"""
from __future__ import annotations

from .api import explain
from .explanation import Explanation
from .filters import apply_filter
from .graph import UnsupportedOperatorError
from .presets import PRESETS
from .rules import (LRP0, AlphaBeta, Epsilon, Flat, Gamma, Rule, WSquare, ZBox, ZPlus, make_rule)
from .validate import NonFiniteRelevanceError
from .verify import GraphMismatchError

__all__ = ["explain", "Explanation", "PRESETS", "Rule", "LRP0", "Epsilon", "ZPlus", "AlphaBeta", "Gamma", "WSquare",
           "Flat", "ZBox", "make_rule", "apply_filter", "UnsupportedOperatorError", "GraphMismatchError",
           "NonFiniteRelevanceError"]
