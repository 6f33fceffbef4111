"""Run several methods on several inputs and score every map: one table method × metric, plus the curves.

Metrics per map (averaged over subjects in the table): ``seconds``; ``aopc``, ``aopc_random``, ``aopc_gap``
(region perturbation, most relevant first vs a random order — the random curve is computed once per subject
and shared by all methods); with ground-truth masks every score of :mod:`.groundtruth` (mass accuracy, mass
within 1 voxel, rank accuracy, AUC inside the brain, pointing within 1 voxel, region precision with atlases,
the share of relevance outside the brain), scored inside the brain mask when one is given, and
``ground_truth_inclusivity``; with brain masks ``input_inclusivity`` beside its threshold-free companions
``input_mass`` (share of R+ inside the brain) and ``input_auc`` (brain against the rest). With ground truth
the table gains the reference rows of :mod:`.groundtruth_report`: the oracle at blur sigma 0, 1, 2 voxels
(the true change map, or the mask without one) and chance. Maps are summed over channels before scoring
against masks. A score that is undefined for a map (e.g. mass accuracy of a map without positive relevance)
is recorded as NaN, with the reason in ``notes``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..explanation.dispatch import canonical, explain
from .groundtruth import GroundTruth, auc
from .groundtruth_report import SIGMAS, fraction_of_ceiling, reference_rows, score_columns, summarise
from .inclusivity import inclusivity
from .perturbation import region_perturbation

Tensor = torch.Tensor


@dataclass
class Comparison:
    """``table``: method × metric means; ``per_subject``: one row per (subject, method); ``curves``: method ->
    mean perturbation curve, with ``"random"`` the reference; ``fractions``: removed share at each step."""

    table: Any
    per_subject: Any
    curves: dict
    fractions: np.ndarray
    notes: list = field(default_factory=list)
    sd: Any = None

    def ground_truth_table(self) -> Any:
        """The ground-truth score columns: methods, then oracle rows and chance."""
        return self.table[score_columns(self.table)]

    def fraction_of_ceiling(self, sigma: float = 1.0) -> Any:
        """Each method's ground-truth scores as a fraction of the oracle's at ``sigma``."""
        return fraction_of_ceiling(self.table, sigma)


def _inputs(inputs: Any) -> list[Tensor]:
    if isinstance(inputs, Tensor):
        return [inputs[i:i + 1] for i in range(inputs.shape[0])]
    items = list(inputs)
    if not items or not all(isinstance(t, Tensor) for t in items):
        raise InputError("inputs must be a tensor (N, C, *spatial) or a non-empty list of such tensors.")
    return [t if t.dim() >= 2 and t.shape[0] == 1 else t.unsqueeze(0) for t in items]


def _masks(masks: Sequence[Any] | None, n: int, what: str) -> list:
    if masks is None:
        return [None] * n
    masks = list(masks)
    if len(masks) != n:
        raise InputError(f"{len(masks)} {what} given for {n} subjects; give one per subject (or none).")
    return [None if m is None else np.asarray(m.detach().cpu() if hasattr(m, "detach") else m) for m in masks]


def _truth(gt: Any, brain: Any, atlas: Any, tolerance: int, label: str) -> GroundTruth | None:
    if gt is None:
        return None
    try:
        return GroundTruth(gt, brain=brain, atlas=atlas, tolerance=tolerance)
    except ValueError as exc:
        raise InputError(f"{label}: {exc}") from None


def _brain_scores(spatial: np.ndarray, brain: np.ndarray, incl: dict, notes: list, label: str) -> dict:
    """Input inclusivity and its threshold-free companions against a brain mask."""
    inside = np.asarray(brain) > 0
    pos = np.clip(spatial, 0, None)
    return {"input_inclusivity": _score("inclusivity", lambda: inclusivity(spatial, brain, **incl), notes, label),
            "input_mass": float(pos[inside].sum() / pos.sum()) if pos.sum() > 0 else float("nan"),
            "input_auc": auc(spatial.ravel(), inside.ravel())}


def _score(name: str, func: Callable[[], Any], notes: list, label: str) -> float:
    try:
        return float(func())
    except ValueError as exc:
        notes.append(f"{label}: {name} undefined ({exc})")
        return float("nan")


def compare_methods(model: Any, inputs: Any, methods: Sequence[str], target: Any = None, *,
                    ground_truth: Sequence[Any] | None = None, brain_masks: Sequence[Any] | None = None,
                    method_options: dict | None = None, perturbation: dict | None = None,
                    inclusivity_options: dict | None = None, names: Sequence[str] | None = None,
                    device: Any = "auto", dtype: torch.dtype | None = None,
                    changes: Sequence[Any] | None = None, atlases: Sequence[Any] | None = None,
                    tolerance: int = 1, oracle_sigmas: Sequence[float] = SIGMAS,
                    boxes: Sequence[Any] | None = None) -> Comparison:
    """Explain every input with every method and score each map (see module docstring).

    ``ground_truth``/``brain_masks``: one spatial mask per input (on the input grid) or None; the
    brain mask is also the domain of the ground-truth scores. ``changes``: per input the true change
    map (input minus its effect-free twin, spatial or shaped like the input) for the oracle rows;
    ``atlases``: per input an integer label map for region precision. ``boxes``: per input the zB box
    ``(low, high)`` LRP uses (e.g. ``preprocessing.box_bounds``), unless ``method_options`` sets one.
    ``perturbation``: options of ``region_perturbation`` (steps, fraction, patch, baseline, ...).
    """
    import pandas as pd

    xs = _inputs(inputs)
    if isinstance(methods, str) or not methods:
        raise InputError("methods must be a non-empty list of method names, e.g. ['lrp', 'gradcam++'].")
    canon = [canonical(m) for m in methods]
    gts, brains = _masks(ground_truth, len(xs), "ground-truth masks"), _masks(brain_masks, len(xs), "brain masks")
    deltas, labels_maps = _masks(changes, len(xs), "change maps"), _masks(atlases, len(xs), "atlas label maps")
    labels = list(names) if names is not None else [f"subject{i + 1}" for i in range(len(xs))]
    if len(labels) != len(xs):
        raise InputError(f"{len(labels)} names given for {len(xs)} subjects; give one per subject (or none).")
    opts = {canonical(k): dict(v) for k, v in (method_options or {}).items()}
    pert = dict(perturbation or {})
    pert.setdefault("random_repeats", 1)
    incl = dict(inclusivity_options or {})
    rows, notes = [], []
    curves: dict[str, list] = {m: [] for m in canon}
    curves["random"] = []
    fractions = np.zeros(0)  # set by the first perturbation run (there is at least one: inputs and methods)
    if ground_truth is not None and changes is None:
        notes.append("oracle: the mask itself (no change map given), not the change the data hold")
    box_list = list(boxes) if boxes is not None else [None] * len(xs)
    if len(box_list) != len(xs):
        raise InputError(f"{len(box_list)} zB boxes given for {len(xs)} subjects; give one per subject (or none).")
    per_subject_inputs = zip(labels, xs, gts, brains, deltas, labels_maps, box_list, strict=True)
    for label, x, gt, brain, delta, atlas, box in per_subject_inputs:
        truth = _truth(gt, brain, atlas, tolerance, label)
        random_done = False
        for method in canon:
            kwargs = dict(opts.get(method, {}))
            if method == "lrp" and box is not None and "low" not in kwargs and "high" not in kwargs:
                kwargs.update(low=torch.as_tensor(box[0]), high=torch.as_tensor(box[1]))
            e = explain(model, x, method, target=target, device=device, dtype=dtype, **kwargs)
            r = e.relevance.to(torch.float64)
            res = region_perturbation(model, x, r, target, device=device, dtype=dtype,
                                      **{**pert, "random_repeats": 0 if random_done else pert["random_repeats"]})
            if not random_done and res.random_scores is not None and res.aopc_random is not None:
                curves["random"].append(res.random_scores[0])
                aopc_random = float(res.aopc_random[0])
                random_done = True
            fractions = res.fractions
            curves[method].append(res.scores[0])
            row = {"subject": label, "method": method, "seconds": e.seconds, "aopc": float(res.aopc[0])}
            if random_done:
                row["aopc_random"] = aopc_random
                row["aopc_gap"] = row["aopc"] - aopc_random
            spatial = r[0].sum(0).numpy()
            if truth is not None:
                row.update(truth.score(spatial))
                if row["mass_accuracy"] != row["mass_accuracy"]:
                    notes.append(f"{label}/{method}: mass accuracy undefined (no positive relevance in the brain)")
                row["ground_truth_inclusivity"] = _score("inclusivity", partial(inclusivity, spatial, gt, **incl),
                                                         notes, f"{label}/{method}")
            if brain is not None:
                row.update(_brain_scores(spatial, brain, incl, notes, f"{label}/{method}"))
            rows.append(row)
        if truth is not None:
            spatial_delta = None if delta is None else (
                np.abs(delta).sum(0) if delta.ndim == x.dim() - 1 else delta)  # sum of |change| over channels
            rows += [{"subject": label, **ref} for ref in
                     reference_rows(truth, spatial_delta, oracle_sigmas, mask=gt)]
    per_subject = pd.DataFrame(rows)
    table, sd = summarise(per_subject)
    mean_curves = {k: np.mean(v, axis=0) for k, v in curves.items() if v}
    return Comparison(table, per_subject, mean_curves, fractions, notes, sd)
