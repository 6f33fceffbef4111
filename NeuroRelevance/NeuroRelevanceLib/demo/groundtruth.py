"""Ground-truth scores of a heatmap against a mask (kept here for existing code).

The scores, their chance levels and the oracle ceilings live in
:mod:`NeuroRelevanceLib.metrics.groundtruth` (one map) and
:mod:`NeuroRelevanceLib.metrics.groundtruth_report` (methods × subjects, beside oracle and chance).
"""
from __future__ import annotations

from ..metrics.groundtruth import (GroundTruth, ground_truth_scores, oracle_maps, rank_accuracy,
                                   relevance_mass_accuracy)

__all__ = ["GroundTruth", "ground_truth_scores", "oracle_maps", "rank_accuracy",
           "relevance_mass_accuracy"]
