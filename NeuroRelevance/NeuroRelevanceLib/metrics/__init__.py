"""Metrics that say which map to trust (see docs/methods.md).

- inclusivity coefficients D(a, b) = |a ∩ b| / |b| (seed 001): ``inclusivity``, ``input_inclusivity``,
  ``ground_truth_inclusivity``, ``binarise``;
- faithfulness by region perturbation with AOPC and a random reference: ``region_perturbation``, ``aopc``;
- ``compare_methods``: methods × inputs → table method × metric and mean curves; ``plot_curves`` writes a PNG.
The ground-truth scores (relevance mass / rank accuracy) live in ``NeuroRelevanceLib.demo.groundtruth``.
"""
from __future__ import annotations

from .compare import Comparison, compare_methods
from .inclusivity import binarise, ground_truth_inclusivity, inclusivity, input_inclusivity
from .perturbation import PerturbationResult, aopc, region_perturbation, region_scores
from .plots import plot_curves

__all__ = ["Comparison", "PerturbationResult", "aopc", "binarise", "compare_methods", "ground_truth_inclusivity",
           "inclusivity", "input_inclusivity", "plot_curves", "region_perturbation", "region_scores"]
