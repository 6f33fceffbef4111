"""Dataset-level explanation by constrained non-negative Tucker decomposition (seed 003).

Public pieces:

- :func:`decompose_cohort` — the whole pipeline (activations → scree → rank grid → linear model → RoIs)
- :func:`constrained_nn_tucker`, :func:`solve_loadings`, :func:`relative_error` — eq. (2) solver
- :func:`rank_grid`, :func:`elbow`, :func:`scree` — rank selection (Algorithm 1)
- :func:`fit_linear_model`, :func:`global_average_features` — Algorithm 2
- :func:`collect_activations` (default layer: ``explanation.layers.last_feature_map``) — streamed forward-hook capture
- :func:`layer_grid`, :func:`save_rois`, :func:`strongest_roi`, :func:`upsample` — RoI maps
- :func:`read_cohort`, :func:`split_indices` — cohort tables

Names are imported on first use, so ``import NeuroRelevanceLib.cohort`` (and the ``cohort``
command's ``--help``) does not import torch.
"""
from __future__ import annotations

from ..lazy import lazy_exports
from .scree import scree as scree  # bound here: the name is also a submodule's (the submodule imports no torch at load)

#: public name -> submodule that defines it (imported on first use: ``--help`` needs no torch)
_LAZY = {
    "Activations": "activations", "collect_activations": "activations",
    "CohortTable": "data", "read_cohort": "data", "split_indices": "data",
    "LinearResult": "linear", "fit_linear_model": "linear", "global_average_features": "linear",
    "CohortResult": "pipeline", "decompose_cohort": "pipeline",
    "RankGrid": "ranks", "elbow": "ranks", "rank_grid": "ranks", "suggest_ranks": "ranks",
    "layer_grid": "roi", "roi_maps": "roi", "save_rois": "roi", "strongest_roi": "roi", "upsample": "roi",
    "ConstrainedTucker": "tucker", "constrained_nn_tucker": "tucker", "relative_error": "tucker",
    "solve_loadings": "tucker",
}

__all__ = sorted([*_LAZY, "scree"])

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
