"""Dataset-level explanation by constrained non-negative Tucker decomposition (seed 003).

Public pieces:

- :func:`decompose_cohort` — the whole pipeline (activations → scree → rank grid → linear model → RoIs)
- :func:`constrained_nn_tucker`, :func:`solve_loadings`, :func:`relative_error` — eq. (2) solver
- :func:`rank_grid`, :func:`elbow`, :func:`scree` — rank selection (Algorithm 1)
- :func:`fit_linear_model`, :func:`global_average_features` — Algorithm 2
- :func:`collect_activations`, :func:`default_layer` — streamed forward-hook capture
- :func:`layer_affine`, :func:`save_rois`, :func:`strongest_roi`, :func:`upsample` — RoI maps
- :func:`read_cohort`, :func:`split_indices` — cohort tables
"""
from .activations import Activations, collect_activations, default_layer
from .data import CohortTable, read_cohort, split_indices
from .linear import LinearResult, fit_linear_model, global_average_features
from .pipeline import CohortResult, decompose_cohort
from .ranks import RankGrid, elbow, rank_grid, suggest_ranks
from .roi import layer_affine, roi_maps, save_rois, strongest_roi, upsample
from .scree import scree
from .tucker import ConstrainedTucker, constrained_nn_tucker, relative_error, solve_loadings

__all__ = [
    "Activations", "CohortResult", "CohortTable", "ConstrainedTucker", "LinearResult", "RankGrid",
    "collect_activations", "constrained_nn_tucker", "decompose_cohort", "default_layer", "elbow",
    "fit_linear_model", "global_average_features", "layer_affine", "rank_grid", "read_cohort",
    "relative_error", "roi_maps", "save_rois", "scree", "solve_loadings", "split_indices",
    "strongest_roi", "suggest_ranks", "upsample",
]
