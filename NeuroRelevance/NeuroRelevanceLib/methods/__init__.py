"""Explanation methods besides LRP (seed 002), all behind one entry point (see docs/methods.md).

``explain(model, x, method=...)`` dispatches ``"lrp"`` to the relevance engine unchanged and the others here:
gradient, gradient_x_input, smoothgrad, integrated_gradients, guided_backprop, gradcam, gradcam++,
guided_gradcam and summary. Every method explains the same target as LRP and returns an
``engine.Explanation`` whose relevance has the input's shape.
"""
from __future__ import annotations

from .common import MethodExplanation
from .dispatch import METHODS, canonical, explain
from .gradcam import (class_activation_map, gradcam, gradcam_plus_plus, gradcam_weights, gradcampp_weights,
                      guided_gradcam, upsample)
from .gradient import gradient, gradient_x_input, smoothgrad
from .guided_backprop import guide_relus, guided_backprop
from .integrated_gradients import integrated_gradients
from .summary import NORMALISATIONS, combine, normalise, summary_of

__all__ = ["METHODS", "NORMALISATIONS", "MethodExplanation", "canonical", "class_activation_map", "combine",
           "explain", "gradcam", "gradcam_plus_plus", "gradcam_weights", "gradcampp_weights",
           "gradient", "gradient_x_input", "guide_relus", "guided_backprop", "guided_gradcam", "integrated_gradients",
           "normalise", "smoothgrad", "summary_of", "upsample"]
