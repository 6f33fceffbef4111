"""Metrics that say which map to trust (see docs/methods.md).

- inclusivity coefficients D(a, b) = |a ∩ b| / |b| (seed 001): ``inclusivity``, ``input_inclusivity``,
  ``ground_truth_inclusivity``, ``binarise``;
- faithfulness by region perturbation with AOPC and a random reference: ``region_perturbation``, ``aopc``;
- ``compare_methods``: methods × inputs → table method × metric and mean curves; ``plot_curves`` writes a PNG.
The ground-truth scores (relevance mass / rank accuracy) live in ``metrics.groundtruth``.
"""
from __future__ import annotations

from ..lazy import lazy_exports

# bound here: ``inclusivity`` is also a submodule's name (that submodule needs only numpy)
from .inclusivity import binarise, ground_truth_inclusivity, inclusivity, input_inclusivity

#: public name -> submodule that defines it (imported on first use: ``compare --help`` needs no torch)
_LAZY = {"Comparison": "compare", "compare_methods": "compare", "PerturbationResult": "perturbation",
         "aopc": "perturbation", "region_perturbation": "perturbation", "region_scores": "perturbation",
         "plot_curves": "plots"}

__all__ = ["Comparison", "PerturbationResult", "aopc", "binarise", "compare_methods", "ground_truth_inclusivity",
           "inclusivity", "input_inclusivity", "plot_curves", "region_perturbation", "region_scores"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
