"""Explanation methods besides LRP (Kennedy, Shi & Cha compared them on brain MRI; see docs/glossary.md).

Gradient, gradient × input, SmoothGrad, integrated gradients, guided backprop, Grad-CAM, Grad-CAM++, guided
Grad-CAM and the summary map. Every method explains the same target as LRP and returns an
``explanation.Explanation`` whose relevance has the input's shape. The one entry point for all of them and for
LRP is ``NeuroRelevanceLib.explain(model, x, method=...)`` (``explanation/dispatch.py``); this package imports
nothing from the LRP engine (``Testing/test_layering.py``).
"""
from __future__ import annotations

from typing import Any

from .gradcam import (class_activation_map, gradcam, gradcam_plus_plus, gradcam_weights, gradcampp_weights,
                      guided_gradcam, upsample)
from .gradient import gradient, gradient_x_input, smoothgrad
from .guided_backprop import guide_relus, guided_backprop
from .integrated_gradients import integrated_gradients
from .summary import SUMMARY_NORMALISATIONS, combine, normalise, summary_of

#: the dispatcher's names, still importable from here (``from NeuroRelevanceLib.methods import explain`` was the
#: documented path); loaded on first use so that this package does not depend on the dispatcher
_FROM_DISPATCH = ("METHODS", "canonical", "explain")

__all__ = ["METHODS", "SUMMARY_NORMALISATIONS", "canonical", "class_activation_map", "combine",
           "explain", "gradcam", "gradcam_plus_plus", "gradcam_weights", "gradcampp_weights",
           "gradient", "gradient_x_input", "guide_relus", "guided_backprop", "guided_gradcam", "integrated_gradients",
           "normalise", "smoothgrad", "summary_of", "upsample"]


def __getattr__(name: str) -> Any:
    if name in _FROM_DISPATCH:
        from ..explanation import dispatch

        return getattr(dispatch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
